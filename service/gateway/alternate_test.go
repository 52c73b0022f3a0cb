package gateway

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"testing"
	"time"

	"portico/service/config"
	"portico/service/relay"
	"portico/service/tunnel"
)

// echoPortal is a portal that admits the ticket "good" to an in-process
// echo, enough to see which listener carries a tunnel.
type echoPortal struct{ http.Handler }

func (echoPortal) OpenTunnel(ctx context.Context, r tunnel.Request) (*tunnel.Opened, error) {
	if r.Ticket != "good" {
		return nil, errors.New("unknown or already used launch ticket")
	}
	a, b := net.Pipe()
	go func() { io.Copy(b, b); b.Close() }()
	return &tunnel.Opened{Protocol: "ssh", Abort: func() { a.Close() }, Serve: func(ctx context.Context, c io.ReadWriteCloser) error {
		return relay.Pipe(ctx, c, a, nil)
	}}, nil
}

// echoThrough opens a tunnel to addr and checks bytes come back.
func echoThrough(t *testing.T, g *testGW, addr string) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, _, err := tunnel.Dial(ctx, addr, g.Certificates().Info().SHA256, "good")
	if err != nil {
		return err
	}
	defer c.Close()
	c.Write([]byte("ping"))
	buf := make([]byte, 4)
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "ping" {
		t.Fatalf("echo through %s: %q %v", addr, buf, err)
	}
	return nil
}

func (g *testGW) alternateAddr() string {
	for _, l := range g.Listeners() {
		if l.Name == "alternate" {
			return l.Addr
		}
	}
	return ""
}

func (g *testGW) setAlternate(t *testing.T, enabled bool, port int) {
	t.Helper()
	site := config.DefaultPortal()
	site.NLB.AlternatePortEnabled, site.NLB.AlternatePort = enabled, port
	if err := g.client.Do(context.Background(), "PUT", "/api/v1/settings/site", site, nil); err != nil {
		t.Fatal(err)
	}
	want := ""
	if enabled {
		want = "127.0.0.1:" + strconv.Itoa(port)
	}
	for deadline := time.Now().Add(10 * time.Second); g.alternateAddr() != want; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("alternate listener at %q, want %q", g.alternateAddr(), want)
		}
	}
}

func freeLocalPort(t *testing.T) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func TestTunnelOnMainPortByALPN(t *testing.T) {
	g := startGW(t, echoPortal{http.NotFoundHandler()})
	if err := echoThrough(t, g, g.https); err != nil {
		t.Fatalf("tunnel on the main port: %v", err)
	}
}

func TestAlternatePortFollowsSettings(t *testing.T) {
	g := startGW(t, echoPortal{http.NotFoundHandler()})
	if a := g.alternateAddr(); a != "" {
		t.Fatalf("alternate listener %s while the alternate port is off", a)
	}
	p1, p2 := freeLocalPort(t), freeLocalPort(t)
	g.setAlternate(t, true, p1)
	if err := echoThrough(t, g, g.alternateAddr()); err != nil {
		t.Fatalf("tunnel on the alternate port: %v", err)
	}
	g.setAlternate(t, true, p2)
	if err := echoThrough(t, g, g.alternateAddr()); err != nil {
		t.Fatalf("tunnel on the moved alternate port: %v", err)
	}
	if c, err := net.Dial("tcp", "127.0.0.1:"+strconv.Itoa(p1)); err == nil {
		c.Close()
		t.Fatal("the old alternate port still listens")
	}
	g.setAlternate(t, false, p2)
	if c, err := net.Dial("tcp", "127.0.0.1:"+strconv.Itoa(p2)); err == nil {
		c.Close()
		t.Fatal("the alternate port still listens after it was disabled")
	}
}
