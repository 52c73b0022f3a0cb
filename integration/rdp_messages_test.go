package integration

import (
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// TestMessagesRDPWrongPassword signs in to freerdp-shadow (NLA) with a
// wrong password: the page must say the sign-in failed, not a generic
// "cannot connect".
func TestMessagesRDPWrongPassword(t *testing.T) {
	_, p := rdpOffice(t)
	ctx := browser(t)
	signIn(t, ctx, p)
	run(t, ctx, 20*time.Second, chromedp.Click(`button.open[data-id="office"]`, chromedp.ByQuery),
		chromedp.WaitVisible(`#rdp-pass`, chromedp.ByID),
		chromedp.SendKeys(`#rdp-pass`, "wrong", chromedp.ByID), chromedp.Click(`#rdp-form button[type=submit]`, chromedp.ByQuery))
	waitJS(t, ctx, 40*time.Second, `document.body.dataset.state === 'off'`, "RDP sign-in failure shown")
	var title, msg, kind string
	run(t, ctx, 5*time.Second, chromedp.Text(`#overlay-title`, &title, chromedp.ByID), chromedp.Text(`#overlay-msg`, &msg, chromedp.ByID),
		chromedp.Evaluate(`document.body.dataset.rdpErrorKind || ''`, &kind))
	if title != "Sign-in failed" {
		t.Fatalf("a wrong password shows %q: %q (IronRDP error kind %s)", title, msg, kind)
	}
}
