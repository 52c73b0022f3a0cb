package relay

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"unicode/utf8"

	"github.com/gorilla/websocket"
)

// Frame opcodes (RFC 6455 §5.2).
const (
	opContinuation = 0x0
	opText         = 0x1
	opBinary       = 0x2
	opClose        = 0x8
	opPing         = 0x9
	opPong         = 0xA
)

// maxControlPayload is the largest payload a control frame may carry.
const maxControlPayload = 125

// header is one parsed client frame header.
type header struct {
	fin    bool
	op     byte
	length int64
	key    [4]byte
}

// protocolError is a frame no conforming browser sends. code is the close
// code the peer is told.
type protocolError struct {
	code int
	msg  string
}

func (e *protocolError) Error() string {
	return fmt.Sprintf("websocket protocol error (close %d): %s", e.code, e.msg)
}

func protoErr(msg string) error { return &protocolError{code: websocket.CloseProtocolError, msg: msg} }

// headerSize is the length of a masked client frame header whose second
// byte is b1.
func headerSize(b1 byte) int {
	switch b1 & 0x7f {
	case 126:
		return 2 + 2 + 4
	case 127:
		return 2 + 8 + 4
	}
	return 2 + 4
}

// parseHeader parses the client frame header at the start of b. n is the
// header's length, or 0 when b holds only part of it. Every rule that can
// be checked on the header alone is checked here: no extension bits (none
// is negotiated), known opcodes, masking (clients must mask), and short,
// unfragmented control frames.
func parseHeader(b []byte) (h header, n int, err error) {
	if len(b) < 2 {
		return h, 0, nil
	}
	b0, b1 := b[0], b[1]
	if b0&0x70 != 0 {
		return h, 0, protoErr("reserved bits set")
	}
	h.fin = b0&0x80 != 0
	h.op = b0 & 0x0f
	switch h.op {
	case opContinuation, opText, opBinary, opClose, opPing, opPong:
	default:
		return h, 0, protoErr(fmt.Sprintf("unknown opcode %d", h.op))
	}
	if b1&0x80 == 0 {
		return h, 0, protoErr("client frame not masked")
	}
	isControl := h.op >= opClose
	n = headerSize(b1)
	if isControl && (!h.fin || b1&0x7f > maxControlPayload) {
		return h, 0, protoErr("invalid control frame")
	}
	if len(b) < n {
		return h, 0, nil
	}
	switch b1 & 0x7f {
	case 126:
		h.length = int64(binary.BigEndian.Uint16(b[2:4]))
	case 127:
		v := binary.BigEndian.Uint64(b[2:10])
		if v>>63 != 0 {
			return h, 0, protoErr("frame length overflows")
		}
		h.length = int64(v)
	default:
		h.length = int64(b1 & 0x7f)
	}
	copy(h.key[:], b[n-4:n])
	return h, n, nil
}

// mask XORs b with key, starting at key position pos, and returns the key
// position after b. Masking and unmasking are the same operation.
func mask(key [4]byte, pos int, b []byte) int {
	if len(b) >= 16 {
		var k [8]byte
		for i := range k {
			k[i] = key[(pos+i)&3]
		}
		kw := binary.LittleEndian.Uint64(k[:])
		// Eight bytes advance the key position by 0 mod 4, so pos holds.
		// Four words a turn: unmasking was about a seventh of the upload
		// path's CPU in the relay's profile; the unrolled loop runs
		// 1.5–2.8× faster than one word a turn (BenchmarkMask).
		for len(b) >= 32 {
			b = b[:len(b):len(b)]
			binary.LittleEndian.PutUint64(b[0:], binary.LittleEndian.Uint64(b[0:])^kw)
			binary.LittleEndian.PutUint64(b[8:], binary.LittleEndian.Uint64(b[8:])^kw)
			binary.LittleEndian.PutUint64(b[16:], binary.LittleEndian.Uint64(b[16:])^kw)
			binary.LittleEndian.PutUint64(b[24:], binary.LittleEndian.Uint64(b[24:])^kw)
			b = b[32:]
		}
		for len(b) >= 8 {
			binary.LittleEndian.PutUint64(b, binary.LittleEndian.Uint64(b)^kw)
			b = b[8:]
		}
	}
	for i := range b {
		b[i] ^= key[(pos+i)&3]
	}
	return (pos + len(b)) & 3
}

// frameBufSize is the frameReader's own buffer: room for the longest
// header plus the longest control payload (14 + 125), and for a burst of
// small input messages (keys, pointer moves) per read. Payloads longer
// than what is buffered are read straight into the caller's buffer, so it
// is never worth making this larger.
const frameBufSize = 256

// frameReader turns the frames a browser sends into one byte stream: the
// payloads of text and binary messages, unmasked, with message boundaries
// dropped. It never allocates. Control frames are passed to control; an
// error from control ends the stream with that error.
//
// It has no buffer from outside: its small buffer lives in the struct, so
// an idle session waiting for its next frame (waitRead) holds no pooled or
// heap buffer. The source is a *tls.Conn in the gateway, which buffers a
// decrypted record itself, so small reads from it cost no system call.
//
// A frameReader is used by one goroutine at a time, and its errors are
// permanent.
type frameReader struct {
	src     io.Reader
	limit   int64 // largest message accepted, summed over its fragments
	control func(op byte, payload []byte) error

	remain    int64 // payload bytes left in the current data frame
	key       [4]byte
	keyPos    int
	fragments bool  // a data message is open (its last frame had no FIN)
	msgLen    int64 // payload bytes of the open message so far
	err       error // permanent error returned by Read
	srcErr    error // error src returned with data, reported once buf is used up

	buf  [frameBufSize]byte
	r, w int // buf[r:w] is read but not consumed
}

// buffered is the number of bytes read from src but not consumed.
func (r *frameReader) buffered() int { return r.w - r.r }

// fill reads from src into buf, after moving unconsumed bytes to its
// start, and blocks until at least one byte arrives.
func (r *frameReader) fill() error {
	if r.srcErr != nil {
		return r.srcErr
	}
	if r.r > 0 {
		r.w = copy(r.buf[:], r.buf[r.r:r.w])
		r.r = 0
	}
	for range 100 { // a src that keeps returning 0, nil is broken
		n, err := r.src.Read(r.buf[r.w:])
		r.w += n
		if err != nil {
			err = readErr(err)
			if n > 0 {
				r.srcErr = err
				return nil
			}
			return err
		}
		if n > 0 {
			return nil
		}
	}
	return io.ErrNoProgress
}

// need makes at least n bytes buffered (n <= frameBufSize), blocking.
func (r *frameReader) need(n int) error {
	for r.buffered() < n {
		if err := r.fill(); err != nil {
			return err
		}
	}
	return nil
}

// waitRead blocks until Read can return data or an error without waiting
// on the connection, holding no buffer but its own while it waits: that is
// what an idle session does. It waits only at a frame boundary; inside a
// frame the rest of the payload is already on its way.
func (r *frameReader) waitRead() {
	if r.err != nil || r.remain > 0 || r.buffered() > 0 {
		return
	}
	if err := r.fill(); err != nil {
		r.err = err
	}
}

// Read fills p with payload bytes. It waits until at least one byte is
// available and then completes the current frame as far as p allows (the
// browser has sent it already); of further frames it takes only those
// already buffered, so a burst of small browser messages becomes one read
// and no read waits on a message the browser has not sent.
func (r *frameReader) Read(p []byte) (int, error) {
	if r.err != nil {
		return 0, r.err
	}
	n := 0
	for n < len(p) {
		if r.remain == 0 {
			ok, err := r.nextFrame(n == 0)
			if err != nil {
				r.err = err
				if n > 0 {
					return n, nil
				}
				return 0, err
			}
			if !ok {
				break
			}
			continue
		}
		want := int(min(int64(len(p)-n), r.remain))
		var k int
		var err error
		if b := r.buffered(); b > 0 {
			k = copy(p[n:n+want], r.buf[r.r:r.w])
			r.r += k
		} else if r.srcErr != nil {
			err = r.srcErr
		} else {
			// Large payloads bypass buf: one copy, straight into p.
			k, err = r.src.Read(p[n : n+want])
			if err != nil {
				err = readErr(err)
			}
		}
		r.keyPos = mask(r.key, r.keyPos, p[n:n+k])
		r.remain -= int64(k)
		n += k
		if err != nil {
			r.err = err
			if n > 0 {
				return n, nil
			}
			return 0, r.err
		}
	}
	return n, nil
}

// nextFrame consumes the next frame header, and the payload of a control
// frame. With wait false it consumes only a frame that is already fully
// buffered and reports false otherwise.
func (r *frameReader) nextFrame(wait bool) (bool, error) {
	if wait {
		if err := r.need(2); err != nil {
			return false, err
		}
		b := r.buf[r.r:r.w]
		// Reject what the first two bytes already condemn, rather than
		// wait for a header that may never complete.
		if _, _, err := parseHeader(b); err != nil {
			return false, err
		}
		size := headerSize(b[1])
		if b[0]&0x08 != 0 && b[1]&0x7f <= maxControlPayload {
			size += int(b[1] & 0x7f)
		}
		if err := r.need(size); err != nil {
			return false, err
		}
	}
	b := r.buf[r.r:r.w]
	h, hn, err := parseHeader(b)
	if err != nil {
		return false, err
	}
	if hn == 0 {
		return false, nil
	}
	if h.op >= opClose {
		end := hn + int(h.length)
		if len(b) < end {
			return false, nil
		}
		// The payload is unmasked in place, then dropped.
		payload := b[hn:end]
		mask(h.key, 0, payload)
		r.r += end
		if err := r.control(h.op, payload); err != nil {
			return false, err
		}
		return true, nil
	}
	switch {
	case h.op == opContinuation && !r.fragments:
		return false, protoErr("continuation frame without a message")
	case h.op != opContinuation && r.fragments:
		return false, protoErr("new message inside a fragmented one")
	case h.op != opContinuation:
		r.msgLen = 0
	}
	r.msgLen += h.length
	if r.msgLen > r.limit {
		return false, &protocolError{code: websocket.CloseMessageTooBig, msg: fmt.Sprintf("message larger than %d bytes", r.limit)}
	}
	r.fragments = !h.fin
	r.remain = h.length
	r.key = h.key
	r.keyPos = 0
	r.r += hn
	return true, nil
}

// readErr reports a connection that ended without a close frame the way
// gorilla does, as an abnormal closure.
func readErr(err error) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return &websocket.CloseError{Code: websocket.CloseAbnormalClosure, Text: io.ErrUnexpectedEOF.Error()}
	}
	return err
}

// parseClose decodes a close frame's payload (RFC 6455 §5.5.1, §7.4).
func parseClose(payload []byte) (code int, text string, err error) {
	switch {
	case len(payload) == 0:
		return websocket.CloseNoStatusReceived, "", nil
	case len(payload) == 1:
		return 0, "", protoErr("close frame with a one-byte payload")
	}
	code = int(binary.BigEndian.Uint16(payload))
	if !validCloseCode(code) {
		return 0, "", protoErr(fmt.Sprintf("invalid close code %d", code))
	}
	if !utf8.Valid(payload[2:]) {
		return 0, "", &protocolError{code: websocket.CloseInvalidFramePayloadData, msg: "close reason is not UTF-8"}
	}
	return code, string(payload[2:]), nil
}

// validCloseCode reports whether a peer may send code (RFC 6455 §7.4.1;
// 1004-1006 and 1015 are reserved for local use).
func validCloseCode(code int) bool {
	switch {
	case code >= 1000 && code <= 1003, code >= 1007 && code <= 1014:
		return true
	case code >= 3000 && code <= 4999:
		return true
	}
	return false
}
