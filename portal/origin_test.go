package portal

import (
	"net/http"
	"testing"
)

func TestWebSocketOriginComparesSchemeHostAndPort(t *testing.T) {
	r := &http.Request{Host: "gw.example.com:8443"}
	for origin, want := range map[string]bool{
		"https://gw.example.com:8443":      true,
		"https://GW.example.com:8443/":     true,
		"http://gw.example.com:8443":       false,
		"https://gw.example.com":           false,
		"https://gw.example.com:9443":      false,
		"https://evil.example.com:8443":    false,
		"https://gw.example.com:8443@evil": false,
		"null":                             false,
		"":                                 false,
	} {
		if got := sameOrigin(r, origin); got != want {
			t.Errorf("origin %q for host %q: %v, want %v", origin, r.Host, got, want)
		}
	}
	if !sameOrigin(&http.Request{Host: "gw"}, "https://gw:443") || sameOrigin(&http.Request{Host: "gw"}, "https://gw:444") {
		t.Error("port 443 not implied")
	}
}

func FuzzSameOrigin(f *testing.F) {
	f.Add("gw:8443", "https://gw:8443")
	f.Add("[::1]:443", "https://[::1]")
	f.Fuzz(func(t *testing.T, host, origin string) {
		sameOrigin(&http.Request{Host: host}, origin)
	})
}
