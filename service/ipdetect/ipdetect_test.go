package ipdetect

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestCheckAgainstLocalServices(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("/json", func(w http.ResponseWriter, r *http.Request) { w.Write([]byte(`{"ip":"203.0.113.9"}`)) })
	mux.HandleFunc("/text", func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("2001:db8::5\n")) })
	mux.HandleFunc("/garbage", func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("<html>hello</html>")) })
	mux.HandleFunc("/slow", func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-time.After(Timeout + 2*time.Second):
		case <-r.Context().Done():
		}
	})
	mux.HandleFunc("/huge", func(w http.ResponseWriter, r *http.Request) { w.Write([]byte(strings.Repeat("1", 1<<20))) })
	mux.HandleFunc("/status", func(w http.ResponseWriter, r *http.Request) { http.Error(w, "nope", 500) })
	mux.HandleFunc("/loop", func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, "/loop", http.StatusFound) })
	mux.HandleFunc("/badjson", func(w http.ResponseWriter, r *http.Request) { w.Write([]byte(`{"ip": 5}`)) })
	srv := httptest.NewServer(mux)
	defer srv.Close()
	cases := []struct {
		path, ip, err string
	}{
		{"/json", "203.0.113.9", ""},
		{"/text", "2001:db8::5", ""},
		{"/garbage", "", "neither JSON"},
		{"/slow", "", "did not answer within"},
		{"/huge", "", "larger than"},
		{"/status", "", "500"},
		{"/loop", "", "redirects"},
		{"/badjson", "", `no "ip" field`},
	}
	for _, tc := range cases {
		t.Run(tc.path, func(t *testing.T) {
			ip, err := Check(context.Background(), srv.URL+tc.path, nil)
			if tc.err == "" {
				if err != nil || ip != tc.ip {
					t.Fatalf("got %q, %v", ip, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Fatalf("got %q, %v; want error with %q", ip, err, tc.err)
			}
		})
	}
	if _, err := Check(context.Background(), "ftp://example.com/", nil); err == nil || !strings.Contains(err.Error(), "http") {
		t.Fatalf("ftp URL: %v", err)
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{`{"ip":"1.2.3.4"}`, "::1", "", "{", `{"ip":[]}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		ip, err := Parse(b)
		if err == nil && ip == "" {
			t.Fatal("empty IP without error")
		}
	})
}
