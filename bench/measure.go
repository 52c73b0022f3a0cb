package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/sha1"
	"crypto/tls"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"time"

	"portico/service/relay/rdp"
)

// setup is one way of reaching the backends: raw TCP, or a wss relay
// (websockify or Portico) with its process for /proc readings.
type setup struct {
	name string
	// wss returns the WebSocket URL for a backend ("source", "sink",
	// "echo"); nil for raw TCP.
	wss func(backend string) string
	raw map[string]string // backend addresses, for raw TCP
	pid int               // the relay's process; 0 for raw TCP
	// rdcleanpath: the WebSocket starts with an RDCleanPath request and
	// its response, as the RDP web client's does.
	rdcleanpath bool
}

// sample is one round's result for one setup.
type sample struct {
	down, up        float64 // MB/s
	cpuDown, cpuUp  float64 // relay CPU-seconds per GB
	p50, p99        time.Duration
	hasCPU, hasRTTs bool
}

// conn is what a measurement needs of a connection: bytes in and out.
type conn interface {
	io.ReadWriter
	Close() error
}

func (s setup) dial(backend string) (conn, error) {
	if s.wss == nil {
		c, err := net.Dial("tcp", s.raw[backend])
		if err != nil {
			return nil, fmt.Errorf("dial %s: %w", backend, err)
		}
		return c, nil
	}
	c, err := dialWSS(s.wss(backend))
	if err != nil || !s.rdcleanpath {
		return c, err
	}
	if err := c.rdCleanPath(); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

// rdCleanPath sends the web client's first message (an RDCleanPath
// request with an X.224 connection request) and checks the answer.
func (c *wsConn) rdCleanPath() error {
	first, err := rdp.NewRequest(rdp.BuildConnectionRequest("", rdp.ProtocolSSL|rdp.ProtocolHybrid), "bench:3389", "token", "").Marshal()
	if err != nil {
		return fmt.Errorf("RDCleanPath request: %w", err)
	}
	if _, err := c.Write(first); err != nil {
		return fmt.Errorf("RDCleanPath request: %w", err)
	}
	resp, err := c.readMessage()
	if err != nil {
		return fmt.Errorf("RDCleanPath response: %w", err)
	}
	if p, err := rdp.ParsePDU(resp); err != nil || p.Error != nil {
		return fmt.Errorf("RDCleanPath response: %v %+v", err, p)
	}
	return nil
}

// readMessage reads one whole unfragmented data message (the
// RDCleanPath response) before the byte stream starts.
func (c *wsConn) readMessage() ([]byte, error) {
	if c.remain != 0 {
		return nil, fmt.Errorf("read message: inside a frame")
	}
	var p []byte
	buf := make([]byte, 4096)
	for first := true; first || c.remain > 0; first = false {
		n, err := c.Read(buf[:min(int64(len(buf)), max(c.remain, 1))])
		p = append(p, buf[:n]...)
		if err != nil {
			return nil, err
		}
	}
	return p, nil
}

// wsConn is the harness's WebSocket client: it reads the server's frames
// as one byte stream, as a browser client does, and sends each Write as
// one masked binary message. It is deliberately lean — payloads go from
// the TLS connection straight into the caller's buffer, with no message
// reader and no second copy — so that on a 2-core machine the client
// takes as little CPU as it can from the relay it measures. Every setup
// is measured with it.
type wsConn struct {
	tc     *tls.Conn
	br     *bufio.Reader // the handshake response, then frame headers
	remain int64         // payload bytes left in the current frame
	wbuf   []byte
	hdr    [14]byte
}

// dialWSS opens a wss:// connection with a minimal RFC 6455 handshake.
func dialWSS(rawURL string) (*wsConn, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("parse %s: %w", rawURL, err)
	}
	d := tls.Dialer{Config: &tls.Config{InsecureSkipVerify: true}} // the harness's own self-signed certificate
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	nc, err := d.DialContext(ctx, "tcp", u.Host)
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", rawURL, err)
	}
	tc := nc.(*tls.Conn)
	var key [16]byte
	rand.Read(key[:])
	k := base64.StdEncoding.EncodeToString(key[:])
	req := "GET " + u.RequestURI() + " HTTP/1.1\r\nHost: " + u.Host + "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Key: " + k + "\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: binary\r\nOrigin: https://127.0.0.1\r\n\r\n"
	tc.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(tc, req); err != nil {
		tc.Close()
		return nil, fmt.Errorf("handshake %s: %w", rawURL, err)
	}
	br := bufio.NewReaderSize(tc, 4096)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		tc.Close()
		return nil, fmt.Errorf("handshake %s: %w", rawURL, err)
	}
	resp.Body.Close()
	sum := sha1.Sum([]byte(k + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"))
	if resp.StatusCode != http.StatusSwitchingProtocols || resp.Header.Get("Sec-WebSocket-Accept") != base64.StdEncoding.EncodeToString(sum[:]) {
		tc.Close()
		return nil, fmt.Errorf("handshake %s: %s", rawURL, resp.Status)
	}
	tc.SetDeadline(time.Time{})
	return &wsConn{tc: tc, br: br}, nil
}

// Read returns payload bytes of binary or text frames; control frames
// other than close are skipped, a close frame is io.EOF.
func (c *wsConn) Read(p []byte) (int, error) {
	for c.remain == 0 {
		if _, err := io.ReadFull(c.br, c.hdr[:2]); err != nil {
			return 0, fmt.Errorf("read frame: %w", err)
		}
		n := int64(c.hdr[1] & 0x7f)
		switch n {
		case 126:
			if _, err := io.ReadFull(c.br, c.hdr[2:4]); err != nil {
				return 0, fmt.Errorf("read frame: %w", err)
			}
			n = int64(binary.BigEndian.Uint16(c.hdr[2:4]))
		case 127:
			if _, err := io.ReadFull(c.br, c.hdr[2:10]); err != nil {
				return 0, fmt.Errorf("read frame: %w", err)
			}
			n = int64(binary.BigEndian.Uint64(c.hdr[2:10]))
		}
		switch op := c.hdr[0] & 0x0f; {
		case op == 0x8:
			return 0, io.EOF
		case op >= 0x8: // ping, pong: nothing to answer in a measurement
			if _, err := c.br.Discard(int(n)); err != nil {
				return 0, fmt.Errorf("read frame: %w", err)
			}
		default:
			c.remain = n
		}
	}
	// bufio hands a read larger than its buffer straight to TLS once its
	// own buffered bytes are used up.
	k, err := c.br.Read(p[:min(int64(len(p)), c.remain)])
	c.remain -= int64(k)
	if err != nil {
		return k, fmt.Errorf("read frame: %w", err)
	}
	return k, nil
}

// Write sends p as one masked binary message.
func (c *wsConn) Write(p []byte) (int, error) {
	h := []byte{0x82, 0}
	switch {
	case len(p) < 126:
		h[1] = byte(len(p))
	case len(p) <= 0xffff:
		h[1] = 126
		h = binary.BigEndian.AppendUint16(h, uint16(len(p)))
	default:
		h[1] = 127
		h = binary.BigEndian.AppendUint64(h, uint64(len(p)))
	}
	h[1] |= 0x80
	key := [4]byte{0x12, 0x34, 0x56, 0x78}
	c.wbuf = append(append(append(c.wbuf[:0], h...), key[:]...), p...)
	// Eight bytes at a time, as browsers mask.
	body := c.wbuf[len(h)+4:]
	kw := uint64(binary.LittleEndian.Uint32(key[:])) * 0x1_0000_0001
	i := 0
	for ; i+8 <= len(body); i += 8 {
		binary.LittleEndian.PutUint64(body[i:], binary.LittleEndian.Uint64(body[i:])^kw)
	}
	for ; i < len(body); i++ {
		body[i] ^= key[i&3]
	}
	if _, err := c.tc.Write(c.wbuf); err != nil {
		return 0, fmt.Errorf("write message: %w", err)
	}
	return len(p), nil
}

func (c *wsConn) Close() error { return c.tc.Close() }

// mbps is bytes over d in MB/s (10^6).
func mbps(bytes int64, d time.Duration) float64 { return float64(bytes) / d.Seconds() / 1e6 }

// cpuPerGB is the relay's CPU-seconds per 10^9 bytes between two readings.
func cpuPerGB(before, after float64, bytes int64) float64 {
	return (after - before) / (float64(bytes) / 1e9)
}

// download reads n bytes from the source after a warm-up, timing them and
// the relay's CPU.
func download(s setup, n int64) (rate, cpu float64, err error) {
	c, err := s.dial("source")
	if err != nil {
		return 0, 0, err
	}
	defer c.Close()
	buf := make([]byte, chunk)
	if _, err := io.CopyN(io.Discard, c, 8<<20); err != nil { // past TLS's small first records
		return 0, 0, fmt.Errorf("warm up download: %w", err)
	}
	c0 := s.cpu()
	t0 := time.Now()
	for left := n; left > 0; {
		k, err := c.Read(buf[:min(int64(len(buf)), left)])
		if err != nil {
			return 0, 0, fmt.Errorf("download: %w", err)
		}
		left -= int64(k)
	}
	d := time.Since(t0)
	return mbps(n, d), cpuPerGB(c0, s.cpu(), n), nil
}

// upload sends n bytes in 64 KiB messages to the sink after a warm-up and
// waits for the sink's acknowledgements, timing them and the relay's CPU.
func upload(s setup, n int64) (rate, cpu float64, err error) {
	n = max(n/ackEvery, 1) * ackEvery
	c, err := s.dial("sink")
	if err != nil {
		return 0, 0, err
	}
	defer c.Close()
	msg := make([]byte, chunk)
	ack := make([]byte, 1)
	send := func(bytes int64) error {
		for left := bytes; left > 0; left -= chunk {
			if _, err := c.Write(msg); err != nil {
				return err
			}
		}
		for range bytes / ackEvery {
			if _, err := io.ReadFull(c, ack); err != nil {
				return fmt.Errorf("read ack: %w", err)
			}
		}
		return nil
	}
	if err := send(ackEvery); err != nil {
		return 0, 0, fmt.Errorf("warm up upload: %w", err)
	}
	c0 := s.cpu()
	t0 := time.Now()
	if err := send(n); err != nil {
		return 0, 0, fmt.Errorf("upload: %w", err)
	}
	d := time.Since(t0)
	return mbps(n, d), cpuPerGB(c0, s.cpu(), n), nil
}

// roundTrips sends 64-byte messages to the echo backend one at a time and
// returns the median and 99th percentile round trip.
func roundTrips(s setup, count int) (p50, p99 time.Duration, err error) {
	c, err := s.dial("echo")
	if err != nil {
		return 0, 0, err
	}
	defer c.Close()
	msg := make([]byte, 64)
	buf := make([]byte, 64)
	rtts := make([]time.Duration, 0, count)
	for i := range count + count/10 {
		t0 := time.Now()
		if _, err := c.Write(msg); err != nil {
			return 0, 0, fmt.Errorf("round trip: %w", err)
		}
		if _, err := io.ReadFull(c, buf); err != nil {
			return 0, 0, fmt.Errorf("round trip: %w", err)
		}
		if i >= count/10 { // the first tenth warms up
			rtts = append(rtts, time.Since(t0))
		}
	}
	slices.Sort(rtts)
	return rtts[len(rtts)/2], rtts[len(rtts)*99/100], nil
}

func (s setup) cpu() float64 {
	if s.pid == 0 {
		return 0
	}
	return cpuSeconds(s.pid)
}
