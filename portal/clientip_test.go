package portal

import (
	"net/http/httptest"
	"testing"
)

func TestClientIP(t *testing.T) {
	cases := []struct {
		name, peer, xff, fwd string
		trusted              []string
		want                 string
	}{
		{"no proxies trusted: header ignored", "203.0.113.5:1000", "198.51.100.7", "", nil, "203.0.113.5"},
		{"untrusted peer spoofing XFF", "203.0.113.5:1000", "10.9.9.9", "", []string{"10.0.0.0/8"}, "203.0.113.5"},
		{"trusted proxy", "10.0.0.2:1000", "198.51.100.7", "", []string{"10.0.0.0/8"}, "198.51.100.7"},
		{"chain with trusted hops", "10.0.0.2:1000", "1.2.3.4, 198.51.100.7, 10.0.0.3", "", []string{"10.0.0.0/8"}, "198.51.100.7"},
		{"Forwarded header", "10.0.0.2:1000", "", `for="[2001:db8::1]:443";proto=https`, []string{"10.0.0.2"}, "2001:db8::1"},
		{"trusted proxy without header", "10.0.0.2:1000", "", "", []string{"10.0.0.0/8"}, "10.0.0.2"},
	}
	for _, tc := range cases {
		r := httptest.NewRequest("GET", "/", nil)
		r.RemoteAddr = tc.peer
		if tc.xff != "" {
			r.Header.Set("X-Forwarded-For", tc.xff)
		}
		if tc.fwd != "" {
			r.Header.Set("Forwarded", tc.fwd)
		}
		if got := ClientIP(r, tc.trusted); got.String() != tc.want {
			t.Errorf("%s: got %s, want %s", tc.name, got, tc.want)
		}
	}
}
