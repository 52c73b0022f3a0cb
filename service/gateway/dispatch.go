package gateway

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"sync"
	"time"

	"portico/service/config"
	"portico/service/relay"
)

// dispatcher owns the HTTPS port's TCP listener. In Normal mode it hands
// each connection to the HTTPS server; in Forwarding mode it forwards the
// raw TLS stream to the upstream gateway. The mode is read from the live
// snapshot per connection, so switching modes needs no restart.
type dispatcher struct {
	ln    net.Listener
	live  *config.Live
	log   *slog.Logger
	conns chan net.Conn
	done  chan struct{}
	once  sync.Once

	mu        sync.Mutex
	forwarded map[net.Conn]struct{}
	wg        sync.WaitGroup
}

func newDispatcher(ln net.Listener, live *config.Live, log *slog.Logger) *dispatcher {
	return &dispatcher{ln: ln, live: live, log: log, conns: make(chan net.Conn), done: make(chan struct{}), forwarded: map[net.Conn]struct{}{}}
}

// serve accepts until the listener closes.
func (d *dispatcher) serve() {
	for {
		c, err := d.ln.Accept()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				time.Sleep(10 * time.Millisecond)
				continue
			}
			d.Close()
			return
		}
		snap := d.live.Load()
		if snap.Gateway.Mode == config.ModeForwarding {
			d.wg.Add(1)
			go d.forward(c, snap.Gateway.Upstream)
			continue
		}
		select {
		// The HTTPS server's TLS runs over a BatchConn, so relayed
		// messages leave in one system call each.
		case d.conns <- relay.NewBatchConn(c):
		case <-d.done:
			c.Close()
			return
		}
	}
}

// forward copies bytes both ways between the client and the upstream
// gateway without terminating TLS: the upstream presents its own
// certificate and sees the client's handshake.
func (d *dispatcher) forward(c net.Conn, upstream string) {
	defer d.wg.Done()
	d.track(c, true)
	defer d.track(c, false)
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	up, err := (&net.Dialer{}).DialContext(ctx, "tcp", upstream)
	cancel()
	if err != nil {
		d.log.Warn("forwarding: upstream unreachable", "upstream", upstream, "client", c.RemoteAddr().String(), "err", err)
		return
	}
	d.track(up, true)
	defer d.track(up, false)
	defer up.Close()
	errc := make(chan error, 2)
	cp := func(dst, src net.Conn) {
		_, err := io.Copy(dst, src)
		if tc, ok := dst.(*net.TCPConn); ok {
			tc.CloseWrite()
		}
		errc <- err
	}
	go cp(up, c)
	go cp(c, up)
	<-errc
	<-errc
}

func (d *dispatcher) track(c net.Conn, add bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if add {
		d.forwarded[c] = struct{}{}
	} else {
		delete(d.forwarded, c)
	}
}

// closeForwarded ends forwarded connections and waits for their goroutines.
func (d *dispatcher) closeForwarded() {
	d.mu.Lock()
	for c := range d.forwarded {
		c.Close()
	}
	d.mu.Unlock()
	d.wg.Wait()
}

// Accept implements net.Listener for the HTTPS server.
func (d *dispatcher) Accept() (net.Conn, error) {
	select {
	case c := <-d.conns:
		return c, nil
	case <-d.done:
		return nil, net.ErrClosed
	}
}

// Close implements net.Listener.
func (d *dispatcher) Close() error {
	var err error
	d.once.Do(func() {
		close(d.done)
		err = d.ln.Close()
	})
	return err
}

// Addr implements net.Listener.
func (d *dispatcher) Addr() net.Addr { return d.ln.Addr() }
