package gateway

import (
	"context"
	"io"
	"log/slog"
	"net"
	"testing"
	"time"

	"github.com/miekg/dns"

	"portico/service/admin"
	"portico/service/config"
	"portico/service/store"
)

// freeLoopbackPort returns a port free for both TCP and UDP on 127.0.0.1.
func freeLoopbackPort(t *testing.T) string {
	t.Helper()
	for range 20 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := ln.Addr().String()
		pc, err := net.ListenPacket("udp", addr)
		ln.Close()
		if err == nil {
			pc.Close()
			return addr
		}
	}
	t.Fatal("no port free for both TCP and UDP")
	return ""
}

// soa asks the detection zone's SOA over TCP; it fails when nothing
// answers at addr.
func soa(addr, zone string) error {
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(zone), dns.TypeSOA)
	c := &dns.Client{Net: "tcp", Timeout: 3 * time.Second}
	resp, _, err := c.Exchange(m, addr)
	if err == nil && resp.Rcode != dns.RcodeSuccess {
		return &net.OpError{Op: "soa", Err: io.ErrUnexpectedEOF}
	}
	return err
}

// waitListener waits (against hangs only) until the named listener is at
// want: settings reach the responder asynchronously after the API answers.
func (tg *testGW) waitListener(t *testing.T, name, want string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for tg.listener(name) != want {
		if time.Now().After(deadline) {
			t.Fatalf("listener %s is %q, want %q", name, tg.listener(name), want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestDetectDNSFollowsSettings starts the gateway with its DNS address
// from the stored setting (no flag) and moves and stops the responder by
// changing detect.dnsListen through the admin API.
func TestDetectDNSFollowsSettings(t *testing.T) {
	dir := t.TempDir()
	g, err := New(Options{
		DataDir: dir, HTTPSAddr: "127.0.0.1:0", HTTPAddr: "127.0.0.1:0", AdminAddr: "127.0.0.1:0",
		Version: "test", Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	first := freeLoopbackPort(t)
	err = g.Store().Apply(g.Live(), config.DefaultGatewayID, func(tx *store.Tx) error {
		gw, err := tx.Gateway(config.DefaultGatewayID)
		if err != nil {
			return err
		}
		gw.Detect.DNSListen = first
		gw.PublicHosts = []string{"gw.example.com"}
		return tx.PutGateway(gw)
	})
	if err != nil {
		t.Fatal(err)
	}
	startForTest(t, g)
	tg := &testGW{Gateway: g}
	if got := tg.listener("dns"); got != first {
		t.Fatalf("dns listener %q, want %s", got, first)
	}
	if err := soa(first, "detect.gw.example.com"); err != nil {
		t.Fatalf("responder on the stored address: %v", err)
	}

	c, err := admin.Dial(dir)
	if err != nil {
		t.Fatal(err)
	}
	put := func(listen string) {
		t.Helper()
		var cur struct{ Settings config.Gateway }
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := c.Do(ctx, "GET", "/api/v1/settings/gateway", nil, &cur); err != nil {
			t.Fatal(err)
		}
		cur.Settings.Detect.DNSListen = listen
		if err := c.Do(ctx, "PUT", "/api/v1/settings/gateway", cur.Settings, nil); err != nil {
			t.Fatalf("set detect.dnsListen %q: %v", listen, err)
		}
	}
	second := freeLoopbackPort(t)
	put(second)
	tg.waitListener(t, "dns", second)
	if err := soa(second, "detect.gw.example.com"); err != nil {
		t.Fatalf("responder on the new address: %v", err)
	}
	if err := soa(first, "detect.gw.example.com"); err == nil {
		t.Fatal("the old address still answers")
	}

	// The HTTPS port is taken: refused with a field error, nothing moves.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var cur struct{ Settings config.Gateway }
	c.Do(ctx, "GET", "/api/v1/settings/gateway", nil, &cur)
	_, httpsPort, _ := net.SplitHostPort(tg.listener("https"))
	cur.Settings.Detect.DNSListen = "127.0.0.1:" + httpsPort
	if err := c.Do(ctx, "PUT", "/api/v1/settings/gateway", cur.Settings, nil); err == nil {
		t.Fatal("a DNS address on the HTTPS port was accepted")
	}
	if got := tg.listener("dns"); got != second {
		t.Fatalf("a refused change moved the responder to %q", got)
	}

	put(config.DNSOff)
	tg.waitListener(t, "dns", "")
	if err := soa(second, "detect.gw.example.com"); err == nil {
		t.Fatal("responder still answers after turning it off")
	}
}
