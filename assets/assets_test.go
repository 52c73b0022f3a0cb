package assets

import (
	"bytes"
	"compress/gzip"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func fetch(t *testing.T, s *Server, method, url string, hdr map[string]string) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest(method, url, nil)
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	rec := httptest.NewRecorder()
	s.ServeHTTP(rec, req)
	return rec
}

func TestVendorBuilt(t *testing.T) {
	if !New().VendorBuilt() {
		t.Fatal("browser clients not built into assets/vendor: run `cd assets && npm ci && node build.mjs` (make test does)")
	}
}

func TestTypesCachingAndCompression(t *testing.T) {
	s := New()
	cases := []struct{ logical, ctype string }{
		{"portal.css", "text/css; charset=utf-8"},
		{"session.js", "text/javascript; charset=utf-8"},
		{"icons/desktop.svg", "image/svg+xml"},
		{"vendor/novnc/core/rfb.js", "text/javascript; charset=utf-8"},
		{"vendor/xterm/xterm.mjs", "text/javascript; charset=utf-8"},
		{"vendor/ironrdp/rdp_client_bg.wasm", "application/wasm"},
	}
	for _, tc := range cases {
		rec := fetch(t, s, "GET", s.URL(tc.logical), nil)
		if rec.Code != 200 || rec.Header().Get("Content-Type") != tc.ctype {
			t.Fatalf("%s: %d %q", tc.logical, rec.Code, rec.Header().Get("Content-Type"))
		}
		if rec.Header().Get("Cache-Control") != "public, max-age=31536000, immutable" || rec.Header().Get("X-Content-Type-Options") != "nosniff" {
			t.Fatalf("%s: headers %v", tc.logical, rec.Header())
		}
	}
	// Unhashed URLs revalidate.
	if rec := fetch(t, s, "GET", "/static/portal.css", nil); rec.Code != 200 || rec.Header().Get("Cache-Control") != "no-cache" {
		t.Fatalf("unhashed: %d %v", rec.Code, rec.Header())
	}
	// Compression by Accept-Encoding, q-values respected.
	wasm := s.URL("vendor/ironrdp/rdp_client_bg.wasm")
	raw := fetch(t, s, "GET", wasm, nil).Body.Bytes()
	br := fetch(t, s, "GET", wasm, map[string]string{"Accept-Encoding": "gzip, br"})
	if br.Header().Get("Content-Encoding") != "br" || br.Body.Len() >= len(raw)/2 {
		t.Fatalf("brotli: %q %d of %d bytes", br.Header().Get("Content-Encoding"), br.Body.Len(), len(raw))
	}
	gz := fetch(t, s, "GET", wasm, map[string]string{"Accept-Encoding": "br;q=0, gzip"})
	if gz.Header().Get("Content-Encoding") != "gzip" {
		t.Fatalf("br;q=0 must not get brotli: %q", gz.Header().Get("Content-Encoding"))
	}
	zr, err := gzip.NewReader(bytes.NewReader(gz.Body.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	unz, _ := io.ReadAll(zr)
	if !bytes.Equal(unz, raw) {
		t.Fatal("gzip body does not decompress to the wasm")
	}
	if gz.Header().Get("Vary") != "Accept-Encoding" {
		t.Fatal("no Vary: Accept-Encoding")
	}
	// A portal file without a precompressed sibling is gzipped on the fly.
	css := fetch(t, s, "GET", s.URL("portal.css"), map[string]string{"Accept-Encoding": "gzip"})
	if css.Header().Get("Content-Encoding") != "gzip" {
		t.Fatal("portal.css not compressed")
	}
}

func TestETagAndHead(t *testing.T) {
	s := New()
	u := s.URL("vendor/novnc/core/rfb.js")
	first := fetch(t, s, "GET", u, map[string]string{"Accept-Encoding": "gzip"})
	etag := first.Header().Get("ETag")
	if etag == "" || !strings.HasSuffix(etag, `-gzip"`) {
		t.Fatalf("etag %q", etag)
	}
	if rec := fetch(t, s, "GET", u, map[string]string{"Accept-Encoding": "gzip", "If-None-Match": etag}); rec.Code != http.StatusNotModified || rec.Body.Len() != 0 {
		t.Fatalf("If-None-Match: %d", rec.Code)
	}
	head := fetch(t, s, "HEAD", u, nil)
	if head.Code != 200 || head.Body.Len() != 0 || head.Header().Get("Content-Length") == "" {
		t.Fatalf("HEAD: %d len %d", head.Code, head.Body.Len())
	}
	if rec := fetch(t, s, "POST", u, nil); rec.Code != http.StatusMethodNotAllowed {
		t.Fatalf("POST: %d", rec.Code)
	}
}

func TestNotFoundAndTraversal(t *testing.T) {
	s := New()
	for _, p := range []string{
		"/static/nope.js", "/static/", "/static/icons/", "/static/../assets.go", "/static/%2e%2e/assets.go",
		"/static/vendor/../static/portal.css", "/static/vendor/README.md", s.URL("vendor/ironrdp/rdp_client_bg.wasm.br"), "/elsewhere",
	} {
		if rec := fetch(t, s, "GET", p, nil); rec.Code != http.StatusNotFound {
			t.Errorf("%s: %d, want 404", p, rec.Code)
		}
	}
}
