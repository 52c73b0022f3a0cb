// Package testbrowser starts a fresh headless Chromium (Debian's package)
// for tests, with the flags this project's machines need, and stops it when
// the test ends. It is for _test.go files only; it knows nothing of pages.
package testbrowser

import (
	"context"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// Start launches Chromium with a fresh profile and returns a chromedp
// context for its first tab, already attached. It accepts self-signed
// certificates (the tests' gateways use them).
func Start(tb testing.TB) context.Context {
	tb.Helper()
	return start(tb, chromedp.Flag("ignore-certificate-errors", true))
}

// StartTrusting is Start, but instead of ignoring every certificate error
// it trusts only certificates with one of the given public keys (base64
// SHA-256 of the SubjectPublicKeyInfo). Chromium then treats those
// connections as valid, which matters where it behaves differently on a
// certificate error: it never stores such responses in its HTTP cache.
func StartTrusting(tb testing.TB, spkiSHA256 ...string) context.Context {
	tb.Helper()
	return start(tb, chromedp.Flag("ignore-certificate-errors-spki-list", strings.Join(spkiSHA256, ",")))
}

// StartUnthrottled is StartTrusting for benchmarks that run pages in many
// tabs at once: Chromium does not slow the timers, rendering or frames of
// the tabs that are not in front, so every tab runs as a visible one would.
func StartUnthrottled(tb testing.TB, spkiSHA256 ...string) context.Context {
	tb.Helper()
	return start(tb, chromedp.Flag("ignore-certificate-errors-spki-list", strings.Join(spkiSHA256, ",")),
		chromedp.Flag("disable-background-timer-throttling", true),
		chromedp.Flag("disable-renderer-backgrounding", true),
		chromedp.Flag("disable-backgrounding-occluded-windows", true))
}

func start(tb testing.TB, trust chromedp.ExecAllocatorOption, extra ...chromedp.ExecAllocatorOption) context.Context {
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
	actx, cancelA := chromedp.NewExecAllocator(context.Background(), append([]chromedp.ExecAllocatorOption{
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
		trust,
		chromedp.WindowSize(1280, 800),
	}, extra...)...)
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
