// Package testbrowser starts a fresh headless Chromium (Debian's package)
// for tests, with the flags this project's machines need, and stops it when
// the test ends. It is for _test.go files only; it knows nothing of pages.
package testbrowser

import (
	"context"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// Start launches Chromium with a fresh profile and returns a chromedp
// context for its first tab, already attached. It accepts self-signed
// certificates (the tests' gateways use them).
func Start(tb testing.TB) context.Context {
	tb.Helper()
	exe, err := exec.LookPath("chromium")
	if err != nil {
		tb.Fatalf("chromium not found: install the Debian package chromium")
	}
	// Not TempDir: Chromium's helpers may still write the profile while
	// exiting, which would fail the test's strict cleanup.
	profile, err := os.MkdirTemp("", "portico-chromium-")
	if err != nil {
		tb.Fatalf("profile dir: %v", err)
	}
	actx, cancelA := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(exe),
		chromedp.UserDataDir(profile),
		chromedp.Flag("headless", true),
		chromedp.Flag("no-sandbox", true),
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("no-first-run", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("ignore-certificate-errors", true),
		chromedp.WindowSize(1280, 800),
	)
	ctx, cancelC := chromedp.NewContext(actx)
	tb.Cleanup(func() {
		cancelC()
		cancelA()
		for i := 0; i < 50 && os.RemoveAll(profile) != nil; i++ {
			time.Sleep(100 * time.Millisecond)
		}
	})
	if err := chromedp.Run(ctx); err != nil {
		tb.Fatalf("start chromium: %v", err)
	}
	return ctx
}
