package relay

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// TestRelayIntegrity: random data of many sizes goes browser → relay →
// echo backend → relay → browser unchanged, and the counters match.
func TestRelayIntegrity(t *testing.T) {
	rs := newRelayServer(t, backendServer(t, echo), relayOptions{})
	ws := rs.mustDial(t)
	total := 0
	for _, size := range []int{1, 100, 4095, 4097, BufferSize - 1, BufferSize, BufferSize + 1, 3*BufferSize + 7, 1 << 20} {
		data := make([]byte, size)
		rand.Read(data)
		werr := make(chan error, 1)
		go func() { werr <- ws.WriteMessage(websocket.BinaryMessage, data) }()
		ws.SetReadDeadline(time.Now().Add(20 * time.Second))
		got, err := readN(ws, size)
		if err != nil {
			t.Fatalf("size %d: read back: %v", size, err)
		}
		if err := <-werr; err != nil {
			t.Fatalf("size %d: write: %v", size, err)
		}
		if !bytes.Equal(got, data) {
			t.Fatalf("size %d: data changed on the way", size)
		}
		total += size
	}
	// Text messages are relayed as bytes too.
	if err := ws.WriteMessage(websocket.TextMessage, []byte("text")); err != nil {
		t.Fatal(err)
	}
	if got, err := readN(ws, 4); err != nil || string(got) != "text" {
		t.Fatalf("text message came back as %q, %v", got, err)
	}
	total += 4

	ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), time.Now().Add(5*time.Second))
	s := rs.waitSession(t)
	ws.Close()
	if s.err != nil {
		t.Fatalf("a normal close ended Pipe with %v", s.err)
	}
	if s.up != int64(total) || s.down != int64(total) {
		t.Fatalf("counters up %d down %d, want %d each", s.up, s.down, total)
	}
}

func TestOriginRefused(t *testing.T) {
	var reached atomic.Int64
	rs := newRelayServer(t, backendServer(t, func(net.Conn) { reached.Add(1) }), relayOptions{})
	for _, origin := range []string{"https://evil.example", ""} {
		if ws, err := rs.dial(t, origin); err == nil {
			ws.Close()
			t.Fatalf("origin %q accepted", origin)
		}
	}
	if NewUpgrader(nil).CheckOrigin(&http.Request{Header: http.Header{"Origin": {goodOrigin}}}) {
		t.Fatal("a nil allowOrigin accepted an origin")
	}
	ws := rs.mustDial(t) // the allowed origin gets through
	ws.Close()
	rs.waitSession(t)
	// The backend counts in its own goroutine, which may run after the
	// session ended: wait for the allowed connection to show up.
	for deadline := time.Now().Add(10 * time.Second); reached.Load() == 0 && time.Now().Before(deadline); {
		time.Sleep(5 * time.Millisecond)
	}
	if reached.Load() != 1 {
		t.Fatalf("backend saw %d connections, want only the allowed one", reached.Load())
	}
}

// TestBackendCloseClosesBrowser: when the host hangs up, the browser gets
// the last bytes and then a normal close.
func TestBackendCloseClosesBrowser(t *testing.T) {
	backend := backendServer(t, func(c net.Conn) { c.Write([]byte("bye")) })
	rs := newRelayServer(t, backend, relayOptions{})
	ws := rs.mustDial(t)
	defer ws.Close()
	ws.SetReadDeadline(time.Now().Add(20 * time.Second))
	if got, err := readN(ws, 3); err != nil || string(got) != "bye" {
		t.Fatalf("got %q, %v", got, err)
	}
	_, _, err := ws.NextReader()
	if !websocket.IsCloseError(err, websocket.CloseNormalClosure) {
		t.Fatalf("after the backend closed, browser read %v, want close 1000", err)
	}
	if s := rs.waitSession(t); s.err != nil || s.down != 3 {
		t.Fatalf("session ended with %v after %d bytes", s.err, s.down)
	}
}

// TestBrowserCloseClosesBackend: both a close frame and a vanished
// browser close the backend connection; only the second is an error.
func TestBrowserCloseClosesBackend(t *testing.T) {
	for _, abrupt := range []bool{false, true} {
		gone := make(chan error, 1)
		backend := backendServer(t, func(c net.Conn) {
			_, err := io.Copy(io.Discard, c)
			gone <- err
		})
		rs := newRelayServer(t, backend, relayOptions{})
		ws := rs.mustDial(t)
		if err := ws.WriteMessage(websocket.BinaryMessage, []byte("x")); err != nil {
			t.Fatal(err)
		}
		if abrupt {
			ws.NetConn().Close()
		} else {
			ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseGoingAway, ""), time.Now().Add(5*time.Second))
		}
		select {
		case err := <-gone:
			if err != nil {
				t.Fatalf("abrupt=%v: backend read ended with %v, want EOF", abrupt, err)
			}
		case <-time.After(20 * time.Second):
			t.Fatalf("abrupt=%v: backend connection stayed open", abrupt)
		}
		s := rs.waitSession(t)
		ws.Close()
		if abrupt != (s.err != nil) {
			t.Fatalf("abrupt=%v: Pipe returned %v", abrupt, s.err)
		}
		if s.up != 1 {
			t.Fatalf("abrupt=%v: up counter %d, want 1", abrupt, s.up)
		}
	}
}

// TestProtocolErrorClosesWithCode: an unmasked frame from the browser
// ends the session with close code 1002 on the wire.
func TestProtocolErrorClosesWithCode(t *testing.T) {
	rs := newRelayServer(t, backendServer(t, echo), relayOptions{})
	ws := rs.mustDial(t)
	defer ws.Close()
	if _, err := ws.NetConn().Write([]byte{0x82, 0x01, 'x'}); err != nil {
		t.Fatal(err)
	}
	ws.SetReadDeadline(time.Now().Add(20 * time.Second))
	_, _, err := ws.NextReader()
	if !websocket.IsCloseError(err, websocket.CloseProtocolError) {
		t.Fatalf("browser read %v, want close 1002", err)
	}
	var pe *protocolError
	if s := rs.waitSession(t); !errors.As(s.err, &pe) {
		t.Fatalf("Pipe returned %v, want the protocol error", s.err)
	}
}

// TestCancelEndsPipe: cancelling the session's context closes both sides.
func TestCancelEndsPipe(t *testing.T) {
	gone := make(chan struct{})
	backend := backendServer(t, func(c net.Conn) { io.Copy(io.Discard, c); close(gone) })
	ctx, cancel := context.WithCancelCause(context.Background())
	rs := newRelayServer(t, backend, relayOptions{ctx: ctx})
	ws := rs.mustDial(t)
	defer ws.Close()
	if err := ws.WriteMessage(websocket.BinaryMessage, []byte("x")); err != nil {
		t.Fatal(err)
	}
	stop := errors.New("session revoked")
	cancel(stop)
	if s := rs.waitSession(t); !errors.Is(s.err, stop) {
		t.Fatalf("Pipe returned %v, want the cancel cause", s.err)
	}
	ws.SetReadDeadline(time.Now().Add(20 * time.Second))
	if _, _, err := ws.NextReader(); !websocket.IsCloseError(err, websocket.CloseNormalClosure) {
		t.Fatalf("browser read %v, want close 1000", err)
	}
	select {
	case <-gone:
	case <-time.After(20 * time.Second):
		t.Fatal("backend connection stayed open")
	}
}

// TestPipeNoGoroutineLeak: 1,000 sessions ended in every way leave no
// goroutine and no file descriptor behind.
func TestPipeNoGoroutineLeak(t *testing.T) {
	backend := backendServer(t, func(c net.Conn) {
		b := make([]byte, 1)
		for {
			if _, err := c.Read(b); err != nil {
				return
			}
			c.Write(b)
			if b[0] == 'q' {
				return // the host hangs up
			}
		}
	})
	rs := newRelayServer(t, backend, relayOptions{})
	// Warm up once so lazily started runtime and TLS goroutines count in
	// the baseline.
	ws := rs.mustDial(t)
	ws.Close()
	rs.waitSession(t)
	base := runtime.NumGoroutine()
	baseFDs := openFDs(t)

	const sessions = 1000
	for i := range sessions {
		ws := rs.mustDial(t)
		msg := []byte{"eeq"[i%3]}
		if err := ws.WriteMessage(websocket.BinaryMessage, msg); err != nil {
			t.Fatal(err)
		}
		ws.SetReadDeadline(time.Now().Add(20 * time.Second))
		if got, err := readN(ws, 1); err != nil || got[0] != msg[0] {
			t.Fatalf("session %d: echo %q, %v", i, got, err)
		}
		switch i % 3 {
		case 0: // the browser closes properly
			ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), time.Now().Add(5*time.Second))
		case 1: // the browser vanishes
		case 2: // the host hung up; the browser sees the close
			if _, _, err := ws.NextReader(); !websocket.IsCloseError(err, websocket.CloseNormalClosure) {
				t.Fatalf("session %d: got %v, want close 1000", i, err)
			}
		}
		ws.Close()
	}
	for range sessions {
		rs.waitSession(t)
	}
	deadline := time.Now().Add(20 * time.Second)
	n := runtime.NumGoroutine()
	for n > base && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
		n = runtime.NumGoroutine()
	}
	if n > base {
		buf := make([]byte, 1<<20)
		t.Fatalf("goroutines: %d before, %d after %d sessions\n%s", base, n, sessions, buf[:runtime.Stack(buf, true)])
	}
	// Closed sockets leave the table when their goroutines have ended;
	// the deadline only guards against a hang.
	fds := openFDs(t)
	for fds > baseFDs && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
		fds = openFDs(t)
	}
	if fds > baseFDs {
		t.Fatalf("file descriptors: %d before, %d after %d sessions", baseFDs, fds, sessions)
	}
}

// openFDs counts this process's open file descriptors.
func openFDs(t *testing.T) int {
	t.Helper()
	fds, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatalf("count file descriptors: %v", err)
	}
	return len(fds)
}

// TestPipeNetPipe: Pipe on plain in-memory connections, for what the
// wss tests cannot force: a context that ends first, and nil counters.
func TestPipeNetPipe(t *testing.T) {
	a1, a2 := net.Pipe()
	b1, b2 := net.Pipe()
	t.Cleanup(func() { a1.Close(); a2.Close(); b1.Close(); b2.Close() })
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Pipe(ctx, a1, b1, nil) }()
	go a2.Write([]byte("ping"))
	got := make([]byte, 4)
	if _, err := io.ReadFull(b2, got); err != nil || string(got) != "ping" {
		t.Fatalf("got %q, %v", got, err)
	}
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("Pipe returned %v, want context.Canceled", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("Pipe did not return after cancel")
	}
	for _, c := range []net.Conn{a2, b2} {
		if _, err := c.Read(got); err != io.EOF {
			t.Fatalf("peer read %v after Pipe ended, want EOF", err)
		}
	}
}

// TestKeepAlive: a browser that answers pings keeps its session; one
// that stops reading (so never answers) is dropped by the read deadline.
func TestKeepAlive(t *testing.T) {
	const interval = 200 * time.Millisecond
	rs := newRelayServer(t, backendServer(t, echo), relayOptions{keepAlive: interval})

	live := rs.mustDial(t)
	defer live.Close()
	var pings atomic.Int64
	live.SetPingHandler(func(data string) error {
		pings.Add(1)
		return live.WriteControl(websocket.PongMessage, []byte(data), time.Now().Add(5*time.Second))
	})
	reads := make(chan error, 1)
	go func() {
		_, err := readN(live, 1)
		reads <- err
	}()
	// Wait for several pings to have been answered, then check the session
	// still relays.
	deadline := time.Now().Add(20 * time.Second)
	for pings.Load() < 5 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if pings.Load() < 5 {
		t.Fatalf("only %d pings arrived", pings.Load())
	}
	if err := live.WriteMessage(websocket.BinaryMessage, []byte("x")); err != nil {
		t.Fatalf("live session: %v", err)
	}
	if err := <-reads; err != nil {
		t.Fatalf("live session dropped: %v", err)
	}
	live.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), time.Now().Add(5*time.Second))
	if s := rs.waitSession(t); s.err != nil {
		t.Fatalf("live session ended with %v", s.err)
	}

	dead := rs.mustDial(t) // never reads, so never answers a ping
	defer dead.Close()
	s := rs.waitSession(t)
	if !errors.Is(s.err, os.ErrDeadlineExceeded) {
		t.Fatalf("silent browser's session ended with %v, want a read deadline error", s.err)
	}
}

// TestIdleSessionFootprint: an idle session runs on at most two relay
// goroutines and holds no 64 KiB copy buffers. The process also holds the
// test's client and backend ends (~100 KiB a session with them), so the
// bound is the two copy buffers a session would hold alone if Pipe kept
// them while idle (it did: ~230 KiB measured here then).
func TestIdleSessionFootprint(t *testing.T) {
	socket := idleSessionFootprint(t, false)
	if socket >= 2*BufferSize {
		t.Errorf("%.0f bytes per idle session, want less than two %d-byte copy buffers", socket, BufferSize)
	}
	// A source Pipe cannot wait on holds a buffer while idle: a small one.
	opaque := idleSessionFootprint(t, true)
	if extra := opaque - socket; extra >= BufferSize/2 {
		t.Errorf("a backend Pipe cannot wait on costs %.0f bytes more per idle session, want less than %d", extra, BufferSize/2)
	}
}

// idleSessionFootprint opens idle sessions and returns the heap and stack
// bytes per session, client and backend ends included.
func idleSessionFootprint(t *testing.T, opaque bool) float64 {
	rs := newRelayServer(t, backendServer(t, echo), relayOptions{opaque: opaque})
	roundTrip := func(ws *websocket.Conn) {
		if err := ws.WriteMessage(websocket.BinaryMessage, []byte("x")); err != nil {
			t.Fatal(err)
		}
		ws.SetReadDeadline(time.Now().Add(20 * time.Second))
		if _, err := readN(ws, 1); err != nil {
			t.Fatal(err)
		}
	}
	heap := func() uint64 {
		// Two collections empty sync.Pool's victim cache too.
		runtime.GC()
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		return ms.HeapInuse + ms.StackInuse
	}
	warm := rs.mustDial(t) // lazily started runtime and TLS state
	roundTrip(warm)
	defer warm.Close()
	g0, h0 := runtime.NumGoroutine(), heap()

	const sessions = 100
	for range sessions {
		ws := rs.mustDial(t)
		defer ws.Close()
		roundTrip(ws)
	}
	g1, h1 := runtime.NumGoroutine(), heap()
	// Per session: the relay's (handler + one Pipe goroutine) and the
	// test backend's handler.
	if per := float64(g1-g0) / sessions; per > 3 {
		t.Errorf("%.2f goroutines per idle session, want at most 2 in the relay (3 with the test backend)", per)
	}
	per := float64(int64(h1)-int64(h0)) / sessions
	t.Logf("opaque backend %v: %.1f KiB heap+stack per idle session, client and backend ends included", opaque, per/1024)
	return per
}
