package main

import (
	"bufio"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strconv"
	"strings"

	"portico/assets"
)

// Target 6: the RDP time to first frame, measured by BenchmarkRDPFirstFrame
// (integration/, headless Chromium through a real gateway to
// freerdp-shadow), and the web client's transfer size, read here from the
// gateway's asset handler the way a browser asks for it.

// rdpSessionFiles are the static files the RDP session page loads, as
// logical asset paths (assets.Server.URL); the wasm is the one that counts.
var rdpSessionFiles = []string{"session.js", "session-rdp.js", "vendor/ironrdp/iron-remote-desktop-rdp.js", "vendor/ironrdp/iron-remote-desktop-rdp.wasm"}

// wasmFile is the IronRDP web client's wasm among rdpSessionFiles.
const wasmFile = "vendor/ironrdp/iron-remote-desktop-rdp.wasm"

// servedFile is one static file as the gateway serves it to a browser
// sending Accept-Encoding: br, gzip.
type servedFile struct {
	logical            string
	status             int
	encoding           string // Content-Encoding, "" for none
	cacheControl, etag string
	wire, size         int64 // body bytes sent, and the file's own size
	revalidateStatus   int   // answer to a conditional GET with the ETag
	revalidateWire     int64 // body bytes of that answer
}

// firstFrameResult is target 6's measurements; err (or benchErr for the
// browser part) says why something is missing.
type firstFrameResult struct {
	files    []servedFile
	err      error
	metrics  map[string]float64 // BenchmarkRDPFirstFrame's, by unit ("ms/first-frame")
	frames   int
	benchErr error
}

// measureWebClient asks the embedded asset handler — the one the gateway
// mounts at /static/ — over loopback HTTP for the RDP session's files, then
// again with each ETag as a browser revalidating would.
func measureWebClient() ([]servedFile, error) {
	web := assets.New()
	if !web.VendorBuilt() {
		return nil, fmt.Errorf("the browser clients are not built into this binary: run make assets")
	}
	srv := httptest.NewServer(web)
	defer srv.Close()
	// Compression off: a transport that decodes would hide the coding and
	// the bytes on the wire.
	c := &http.Client{Transport: &http.Transport{DisableCompression: true}}
	defer c.CloseIdleConnections()
	get := func(url string, hdr ...string) (*http.Response, int64, error) {
		req, err := http.NewRequest(http.MethodGet, url, nil)
		if err != nil {
			return nil, 0, err
		}
		for i := 0; i+1 < len(hdr); i += 2 {
			req.Header.Set(hdr[i], hdr[i+1])
		}
		resp, err := c.Do(req)
		if err != nil {
			return nil, 0, err
		}
		defer resp.Body.Close()
		n, err := io.Copy(io.Discard, resp.Body)
		return resp, n, err
	}
	var files []servedFile
	for _, logical := range rdpSessionFiles {
		url := srv.URL + web.URL(logical)
		_, size, err := get(url)
		if err != nil {
			return nil, fmt.Errorf("get %s: %w", logical, err)
		}
		resp, wire, err := get(url, "Accept-Encoding", "br, gzip")
		if err != nil {
			return nil, fmt.Errorf("get %s compressed: %w", logical, err)
		}
		f := servedFile{logical: logical, status: resp.StatusCode, encoding: resp.Header.Get("Content-Encoding"),
			cacheControl: resp.Header.Get("Cache-Control"), etag: resp.Header.Get("ETag"), wire: wire, size: size,
		}
		if f.etag != "" {
			again, n, err := get(url, "Accept-Encoding", "br, gzip", "If-None-Match", f.etag)
			if err != nil {
				return nil, fmt.Errorf("revalidate %s: %w", logical, err)
			}
			f.revalidateStatus, f.revalidateWire = again.StatusCode, n
		}
		files = append(files, f)
	}
	return files, nil
}

// firstFrameBench runs BenchmarkRDPFirstFrame for frames launches and
// returns its reported metrics by unit.
func firstFrameBench(pkg string, frames int) (map[string]float64, error) {
	cmd := exec.Command("go", "test", "-run", "^$", "-bench", "BenchmarkRDPFirstFrame", "-benchtime", strconv.Itoa(frames)+"x",
		"-count", "1", "-timeout", "10m", pkg)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, fmt.Errorf("first-frame benchmark: %w", err)
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("first-frame benchmark: %w", err)
	}
	metrics := map[string]float64{}
	var failure []string
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		line := sc.Text()
		// A result line: name, iterations, then "value unit" pairs.
		if f := strings.Fields(line); len(f) > 3 && strings.HasPrefix(f[0], "BenchmarkRDPFirstFrame") {
			for i := 2; i+1 < len(f); i += 2 {
				if v, err := strconv.ParseFloat(f[i], 64); err == nil {
					metrics[f[i+1]] = v
				}
			}
			continue
		}
		if !strings.HasPrefix(strings.TrimSpace(line), "time=") && len(failure) < 20 {
			failure = append(failure, line)
		}
	}
	if err := cmd.Wait(); err != nil {
		return metrics, fmt.Errorf("first-frame benchmark: %w: %s", err, strings.Join(failure, " / "))
	}
	if _, ok := metrics["ms/first-frame"]; !ok {
		return nil, fmt.Errorf("first-frame benchmark reported no ms/first-frame: %s", strings.Join(failure, " / "))
	}
	return metrics, nil
}

// measureFirstFrame is target 6's phase of the harness.
func measureFirstFrame(cfg config) firstFrameResult {
	fmt.Fprintln(os.Stderr, "web client transfer size (asset handler) and RDP first frame (go test, headless Chromium)")
	r := firstFrameResult{frames: cfg.frames}
	r.files, r.err = measureWebClient()
	r.metrics, r.benchErr = firstFrameBench(cfg.framePkg, cfg.frames)
	return r
}

// wasm returns the wasm's servedFile, if it was measured.
func (r firstFrameResult) wasm() (servedFile, bool) {
	for _, f := range r.files {
		if f.logical == wasmFile {
			return f, true
		}
	}
	return servedFile{}, false
}

// wasmLimit is target 6's size line for the compressed wasm: ≲1.1 MB.
const wasmLimit = 1_100_000

// yearSeconds is the max-age that counts as long-lived caching.
const yearSeconds = 31536000

// longLived reports whether a Cache-Control value lets a browser keep the
// response a year without asking again.
func longLived(cc string) bool {
	age := -1
	for d := range strings.SplitSeq(cc, ",") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(d), "max-age="); ok {
			age, _ = strconv.Atoi(v)
		}
	}
	return age >= yearSeconds && strings.Contains(cc, "immutable")
}

// targetRows are target 6's rows of the targets table.
func (r firstFrameResult) targetRows() string {
	var b strings.Builder
	m := r.metrics
	if r.benchErr != nil {
		fmt.Fprintf(&b, "| 6 | RDP time to first frame in headless Chromium | error: %s | UNMEASURED |\n", oneLine(r.benchErr))
	} else {
		fmt.Fprintf(&b, "| 6 | RDP time to first frame in headless Chromium (no numeric target) | connect→first pixels %.0f ms median (p95 %.0f); Open click→first pixels %.0f ms (p95 %.0f), with stored credentials (the gateway signs in, no prompt) %.0f ms (p95 %.0f); first launch with an empty cache %.0f / %.0f ms; %d launches each | REPORTED |\n",
			m["ms/first-frame"], m["ms/first-frame-p95"], m["ms/click-to-frame"], m["ms/click-to-frame-p95"],
			m["ms/click-to-frame-stored"], m["ms/click-to-frame-stored-p95"],
			m["ms/cold-first-frame"], m["ms/cold-click-to-frame"], r.frames)
	}
	w, ok := r.wasm()
	switch {
	case r.err != nil:
		fmt.Fprintf(&b, "| 6 | web client wasm served brotli, ≲1.1 MB, long-lived caching | error: %s | UNMEASURED |\n", oneLine(r.err))
	case !ok:
		fmt.Fprintf(&b, "| 6 | web client wasm served brotli, ≲1.1 MB, long-lived caching | %s not served | MISS |\n", wasmFile)
	default:
		cached := longLived(w.cacheControl)
		warm := "browser part not run"
		if v, ok := m["B/static-warm-wire"]; ok && r.benchErr == nil {
			warm = fmt.Sprintf("Chromium fetched %.0f bytes of static files on later launches", v)
			cached = cached && v == 0
		}
		fmt.Fprintf(&b, "| 6 | web client wasm served brotli, ≲1.1 MB, long-lived caching | %s, %s of %s (Cache-Control: %s; %s) | %s |\n",
			orIdentity(w.encoding), mb(w.wire), mb(w.size), w.cacheControl, warm,
			verdict(w.encoding == "br" && w.wire <= wasmLimit && cached))
	}
	return b.String()
}

// section is the detail of target 6 appended to the report.
func (r firstFrameResult) section() string {
	var b strings.Builder
	fmt.Fprintf(&b, "\n## Web client transfer and RDP first frame (target 6)\n\n")
	if r.err == nil {
		fmt.Fprintf(&b, "The RDP session page's static files as the gateway's asset handler (mounted at `/static/`) serves them to `Accept-Encoding: br, gzip`, then to a conditional GET with the ETag:\n\n")
		fmt.Fprintf(&b, "| file | status | Content-Encoding | bytes on the wire | file size | Cache-Control | ETag | conditional GET |\n|---|---|---|---|---|---|---|---|\n")
		var wire, size int64
		for _, f := range r.files {
			fmt.Fprintf(&b, "| %s | %d | %s | %d | %d | %s | `%s` | %d, %d bytes |\n", f.logical, f.status, orIdentity(f.encoding), f.wire, f.size,
				f.cacheControl, f.etag, f.revalidateStatus, f.revalidateWire)
			wire += f.wire
			size += f.size
		}
		fmt.Fprintf(&b, "| total | | | %d (%s) | %d (%s) | | | |\n\n", wire, mb(wire), size, mb(size))
	}
	if r.benchErr == nil {
		m := r.metrics
		fmt.Fprintf(&b, "In headless Chromium through a real gateway (Resource Timing, bytes on the wire with headers): first launch %.0f bytes for all of the session page's static files, %.0f of them the wasm; later launches %.0f bytes (served from the browser's cache: the URLs carry the asset tree's hash and are `immutable`).\n\n",
			m["B/static-cold-wire"], m["B/wasm-cold-wire"], m["B/static-warm-wire"])
		fmt.Fprintf(&b, "Time to first frame: `BenchmarkRDPFirstFrame` (integration/), %d launches of an RDP resource from the portal in headless Chromium, through the gateway (RDCleanPath over wss) to freerdp-shadow-cli with NLA on 127.0.0.1. Stamps are taken in the page with performance.now(): *connect→first pixels* runs from submitting the credential prompt (filled by script the moment it appears, so no typing time) to the first putImageData of IronRDP's that leaves a non-transparent pixel on the session canvas; *click→first pixels* runs from the portal's Open click and includes the session page load, the wasm start and the prompt. freerdp-shadow's first update is its screen buffer before it captured any X damage (black), so this is the first frame the host sends, not its desktop picture. The first launch, with an empty browser cache, is reported apart.\n",
			r.frames)
	}
	return b.String()
}

func orIdentity(coding string) string {
	if coding == "" {
		return "identity"
	}
	return coding
}

func mb(n int64) string { return fmt.Sprintf("%.2f MB", float64(n)/1e6) }

func oneLine(err error) string {
	s := strings.Join(strings.Fields(err.Error()), " ")
	if len(s) > 300 {
		s = s[:300] + "…"
	}
	return strings.ReplaceAll(s, "|", "/")
}
