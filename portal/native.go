package portal

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"portico/service/config"
	"portico/service/detect"
	"portico/service/native"
	"portico/service/policy"
	"portico/service/store"
)

// nativeState is what this sign-in knows about the native client: kept on
// the portal session, so later launches do not wait again, until sign-out.
type nativeState string

// Native client states.
const (
	nativeUnknown     nativeState = ""
	nativeDetected    nativeState = "detected"
	nativeNotDetected nativeState = "not-detected"
)

// launchAction is what the portal does when the user opens a resource.
type launchAction string

// Launch actions.
const (
	// actBrowser opens the HTML5 client.
	actBrowser launchAction = "browser"
	// actNative hands the page a portico://launch URL.
	actNative launchAction = "native"
	// actAskDetect: detection has not run for this sign-in; the page runs
	// it (or asks first, in on-prompt mode) and launches again.
	actAskDetect launchAction = "ask-detect"
	// actShowDownload: native only and the client was not detected; the
	// page shows the download link and still offers the launch link.
	actShowDownload launchAction = "show-download"
	// actFallbackOffer: native-with-fallback and the client was not
	// detected; the page says so and offers "Open in browser".
	actFallbackOffer launchAction = "fallback-offer"
)

// launchInput is everything the launch decision depends on.
type launchInput struct {
	// Method is the effective launch method setting.
	Method config.LaunchMethod
	// State is this sign-in's native-client detection result.
	State nativeState
	// AllowSelect is the "allow users to select a launch method" setting.
	AllowSelect bool
	// Choice is the user's stored selection ("browser", "native" or "");
	// honoured only when AllowSelect is on.
	Choice config.LaunchMethod
	// InBrowser is set when the user accepted a fallback offer for this
	// launch; honoured only with native-with-fallback.
	InBrowser bool
}

// decideLaunch is the one place that maps settings, detection and the
// user's choice to what a launch does.
func decideLaunch(in launchInput) launchAction {
	switch in.Method {
	case config.LaunchNative:
		// Native only: the browser is never offered.
	case config.LaunchNativeWithFallback:
		if in.InBrowser || (in.AllowSelect && in.Choice == config.LaunchBrowser) {
			return actBrowser
		}
	default:
		return actBrowser
	}
	switch in.State {
	case nativeDetected:
		return actNative
	case nativeNotDetected:
		if in.Method == config.LaunchNative {
			return actShowDownload
		}
		return actFallbackOffer
	default:
		return actAskDetect
	}
}

// prefLaunchMethod is the preferences key of the user's launch method.
const prefLaunchMethod = "launchMethod"

// NativeTicketTTL is how long a native launch ticket stays valid: starting
// the URL handler and the helper takes longer than a page load.
const NativeTicketTTL = time.Minute

// detectGrace keeps a nonce a little past the page's timeout, so a probe
// that left the client in time still counts.
const detectGrace = 5 * time.Second

// nativeLaunchURL is the portico://launch URL for one launch; its query is
// the contract with portico-client's launch command: gw (where the tunnel
// connects: the alternate host/port when enabled, else the portal's own),
// fp (SHA-256 of the gateway's TLS leaf, hex), t (the single-use ticket),
// proto, name, and user (a prefill, left out when a viewer could not take
// it as a plain user name).
func nativeLaunchURL(r *http.Request, nlb config.NLBSettings, fp, ticket string, res config.Resource, user string) string {
	if strings.HasPrefix(user, "-") || strings.ContainsAny(user, " @") {
		user = "" // the client refuses such a prefill; the viewer asks instead
	}
	l := native.LaunchURL{Gateway: NativeAddr(r, nlb), Fingerprint: fp, Ticket: ticket, Proto: string(res.Protocol), Name: res.Name, User: user}
	if ra := rdpRemoteApp(res); ra != nil {
		l.App, l.AppArgs, l.AppDir = ra.Program, ra.CmdLine, ra.WorkDir
	}
	return l.String()
}

// fingerprint is the gateway's TLS leaf SHA-256 as 64 lower-case hex digits.
func (p *Portal) fingerprint() string {
	if p.Fingerprint == nil {
		return ""
	}
	return strings.ToLower(strings.ReplaceAll(p.Fingerprint(), ":", ""))
}

// launchInputFor gathers the decision's inputs for a launch request.
func (p *Portal) launchInputFor(r *http.Request, s *Session) launchInput {
	c := snap(r).Effective.Portal.Client
	in := launchInput{Method: c.LaunchMethod, State: nativeState(s.Native), AllowSelect: c.AllowUserSelect, InBrowser: r.URL.Query().Get("method") == string(config.LaunchBrowser)}
	if in.AllowSelect {
		p.Store.View(func(t *store.Tx) error {
			in.Choice = config.LaunchMethod(t.Preference(s.User, prefLaunchMethod))
			return nil
		})
	}
	return in
}

// launchNative answers a launch whose decision is not the browser. It
// returns false when the browser client should open it (the caller goes
// on with the browser launch).
func (p *Portal) launchNative(w http.ResponseWriter, r *http.Request, s *Session, res config.Resource) bool {
	act := decideLaunch(p.launchInputFor(r, s))
	if act == actBrowser {
		return false
	}
	sn := snap(r)
	reply := launchReply{Action: string(act), NewTab: sn.Effective.Portal.Client.OpenInNewTab}
	if act == actAskDetect {
		writeJSON(w, http.StatusOK, reply)
		return true
	}
	// native, show-download and fallback-offer all carry a launch URL: a
	// client installed meanwhile still opens it.
	// With native-with-fallback the page offers the browser once the
	// ticket expires unused, so it lives as long as the detection timeout
	// (plus grace). A link shown for later use lives NativeTicketTTL.
	ttl := NativeTicketTTL
	if act == actNative && sn.Effective.Portal.Client.LaunchMethod == config.LaunchNativeWithFallback {
		ttl = time.Duration(sn.Effective.Portal.Client.DetectionTimeoutSeconds)*time.Second + detectGrace
	}
	t, err := p.tickets.Issue(Ticket{
		Resource: res.ID, User: s.User, PortalSession: s.ID(), ClientIP: p.clientIP(r), ReportedIP: s.ReportedIP,
		ClientOS: policy.ClientOS(r.UserAgent()), Groups: s.Groups, Native: true,
	}, ttl)
	if err != nil {
		writeJSONError(w, http.StatusInternalServerError, "Could not issue a launch ticket. Please try again.")
		return true
	}
	user := res.Credentials.Username
	if res.Credentials.Mode == config.CredPortal || user == "" {
		user = s.User
	}
	sum := sha256.Sum256([]byte(t))
	reply.NativeURL = nativeLaunchURL(r, sn.Effective.Portal.NLB, p.fingerprint(), t, res, user)
	reply.Watch = hex.EncodeToString(sum[:])
	p.audit(store.Event{Type: "launch", User: s.User, ClientIP: p.clientIP(r), ReportedIP: s.ReportedIP, Resource: res.ID, Detail: fmt.Sprintf("native %s launch handed to the page (%s)", res.Protocol, act)})
	writeJSON(w, http.StatusOK, reply)
	return true
}

// apiNativeWatch tells the page whether the native client picked up a
// launch: "opened" once the ticket was redeemed, "pending" while it waits,
// "not-opened" when it expired unused — with native-with-fallback after
// the detection timeout — and the page then offers the browser.
func (p *Portal) apiNativeWatch(w http.ResponseWriter, r *http.Request) {
	s := p.requireSession(w, r)
	if s == nil {
		return
	}
	b, err := hex.DecodeString(r.PathValue("watch"))
	if err != nil || len(b) != sha256.Size {
		writeJSONError(w, http.StatusBadRequest, "Unknown launch.")
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"state": p.tickets.state([32]byte(b), s.ID())})
}

// detectView is the detection part of the home page.
type detectView struct {
	// Method is the effective launch method.
	Method string
	// Detection is automatic or on-prompt.
	Detection string
	// Timeout is the detection timeout in seconds.
	Timeout int
	// State is this sign-in's detection result.
	State string
	// AllowSelect offers the per-user browser/native choice.
	AllowSelect bool
	// Choice is the user's stored choice.
	Choice string
	// Downloads are the client builds the gateway can hand out.
	Downloads []clientFile
}

func (p *Portal) detectView(sn *config.Snapshot, s *Session) detectView {
	c := sn.Effective.Portal.Client
	v := detectView{Method: string(c.LaunchMethod), Detection: string(c.Detection), Timeout: c.DetectionTimeoutSeconds, State: s.Native, AllowSelect: c.AllowUserSelect && c.LaunchMethod == config.LaunchNativeWithFallback}
	if c.LaunchMethod != config.LaunchBrowser {
		v.Downloads = p.clientFiles()
	}
	if v.AllowSelect {
		p.Store.View(func(t *store.Tx) error { v.Choice = t.Preference(s.User, prefLaunchMethod); return nil })
	}
	return v
}

// apiDetectStart issues a detection nonce for this sign-in and returns the
// portico://detect URL the page opens.
func (p *Portal) apiDetectStart(w http.ResponseWriter, r *http.Request) {
	s := p.requirePageRequest(w, r)
	if s == nil {
		return
	}
	sn := snap(r)
	c := sn.Effective.Portal.Client
	if c.LaunchMethod == config.LaunchBrowser || p.Nonces == nil {
		writeJSONError(w, http.StatusConflict, "This gateway opens sessions in the browser only: there is no native client to detect.")
		return
	}
	timeout := time.Duration(c.DetectionTimeoutSeconds) * time.Second
	nonce, err := p.Nonces.Issue(s.ID(), timeout+detectGrace)
	if err != nil {
		writeJSONError(w, http.StatusServiceUnavailable, "Could not start detection: "+err.Error())
		return
	}
	p.sessions.Update(s, func(s *Session) { s.Native = string(nativeUnknown) })
	writeJSON(w, http.StatusOK, map[string]any{"url": p.detectURL(r, sn, nonce), "nonce": nonce, "timeoutSeconds": c.DetectionTimeoutSeconds})
}

// detectURL is the portico://detect URL for a nonce: gw and path say where
// the HTTP probe goes (the portal the browser is on), fp pins its
// certificate, dns is the gateway's own DNS responder (on a LAN nothing
// delegates the zone to it) and zone is what to look <n>.<zone> up under.
func (p *Portal) detectURL(r *http.Request, sn *config.Snapshot, nonce string) string {
	host, port, err := net.SplitHostPort(r.Host)
	if err != nil {
		host, port = r.Host, "443"
	}
	host = strings.Trim(host, "[]")
	q := url.Values{}
	q.Set("gw", net.JoinHostPort(host, port))
	q.Set("path", base(r))
	q.Set("fp", p.fingerprint())
	q.Set("n", nonce)
	q.Set("zone", sn.Gateway.DetectZone())
	if p.DetectDNS != nil {
		if a := p.DetectDNS(); a != "" {
			if h, dport, err := net.SplitHostPort(a); err == nil {
				if ip := net.ParseIP(h); ip != nil && !ip.IsUnspecified() && !ip.IsLoopback() {
					host = h
				}
				q.Set("dns", net.JoinHostPort(host, dport))
			}
		}
	}
	return (&url.URL{Scheme: "portico", Host: "detect", RawQuery: q.Encode()}).String()
}

// apiDetectStatus reports a detection's progress and, once it is decided,
// remembers the result on the portal session.
func (p *Portal) apiDetectStatus(w http.ResponseWriter, r *http.Request) {
	s := p.requireSession(w, r)
	if s == nil {
		return
	}
	if p.Nonces == nil {
		writeJSONError(w, http.StatusNotFound, "Detection is not available.")
		return
	}
	res, err := p.Nonces.Check(r.PathValue("nonce"), s.ID())
	switch {
	case errors.Is(err, detect.ErrExpired):
		p.sessions.Update(s, func(s *Session) { s.Native = string(nativeNotDetected) })
		p.audit(store.Event{Type: "client.detect", User: s.User, ClientIP: p.clientIP(r), Detail: "native client not detected within the timeout"})
		writeJSON(w, http.StatusOK, map[string]string{"state": string(nativeNotDetected)})
	case err != nil:
		writeJSONError(w, http.StatusNotFound, "This detection is unknown or finished: start it again.")
	case res.Detected:
		p.sessions.Update(s, func(s *Session) { s.Native = string(nativeDetected) })
		p.audit(store.Event{Type: "client.detect", User: s.User, ClientIP: p.clientIP(r), Detail: "native client detected by the " + res.Via.String() + " probe"})
		writeJSON(w, http.StatusOK, map[string]string{"state": string(nativeDetected), "via": res.Via.String()})
	default:
		writeJSON(w, http.StatusOK, map[string]string{"state": "pending"})
	}
}

// apiLaunchMethod stores the user's own launch method choice, offered only
// when the admin allows users to select one.
func (p *Portal) apiLaunchMethod(w http.ResponseWriter, r *http.Request) {
	s := p.requirePageRequest(w, r)
	if s == nil {
		return
	}
	c := snap(r).Effective.Portal.Client
	if !c.AllowUserSelect || c.LaunchMethod != config.LaunchNativeWithFallback {
		writeJSONError(w, http.StatusForbidden, "Choosing a launch method is not allowed on this portal.")
		return
	}
	var in struct {
		Method string `json:"method"`
	}
	r.Body = http.MaxBytesReader(w, r.Body, 1024)
	if err := json.NewDecoder(r.Body).Decode(&in); err != nil || (in.Method != string(config.LaunchBrowser) && in.Method != string(config.LaunchNative)) {
		writeJSONError(w, http.StatusBadRequest, `Send {"method": "browser"} or {"method": "native"}.`)
		return
	}
	if err := p.Store.Update(func(t *store.Tx) error { return t.PutPreference(s.User, prefLaunchMethod, in.Method) }); err != nil {
		writeJSONError(w, http.StatusInternalServerError, "Could not save your choice. Please try again.")
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// clientFile is a portico-client build the gateway can hand out.
type clientFile struct {
	// Name is the file name (the download URL's last part).
	Name string
	// OS is Windows or Linux, for the link text.
	OS   string
	path string
}

// clientFiles lists portico-client builds in the configured directories
// (first match of a name wins), Windows first.
func (p *Portal) clientFiles() []clientFile {
	seen := map[string]bool{}
	var out []clientFile
	for _, dir := range p.ClientDirs {
		matches, _ := filepath.Glob(filepath.Join(dir, "portico-client*"))
		for _, m := range matches {
			name := filepath.Base(m)
			if seen[name] {
				continue
			}
			if fi, err := os.Stat(m); err != nil || !fi.Mode().IsRegular() {
				continue
			}
			seen[name] = true
			osName := "Linux"
			if strings.HasSuffix(strings.ToLower(name), ".exe") {
				osName = "Windows"
			}
			out = append(out, clientFile{Name: name, OS: osName, path: m})
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].OS != out[j].OS {
			return out[i].OS == "Windows"
		}
		return out[i].Name < out[j].Name
	})
	return out
}

// clientDownload serves a portico-client build by name.
func (p *Portal) clientDownload(w http.ResponseWriter, r *http.Request) {
	if p.requireSession(w, r) == nil {
		return
	}
	name := r.PathValue("name")
	for _, f := range p.clientFiles() {
		if f.Name == name {
			w.Header().Set("Content-Disposition", `attachment; filename="`+f.Name+`"`)
			w.Header().Set("Content-Type", "application/octet-stream")
			http.ServeFile(w, r, f.path)
			return
		}
	}
	p.errorPage(w, r, http.StatusNotFound, "Client not available", "This gateway has no portico-client build called "+name+".", "Ask your administrator to put the client builds (bin/portico-client, bin/portico-client.exe) next to the gateway or in its data directory's clients folder.")
}
