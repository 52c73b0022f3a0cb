//go:build !unix

package relay

import "syscall"

// socketWaiter has no way to wait for a socket without reading on this
// platform: such sessions hold their copy buffer while idle.
func socketWaiter(syscall.Conn) readWaiter { return nil }
