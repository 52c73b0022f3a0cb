package integration

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"portico/internal/testbrowser"
)

// browser starts a fresh headless Chromium (Debian's package) for the test.
func browser(t testing.TB) context.Context { return testbrowser.Start(t) }

// run runs chromedp actions with a deadline.
func run(t testing.TB, ctx context.Context, d time.Duration, actions ...chromedp.Action) {
	t.Helper()
	tctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	if err := chromedp.Run(tctx, actions...); err != nil {
		var loc string
		chromedp.Run(ctx, chromedp.Location(&loc))
		t.Fatalf("browser: %v (at %s)", err, loc)
	}
}

// screenshot saves the page as PNG under integration/screenshots (kept for
// the README and for a person to look at) and returns the path.
func screenshot(t *testing.T, ctx context.Context, name string) string {
	t.Helper()
	var png []byte
	run(t, ctx, 10*time.Second, chromedp.ActionFunc(func(ctx context.Context) error {
		var err error
		png, err = page.CaptureScreenshot().Do(ctx)
		return err
	}))
	dir := os.Getenv("PORTICO_SCREENSHOTS")
	if dir == "" {
		dir = t.TempDir()
	}
	os.MkdirAll(dir, 0o755)
	p := filepath.Join(dir, name+".png")
	if err := os.WriteFile(p, png, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// canvasPixel reads one pixel (r,g,b) of the first canvas under sel.
func canvasPixel(t *testing.T, ctx context.Context, sel string, x, y int) [3]int {
	t.Helper()
	var rgb []int
	js := fmt.Sprintf(`(() => { const c = document.querySelector(%q); if (!c) return [-1,-1,-1];
		const d = c.getContext('2d').getImageData(%d, %d, 1, 1).data; return [d[0], d[1], d[2]]; })()`, sel, x, y)
	run(t, ctx, 5*time.Second, chromedp.Evaluate(js, &rgb))
	return [3]int{rgb[0], rgb[1], rgb[2]}
}

// waitJS polls a JS expression until it is truthy.
func waitJS(t testing.TB, ctx context.Context, d time.Duration, expr, what string) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		var ok bool
		if err := chromedp.Run(ctx, chromedp.Evaluate(`!!(`+expr+`)`, &ok)); err == nil && ok {
			return
		}
		if time.Now().After(deadline) {
			var state, body string
			chromedp.Run(ctx, chromedp.Evaluate(`document.body.dataset.state || ''`, &state), chromedp.Evaluate(`document.body.innerText.slice(0, 500)`, &body))
			t.Fatalf("timed out waiting for %s (state %q, page: %s)", what, state, strings.TrimSpace(body))
		}
		time.Sleep(100 * time.Millisecond)
	}
}
