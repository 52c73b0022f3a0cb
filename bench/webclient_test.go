package main

import "testing"

// TestMeasureWebClient runs target 6's transfer measurement against the
// embedded assets: the RDP page's files must all be found under their
// current names, the wasm served brotli, cached as immutable for a year,
// and revalidated with an empty 304.
func TestMeasureWebClient(t *testing.T) {
	files, err := measureWebClient()
	if err != nil {
		t.Fatal(err)
	}
	r := firstFrameResult{files: files}
	w, ok := r.wasm()
	if !ok || len(files) != len(rdpSessionFiles) {
		t.Fatalf("measured %d files, wasm found %v", len(files), ok)
	}
	for _, f := range files {
		if f.status != 200 || !longLived(f.cacheControl) || f.revalidateStatus != 304 || f.revalidateWire != 0 {
			t.Errorf("%s: status %d, Cache-Control %q, revalidation %d with %d bytes", f.logical, f.status, f.cacheControl, f.revalidateStatus, f.revalidateWire)
		}
	}
	if w.encoding != "br" || w.wire >= w.size/2 {
		t.Errorf("wasm served %q, %d of %d bytes", w.encoding, w.wire, w.size)
	}
	t.Logf("wasm: %s, %d of %d bytes (target line %d)", w.encoding, w.wire, w.size, wasmLimit)
}
