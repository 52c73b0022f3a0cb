package integration

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/target"
	"github.com/chromedp/chromedp"

	"portico/service/config"
)

// framedPortal loads a page on another origin that frames the portal, in a
// new tab, and returns a context attached to the portal's frame. The frame
// is cross-site, so Chromium runs it as its own target; a refused frame
// holds Chromium's error page instead of the portal. seen holds the frame
// targets of earlier calls, which may outlive their closed tabs briefly.
func framedPortal(t *testing.T, browserCtx context.Context, outer string, seen map[target.ID]bool) context.Context {
	t.Helper()
	tab, cancel := chromedp.NewContext(browserCtx)
	t.Cleanup(cancel)
	// The first Run attaches with the context it is given and detaches
	// when that ends, so it gets the long-lived one.
	if err := chromedp.Run(tab); err != nil {
		t.Fatalf("open tab: %v", err)
	}
	run(t, tab, 20*time.Second, chromedp.Navigate(outer+"/"))
	var frame target.ID
	waitFor(t, 20*time.Second, "the portal frame's target", func() bool {
		infos, err := chromedp.Targets(tab)
		if err != nil {
			return false
		}
		for _, i := range infos {
			if i.Type == "iframe" && !seen[i.TargetID] && strings.Contains(i.URL, "/userportal") {
				frame = i.TargetID
			}
		}
		return frame != ""
	})
	seen[frame] = true
	fctx, fcancel := chromedp.NewContext(tab, chromedp.WithTargetID(frame))
	t.Cleanup(fcancel)
	if err := chromedp.Run(fctx); err != nil {
		t.Fatalf("attach to the portal frame: %v", err)
	}
	return fctx
}

// frameState says what the framed document is: "portal" once the sign-in
// form or the resource list rendered, "refused" for Chromium's error page.
func frameState(t *testing.T, fctx context.Context) string {
	t.Helper()
	var state string
	waitFor(t, 20*time.Second, "the frame to settle", func() bool {
		ctx, cancel := context.WithTimeout(fctx, 3*time.Second)
		defer cancel()
		err := chromedp.Run(ctx, chromedp.Evaluate(`location.protocol === 'chrome-error:' ? 'refused'
			: (document.querySelector('#username, #home') ? 'portal' : '')`, &state))
		return err == nil && state != ""
	})
	return state
}

func TestEmbeddingDecidedByTheBrowser(t *testing.T) {
	p := startPortico(t)
	p.seedUser(t)
	outer := otherOrigin(t, `<!doctype html><iframe src="`+p.URL+`/userportal/" width="900" height="600"></iframe>`)
	ctx := browser(t)
	seen := map[target.ID]bool{}

	if got := frameState(t, framedPortal(t, ctx, outer, seen)); got != "refused" {
		t.Fatalf("embedding off: the framed portal is %q, want refused", got)
	}

	p.editSite(t, func(s *config.PortalSettings) {
		s.Restrictions.AllowEmbedding = true
		s.Restrictions.EmbeddingOrigins = []string{"https://intranet.example.com"}
	})
	if got := frameState(t, framedPortal(t, ctx, outer, seen)); got != "refused" {
		t.Fatalf("embedding limited to another origin: the framed portal is %q, want refused", got)
	}

	for _, origins := range [][]string{{outer}, nil} {
		p.editSite(t, func(s *config.PortalSettings) { s.Restrictions.EmbeddingOrigins = origins })
		fctx := framedPortal(t, ctx, outer, seen)
		if got := frameState(t, fctx); got != "portal" {
			t.Fatalf("embedding allowed for %v: the framed portal is %q", origins, got)
		}
		// Signing in inside the frame needs a SameSite=None, Partitioned
		// cookie: Chromium drops other third-party cookies, and the frame
		// would bounce back to sign-in ("form expired").
		var signedIn bool
		sctx, scancel := context.WithTimeout(fctx, 20*time.Second)
		err := chromedp.Run(sctx, chromedp.Evaluate(`(() => {
			if (document.querySelector('#home')) return true;
			document.querySelector('#username').value = 'OFFICE\\alice';
			document.querySelector('#password').value = 'alice-password';
			// Clicked after this evaluation returns: the navigation it starts
			// would otherwise swallow the evaluation's answer.
			setTimeout(() => document.querySelector('form button[type=submit]').click(), 50);
			return true; })()`, &signedIn))
		scancel()
		if err != nil {
			t.Fatalf("sign in inside the frame: %v", err)
		}
		waitFor(t, 20*time.Second, "the resource list inside the frame", func() bool {
			c, cancel := context.WithTimeout(fctx, 3*time.Second)
			defer cancel()
			var home bool
			return chromedp.Run(c, chromedp.Evaluate(`!!document.querySelector('#home')`, &home)) == nil && home
		})
	}
}
