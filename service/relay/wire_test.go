package relay

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"net"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"portico/internal/testcert"
)

// countConn counts Write calls on the connection under a WebSocket.
type countConn struct {
	net.Conn
	writes atomic.Int64
}

func (c *countConn) Write(p []byte) (int, error) {
	c.writes.Add(1)
	return c.Conn.Write(p)
}

type wrapListener struct {
	net.Listener
	wrap func(net.Conn) net.Conn
}

func (l wrapListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return l.wrap(c), nil
}

// plainPair is a real ws:// connection on 127.0.0.1: the server side from
// NewUpgrader with its connection counted, and a gorilla client.
func plainPair(t testing.TB) (server *websocket.Conn, cc *countConn, client *websocket.Conn) {
	return wsPair(t, false)
}

// wsPair is plainPair, or with secure a wss:// connection whose server
// TLS runs over a BatchConn over the counted connection, as the gateway's.
func wsPair(t testing.TB, secure bool) (server *websocket.Conn, cc *countConn, client *websocket.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	conns := make(chan *countConn, 1)
	ready := make(chan *websocket.Conn, 1)
	up := NewUpgrader(func(string) bool { return true })
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if ws, err := up.Upgrade(w, r, nil); err == nil {
			ready <- ws
		}
	})}
	counted := wrapListener{Listener: ln, wrap: func(c net.Conn) net.Conn {
		cc := &countConn{Conn: c}
		conns <- cc
		return cc
	}}
	dialer, scheme := *websocket.DefaultDialer, "ws://"
	if secure {
		certs, _, _ := testcert.New(t, "127.0.0.1")
		srv.TLSConfig = certs.TLSConfig()
		go srv.Serve(tls.NewListener(BatchListener(counted), srv.TLSConfig))
		dialer.TLSClientConfig = &tls.Config{InsecureSkipVerify: true}
		scheme = "wss://"
	} else {
		go srv.Serve(counted)
	}
	t.Cleanup(func() { srv.Close() })
	client, resp, err := dialer.Dial(scheme+ln.Addr().String(), http.Header{"Origin": {"http://x"}})
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	resp.Body.Close()
	t.Cleanup(func() { client.Close() })
	server = <-ready
	t.Cleanup(func() { server.Close() })
	return server, <-conns, client
}

// TestOneWritePerMessage: each message of up to MaxPayload bytes is one
// frame in one write on the connection, also over TLS, where such a
// message is four TLS records that a BatchConn sends together; longer
// writes are split at MaxPayload.
func TestOneWritePerMessage(t *testing.T) {
	for _, secure := range []bool{false, true} {
		t.Run(map[bool]string{false: "ws", true: "wss"}[secure], func(t *testing.T) { oneWritePerMessage(t, secure) })
	}
}

func oneWritePerMessage(t *testing.T, secure bool) {
	server, cc, client := wsPair(t, secure)
	s := NewStream(server)
	sizes := make(chan int, 100)
	texts := make(chan int, 1)
	go func() {
		for {
			op, r, err := client.NextReader()
			if err != nil {
				close(sizes)
				return
			}
			if op == websocket.TextMessage {
				texts <- 1
			}
			n := 0
			buf := make([]byte, 4096)
			for {
				k, err := r.Read(buf)
				n += k
				if err != nil {
					break
				}
			}
			sizes <- n
		}
	}()
	cases := []struct {
		size       int
		wantWrites int64
	}{
		{1, 1}, {125, 1}, {126, 1}, {MaxPayload, 1}, {MaxPayload + 1, 2}, {2*MaxPayload + 1, 3},
	}
	for _, tc := range cases {
		before := cc.writes.Load()
		if n, err := s.Write(make([]byte, tc.size)); err != nil || n != tc.size {
			t.Fatalf("size %d: wrote %d, %v", tc.size, n, err)
		}
		if got := cc.writes.Load() - before; got != tc.wantWrites {
			t.Fatalf("a %d-byte Write took %d writes, want %d", tc.size, got, tc.wantWrites)
		}
		for left := tc.size; left > 0; {
			select {
			case n := <-sizes:
				if n > MaxPayload {
					t.Fatalf("a %d-byte message; the maximum is %d", n, MaxPayload)
				}
				left -= n
			case <-time.After(20 * time.Second):
				t.Fatal("client did not receive the message")
			}
		}
	}
	before := cc.writes.Load()
	if err := s.WriteText([]byte(`{"resize":[80,24]}`)); err != nil {
		t.Fatal(err)
	}
	if got := cc.writes.Load() - before; got != 1 {
		t.Fatalf("WriteText took %d writes", got)
	}
	select {
	case <-texts:
	case <-time.After(20 * time.Second):
		t.Fatal("no text message arrived")
	}
}

// TestUploadAllocs: in steady state the upload path (Stream.Read, backend
// write, counting — the real Pipe) allocates nothing per message, whether
// messages arrive whole or in fragments.
func TestUploadAllocs(t *testing.T) {
	const msgSize = 1000
	server, _, client := plainPair(t)
	raw := client.NetConn() // the test writes ready-made frames itself
	got := make(chan struct{}, 16)
	backend := backendServer(t, func(c net.Conn) {
		buf := make([]byte, 64<<10)
		total := 0
		for {
			n, err := c.Read(buf)
			for i := total / msgSize; i < (total+n)/msgSize; i++ {
				got <- struct{}{}
			}
			total += n
			if err != nil {
				return
			}
		}
	})
	bc, err := net.Dial("tcp", backend)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var cnt Counters
	done := make(chan error, 1)
	go func() { done <- Pipe(ctx, NewStream(server), bc, &cnt) }()
	defer func() {
		cancel()
		bc.Close() // in case Pipe is broken and does not close it
		<-done
	}()

	payload := make([]byte, msgSize)
	whole := clientFrame(true, opBinary, payload, [4]byte{1, 2, 3, 4})
	split := append(clientFrame(false, opBinary, payload[:300], [4]byte{5, 6, 7, 8}),
		clientFrame(true, opContinuation, payload[300:], [4]byte{9, 10, 11, 12})...)
	messages := 0
	hang := time.After(60 * time.Second) // made once: time.After allocates
	send := func(frame []byte) {
		if _, err := raw.Write(frame); err != nil {
			t.Fatalf("write frame: %v", err)
		}
		select {
		case <-got:
		case <-hang:
			t.Fatal("backend did not receive the message")
		}
		messages++
	}
	for _, tc := range []struct {
		name string
		wire []byte
	}{{"whole", whole}, {"fragmented", split}} {
		allocs := testing.AllocsPerRun(200, func() { send(tc.wire) })
		if allocs != 0 {
			t.Errorf("%s messages: %.2f allocations per message, want 0", tc.name, allocs)
		}
	}
	if up := cnt.Up.Load(); up != int64(messages*msgSize) {
		t.Fatalf("up counter %d, want %d", up, messages*msgSize)
	}
}

// TestWriteFramedInPlace: a payload behind frameRoom free bytes leaves as
// one binary message in one write on the connection, for each header
// length, and arrives unchanged.
func TestWriteFramedInPlace(t *testing.T) {
	server, cc, client := wsPair(t, true)
	s := NewStream(server)
	for _, size := range []int{1, 125, 126, 65535, 65536, 70000} {
		buf := make([]byte, frameRoom+size)
		rand.Read(buf[frameRoom:])
		want := bytes.Clone(buf[frameRoom:])
		before := cc.writes.Load()
		if n, err := s.writeFramed(buf); err != nil || n != size {
			t.Fatalf("size %d: wrote %d, %v", size, n, err)
		}
		if got := cc.writes.Load() - before; got != 1 {
			t.Fatalf("size %d: %d writes, want 1", size, got)
		}
		client.SetReadDeadline(time.Now().Add(20 * time.Second))
		op, got, err := client.ReadMessage()
		if err != nil || op != websocket.BinaryMessage || !bytes.Equal(got, want) {
			t.Fatalf("size %d: received op %d, %d bytes (equal %v), %v", size, op, len(got), bytes.Equal(got, want), err)
		}
	}
	s.Close()
	if _, err := s.writeFramed(make([]byte, frameRoom+1)); err == nil {
		t.Fatal("a data frame was written after the close frame")
	}
}

// TestWriteTextLarge: a text message larger than a copy buffer still
// leaves as one message, unchanged.
func TestWriteTextLarge(t *testing.T) {
	server, _, client := wsPair(t, true)
	s := NewStream(server)
	want := bytes.Repeat([]byte("0123456789"), 7000)
	if err := s.WriteText(want); err != nil {
		t.Fatal(err)
	}
	client.SetReadDeadline(time.Now().Add(20 * time.Second))
	op, got, err := client.ReadMessage()
	if err != nil || op != websocket.TextMessage || !bytes.Equal(got, want) {
		t.Fatalf("received op %d, %d bytes (equal %v), %v", op, len(got), bytes.Equal(got, want), err)
	}
}
