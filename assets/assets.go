// Package assets is Portico's web front end as embedded in the gateway
// binary: the portal's own CSS, JavaScript modules and icons (static/) and
// the browser clients vendored from npm by build.mjs (vendor/: noVNC,
// xterm.js, IronRDP's web backend @devolutions/iron-remote-desktop-rdp).
//
// It owns how those files are served: every URL carries one hash of the
// whole embedded tree (/static/<treehash>/…), so relative imports between
// ES modules keep working while each response can be cached as immutable;
// brotli/gzip siblings are chosen by Accept-Encoding; MIME types are set
// explicitly (application/wasm for the RDP client). It must not know about
// sessions, users, settings or page templates (the portal owns those).
package assets

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"path"
	"strings"
	"time"
)

// files is the embedded tree. vendor/ holds at least its committed
// README.md, so this compiles in a fresh clone before `make assets`.
//
//go:embed static vendor
var files embed.FS

// Prefix is the URL path under which Server serves the assets.
const Prefix = "/static/"

// hashLen is the length of the tree-hash URL segment in hex digits; 48
// bits keep URLs short while making a collision between two builds of
// the same deployment practically impossible.
const hashLen = 12

// Server serves the embedded assets; it is immutable after New, so it is
// safe for concurrent use.
type Server struct {
	fsys        fs.FS
	hash        string
	assets      map[string]*asset // embedded name, e.g. "vendor/novnc/core/rfb.js"
	vendorBuilt bool
}

// asset is one servable file and its representations.
type asset struct {
	name  string
	ctype string
	etag  string // strong validator of the uncompressed content, without quotes
	// br and gz are the compressed siblings, if they exist and are smaller.
	br, gz *representation
}

// representation is a file's bytes in one content coding, either embedded
// (name) or made at start-up (data).
type representation struct {
	name string
	data []byte
}

// New indexes the embedded files. It panics only if the compiled-in tree
// is unreadable, which would be a build defect, not a run-time condition.
func New() *Server {
	s, err := newServer(files)
	if err != nil {
		panic(fmt.Sprintf("assets: index embedded files: %v", err))
	}
	return s
}

// newServer indexes fsys, which must hold static/ and vendor/ like the
// embedded tree (tests pass other trees).
func newServer(fsys fs.FS) (*Server, error) {
	var names []string
	err := fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() {
			names = append(names, p)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("walk: %w", err)
	}
	present := make(map[string]bool, len(names))
	for _, n := range names {
		present[n] = true
	}
	// WalkDir visits in lexical order, so the tree hash is stable.
	tree := sha256.New()
	s := &Server{fsys: fsys, assets: map[string]*asset{}}
	for _, n := range names {
		b, err := fs.ReadFile(fsys, n)
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", n, err)
		}
		sum := sha256.Sum256(b)
		fmt.Fprintf(tree, "%s\x00%x\n", n, sum)
		if !servable(n, present) {
			continue
		}
		a := &asset{name: n, ctype: contentType(n), etag: hex.EncodeToString(sum[:12])}
		if present[n+".br"] {
			a.br = &representation{name: n + ".br"}
		}
		switch {
		case present[n+".gz"]:
			a.gz = &representation{name: n + ".gz"}
		case strings.HasPrefix(n, "static/") && compressible(n):
			// The portal's own files are committed uncompressed; they are
			// small, so gzip them once here rather than per request.
			if z, err := gzipBytes(b); err != nil {
				return nil, fmt.Errorf("gzip %s: %w", n, err)
			} else if len(z) < len(b) {
				a.gz = &representation{data: z}
			}
		}
		s.assets[n] = a
	}
	s.hash = hex.EncodeToString(tree.Sum(nil))[:hashLen]
	s.vendorBuilt = vendorComplete(fsys, present)
	return s, nil
}

// servable reports whether an embedded file is served under its own URL:
// compressed siblings are only served in place of their original, and the
// vendor README is build documentation.
func servable(name string, present map[string]bool) bool {
	if name == "vendor/README.md" {
		return false
	}
	for _, ext := range []string{".br", ".gz"} {
		if base, ok := strings.CutSuffix(name, ext); ok && present[base] {
			return false
		}
	}
	return true
}

// vendorComplete reports whether build.mjs finished: its manifest is
// written last and lists every file it copied.
func vendorComplete(fsys fs.FS, present map[string]bool) bool {
	b, err := fs.ReadFile(fsys, "vendor/manifest.json")
	if err != nil {
		return false
	}
	var m struct {
		Files []string `json:"files"`
	}
	if err := json.Unmarshal(b, &m); err != nil || len(m.Files) == 0 {
		return false
	}
	for _, f := range m.Files {
		if !present["vendor/"+f] {
			return false
		}
	}
	return true
}

func gzipBytes(b []byte) ([]byte, error) {
	var buf bytes.Buffer
	zw, err := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	if err != nil {
		return nil, err
	}
	if _, err := zw.Write(b); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// URL returns the content-hashed URL of a logical asset path: a file of
// static/ by its path inside static/ ("portal.css", "icons/app.svg") or a
// vendored file as "vendor/…" ("vendor/novnc/core/rfb.js").
func (s *Server) URL(logical string) string {
	return Prefix + s.hash + "/" + strings.TrimPrefix(logical, "/")
}

// Hash returns the tree hash that versions every URL.
func (s *Server) Hash() string { return s.hash }

// VendorBuilt reports whether the npm-built browser clients are embedded;
// without them the gateway should say "run make assets", not show a blank
// session page.
func (s *Server) VendorBuilt() bool { return s.vendorBuilt }

// ServeHTTP serves GET and HEAD for Prefix + [<hash>/] + logical path.
// With the current tree hash the response is immutable; without it, or
// with another build's hash (a page loaded before an upgrade), it must be
// revalidated, so a stale URL never pins wrong content in a cache.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	a, immutable := s.lookup(r.URL.Path)
	if a == nil {
		http.NotFound(w, r)
		return
	}
	h := w.Header()
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Content-Type", a.ctype)
	if immutable {
		h.Set("Cache-Control", "public, max-age=31536000, immutable")
	} else {
		h.Set("Cache-Control", "no-cache")
	}
	rep, coding := a.pick(r.Header.Values("Accept-Encoding"))
	if a.br != nil || a.gz != nil {
		h.Set("Vary", "Accept-Encoding")
	}
	etag := a.etag
	if coding != "" {
		h.Set("Content-Encoding", coding)
		etag += "-" + coding
	}
	// Each coding is its own representation, so it needs its own strong
	// validator; ServeContent then answers If-None-Match (and Range).
	h.Set("ETag", `"`+etag+`"`)
	body, err := s.open(a.name, rep)
	if err != nil {
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	if c, ok := body.(io.Closer); ok {
		defer c.Close()
	}
	http.ServeContent(w, r, "", time.Time{}, body)
}

// lookup maps a request path to an asset and whether the URL carried the
// current tree hash. Only indexed names can match, so no request path can
// reach outside the embedded tree whatever its dots or encodings.
func (s *Server) lookup(urlPath string) (*asset, bool) {
	rest, ok := strings.CutPrefix(urlPath, Prefix)
	if !ok {
		return nil, false
	}
	immutable := false
	if seg, tail, found := strings.Cut(rest, "/"); found && isHash(seg) {
		rest, immutable = tail, seg == s.hash
	}
	name := "static/" + rest
	if strings.HasPrefix(rest, "vendor/") {
		name = rest
	}
	if !fs.ValidPath(name) {
		return nil, false
	}
	a := s.assets[name]
	if a == nil {
		return nil, false
	}
	return a, immutable
}

func isHash(seg string) bool {
	if len(seg) != hashLen {
		return false
	}
	for _, c := range seg {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

// pick chooses the representation for the request's Accept-Encoding; nil
// means the uncompressed file.
func (a *asset) pick(acceptEncoding []string) (*representation, string) {
	var avail []string
	if a.br != nil {
		avail = append(avail, "br")
	}
	if a.gz != nil {
		avail = append(avail, "gzip")
	}
	switch negotiate(strings.Join(acceptEncoding, ","), len(acceptEncoding) > 0, avail) {
	case "br":
		return a.br, "br"
	case "gzip":
		return a.gz, "gzip"
	}
	return nil, ""
}

// open returns the bytes of a representation (nil: the file itself).
func (s *Server) open(name string, rep *representation) (io.ReadSeeker, error) {
	if rep != nil && rep.data != nil {
		return bytes.NewReader(rep.data), nil
	}
	if rep != nil {
		name = rep.name
	}
	f, err := s.fsys.Open(name)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", name, err)
	}
	// Embedded files seek without copying the (multi-megabyte) content.
	if rs, ok := f.(io.ReadSeeker); ok {
		return rs, nil
	}
	defer f.Close()
	b, err := io.ReadAll(f)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", name, err)
	}
	return bytes.NewReader(b), nil
}

// contentType is set explicitly, never sniffed: browsers refuse module
// scripts and streaming wasm compilation with the wrong type.
func contentType(name string) string {
	switch path.Ext(name) {
	case ".js", ".mjs":
		return "text/javascript; charset=utf-8"
	case ".css":
		return "text/css; charset=utf-8"
	case ".wasm":
		return "application/wasm"
	case ".svg":
		return "image/svg+xml"
	case ".png":
		return "image/png"
	case ".ico":
		return "image/x-icon"
	case ".woff2":
		return "font/woff2"
	case ".json":
		return "application/json"
	case ".html":
		return "text/html; charset=utf-8"
	case ".txt", ".md":
		return "text/plain; charset=utf-8"
	}
	if strings.HasPrefix(path.Base(name), "LICENSE") {
		return "text/plain; charset=utf-8"
	}
	return "application/octet-stream"
}

func compressible(name string) bool {
	switch path.Ext(name) {
	case ".js", ".mjs", ".css", ".svg", ".json", ".html", ".txt", ".wasm":
		return true
	}
	return false
}
