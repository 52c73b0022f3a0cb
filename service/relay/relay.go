// Package relay is the byte-moving core every browser session shares: it
// turns a browser WebSocket into a byte stream (Stream), copies between
// that stream and a backend connection (Pipe), and configures upgrades
// (NewUpgrader) and dead-peer detection (KeepAlive). It is the hot path of
// the gateway, so it avoids per-message allocations and sends each message
// in one write.
//
// It owns no protocol knowledge and no policy: RFB, SSH and RDCleanPath
// live in the sub-packages, tickets and origins are decided by the portal,
// and this package must not look into the bytes it moves.
package relay

import (
	"context"
	"math"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
)

// Sizes on the hot path.
const (
	// BufferSize is Pipe's copy buffer: a frame header's room and the
	// largest message Stream sends (MaxPayload). 64 KiB makes the
	// per-message costs (frame header, TLS record headers, system call)
	// small against the payload while keeping a single message's latency
	// low, and a whole frame fills exactly four TLS records.
	BufferSize = 64 << 10

	// MaxPayload is the largest binary message Stream sends.
	MaxPayload = BufferSize - frameRoom

	// MaxMessage is the largest message accepted from a browser, summed
	// over its fragments. Stream never buffers a whole message, so this is
	// not a memory bound: it rejects peers that announce absurd lengths.
	// noVNC, xterm.js and IronRDP send messages far below it; 4 MiB leaves
	// room for a pasted clipboard or an upload chunk.
	MaxMessage = 4 << 20

	// handshakeTimeout bounds the WebSocket handshake.
	handshakeTimeout = 10 * time.Second
)

// NewUpgrader returns the upgrader for browser relay WebSockets.
// allowOrigin decides on the Origin header; a request without one, or any
// request when allowOrigin is nil, is refused, so a page on another site
// cannot open sessions with the user's cookies. Compression is off: the
// relayed protocols are compressed or encrypted already, and compression
// over TLS invites CRIME-style attacks.
//
// Each upgrader lends 64 KiB write buffers from its own pool, so a
// connection holds one only while it writes a message.
func NewUpgrader(allowOrigin func(origin string) bool) *websocket.Upgrader {
	return &websocket.Upgrader{
		HandshakeTimeout: handshakeTimeout,
		// Zero makes gorilla keep the HTTP server's reader instead of
		// allocating one; Stream reads with its own buffer anyway.
		ReadBufferSize: 0,
		// Stream frames data messages itself; gorilla writes only
		// control frames (from a buffer of their own) and, from a pool,
		// never holds a write buffer per connection.
		WriteBufferPool:   &sync.Pool{},
		EnableCompression: false,
		CheckOrigin: func(r *http.Request) bool {
			o := r.Header.Get("Origin")
			return o != "" && allowOrigin != nil && allowOrigin(o)
		},
	}
}

// KeepAlive makes ws detect a dead peer: it sets a read deadline of 2.5
// intervals, moves it on with every pong, and pings every interval until
// ctx is done or a ping cannot be sent. A peer that stops answering thus
// makes the next read fail within 2.5 intervals, which ends the session's
// Pipe.
//
// The pings come from a timer, not a goroutine of their own, so an idle
// session costs no goroutine for them.
//
// KeepAlive returns at once. Call it before anything reads ws (it replaces
// the pong handler, which the reader calls), and only on connections that
// are read continuously, as Pipe does: pongs are seen only while reading.
func KeepAlive(ctx context.Context, ws *websocket.Conn, interval time.Duration) {
	grace := interval * 5 / 2
	// Errors here mean the connection is closed; the reader will see that.
	_ = ws.SetReadDeadline(time.Now().Add(grace))
	ws.SetPongHandler(func(string) error {
		return ws.SetReadDeadline(time.Now().Add(grace))
	})
	// The timer re-arms itself from its own callback; it is stored before
	// it is armed, so the first tick always finds it.
	var t atomic.Pointer[time.Timer]
	t.Store(time.AfterFunc(math.MaxInt64, func() {
		if ctx.Err() != nil {
			return
		}
		if err := ws.WriteControl(websocket.PingMessage, nil, time.Now().Add(interval)); err != nil {
			return
		}
		t.Load().Reset(interval)
	}))
	t.Load().Reset(interval)
	context.AfterFunc(ctx, func() { t.Load().Stop() })
}
