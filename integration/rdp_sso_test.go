package integration

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf16"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"portico/service/relay/rdp"
	"portico/service/relay/rdp/nla"
)

// credSSPWith runs the gateway's CredSSP client against the host at port
// with creds and returns its error; on success it also checks that the
// host keeps the connection open for the MCS phase.
func credSSPWith(t *testing.T, port int, creds nla.Credentials) error {
	t.Helper()
	c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(60 * time.Second))
	if _, err := c.Write(rdp.BuildConnectionRequest("", rdp.ProtocolSSL|rdp.ProtocolHybrid)); err != nil {
		t.Fatal(err)
	}
	raw, err := rdp.ReadTPKT(c, 1024)
	if err != nil {
		t.Fatal(err)
	}
	cc, err := rdp.ParseConnectionConfirm(raw)
	if err != nil || cc.Protocol != rdp.ProtocolHybrid {
		t.Fatalf("confirm %+v, %v: the host did not choose NLA", cc, err)
	}
	tc := tls.Client(c, &tls.Config{InsecureSkipVerify: true})
	if err := tc.Handshake(); err != nil {
		t.Fatal(err)
	}
	pub, err := nla.SubjectPublicKey(tc.ConnectionState().PeerCertificates[0])
	if err != nil {
		t.Fatal(err)
	}
	if err := nla.Exchange(tc, creds, pub, nil); err != nil {
		return err
	}
	tc.SetReadDeadline(time.Now().Add(time.Second))
	var b [1]byte
	if _, err := tc.Read(b[:]); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("after CredSSP the host sent or closed (%v) instead of waiting for the MCS Connect Initial", err)
	}
	return nil
}

// TestCredSSPRoundTripWithFreeRDPShadow: MS-CSSP has no published
// vectors, so the exchange (TSRequest v6, nonce, binding hash, sealed
// TSPasswordCreds) is proven against FreeRDP's server: the right password
// passes, a wrong one is refused, both with and without a domain.
func TestCredSSPRoundTripWithFreeRDPShadow(t *testing.T) {
	srv := startRDPWith(t, "#00c000", "test:test", "alice:alice-password:OFFICE")
	if err := credSSPWith(t, srv.Port, nla.Credentials{User: "test", Password: "test"}); err != nil {
		t.Fatalf("right password: %v", err)
	}
	if err := credSSPWith(t, srv.Port, nla.Credentials{User: "alice", Domain: "OFFICE", Password: "alice-password"}); err != nil {
		t.Fatalf("right password with a domain: %v", err)
	}
	if err := credSSPWith(t, srv.Port, nla.Credentials{User: "test", Password: "wrong"}); !errors.Is(err, nla.ErrRefused) {
		t.Fatalf("wrong password: err = %v, want ErrRefused", err)
	}
}

// browserWire records everything the browser received (every HTTP response
// body, every WebSocket frame) and sent over WebSockets, through the
// DevTools protocol.
type browserWire struct {
	mu       sync.Mutex
	requests []network.RequestID
	frames   [][]byte // received and sent WebSocket payloads, decoded
}

func recordBrowserWire(t *testing.T, ctx context.Context) *browserWire {
	t.Helper()
	w := &browserWire{}
	chromedp.ListenTarget(ctx, func(ev any) {
		w.mu.Lock()
		defer w.mu.Unlock()
		frame := func(f *network.WebSocketFrame) {
			b := []byte(f.PayloadData)
			if f.Opcode == 2 { // binary frames arrive base64-encoded
				if d, err := base64.StdEncoding.DecodeString(f.PayloadData); err == nil {
					b = d
				}
			}
			w.frames = append(w.frames, b)
		}
		switch ev := ev.(type) {
		case *network.EventLoadingFinished:
			w.requests = append(w.requests, ev.RequestID)
		case *network.EventWebSocketFrameReceived:
			frame(ev.Response)
		case *network.EventWebSocketFrameSent:
			frame(ev.Response)
		}
	})
	run(t, ctx, 10*time.Second, network.Enable())
	return w
}

// contains reports where secret (as UTF-8 or UTF-16LE, as RDP carries
// it) appears in what the browser received or sent; "" when nowhere.
func (w *browserWire) contains(t *testing.T, ctx context.Context, secret string) string {
	t.Helper()
	w.mu.Lock()
	reqs, frames := append([]network.RequestID(nil), w.requests...), append([][]byte(nil), w.frames...)
	w.mu.Unlock()
	forms := [][]byte{[]byte(secret), utf16LE(secret)}
	hit := func(b []byte) bool {
		for _, f := range forms {
			if bytes.Contains(b, f) {
				return true
			}
		}
		return false
	}
	bodies := 0
	for _, id := range reqs {
		var body []byte
		err := chromedp.Run(ctx, chromedp.ActionFunc(func(ctx context.Context) (err error) {
			body, err = network.GetResponseBody(id).Do(ctx)
			return err
		}))
		if err != nil {
			continue // a redirect or a response without a body
		}
		bodies++
		if hit(body) {
			return fmt.Sprintf("HTTP response %s", id)
		}
	}
	if bodies == 0 || len(frames) < 20 {
		t.Fatalf("only %d response bodies and %d WebSocket frames recorded: the capture did not work", bodies, len(frames))
	}
	for i, f := range frames {
		if hit(f) {
			return fmt.Sprintf("WebSocket frame %d of %d", i, len(frames))
		}
	}
	return ""
}

func utf16LE(s string) []byte {
	var b []byte
	for _, r := range utf16.Encode([]rune(s)) {
		b = binary.LittleEndian.AppendUint16(b, r)
	}
	return b
}

const storedSecret = "St0red-Secret-9137"

// ssoOffice starts a green NLA host that knows the service account and
// alice's own account, and a gateway with one resource per mode.
func ssoOffice(t *testing.T) (rdpServer, *portico) {
	srv := startRDPWith(t, "#00c000", "svc:"+storedSecret, "alice:alice-password:OFFICE")
	p := startPortico(t)
	p.seedUser(t)
	p.do(t, "POST", "/api/v1/resources", map[string]any{"id": "stored", "name": "Office (stored)", "protocol": "rdp", "host": "127.0.0.1",
		"port": srv.Port, "groups": []string{"staff"}, "credentials": map[string]any{"mode": "stored", "username": "svc", "password": storedSecret}}, nil)
	p.do(t, "POST", "/api/v1/resources", map[string]any{"id": "mine", "name": "Office (my sign-in)", "protocol": "rdp", "host": "127.0.0.1",
		"port": srv.Port, "groups": []string{"staff"}, "credentials": map[string]any{"mode": "portal"}}, nil)
	return srv, p
}

// openSignedIn opens a resource the gateway signs in to and waits for the
// host's green screen, failing if the page asked for anything.
func openSignedIn(t *testing.T, ctx context.Context, p *portico, srv rdpServer, id string) {
	t.Helper()
	run(t, ctx, 20*time.Second, chromedp.Navigate(p.URL+"/userportal/"), chromedp.WaitVisible(`#home`, chromedp.ByID))
	openResource(t, ctx, id)
	waitJS(t, ctx, 40*time.Second, `document.body.dataset.state === 'on' || document.body.dataset.state === 'off'`, "RDP session state")
	var prompt bool
	run(t, ctx, 5*time.Second, chromedp.Evaluate(`!document.getElementById('rdp-login').hidden`, &prompt))
	if prompt {
		t.Fatal("the page asked for credentials although the gateway signs in")
	}
	waitJS(t, ctx, 5*time.Second, `document.body.dataset.state === 'on'`, "RDP session connected without a prompt")
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		for i := 0; i < 30; i++ {
			c := []string{"#000080", "#00c000"}[i%2]
			if i > 1 {
				c = "#00c000"
			}
			exec.Command("xsetroot", "-display", srv.Display, "-solid", c).Run()
			select {
			case <-stop:
				return
			case <-time.After(time.Second):
			}
		}
	}()
	waitJS(t, ctx, 30*time.Second, `(() => { const c = window.__portico.canvas; if (!c || c.width < 100) return false;
		const d = c.getContext('2d').getImageData(c.width/2, c.height/2, 1, 1).data; return d[1] > 150 && d[0] < 60 && d[2] < 60; })()`, "the host's green screen in the canvas")
}

// TestRDPSSOStoredAndPortalReachPixelsWithoutPrompt: with stored and with
// portal credentials the session reaches the NLA host's pixels with no
// prompt and no typing, the audit names the mode, and neither password
// is anywhere in what the browser received or sent.
func TestRDPSSOStoredAndPortalReachPixelsWithoutPrompt(t *testing.T) {
	srv, p := ssoOffice(t)
	ctx := browser(t)
	w := recordBrowserWire(t, ctx)
	signIn(t, ctx, p)

	openSignedIn(t, ctx, p, srv, "stored")
	screenshot(t, ctx, "rdp-sso-stored")
	openSignedIn(t, ctx, p, srv, "mine")

	ev := auditEvents(t, p, "session.signin")
	if len(ev) != 2 {
		t.Fatalf("sign-in audit %v, want one per session", ev)
	}
	details := fmt.Sprint(ev)
	if !strings.Contains(details, `stored credentials of svc`) || !strings.Contains(details, `portal sign-in of OFFICE\alice`) || !strings.Contains(details, "NLA by the gateway") {
		t.Fatalf("sign-in audit does not say which mode signed in: %s", details)
	}
	var all []map[string]any
	p.do(t, "GET", "/api/v1/audit", nil, &all)
	if strings.Contains(fmt.Sprint(all), storedSecret) {
		t.Fatal("the stored password is in the audit log")
	}
	if where := w.contains(t, ctx, storedSecret); where != "" {
		t.Fatalf("the stored password reached the browser: %s", where)
	}
	var res map[string]any
	p.do(t, "GET", "/api/v1/resources/stored", nil, &res)
	if strings.Contains(fmt.Sprint(res), storedSecret) {
		t.Fatal("the admin API returned the stored password")
	}
}

// TestRDPSSOWrongStoredPasswordShowsItsMessage: the host refuses the
// stored password; the page says so once, the audit records it, and the
// gateway does not try again by itself.
func TestRDPSSOWrongStoredPasswordShowsItsMessage(t *testing.T) {
	srv := startRDPWith(t, "#00c000", "svc:"+storedSecret)
	p := startPortico(t)
	p.seedUser(t)
	p.do(t, "POST", "/api/v1/resources", map[string]any{"id": "stored", "name": "Office (stored)", "protocol": "rdp", "host": "127.0.0.1",
		"port": srv.Port, "groups": []string{"staff"}, "credentials": map[string]any{"mode": "stored", "username": "svc", "password": "not-the-password"}}, nil)
	ctx := browser(t)
	signIn(t, ctx, p)
	openResource(t, ctx, "stored")
	waitJS(t, ctx, 40*time.Second, `document.body.dataset.state === 'off'`, "refused sign-in shown")
	var msg string
	run(t, ctx, 5*time.Second, chromedp.Text(`#overlay-msg`, &msg, chromedp.ByID))
	if msg != "The remote computer refused the stored credentials — ask your administrator." {
		t.Fatalf("a wrong stored password shows %q", msg)
	}
	time.Sleep(3 * time.Second)
	fails := auditEvents(t, p, "session.fail")
	if len(fails) != 1 || !strings.Contains(fmt.Sprint(fails), "refused the credentials") {
		t.Fatalf("session.fail audit %v, want exactly one refusal", fails)
	}
}

// TestRDPSSONLAHostWithoutStoredPassword: a stored account without a
// password cannot sign in to an NLA host; the page says why, no prompt.
func TestRDPSSONLAHostWithoutStoredPassword(t *testing.T) {
	srv := startRDPWith(t, "#00c000", "svc:"+storedSecret)
	p := startPortico(t)
	p.seedUser(t)
	p.do(t, "POST", "/api/v1/resources", map[string]any{"id": "stored", "name": "Office (stored)", "protocol": "rdp", "host": "127.0.0.1",
		"port": srv.Port, "groups": []string{"staff"}, "credentials": map[string]any{"mode": "stored", "username": "svc"}}, nil)
	ctx := browser(t)
	signIn(t, ctx, p)
	openResource(t, ctx, "stored")
	waitJS(t, ctx, 40*time.Second, `document.body.dataset.state === 'off'`, "missing password shown")
	var msg string
	run(t, ctx, 5*time.Second, chromedp.Text(`#overlay-msg`, &msg, chromedp.ByID))
	if !strings.Contains(msg, "requires Network Level Authentication and the gateway has no password") {
		t.Fatalf("an NLA host without a stored password shows %q", msg)
	}
}

// openResource clicks a resource's Open button once the page's script is
// ready for it, and waits for the session page.
func openResource(t *testing.T, ctx context.Context, id string) {
	t.Helper()
	sel := fmt.Sprintf(`button.open[data-id=%q]`, id)
	run(t, ctx, 20*time.Second, chromedp.WaitVisible(sel, chromedp.ByQuery))
	waitJS(t, ctx, 10*time.Second, `document.readyState === 'complete'`, "portal page loaded")
	run(t, ctx, 10*time.Second, chromedp.Evaluate(fmt.Sprintf(`document.querySelector(%q).click(); true`, sel), nil))
	waitJS(t, ctx, 20*time.Second, `document.getElementById('session') !== null`, "session page for "+id)
}

// TestRDPSSOXrdpTLSOnlyOpensWithoutLoginScreen: xrdp offers TLS only, so
// the gateway does no NLA; the Client Info autologon alone takes the
// session past xrdp's login screen straight to its desktop. (With "ask"
// the same host stops at its login screen and this test fails.)
func TestRDPSSOXrdpTLSOnlyOpensWithoutLoginScreen(t *testing.T) {
	srv := startXRDP(t)
	p := startPortico(t)
	p.seedUser(t)
	p.do(t, "POST", "/api/v1/resources", map[string]any{"id": "desk", "name": "Linux desktop", "protocol": "rdp", "host": "127.0.0.1",
		"port": srv.Port, "groups": []string{"staff"}, "credentials": map[string]any{"mode": "stored", "username": "test", "password": storedSecret}}, nil)
	exec.Command("xsetroot", "-display", srv.Display, "-solid", "#c00000").Run()
	ctx := browser(t)
	signIn(t, ctx, p)
	openResource(t, ctx, "desk")
	waitJS(t, ctx, 40*time.Second, `document.body.dataset.state === 'on'`, "xrdp session connected")
	// Nothing is typed: the VNC backend behind xrdp's login is reached.
	waitFor(t, 30*time.Second, "xrdp's VNC backend connected without its login screen", func() bool {
		return strings.Contains(srv.log(), "VNC connection complete, connected ok")
	})
	waitJS(t, ctx, 30*time.Second, `(() => { const c = window.__portico.canvas; if (!c || c.width < 100) return false;
		const d = c.getContext('2d').getImageData(c.width/2, c.height/2, 1, 1).data; return d[0] > 150 && d[1] < 60 && d[2] < 60; })()`, "the Xvnc desktop's red in the canvas")
	ev := auditEvents(t, p, "session.signin")
	if len(ev) != 1 || !strings.Contains(fmt.Sprint(ev), "TLS, Client Info autologon") {
		t.Fatalf("sign-in audit %v", ev)
	}
}

// TestRemoteAppBrowserSessionSetsTheInitialProgram: an application opened
// in the browser reaches the host with its program as the Client Info's
// alternate shell and working directory, as xrdp's own log records them.
func TestRemoteAppBrowserSessionSetsTheInitialProgram(t *testing.T) {
	srv := startXRDP(t)
	p := startPortico(t)
	p.seedUser(t)
	p.do(t, "POST", "/api/v1/resources", map[string]any{"id": "term", "name": "Terminal", "kind": "application", "protocol": "rdp", "host": "127.0.0.1",
		"port": srv.Port, "groups": []string{"staff"}, "credentials": map[string]any{"mode": "stored", "username": "test", "password": storedSecret},
		"remoteApp": map[string]any{"program": "||xterm", "path": "/usr/bin/xterm", "args": "-title portico", "workDir": "/tmp"}}, nil)
	ctx := browser(t)
	signIn(t, ctx, p)
	openResource(t, ctx, "term")
	waitJS(t, ctx, 40*time.Second, `document.body.dataset.state === 'on'`, "xrdp session connected")
	waitFor(t, 20*time.Second, "the alternate shell in xrdp's log", func() bool {
		return strings.Contains(srv.log(), "Client supplied program: /usr/bin/xterm -title portico")
	})
	if !strings.Contains(srv.log(), "Client supplied directory: /tmp") {
		t.Fatal("xrdp did not receive the working directory")
	}
}

// TestRemoteAppPortalListsApplicationsAndDesktopsApart: the portal shows
// applications and desktops under their own headings, each card with its
// icon, and an RDP application's card says how it opens in the browser.
func TestRemoteAppPortalListsApplicationsAndDesktopsApart(t *testing.T) {
	p := startPortico(t)
	p.seedUser(t)
	for _, r := range []map[string]any{
		{"id": "word", "name": "Word", "kind": "application", "icon": "office", "protocol": "rdp", "host": "127.0.0.1", "groups": []string{"staff"},
			"credentials": map[string]any{"mode": "portal"}, "remoteApp": map[string]any{"program": "||winword"}},
		{"id": "calc", "name": "Spreadsheets", "kind": "application", "icon": "chart", "protocol": "rdp", "host": "127.0.0.1", "groups": []string{"staff"},
			"credentials": map[string]any{"mode": "portal"}, "remoteApp": map[string]any{"program": "||excel"}},
		{"id": "desk", "name": "Office desktop", "protocol": "rdp", "host": "127.0.0.1", "groups": []string{"staff"}, "credentials": map[string]any{"mode": "portal"}},
		{"id": "build", "name": "Build server", "kind": "desktop", "protocol": "ssh", "host": "127.0.0.1", "groups": []string{"staff"}},
	} {
		p.do(t, "POST", "/api/v1/resources", r, nil)
	}
	ctx := browser(t)
	signIn(t, ctx, p)
	var groups string
	run(t, ctx, 5*time.Second, chromedp.Evaluate(`[...document.querySelectorAll('#resources .group')].map(g => g.querySelector('h2').textContent + ':' +
		[...g.querySelectorAll('.res')].map(li => li.dataset.id + '=' + li.querySelector('img').getAttribute('src').split('/').pop().split('.')[0]).join(',')).join(' | ')`, &groups))
	if groups != "Applications:word=office,calc=chart | Desktops:build=terminal,desk=desktop" &&
		groups != "Applications:calc=chart,word=office | Desktops:build=terminal,desk=desktop" {
		t.Fatalf("groups %q", groups)
	}
	var note string
	run(t, ctx, 5*time.Second, chromedp.Text(`li.res[data-id="word"] .note`, &note, chromedp.ByQuery))
	if !strings.Contains(note, "full-window in its own session") || !strings.Contains(note, "RD Session Hosts") {
		t.Fatalf("application card note %q", note)
	}
	screenshot(t, ctx, "portal-applications")
}
