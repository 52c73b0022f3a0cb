//go:build unix

package relay

import (
	"net"
	"syscall"
)

// socketWaiter waits for a TCP socket's input through the runtime's
// poller without consuming it.
func socketWaiter(c *net.TCPConn) readWaiter {
	if rc, err := c.SyscallConn(); err == nil {
		return rawWaiter{rc}
	}
	return nil
}

// rawWaiter waits for a socket to become readable through the runtime's
// poller, peeking at one byte so nothing is consumed.
type rawWaiter struct{ rc syscall.RawConn }

func (w rawWaiter) waitReadable() error {
	var one [1]byte
	return w.rc.Read(func(fd uintptr) bool {
		_, _, err := syscall.Recvfrom(int(fd), one[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		return err != syscall.EAGAIN
	})
}
