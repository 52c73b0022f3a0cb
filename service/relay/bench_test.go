package relay

import (
	"context"
	"io"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

const chunk = 64 << 10

// source writes 64 KiB chunks until the connection breaks.
func source(c net.Conn) {
	buf := make([]byte, chunk)
	for {
		if _, err := c.Write(buf); err != nil {
			return
		}
	}
}

// sink discards what it reads, adding it to total and signalling done
// each time total reaches target.
type sink struct {
	total, target atomic.Int64
	done          chan struct{}
}

func (s *sink) serve(c net.Conn) {
	buf := make([]byte, chunk)
	for {
		n, err := c.Read(buf)
		if t := s.target.Load(); t > 0 && s.total.Add(int64(n)) >= t {
			s.target.Store(0)
			s.done <- struct{}{}
		}
		if err != nil {
			return
		}
	}
}

// readBytes reads n payload bytes of messages from ws with buf.
func readBytes(b *testing.B, ws *websocket.Conn, n int64, buf []byte) {
	for n > 0 {
		_, r, err := ws.NextReader()
		if err != nil {
			b.Fatalf("read: %v", err)
		}
		for {
			k, err := r.Read(buf)
			n -= int64(k)
			if err == io.EOF {
				break
			}
			if err != nil {
				b.Fatalf("read: %v", err)
			}
		}
	}
}

// drain reads b.N chunks from c, timing only the reads.
func drain(b *testing.B, c net.Conn) {
	buf := make([]byte, chunk)
	b.SetBytes(chunk)
	b.ResetTimer()
	for left := int64(b.N) * chunk; left > 0; {
		n, err := c.Read(buf[:min(int64(len(buf)), left)])
		if err != nil {
			b.Fatal(err)
		}
		left -= int64(n)
	}
}

// BenchmarkRawTCP is the baseline: 64 KiB writes over loopback TCP with no
// relay at all.
func BenchmarkRawTCP(b *testing.B) {
	c, err := net.Dial("tcp", backendServer(b, source))
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	drain(b, c)
}

// BenchmarkPipeTCP is TCP → Pipe → TCP: the cost of Pipe alone.
func BenchmarkPipeTCP(b *testing.B) {
	backend := backendServer(b, source)
	front := backendServer(b, func(c net.Conn) {
		bc, err := net.Dial("tcp", backend)
		if err != nil {
			return
		}
		Pipe(context.Background(), c, bc, nil)
	})
	c, err := net.Dial("tcp", front)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	drain(b, c)
}

// BenchmarkWSSDown: backend → relay → browser over wss, 64 KiB chunks.
func BenchmarkWSSDown(b *testing.B) {
	rs := newRelayServer(b, backendServer(b, source), relayOptions{})
	rs.clientBuf = chunk
	ws := rs.mustDial(b)
	defer ws.Close()
	buf := make([]byte, chunk)
	readBytes(b, ws, 1<<20, buf) // past TLS's small first records
	b.SetBytes(chunk)
	b.ReportAllocs()
	b.ResetTimer()
	readBytes(b, ws, int64(b.N)*chunk, buf)
}

// BenchmarkWSSUp: browser → relay → backend over wss, 64 KiB messages.
func BenchmarkWSSUp(b *testing.B) {
	s := &sink{done: make(chan struct{}, 1)}
	rs := newRelayServer(b, backendServer(b, s.serve), relayOptions{})
	rs.clientBuf = chunk
	ws := rs.mustDial(b)
	defer ws.Close()
	msg := make([]byte, chunk)
	b.SetBytes(chunk)
	b.ReportAllocs()
	b.ResetTimer()
	s.target.Store(int64(b.N) * chunk)
	for range b.N {
		if err := ws.WriteMessage(websocket.BinaryMessage, msg); err != nil {
			b.Fatal(err)
		}
	}
	select {
	case <-s.done:
	case <-time.After(60 * time.Second):
		b.Fatal("backend did not receive everything")
	}
}

// BenchmarkRTT64: a 64-byte message to an echo backend and back; ns/op is
// the round trip through the relay.
func BenchmarkRTT64(b *testing.B) {
	rs := newRelayServer(b, backendServer(b, echo), relayOptions{})
	ws := rs.mustDial(b)
	defer ws.Close()
	msg := make([]byte, 64)
	buf := make([]byte, 64)
	b.SetBytes(64)
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		if err := ws.WriteMessage(websocket.BinaryMessage, msg); err != nil {
			b.Fatal(err)
		}
		readBytes(b, ws, 64, buf)
	}
}
