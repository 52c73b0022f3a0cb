package integration

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
	"unicode/utf8"
)

// A lean client of the Guacamole protocol, for BenchmarkRDPSessions only:
// Apache Guacamole's guacd is the benchmark's peer, never part of Portico.
// It does what a browser running guacamole-common-js does on the wire —
// the handshake, a keep-alive nop every 5 seconds, and an answer to every
// sync — but decodes no image, so the benchmark measures guacd's cost and
// what it sends, not a browser canvas. It answers each sync as soon as it
// has read it (a browser answers once the frame is drawn), which is the
// best case for guacd's frame pacing.

// guacMaxElement bounds one element's length: guacd's image blobs are a
// few hundred KB of base64 at most; anything larger is a broken stream.
const guacMaxElement = 8 << 20

// guacKeepElement is the longest element a guacReader keeps; longer ones
// (image data) are counted and skipped.
const guacKeepElement = 256

// guacReader reads Guacamole instructions: elements "LENGTH.VALUE" joined
// by ',' and ended by ';', LENGTH counting Unicode code points.
type guacReader struct {
	br  *bufio.Reader
	buf []string
}

func newGuacReader(r io.Reader) *guacReader {
	return &guacReader{br: bufio.NewReaderSize(r, 64<<10)}
}

// errGuacSyntax is a malformed instruction.
var errGuacSyntax = errors.New("malformed Guacamole instruction")

// next returns the next instruction's elements, opcode first. Elements
// longer than guacKeepElement come back as "" (their bytes are read and
// dropped). The slice is reused by the next call.
func (g *guacReader) next() ([]string, error) {
	g.buf = g.buf[:0]
	for {
		n := 0
		digits := 0
		for {
			c, err := g.br.ReadByte()
			if err != nil {
				return nil, err
			}
			if c == '.' {
				break
			}
			if c < '0' || c > '9' || digits == 8 {
				return nil, fmt.Errorf("%w: length byte %q", errGuacSyntax, c)
			}
			n = n*10 + int(c-'0')
			digits++
		}
		if digits == 0 || n > guacMaxElement {
			return nil, fmt.Errorf("%w: element length %d", errGuacSyntax, n)
		}
		v, err := g.value(n)
		if err != nil {
			return nil, err
		}
		g.buf = append(g.buf, v)
		term, err := g.br.ReadByte()
		if err != nil {
			return nil, err
		}
		switch term {
		case ',':
		case ';':
			return g.buf, nil
		default:
			return nil, fmt.Errorf("%w: terminator %q", errGuacSyntax, term)
		}
	}
}

// value reads an element of n code points.
func (g *guacReader) value(n int) (string, error) {
	var keep []byte
	if n <= guacKeepElement {
		keep = make([]byte, 0, n)
	}
	// Fast path: n ASCII bytes already buffered.
	if p, err := g.br.Peek(min(n, g.br.Size())); err == nil && len(p) == n && isASCII(p) {
		keep = append(keep, p...)
		g.br.Discard(n)
		return string(keep), nil
	}
	for runes := 0; runes < n; {
		c, err := g.br.ReadByte()
		if err != nil {
			return "", err
		}
		if c < 0x80 || c >= 0xC0 { // ASCII or the first byte of a code point
			runes++
		}
		if keep != nil {
			keep = append(keep, c)
		}
	}
	// The continuation bytes of the last code point.
	for {
		p, err := g.br.Peek(1)
		if err != nil || p[0] < 0x80 || p[0] >= 0xC0 {
			break
		}
		g.br.Discard(1)
		if keep != nil {
			keep = append(keep, p[0])
		}
	}
	return string(keep), nil
}

func isASCII(p []byte) bool {
	for _, c := range p {
		if c >= 0x80 {
			return false
		}
	}
	return true
}

// guacEncode is one instruction on the wire.
func guacEncode(elems ...string) string {
	var b strings.Builder
	for i, e := range elems {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.Itoa(len([]rune(e))))
		b.WriteByte('.')
		b.WriteString(e)
	}
	b.WriteByte(';')
	return b.String()
}

// countingReader counts the bytes read through it.
type countingReader struct {
	r io.Reader
	n *atomic.Int64
}

func (c countingReader) Read(p []byte) (int, error) {
	k, err := c.r.Read(p)
	c.n.Add(int64(k))
	return k, err
}

// guacSession is one RDP session through guacd, counted.
type guacSession struct {
	conn          net.Conn
	frames, bytes atomic.Int64 // syncs answered, bytes received
	firstFrame    chan struct{}
	done          chan struct{} // closed when the session has ended; err says why
	err           error
}

// end records why the session ended, once.
func (s *guacSession) end(err error) {
	s.err = err
	close(s.done)
}

// guacRDP connects to guacd at addr and asks for an RDP session to the
// host with NLA; it returns once guacd says ready, the session then runs
// on its own goroutines until close.
func guacRDP(addr string, host rdpServer, user, password string, width, height int) (*guacSession, error) {
	c, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		return nil, fmt.Errorf("dial guacd: %w", err)
	}
	s := &guacSession{conn: c, firstFrame: make(chan struct{}), done: make(chan struct{})}
	r := newGuacReader(countingReader{c, &s.bytes})
	c.SetDeadline(time.Now().Add(30 * time.Second))
	fail := func(err error) (*guacSession, error) { c.Close(); return nil, err }
	if _, err := io.WriteString(c, guacEncode("select", "rdp")); err != nil {
		return fail(fmt.Errorf("guacd select: %w", err))
	}
	args, err := r.next()
	if err != nil {
		return fail(fmt.Errorf("guacd args: %w", err))
	}
	if args[0] != "args" {
		return fail(fmt.Errorf("guacd answered %q to select, not args", args[0]))
	}
	values := map[string]string{
		"hostname": "127.0.0.1", "port": strconv.Itoa(host.Port), "username": user, "password": password,
		"security": "nla", "ignore-cert": "true", "color-depth": "32", "disable-audio": "true",
		"resize-method": "", "width": strconv.Itoa(width), "height": strconv.Itoa(height),
	}
	connect := []string{"connect"}
	for _, name := range args[1:] {
		if strings.HasPrefix(name, "VERSION_") { // the protocol version: answer the same
			connect = append(connect, name)
			continue
		}
		connect = append(connect, values[name])
	}
	// What Chromium's guacamole-common-js announces before connect.
	hello := guacEncode("size", strconv.Itoa(width), strconv.Itoa(height), "96") + guacEncode("audio") + guacEncode("video") +
		guacEncode("image", "image/jpeg", "image/png", "image/webp") + guacEncode("timezone", "UTC") + guacEncode(connect...)
	if _, err := io.WriteString(c, hello); err != nil {
		return fail(fmt.Errorf("guacd connect: %w", err))
	}
	ready, err := r.next()
	if err != nil {
		return fail(fmt.Errorf("guacd ready: %w", err))
	}
	if ready[0] != "ready" {
		return fail(fmt.Errorf("guacd answered %v to connect, not ready", ready))
	}
	c.SetDeadline(time.Time{})
	var wmu chan struct{} = make(chan struct{}, 1) // one writer at a time
	write := func(s string) error {
		wmu <- struct{}{}
		defer func() { <-wmu }()
		c.SetWriteDeadline(time.Now().Add(30 * time.Second))
		_, err := io.WriteString(c, s)
		return err
	}
	stopPing := make(chan struct{})
	go func() {
		t := time.NewTicker(5 * time.Second)
		defer t.Stop()
		for {
			select {
			case <-stopPing:
				return
			case <-t.C:
				if write(guacEncode("nop")) != nil {
					return
				}
			}
		}
	}()
	go func() {
		defer close(stopPing)
		first := true
		for {
			ins, err := r.next()
			if err != nil {
				s.end(err)
				return
			}
			switch ins[0] {
			case "sync":
				if len(ins) < 2 {
					s.end(fmt.Errorf("%w: sync without a timestamp", errGuacSyntax))
					return
				}
				if err := write(guacEncode("sync", ins[1])); err != nil {
					s.end(fmt.Errorf("answer sync: %w", err))
					return
				}
				s.frames.Add(1)
				if first {
					close(s.firstFrame)
					first = false
				}
			case "error":
				s.end(fmt.Errorf("guacd error: %v", ins[1:]))
				return
			case "disconnect":
				s.end(errors.New("guacd sent disconnect"))
				return
			}
		}
	}()
	return s, nil
}

func (s *guacSession) close() {
	io.WriteString(s.conn, guacEncode("disconnect"))
	s.conn.Close()
	<-s.done
}

// FuzzGuacInstruction feeds guacReader arbitrary bytes: it must return
// errors, never panic, and what it parses must encode back to the same
// elements.
func FuzzGuacInstruction(f *testing.F) {
	for _, s := range []string{
		"4.args,13.VERSION_1_5_0,8.hostname,4.port;",
		"5.ready,37.$260d01da-779b-4ee9-afc1-c16bae885cc7;",
		"4.sync,10.1701600000;",
		"4.blob,1.1,8.iVBORw0K;3.end,1.1;",
		"5.error,6.héllo,3.519;",
		"3.nop;",
		"2.a,;", "99999999.x;", "1.é;", "0.;",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		r := newGuacReader(bytes.NewReader(data))
		for range 100 {
			ins, err := r.next()
			if err != nil {
				return
			}
			// The protocol is UTF-8: only valid text has one encoding.
			if slices.ContainsFunc(ins, func(e string) bool { return !utf8.ValidString(e) }) {
				continue
			}
			again, err := newGuacReader(strings.NewReader(guacEncode(ins...))).next()
			if err != nil {
				t.Fatalf("re-encoded %q: %v", ins, err)
			}
			if !slices.Equal(again, ins) {
				t.Fatalf("parsed %q, re-encoded and parsed %q", ins, again)
			}
		}
	})
}
