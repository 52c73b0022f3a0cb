//go:build !unix

package relay

import "net"

// socketWaiter has no way to wait for a socket without reading on this
// platform: such sessions hold their copy buffer while idle.
func socketWaiter(*net.TCPConn) readWaiter { return nil }
