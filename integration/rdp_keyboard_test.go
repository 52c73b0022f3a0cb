package integration

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
)

// TestRDPKeyboardLayoutReachesTheHost picks German on the RDP page and
// types the keys labelled Y and Z on a US keyboard. The page sends their
// scancodes; the gateway writes the layout into the client core data, and
// xrdp maps scancodes to characters with that layout's keymap: German
// swaps Y and Z, so the host receives "zy".
func TestRDPKeyboardLayoutReachesTheHost(t *testing.T) {
	srv := startXRDP(t)
	xterm := need(t, "xterm", "xterm")
	xdotool := need(t, "xdotool", "xdotool")
	p := startPortico(t)
	p.seedUser(t)
	addXRDP(t, p, srv)
	ctx := openXRDP(t, p, srv, func(ctx context.Context) {
		run(t, ctx, 5*time.Second, chromedp.SetValue(`#rdp-kbd`, "1031", chromedp.ByID))
		screenshot(t, ctx, "rdp-sign-in")
	})
	waitFor(t, 20*time.Second, "xrdp's VNC backend connected", func() bool { return strings.Contains(srv.log(), "VNC connection complete, connected ok") })

	out := filepath.Join(t.TempDir(), "typed")
	startProc(t, []string{"DISPLAY=" + srv.Display}, xterm, "-geometry", "80x10+0+0", "-e", "sh", "-c", "cat > "+out)
	// The keys go to whatever has the X input focus: wait until that is
	// the xterm's window (mapped, and focused as X itself reports), not
	// only until xdotool found the window.
	xdo := func(args ...string) string {
		cmd := exec.Command(xdotool, args...)
		cmd.Env = append(os.Environ(), "DISPLAY="+srv.Display)
		out, err := cmd.Output()
		if err != nil {
			return ""
		}
		return strings.TrimSpace(string(out))
	}
	waitFor(t, 30*time.Second, "xterm's window focused", func() bool {
		win := xdo("search", "--onlyvisible", "--class", "xterm")
		if win == "" || strings.Contains(win, "\n") {
			return false
		}
		xdo("windowfocus", win)
		return xdo("getwindowfocus") == win
	})
	run(t, ctx, 10*time.Second, chromedp.Focus(`#screen canvas`, chromedp.ByQuery),
		chromedp.KeyEvent("y"), chromedp.KeyEvent("z"), chromedp.KeyEvent(kb.Enter))
	waitFor(t, 20*time.Second, "the typed line on the host", func() bool {
		b, _ := os.ReadFile(out)
		return strings.Contains(string(b), "\n")
	})
	if b, _ := os.ReadFile(out); string(b) != "zy\n" {
		t.Fatalf("with the German layout the host received %q, want %q", b, "zy\n")
	}
}
