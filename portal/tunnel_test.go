package portal

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"portico/service/config"
	"portico/service/native"
	"portico/service/store"
	"portico/service/tunnel"
)

// nativeEnv is a portal with native launches allowed, an SSH resource whose
// "host" is a loopback echo server, alice signed in, and a tunnel server
// in front of the portal on a loopback port.
type nativeEnv struct {
	*env
	c          *http.Client
	csrf       string
	tunnelAddr string
	fp         string
}

func newNativeEnv(t *testing.T) *nativeEnv {
	e := newDetectEnv(t).env
	echo, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { echo.Close() })
	go func() {
		for {
			c, err := echo.Accept()
			if err != nil {
				return
			}
			go func() { io.Copy(c, c); c.Close() }()
		}
	}()
	err = e.st.Apply(e.live, config.DefaultGatewayID, func(tx *store.Tx) error {
		r := config.Resource{ID: "echo", Name: "Echo", Protocol: config.ProtocolSSH, Host: "127.0.0.1", Port: echo.Addr().(*net.TCPAddr).Port, Groups: []string{"staff"}}
		r.Normalize()
		return tx.PutResource(r)
	})
	if err != nil {
		t.Fatal(err)
	}
	e.editSite(func(s *config.PortalSettings) { s.Client.LaunchMethod = config.LaunchNative })

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	cfg := e.srv.TLS.Clone()
	cfg.NextProtos = []string{native.ALPN}
	srv := &tunnel.Server{Opener: e.p, TLSConfig: cfg, Logger: e.p.Logger}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go srv.ServeConn(context.Background(), c)
		}
	}()
	c := e.client()
	e.signIn(c, "alice", "alice-password")
	_, home := e.get(c, "/userportal/")
	m := regexp.MustCompile(`data-csrf="([^"]+)"`).FindStringSubmatch(home)
	if m == nil {
		t.Fatal("not signed in")
	}
	n := &nativeEnv{env: e, c: c, csrf: m[1], tunnelAddr: ln.Addr().String(), fp: native.Fingerprint(e.srv.Certificate().Raw)}
	// The portal hands out native launches once the client was detected:
	// answer the detection's HTTP probe as portico-client would.
	code, body := n.post("/userportal/api/detect")
	var start struct{ Nonce string }
	if json.Unmarshal([]byte(body), &start); code != 200 || start.Nonce == "" {
		t.Fatalf("start detection: %d %s", code, body)
	}
	resp, err := e.srv.Client().Post(e.srv.URL+"/userportal/api/detect/probe", "text/plain", strings.NewReader(start.Nonce))
	if err != nil || resp.StatusCode >= 300 {
		t.Fatalf("detection probe: %v %v", resp, err)
	}
	resp.Body.Close()
	// The page's status poll records the result on the sign-in.
	req, _ := http.NewRequest("GET", e.srv.URL+"/userportal/api/detect/"+start.Nonce, nil)
	if resp, err = c.Do(req); err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return n
}

func (n *nativeEnv) post(path string) (int, string) {
	n.t.Helper()
	req, _ := http.NewRequest("POST", n.srv.URL+path, nil)
	req.Header.Set("X-CSRF-Token", n.csrf)
	resp, err := n.c.Do(req)
	if err != nil {
		n.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func (n *nativeEnv) ticket(id string) string {
	n.t.Helper()
	code, body := n.post("/userportal/api/launch/" + id)
	var r struct{ NativeURL string }
	json.Unmarshal([]byte(body), &r)
	lu, err := native.ParseLaunchURL(r.NativeURL)
	if code != 200 || err != nil {
		n.t.Fatalf("launch %s: %d %s (%v)", id, code, body, err)
	}
	return lu.Ticket
}

func (n *nativeEnv) dial(ticket string) (net.Conn, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, proto, err := tunnel.Dial(ctx, n.tunnelAddr, n.fp, ticket)
	if err == nil && proto != "ssh" {
		c.Close()
		return nil, errors.New("gateway opened " + proto)
	}
	return c, err
}

// refusedWith checks the gateway's refusal message and its audit entry.
func (n *nativeEnv) refusedWith(err error, shown, audited string) {
	n.t.Helper()
	var ref *native.RefusedError
	if !errors.As(err, &ref) || !strings.Contains(ref.Message, shown) {
		n.t.Fatalf("refusal %v, want message containing %q", err, shown)
	}
	ev, _ := n.st.Audit(store.AuditFilter{Type: "ticket.refused"})
	for _, e := range ev {
		if strings.Contains(e.Detail, "native tunnel: "+audited) {
			return
		}
	}
	n.t.Fatalf("no ticket.refused audit entry with %q in %+v", audited, ev)
}

func TestNativeTunnelGoodTicketRelaysAndIsASession(t *testing.T) {
	n := newNativeEnv(t)
	c, err := n.dial(n.ticket("echo"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Write([]byte("ping")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 4)
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "ping" {
		t.Fatalf("echo through the tunnel: %q %v", buf, err)
	}
	// The counters are added after each write returns, which may be after
	// the echo already arrived: poll them briefly.
	live := n.p.Sessions.List()
	for deadline := time.Now().Add(10 * time.Second); len(live) == 1 && live[0].BytesUp+live[0].BytesDown < 8 && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
		live = n.p.Sessions.List()
	}
	if len(live) != 1 || live[0].Via != "tunnel" || live[0].User != "alice" || live[0].Resource != "echo" || live[0].BytesUp != 4 || live[0].BytesDown != 4 {
		t.Fatalf("live sessions %+v", live)
	}
	// The admin's disconnect ends the tunnel.
	n.p.Sessions.Disconnect(live[0].ID, "ended by the administrator")
	if _, err := io.ReadFull(c, buf); err == nil {
		t.Fatal("tunnel still open after disconnect")
	}
	var ev []store.Event
	for deadline := time.Now().Add(10 * time.Second); len(ev) == 0 && time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		ev, _ = n.st.Audit(store.AuditFilter{Type: "session.end"})
	}
	if len(ev) != 1 || !strings.Contains(ev[0].Detail, "4 bytes up, 4 bytes down") {
		t.Fatalf("session.end audit %+v", ev)
	}
}

func TestNativeTunnelRefusals(t *testing.T) {
	n := newNativeEnv(t)

	tk := n.ticket("echo")
	c, err := n.dial(tk)
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	_, err = n.dial(tk)
	n.refusedWith(err, "unknown or already used launch ticket", "unknown or already used")

	tk = n.ticket("echo")
	n.p.tickets.now = func() time.Time { return time.Now().Add(NativeTicketTTL + time.Second) }
	_, err = n.dial(tk)
	n.p.tickets.now = time.Now
	n.refusedWith(err, "launch ticket expired", "launch ticket expired")

	// A ticket whose portal sign-in has ended (signed out) is foreign now.
	tk = n.ticket("echo")
	other := n.ticket("echo")
	resp, err := n.c.PostForm(n.srv.URL+"/userportal/signout", url.Values{"csrf": {n.csrf}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	_, err = n.dial(tk)
	n.refusedWith(err, "portal sign-in has ended", "the portal sign-in of the ticket has ended")

	// Browser-only: native launches are refused before the ticket is spent.
	n.editSite(func(s *config.PortalSettings) { s.Client.LaunchMethod = config.LaunchBrowser })
	_, err = n.dial(other)
	n.refusedWith(err, "browser only", "launch method is browser only")

	if n.p.Sessions.Count() != 0 {
		t.Fatalf("a refused launch left a session: %+v", n.p.Sessions.List())
	}
}

func TestNativeTunnelAccountAndResourceChecks(t *testing.T) {
	n := newNativeEnv(t)
	tkUnassigned := n.ticket("echo")
	tkDisabled := n.ticket("echo")
	err := n.st.Apply(n.live, config.DefaultGatewayID, func(tx *store.Tx) error {
		r, _ := tx.Resource("echo")
		r.Groups = []string{}
		r.Users = []string{"bob"}
		return tx.PutResource(r)
	})
	if err != nil {
		t.Fatal(err)
	}
	_, err = n.dial(tkUnassigned)
	n.refusedWith(err, "no longer available to you", "ticket for a resource that is gone, unassigned")

	n.st.Apply(n.live, config.DefaultGatewayID, func(tx *store.Tx) error {
		u, _ := tx.User("alice")
		u.Disabled = true
		return tx.PutUser(u)
	})
	_, err = n.dial(tkDisabled)
	n.refusedWith(err, "account is disabled", "account disabled")

	// The .rdp path opens RDP resources only, whatever the ticket.
	n2 := newNativeEnv(t)
	_, err = n2.p.OpenTunnel(context.Background(), tunnel.Request{Ticket: n2.ticket("echo"), ClientIP: "127.0.0.1", Via: tunnel.ViaRDPFile})
	if err == nil || !strings.Contains(err.Error(), "no longer available") {
		t.Fatalf("ssh resource through the .rdp path: %v", err)
	}
}

func TestRDPFileDownload(t *testing.T) {
	n := newNativeEnv(t)
	err := n.st.Apply(n.live, config.DefaultGatewayID, func(tx *store.Tx) error {
		r := config.Resource{ID: "pc", Name: "Office PC / 2", Protocol: config.ProtocolRDP, Host: "127.0.0.1", Groups: []string{"staff"},
			Credentials: config.Credentials{Mode: config.CredPortal}}
		r.Normalize()
		return tx.PutResource(r)
	})
	if err != nil {
		t.Fatal(err)
	}
	if code, body := n.post("/userportal/api/launch/pc/rdp-file"); code != http.StatusConflict || !strings.Contains(body, "alternate port") {
		t.Fatalf("rdp file without the alternate port: %d %s", code, body)
	}
	if _, home := n.get(n.c, "/userportal/"); strings.Contains(home, "data-rdpfile") {
		t.Fatal("home offers .rdp files while the alternate port is off")
	}
	n.editSite(func(s *config.PortalSettings) {
		s.NLB.AlternatePortEnabled, s.NLB.AlternatePort = true, 14443
		s.NLB.AlternateHostEnabled, s.NLB.AlternateHost = true, "rdp.example.test"
	})
	if _, home := n.get(n.c, "/userportal/"); !strings.Contains(home, `data-rdpfile="pc"`) || strings.Contains(home, `data-rdpfile="echo"`) {
		t.Fatal("home should offer an .rdp file for the RDP resource only")
	}
	if code, _ := n.post("/userportal/api/launch/echo/rdp-file"); code != http.StatusBadRequest {
		t.Fatalf("rdp file for an SSH resource: %d", code)
	}
	req, _ := http.NewRequest("POST", n.srv.URL+"/userportal/api/launch/pc/rdp-file", nil)
	req.Header.Set("X-CSRF-Token", n.csrf)
	resp, err := n.c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/x-rdp" || !strings.Contains(resp.Header.Get("Content-Disposition"), `filename="Office-PC---2.rdp"`) {
		t.Fatalf("rdp file: %d %v", resp.StatusCode, resp.Header)
	}
	m := regexp.MustCompile(`(?m)^loadbalanceinfo:s:(\S+)\r$`).FindStringSubmatch(string(b))
	if !strings.Contains(string(b), "full address:s:rdp.example.test:14443\r\n") || !strings.Contains(string(b), "username:s:alice\r\n") || m == nil {
		t.Fatalf("rdp file body:\n%s", b)
	}
	// Its ticket lives for minutes, not the browser's seconds, and is single-use.
	n.p.tickets.now = func() time.Time { return time.Now().Add(2 * time.Minute) }
	defer func() { n.p.tickets.now = time.Now }()
	if _, err := n.p.tickets.Redeem(m[1], ""); err != nil {
		t.Fatalf("rdp file ticket after 2 minutes: %v", err)
	}
	if _, err := n.p.tickets.Redeem(m[1], ""); !errors.Is(err, ErrTicketUnknown) {
		t.Fatalf("rdp file ticket reused: %v", err)
	}
}

func TestNativeAddr(t *testing.T) {
	for _, tc := range []struct {
		host string
		nlb  config.NLBSettings
		want string
	}{
		{"portal.example.test:8443", config.NLBSettings{AlternatePort: 4443}, "portal.example.test:8443"},
		{"portal.example.test", config.NLBSettings{AlternatePort: 4443}, "portal.example.test:443"},
		{"portal.example.test:8443", config.NLBSettings{AlternatePortEnabled: true, AlternatePort: 4443}, "portal.example.test:4443"},
		{"[::1]:8443", config.NLBSettings{AlternateHostEnabled: true, AlternateHost: "nlb.example.test", AlternatePortEnabled: true, AlternatePort: 9000}, "nlb.example.test:9000"},
		{"10.0.0.1:443", config.NLBSettings{AlternateHostEnabled: true, AlternateHost: "nlb.example.test", AlternatePort: 4443}, "nlb.example.test:443"},
	} {
		r, _ := http.NewRequest("GET", "https://x/", nil)
		r.Host = tc.host
		if got := NativeAddr(r, tc.nlb); got != tc.want {
			t.Errorf("NativeAddr(%s, %+v) = %s, want %s", tc.host, tc.nlb, got, tc.want)
		}
	}
}

// Tickets are bound to their path: a browser ticket does not open the
// native tunnel, and a native one (longer-lived) opens no browser relay.
func TestTicketKindsDoNotCross(t *testing.T) {
	n := newNativeEnv(t)
	// alice's portal sign-in, as a redeemed native ticket names it.
	probe, err := n.p.tickets.Redeem(n.ticket("echo"), "")
	if err != nil {
		t.Fatal(err)
	}
	sess := n.p.sessions.ByID(probe.PortalSession)
	browserTk, err := n.p.tickets.Issue(Ticket{Resource: "echo", User: "alice", PortalSession: sess.ID(), Groups: []string{"staff"}}, TicketTTL)
	if err != nil {
		t.Fatal(err)
	}
	_, err = n.dial(browserTk)
	n.refusedWith(err, "this launch ticket is for the browser", "a browser launch ticket on the native tunnel")

	nativeTk := n.ticket("echo")
	req := httptest.NewRequest("GET", "/userportal/relay/ssh", nil)
	req = req.WithContext(context.WithValue(req.Context(), keySnap, n.live.Load()))
	if _, err := n.p.grant(req, sess, nativeTk, config.ProtocolSSH); !errors.Is(err, errNativeTicket) {
		t.Fatalf("a native ticket on a browser relay: %v, want errNativeTicket", err)
	}
}

// TestRDPFileRemoteApp: a resource's RemoteApp program reaches the .rdp
// file, so a stock client opens that program alone; without one the file
// opens the desktop.
func TestRDPFileRemoteApp(t *testing.T) {
	got := RDPFile("gw.example.test:4443", "tok", "alice", "||notepad", "Notepad")
	for _, want := range []string{"remoteapplicationmode:i:1\r\n", "remoteapplicationprogram:s:||notepad\r\n", "remoteapplicationname:s:Notepad\r\n"} {
		if !strings.Contains(got, want) {
			t.Errorf("RemoteApp .rdp file lacks %q:\n%s", want, got)
		}
	}
	if desk := RDPFile("gw.example.test:4443", "tok", "alice", "", "Desk"); strings.Contains(desk, "remoteapplication") {
		t.Errorf("a desktop's .rdp file asks for RemoteApp:\n%s", desk)
	}
}
