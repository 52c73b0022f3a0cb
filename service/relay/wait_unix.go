//go:build unix

package relay

import "syscall"

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
