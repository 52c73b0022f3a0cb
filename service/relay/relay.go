// Package relay is the byte-moving core every browser session shares: it
// turns a browser WebSocket into a byte stream (each write one binary
// message in one underlying write), pipes two streams with pooled buffers,
// and configures upgrades and keep-alives. Protocol knowledge (RFB, SSH,
// RDCleanPath) lives in the sub-packages; authorisation lives in the portal.
package relay

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
)

// Sizes on the hot path. A 64 KiB message is large enough that the per
// message cost (frame header, TLS record, syscall) is small, and small
// enough to keep latency low.
const (
	// BufferSize is the copy buffer and the largest message Write sends.
	BufferSize = 64 << 10
	// MaxMessage is the largest message accepted from a browser.
	MaxMessage = 4 << 20
)

// writeBufferPool lends frame buffers to connections only while they
// write, so an idle session holds none.
var writeBufferPool = &sync.Pool{}

// NewUpgrader returns the upgrader for relay WebSockets. allowOrigin
// decides on the Origin header; a request without one is refused.
func NewUpgrader(allowOrigin func(origin string) bool) *websocket.Upgrader {
	return &websocket.Upgrader{
		HandshakeTimeout: 10 * time.Second,
		// 4 KiB lets gorilla reuse the HTTP server's reader: nothing extra
		// per idle session.
		ReadBufferSize: 4096,
		// Header plus a full BufferSize payload fit, so one message is one write.
		WriteBufferSize: BufferSize + 16,
		WriteBufferPool: writeBufferPool,
		CheckOrigin: func(r *http.Request) bool {
			o := r.Header.Get("Origin")
			return o != "" && allowOrigin(o)
		},
	}
}

// Stream is a WebSocket seen as a byte stream. Reads span message
// boundaries; each Write is one binary message.
type Stream struct {
	ws  *websocket.Conn
	cur io.Reader
	wmu sync.Mutex
}

// NewStream wraps ws. It sets the read limit to MaxMessage.
func NewStream(ws *websocket.Conn) *Stream {
	ws.SetReadLimit(MaxMessage)
	return &Stream{ws: ws}
}

// Conn returns the underlying WebSocket.
func (s *Stream) Conn() *websocket.Conn { return s.ws }

// Read reads the payload of binary (and text) messages as one stream.
// A normal close by the browser reads as io.EOF.
func (s *Stream) Read(p []byte) (int, error) {
	for {
		if s.cur == nil {
			_, r, err := s.ws.NextReader()
			if err != nil {
				if websocket.IsCloseError(err, websocket.CloseNormalClosure, websocket.CloseGoingAway, websocket.CloseNoStatusReceived) {
					return 0, io.EOF
				}
				return 0, err
			}
			s.cur = r
		}
		n, err := s.cur.Read(p)
		if err == io.EOF {
			s.cur = nil
			if n > 0 {
				return n, nil
			}
			continue
		}
		return n, err
	}
}

// Write sends p as binary messages of at most BufferSize bytes.
func (s *Stream) Write(p []byte) (int, error) {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	written := 0
	for len(p) > 0 {
		chunk := p
		if len(chunk) > BufferSize {
			chunk = chunk[:BufferSize]
		}
		if err := s.ws.WriteMessage(websocket.BinaryMessage, chunk); err != nil {
			return written, err
		}
		written += len(chunk)
		p = p[len(chunk):]
	}
	return written, nil
}

// WriteText sends one text message (control messages of the SSH page).
func (s *Stream) WriteText(p []byte) error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	return s.ws.WriteMessage(websocket.TextMessage, p)
}

// Close closes the WebSocket with a normal-closure frame.
func (s *Stream) Close() error {
	s.ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), time.Now().Add(time.Second))
	return s.ws.Close()
}

// KeepAlive pings the browser every interval and drops the connection when
// no pong (or message) arrives within 2.5 intervals, so dead peers do not
// hold sessions open. It returns when ctx ends or a ping fails.
func KeepAlive(ctx context.Context, ws *websocket.Conn, interval time.Duration) {
	grace := interval * 5 / 2
	ws.SetReadDeadline(time.Now().Add(grace))
	ws.SetPongHandler(func(string) error { return ws.SetReadDeadline(time.Now().Add(grace)) })
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := ws.WriteControl(websocket.PingMessage, nil, time.Now().Add(interval)); err != nil {
				return
			}
		}
	}
}

var bufPool = sync.Pool{New: func() any { b := make([]byte, BufferSize); return &b }}

// Pipe copies a→b and b→a until either side ends or ctx is cancelled, then
// closes both and waits for both copies to stop. up counts a→b bytes and
// down b→a bytes (either may be nil). A clean end returns nil.
func Pipe(ctx context.Context, a, b io.ReadWriteCloser, up, down *atomic.Int64) error {
	errc := make(chan error, 2)
	cp := func(dst io.Writer, src io.Reader, c *atomic.Int64) {
		bp := bufPool.Get().(*[]byte)
		defer bufPool.Put(bp)
		if c != nil {
			dst = countWriter{dst, c}
		}
		_, err := io.CopyBuffer(dst, src, *bp)
		errc <- err
	}
	go cp(b, a, up)
	go cp(a, b, down)
	var first error
	got := 0
	select {
	case first = <-errc:
		got = 1
	case <-ctx.Done():
		first = ctx.Err()
	}
	a.Close()
	b.Close()
	for ; got < 2; got++ {
		<-errc
	}
	if first == nil || errors.Is(first, io.EOF) || errors.Is(first, net.ErrClosed) {
		return nil
	}
	return first
}

type countWriter struct {
	w io.Writer
	c *atomic.Int64
}

func (cw countWriter) Write(p []byte) (int, error) {
	n, err := cw.w.Write(p)
	cw.c.Add(int64(n))
	return n, err
}
