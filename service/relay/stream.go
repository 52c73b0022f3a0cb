package relay

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
)

// closeWait bounds how long sending a close frame may block on a peer that
// does not read.
const closeWait = time.Second

// Stream is a browser WebSocket seen as a byte stream. Read returns the
// payloads of binary and text messages as one stream, across message
// boundaries; each Write is sent as binary messages of at most MaxPayload
// bytes, each one frame in one write on the connection.
//
// One goroutine may read while another writes; Write, WriteText, Close and
// gorilla's control writes are safe together.
//
// Stream reads frames itself instead of through gorilla's NextReader,
// which allocates a reader per message: on the upload path that was the
// only allocation left. It reads from the connection without a buffer of
// its own beyond a few hundred bytes: a TLS connection holds a whole
// decrypted record already, and an idle session should hold nothing.
// It writes data frames itself too (writeFrameLocked), with the header in
// front of the payload in one TLS write. gorilla still does the handshake,
// the control frames, and the ping, pong and close handlers, which Stream
// calls as gorilla would.
//
// When the TLS connection runs over a BatchConn, each message goes out in
// one system call.
type Stream struct {
	ws    *websocket.Conn
	batch *BatchConn // nil unless the connection is TLS over a BatchConn
	r     frameReader
	err   error // sticky read error, owned by the reading goroutine
	wmu   sync.Mutex

	closeOnce sync.Once
	closeErr  error
	closing   atomic.Bool // a close frame is being or was sent: no more data frames

	wdl atomic.Int64 // write deadline (Unix ns, 0 for none) for frames Stream writes itself
}

// frameRoom is the room writeFramed needs in front of a payload: the
// longest server frame header (2 bytes, and 8 of length).
const frameRoom = 10

// writeFramed sends buf[frameRoom:] as one binary message, writing the
// frame header into the free room in front of it, so the payload is not
// copied on its way to TLS. Pipe reads the backend into buf[frameRoom:].
func (s *Stream) writeFramed(buf []byte) (int, error) {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	if err := s.writeFrameLocked(opBinary, buf); err != nil {
		return 0, fmt.Errorf("write to browser: %w", err)
	}
	return len(buf) - frameRoom, nil
}

// writeFrameLocked sends buf[frameRoom:] as one message of type op, its
// header written into buf[:frameRoom], in one TLS write (one system call
// over a BatchConn). Every data frame Stream sends goes through here, so
// none follows a close frame and all obey the Stream's write deadline.
// s.wmu is held.
func (s *Stream) writeFrameLocked(op byte, buf []byte) error {
	n := len(buf) - frameRoom
	var start int
	switch {
	case n < 126:
		start = frameRoom - 2
		buf[start+1] = byte(n)
	case n <= 0xffff:
		start = frameRoom - 4
		buf[start+1] = 126
		binary.BigEndian.PutUint16(buf[start+2:], uint16(n))
	default:
		start = frameRoom - 10
		buf[start+1] = 127
		binary.BigEndian.PutUint64(buf[start+2:], uint64(n))
	}
	buf[start] = 0x80 | op // FIN, unmasked: a server frame
	if s.closing.Load() {
		return websocket.ErrCloseSent
	}
	conn := s.ws.NetConn()
	// gorilla's control writes (pings, close) set their own deadline.
	var dl time.Time
	if ns := s.wdl.Load(); ns != 0 {
		dl = time.Unix(0, ns)
	}
	if err := conn.SetWriteDeadline(dl); err != nil {
		return err
	}
	s.batch.Hold()
	_, err := conn.Write(buf[start:])
	if rerr := s.batch.Release(); err == nil {
		err = rerr
	}
	return err
}

// writeCopy sends p as one message of type op, copied behind header room
// into a pooled buffer (or, for a text message larger than one, a buffer
// of its own). s.wmu is held.
func (s *Stream) writeCopy(op byte, p []byte) error {
	if len(p) > MaxPayload {
		buf := make([]byte, frameRoom+len(p))
		copy(buf[frameRoom:], p)
		return s.writeFrameLocked(op, buf)
	}
	bp := copyBuffers.Get().(*[]byte)
	defer copyBuffers.Put(bp)
	buf := (*bp)[:frameRoom+len(p)]
	copy(buf[frameRoom:], p)
	return s.writeFrameLocked(op, buf)
}

// NewStream wraps ws, which must come straight from Upgrade (a server-side
// connection nobody has read from). From then on only the Stream may read
// ws; gorilla's NextReader and ReadMessage must not be used. Messages
// larger than MaxMessage end the stream with close code 1009.
func NewStream(ws *websocket.Conn) *Stream {
	s := &Stream{ws: ws, batch: batchOf(ws.NetConn())}
	s.r = frameReader{
		src:     ws.NetConn(),
		limit:   MaxMessage,
		control: s.control,
	}
	return s
}

// Conn returns the underlying WebSocket, for its handlers and addresses.
func (s *Stream) Conn() *websocket.Conn { return s.ws }

// Read reads message payloads as one stream. A close frame with a normal
// code (1000, 1001 or none) reads as io.EOF; another close code as a
// *websocket.CloseError; a frame that breaks the protocol makes Stream
// send a close frame with the matching code and return an error. Errors
// are permanent.
func (s *Stream) Read(p []byte) (int, error) {
	if s.err != nil {
		return 0, s.err
	}
	n, err := s.r.Read(p)
	if err != nil {
		s.err = s.readError(err)
	}
	return n, s.err
}

// waitReadable blocks until Read has payload or an error to return
// without waiting on the connection, using only the Stream's own small
// buffer; Pipe calls it before borrowing a copy buffer. An error is left
// for Read to report.
func (s *Stream) waitReadable() {
	if s.err == nil {
		s.r.waitRead()
	}
}

// readError turns a frameReader error into what Read reports, telling the
// peer about a protocol error on the way.
func (s *Stream) readError(err error) error {
	var pe *protocolError
	if errors.As(err, &pe) {
		msg := websocket.FormatCloseMessage(pe.code, pe.msg)
		if len(msg) > maxControlPayload {
			msg = msg[:maxControlPayload]
		}
		// Best effort: the peer is misbehaving and may not read.
		s.closing.Store(true)
		_ = s.ws.WriteControl(websocket.CloseMessage, msg, time.Now().Add(closeWait))
		return fmt.Errorf("read websocket: %w", err)
	}
	var ce *websocket.CloseError
	if errors.As(err, &ce) {
		switch ce.Code {
		case websocket.CloseNormalClosure, websocket.CloseGoingAway, websocket.CloseNoStatusReceived:
			return io.EOF
		}
		return err
	}
	return fmt.Errorf("read websocket: %w", err)
}

// control handles a ping, pong or close frame with gorilla's handlers, so
// SetPingHandler, SetPongHandler (KeepAlive) and SetCloseHandler work as
// documented by gorilla.
func (s *Stream) control(op byte, payload []byte) error {
	switch op {
	case opPing:
		return s.ws.PingHandler()(string(payload))
	case opPong:
		return s.ws.PongHandler()(string(payload))
	}
	code, text, err := parseClose(payload)
	if err != nil {
		return err
	}
	// gorilla's handler answers with a close frame; no data after it.
	s.closing.Store(true)
	if err := s.ws.CloseHandler()(code, text); err != nil {
		return err
	}
	return &websocket.CloseError{Code: code, Text: text}
}

// Write sends p as binary messages of at most MaxPayload bytes each; a
// message up to that size is one frame in one write on the connection.
func (s *Stream) Write(p []byte) (int, error) {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	written := 0
	for len(p) > 0 {
		chunk := p[:min(len(p), MaxPayload)]
		if err := s.writeCopy(opBinary, chunk); err != nil {
			return written, fmt.Errorf("write to browser: %w", err)
		}
		written += len(chunk)
		p = p[len(chunk):]
	}
	return written, nil
}

// WriteText sends p as one text message, for pages that take control
// messages as text beside the binary stream.
func (s *Stream) WriteText(p []byte) error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	if err := s.writeCopy(opText, p); err != nil {
		return fmt.Errorf("write text to browser: %w", err)
	}
	return nil
}

// Close sends a normal-closure frame (waiting at most a second for a peer
// that does not read) and closes the connection. Only the first call does
// anything.
func (s *Stream) Close() error {
	s.closeOnce.Do(func() {
		s.closing.Store(true)
		// Fails harmlessly when the peer's close frame was already answered.
		_ = s.ws.WriteControl(websocket.CloseMessage,
			websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), time.Now().Add(closeWait))
		if err := s.ws.Close(); err != nil {
			s.closeErr = fmt.Errorf("close websocket: %w", err)
		}
	})
	return s.closeErr
}

// SetReadDeadline sets the deadline for Read. KeepAlive moves it on every
// pong, so do not combine the two.
func (s *Stream) SetReadDeadline(t time.Time) error { return s.ws.SetReadDeadline(t) }

// SetWriteDeadline sets the deadline for Write and WriteText. After a
// write times out the stream is broken.
func (s *Stream) SetWriteDeadline(t time.Time) error {
	var ns int64
	if !t.IsZero() {
		ns = t.UnixNano()
	}
	s.wdl.Store(ns)
	return s.ws.SetWriteDeadline(t)
}

// SetDeadline sets both deadlines.
func (s *Stream) SetDeadline(t time.Time) error {
	if err := s.SetWriteDeadline(t); err != nil {
		return err
	}
	return s.ws.SetReadDeadline(t)
}
