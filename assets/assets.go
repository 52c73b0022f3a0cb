// Package assets is Portico's web front end, embedded in the gateway
// binary: the portal's own CSS, JavaScript modules and icons (static/) and
// the browser clients vendored from npm (vendor/: noVNC, xterm.js,
// ironrdp-wasm). It serves them under /static/<tree hash>/ so every URL is
// content-addressed and cached for a year, picks the precompressed brotli
// or gzip copy the browser accepts, and sends the right MIME types
// (application/wasm for the RDP client). It knows nothing of sessions or
// settings.
package assets

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"io/fs"
	"net/http"
	"path"
	"sort"
	"strconv"
	"strings"
	"sync"
)

//go:embed static vendor
var files embed.FS

// Prefix is where the assets are served.
const Prefix = "/static/"

// Server serves the embedded assets.
type Server struct {
	hash  string
	etags map[string]string // file → strong ETag of its uncompressed content
	gz    sync.Map          // file → []byte gzip made on first use (static/ files)
}

// New indexes the embedded files; the tree hash changes whenever any file
// does, which is what lets every URL be cached as immutable.
func New() *Server {
	s := &Server{etags: map[string]string{}}
	var names []string
	fs.WalkDir(files, ".", func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			names = append(names, p)
		}
		return nil
	})
	sort.Strings(names)
	tree := sha256.New()
	for _, n := range names {
		b, _ := files.ReadFile(n)
		sum := sha256.Sum256(b)
		s.etags[n] = `"` + hex.EncodeToString(sum[:8]) + `"`
		tree.Write([]byte(n))
		tree.Write(sum[:])
	}
	s.hash = hex.EncodeToString(tree.Sum(nil)[:6])
	return s
}

// URL returns the content-addressed URL of a logical asset path:
// "portal.css" (from static/) or "vendor/novnc/core/rfb.js".
func (s *Server) URL(logical string) string {
	return Prefix + s.hash + "/" + strings.TrimPrefix(logical, "/")
}

// VendorBuilt reports whether the npm-built browser clients are embedded.
func (s *Server) VendorBuilt() bool {
	_, err := fs.Stat(files, "vendor/manifest.json")
	return err == nil
}

var mimeTypes = map[string]string{
	".js": "text/javascript; charset=utf-8", ".mjs": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8",
	".wasm": "application/wasm", ".svg": "image/svg+xml", ".png": "image/png", ".json": "application/json",
	".html": "text/html; charset=utf-8", ".txt": "text/plain; charset=utf-8", ".ico": "image/x-icon", ".woff2": "font/woff2",
}

// ServeHTTP serves /static/<hash>/<path> (immutable) and /static/<path>
// (revalidated). Paths under vendor/ come from vendor/, others from static/.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	rest, ok := strings.CutPrefix(r.URL.Path, Prefix)
	if !ok {
		http.NotFound(w, r)
		return
	}
	immutable := false
	if h, tail, found := strings.Cut(rest, "/"); found && h == s.hash {
		rest, immutable = tail, true
	}
	name := "static/" + rest
	if strings.HasPrefix(rest, "vendor/") {
		name = rest
	}
	if !fs.ValidPath(name) || strings.Contains(rest, "..") || strings.HasSuffix(name, "/") || strings.HasSuffix(name, ".br") || strings.HasSuffix(name, ".gz") {
		http.NotFound(w, r)
		return
	}
	etag, ok := s.etags[name]
	if !ok || name == "vendor/README.md" {
		http.NotFound(w, r)
		return
	}
	h := w.Header()
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Vary", "Accept-Encoding")
	if ct, ok := mimeTypes[path.Ext(name)]; ok {
		h.Set("Content-Type", ct)
	} else {
		h.Set("Content-Type", "application/octet-stream")
	}
	if immutable {
		h.Set("Cache-Control", "public, max-age=31536000, immutable")
	} else {
		h.Set("Cache-Control", "no-cache")
	}
	body, enc := s.pick(name, r.Header.Get("Accept-Encoding"))
	if enc != "" {
		h.Set("Content-Encoding", enc)
		etag = strings.TrimSuffix(etag, `"`) + "-" + enc + `"`
	}
	h.Set("ETag", etag)
	if match := r.Header.Get("If-None-Match"); match != "" && strings.Contains(match, etag) {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodGet {
		w.Write(body)
	}
}

// pick returns the best representation the client accepts.
func (s *Server) pick(name, acceptEncoding string) ([]byte, string) {
	raw, _ := files.ReadFile(name)
	for _, enc := range []string{"br", "gzip"} {
		if !accepts(acceptEncoding, enc) {
			continue
		}
		ext := map[string]string{"br": ".br", "gzip": ".gz"}[enc]
		if b, err := files.ReadFile(name + ext); err == nil {
			return b, enc
		}
		if enc == "gzip" && len(raw) > 1024 && strings.HasPrefix(name, "static/") && compressible(name) {
			if v, ok := s.gz.Load(name); ok {
				return v.([]byte), "gzip"
			}
			var buf bytes.Buffer
			zw, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
			zw.Write(raw)
			zw.Close()
			if buf.Len() < len(raw) {
				s.gz.Store(name, buf.Bytes())
				return buf.Bytes(), "gzip"
			}
		}
	}
	return raw, ""
}

func compressible(name string) bool {
	switch path.Ext(name) {
	case ".js", ".mjs", ".css", ".svg", ".json", ".html", ".txt", ".wasm":
		return true
	}
	return false
}

// accepts reports whether an Accept-Encoding header allows enc (q > 0).
func accepts(header, enc string) bool {
	for _, part := range strings.Split(header, ",") {
		name, params, _ := strings.Cut(strings.TrimSpace(part), ";")
		if !strings.EqualFold(strings.TrimSpace(name), enc) && strings.TrimSpace(name) != "*" {
			continue
		}
		q := 1.0
		if k, v, ok := strings.Cut(strings.TrimSpace(params), "="); ok && strings.TrimSpace(k) == "q" {
			if f, err := strconv.ParseFloat(strings.TrimSpace(v), 64); err == nil {
				q = f
			}
		}
		return q > 0
	}
	return false
}
