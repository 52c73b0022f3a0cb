package relay

import (
	"bufio"
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

// frameReader turns the frames a browser sends into one byte stream: the
// payloads of text and binary messages, unmasked, with message boundaries
// dropped. It never allocates for data frames. Control frames are passed
// to control; an error from control ends the stream with that error.
//
// A frameReader is used by one goroutine at a time, and its errors are
// permanent.
type frameReader struct {
	br      *bufio.Reader
	limit   int64 // largest message accepted, summed over its fragments
	control func(op byte, payload []byte) error

	remain    int64 // payload bytes left in the current data frame
	key       [4]byte
	keyPos    int
	fragments bool  // a data message is open (its last frame had no FIN)
	msgLen    int64 // payload bytes of the open message so far
	err       error
}

// Read fills p with payload bytes. It waits only until at least one byte
// is available; after that it takes whatever further frames are already
// buffered, so a burst of small browser messages becomes one read.
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
		want := len(p) - n
		if int64(want) > r.remain {
			want = int(r.remain)
		}
		if n > 0 {
			// Never block once there is something to return.
			if b := r.br.Buffered(); b < want {
				want = b
			}
			if want == 0 {
				break
			}
		}
		k, err := r.br.Read(p[n : n+want])
		r.keyPos = mask(r.key, r.keyPos, p[n:n+k])
		r.remain -= int64(k)
		n += k
		if err != nil {
			r.err = readErr(err)
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
	var b []byte
	if wait {
		var err error
		if b, err = r.br.Peek(2); err != nil {
			return false, readErr(err)
		}
		// Reject what the first two bytes already condemn, rather than
		// wait for a header that may never complete.
		if _, _, err := parseHeader(b); err != nil {
			return false, err
		}
		size := headerSize(b[1])
		if b[0]&0x08 != 0 && b[1]&0x7f <= maxControlPayload {
			size += int(b[1] & 0x7f)
		}
		if b, err = r.br.Peek(size); err != nil {
			return false, readErr(err)
		}
	} else {
		b, _ = r.br.Peek(r.br.Buffered())
	}
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
		// The payload is unmasked in bufio's own buffer, then dropped.
		payload := b[hn:end]
		mask(h.key, 0, payload)
		cerr := r.control(h.op, payload)
		if _, err := r.br.Discard(end); err != nil {
			return false, readErr(err)
		}
		if cerr != nil {
			return false, cerr
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
	if _, err := r.br.Discard(hn); err != nil {
		return false, readErr(err)
	}
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
