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
	if s.Effective.Portal.Restrictions.PreWindows2000Login {
		return loginHint{Label: `User name (DOMAIN\user)`, Placeholder: `DOMAIN\user`, Example: `OFFICE\alice`}
	}
	return loginHint{Label: "User name (user@domain)", Placeholder: "user@domain", Example: "alice@office.example.com"}
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
		Resources       []resourceView
		RDPFile, NewTab bool
	}{l.resources, rdpFile, newTab}); err != nil {
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
}

// assigned lists the resources assigned to the session's user, by name.
func (p *Portal) assigned(s *config.Snapshot, sess *Session) []resourceView {
	out := []resourceView{}
	for _, r := range s.Resources {
		if isAssigned(r, sess) {
			out = append(out, resourceView{ID: r.ID, Name: r.Name, Description: r.Description, Icon: r.Icon, Kind: string(r.Kind), Protocol: string(r.Protocol)})
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
	account := "user:" + strings.ToLower(login.Username)
	if err := p.throttle.Check("ip:"+ip, account); err != nil {
		p.audit(store.Event{Type: "signin.throttled", User: login.Username, ClientIP: ip, Detail: err.Error()})
		w.Header().Set("Retry-After", fmt.Sprint(int(err.(ErrThrottled).Wait.Seconds()+1)))
		p.signInPage(w, r, http.StatusTooManyRequests, fmt.Sprintf("Too many failed sign-ins. Try again in %d s.", int(err.(ErrThrottled).Wait.Seconds()+0.999)), typed)
		return
	}
	var u directory.User
	err = p.Store.View(func(t *store.Tx) (err error) { u, err = t.User(login.Username); return })
	ok := err == nil && u.MatchesDomain(login.Domain) && directory.CheckPassword(u.PasswordHash, password)
	if !ok {
		if err != nil {
			// Same work as a real check, so timing does not reveal which accounts exist.
			directory.CheckPassword(dummyHash, password)
		}
		p.throttle.Fail("ip:"+ip, account)
		p.audit(store.Event{Type: "signin.fail", User: login.Username, ClientIP: ip, Detail: "wrong user name or password"})
		p.signInPage(w, r, http.StatusUnauthorized, "Wrong user name or password. Check both and try again.", typed)
		return
	}
	if u.Disabled {
		p.audit(store.Event{Type: "signin.fail", User: u.Username, ClientIP: ip, Detail: "account disabled"})
		p.signInPage(w, r, http.StatusForbidden, "Your account is disabled. Ask your administrator to enable it.", typed)
		return
	}
	p.throttle.Succeed(account)
	notice := ""
	pre2000 := s.Effective.Portal.Restrictions.PreWindows2000Login
	if (pre2000 && login.Format == "upn") || (!pre2000 && login.Format == "downlevel") {
		right := u.Username + "@" + strings.ToLower(orDefault(u.Domain, "domain"))
		if pre2000 {
			right = orDefault(u.Domain, "DOMAIN") + `\` + u.Username
		}
		notice = "This portal uses the " + map[bool]string{true: `DOMAIN\user`, false: "user@domain"}[pre2000] + " sign-in format: next time sign in as " + right + "."
	}
	value, _, err := p.sessions.Create(Session{User: u.Username, Domain: u.Domain, DisplayName: orDefault(u.DisplayName, u.Username), Groups: u.Groups, ClientIP: ip, Notice: notice})
	if err != nil {
		p.errorPage(w, r, http.StatusInternalServerError, "Sign-in failed", "The gateway could not start your session. Please try again.", "")
		return
	}
	p.audit(store.Event{Type: "signin.ok", User: u.Username, ClientIP: ip})
	http.SetCookie(w, p.cookie(r, cookieName(r)+preAuthSuffix, "", -1))
	http.SetCookie(w, p.cookie(r, cookieName(r), value, int(AbsoluteTimeout/time.Second)))
	http.Redirect(w, r, base(r)+"/", http.StatusSeeOther)
}

// dummyHash is checked against when the account does not exist.
const dummyHash = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0c2FsdA$4kNyYWsDBWRAzG6bw0X9cGaFg8fZ8ZrnYOqZcZz2ELA"

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
		p.audit(store.Event{Type: "signout", User: s.User, ClientIP: p.clientIP(r)})
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
