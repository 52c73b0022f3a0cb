package integration

import (
	"testing"
	"time"

	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"
)

// TestSessionToolbar drives a VNC session page's toolbar as a user does: on
// a 390 px phone screen it wraps without losing Disconnect; Ctrl+Alt+Del
// reaches the client; the clipboard's Send says what it did (and the text
// arrives on the host); in fullscreen the toolbar folds behind a handle that
// brings it back, as Ctrl+Alt+Shift does.
func TestSessionToolbar(t *testing.T) {
	vnc := startVNC(t, "vnc-pass", "#336699")
	p := startPortico(t)
	p.seedUser(t)
	p.do(t, "POST", "/api/v1/resources", map[string]any{"id": "design", "name": "Design workstation with a long name", "protocol": "vnc", "host": "127.0.0.1", "port": vnc.Port,
		"groups": []string{"staff"}, "credentials": map[string]any{"password": "vnc-pass"}}, nil)
	ctx := browser(t)
	signIn(t, ctx, p)
	open(t, ctx, "design")

	// Phone width: every toolbar button inside the screen, none hidden.
	run(t, ctx, 10*time.Second, emulation.SetDeviceMetricsOverride(390, 844, 1, true))
	waitJS(t, ctx, 10*time.Second, `innerWidth === 390`, "the phone viewport")
	var off []string
	run(t, ctx, 5*time.Second, chromedp.Evaluate(`[...document.querySelectorAll('#toolbar button')].filter(b => { const r = b.getBoundingClientRect(); return r.width === 0 || r.left < 0 || r.right > innerWidth; }).map(b => b.id)`, &off))
	if len(off) > 0 {
		t.Fatalf("at 390 px these toolbar buttons are off screen: %v", off)
	}
	var overflow bool
	run(t, ctx, 5*time.Second, chromedp.Evaluate(`document.documentElement.scrollWidth > innerWidth`, &overflow))
	if overflow {
		t.Fatal("the session page scrolls sideways at 390 px")
	}
	screenshot(t, ctx, "session-toolbar-390")
	run(t, ctx, 10*time.Second, emulation.ClearDeviceMetricsOverride())

	// Ctrl+Alt+Del goes to noVNC's sendCtrlAltDel.
	run(t, ctx, 5*time.Second, chromedp.Evaluate(`window.__cad = 0; const o = window.__portico.rfb.sendCtrlAltDel.bind(window.__portico.rfb);
		window.__portico.rfb.sendCtrlAltDel = () => { window.__cad++; o(); }; document.getElementById('btn-cad').click(); true`, nil))
	waitJS(t, ctx, 5*time.Second, `window.__cad === 1`, "Ctrl+Alt+Del sent")

	// The clipboard's Send confirms, and the host has the text.
	run(t, ctx, 5*time.Second, chromedp.Click(`#btn-clip`, chromedp.ByID), chromedp.SetValue(`#clip-local`, "toolbar-text", chromedp.ByID), chromedp.Click(`#clip-send`, chromedp.ByID))
	waitJS(t, ctx, 5*time.Second, `document.getElementById('clip-status').textContent.startsWith('Sent 12 characters')`, "the Send confirmation")
	waitFor(t, 10*time.Second, "the sent text on the VNC host", func() bool { return xclip(vnc.Display) == "toolbar-text" })
	screenshot(t, ctx, "session-clipboard-panel")
	// Each label sits above its own box, not floating beside the previous one.
	var floating []string
	run(t, ctx, 5*time.Second, chromedp.Evaluate(`[...document.querySelectorAll('#panel-clip label')].filter(l => { const a = l.getBoundingClientRect(), b = document.getElementById(l.htmlFor).getBoundingClientRect();
		return a.bottom > b.top + 1 || Math.abs(a.left - b.left) > 2; }).map(l => l.htmlFor)`, &floating))
	if len(floating) > 0 {
		t.Errorf("clipboard panel labels not above their boxes: %v", floating)
	}
	run(t, ctx, 5*time.Second, chromedp.Click(`#btn-clip`, chromedp.ByID))

	// Fullscreen: the toolbar folds behind the handle and comes back.
	run(t, ctx, 5*time.Second, chromedp.Click(`#btn-full`, chromedp.ByID))
	waitJS(t, ctx, 10*time.Second, `document.fullscreenElement && document.getElementById('toolbar').offsetHeight === 0 && !document.getElementById('toolbar-handle').hidden`, "the folded toolbar in fullscreen")
	run(t, ctx, 5*time.Second, chromedp.Click(`#toolbar-handle`, chromedp.ByID))
	waitJS(t, ctx, 5*time.Second, `document.getElementById('btn-disconnect').offsetHeight > 0`, "the toolbar shown by its handle")
	run(t, ctx, 5*time.Second, chromedp.Evaluate(`document.dispatchEvent(new KeyboardEvent('keydown', {key: 'Shift', ctrlKey: true, altKey: true, shiftKey: true})); true`, nil))
	waitJS(t, ctx, 5*time.Second, `document.getElementById('toolbar').offsetHeight === 0`, "Ctrl+Alt+Shift folding the toolbar")
	screenshot(t, ctx, "session-fullscreen-folded")
	run(t, ctx, 5*time.Second, chromedp.Click(`#toolbar-handle`, chromedp.ByID), chromedp.Click(`#btn-disconnect`, chromedp.ByID))
	waitJS(t, ctx, 10*time.Second, `document.body.dataset.state === 'off'`, "disconnected from the fullscreen toolbar")
	screenshot(t, ctx, "session-overlay")
	var tops []float64
	run(t, ctx, 5*time.Second, chromedp.Evaluate(`[...document.querySelectorAll('#overlay .actions > *')].map(e => Math.round(e.getBoundingClientRect().top))`, &tops))
	if len(tops) != 2 || tops[0] != tops[1] {
		t.Errorf("the overlay's buttons are not on one line: tops %v", tops)
	}
}
