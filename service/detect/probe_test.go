package detect

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestProbeHandler(t *testing.T) {
	n := NewNonces(0)
	good, _ := n.Issue("s", time.Minute)
	h := ProbeHandler(n)
	tests := []struct {
		name, method, body string
		code               int
	}{
		{"get", http.MethodGet, "", http.StatusMethodNotAllowed},
		{"junk", http.MethodPost, "hello", http.StatusBadRequest},
		{"too big", http.MethodPost, strings.Repeat("a", 1000), http.StatusRequestEntityTooLarge},
		{"unknown", http.MethodPost, strings.Repeat("b", NonceLen), http.StatusNotFound},
		{"good", http.MethodPost, good + "\n", http.StatusNoContent},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest(tc.method, "/probe", strings.NewReader(tc.body)))
			if rec.Code != tc.code {
				t.Fatalf("status %d, want %d (%s)", rec.Code, tc.code, rec.Body)
			}
		})
	}
	r, err := n.Check(good, "s")
	if err != nil || !r.Detected || r.Via != ViaHTTP {
		t.Fatalf("after the HTTP probe: %+v, %v", r, err)
	}
}
