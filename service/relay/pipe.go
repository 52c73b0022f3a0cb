package relay

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Counters are the byte counts of one relayed session, safe to read while
// the session runs.
type Counters struct {
	// Up counts bytes delivered from the browser to the backend.
	Up atomic.Int64
	// Down counts bytes delivered from the backend to the browser.
	Down atomic.Int64
	// Started is when the session began. Pipe sets it when it is zero,
	// before copying; set it yourself if other goroutines read c before
	// Pipe is called.
	Started time.Time
}

// smallBufferSize is the copy buffer for a source that cannot be waited on
// while its reads are small: one TLS record's plaintext, the most a
// *tls.Conn returns per Read anyway.
const smallBufferSize = 16 << 10

// copyBuffers and smallBuffers lend Pipe its copy buffers. Pools, unlike
// other package state, are caches with no observable value.
var (
	copyBuffers  = sync.Pool{New: func() any { b := make([]byte, BufferSize); return &b }}
	smallBuffers = sync.Pool{New: func() any { b := make([]byte, smallBufferSize); return &b }}
)

// Pipe copies browser→backend and backend→browser until either direction
// ends (EOF or error) or ctx is done. Then it closes both sides, waits for
// both copies to stop, and returns. Bytes delivered are added to c (which
// may be nil).
//
// The result is the first thing that ended the session: nil for a clean
// end (EOF, a normal WebSocket close, or a side closed by the caller), the
// context's cause when ctx ended it, or the error of the direction that
// failed, naming it.
//
// Pipe copies backend→browser in the calling goroutine and starts one
// more for the other direction; ctx is watched with context.AfterFunc,
// which costs no goroutine until ctx ends. With the caller's own, a
// session thus runs on two goroutines (the 10,000-idle-sessions target).
func Pipe(ctx context.Context, browser, backend io.ReadWriteCloser, c *Counters) error {
	if c == nil {
		c = new(Counters)
	}
	if c.Started.IsZero() {
		c.Started = time.Now()
	}
	var (
		mu    sync.Mutex
		first error
		ended bool
	)
	// end records why the session ended, if it is the first to, and
	// closes both sides: that unblocks the other direction's Read or
	// Write, whose error is then a consequence, not news.
	end := func(err error) {
		mu.Lock()
		if !ended {
			ended, first = true, err
		}
		mu.Unlock()
		_ = browser.Close()
		_ = backend.Close()
	}
	stop := context.AfterFunc(ctx, func() { end(context.Cause(ctx)) })
	defer stop()
	upDone := make(chan struct{})
	go func() {
		defer close(upDone)
		end(copyDirection("browser→backend", backend, browser, &c.Up))
	}()
	end(copyDirection("backend→browser", browser, backend, &c.Down))
	<-upDone
	mu.Lock()
	defer mu.Unlock()
	if errors.Is(first, net.ErrClosed) {
		return nil
	}
	return first
}

// readWaiter is a source that can wait for input without a buffer of the
// caller's, so an idle session holds no copy buffer.
type readWaiter interface {
	// waitReadable blocks until a Read would not block (or would fail);
	// the Read reports any error.
	waitReadable()
}

// copyDirection copies src to dst with a pooled buffer, counting delivered
// bytes in n. A clean end of src is nil.
//
// A plain socket (*net.TCPConn, *net.UnixConn) is read in the poller's
// callback (socketReader): the buffer is borrowed only when the kernel has
// data, at the cost of a plain Read. Another source that can wait for
// input (Stream, a wrapped socket) is waited on before
// the buffer is borrowed, and the buffer goes back to the pool after each
// write: an idle session holds none. While a transfer is in full flow (the
// last read filled the buffer, so more is waiting) the wait, a system call
// on a socket, is skipped. Other sources (a TLS connection to an RDP host)
// block in Read with a buffer, sized by their last read.
//
// To a Stream each read is framed in place (writeFramed); to TLS over a
// BatchConn each write's records leave in one system call.
func copyDirection(name string, dst io.Writer, src io.Reader, n *atomic.Int64) error {
	w := waiterFor(src)
	batch := batchOf(dst)
	stream, _ := dst.(*Stream)
	room := 0
	if stream != nil {
		room = frameRoom
	}
	// deliver writes buf[room:room+r] to dst, framed in place for a
	// Stream, in one system call for TLS over a BatchConn.
	deliver := func(buf []byte, r int) error {
		var wn int
		var werr error
		if stream != nil {
			wn, werr = stream.writeFramed(buf[:room+r])
		} else {
			batch.Hold()
			wn, werr = dst.Write(buf[:r])
			if err := batch.Release(); werr == nil {
				werr = err
			}
		}
		n.Add(int64(wn))
		if werr == nil && wn < r {
			werr = io.ErrShortWrite
		}
		if werr != nil {
			return fmt.Errorf("relay %s: write: %w", name, werr)
		}
		return nil
	}
	if sr := newSocketReader(src, &copyBuffers, room); sr != nil {
		for {
			bp, r, rerr := sr.next()
			if bp != nil {
				err := deliver(*bp, r)
				copyBuffers.Put(bp)
				if err != nil {
					return err
				}
			}
			if rerr == io.EOF {
				return nil
			}
			if rerr != nil {
				return fmt.Errorf("relay %s: read: %w", name, rerr)
			}
		}
	}
	full := false
	pool := &copyBuffers
	for {
		if w != nil && !full {
			w.waitReadable()
		}
		bp := pool.Get().(*[]byte)
		buf := *bp
		r, rerr := src.Read(buf[room:])
		full = r == len(buf)-room
		if r > 0 {
			if err := deliver(buf, r); err != nil {
				pool.Put(bp)
				return err
			}
		}
		pool.Put(bp)
		if w == nil {
			// The buffer is held while Read blocks: a small one after a
			// small read (an idle session), a large one after a full read.
			switch {
			case full:
				pool = &copyBuffers
			case r < smallBufferSize:
				pool = &smallBuffers
			}
		}
		if rerr == io.EOF {
			return nil
		}
		if rerr != nil {
			return fmt.Errorf("relay %s: read: %w", name, rerr)
		}
	}
}

// Waiter returns a function that blocks until src has input, holding no
// buffer of the caller's meanwhile, or nil when src offers no such wait (a
// *tls.Conn, or a wrapper that hides its socket). Relays that frame
// messages themselves, as VNC's does, use it to borrow their buffers only
// while a burst is in flight, as Pipe does.
func Waiter(src io.Reader) func() {
	if w := waiterFor(src); w != nil {
		return w.waitReadable
	}
	return nil
}

// waiterFor returns how to wait for src's input without a buffer, or nil
// when src offers no way: then the buffer is held while Read blocks (a
// *tls.Conn, or a wrapper that hides its socket).
func waiterFor(src io.Reader) readWaiter {
	switch v := src.(type) {
	case readWaiter:
		return v
	case syscall.Conn:
		return socketWaiter(v)
	}
	return nil
}
