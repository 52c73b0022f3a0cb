// Package testserver starts loopback TCP servers for tests: a listener on
// 127.0.0.1 whose connections each get a handler, closed when the test
// ends. It is for _test.go files only and holds no protocol knowledge.
package testserver

import (
	"net"
	"testing"
)

// Serve listens on a free 127.0.0.1 port, runs answer on each connection
// in its own goroutine (closing the connection after it returns), and
// returns the address. The listener closes when tb ends.
func Serve(tb testing.TB, answer func(net.Conn)) string {
	tb.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("listen: %v", err)
	}
	tb.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				answer(c)
			}()
		}
	}()
	return l.Addr().String()
}
