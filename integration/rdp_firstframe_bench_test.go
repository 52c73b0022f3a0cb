package integration

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/base64"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"portico/internal/testbrowser"
)

// firstFrameProbe is added to every document the benchmark's browser
// opens. On the RDP session page it answers the credential prompt the
// moment it appears (no typing time) and stamps performance.now() just
// before submitting it: the action that starts the RDCleanPath, TLS and
// NLA connection. It then stamps the first remote pixels: IronRDP's web
// client draws only with putImageData of what it decoded from the host,
// so the probe wraps that method and, right after the first call that
// leaves a non-transparent pixel on the session's canvas, takes the
// frame stamp and unwraps itself. All stamps are taken in the page, so
// the Go side's polling adds nothing to them.
const firstFrameProbe = `(() => {
  const probe = window.__firstFrame = {};
  if (!location.pathname.includes('/session/')) return;
  const ctx2d = CanvasRenderingContext2D.prototype;
  const put = ctx2d.putImageData;
  ctx2d.putImageData = function (img, dx, dy, sx = 0, sy = 0, sw = img.width, sh = img.height) {
    put.apply(this, arguments);
    const now = performance.now();
    if (!this.canvas.closest('#screen') || sw <= 0 || sh <= 0) return;
    const d = this.getImageData(dx + sx, dy + sy, sw, sh).data;
    for (let i = 3; i < d.length; i += 4) {
      if (d[i] !== 0) {
        Object.assign(probe, { frame: now, epoch: performance.timeOrigin + now, rgb: [d[i - 3], d[i - 2], d[i - 1]] });
        probe.static = performance.getEntriesByType('resource').filter((e) => new URL(e.name).pathname.startsWith('/static/'))
          .map((e) => ({ Path: new URL(e.name).pathname, Wire: e.transferSize, Body: e.encodedBodySize, Decoded: e.decodedBodySize }));
        ctx2d.putImageData = put;
        return;
      }
    }
  };
  const fill = () => {
    const box = document.getElementById('rdp-login');
    if (!box || box.hidden) { requestAnimationFrame(fill); return; }
    probe.prompt = performance.now();
    document.getElementById('rdp-pass').value = %q;
    probe.submit = performance.now();
    document.getElementById('rdp-form').requestSubmit();
  };
  requestAnimationFrame(fill);
})()`

// firstFrame is one connection's page-side stamps in milliseconds.
type firstFrame struct {
	Prompt, Submit, Frame, Epoch float64
	RGB                          []int      // a pixel of the first frame
	Static                       []resource // the page's /static/ files, from Resource Timing
	Failed                       string
}

// BenchmarkRDPFirstFrame measures the RDP time to first frame in headless
// Chromium through the gateway to freerdp-shadow-cli (NLA). It reports the
// median of connect→pixels (submitting the credentials → the host's first
// pixels on the page's canvas) as ms/first-frame, and click→pixels (the
// portal's Open button → the same pixels, including the session page
// load, the wasm start and the prompt) as ms/click-to-frame. The first
// launch, with the browser's cache empty, runs before the timed loop and
// is reported as cold-*.
//
// Each round also opens "office-stored", the same host with the gateway
// signing in (stored credentials: no prompt in the page, CredSSP run by
// the gateway), and reports its Open click→first pixels as
// ms/click-to-frame-stored next to ask's ms/click-to-frame.
//
// freerdp-shadow's first update is its screen buffer as it stands before
// any X damage was captured, which is black, not the display's green;
// the benchmark times that first update, the first pixels the host sends.
func BenchmarkRDPFirstFrame(b *testing.B) {
	srv, p := rdpOffice(b)
	p.do(b, "POST", "/api/v1/resources", map[string]any{"id": "office-stored", "name": "Office desktop (stored)", "protocol": "rdp", "host": "127.0.0.1",
		"port": srv.Port, "groups": []string{"staff"}, "credentials": map[string]any{"mode": "stored", "username": "test", "password": "test"}}, nil)
	// Trusted, not error-ignored: Chromium caches nothing it fetched over a
	// connection with a certificate error, and the cache is measured here.
	ctx := testbrowser.StartTrusting(b, gatewaySPKI(b, p))
	signIn(b, ctx, p)
	run(b, ctx, 10*time.Second, chromedp.ActionFunc(func(ctx context.Context) error {
		_, err := page.AddScriptToEvaluateOnNewDocument(fmt.Sprintf(firstFrameProbe, "test")).Do(ctx)
		return err
	}))

	cold := launchToFirstFrame(b, ctx, p, "office")
	b.Logf("first frame's first opaque pixel: rgb%v", cold.RGB)
	for _, r := range cold.Static {
		b.Logf("cold load %s: %.0f bytes on the wire, body %.0f, decoded %.0f", r.Path, r.Wire, r.Body, r.Decoded)
	}

	var connect, click, stored, warmWire []float64
	for b.Loop() {
		f := launchToFirstFrame(b, ctx, p, "office")
		connect = append(connect, f.Frame-f.Submit)
		click = append(click, f.Epoch-f.click)
		warmWire = append(warmWire, wire(b, f.Static, ""))
		s := launchToFirstFrame(b, ctx, p, "office-stored")
		stored = append(stored, s.Epoch-s.click)
	}
	b.ReportMetric(percentile(connect, 50), "ms/first-frame")
	b.ReportMetric(percentile(connect, 95), "ms/first-frame-p95")
	b.ReportMetric(percentile(click, 50), "ms/click-to-frame")
	b.ReportMetric(percentile(click, 95), "ms/click-to-frame-p95")
	b.ReportMetric(percentile(stored, 50), "ms/click-to-frame-stored")
	b.ReportMetric(percentile(stored, 95), "ms/click-to-frame-stored-p95")
	// After the loop: b.Loop's first call deletes metrics reported before it.
	b.ReportMetric(cold.Frame-cold.Submit, "ms/cold-first-frame")
	b.ReportMetric(cold.Epoch-cold.click, "ms/cold-click-to-frame")
	// What the web client costs to fetch: the wasm and all of the page's
	// static files on the first launch, and the most any later launch
	// fetched again (0 when they all come from the browser's cache).
	b.ReportMetric(wire(b, cold.Static, ".wasm"), "B/wasm-cold-wire")
	b.ReportMetric(wire(b, cold.Static, ""), "B/static-cold-wire")
	b.ReportMetric(slices.Max(warmWire), "B/static-warm-wire")
}

// resource is one Resource Timing entry: Wire is what came over the
// network including headers (0 when served from the browser's cache), Body
// the content-coded body, Decoded the file itself.
type resource struct {
	Path                string
	Wire, Body, Decoded float64
}

// launch is a firstFrame with the click's wall-clock stamp (epoch ms, the
// same clock as firstFrame.Epoch in the next page).
type launch struct {
	firstFrame
	click float64
}

// launchToFirstFrame opens the RDP resource from the portal page, waits
// for the probe's stamps, and ends the session so the next launch starts
// from the same state.
func launchToFirstFrame(b *testing.B, ctx context.Context, p *portico, id string) launch {
	b.Helper()
	sel := fmt.Sprintf(`button.open[data-id=%q]`, id)
	var l launch
	// Clicked from the page's script: the click navigates at once, and
	// chromedp's own Click sometimes reports the vanished node as an error.
	run(b, ctx, 30*time.Second, chromedp.Navigate(p.URL+"/userportal/"), chromedp.WaitVisible(sel, chromedp.ByQuery),
		chromedp.Evaluate(fmt.Sprintf(`(() => { const t = performance.timeOrigin + performance.now(); document.querySelector(%q).click(); return t; })()`, sel), &l.click))
	waitJS(b, ctx, 60*time.Second, `window.__firstFrame?.frame || document.body.dataset.state === 'off'`, "first frame")
	run(b, ctx, 10*time.Second, chromedp.Evaluate(`({Prompt: __firstFrame.prompt, Submit: __firstFrame.submit, Frame: __firstFrame.frame || 0,
		Epoch: __firstFrame.epoch || 0, RGB: __firstFrame.rgb || [], Static: __firstFrame.static || [], Failed: __firstFrame.frame ? '' : document.body.innerText.slice(0, 300)})`, &l.firstFrame))
	if l.Failed != "" {
		b.Fatalf("RDP session failed before its first frame: %s", l.Failed)
	}
	// A resource the gateway signs in to has no prompt: no submit stamp.
	if l.Submit < l.Prompt || (l.Submit > 0 && l.Frame <= l.Submit) || l.Epoch <= l.click {
		b.Fatalf("stamps out of order: click %.1f, %+v", l.click, l.firstFrame)
	}
	run(b, ctx, 10*time.Second, chromedp.Evaluate(`document.getElementById('btn-disconnect').click(); true`, nil))
	waitJS(b, ctx, 20*time.Second, `document.body.dataset.state === 'off'`, "session disconnected")
	waitFor(b, 20*time.Second, "the gateway to end the session", func() bool {
		var sessions []map[string]any
		p.do(b, "GET", "/api/v1/sessions", nil, &sessions)
		return len(sessions) == 0
	})
	return l
}

// gatewaySPKI is the base64 SHA-256 of the public key in the gateway's
// TLS certificate, the form Chromium's trust flag takes.
func gatewaySPKI(tb testing.TB, p *portico) string {
	tb.Helper()
	c, err := tls.Dial("tcp", strings.TrimPrefix(p.URL, "https://"), &tls.Config{InsecureSkipVerify: true})
	if err != nil {
		tb.Fatalf("gateway certificate: %v", err)
	}
	defer c.Close()
	sum := sha256.Sum256(c.ConnectionState().PeerCertificates[0].RawSubjectPublicKeyInfo)
	return base64.StdEncoding.EncodeToString(sum[:])
}

// wire sums the bytes on the wire of the resources whose path ends with
// suffix; it fails the benchmark when there are none, so a renamed file
// or a missing Resource Timing entry cannot pass as "nothing fetched".
func wire(tb testing.TB, rs []resource, suffix string) float64 {
	tb.Helper()
	sum, n := 0.0, 0
	for _, r := range rs {
		if strings.HasSuffix(r.Path, suffix) {
			sum += r.Wire
			n++
		}
	}
	if n == 0 {
		tb.Fatalf("no %q among the page's static files %v", suffix, rs)
	}
	return sum
}

// percentile is the nearest-rank q-th percentile of v.
func percentile(v []float64, q float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	i := int(q/100*float64(len(s))+0.5) - 1
	return s[min(max(i, 0), len(s)-1)]
}
