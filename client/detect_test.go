package main

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"portico/portal"
	"portico/service/detect"
	"portico/service/gateway"
)

// testGateway is a real gateway (portal, HTTP probe, DNS responder) on
// 127.0.0.1 free ports.
type testGateway struct {
	https, dns, fp string
	nonces         *detect.Nonces
}

func startGateway(t *testing.T) *testGateway {
	t.Helper()
	var parts gateway.Parts
	g, err := gateway.New(gateway.Options{
		DataDir: t.TempDir(), HTTPSAddr: "127.0.0.1:0", HTTPAddr: "127.0.0.1:0", AdminAddr: "127.0.0.1:0", DNSAddr: "127.0.0.1:0",
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Portal: func(p gateway.Parts) http.Handler {
			parts = p
			return portal.New(portal.Deps{Live: p.Live, Store: p.Store, Secrets: p.Secrets, Sessions: p.Sessions, Logger: p.Logger,
				Static: http.NotFoundHandler(), Nonces: p.Nonces, Fingerprint: func() string { return p.Certs.Info().SHA256 }, DetectDNS: p.DetectDNS})
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := g.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		g.Shutdown(ctx)
	})
	tg := &testGateway{nonces: parts.Nonces, fp: g.Certificates().Info().SHA256}
	for _, l := range g.Listeners() {
		switch l.Name {
		case "https":
			tg.https = l.Addr
		case "dns":
			tg.dns = l.Addr
		}
	}
	if tg.https == "" || tg.dns == "" {
		t.Fatalf("gateway listeners: %+v", g.Listeners())
	}
	return tg
}

// closedPort is a 127.0.0.1 address nothing listens on (TCP or UDP).
func closedPort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

func detectLink(gw, dnsAddr, fp, nonce string) string {
	q := url.Values{"gw": {gw}, "path": {"/userportal"}, "fp": {fp}, "n": {nonce}, "zone": {"detect.portico.invalid"}}
	if dnsAddr != "" {
		q.Set("dns", dnsAddr)
	}
	return "portico://detect?" + q.Encode()
}

func TestDetectAgainstGateway(t *testing.T) {
	g := startGateway(t)
	wrongFP := strings.Repeat("ab", 32)
	tests := []struct {
		name     string
		gw, dns  func() string
		fp       string
		code     int
		out      string   // on stdout
		errs     []string // on stderr
		via      detect.Via
		detected bool
	}{
		{"both", func() string { return g.https }, func() string { return g.dns }, g.fp, 0, "HTTP and DNS probe", nil, detect.ViaHTTP | detect.ViaDNS, true},
		{"http only: no DNS responder reachable", func() string { return g.https }, func() string { return closedPort(t) }, g.fp, 0, "by the HTTP probe", []string{"DNS probe failed"}, detect.ViaHTTP, true},
		{"dns only: HTTPS port wrong", func() string { return closedPort(t) }, func() string { return g.dns }, g.fp, 0, "by the DNS probe", []string{"HTTP probe failed"}, detect.ViaDNS, true},
		{"dns only: certificate not the pinned one", func() string { return g.https }, func() string { return g.dns }, wrongFP, 0, "by the DNS probe", []string{"not the one the portal named"}, detect.ViaDNS, true},
		{"neither", func() string { return closedPort(t) }, func() string { return closedPort(t) }, g.fp, 1, "", []string{"HTTP probe failed", "DNS probe failed", "was not reached"}, 0, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			nonce, err := g.nonces.Issue("session-"+tc.name, time.Minute)
			if err != nil {
				t.Fatal(err)
			}
			var out, errb bytes.Buffer
			code := runMain([]string{detectLink(tc.gw(), tc.dns(), tc.fp, nonce)}, &out, &errb)
			if code != tc.code || !strings.Contains(out.String(), tc.out) {
				t.Fatalf("exit %d stdout %q stderr %q; want exit %d with %q", code, out.String(), errb.String(), tc.code, tc.out)
			}
			for _, e := range tc.errs {
				if !strings.Contains(errb.String(), e) {
					t.Errorf("stderr lacks %q:\n%s", e, errb.String())
				}
			}
			r, err := g.nonces.Check(nonce, "session-"+tc.name)
			if err != nil || r.Detected != tc.detected || r.Via != tc.via {
				t.Fatalf("gateway saw %+v (%v), want detected=%v via %v", r, err, tc.detected, tc.via)
			}
		})
	}
}

func TestDetectRefusesBadURLs(t *testing.T) {
	nonce := strings.Repeat("a", detect.NonceLen)
	fp := strings.Repeat("0", 64)
	good := url.Values{"gw": {"127.0.0.1:8443"}, "path": {"/userportal"}, "fp": {fp}, "n": {nonce}, "zone": {"detect.example.com"}, "dns": {"127.0.0.1:8053"}}
	tests := []struct {
		field, value, want string
	}{
		{"gw", "", "gw"},
		{"gw", "evil.example.com", "want host:port"},
		{"gw", "a b:1", "not a host name"},
		{"gw", "h:0", "port must be"},
		{"path", "userportal", "path"},
		{"path", "/a/../b", "path"},
		{"fp", "abc", "64 hex"},
		{"n", "short", "not a detection nonce"},
		{"n", strings.Repeat("1", detect.NonceLen), "not a detection nonce"},
		{"dns", "nohost", "dns"},
		{"zone", "single", "zone"},
		{"zone", "10.0.0.1", "zone"},
	}
	for _, tc := range tests {
		q := url.Values{}
		for k, v := range good {
			q[k] = v
		}
		q.Set(tc.field, tc.value)
		var out, errb bytes.Buffer
		if code := runMain([]string{"portico://detect?" + q.Encode()}, &out, &errb); code != 2 || !strings.Contains(errb.String(), tc.want) {
			t.Errorf("%s=%q: exit %d %q, want 2 naming %q", tc.field, tc.value, code, errb.String(), tc.want)
		}
	}
	u, _ := url.Parse("portico://detect?" + good.Encode())
	if _, err := parseDetectURL(u); err != nil {
		t.Fatalf("good URL refused: %v", err)
	}
	var out, errb bytes.Buffer
	if code := runMain([]string{"portico://teleport?x=1"}, &out, &errb); code != 2 || !strings.Contains(errb.String(), "detect or portico://launch") {
		t.Fatalf("unknown action: %d %q", code, errb.String())
	}
}

// FuzzParseDetectURL: a portico:// link comes from any web page; parsing
// must never panic, and what it accepts must be safe to act on.
func FuzzParseDetectURL(f *testing.F) {
	f.Add("gw=127.0.0.1:8443&path=/userportal&fp=" + strings.Repeat("0", 64) + "&n=" + strings.Repeat("a", 32) + "&zone=detect.portico.invalid&dns=127.0.0.1:8053")
	f.Add("gw=[::1]:443&path=/p&fp=AB:CD&n=x")
	f.Add("%zz&gw=")
	f.Fuzz(func(t *testing.T, query string) {
		d, err := parseDetectURL(&url.URL{Scheme: "portico", Host: "detect", RawQuery: query})
		if err != nil {
			return
		}
		if checkHostPort(d.gw) != nil || !detect.ValidNonce(d.nonce) || len(d.fp) != 32 || !strings.HasPrefix(d.path, "/") || strings.ContainsAny(d.path, "?#") {
			t.Fatalf("accepted unsafe fields: %+v", d)
		}
	})
}
