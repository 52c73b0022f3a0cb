package assets

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"net/http/httptest"
	"path"
	"strings"
	"testing"
	"testing/fstest"
	"time"
)

const buildHint = "browser clients not built into assets/vendor: run `cd assets && npm ci && node build.mjs` (or make assets)"

// built returns the embedded server and the vendored files build.mjs
// listed, failing the test when the build has not been run.
func built(t *testing.T) (*Server, []string) {
	t.Helper()
	s := New()
	if !s.VendorBuilt() {
		t.Fatal(buildHint)
	}
	b, err := files.ReadFile("vendor/manifest.json")
	if err != nil {
		t.Fatalf("%s: %v", buildHint, err)
	}
	var m struct{ Files []string }
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("manifest: %v", err)
	}
	return s, m.Files
}

func get(t *testing.T, h http.Handler, method, url string, hdr ...string) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest(method, url, nil)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Add(hdr[i], hdr[i+1])
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

func gunzip(t *testing.T, b []byte) []byte {
	t.Helper()
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("gzip header: %v", err)
	}
	out, err := io.ReadAll(zr)
	if err != nil {
		t.Fatalf("gunzip: %v", err)
	}
	return out
}

func TestVendorBuilt(t *testing.T) {
	built(t)
}

func TestVendorBuiltDetectsMissingOrPartialBuild(t *testing.T) {
	base := func() fstest.MapFS {
		return fstest.MapFS{
			"static/portal.css": {Data: []byte("body{}")},
			"vendor/README.md":  {Data: []byte("run build.mjs")},
		}
	}
	fresh := base()
	partial := base()
	partial["vendor/manifest.json"] = &fstest.MapFile{Data: []byte(`{"files":["a.js","b.js"]}`)}
	partial["vendor/a.js"] = &fstest.MapFile{Data: []byte("export {}")}
	complete := base()
	complete["vendor/manifest.json"] = &fstest.MapFile{Data: []byte(`{"files":["a.js"]}`)}
	complete["vendor/a.js"] = &fstest.MapFile{Data: []byte("export {}")}
	garbled := base()
	garbled["vendor/manifest.json"] = &fstest.MapFile{Data: []byte(`{"files":`)}
	for _, tc := range []struct {
		name string
		fsys fstest.MapFS
		want bool
	}{{"fresh clone", fresh, false}, {"partial", partial, false}, {"garbled manifest", garbled, false}, {"complete", complete, true}} {
		s, err := newServer(tc.fsys)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if got := s.VendorBuilt(); got != tc.want {
			t.Errorf("%s: VendorBuilt() = %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestTreeHashFollowsContent(t *testing.T) {
	tree := func(css string) string {
		s, err := newServer(fstest.MapFS{"static/portal.css": {Data: []byte(css)}, "vendor/README.md": {Data: []byte("x")}})
		if err != nil {
			t.Fatal(err)
		}
		return s.URL("portal.css")
	}
	a, b, a2 := tree("body{color:red}"), tree("body{color:blue}"), tree("body{color:red}")
	if a == b || a != a2 {
		t.Fatalf("URLs %s %s %s: must change with content and only with content", a, b, a2)
	}
	if !strings.HasPrefix(a, Prefix) || !strings.HasSuffix(a, "/portal.css") {
		t.Fatalf("URL %s", a)
	}
}

func TestContentTypes(t *testing.T) {
	s, vendored := built(t)
	for _, tc := range []struct{ logical, want string }{
		{"portal.css", "text/css; charset=utf-8"},
		{"session.js", "text/javascript; charset=utf-8"},
		{"icons/desktop.svg", "image/svg+xml"},
		{"vendor/novnc/core/rfb.js", "text/javascript; charset=utf-8"},
		{"vendor/xterm/xterm.mjs", "text/javascript; charset=utf-8"},
		{"vendor/xterm/xterm.css", "text/css; charset=utf-8"},
		{"vendor/ironrdp/iron-remote-desktop-rdp.js", "text/javascript; charset=utf-8"},
		{"vendor/ironrdp/iron-remote-desktop-rdp.wasm", "application/wasm"},
		{"vendor/manifest.json", "application/json"},
		{"vendor/xterm/LICENSE", "text/plain; charset=utf-8"},
	} {
		rec := get(t, s, "GET", s.URL(tc.logical))
		if rec.Code != http.StatusOK || rec.Header().Get("Content-Type") != tc.want {
			t.Errorf("%s: %d %q, want 200 %q", tc.logical, rec.Code, rec.Header().Get("Content-Type"), tc.want)
		}
		if rec.Header().Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("%s: no nosniff", tc.logical)
		}
	}
	// No vendored file may fall back to a generic or sniffed type.
	for _, f := range vendored {
		if ct := get(t, s, "HEAD", s.URL("vendor/"+f)).Header().Get("Content-Type"); ct == "" || ct == "application/octet-stream" {
			t.Errorf("vendor/%s: Content-Type %q", f, ct)
		}
	}
}

func TestPrecompressedSiblings(t *testing.T) {
	s, vendored := built(t)
	var sawBr, sawGz int
	for _, f := range vendored {
		u := s.URL("vendor/" + f)
		raw := get(t, s, "GET", u)
		want, err := files.ReadFile("vendor/" + f)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(raw.Body.Bytes(), want) || raw.Header().Get("Content-Encoding") != "" {
			t.Fatalf("%s: identity body differs from the embedded file", f)
		}
		if br, err := files.ReadFile("vendor/" + f + ".br"); err == nil {
			sawBr++
			rec := get(t, s, "GET", u, "Accept-Encoding", "gzip, deflate, br")
			// Go has no brotli decoder; the browser test decodes these. Here:
			// the right header, the build's bytes, and a real saving.
			if rec.Header().Get("Content-Encoding") != "br" || !bytes.Equal(rec.Body.Bytes(), br) || len(br) >= len(want) {
				t.Errorf("%s: br %q, %d bytes of %d", f, rec.Header().Get("Content-Encoding"), rec.Body.Len(), len(want))
			}
			if rec.Header().Get("Vary") != "Accept-Encoding" {
				t.Errorf("%s: Vary %q", f, rec.Header().Get("Vary"))
			}
		}
		if _, err := files.ReadFile("vendor/" + f + ".gz"); err == nil {
			sawGz++
			rec := get(t, s, "GET", u, "Accept-Encoding", "br;q=0, gzip")
			if rec.Header().Get("Content-Encoding") != "gzip" {
				t.Fatalf("%s: br;q=0 gave %q", f, rec.Header().Get("Content-Encoding"))
			}
			if !bytes.Equal(gunzip(t, rec.Body.Bytes()), want) {
				t.Errorf("%s: gzip body does not decompress to the file", f)
			}
		}
	}
	if sawBr == 0 || sawGz == 0 {
		t.Fatalf("build wrote %d .br and %d .gz siblings; expected some of each", sawBr, sawGz)
	}
	// The wasm is the big one: it must be compressed well.
	wasm := s.URL("vendor/ironrdp/iron-remote-desktop-rdp.wasm")
	raw := get(t, s, "GET", wasm).Body.Len()
	if br := get(t, s, "GET", wasm, "Accept-Encoding", "br"); br.Body.Len() >= raw/2 {
		t.Errorf("wasm: br %d of %d bytes", br.Body.Len(), raw)
	}
	// The portal's own files are gzipped at start-up.
	want, err := files.ReadFile("static/portal.css")
	if err != nil {
		t.Fatal(err)
	}
	css := get(t, s, "GET", s.URL("portal.css"), "Accept-Encoding", "gzip")
	if css.Header().Get("Content-Encoding") != "gzip" || !bytes.Equal(gunzip(t, css.Body.Bytes()), want) {
		t.Errorf("portal.css: %q", css.Header().Get("Content-Encoding"))
	}
}

func TestNegotiate(t *testing.T) {
	both := []string{"br", "gzip"}
	for _, tc := range []struct {
		header  string
		present bool
		avail   []string
		want    string
	}{
		{"", false, both, ""},
		{"", true, both, ""},
		{"gzip, deflate, br, zstd", true, both, "br"},
		{"gzip", true, both, "gzip"},
		{"br", true, []string{"gzip"}, ""},
		{"br;q=0, gzip", true, both, "gzip"},
		{"BR;Q=0.5, GZIP;q=0.8", true, both, "gzip"},
		{"br;q=0.8, gzip;q=0.8", true, both, "br"},
		{"x-gzip", true, both, "gzip"},
		{"*", true, both, "br"},
		{"*;q=0", true, both, ""},
		{"*, br;q=0", true, both, "gzip"},
		{"*;q=0, gzip", true, both, "gzip"},
		{"gzip;q=0.5, identity", true, both, ""},
		{"gzip;q=0.5, *", true, both, "br"}, // br gets the "*" weight
		{"gzip;q=0.5, *", true, []string{"gzip"}, ""},
		{"gzip, identity;q=0.5", true, both, "gzip"},
		{"br;q=abc, gzip;q=0.1", true, both, "gzip"},
		{"br;q=1e0", true, both, ""},
		{"br;q=NaN", true, both, ""},
		{"br;q=2", true, both, ""},
		{"br;q=-1", true, both, ""},
		{"gzip;q=0, gzip", true, both, "gzip"},
		{" , ;q=1, br ; q = 0.3 ", true, both, "br"},
		{"deflate", true, both, ""},
	} {
		if got := negotiate(tc.header, tc.present, tc.avail); got != tc.want {
			t.Errorf("negotiate(%q, %v, %v) = %q, want %q", tc.header, tc.present, tc.avail, got, tc.want)
		}
	}
}

func FuzzNegotiate(f *testing.F) {
	for _, seed := range []string{"", "gzip, deflate, br", "br;q=0, gzip", "*;q=0.5, identity", "x-gzip;q=1.000", ";;,,q=", "br;q=0.0001"} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, header string) {
		got := negotiate(header, true, []string{"br", "gzip"})
		lower := strings.ToLower(header)
		switch got {
		case "":
		case "br", "gzip":
			// Only ever a coding the client named, directly or via "*".
			if !strings.Contains(lower, got) && !strings.Contains(lower, "*") {
				t.Fatalf("%q picked %q", header, got)
			}
		default:
			t.Fatalf("%q picked unavailable %q", header, got)
		}
		if negotiate(header, true, nil) != "" {
			t.Fatalf("%q picked a coding with none available", header)
		}
	})
}

func TestCaching(t *testing.T) {
	s, _ := built(t)
	u := s.URL("vendor/novnc/core/rfb.js")
	hashed := get(t, s, "GET", u)
	if cc := hashed.Header().Get("Cache-Control"); cc != "public, max-age=31536000, immutable" {
		t.Fatalf("hashed URL Cache-Control %q", cc)
	}
	etag := hashed.Header().Get("ETag")
	if !strings.HasPrefix(etag, `"`) || !strings.HasSuffix(etag, `"`) || len(etag) < 10 {
		t.Fatalf("ETag %q is not a strong validator", etag)
	}
	// Unhashed, and another build's hash: served, but revalidated.
	other := strings.Repeat("0", hashLen)
	if other == s.Hash() {
		other = strings.Repeat("1", hashLen)
	}
	for _, p := range []string{"/static/vendor/novnc/core/rfb.js", Prefix + other + "/vendor/novnc/core/rfb.js"} {
		rec := get(t, s, "GET", p)
		if rec.Code != http.StatusOK || rec.Header().Get("Cache-Control") != "no-cache" || rec.Header().Get("ETag") != etag {
			t.Errorf("%s: %d %q %q", p, rec.Code, rec.Header().Get("Cache-Control"), rec.Header().Get("ETag"))
		}
	}
	gz := get(t, s, "GET", u, "Accept-Encoding", "gzip")
	gzTag := gz.Header().Get("ETag")
	if gzTag == etag || gzTag == "" {
		t.Fatalf("gzip ETag %q must differ from identity %q", gzTag, etag)
	}
	for _, tc := range []struct {
		inm, ae string
		want    int
	}{
		{etag, "", http.StatusNotModified},
		{`"nope", ` + etag, "", http.StatusNotModified},
		{"W/" + etag, "", http.StatusNotModified}, // If-None-Match compares weakly
		{"*", "", http.StatusNotModified},
		{gzTag, "gzip", http.StatusNotModified},
		{etag, "gzip", http.StatusOK}, // a cached identity body is not the gzip one
		{`"nope"`, "", http.StatusOK},
	} {
		rec := get(t, s, "GET", u, "If-None-Match", tc.inm, "Accept-Encoding", tc.ae)
		if rec.Code != tc.want {
			t.Errorf("If-None-Match %s, Accept-Encoding %q: %d, want %d", tc.inm, tc.ae, rec.Code, tc.want)
		}
		if rec.Code == http.StatusNotModified && rec.Body.Len() != 0 {
			t.Errorf("304 with a body")
		}
	}
}

func TestHeadRangeAndMethods(t *testing.T) {
	s, _ := built(t)
	u := s.URL("vendor/ironrdp/iron-remote-desktop-rdp.js")
	full := get(t, s, "GET", u)
	head := get(t, s, "HEAD", u)
	if head.Code != http.StatusOK || head.Body.Len() != 0 || head.Header().Get("Content-Length") != fmt.Sprint(full.Body.Len()) {
		t.Fatalf("HEAD: %d, body %d, Content-Length %q (GET has %d)", head.Code, head.Body.Len(), head.Header().Get("Content-Length"), full.Body.Len())
	}
	part := get(t, s, "GET", u, "Range", "bytes=10-19")
	if part.Code != http.StatusPartialContent || !bytes.Equal(part.Body.Bytes(), full.Body.Bytes()[10:20]) {
		t.Fatalf("Range: %d %q", part.Code, part.Body.String())
	}
	for _, m := range []string{"POST", "PUT", "DELETE"} {
		if rec := get(t, s, m, u); rec.Code != http.StatusMethodNotAllowed || rec.Header().Get("Allow") != "GET, HEAD" {
			t.Errorf("%s: %d", m, rec.Code)
		}
	}
}

// rawGet sends path byte for byte, so no client-side cleaning hides what a
// hostile client could send.
func rawGet(t *testing.T, addr, target string) int {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	defer c.Close()
	if err := c.SetDeadline(time.Now().Add(30 * time.Second)); err != nil {
		t.Fatal(err)
	}
	if _, err := fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", target); err != nil {
		t.Fatalf("write: %v", err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("%s: read response: %v", target, err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func TestNotFoundAndTraversal(t *testing.T) {
	s, _ := built(t)
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	addr := srv.Listener.Addr().String()
	h := s.Hash()
	if rawGet(t, addr, s.URL("portal.css")) != http.StatusOK {
		t.Fatal("control request failed")
	}
	for _, p := range []string{
		"/static/nope.js",
		"/static/", "/static/" + h + "/", "/static/icons/", "/static/vendor/", "/static/vendor/novnc/core/",
		"/static/../assets.go", "/static/" + h + "/../../assets.go",
		"/static/%2e%2e/assets.go", "/static/%2E%2E%2Fassets.go", "/static/" + h + "/%2e%2e/%2e%2e/go.mod",
		"/static/..%2f..%2fgo.mod", "/static/vendor/..%2fstatic%2fportal.css", "/static/vendor/../static/portal.css",
		"/static/./portal.css", "/static//portal.css", "/static/portal.css/", "/static/%2fetc%2fpasswd",
		"/static/..\\assets.go", "/static/vendor/README.md", "/static/vendor/ironrdp/iron-remote-desktop-rdp.wasm.br",
		"/static/vendor/ironrdp/iron-remote-desktop-rdp.wasm.gz", "/static/static/portal.css", "/elsewhere", "/static",
		"/static/portal.css%00", "/static/assets.go", "/static/build.mjs",
	} {
		if code := rawGet(t, addr, p); code != http.StatusNotFound {
			t.Errorf("GET %s: %d, want 404", p, code)
		}
	}
}

// FuzzServePath feeds arbitrary request paths: the handler must not panic,
// and whatever it serves must be an indexed, clean embedded file.
func FuzzServePath(f *testing.F) {
	s := New()
	for _, seed := range []string{"/static/portal.css", s.URL("vendor/novnc/core/rfb.js"), "/static/../x", "/static/" + s.Hash() + "/", "/static/vendor//a", "/static/\x00"} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, p string) {
		a, _ := s.lookup(p)
		if a == nil {
			return
		}
		if !fs.ValidPath(a.name) || strings.Contains("/"+a.name+"/", "/../") || path.Clean(a.name) != a.name {
			t.Fatalf("%q served %q", p, a.name)
		}
		if !strings.HasSuffix(p, strings.TrimPrefix(strings.TrimPrefix(a.name, "static/"), "vendor/")) {
			t.Fatalf("%q served unrelated %q", p, a.name)
		}
	})
}
