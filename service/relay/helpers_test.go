package relay

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// backendServer is a real TCP server on 127.0.0.1 running handle for each
// connection. Cleanup closes the listener and every connection and waits
// for the handlers to return.
func backendServer(t testing.TB, handle func(net.Conn)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	var (
		mu    sync.Mutex
		conns = map[net.Conn]bool{}
		wg    sync.WaitGroup
	)
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns[c] = true
			mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				handle(c)
				c.Close()
				mu.Lock()
				delete(conns, c)
				mu.Unlock()
			}()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return ln.Addr().String()
}

// echo sends back everything it reads.
func echo(c net.Conn) {
	buf := make([]byte, 32<<10)
	for {
		n, err := c.Read(buf)
		if n > 0 {
			if _, werr := c.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// session is what one relayed session left behind when Pipe returned.
type session struct {
	err      error
	up, down int64
}

// relayServer is a real wss endpoint (httptest TLS server) that upgrades
// with NewUpgrader, wraps the socket in a Stream and pipes it to backend.
type relayServer struct {
	srv       *httptest.Server
	ended     chan session // one per finished Pipe
	clientBuf int          // the client's buffer sizes; gorilla's defaults if zero
}

type relayOptions struct {
	ctx       context.Context // Pipe's context; Background if nil
	keepAlive time.Duration   // KeepAlive interval; none if zero
	// opaque hides the backend socket from Pipe, as a wrapper that is
	// not a socket does (an RDP host's TLS connection).
	opaque bool
}

const goodOrigin = "https://portal.example"

func newRelayServer(t testing.TB, backend string, opt relayOptions) *relayServer {
	t.Helper()
	if opt.ctx == nil {
		opt.ctx = context.Background()
	}
	rs := &relayServer{ended: make(chan session, 1000)}
	// Every connection the relay opens is closed at cleanup before the
	// server waits for its handlers, so a Pipe that fails to end fails
	// its test instead of hanging it.
	var (
		mu    sync.Mutex
		conns []io.Closer
	)
	track := func(c io.Closer) {
		mu.Lock()
		conns = append(conns, c)
		mu.Unlock()
	}
	up := NewUpgrader(func(o string) bool { return o == goodOrigin })
	rs.srv = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ws, err := up.Upgrade(w, r, nil)
		if err != nil {
			return // Upgrade has answered the client.
		}
		c, err := net.Dial("tcp", backend)
		if err != nil {
			ws.Close()
			rs.ended <- session{err: err}
			return
		}
		track(ws.NetConn())
		track(c)
		ctx, cancel := context.WithCancel(opt.ctx)
		defer cancel()
		if opt.keepAlive > 0 {
			KeepAlive(ctx, ws, opt.keepAlive)
		}
		var cnt Counters
		var backendConn io.ReadWriteCloser = c
		if opt.opaque {
			backendConn = struct{ net.Conn }{c}
		}
		err = Pipe(ctx, NewStream(ws), backendConn, &cnt)
		rs.ended <- session{err: err, up: cnt.Up.Load(), down: cnt.Down.Load()}
	}))
	t.Cleanup(func() {
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		rs.srv.Close()
	})
	return rs
}

// dial opens a browser-like WebSocket to the relay, trusting its
// certificate. With gorilla's default (small) buffers large messages
// arrive in fragments.
func (rs *relayServer) dial(t testing.TB, origin string) (*websocket.Conn, error) {
	t.Helper()
	pool := x509.NewCertPool()
	pool.AddCert(rs.srv.Certificate())
	d := websocket.Dialer{
		TLSClientConfig:  &tls.Config{RootCAs: pool, ServerName: "example.com"},
		HandshakeTimeout: 10 * time.Second,
		ReadBufferSize:   rs.clientBuf,
		WriteBufferSize:  rs.clientBuf,
	}
	h := http.Header{}
	if origin != "" {
		h.Set("Origin", origin)
	}
	ws, resp, err := d.Dial("wss"+strings.TrimPrefix(rs.srv.URL, "https"), h)
	if resp != nil && resp.Body != nil {
		resp.Body.Close()
	}
	return ws, err
}

func (rs *relayServer) mustDial(t testing.TB) *websocket.Conn {
	t.Helper()
	ws, err := rs.dial(t, goodOrigin)
	if err != nil {
		t.Fatalf("dial relay: %v", err)
	}
	return ws
}

// waitSession returns the next finished session, failing after a generous
// deadline that only guards against hangs.
func (rs *relayServer) waitSession(t testing.TB) session {
	t.Helper()
	select {
	case s := <-rs.ended:
		return s
	case <-time.After(20 * time.Second):
		t.Fatal("relay session did not end")
		return session{}
	}
}

// readN reads messages from ws until n payload bytes have arrived.
func readN(ws *websocket.Conn, n int) ([]byte, error) {
	got := make([]byte, 0, n)
	for len(got) < n {
		_, r, err := ws.NextReader()
		if err != nil {
			return got, err
		}
		b, err := io.ReadAll(r)
		got = append(got, b...)
		if err != nil {
			return got, err
		}
	}
	return got, nil
}
