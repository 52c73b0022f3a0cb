package portal

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"portico/service/config"
	"portico/service/native"
	"portico/service/policy"
	"portico/service/relay"
	"portico/service/sessions"
	"portico/service/store"
	"portico/service/tunnel"
)

// RDPFileTicketTTL is how long the ticket in a downloaded .rdp file stays
// valid: long enough to find the file and open it, still single-use.
const RDPFileTicketTTL = 5 * time.Minute

// OpenTunnel admits a native launch (portal is the gateway's
// tunnel.Opener). It applies the browser relays' checks: the ticket is
// single-use and unexpired, the portal sign-in it was issued to is still
// live, the account is still enabled and the resource still assigned; the
// launch method must allow native clients. Then it connects to the host:
//
//   - SSH: the host's port, raw; the user's own ssh authenticates.
//   - VNC: through the gateway's RFB proxy, which answers the host's
//     password with the stored one and enforces the clipboard directions;
//     the viewer connects with no authentication.
//   - RDP: the host's port, raw (TLS/NLA run end to end between the viewer
//     and the host).
//
// The gateway cannot see inside native SSH and RDP streams, so clipboard
// and file-transfer directions are enforced only for browser sessions
// (and for VNC); the session's audit entry records the decision anyway.
func (p *Portal) OpenTunnel(ctx context.Context, r tunnel.Request) (*tunnel.Opened, error) {
	sn := p.Live.Load()
	refuse := func(user, reason string, shown error) error {
		p.auditRefusal(store.Event{Type: "ticket.refused", User: user, ClientIP: r.ClientIP, Detail: "native " + string(r.Via) + ": " + reason})
		return shown
	}
	if !sn.Effective.PortalAvailable {
		return nil, refuse("", "User Portal unavailable", fmt.Errorf("the User Portal is unavailable: %s", sn.Effective.Reason))
	}
	if sn.Effective.Portal.Client.LaunchMethod == config.LaunchBrowser {
		return nil, refuse("", "launch method is browser only", errors.New("this gateway opens sessions in the browser only: open the resource from the portal"))
	}
	t, err := p.tickets.Redeem(r.Ticket, "")
	if err != nil {
		return nil, refuse("", err.Error(), fmt.Errorf("%v: open the resource again from the portal", err))
	}
	if !t.Native {
		return nil, refuse(t.User, "a browser launch ticket on the native tunnel", errors.New("this launch ticket is for the browser: open the resource again from the portal"))
	}
	s := p.sessions.ByID(t.PortalSession)
	if s == nil || !strings.EqualFold(s.User, t.User) {
		return nil, refuse(t.User, "the portal sign-in of the ticket has ended", errors.New("your portal sign-in has ended: sign in again and open the resource again"))
	}
	if _, ok := p.account(s); !ok {
		return nil, refuse(t.User, "account disabled or removed since sign-in", errors.New("your account is disabled"))
	}
	res, ok := sn.Resource(t.Resource)
	if !ok || !isAssigned(res, s) || (r.Via == tunnel.ViaRDPFile && res.Protocol != config.ProtocolRDP) {
		return nil, refuse(t.User, errNotGranted.Error(), errors.New("this resource is no longer available to you"))
	}
	if r.ClientIP != "" {
		t.ClientIP = r.ClientIP
	}
	o := &opened{ticket: t, res: res, decision: p.decide(res, sn, t.User, t.Groups, t.ClientOS, t.ClientIP), via: string(r.Via)}
	var password string
	if res.Protocol == config.ProtocolVNC {
		if password, err = p.Secrets.Unseal(res.Credentials.Password); err != nil {
			p.Logger.Error("unseal VNC password", "resource", res.ID, "err", err)
			return nil, errors.New("the gateway cannot read this resource's stored password; ask the administrator to set it again")
		}
	}
	host, err := p.dialHost(ctx, res)
	if err != nil {
		p.audit(store.Event{Type: "session.fail", User: t.User, ClientIP: t.ClientIP, Resource: res.ID, Detail: "native " + string(r.Via) + ": " + err.Error()})
		return nil, err
	}
	serve := func(ctx context.Context, client io.ReadWriteCloser) error {
		// The tunnel's own ctx (gateway shutdown) ends the session too.
		stop := context.AfterFunc(ctx, func() { client.Close() })
		defer stop()
		return p.runSession(o, "", tunnelClient{client}, func(ctx context.Context, m *sessions.Session) error {
			if res.Protocol == config.ProtocolVNC {
				return p.proxyVNC(ctx, client, host, password, o, m)
			}
			backend := newHostSide(host, m)
			return backend.reason(relay.Pipe(ctx, client, backend, nil))
		})
	}
	return &tunnel.Opened{Protocol: string(res.Protocol), Serve: serve, Abort: func() { host.Close() }}, nil
}

// NativeAddr is where native clients reach this gateway (host:port): the
// alternate host name and port when enabled, else the host and port the
// browser used for the portal. The launch URL's gw and the .rdp file's
// full address both come from here.
func NativeAddr(r *http.Request, nlb config.NLBSettings) string {
	host, port, err := net.SplitHostPort(r.Host)
	if err != nil {
		host, port = r.Host, "443"
	}
	if nlb.AlternateHostEnabled && nlb.AlternateHost != "" {
		host = nlb.AlternateHost
	}
	if nlb.AlternatePortEnabled {
		port = strconv.Itoa(nlb.AlternatePort)
	}
	return net.JoinHostPort(host, port)
}

// apiRDPFile answers "Download .rdp" for stock RDP clients (mstsc, Remmina,
// xfreerdp): the file points at the alternate port and carries a fresh
// single-use ticket as its loadbalanceinfo, which the client sends as the
// routing token of its first packet. Offered only when native clients are
// allowed and the alternate port is on (plain RDP cannot use the portal's
// HTTPS port).
func (p *Portal) apiRDPFile(w http.ResponseWriter, r *http.Request) {
	s, res, ok := p.launchTarget(w, r)
	if !ok {
		return
	}
	sn := snap(r)
	switch {
	case res.Protocol != config.ProtocolRDP:
		writeJSONError(w, http.StatusBadRequest, "Only RDP resources can be downloaded as an .rdp file.")
		return
	case sn.Effective.Portal.Client.LaunchMethod == config.LaunchBrowser:
		writeJSONError(w, http.StatusForbidden, "This gateway opens sessions in the browser only.")
		return
	case !sn.Effective.Portal.NLB.AlternatePortEnabled:
		writeJSONError(w, http.StatusConflict, "Downloading .rdp files needs the gateway's alternate port: ask the administrator to enable it (User Portal › Network Load Balancer access).")
		return
	}
	t, err := p.tickets.Issue(Ticket{
		Resource: res.ID, User: s.User, PortalSession: s.ID(), ClientIP: p.clientIP(r), ReportedIP: s.ReportedIP,
		ClientOS: policy.ClientOS(r.UserAgent()), Groups: s.Groups, Native: true,
	}, RDPFileTicketTTL)
	if err != nil {
		writeJSONError(w, http.StatusInternalServerError, "Could not issue a launch ticket. Please try again.")
		return
	}
	user := res.Credentials.Username
	if res.Credentials.Mode == config.CredPortal {
		user = s.User
	}
	p.audit(store.Event{Type: "launch", User: s.User, ClientIP: p.clientIP(r), ReportedIP: s.ReportedIP, Resource: res.ID, Detail: "rdp file downloaded"})
	w.Header().Set("Content-Type", "application/x-rdp")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Content-Disposition", `attachment; filename="`+rdpFileName(res.Name)+`"`)
	d := p.decide(res, sn, s.User, s.Groups, policy.ClientOS(r.UserAgent()), p.clientIP(r))
	io.WriteString(w, RDPFile(NativeAddr(r, sn.Effective.Portal.NLB), t, user, res, d.FileTransfer))
}

// RDPFile is the text of an .rdp file that opens the session behind
// ticket through the gateway at addr (host:port); an application resource
// opens its program in RemoteApp mode. files is the effective file-transfer
// set: the client redirects its drives only when it allows something. That
// is advisory: the tunnel passes TLS end to end, so the gateway cannot see
// or stop what a native client's drive carries.
func RDPFile(addr, ticket, user string, res config.Resource, files config.Transfer) string {
	drives := ""
	if files.ClientToServer() || files.ServerToClient() {
		drives = "*"
	}
	return native.RDPFile{FullAddress: addr, LoadBalanceInfo: ticket, Username: user, PromptForCredentials: true,
		AuthenticationLevel: 2, ScreenModeID: 2, RemoteApp: rdpRemoteApp(res), DriveStoreRedirect: &drives}.String()
}

// rdpRemoteApp is the RemoteApp part of a native launch of res, nil for a
// desktop.
func rdpRemoteApp(res config.Resource) *native.RDPRemoteApp {
	ra := res.RemoteApp
	if ra == nil || ra.Program == "" || res.Protocol != config.ProtocolRDP {
		return nil
	}
	return &native.RDPRemoteApp{Program: ra.Program, Name: res.Name, CmdLine: ra.Args, WorkDir: ra.WorkDir}
}

// rdpFileName makes a safe file name from a resource name.
func rdpFileName(name string) string {
	f := strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.' {
			return r
		}
		return '-'
	}, name)
	f = strings.Trim(f, "-.")
	if f == "" {
		f = "session"
	}
	return f + ".rdp"
}
