package relay

import (
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"sync"
)

// batchSize is what a BatchConn gathers before it must write: a BufferSize
// message with its frame header, cut into 16 KiB TLS records of 22 bytes'
// overhead each, with room to spare for a control frame written meanwhile.
const batchSize = BufferSize + BufferSize/8

// batchBuffers lends BatchConns their gathering buffers, so a connection
// holds one only while it writes a message.
var batchBuffers = sync.Pool{New: func() any {
	b := make([]byte, 0, batchSize)
	return &b
}}

// BatchConn is a connection under the gateway's TLS that can gather the
// records of one message into one system call. crypto/tls writes every
// record (at most 16 KiB) to its connection as it is sealed, so a 64 KiB
// WebSocket message costs five writes, and on the download path those
// writes were most of the relay's CPU time. Between Hold and Release the
// writes are collected and then sent in one; at other times a BatchConn
// writes straight through.
//
// Wrap the accepted TCP connection, before tls.Server, with NewBatchConn.
// Stream and Pipe find it under a *tls.Conn and hold it around each
// message. Writes from other goroutines (pings, a close frame) while a
// message is held join the batch, in order.
type BatchConn struct {
	net.Conn

	mu    sync.Mutex
	holds int
	buf   *[]byte // lent from batchBuffers while holds > 0
	err   error   // a failed gathered write: the connection is broken
}

// NewBatchConn wraps c.
func NewBatchConn(c net.Conn) *BatchConn { return &BatchConn{Conn: c} }

// Hold starts gathering writes until the matching Release. Hold and
// Release on a nil BatchConn do nothing, so callers need not ask whether
// their connection has one.
func (c *BatchConn) Hold() {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.holds == 0 {
		c.buf = batchBuffers.Get().(*[]byte)
	}
	c.holds++
}

// Release ends a Hold; the last one writes what was gathered, in one
// write, and returns its error.
func (c *BatchConn) Release() error {
	if c == nil {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.holds--
	if c.holds > 0 {
		return nil
	}
	err := c.flushLocked()
	*c.buf = (*c.buf)[:0]
	batchBuffers.Put(c.buf)
	c.buf = nil
	return err
}

// Write writes p, or gathers it while a Hold is in force. A gathered
// write reports success; a failure to send it is reported by Release and
// by every write after it.
func (c *BatchConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err != nil {
		return 0, c.err
	}
	if c.buf == nil {
		return c.Conn.Write(p)
	}
	b := *c.buf
	if len(b)+len(p) > cap(b) {
		if err := c.flushLocked(); err != nil {
			return 0, err
		}
		b = *c.buf
		if len(p) > cap(b) {
			return c.Conn.Write(p)
		}
	}
	*c.buf = append(b, p...)
	return len(p), nil
}

// flushLocked writes the gathered bytes; c.mu is held.
func (c *BatchConn) flushLocked() error {
	if c.err != nil {
		return c.err
	}
	b := *c.buf
	if len(b) == 0 {
		return nil
	}
	n, err := c.Conn.Write(b)
	if err == nil && n < len(b) {
		err = io.ErrShortWrite
	}
	*c.buf = b[:0]
	if err != nil {
		c.err = fmt.Errorf("write gathered records: %w", err)
	}
	return c.err
}

// batchOf returns the BatchConn under w, a *tls.Conn, or nil.
func batchOf(w io.Writer) *BatchConn {
	if tc, ok := w.(*tls.Conn); ok {
		if bc, ok := tc.NetConn().(*BatchConn); ok {
			return bc
		}
	}
	return nil
}

// BatchListener wraps every connection l accepts in a BatchConn; serve
// TLS on it (http.Server.ServeTLS, tls.NewListener) so relayed messages
// go out in one write each.
func BatchListener(l net.Listener) net.Listener { return batchListener{l} }

type batchListener struct{ net.Listener }

func (l batchListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return NewBatchConn(c), nil
}
