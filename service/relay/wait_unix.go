//go:build unix

package relay

import (
	"io"
	"net"
	"os"
	"sync"
	"syscall"
)

// socketWaiter waits for a socket's input through the runtime's poller
// without consuming it; nil if c has no usable descriptor.
func socketWaiter(c syscall.Conn) readWaiter {
	rc, err := c.SyscallConn()
	if err != nil {
		return nil
	}
	w := &rawWaiter{rc: rc}
	// Made once per session, so waiting allocates nothing.
	w.ready = func(fd uintptr) bool {
		_, _, err := syscall.Recvfrom(int(fd), w.one[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		return err != syscall.EAGAIN && err != syscall.EINTR
	}
	return w
}

// rawWaiter waits for a socket to become readable through the runtime's
// poller, peeking at one byte so nothing is consumed. It obeys deadlines
// and ends when the socket is closed, like a Read.
type rawWaiter struct {
	rc    syscall.RawConn
	one   [1]byte
	ready func(fd uintptr) bool
}

func (w *rawWaiter) waitReadable() {
	// An error (closed, deadline) is the following Read's to report.
	_ = w.rc.Read(w.ready)
}

// socketReader reads a plain socket (a *net.TCPConn or *net.UnixConn, whose
// Read is the system call and nothing more) in the runtime poller's
// callback, borrowing the copy buffer only once the kernel has data for
// it. Waiting first with a peek cost a system call per message more than
// a plain Read (peek, park, peek again, read); reading in the callback
// costs what a Read does (read, park, read) while an idle session still
// holds no buffer. Wrappers that do something in Read (counting, filters)
// are not plain sockets and keep the waiter.
type socketReader struct {
	rc   syscall.RawConn
	pool *sync.Pool // of *[]byte
	room int        // bytes kept free in front of the data
	// Set by read's callback: made once per session, so reading
	// allocates nothing.
	bp   *[]byte
	n    int
	err  error
	read func(fd uintptr) bool
}

// newSocketReader returns a socketReader for src, or nil when src is not
// a plain socket.
func newSocketReader(src io.Reader, pool *sync.Pool, room int) *socketReader {
	var sc syscall.Conn
	switch v := src.(type) {
	case *net.TCPConn:
		sc = v
	case *net.UnixConn:
		sc = v
	default:
		return nil
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return nil
	}
	s := &socketReader{rc: rc, pool: pool, room: room}
	s.read = func(fd uintptr) bool {
		bp := s.pool.Get().(*[]byte)
		for {
			n, err := syscall.Read(int(fd), (*bp)[s.room:])
			switch {
			case err == syscall.EINTR:
				continue
			case err == syscall.EAGAIN:
				// Nothing yet: the buffer goes back while the poller waits.
				s.pool.Put(bp)
				return false
			case err != nil:
				s.pool.Put(bp)
				s.n, s.err = 0, os.NewSyscallError("read", err)
			case n == 0:
				s.pool.Put(bp)
				s.n, s.err = 0, io.EOF
			default:
				s.bp, s.n, s.err = bp, n, nil
			}
			return true
		}
	}
	return s
}

// next waits for input and returns a buffer from the pool holding n bytes
// of it after room bytes, or (nil, 0, err). The caller puts the buffer
// back. A deadline or a closed socket ends the wait with its error.
func (s *socketReader) next() (*[]byte, int, error) {
	s.bp, s.n, s.err = nil, 0, nil
	if err := s.rc.Read(s.read); err != nil {
		return nil, 0, err
	}
	return s.bp, s.n, s.err
}
