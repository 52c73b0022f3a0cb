//go:build !unix

package relay

import (
	"io"
	"sync"
	"syscall"
)

// socketWaiter has no way to wait for a socket without reading on this
// platform: such sessions hold their copy buffer while idle.
func socketWaiter(syscall.Conn) readWaiter { return nil }

// socketReader is unix-only; elsewhere every socket keeps the waiter.
type socketReader struct{}

func newSocketReader(io.Reader, *sync.Pool, int) *socketReader { return nil }

func (*socketReader) next() (*[]byte, int, error) { return nil, 0, io.EOF }
