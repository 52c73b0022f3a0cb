package portal

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"strings"

	"portico/service/config"
	"portico/service/policy"
	"portico/service/relay/rdp"
	"portico/service/store"
)

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(v)
}

func writeJSONError(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, map[string]string{"error": msg})
}

func (p *Portal) apiResources(w http.ResponseWriter, r *http.Request) {
	s := p.requireSession(w, r)
	if s == nil {
		return
	}
	writeJSON(w, http.StatusOK, p.assigned(snap(r), s))
}

// launchReply tells the page where to open the session.
type launchReply struct {
	// URL is the session page; the ticket travels in the fragment so it is
	// never sent in a Referer or logged by a proxy.
	URL string `json:"url"`
	// NewTab says whether the page may open it in a new tab.
	NewTab bool `json:"newTab"`
	// Action is what the page does: browser, native, ask-detect,
	// show-download or fallback-offer (see decideLaunch).
	Action string `json:"action"`
	// NativeURL is the portico://launch URL for the native client.
	NativeURL string `json:"nativeURL,omitempty"`
	// Watch identifies a native launch for apiNativeWatch.
	Watch string `json:"watch,omitempty"`
}

// launchTarget checks a launch request (signed in, CSRF, account still
// enabled, resource assigned) and returns its session and resource; a
// refusal is answered and audited.
func (p *Portal) launchTarget(w http.ResponseWriter, r *http.Request) (*Session, config.Resource, bool) {
	s := p.requirePageRequest(w, r)
	if s == nil {
		return nil, config.Resource{}, false
	}
	if _, ok := p.account(s); !ok {
		p.audit(store.Event{Type: "launch.refused", User: s.User, ClientIP: p.clientIP(r), Detail: "account disabled or removed since sign-in"})
		writeJSONError(w, http.StatusForbidden, "Your account is disabled or was removed. Ask your administrator.")
		return nil, config.Resource{}, false
	}
	if max := snap(r).Gateway.EffectiveSecurity().MaxSessionsPerUser; p.userSessions(s.User) >= max {
		p.audit(store.Event{Type: "launch.refused", User: s.User, ClientIP: p.clientIP(r), Resource: r.PathValue("id"), Detail: fmt.Sprintf("at most %d sessions per user", max)})
		writeJSONError(w, http.StatusTooManyRequests, fmt.Sprintf("You have %d sessions open, the most allowed. Close one and try again.", max))
		return nil, config.Resource{}, false
	}
	id := r.PathValue("id")
	res, ok := snap(r).Resource(id)
	if !ok || !isAssigned(res, s) {
		p.audit(store.Event{Type: "launch.refused", User: s.User, ClientIP: p.clientIP(r), Resource: id, Detail: "resource not assigned to the user"})
		writeJSONError(w, http.StatusForbidden, "This resource is not assigned to you (or no longer exists). Ask your administrator for access.")
		return nil, config.Resource{}, false
	}
	return s, res, true
}

// apiLaunch issues a launch ticket for an assigned resource.
func (p *Portal) apiLaunch(w http.ResponseWriter, r *http.Request) {
	s, res, ok := p.launchTarget(w, r)
	if !ok {
		return
	}
	if p.launchNative(w, r, s, res) {
		return
	}
	sn := snap(r)
	if !p.VendorBuilt() {
		writeJSONError(w, http.StatusServiceUnavailable, "The web client files are missing on the gateway: the administrator must build them (make assets).")
		return
	}
	t, err := p.tickets.Issue(Ticket{
		Resource: res.ID, User: s.User, PortalSession: s.ID(), ClientIP: p.clientIP(r), ReportedIP: s.ReportedIP,
		ClientOS: policy.ClientOS(r.UserAgent()), Groups: s.Groups,
	}, TicketTTL)
	if err != nil {
		writeJSONError(w, http.StatusInternalServerError, "Could not issue a launch ticket. Please try again.")
		return
	}
	p.audit(store.Event{Type: "launch", User: s.User, ClientIP: p.clientIP(r), ReportedIP: s.ReportedIP, Resource: res.ID, Detail: fmt.Sprintf("%s session requested", res.Protocol)})
	writeJSON(w, http.StatusOK, launchReply{URL: base(r) + "/session/" + res.ID + "#ticket=" + t, NewTab: sn.Effective.Portal.Client.OpenInNewTab, Action: string(actBrowser)})
}

// apiClientIP records the public IP the browser got from the client IP
// detection service.
func (p *Portal) apiClientIP(w http.ResponseWriter, r *http.Request) {
	s := p.requirePageRequest(w, r)
	if s == nil {
		return
	}
	var in struct {
		IP string `json:"ip"`
	}
	r.Body = http.MaxBytesReader(w, r.Body, 1024)
	if err := json.NewDecoder(r.Body).Decode(&in); err != nil || net.ParseIP(strings.TrimSpace(in.IP)) == nil {
		writeJSONError(w, http.StatusBadRequest, "Send {\"ip\": \"<address>\"}.")
		return
	}
	ip := net.ParseIP(strings.TrimSpace(in.IP)).String()
	p.sessions.Update(s, func(s *Session) { s.ReportedIP = ip })
	p.audit(store.Event{Type: "client.ip", User: s.User, ClientIP: p.clientIP(r), ReportedIP: ip, Detail: "reported by the client IP detection service"})
	w.WriteHeader(http.StatusNoContent)
}

// sessionView is what the session page gets to know.
type sessionView struct {
	Resource     resourceView
	Clipboard    config.Transfer
	FileTransfer config.Transfer
	ClipToServer bool
	ClipToClient bool
	// ClipPanel offers the clipboard panel: RDP and VNC pages only, when a
	// direction is allowed. The SSH terminal has the system clipboard
	// itself (copy and paste follow the directions), so a panel there
	// would be a second, different way to do the same.
	ClipPanel bool
	Upload    bool
	Download  bool
	// RDPUser prefills the RDP sign-in (NLA runs in the browser, so the
	// user types the password; stored passwords are never sent to it).
	RDPUser string
	// GatewaySignsIn: the gateway signs in to the host (stored or portal
	// credentials); the page starts the web client with CredSSP off.
	GatewaySignsIn bool
	// Keyboards are the keyboard layouts the RDP page offers.
	Keyboards []rdp.KeyboardLayout
	// Messages is the page's vocabulary (JSON of Messages), by reason.
	Messages string
}

// sessionPage renders the page that runs the protocol's web client. The
// ticket is read from the URL fragment by the page's script.
func (p *Portal) sessionPage(w http.ResponseWriter, r *http.Request) {
	s := p.requireSession(w, r)
	if s == nil {
		return
	}
	sn := snap(r)
	res, ok := sn.Resource(r.PathValue("id"))
	if !ok || !isAssigned(res, s) {
		p.errorPage(w, r, http.StatusForbidden, "Not assigned", "This resource is not assigned to you (or no longer exists).", "Go back to your resources and pick another one, or ask your administrator for access.")
		return
	}
	d := p.decide(res, sn, s.User, s.Groups, policy.ClientOS(r.UserAgent()), p.clientIP(r))
	v := sessionView{
		Resource:  resourceView{ID: res.ID, Name: res.Name, Icon: res.Icon, Kind: string(res.Kind), Protocol: string(res.Protocol)},
		Clipboard: d.Clipboard, FileTransfer: d.FileTransfer,
		ClipToServer: d.Clipboard.ClientToServer(), ClipToClient: d.Clipboard.ServerToClient(),
		Messages: messagesJSON(string(res.Protocol)),
	}
	v.ClipPanel = res.Protocol != config.ProtocolSSH && (v.ClipToServer || v.ClipToClient)
	// SSH sessions have a file panel through SFTP, RDP sessions through
	// the gateway's drive in the session; RFB has no file transfer, so a
	// panel there would promise nothing.
	if res.Protocol == config.ProtocolSSH || res.Protocol == config.ProtocolRDP {
		v.Upload, v.Download = d.FileTransfer.ClientToServer(), d.FileTransfer.ServerToClient()
	}
	if res.Protocol == config.ProtocolRDP {
		v.Keyboards = rdp.KeyboardLayouts()
		// The gateway signs in: the web client starts without CredSSP
		// and the page asks nothing. No credential is in the page.
		v.GatewaySignsIn = res.GatewaySignsIn()
		if !v.GatewaySignsIn {
			v.RDPUser = res.Credentials.Username
		}
	}
	p.render(w, r, http.StatusOK, "session.html", pageData{Title: res.Name, Session: s, Data: v})
}

// decide asks service/policy for the effective directions of a session.
func (p *Portal) decide(res config.Resource, sn *config.Snapshot, user string, groups []string, os, ip string) policy.Decision {
	return policy.Decide(res, sn.Effective.Portal, sn.Policies, policy.Client{
		User: user, Groups: groups, OS: os, IP: net.ParseIP(ip),
	})
}
