package gateway

import (
	"crypto/tls"
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestHostHeaderCheckedBeforeUse(t *testing.T) {
	names := []string{"gw.example.com"}
	for hp, want := range map[string]bool{
		"gw.example.com":       true,
		"GW.example.com:8443":  true,
		"127.0.0.1:443":        true,
		"[::1]:443":            true,
		"localhost":            true,
		"other.example.com":    false,
		"a;sandbox":            false,
		"gw.example.com:99999": false,
		"gw.example.com:x":     false,
		"":                     false,
		"gw example":           false,
	} {
		if _, ok := checkHost(hp, names); ok != want {
			t.Errorf("host %q: %v, want %v", hp, ok, want)
		}
	}
	if _, ok := checkHost("any.example.org", nil); !ok {
		t.Error("without public host names any valid name must pass")
	}
	// On the wire: a Host that would inject a CSP directive is refused
	// before any page or header is built.
	g := startGW(t, nil)
	c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	req, _ := http.NewRequest("GET", "https://"+g.https+"/userportal/", nil)
	req.Host = "a;sandbox"
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMisdirectedRequest || strings.Contains(resp.Header.Get("Content-Security-Policy"), "sandbox") {
		t.Fatalf("injected Host: %d %q", resp.StatusCode, resp.Header.Get("Content-Security-Policy"))
	}
}

func FuzzCheckHost(f *testing.F) {
	f.Add("gw.example.com:443")
	f.Add("[::1]")
	f.Add("a;b")
	f.Fuzz(func(t *testing.T, hp string) {
		if h, ok := checkHost(hp, nil); ok && strings.ContainsAny(h, "; \\"+"\"'/") {
			t.Fatalf("accepted %q as %q", hp, h)
		}
	})
}
