package assets

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"portico/internal/testbrowser"
)

// browserPage loads the three clients the way the portal does: ES modules
// by their hashed URLs, relative imports inside them, the wasm fetched by
// IronRDP's own init() from next to its module. Errors land in the title so the test can show them.
const browserPage = `<!doctype html>
<html><head><title>loading</title><link rel="stylesheet" href="%[1]s"></head>
<body><div id="term" style="width:640px;height:240px"></div>
<script type="module">
try {
  const { default: RFB } = await import(%[2]q);
  if (typeof RFB !== 'function') throw new Error('noVNC RFB is not a class');

  const { init, Backend } = await import(%[3]q);
  await init('warn');
  if (typeof Backend?.SessionBuilder !== 'function') throw new Error('IronRDP has no SessionBuilder');
  // compileStreaming refuses anything not served as application/wasm,
  // where init() would quietly fall back to a slower path.
  await WebAssembly.compileStreaming(fetch(%[4]q));

  const { Terminal } = await import(%[5]q);
  const { FitAddon } = await import(%[6]q);
  const term = new Terminal();
  const fit = new FitAddon();
  term.loadAddon(fit);
  term.open(document.getElementById('term'));
  fit.fit();
  await new Promise((done) => term.write('portico', done));
  if (!document.querySelector('#term .xterm')) throw new Error('xterm did not render');
  if (getComputedStyle(document.querySelector('#term .xterm')).position !== 'relative') throw new Error('xterm.css not applied');
  document.title = 'ok';
} catch (e) {
  document.title = 'error: ' + e;
}
</script></body></html>`

// TestBrowserLoadsClients runs headless Chromium against the real handler
// over TLS (Chromium only offers brotli to secure origins), so the wasm
// and modules are decoded from the .br files build.mjs wrote.
func TestBrowserLoadsClients(t *testing.T) {
	s, _ := built(t)
	var mu sync.Mutex
	served := map[string]string{} // path → "<status> <Content-Encoding>"
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprintf(w, browserPage,
			s.URL("vendor/xterm/xterm.css"), s.URL("vendor/novnc/core/rfb.js"),
			s.URL("vendor/ironrdp/iron-remote-desktop-rdp.js"), s.URL("vendor/ironrdp/iron-remote-desktop-rdp.wasm"),
			s.URL("vendor/xterm/xterm.mjs"), s.URL("vendor/xterm/addon-fit.mjs"))
	})
	mux.Handle(Prefix, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
		s.ServeHTTP(rec, r)
		mu.Lock()
		served[r.URL.Path] = fmt.Sprintf("%d %s", rec.status, w.Header().Get("Content-Encoding"))
		mu.Unlock()
	}))
	srv := httptest.NewTLSServer(mux)
	t.Cleanup(srv.Close)

	browser := testbrowser.Start(t)
	// Generous, only so a wedged browser fails the test instead of hanging it.
	ctx, cancelTimeout := context.WithTimeout(browser, 90*time.Second)
	t.Cleanup(cancelTimeout)

	var consoleMu sync.Mutex
	var console []string
	chromedp.ListenTarget(ctx, func(ev any) {
		if e, ok := ev.(*runtime.EventConsoleAPICalled); ok && (e.Type == runtime.APITypeWarning || e.Type == runtime.APITypeError) {
			var parts []string
			for _, a := range e.Args {
				parts = append(parts, string(a.Value)+a.Description)
			}
			consoleMu.Lock()
			console = append(console, string(e.Type)+": "+strings.Join(parts, " "))
			consoleMu.Unlock()
		}
	})

	var title string
	err := chromedp.Run(ctx,
		chromedp.Navigate(srv.URL+"/"),
		chromedp.Poll(`document.title !== 'loading'`, nil),
		chromedp.Title(&title),
	)
	consoleMu.Lock()
	defer consoleMu.Unlock()
	if err != nil {
		t.Fatalf("browser: %v (console: %q)", err, console)
	}
	if title != "ok" {
		t.Fatalf("page title %q (console: %q)", title, console)
	}
	// A MIME or decoding problem can surface only as a console warning
	// (ironrdp's instantiateStreaming fallback); none is acceptable.
	if len(console) > 0 {
		t.Errorf("console warnings/errors: %q", console)
	}
	mu.Lock()
	defer mu.Unlock()
	for _, logical := range []string{"vendor/ironrdp/iron-remote-desktop-rdp.wasm", "vendor/novnc/core/rfb.js", "vendor/novnc/vendor/pako/lib/zlib/inflate.js", "vendor/xterm/xterm.mjs"} {
		if got := served[s.URL(logical)]; got != "200 br" {
			t.Errorf("%s: served %q to the browser, want \"200 br\" (all: %v)", logical, got, served)
		}
	}
}

// statusRecorder remembers the status the handler wrote.
type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (r *statusRecorder) WriteHeader(code int) {
	r.status = code
	r.ResponseWriter.WriteHeader(code)
}
