package portal

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"

	"github.com/gorilla/websocket"

	"portico/service/config"
	"portico/service/policy"
	"portico/service/relay"
	"portico/service/relay/vnc"
	"portico/service/sessions"
	"portico/service/store"
)

// relayState is the portal's state for live relays.
type relayState struct {
	// files maps live sessions to their files (SFTP, the RDP drive).
	files *fileSessions
}

// relayRoutes registers the WebSocket relays and the file-transfer API.
func (p *Portal) relayRoutes(m *http.ServeMux) {
	p.relays.files = newFileSessions()
	m.HandleFunc("GET /relay/vnc", p.relayVNC)
	m.HandleFunc("GET /relay/ssh", p.relaySSH)
	m.HandleFunc("GET /relay/rdp", p.relayRDP)
	m.HandleFunc("GET /api/files/{sid}", p.filesList)
	m.HandleFunc("POST /api/files/{sid}", p.filesUpload)
	m.HandleFunc("GET /api/files/{sid}/download", p.filesDownload)
	m.HandleFunc("GET /api/files/{sid}/offers", p.filesOffers)
}

// opened is a relay request that passed every check: the ticket was
// redeemed, the resource is still assigned, and policy was decided.
type opened struct {
	ticket   Ticket
	res      config.Resource
	decision policy.Decision
	// via is how a native client came in (tunnel.Via); empty for the browser.
	via string
}

// refuseRelay audits a refused relay request and answers it.
func (p *Portal) refuseRelay(w http.ResponseWriter, r *http.Request, code int, user, reason, msg string) {
	// Anyone can present a bad ticket: aggregated like refused sign-ins.
	p.auditRefusal(store.Event{Type: "ticket.refused", User: user, ClientIP: p.clientIP(r), Detail: reason})
	p.ended.record(pageID(r), refusalReason(msg))
	http.Error(w, msg, code)
}

// relaySession checks what every relay needs before anything reaches a
// host: an allowed origin, a signed-in portal session, and an account that
// is still enabled. Refusals are answered and audited.
func (p *Portal) relaySession(w http.ResponseWriter, r *http.Request) (*Session, bool) {
	if !p.originAllowed(r) {
		p.refuseRelay(w, r, http.StatusForbidden, "", "relay request from a foreign origin "+r.Header.Get("Origin"), "origin not allowed")
		return nil, false
	}
	s := p.current(r)
	if s == nil {
		p.refuseRelay(w, r, http.StatusUnauthorized, "", "relay request without a portal session", "signed out: sign in again")
		return nil, false
	}
	if _, ok := p.account(s); !ok {
		p.refuseRelay(w, r, http.StatusForbidden, s.User, "account disabled or removed since sign-in", "your account is disabled")
		return nil, false
	}
	return s, true
}

// errNotGranted: the ticket was valid but its resource is gone, no longer
// assigned to the user, or of another protocol than the relay.
var errNotGranted = errors.New("ticket for a resource that is gone, unassigned or of another protocol")

// errNativeTicket refuses a native launch ticket on a browser relay.
var errNativeTicket = errors.New("native launch ticket used for a browser session")

// grant redeems a ticket for the session and checks its resource.
func (p *Portal) grant(r *http.Request, s *Session, ticket string, proto config.Protocol) (*opened, error) {
	t, err := p.tickets.Redeem(ticket, s.ID())
	if err != nil {
		return nil, err
	}
	// Native tickets live longer (the helper has to start); they open
	// only the native tunnel.
	if t.Native {
		return nil, errNativeTicket
	}
	sn := snap(r)
	res, ok := sn.Resource(t.Resource)
	if !ok || !isAssigned(res, s) || res.Protocol != proto {
		return nil, errNotGranted
	}
	return &opened{ticket: t, res: res, decision: p.decide(res, sn, t.User, t.Groups, t.ClientOS, t.ClientIP)}, nil
}

// admit checks a relay request whose ticket is in the URL (VNC, SSH).
func (p *Portal) admit(w http.ResponseWriter, r *http.Request, proto config.Protocol) (*opened, bool) {
	s, ok := p.relaySession(w, r)
	if !ok {
		return nil, false
	}
	o, err := p.grant(r, s, r.URL.Query().Get("ticket"), proto)
	if err != nil {
		msg := err.Error() + ": open the resource again from the portal"
		if errors.Is(err, errNotGranted) {
			msg = "this resource is no longer available to you"
		}
		p.refuseRelay(w, r, http.StatusForbidden, s.User, err.Error(), msg)
		return nil, false
	}
	return o, true
}

// originAllowed accepts WebSocket upgrades only from the portal's own
// origin or an origin CORS allows; a browser always sends Origin.
func (p *Portal) originAllowed(r *http.Request) bool {
	o := r.Header.Get("Origin")
	if o == "" {
		return false
	}
	u, err := url.Parse(o)
	if err != nil {
		return false
	}
	if strings.EqualFold(u.Host, r.Host) {
		return true
	}
	c := snap(r).Effective.Portal.Restrictions.CORS
	if c.Enabled {
		for _, a := range c.Origins {
			if strings.EqualFold(a, o) {
				return true
			}
		}
	}
	return false
}

// dialHost opens the TCP connection to the resource's host.
func (p *Portal) dialHost(ctx context.Context, res config.Resource) (net.Conn, error) {
	addr := net.JoinHostPort(res.Host, strconv.Itoa(res.Port))
	c, err := p.Dial(ctx, "tcp", addr)
	if err != nil {
		return nil, ending(sessions.ReasonHostUnreachable, fmt.Errorf("the host %s is unreachable: %w", res.Name, err))
	}
	return c, nil
}

// countingConn counts bytes read from (down) and written to (up) a host.
type countingConn struct {
	net.Conn
	up, down *atomic.Int64
}

func (c *countingConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	c.down.Add(int64(n))
	return n, err
}

func (c *countingConn) Write(b []byte) (int, error) {
	n, err := c.Conn.Write(b)
	c.up.Add(int64(n))
	return n, err
}

// SyscallConn exposes the host's socket, when there is one under c, so
// the relay can wait for the host's input without holding a buffer
// (relay.Waiter); waiting reads nothing, so nothing goes uncounted.
func (c *countingConn) SyscallConn() (syscall.RawConn, error) {
	if sc, ok := c.Conn.(syscall.Conn); ok {
		return sc.SyscallConn()
	}
	return nil, errors.ErrUnsupported
}

// closeWS sends a close frame with a reason the page can show.
func closeWS(ws *websocket.Conn, code int, reason string) {
	if len(reason) > 120 {
		reason = reason[:120]
	}
	ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(code, reason), timeNowPlus())
	ws.Close()
}

// relayVNC serves noVNC: the gateway does the RFB handshake with the host
// (answering its password challenge) and enforces clipboard direction on
// the wire.
func (p *Portal) relayVNC(w http.ResponseWriter, r *http.Request) {
	o, ok := p.admit(w, r, config.ProtocolVNC)
	if !ok {
		return
	}
	password, err := p.Secrets.Unseal(o.res.Credentials.Password)
	if err != nil {
		p.Logger.Error("unseal VNC password", "resource", o.res.ID, "err", err)
		http.Error(w, "the gateway cannot read this resource's stored password; ask the administrator to set it again", http.StatusInternalServerError)
		return
	}
	ws, err := p.upgrader(r).Upgrade(w, r, nil)
	if err != nil {
		return
	}
	p.runSession(o, pageID(r), &wsClient{ws: ws}, func(ctx context.Context, m *sessions.Session) error {
		host, err := p.dialHost(ctx, o.res)
		if err != nil {
			return err
		}
		p.keepWS(ctx, ws)
		return p.proxyVNC(ctx, relay.NewStream(ws), host, password, o, m)
	})
}

// proxyVNC relays RFB between a client (browser stream or native tunnel)
// and the host, reporting bytes and refused clipboard transfers to m.
func (p *Portal) proxyVNC(ctx context.Context, c io.ReadWriteCloser, host net.Conn, password string, o *opened, m *sessions.Session) error {
	backend := newHostSide(host, m)
	err := vnc.Proxy(ctx, c, backend, vnc.Options{Password: password, Clipboard: o.decision.Clipboard, Logger: p.Logger,
		OnCutText: func(_ vnc.Direction, _ int, allowed bool) {
			if !allowed {
				m.Refuse()
			}
		}})
	var ae *vnc.AuthError
	if errors.As(err, &ae) {
		return ending(sessions.ReasonCredentials, err)
	}
	return backend.reason(err)
}

// pageID is the session page's ID for this connection attempt, under
// which the reason the session ends is kept for the page to ask.
func pageID(r *http.Request) string { return r.URL.Query().Get("page") }
