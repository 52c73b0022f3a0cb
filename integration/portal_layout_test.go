package integration

import (
	"testing"
	"time"

	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"

	"portico/service/config"
)

// TestPortalLayoutAt1280 looks at the resource list as a user at 1280×800
// sees it with the launch-method choice and .rdp downloads on: the radio
// buttons are small and beside their labels, and the .rdp button covers no
// text of its card.
func TestPortalLayoutAt1280(t *testing.T) {
	p := startPortico(t)
	p.seedUser(t)
	alt := freePort(t)
	p.editSite(t, func(s *config.PortalSettings) {
		s.Client.LaunchMethod, s.Client.AllowUserSelect, s.Client.Detection = config.LaunchNativeWithFallback, true, config.DetectOnPrompt
		s.NLB.AlternatePortEnabled, s.NLB.AlternatePort = true, alt
	})
	p.do(t, "POST", "/api/v1/resources", map[string]any{"id": "office", "name": "Office desktop with a long name", "protocol": "rdp", "host": "127.0.0.1", "port": 3389,
		"description": "The finance team's Windows desktop, with the accounting suite", "groups": []string{"staff"}}, nil)
	p.do(t, "POST", "/api/v1/resources", map[string]any{"id": "build", "name": "Build server", "protocol": "ssh", "host": "127.0.0.1", "port": 22, "kind": "application", "users": []string{"alice"}}, nil)
	ctx := browser(t)
	run(t, ctx, 10*time.Second, emulation.SetDeviceMetricsOverride(1280, 800, 1, false))
	signIn(t, ctx, p)
	run(t, ctx, 10*time.Second, chromedp.WaitVisible(`#method-choice`, chromedp.ByID))
	screenshot(t, ctx, "portal-layout-1280")

	var radios []map[string]float64
	run(t, ctx, 5*time.Second, chromedp.Evaluate(`[...document.querySelectorAll('#method-choice input[type=radio]')].map(r => { const a = r.getBoundingClientRect(), l = r.closest('label').getBoundingClientRect(); return {w: a.width, top: a.top, bottom: a.bottom, ltop: l.top, lh: l.height}; })`, &radios))
	if len(radios) != 2 {
		t.Fatalf("%d launch-method radio buttons, want 2", len(radios))
	}
	for _, r := range radios {
		if r["w"] > 30 {
			t.Errorf("a radio button is %.0f px wide: stretched", r["w"])
		}
		if r["lh"] > 40 {
			t.Errorf("a radio's label is %.0f px high: its text wrapped below the button", r["lh"])
		}
	}
	var overlaps []string
	run(t, ctx, 5*time.Second, chromedp.Evaluate(`(() => { const out = [];
		for (const b of document.querySelectorAll('.res .rdpfile, .res .newtab')) {
			const a = b.getBoundingClientRect();
			for (const s of b.closest('.res').querySelectorAll('.name, .kind, .desc')) {
				const c = s.getBoundingClientRect();
				if (a.left < c.right && c.left < a.right && a.top < c.bottom && c.top < a.bottom) out.push(b.className + ' over ' + s.className);
			}
		}
		return out; })()`, &overlaps))
	if len(overlaps) > 0 {
		t.Errorf("card buttons cover text: %v", overlaps)
	}
}

// TestSignInWrongPasswordFocusesPassword: after a wrong password the user
// name is kept and the cursor waits in the password field.
func TestSignInWrongPasswordFocusesPassword(t *testing.T) {
	p := startPortico(t)
	p.seedUser(t)
	ctx := browser(t)
	run(t, ctx, 30*time.Second,
		chromedp.Navigate(p.URL+"/"),
		chromedp.WaitVisible(`#username`, chromedp.ByID),
		chromedp.SendKeys(`#username`, `OFFICE\alice`, chromedp.ByID),
		chromedp.SendKeys(`#password`, "wrong-password", chromedp.ByID),
		chromedp.Submit(`#password`, chromedp.ByID),
		chromedp.WaitVisible(`#signin-error`, chromedp.ByID),
	)
	// autofocus applies once the page has loaded, a moment after the error
	// is visible: wait for it (generously, the machine may be loaded).
	waitJS(t, ctx, 10*time.Second, `document.activeElement && document.activeElement.id === 'password'`, "the focus in the password field")
	var user string
	run(t, ctx, 5*time.Second, chromedp.Value(`#username`, &user, chromedp.ByID))
	if user != `OFFICE\alice` {
		t.Fatalf("after a wrong password the user name is %q, want it kept", user)
	}
}
