package portal

import (
	"bytes"
	"crypto/subtle"
	"fmt"
	"html/template"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"portico/service/config"
	"portico/service/directory"
	"portico/service/sessions"
	"portico/service/signin"
	"portico/service/store"
)

// preAuthCookie carries the sign-in form's CSRF token before a session
// exists (double-submit), so a foreign site cannot sign a user in.
const preAuthSuffix = "_signin"

// cookie builds the portal cookie with the configured name. Only when
// embedding is allowed is it SameSite=None and Partitioned (CHIPS): browsers
// that block third-party cookies (current Chromium, Safari) still keep a
// partitioned cookie for the site that frames the portal, so sign-in works
// inside the frame without opening the session to every other site.
func (p *Portal) cookie(r *http.Request, name, value string, maxAge int) *http.Cookie {
	s := snap(r)
	c := &http.Cookie{Name: name, Value: value, Path: s.Effective.Portal.Web.Path + "/", Secure: true, HttpOnly: true, SameSite: http.SameSiteLaxMode, MaxAge: maxAge}
	if s.Effective.Portal.Restrictions.AllowEmbedding {
		c.SameSite = http.SameSiteNoneMode
		c.Partitioned = true
	}
	if strings.HasPrefix(name, "__Host-") {
		c.Path = "/"
	}
	return c
}

func cookieName(r *http.Request) string { return snap(r).Effective.Portal.Web.CookieName }

// current returns the signed-in session, or nil.
func (p *Portal) current(r *http.Request) *Session {
	c, err := r.Cookie(cookieName(r))
	if err != nil {
		return nil
	}
	return p.sessions.Get(c.Value)
}

// checkCSRF verifies the token of a state-changing request: a form field
// or the X-CSRF-Token header must equal the session's token.
func checkCSRF(r *http.Request, want string) bool {
	got := r.Header.Get("X-CSRF-Token")
	if got == "" {
		got = r.PostFormValue("csrf")
	}
	return want != "" && subtle.ConstantTimeCompare([]byte(got), []byte(want)) == 1
}

type loginHint struct {
	Label, Placeholder, Example string
}

func hint(s *config.Snapshot) loginHint {
	netbios, dns := "OFFICE", "office.example.com"
	for _, d := range s.SignIn.Directories {
		if !d.Disabled {
			netbios, dns = strings.ToUpper(d.NetBIOSName), strings.ToLower(d.DNSName)
			break
		}
	}
	if s.Effective.Portal.Restrictions.PreWindows2000Login {
		return loginHint{Label: `User name (DOMAIN\user)`, Placeholder: netbios + `\user`, Example: netbios + `\alice`}
	}
	return loginHint{Label: "User name (user@domain)", Placeholder: "user@" + dns, Example: "alice@" + dns}
}

type pageData struct {
	Title    string
	Base     string
	Nonce    string
	Session  *Session
	CSRF     string
	Notice   string
	Error    string
	Hint     loginHint
	Username string
	Data     any
}

func (p *Portal) render(w http.ResponseWriter, r *http.Request, code int, name string, d pageData) {
	d.Base, d.Nonce = base(r), nonce(r)
	if d.Session != nil {
		d.CSRF = d.Session.CSRF
	}
	// The page is rendered whole before anything is sent: it then leaves
	// in one write with a Content-Length (written straight to w, it went
	// out as 4 KiB chunks, a TLS record and a system call each, which
	// was a large part of the portal page's cost), and a template that
	// fails sends a clean error, not half a page.
	buf, _ := p.pages.Get().(*bytes.Buffer)
	if buf == nil {
		buf = new(bytes.Buffer)
	}
	defer func() {
		if buf.Cap() <= maxPooledPage {
			buf.Reset()
			p.pages.Put(buf)
		}
	}()
	if err := p.tpl.ExecuteTemplate(buf, name, d); err != nil {
		p.Logger.Error("render page", "page", name, "err", err)
		http.Error(w, "The page could not be shown. Try again; if it persists, tell your administrator.", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Content-Length", strconv.Itoa(buf.Len()))
	w.WriteHeader(code)
	_, _ = w.Write(buf.Bytes())
}

// maxPooledPage is the largest render buffer kept for the next page; a
// rare huge page (thousands of resources) does not pin its memory.
const maxPooledPage = 1 << 20

// errorPage shows what happened and what to do.
func (p *Portal) errorPage(w http.ResponseWriter, r *http.Request, code int, title, msg, action string) {
	if wantsJSON(r) {
		writeJSONError(w, code, title+": "+msg)
		return
	}
	p.render(w, r, code, "error.html", pageData{Title: title, Session: p.current(r), Error: msg, Notice: action})
}

func wantsJSON(r *http.Request) bool {
	return strings.HasPrefix(r.URL.Path, "/api/") || strings.Contains(r.Header.Get("Accept"), "application/json")
}

func (p *Portal) home(w http.ResponseWriter, r *http.Request) {
	s := p.current(r)
	if s == nil {
		p.signInPage(w, r, http.StatusOK, "", "")
		return
	}
	notice := s.Notice
	if notice != "" {
		p.sessions.Update(s, func(s *Session) { s.Notice = "" })
	}
	snapshot := snap(r)
	list := p.resourceList(snapshot, s)
	p.render(w, r, http.StatusOK, "home.html", pageData{Title: "Your desktops and applications", Session: s, Notice: notice, Data: homeData{
		Resources:   list.resources,
		List:        list.html,
		NewTab:      snapshot.Effective.Portal.Client.OpenInNewTab,
		IPDetectURL: ipDetectURL(snapshot),
		RDPFile:     snapshot.Effective.Portal.Client.LaunchMethod != config.LaunchBrowser && snapshot.Effective.Portal.NLB.AlternatePortEnabled,
		Detect:      p.detectView(snapshot, s),
	}})
}

type homeData struct {
	Resources []resourceView
	// List is Resources rendered (the resource-list template), shared by
	// every page of the same settings version and user.
	List        template.HTML
	NewTab      bool
	IPDetectURL string
	// RDPFile offers "Download .rdp" for RDP resources (native launches
	// allowed and the alternate port on).
	RDPFile bool
	// Detect drives the native-client detection and launch-method UI.
	Detect detectView
}

func ipDetectURL(s *config.Snapshot) string {
	if d := s.Effective.Portal.Client.IPDetection; d.Enabled {
		return d.URL
	}
	return ""
}

// renderedList is one user's resource list under one settings version.
type renderedList struct {
	resources []resourceView
	html      template.HTML
}

// listCache holds rendered resource lists for the current settings
// version. Escaping the list through html/template was most of the portal
// page's cost; the list changes only with the settings or the user.
type listCache struct {
	mu      sync.Mutex
	version uint64
	lists   map[string]renderedList
}

// maxCachedLists bounds the cache; past it the cache starts again empty.
const maxCachedLists = 4096

// resourceList returns the session user's assigned resources and their
// rendered list, from the cache when the settings version and the user
// (name, groups) are the same. Nothing in it is per request.
func (p *Portal) resourceList(s *config.Snapshot, sess *Session) renderedList {
	newTab := s.Effective.Portal.Client.OpenInNewTab
	rdpFile := s.Effective.Portal.Client.LaunchMethod != config.LaunchBrowser && s.Effective.Portal.NLB.AlternatePortEnabled
	key := strings.ToLower(sess.User) + "\x00" + strings.ToLower(strings.Join(sess.Groups, "\x00"))
	c := &p.lists
	c.mu.Lock()
	if c.version != s.Version || c.lists == nil || len(c.lists) >= maxCachedLists {
		c.version, c.lists = s.Version, map[string]renderedList{}
	}
	l, ok := c.lists[key]
	c.mu.Unlock()
	if ok {
		return l
	}
	l.resources = p.assigned(s, sess)
	var b strings.Builder
	if err := p.tpl.ExecuteTemplate(&b, "resource-list", struct {
		Groups          []resourceGroup
		RDPFile, NewTab bool
	}{grouped(l.resources), rdpFile, newTab}); err != nil {
		p.Logger.Error("render resource list", "err", err)
		return l // not cached: the page shows what rendered
	}
	l.html = template.HTML(b.String()) // escaped by html/template above
	c.mu.Lock()
	if c.version == s.Version {
		c.lists[key] = l
	}
	c.mu.Unlock()
	return l
}

// resourceView is what the browser may know about a resource: never its
// host, port or credentials.
type resourceView struct {
	ID          string `json:"id"`
	Name        string `json:"name"`
	Description string `json:"description,omitempty"`
	Icon        string `json:"icon"`
	Kind        string `json:"kind"`
	Protocol    string `json:"protocol"`
	// Note says how the resource opens where that is not obvious (a
	// RemoteApp program in the browser).
	Note string `json:"note,omitempty"`
}

// resourceGroup is one heading of the resource list: applications and
// desktops are listed apart, as users look for one or the other.
type resourceGroup struct {
	Title     string
	Resources []resourceView
}

// grouped splits a resource list into its applications and desktops
// (applications first), leaving out an empty group.
func grouped(list []resourceView) []resourceGroup {
	var apps, desks []resourceView
	for _, r := range list {
		if r.Kind == string(config.KindApplication) {
			apps = append(apps, r)
		} else {
			desks = append(desks, r)
		}
	}
	var out []resourceGroup
	if len(apps) > 0 {
		out = append(out, resourceGroup{Title: "Applications", Resources: apps})
	}
	if len(desks) > 0 {
		out = append(out, resourceGroup{Title: "Desktops", Resources: desks})
	}
	return out
}

// remoteAppNote is what an RDP application's card says: IronRDP's web
// client has no RemoteApp windows, so the program is the session's
// initial program instead.
const remoteAppNote = "In the browser it opens full-window in its own session (Windows RD Session Hosts)."

// assigned lists the resources assigned to the session's user, by name.
func (p *Portal) assigned(s *config.Snapshot, sess *Session) []resourceView {
	out := []resourceView{}
	for _, r := range s.Resources {
		if isAssigned(r, sess) {
			v := resourceView{ID: r.ID, Name: r.Name, Description: r.Description, Icon: r.Icon, Kind: string(r.Kind), Protocol: string(r.Protocol)}
			if r.Protocol == config.ProtocolRDP && r.Kind == config.KindApplication && r.RemoteApp != nil {
				v.Note = remoteAppNote
			}
			out = append(out, v)
		}
	}
	sort.Slice(out, func(i, j int) bool { return strings.ToLower(out[i].Name) < strings.ToLower(out[j].Name) })
	return out
}

func isAssigned(r config.Resource, s *Session) bool {
	for _, u := range r.Users {
		if strings.EqualFold(u, s.User) {
			return true
		}
	}
	for _, g := range r.Groups {
		for _, ug := range s.Groups {
			if strings.EqualFold(g, ug) {
				return true
			}
		}
	}
	return false
}

func (p *Portal) signInPage(w http.ResponseWriter, r *http.Request, code int, msg, username string) {
	tok := randomToken()
	http.SetCookie(w, p.cookie(r, cookieName(r)+preAuthSuffix, tok, 3600))
	p.render(w, r, code, "signin.html", pageData{Title: "Sign in", CSRF: tok, Error: msg, Hint: hint(snap(r)), Username: username})
}

func (p *Portal) signIn(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 16<<10)
	pre, err := r.Cookie(cookieName(r) + preAuthSuffix)
	if err != nil || r.PostFormValue("csrf") == "" || subtle.ConstantTimeCompare([]byte(pre.Value), []byte(r.PostFormValue("csrf"))) != 1 {
		p.signInPage(w, r, http.StatusForbidden, "Your sign-in form expired. Please try again.", "")
		return
	}
	ip := p.clientIP(r)
	typed := r.PostFormValue("username")
	password := r.PostFormValue("password")
	s := snap(r)
	login, err := directory.ParseLogin(typed)
	if err != nil {
		p.signInPage(w, r, http.StatusBadRequest, fmt.Sprintf("%v. Sign in as %s.", err, hint(s).Example), typed)
		return
	}
	u, err := p.checkCredentials(r, ip, s.SignIn, login, password)
	if ref, refused := signin.IsRefusal(err); refused {
		p.refuseSignIn(w, r, ip, login.Username, ref, typed)
		return
	}
	if err != nil {
		f := directory.FailureOf(err)
		ev := store.Event{Type: "signin.fail", User: typed, ClientIP: ip, Detail: err.Error()}
		if f == directory.FailWrongPassword || f == directory.FailNoAccount {
			// Wrong names and passwords arrive as fast as the guard lets
			// hashes run, from as many addresses as an attacker has:
			// aggregated, so they cannot flush the security events.
			p.auditRefusal(ev)
		} else {
			p.audit(ev)
		}
		code := map[directory.Failure]int{directory.FailUnreachable: http.StatusServiceUnavailable, directory.FailDisabled: http.StatusForbidden,
			directory.FailLocked: http.StatusForbidden, directory.FailAccountExpired: http.StatusForbidden}[f]
		if code == 0 {
			code = http.StatusUnauthorized
		}
		p.signInPage(w, r, code, f.Message(), typed)
		return
	}
	notice := ""
	pre2000 := s.Effective.Portal.Restrictions.PreWindows2000Login
	if (pre2000 && login.Format == "upn") || (!pre2000 && login.Format == "downlevel") {
		notice = "This portal uses the " + map[bool]string{true: `DOMAIN\user`, false: "user@domain"}[pre2000] + " sign-in format: next time sign in as " + loginAs(u, pre2000) + "."
	}
	if s.SignIn.TOTP.Required(u.Groups) {
		p.beginSecondFactor(w, r, u, password, notice, ip)
		return
	}
	if p.startSession(w, r, u, password, notice, ip) {
		http.Redirect(w, r, base(r)+"/", http.StatusSeeOther)
	}
}

// startSession is where every sign-in ends when all its factors are
// right: it creates the portal session and sets its cookies (false, with
// an error page answered, when the session cannot be stored). password is
// the one the user signed in with: the RDP "portal" credential mode keeps
// it, sealed in memory, for this session.
func (p *Portal) startSession(w http.ResponseWriter, r *http.Request, u directory.Account, password, notice, ip string) bool {
	value, created, err := p.sessions.Create(Session{User: u.Principal(), Domain: u.Domain, DisplayName: orDefault(u.DisplayName, u.Username), Groups: u.Groups, ClientIP: ip, Notice: notice,
		Source: u.Source, Login: u.Username, DN: u.DN, Epoch: u.Epoch})
	if err != nil {
		p.errorPage(w, r, http.StatusInternalServerError, "Sign-in failed", "The gateway could not start your session. Please try again.", "")
		return false
	}
	// For RDP resources in "portal" credential mode; sealed, in memory only.
	p.sessions.KeepPassword(created.ID(), password)
	p.audit(store.Event{Type: "signin.ok", User: u.Principal(), ClientIP: ip, Detail: signInSource(u)})
	if max := snap(r).Gateway.EffectiveSecurity().MaxSignInsPerUser; max > 0 {
		if n := p.sessions.Limit(u.Principal(), max); n > 0 {
			p.audit(store.Event{Type: "signout", User: u.Principal(), ClientIP: ip, Detail: fmt.Sprintf("%d older sign-in(s) ended: at most %d per user", n, max)})
		}
	}
	http.SetCookie(w, p.cookie(r, cookieName(r)+preAuthSuffix, "", -1))
	http.SetCookie(w, p.cookie(r, cookieName(r)+deviceSuffix, p.devices.Issue(localAccountKey(u.Username)), int(signin.DeviceLifetime/time.Second)))
	http.SetCookie(w, p.cookie(r, cookieName(r), value, int(AbsoluteTimeout/time.Second)))
	return true
}

// loginAs is the account's sign-in name in the portal's login format.
func loginAs(a directory.Account, pre2000 bool) string {
	if a.Source != "" {
		if pre2000 {
			return a.Domain + `\` + a.Username
		}
		return a.Username + "@" + a.DNSDomain
	}
	if pre2000 {
		return orDefault(directory.DownlevelDomain(a.Domain), "DOMAIN") + `\` + a.Username
	}
	return a.Username + "@" + strings.ToLower(orDefault(a.Domain, "domain"))
}

func signInSource(a directory.Account) string {
	if a.Source == "" {
		return "local account"
	}
	return "directory " + a.Source + " (" + a.DN + ")"
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

func (p *Portal) signOut(w http.ResponseWriter, r *http.Request) {
	s := p.current(r)
	if s != nil {
		if !checkCSRF(r, s.CSRF) {
			p.errorPage(w, r, http.StatusForbidden, "Sign-out refused", "The request did not come from this portal's page.", "")
			return
		}
		p.sessions.Delete(s.ID())
		// Signing out ends the sessions opened from this sign-in, in every
		// tab and native tunnel; their pages say "You signed out".
		n := p.endSignIn(s.ID(), sessions.ReasonSignedOut)
		p.audit(store.Event{Type: "signout", User: s.User, ClientIP: p.clientIP(r), Detail: fmt.Sprintf("%d live sessions closed", n)})
	}
	http.SetCookie(w, p.cookie(r, cookieName(r), "", -1))
	http.Redirect(w, r, base(r)+"/", http.StatusSeeOther)
}

// requirePageRequest is requireSession for a state-changing call from the
// portal page: it also checks the page's CSRF token, answering a refusal.
func (p *Portal) requirePageRequest(w http.ResponseWriter, r *http.Request) *Session {
	s := p.requireSession(w, r)
	if s == nil {
		return nil
	}
	if !checkCSRF(r, s.CSRF) {
		writeJSONError(w, http.StatusForbidden, "This request did not come from the portal page: reload the page and try again.")
		return nil
	}
	return s
}

// requireSession returns the session or answers "signed out".
func (p *Portal) requireSession(w http.ResponseWriter, r *http.Request) *Session {
	s := p.current(r)
	if s == nil {
		if wantsJSON(r) {
			writeJSONError(w, http.StatusUnauthorized, "You are signed out. Sign in again.")
		} else {
			http.Redirect(w, r, base(r)+"/", http.StatusSeeOther)
		}
		return nil
	}
	return s
}
