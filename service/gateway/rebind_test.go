package gateway

import (
	"context"
	"io"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"portico/service/admin"
)

// loopbackAddr picks a free loopback address (free when picked).
func loopbackAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// TestListenAddressesApplyLive: a gateway started without listen flags
// serves the stored addresses and moves HTTPS, the HTTP redirect and the
// admin API when they are changed, without a restart; the old addresses
// stop answering, the redirect names the new HTTPS port, and the admin
// endpoint file leads to the new admin address.
func TestListenAddressesApplyLive(t *testing.T) {
	dir := t.TempDir()
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	// A first start stores the addresses the second one will use.
	g1, err := New(Options{DataDir: dir, HTTPSAddr: "127.0.0.1:0", HTTPAddr: "127.0.0.1:0", AdminAddr: "127.0.0.1:0", DNSAddr: "127.0.0.1:0", Logger: quiet, Out: io.Discard})
	if err != nil {
		t.Fatal(err)
	}
	if err := g1.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	c, err := admin.Dial(dir)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	first := [3]string{loopbackAddr(t), loopbackAddr(t), loopbackAddr(t)}
	gw := g1.live.Load().Gateway
	gw.Listen.HTTPS, gw.Listen.HTTP, gw.Listen.Admin = first[0], first[1], first[2]
	if err := c.Do(ctx, "PUT", "/api/v1/settings/gateway", gw, nil); err != nil {
		t.Fatal(err)
	}
	sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	g1.Shutdown(sctx)
	cancel()

	g, err := New(Options{DataDir: dir, DNSAddr: "127.0.0.1:0", Logger: quiet, Out: io.Discard})
	if err != nil {
		t.Fatal(err)
	}
	startForTest(t, g)
	if got := [3]string{g.listener("https"), g.listener("http-redirect"), g.listener("admin")}; got != first {
		t.Fatalf("listening on %v, want the stored %v", got, first)
	}
	c, err = admin.Dial(dir)
	if err != nil {
		t.Fatal(err)
	}
	next := [3]string{loopbackAddr(t), loopbackAddr(t), loopbackAddr(t)}
	gw = g.live.Load().Gateway
	gw.Listen.HTTPS, gw.Listen.HTTP, gw.Listen.Admin = next[0], next[1], next[2]
	if err := c.Do(ctx, "PUT", "/api/v1/settings/gateway", gw, nil); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for [3]string{g.listener("https"), g.listener("http-redirect"), g.listener("admin")} != next {
		if time.Now().After(deadline) {
			t.Fatalf("listeners %v, want %v", g.Listeners(), next)
		}
		time.Sleep(50 * time.Millisecond)
	}
	hc := insecureClient()
	resp, err := hc.Get("https://" + next[0] + "/healthz")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("HTTPS on the new address: %v %v", resp, err)
	}
	resp.Body.Close()
	for _, old := range first {
		if conn, err := net.DialTimeout("tcp", old, 2*time.Second); err == nil {
			conn.Close()
			t.Errorf("the old address %s still accepts", old)
		}
	}
	resp, err = hc.Get("http://" + next[1] + "/userportal/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	_, port, _ := net.SplitHostPort(next[0])
	if loc := resp.Header.Get("Location"); !strings.Contains(loc, ":"+port+"/") {
		t.Errorf("the redirect leads to %q, want the new HTTPS port %s", loc, port)
	}
	c, err = admin.Dial(dir)
	if err != nil {
		t.Fatal(err)
	}
	var st admin.Status
	if err := c.Do(ctx, "GET", "/api/v1/status", nil, &st); err != nil {
		t.Fatalf("admin API at its new address: %v", err)
	}
	// An address that cannot be bound leaves the listener where it is.
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	gw.Listen.HTTP = busy.Addr().String()
	if err := c.Do(ctx, "PUT", "/api/v1/settings/gateway", gw, nil); err != nil {
		t.Fatal(err)
	}
	time.Sleep(500 * time.Millisecond)
	if got := g.listener("http-redirect"); got != next[1] {
		t.Errorf("after a failed bind the redirect listens on %s, want still %s", got, next[1])
	}
}
