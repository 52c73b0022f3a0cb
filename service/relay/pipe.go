package relay

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
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

// copyBuffers lends Pipe its 64 KiB copy buffers. A pool, unlike other
// package state, is a cache with no observable value.
var copyBuffers = sync.Pool{New: func() any {
	b := make([]byte, BufferSize)
	return &b
}}

// Pipe copies browser→backend and backend→browser until either direction
// ends (EOF or error) or ctx is done. Then it closes both sides, waits for
// both copies to stop, and returns. Bytes delivered are added to c (which
// may be nil).
//
// The result is the first thing that ended the session: nil for a clean
// end (EOF, a normal WebSocket close, or a side closed by the caller), the
// context's cause when ctx ended it, or the error of the direction that
// failed, naming it.
func Pipe(ctx context.Context, browser, backend io.ReadWriteCloser, c *Counters) error {
	if c == nil {
		c = new(Counters)
	}
	if c.Started.IsZero() {
		c.Started = time.Now()
	}
	done := make(chan error, 2)
	go func() { done <- copyDirection("browser→backend", backend, browser, &c.Up) }()
	go func() { done <- copyDirection("backend→browser", browser, backend, &c.Down) }()

	var first error
	pending := 2
	select {
	case first = <-done:
		pending--
	case <-ctx.Done():
		first = context.Cause(ctx)
	}
	// Closing both sides is what unblocks the other direction's Read or
	// Write; their errors are consequences, not news.
	_ = browser.Close()
	_ = backend.Close()
	for ; pending > 0; pending-- {
		<-done
	}
	if errors.Is(first, net.ErrClosed) {
		return nil
	}
	return first
}

// copyDirection copies src to dst with a pooled buffer, counting delivered
// bytes in n. A clean end of src is nil.
func copyDirection(name string, dst io.Writer, src io.Reader, n *atomic.Int64) error {
	bp := copyBuffers.Get().(*[]byte)
	defer copyBuffers.Put(bp)
	buf := *bp
	for {
		r, rerr := src.Read(buf)
		if r > 0 {
			w, werr := dst.Write(buf[:r])
			n.Add(int64(w))
			if werr == nil && w < r {
				werr = io.ErrShortWrite
			}
			if werr != nil {
				return fmt.Errorf("relay %s: write: %w", name, werr)
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
