package relay

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// echoServer is a TCP backend that echoes, counting connections.
func echoServer(t testing.TB) (string, *atomic.Int64) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	var open atomic.Int64
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			open.Add(1)
			go func() { io.Copy(c, c); c.Close(); open.Add(-1) }()
		}
	}()
	return ln.Addr().String(), &open
}

// relayServer is a wss endpoint relaying to backend with Stream + Pipe.
func relayServer(t testing.TB, backend string, up, down *atomic.Int64) *httptest.Server {
	up2 := NewUpgrader(func(o string) bool { return strings.HasPrefix(o, "https://ok.") })
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ws, err := up2.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		c, err := net.Dial("tcp", backend)
		if err != nil {
			ws.Close()
			return
		}
		Pipe(context.Background(), NewStream(ws), c, up, down)
	}))
	t.Cleanup(srv.Close)
	return srv
}

func dialWS(t testing.TB, srv *httptest.Server, origin string) (*websocket.Conn, error) {
	d := websocket.Dialer{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, WriteBufferSize: BufferSize + 16}
	ws, _, err := d.Dial("wss"+strings.TrimPrefix(srv.URL, "https"), http.Header{"Origin": {origin}})
	return ws, err
}

func TestRelayIntegrityAndCounters(t *testing.T) {
	backend, _ := echoServer(t)
	var up, down atomic.Int64
	srv := relayServer(t, backend, &up, &down)
	ws, err := dialWS(t, srv, "https://ok.example")
	if err != nil {
		t.Fatal(err)
	}
	s := NewStream(ws)
	total := 0
	for _, size := range []int{1, 100, BufferSize - 1, BufferSize, 3*BufferSize + 7, 1 << 20} {
		data := make([]byte, size)
		rand.Read(data)
		go s.Write(data)
		got := make([]byte, size)
		ws.SetReadDeadline(time.Now().Add(10 * time.Second))
		if _, err := io.ReadFull(s, got); err != nil {
			t.Fatalf("size %d: %v", size, err)
		}
		if !bytes.Equal(got, data) {
			t.Fatalf("size %d: data corrupted", size)
		}
		total += size
	}
	s.Close()
	deadline := time.Now().Add(5 * time.Second)
	for (up.Load() != int64(total) || down.Load() != int64(total)) && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if up.Load() != int64(total) || down.Load() != int64(total) {
		t.Fatalf("counters up %d down %d, want %d", up.Load(), down.Load(), total)
	}
}

func TestOriginRefused(t *testing.T) {
	backend, open := echoServer(t)
	srv := relayServer(t, backend, nil, nil)
	if _, err := dialWS(t, srv, "https://evil.example"); err == nil {
		t.Fatal("foreign origin accepted")
	}
	if _, err := dialWS(t, srv, ""); err == nil {
		t.Fatal("missing origin accepted")
	}
	if open.Load() != 0 {
		t.Fatal("a refused upgrade reached the backend")
	}
}

func TestBackendCloseClosesBrowserAndNoLeaks(t *testing.T) {
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Write([]byte("bye"))
			c.Close()
		}
	}()
	srv := relayServer(t, ln.Addr().String(), nil, nil)
	base := runtime.NumGoroutine()
	for i := 0; i < 200; i++ {
		ws, err := dialWS(t, srv, "https://ok.example")
		if err != nil {
			t.Fatal(err)
		}
		s := NewStream(ws)
		ws.SetReadDeadline(time.Now().Add(5 * time.Second))
		b, err := io.ReadAll(s)
		if string(b) != "bye" {
			t.Fatalf("got %q %v", b, err)
		}
		ws.Close()
	}
	srv.CloseClientConnections()
	deadline := time.Now().Add(10 * time.Second)
	for runtime.NumGoroutine() > base+5 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > base+5 {
		t.Fatalf("goroutines leaked: %d → %d", base, n)
	}
}

func TestPipeEndsOnCancel(t *testing.T) {
	a1, a2 := net.Pipe()
	b1, b2 := net.Pipe()
	defer a2.Close()
	defer b2.Close()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- Pipe(ctx, a1, b1, nil, nil) }()
	cancel()
	select {
	case err := <-done:
		if err != context.Canceled {
			t.Fatalf("got %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Pipe did not return after cancel")
	}
}

// countConn counts Write calls on the connection under a WebSocket.
type countConn struct {
	net.Conn
	writes atomic.Int64
}

func (c *countConn) Write(p []byte) (int, error) { c.writes.Add(1); return c.Conn.Write(p) }

// TestOneWritePerMessage: a Write of up to BufferSize bytes is one frame
// in one write on the connection (one TLS record batch, one syscall).
func TestOneWritePerMessage(t *testing.T) {
	var cc *countConn
	ready := make(chan *websocket.Conn, 1)
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	defer ln.Close()
	up := NewUpgrader(func(string) bool { return true })
	go http.Serve(&wrapListener{Listener: ln, wrap: func(c net.Conn) net.Conn { cc = &countConn{Conn: c}; return cc }},
		http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			ws, err := up.Upgrade(w, r, nil)
			if err == nil {
				ready <- ws
			}
		}))
	d := websocket.Dialer{}
	client, _, err := d.Dial("ws://"+ln.Addr().String(), http.Header{"Origin": {"http://x"}})
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	s := NewStream(<-ready)
	before := cc.writes.Load()
	for i := 0; i < 10; i++ {
		s.Write(make([]byte, BufferSize))
	}
	if got := cc.writes.Load() - before; got != 10 {
		t.Fatalf("10 messages took %d writes", got)
	}
}

type wrapListener struct {
	net.Listener
	wrap func(net.Conn) net.Conn
}

func (l *wrapListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return l.wrap(c), nil
}
