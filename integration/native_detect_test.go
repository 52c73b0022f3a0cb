package integration

import (
	"context"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"portico/service/admin"
	"portico/service/config"
)

// jsClick clicks an element from the page's script. Once the page has
// opened a portico:// URL, headless Chromium (which has no desktop to hand
// external protocols to) stops delivering DevTools mouse input to it, so
// chromedp.Click would be lost; a real browser asks the user instead.
func jsClick(t *testing.T, ctx context.Context, sel string) {
	t.Helper()
	var ok bool
	run(t, ctx, 10*time.Second, chromedp.Evaluate(`(() => { const e = document.querySelector(`+strconv.Quote(sel)+`); if (!e) return false; e.click(); return true; })()`, &ok))
	if !ok {
		t.Fatalf("nothing to click at %s", sel)
	}
}

// desktopEnv is a user's desktop session in a temporary home: where
// portico-client registers itself and where xdg-open looks handlers up.
// DISPLAY only needs to be set for xdg-open to consult URL handlers.
func desktopEnv(t *testing.T) []string {
	home := t.TempDir()
	return append(os.Environ(), "HOME="+home, "XDG_DATA_HOME="+filepath.Join(home, "data"), "XDG_CONFIG_HOME="+filepath.Join(home, "config"),
		"XDG_DATA_DIRS="+filepath.Join(home, "none"), "XDG_CONFIG_DIRS="+filepath.Join(home, "none"), "XDG_CURRENT_DESKTOP=", "DE=", "DISPLAY=:99999")
}

// TestNativeDetectionAndFallback: a user with portico-client registered
// signs in with launch method native-with-fallback; the page detects the
// client (HTTP and DNS probes through the registered URL handler) and
// hands out a portico://launch URL; when nothing picks that launch up
// within the timeout the page offers the browser, and "Open in browser"
// opens a real VNC session. Then, signed in again with no client
// reachable, detection times out and the same offer opens the browser.
func TestNativeDetectionAndFallback(t *testing.T) {
	xdgOpen := need(t, "xdg-open", "xdg-utils")
	need(t, "xdg-mime", "xdg-utils")
	env := desktopEnv(t)
	reg := exec.Command(clientBinary(t), "register")
	reg.Env = env
	if out, err := reg.CombinedOutput(); err != nil {
		t.Fatalf("portico-client register: %v\n%s", err, out)
	}
	q := exec.Command("xdg-mime", "query", "default", "x-scheme-handler/portico")
	q.Env = env
	if out, _ := q.Output(); strings.TrimSpace(string(out)) != "portico-client.desktop" {
		t.Fatalf("after register the portico:// handler is %q", out)
	}

	vnc := startVNC(t, "vnc-pass", "#00ff00")
	p := startPortico(t)
	p.seedUser(t)
	p.do(t, "POST", "/api/v1/resources", map[string]any{"id": "design", "name": "Design workstation", "protocol": "vnc", "host": "127.0.0.1", "port": vnc.Port,
		"groups": []string{"staff"}, "credentials": map[string]any{"password": "vnc-pass"}}, nil)
	// startPortico puts the detection DNS responder on a free loopback
	// port (moving it live is tested in service/gateway).
	dnsAddr := ""
	var st admin.Status
	p.do(t, "GET", "/api/v1/status", nil, &st)
	for _, l := range st.Listeners {
		if l.Name == "dns" {
			dnsAddr = l.Addr
		}
	}
	if !strings.HasPrefix(dnsAddr, "127.0.0.1:") {
		t.Fatalf("DNS responder listens on %q, want a loopback port", dnsAddr)
	}
	const timeout = 4
	p.editSite(t, func(s *config.PortalSettings) {
		s.Client.LaunchMethod = config.LaunchNativeWithFallback
		s.Client.Detection = config.DetectAutomatic
		s.Client.DetectionTimeoutSeconds = timeout
	})

	ctx := browser(t)
	signIn(t, ctx, p)
	// Automatic detection starts on the signed-in page. Headless Chromium
	// does not hand external protocols to the desktop, so the test opens
	// the URL the page produced the way the desktop would: xdg-open, which
	// runs the registered portico-client.
	waitJS(t, ctx, 10*time.Second, `document.getElementById('native')?.dataset.detectUrl`, "the portico://detect URL")
	var detectURL string
	run(t, ctx, 5*time.Second, chromedp.Evaluate(`document.getElementById('native').dataset.detectUrl`, &detectURL))
	du, err := url.Parse(detectURL)
	if err != nil || du.Scheme != "portico" || du.Host != "detect" || du.Query().Get("dns") != dnsAddr {
		t.Fatalf("detect URL %q (want dns=%s)", detectURL, dnsAddr)
	}
	xo := exec.Command(xdgOpen, detectURL)
	xo.Env = env
	if out, err := xo.CombinedOutput(); err != nil {
		t.Fatalf("xdg-open %s: %v\n%s", detectURL, err, out)
	}
	waitJS(t, ctx, 20*time.Second, `document.getElementById('native').dataset.state === 'detected'`, "the portal to see the client")
	waitFor(t, 5*time.Second, "client.detect in the audit log", func() bool {
		for _, e := range auditEvents(t, p, "client.detect") {
			if strings.Contains(e["detail"].(string), "detected by the http+dns probe") {
				return true
			}
		}
		return false
	})

	// Detected: the launch goes to the native client, with the agreed URL.
	jsClick(t, ctx, `button.open[data-id="design"]`)
	waitJS(t, ctx, 10*time.Second, `(document.getElementById('native').dataset.lastUrl || '').startsWith('portico://launch?')`, "the portico://launch URL")
	var launchURL string
	run(t, ctx, 5*time.Second, chromedp.Evaluate(`document.getElementById('native').dataset.lastUrl`, &launchURL))
	lu, _ := url.Parse(launchURL)
	lq := lu.Query()
	if lq.Get("gw") != strings.TrimPrefix(p.URL, "https://") || lq.Get("proto") != "vnc" || lq.Get("name") != "Design workstation" || len(lq.Get("fp")) != 64 || lq.Get("t") == "" {
		t.Fatalf("launch URL %s", launchURL)
	}
	// Nothing opens this launch (the viewer side is tested with the tunnel),
	// so after the timeout the page says so and offers the browser.
	waitJS(t, ctx, time.Duration(timeout+20)*time.Second, `!document.getElementById('fallback').hidden`, "the fallback offer after the launch was not picked up")
	var msg string
	run(t, ctx, 5*time.Second, chromedp.Text(`#fallback-msg`, &msg, chromedp.ByID))
	if !strings.Contains(msg, "did not open the session") {
		t.Fatalf("fallback message %q", msg)
	}
	jsClick(t, ctx, `#open-browser`)
	waitJS(t, ctx, 30*time.Second, `document.body.dataset.state === 'on'`, "the VNC session in the browser")

	// Another browser signs in with no client reachable: detection times
	// out. (A fresh Chromium: this one no longer takes typed input, see
	// jsClick.)
	ctx = browser(t)
	signIn(t, ctx, p)
	waitJS(t, ctx, time.Duration(timeout+20)*time.Second, `document.getElementById('native').dataset.state === 'not-detected'`, "detection to time out")
	jsClick(t, ctx, `button.open[data-id="design"]`)
	waitJS(t, ctx, 10*time.Second, `!document.getElementById('fallback').hidden`, "the fallback offer")
	run(t, ctx, 5*time.Second, chromedp.Text(`#fallback-msg`, &msg, chromedp.ByID))
	if !strings.Contains(msg, "was not detected") {
		t.Fatalf("fallback message %q", msg)
	}
	jsClick(t, ctx, `#open-browser`)
	waitJS(t, ctx, 30*time.Second, `document.body.dataset.state === 'on'`, "the VNC session in the browser after the fallback")
}
