package main

import (
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"time"

	"github.com/gorilla/websocket"
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

var dialer = websocket.Dialer{
	TLSClientConfig:  &tls.Config{InsecureSkipVerify: true}, // the harness's own self-signed certificate
	ReadBufferSize:   chunk,
	WriteBufferSize:  chunk,
	Subprotocols:     []string{"binary"},
	HandshakeTimeout: 10 * time.Second,
}

func (s setup) dial(backend string) (conn, error) {
	if s.wss == nil {
		c, err := net.Dial("tcp", s.raw[backend])
		if err != nil {
			return nil, fmt.Errorf("dial %s: %w", backend, err)
		}
		return c, nil
	}
	u := s.wss(backend)
	ws, _, err := dialer.Dial(u, http.Header{"Origin": {"https://127.0.0.1"}})
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", u, err)
	}
	return &wsConn{ws: ws}, nil
}

// wsConn reads a WebSocket's messages as one byte stream, as a browser
// client does, and sends each Write as one binary message.
type wsConn struct {
	ws  *websocket.Conn
	cur io.Reader
}

func (c *wsConn) Read(p []byte) (int, error) {
	for {
		if c.cur == nil {
			_, r, err := c.ws.NextReader()
			if err != nil {
				return 0, fmt.Errorf("read message: %w", err)
			}
			c.cur = r
		}
		n, err := c.cur.Read(p)
		if err == io.EOF {
			c.cur = nil
			if n == 0 {
				continue
			}
			err = nil
		}
		return n, err
	}
}

func (c *wsConn) Write(p []byte) (int, error) {
	if err := c.ws.WriteMessage(websocket.BinaryMessage, p); err != nil {
		return 0, fmt.Errorf("write message: %w", err)
	}
	return len(p), nil
}

func (c *wsConn) Close() error { return c.ws.Close() }

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
