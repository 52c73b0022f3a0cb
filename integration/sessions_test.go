package integration

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/input"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"portico/service/config"
)

// awaitJS evaluates an async JS expression and decodes its result.
func awaitJS(t *testing.T, ctx context.Context, js string, out any) {
	t.Helper()
	run(t, ctx, 30*time.Second, chromedp.Evaluate(js, out, func(p *runtime.EvaluateParams) *runtime.EvaluateParams { return p.WithAwaitPromise(true) }))
}

// signIn opens the portal in the browser and signs alice in.
func signIn(t testing.TB, ctx context.Context, p *portico) {
	t.Helper()
	run(t, ctx, 30*time.Second,
		chromedp.Navigate(p.URL+"/"),
		chromedp.WaitVisible(`#username`, chromedp.ByID),
		chromedp.SendKeys(`#username`, `OFFICE\alice`, chromedp.ByID),
		chromedp.SendKeys(`#password`, "alice-password", chromedp.ByID),
		chromedp.Submit(`#password`, chromedp.ByID),
		chromedp.WaitVisible(`#home`, chromedp.ByID),
	)
}

// open clicks a resource and waits until its session is connected.
func open(t *testing.T, ctx context.Context, id string) {
	t.Helper()
	// Clicked from the page's script: the click navigates at once, and
	// chromedp's own Click sometimes reports the vanished node as an error.
	sel := fmt.Sprintf(`button.open[data-id=%q]`, id)
	run(t, ctx, 20*time.Second, chromedp.WaitVisible(sel, chromedp.ByQuery),
		chromedp.Evaluate(fmt.Sprintf(`document.querySelector(%q).click(); true`, sel), nil))
	waitJS(t, ctx, 30*time.Second, `document.body.dataset.state === 'on'`, id+" session connected")
}

func TestVNCSessionInTheBrowser(t *testing.T) {
	vnc := startVNC(t, "vnc-pass", "#ff0000")
	p := startPortico(t)
	p.seedUser(t)
	p.do(t, "POST", "/api/v1/resources", map[string]any{"id": "design", "name": "Design workstation", "protocol": "vnc", "host": "127.0.0.1", "port": vnc.Port,
		"groups": []string{"staff"}, "credentials": map[string]any{"password": "vnc-pass"}}, nil)
	p.do(t, "POST", "/api/v1/resources", map[string]any{"id": "build", "name": "Build server", "protocol": "ssh", "host": "127.0.0.1", "port": 22, "kind": "application", "users": []string{"alice"}}, nil)
	ctx := browser(t)
	signIn(t, ctx, p)
	var names string
	run(t, ctx, 5*time.Second, chromedp.Evaluate(`[...document.querySelectorAll('.res .name')].map(e => e.textContent).join('|')`, &names))
	if names != "Build server|Design workstation" {
		t.Fatalf("resource list %q", names)
	}
	screenshot(t, ctx, "portal-resources")

	open(t, ctx, "design")
	// The remote screen is red: the canvas must show it (pixels, not just a canvas).
	waitJS(t, ctx, 20*time.Second, `(() => { const c = document.querySelector('#screen canvas'); if (!c || c.width < 100) return false;
		const d = c.getContext('2d').getImageData(c.width/2, c.height/2, 1, 1).data; return d[0] > 200 && d[1] < 50 && d[2] < 50; })()`, "red remote screen in the canvas")
	px := canvasPixel(t, ctx, "#screen canvas", 50, 50)
	if px[0] < 200 || px[1] > 50 || px[2] > 50 {
		t.Fatalf("canvas pixel %v, want red", px)
	}
	screenshot(t, ctx, "vnc-session")

	// Clipboard: bidirectional by default, so text sent from the page reaches the host.
	run(t, ctx, 5*time.Second, chromedp.Evaluate(`window.__portico.rfb.clipboardPasteFrom('from-the-browser'); true`, nil))
	waitFor(t, 10*time.Second, "clipboard text on the VNC host", func() bool { return xclip(vnc.Display) == "from-the-browser" })
}

func TestVNCClipboardBlockedAtTheGateway(t *testing.T) {
	vnc := startVNC(t, "vnc-pass", "#0000ff")
	p := startPortico(t)
	p.seedUser(t)
	p.editSite(t, func(s *config.PortalSettings) { s.Restrictions.Clipboard = config.TransferServerToClient })
	p.do(t, "POST", "/api/v1/resources", map[string]any{"id": "design", "name": "Design", "protocol": "vnc", "host": "127.0.0.1", "port": vnc.Port,
		"groups": []string{"staff"}, "credentials": map[string]any{"password": "vnc-pass"}}, nil)
	ctx := browser(t)
	signIn(t, ctx, p)
	open(t, ctx, "design")
	// The page offers no "send to remote" control…
	var hasSend bool
	run(t, ctx, 5*time.Second, chromedp.Evaluate(`!!document.getElementById('clip-send')`, &hasSend))
	if hasSend {
		t.Fatal("page offers sending the clipboard although client-to-server is not allowed")
	}
	// …and even a page that sends ClientCutText anyway is stopped on the wire.
	run(t, ctx, 5*time.Second, chromedp.Evaluate(`window.__portico.rfb.clipboardPasteFrom('must-not-arrive'); true`, nil))
	exec.Command("xdotool", "key", "--display", vnc.Display, "shift").Run()
	time.Sleep(2 * time.Second)
	if got := xclip(vnc.Display); got == "must-not-arrive" {
		t.Fatal("ClientCutText reached the VNC server although the policy blocks it")
	}
}

func TestSSHSessionInTheBrowser(t *testing.T) {
	ssh := startSSH(t)
	p := startPortico(t)
	p.seedUser(t)
	p.do(t, "POST", "/api/v1/resources", map[string]any{"id": "shell", "name": "Build server", "protocol": "ssh", "host": "127.0.0.1", "port": ssh.Port,
		"groups": []string{"staff"}, "credentials": map[string]any{"username": ssh.User, "password": ssh.Password}}, nil)
	ctx := browser(t)
	signIn(t, ctx, p)
	open(t, ctx, "shell")
	marker := filepath.Join(ssh.Home, fmt.Sprintf("typed-%d", time.Now().UnixNano()))
	run(t, ctx, 10*time.Second, chromedp.Focus(`.xterm-helper-textarea`, chromedp.ByQuery),
		input.InsertText("echo hi-$((6*7)) > "+marker+"; echo grüße-$((6*7))"), chromedp.KeyEvent("\r"))
	waitJS(t, ctx, 15*time.Second, `(() => { const b = window.__portico.term.buffer.active; for (let i = 0; i < b.length; i++) { if ((b.getLine(i)?.translateToString() || '').includes('grüße-42')) return true; } return false; })()`, "command output in the terminal")
	waitFor(t, 5*time.Second, "file written by the typed command", func() bool {
		b, err := os.ReadFile(marker)
		return err == nil && strings.TrimSpace(string(b)) == "hi-42"
	})
	screenshot(t, ctx, "ssh-session")

	// SFTP through the gateway: upload lands on the host, download returns the same bytes.
	waitJS(t, ctx, 10*time.Second, `document.body.dataset.state === 'on'`, "session")
	upload := `(async () => { const base = document.getElementById('session').dataset.base; const csrf = document.getElementById('session').dataset.csrf;
		const sid = await new Promise(r => { const w = () => { const s = window.__portico.sid; s ? r(s) : setTimeout(w, 50); }; w(); });
		const up = await fetch(base + '/api/files/' + sid + '?name=upload.bin', {method: 'POST', headers: {'X-CSRF-Token': csrf}, body: new Uint8Array([1,2,3,250,251,252])});
		const down = await fetch(base + '/api/files/' + sid + '/download?name=upload.bin');
		const bytes = new Uint8Array(await down.arrayBuffer());
		return JSON.stringify({sid, up: up.status, down: down.status, bytes: [...bytes]}); })()`
	var res string
	awaitJS(t, ctx, upload, &res)
	if !strings.Contains(res, `"up":200`) || !strings.Contains(res, `"down":200`) || !strings.Contains(res, `"bytes":[1,2,3,250,251,252]`) {
		t.Fatalf("file transfer: %s", res)
	}
	got, err := os.ReadFile(filepath.Join(ssh.Home, "upload.bin"))
	if err != nil || !bytes.Equal(got, []byte{1, 2, 3, 250, 251, 252}) {
		t.Fatalf("uploaded file on the host: %v %v", got, err)
	}

	// With file transfer limited to client-to-server, the gateway refuses the download.
	p.editSite(t, func(s *config.PortalSettings) { s.Restrictions.FileTransfer = config.TransferClientToServer })
	open2 := `(async () => { const base = document.getElementById('session').dataset.base;
		const r = await fetch(base + '/api/launch/shell', {method: 'POST', headers: {'X-CSRF-Token': document.getElementById('session').dataset.csrf}});
		return r.status; })()`
	var st int
	awaitJS(t, ctx, open2, &st)
	if st != 200 {
		t.Fatalf("relaunch: %d", st)
	}
	run(t, ctx, 20*time.Second, chromedp.Navigate(p.URL+"/userportal/"), chromedp.WaitVisible(`#home`, chromedp.ByID))
	open(t, ctx, "shell")
	awaitJS(t, ctx, `(async () => { const base = document.getElementById('session').dataset.base;
		const sid = await new Promise(r => { const w = () => { const s = window.__portico.sid; s ? r(s) : setTimeout(w, 50); }; w(); });
		const down = await fetch(base + '/api/files/' + sid + '/download?name=upload.bin');
		return down.status; })()`, &st)
	if st != 403 {
		t.Fatalf("download with client-to-server only: status %d, want 403", st)
	}
}

func TestReplayedTicketRefusedBeforeTheHost(t *testing.T) {
	vnc := startVNC(t, "vnc-pass", "#00ff00")
	p := startPortico(t)
	p.seedUser(t)
	p.do(t, "POST", "/api/v1/resources", map[string]any{"id": "design", "name": "Design", "protocol": "vnc", "host": "127.0.0.1", "port": vnc.Port,
		"groups": []string{"staff"}, "credentials": map[string]any{"password": "vnc-pass"}}, nil)
	ctx := browser(t)
	signIn(t, ctx, p)
	js := `(async () => { const home = document.getElementById('home');
		const r = await fetch(home.dataset.base + '/api/launch/design', {method: 'POST', headers: {'X-CSRF-Token': home.dataset.csrf}});
		const ticket = new URLSearchParams((await r.json()).url.split('#')[1]).get('ticket');
		const url = 'wss://' + location.host + home.dataset.base + '/relay/vnc?ticket=' + encodeURIComponent(ticket);
		const tryOpen = () => new Promise(res => { const ws = new WebSocket(url); ws.onopen = () => { ws.close(); res('open'); }; ws.onerror = () => res('refused'); });
		const first = await tryOpen(); const second = await tryOpen();
		return first + ',' + second; })()`
	var res string
	awaitJS(t, ctx, js, &res)
	if res != "open,refused" {
		t.Fatalf("first and replayed ticket: %s", res)
	}
	waitFor(t, 5*time.Second, "ticket.refused in the audit log", func() bool { return len(auditEvents(t, p, "ticket.refused")) > 0 })
}

func auditEvents(t *testing.T, p *portico, typ string) []map[string]any {
	var ev []map[string]any
	p.do(t, "GET", "/api/v1/audit?type="+typ, nil, &ev)
	return ev
}

func xclip(display string) string {
	out, _ := exec.Command("xclip", "-display", display, "-o", "-selection", "clipboard").Output()
	return string(out)
}

func waitFor(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
