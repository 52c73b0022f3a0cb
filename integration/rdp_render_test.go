package integration

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"image"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// TestRDPWebClientRendersXrdpText draws an xterm full of known text on
// xrdp's X display (Xvnc), opens the session in headless Chromium through
// the real gateway, and compares the xterm's rectangle on the session
// canvas with the same rectangle of the X display, pixel by pixel. Web
// clients that mis-address the rows of xrdp's bitmaps (the source stride)
// draw each row shifted against the one above: the text shears and most
// of its pixels land in the wrong place, which this comparison counts.
//
// Known to fail with the vendored @devolutions/iron-remote-desktop-rdp
// 0.7.0: it still shears xrdp's bitmaps whose width is padded past the
// destination rectangle (seen on the xterm's 546-pixel-wide updates; runs
// where xrdp happened to send the window in wider rectangles pass).
// IronRDP fixed this upstream after 0.7.0 ("preserve bitmap source
// stride"); no npm release has it yet. So the test runs only when
// PORTICO_XRDP_RENDER=1 asks for it, and says so when it does not run.
func TestRDPWebClientRendersXrdpText(t *testing.T) {
	if os.Getenv("PORTICO_XRDP_RENDER") != "1" {
		t.Skip("known failure: IronRDP web 0.7.0 shears xrdp bitmaps with padded widths (fixed upstream after 0.7.0, not yet on npm); set PORTICO_XRDP_RENDER=1 to run")
	}
	srv := startXRDP(t)
	xterm := need(t, "xterm", "xterm")
	xdotool := need(t, "xdotool", "xdotool")
	importCmd := need(t, "import", "imagemagick")
	xrefresh := need(t, "xrefresh", "x11-xserver-utils")
	p := startPortico(t)
	p.seedUser(t)
	addXRDP(t, p, srv)
	ctx := openXRDP(t, p, srv, nil)
	waitFor(t, 30*time.Second, "xrdp's VNC backend connected", func() bool { return strings.Contains(srv.log(), "VNC connection complete, connected ok") })

	// Black on white, a fixed bitmap font: text with sharp edges in every
	// row, the worst case for a stride error. The window stays put, the
	// text does not change, and xterm's cursor does not blink by default.
	lines := []string{}
	for i := 0; i < 12; i++ {
		lines = append(lines, fmt.Sprintf("%02d Portico renders xrdp: The quick brown fox jumps over the lazy dog 0123456789", i))
	}
	script := filepath.Join(t.TempDir(), "text.sh")
	os.WriteFile(script, []byte("printf '%s\\n' '"+strings.Join(lines, "' '")+"'\nexec sleep 600\n"), 0o700)
	startProc(t, []string{"DISPLAY=" + srv.Display}, xterm, "-geometry", "90x14+16+16", "-fg", "black", "-bg", "white",
		"-fn", "fixed", "+sb", "-title", "render-check", "-e", "sh", script)
	var win image.Rectangle
	waitFor(t, 20*time.Second, "xterm's window mapped", func() bool {
		cmd := exec.Command(xdotool, "search", "--sync", "--onlyvisible", "--name", "render-check", "getwindowgeometry", "--shell")
		cmd.Env = append(os.Environ(), "DISPLAY="+srv.Display)
		out, err := cmd.Output()
		if err != nil {
			return false
		}
		v := map[string]int{}
		for _, l := range strings.Split(string(out), "\n") {
			if k, val, ok := strings.Cut(l, "="); ok {
				v[k], _ = strconv.Atoi(val)
			}
		}
		win = image.Rect(v["X"], v["Y"], v["X"]+v["WIDTH"], v["Y"]+v["HEIGHT"])
		return win.Dx() > 100 && win.Dy() > 100
	})

	dir := os.Getenv("PORTICO_SCREENSHOTS")
	if dir == "" {
		dir = t.TempDir()
	}
	var last renderDiff
	var host, page image.Image
	deadline := time.Now().Add(60 * time.Second)
	// Make xrdp send the window as its own update, the width xterm
	// repaints: an expose over exactly the window's rectangle. Without it
	// the text may first arrive inside xrdp's full-width start-up tiles,
	// which even a client with the stride bug draws right.
	refresh := func() {
		cmd := exec.Command(xrefresh, "-display", srv.Display, "-geometry", fmt.Sprintf("%dx%d+%d+%d", win.Dx(), win.Dy(), win.Min.X, win.Min.Y))
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("xrefresh: %v %s", err, out)
		}
	}
	for {
		refresh()
		time.Sleep(time.Second)
		host = captureX(t, importCmd, srv.Display)
		page = canvasImage(t, ctx)
		last = compareRegion(host, page, win)
		// The text must be on the X display (so an empty window cannot
		// pass) and on the canvas in the same places.
		if last.ink >= 2000 && last.ratio() <= 0.03 {
			break
		}
		if time.Now().After(deadline) {
			savePNG(t, filepath.Join(dir, "xrdp-render-host.png"), host)
			savePNG(t, filepath.Join(dir, "xrdp-render-canvas.png"), page)
			t.Fatalf("the session canvas does not show the X display's text: %s (images in %s)", last, dir)
		}
	}
	t.Logf("xterm at %v: %s", win, last)
	screenshot(t, ctx, "rdp-xrdp-text")
}

// renderDiff counts, within one rectangle, the X display's ink (dark)
// pixels and the pixels where the canvas differs from the display.
type renderDiff struct {
	region             image.Rectangle
	ink, differ, total int
	sizeHost, sizePage image.Point
}

// ratio is the share of the text's pixels that the canvas got wrong.
func (d renderDiff) ratio() float64 {
	if d.ink == 0 {
		return 1
	}
	return float64(d.differ) / float64(d.ink)
}

func (d renderDiff) String() string {
	return fmt.Sprintf("in %v: %d of %d pixels differ by more than the tolerance, against %d text pixels on the X display (%.1f%%); X display %v, canvas %v",
		d.region, d.differ, d.total, d.ink, 100*d.ratio(), d.sizeHost, d.sizePage)
}

// compareRegion compares host and page over r. A pixel differs when any
// channel is off by more than 48 of 255: lossless RDP bitmaps at 24 bpp
// match exactly, 16 bpp colour loses at most 8, a shifted glyph edge is
// black against white.
func compareRegion(host, page image.Image, r image.Rectangle) renderDiff {
	d := renderDiff{region: r, sizeHost: host.Bounds().Size(), sizePage: page.Bounds().Size()}
	if !r.In(host.Bounds()) || !r.In(page.Bounds()) {
		d.ink = 0
		return d
	}
	for y := r.Min.Y; y < r.Max.Y; y++ {
		for x := r.Min.X; x < r.Max.X; x++ {
			hr, hg, hb, _ := host.At(x, y).RGBA()
			pr, pg, pb, _ := page.At(x, y).RGBA()
			d.total++
			if (hr+hg+hb)/3>>8 < 128 {
				d.ink++
			}
			if absDiff(hr, pr) > 48 || absDiff(hg, pg) > 48 || absDiff(hb, pb) > 48 {
				d.differ++
			}
		}
	}
	return d
}

// absDiff is |a-b| of two 16-bit colour channels, in 8-bit units.
func absDiff(a, b uint32) uint32 {
	if a > b {
		return (a - b) >> 8
	}
	return (b - a) >> 8
}

// captureX takes the X display's root window as an image.
func captureX(t *testing.T, importCmd, display string) image.Image {
	t.Helper()
	out, err := exec.Command(importCmd, "-display", display, "-window", "root", "png:-").Output()
	if err != nil {
		t.Fatalf("import -window root: %v", err)
	}
	img, err := png.Decode(bytes.NewReader(out))
	if err != nil {
		t.Fatalf("decode the X display's capture: %v", err)
	}
	return img
}

// canvasImage reads the session canvas through toDataURL.
func canvasImage(t *testing.T, ctx context.Context) image.Image {
	t.Helper()
	var url string
	run(t, ctx, 20*time.Second, chromedp.Evaluate(`window.__portico.canvas.toDataURL('image/png')`, &url))
	b64, ok := strings.CutPrefix(url, "data:image/png;base64,")
	if !ok {
		t.Fatalf("canvas.toDataURL returned %.40q", url)
	}
	raw, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		t.Fatalf("canvas data URL: %v", err)
	}
	img, err := png.Decode(bytes.NewReader(raw))
	if err != nil {
		t.Fatalf("decode the canvas: %v", err)
	}
	return img
}

func savePNG(t *testing.T, path string, img image.Image) {
	t.Helper()
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		t.Fatalf("encode %s: %v", path, err)
	}
	os.MkdirAll(filepath.Dir(path), 0o755)
	if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
		t.Fatalf("write %s: %v", path, err)
	}
}
