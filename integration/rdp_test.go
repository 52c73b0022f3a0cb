package integration

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"
)

// rdpServer is freerdp-shadow-cli sharing an Xvfb display, with NLA and a
// SAM file for user "test" / "test".
type rdpServer struct {
	Port    int
	Display string
}

func startRDP(t testing.TB, colour string) rdpServer {
	t.Helper()
	return startRDPWith(t, colour, "test:test")
}

// startRDPWith is startRDP with the SAM file's accounts given as
// "user:password" or "user:password:DOMAIN".
func startRDPWith(t testing.TB, colour string, accounts ...string) rdpServer {
	t.Helper()
	need(t, "Xvfb", "xvfb")
	need(t, "winpr-hash", "winpr-utils")
	need(t, "freerdp-shadow-cli", "freerdp2-shadow-x11")
	need(t, "xsetroot", "x11-xserver-utils")
	// Test packages run at once and start X servers of their own; when the
	// shadow server loses its display on the way up, start both again.
	var logs string
	for attempt := 0; attempt < 3; attempt++ {
		srv, out, ok := tryStartRDP(t, colour, accounts)
		if ok {
			return srv
		}
		logs = out
	}
	t.Fatalf("freerdp-shadow-cli did not start; output:\n%s", logs)
	return rdpServer{}
}

// tryStartRDP starts Xvfb and freerdp-shadow-cli on it; on failure it
// stops both and returns the server's output.
func tryStartRDP(t testing.TB, colour string, accounts []string) (rdpServer, string, bool) {
	t.Helper()
	dir := t.TempDir()
	r, w, _ := os.Pipe()
	xvfb := exec.Command("Xvfb", "-displayfd", "3", "-screen", "0", "1024x768x24", "-nolisten", "tcp")
	xvfb.ExtraFiles = []*os.File{w}
	if err := xvfb.Start(); err != nil {
		t.Fatal(err)
	}
	w.Close()
	stopX := func() { xvfb.Process.Kill(); xvfb.Wait() }
	line, err := bufio.NewReader(r).ReadString('\n')
	if err != nil {
		stopX()
		return rdpServer{}, "Xvfb did not report its display: " + err.Error(), false
	}
	display := ":" + strings.TrimSpace(line)
	if out, err := exec.Command("xsetroot", "-display", display, "-solid", colour).CombinedOutput(); err != nil {
		stopX()
		return rdpServer{}, fmt.Sprintf("xsetroot: %v %s", err, out), false
	}
	var sam []byte
	for _, a := range accounts {
		f := strings.Split(a, ":")
		args := []string{"-u", f[0], "-p", f[1], "-f", "sam"}
		if len(f) > 2 {
			args = append(args, "-d", f[2])
		}
		line, err := exec.Command("winpr-hash", args...).Output()
		if err != nil {
			t.Fatalf("winpr-hash: %v", err)
		}
		sam = append(sam, line...)
	}
	samFile := filepath.Join(dir, "sam")
	os.WriteFile(samFile, sam, 0o600)
	port := freePort(t)
	shadow := exec.Command("freerdp-shadow-cli", "/bind-address:127.0.0.1", fmt.Sprintf("/port:%d", port), "/sec:nla", "/sam-file:"+samFile)
	shadow.Env = []string{"DISPLAY=" + display, "HOME=" + dir, "PATH=" + os.Getenv("PATH")}
	logs := &syncBuffer{}
	shadow.Stdout, shadow.Stderr = logs, logs
	if err := shadow.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { shadow.Wait(); close(exited) }()
	stop := func() { shadow.Process.Kill(); <-exited; stopX() }
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), time.Second); err == nil {
			c.Close()
			break
		}
		select {
		case <-exited:
			stopX()
			return rdpServer{}, logs.String(), false
		default:
		}
		if time.Now().After(deadline) {
			stop()
			return rdpServer{}, logs.String(), false
		}
	}
	t.Cleanup(stop)
	return rdpServer{Port: port, Display: display}, "", true
}

// rdpOffice starts a green freerdp-shadow host and a gateway with the
// seeded user and the RDP resource "office" on it (password asked).
func rdpOffice(tb testing.TB) (rdpServer, *portico) {
	srv := startRDP(tb, "#00c000")
	p := startPortico(tb)
	p.seedUser(tb)
	p.do(tb, "POST", "/api/v1/resources", map[string]any{"id": "office", "name": "Office desktop", "protocol": "rdp", "host": "127.0.0.1",
		"port": srv.Port, "groups": []string{"staff"}, "credentials": map[string]any{"mode": "ask", "username": "test"}}, nil)
	return srv, p
}

func TestRDPSessionInTheBrowser(t *testing.T) {
	srv, p := rdpOffice(t)
	ctx := browser(t)
	signIn(t, ctx, p)

	// A wrong password gets its own message.
	run(t, ctx, 20*time.Second, clickOpen("office"),
		chromedp.WaitVisible(`#rdp-pass`, chromedp.ByID),
		chromedp.SendKeys(`#rdp-pass`, "wrong", chromedp.ByID), chromedp.Click(`#rdp-form button[type=submit]`, chromedp.ByQuery))
	waitJS(t, ctx, 30*time.Second, `document.body.dataset.state === 'off'`, "RDP sign-in failure shown")
	var title string
	run(t, ctx, 5*time.Second, chromedp.Text(`#overlay-title`, &title, chromedp.ByID))
	if !strings.Contains(title, "failed") && !strings.Contains(title, "Cannot connect") {
		t.Fatalf("wrong password shows %q", title)
	}

	run(t, ctx, 20*time.Second, chromedp.Navigate(p.URL+"/userportal/"), chromedp.WaitVisible(`#home`, chromedp.ByID), chromedp.WaitReady(portalReady, chromedp.ByQuery),
		clickOpen("office"),
		chromedp.WaitVisible(`#rdp-pass`, chromedp.ByID),
		chromedp.SendKeys(`#rdp-pass`, "test", chromedp.ByID), chromedp.Click(`#rdp-form button[type=submit]`, chromedp.ByQuery))
	waitJS(t, ctx, 40*time.Second, `document.body.dataset.state === 'on'`, "RDP session connected")
	// freerdp-shadow sends what changes on the display: repaint it now.
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		for _, c := range []string{"#000080", "#00c000"} {
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
	screenshot(t, ctx, "rdp-session")
	// A window resize asks the host for the new size (display_control);
	// freerdp-shadow cannot resize its X display, so the session must
	// simply stay up with the canvas scaled.
	run(t, ctx, 10*time.Second, emulation.SetDeviceMetricsOverride(1100, 700, 1, false))
	waitJS(t, ctx, 20*time.Second, `window.__portico.resized?.[0] === 1100`, "resize requested from the host")
	time.Sleep(2 * time.Second)
	waitJS(t, ctx, 5*time.Second, `document.body.dataset.state === 'on'`, "session still up after the resize")
	var sessions []map[string]any
	p.do(t, "GET", "/api/v1/sessions", nil, &sessions)
	if len(sessions) != 1 || sessions[0]["protocol"] != "rdp" {
		t.Fatalf("live sessions %v", sessions)
	}

	// The host's certificate was pinned on first use; a different one is
	// refused with its own message before NLA starts.
	var res map[string]any
	p.do(t, "GET", "/api/v1/resources/office", nil, &res)
	pinned, _ := res["hostKey"].(string)
	if len(pinned) != 95 || len(auditEvents(t, p, "hostkey.pinned")) != 1 {
		t.Fatalf("after the first connection the resource pins %q (audit %v)", pinned, auditEvents(t, p, "hostkey.pinned"))
	}
	p.do(t, "PUT", "/api/v1/resources/office", map[string]any{"id": "office", "name": "Office desktop", "protocol": "rdp", "host": "127.0.0.1",
		"port": srv.Port, "groups": []string{"staff"}, "credentials": map[string]any{"mode": "ask", "username": "test"},
		"hostKey": strings.Repeat("AB:", 31) + "AB"}, nil)
	run(t, ctx, 20*time.Second, chromedp.Navigate(p.URL+"/userportal/"), chromedp.WaitVisible(`#home`, chromedp.ByID), chromedp.WaitReady(portalReady, chromedp.ByQuery),
		clickOpen("office"),
		chromedp.WaitVisible(`#rdp-pass`, chromedp.ByID),
		chromedp.SendKeys(`#rdp-pass`, "test", chromedp.ByID), chromedp.Click(`#rdp-form button[type=submit]`, chromedp.ByQuery))
	waitJS(t, ctx, 30*time.Second, `document.body.dataset.state === 'off'`, "changed certificate refused")
	run(t, ctx, 5*time.Second, chromedp.Text(`#overlay-title`, &title, chromedp.ByID))
	if title != "Certificate changed" || len(auditEvents(t, p, "hostkey.mismatch")) != 1 {
		t.Fatalf("a changed certificate shows %q (mismatch audit %v)", title, auditEvents(t, p, "hostkey.mismatch"))
	}
}

func TestRDPUnreachableHostMessage(t *testing.T) {
	p := startPortico(t)
	p.seedUser(t)
	closed := freePort(t)
	p.do(t, "POST", "/api/v1/resources", map[string]any{"id": "gone", "name": "Gone", "protocol": "rdp", "host": "127.0.0.1",
		"port": closed, "groups": []string{"staff"}, "credentials": map[string]any{"mode": "ask", "username": "test"}}, nil)
	ctx := browser(t)
	signIn(t, ctx, p)
	run(t, ctx, 20*time.Second, clickOpen("gone"),
		chromedp.WaitVisible(`#rdp-pass`, chromedp.ByID),
		chromedp.SendKeys(`#rdp-pass`, "test", chromedp.ByID), chromedp.Click(`#rdp-form button[type=submit]`, chromedp.ByQuery))
	waitJS(t, ctx, 30*time.Second, `document.body.dataset.state === 'off'`, "unreachable host shown")
	var title string
	run(t, ctx, 5*time.Second, chromedp.Text(`#overlay-title`, &title, chromedp.ByID))
	if title != "Host unreachable" {
		t.Fatalf("closed port shows %q, want Host unreachable", title)
	}
}
