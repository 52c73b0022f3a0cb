package gateway

import (
	"context"
	"crypto/tls"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"sync"

	"portico/service/admin"
	"portico/service/config"
	"portico/service/native"
	"portico/service/tunnel"
)

// alternateListener is the native-client listener on the alternate port.
// It follows the live settings: enabling the alternate port starts it,
// changing the port moves it, disabling stops it. Sessions already
// running through it are not cut when it moves or stops.
type alternateListener struct {
	host   string // the HTTPS listener's host: the alternate port binds beside it
	srv    *tunnel.Server
	log    *slog.Logger
	report func(addr string) // "" when stopped

	mu   sync.Mutex
	want string // address the settings ask for
	ln   net.Listener
}

// apply brings the listener in line with a snapshot.
func (a *alternateListener) apply(ctx context.Context, s *config.Snapshot) {
	want := ""
	if nlb := s.Effective.Portal.NLB; nlb.AlternatePortEnabled {
		want = net.JoinHostPort(a.host, strconv.Itoa(nlb.AlternatePort))
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if want == a.want {
		return
	}
	a.want = want
	if a.ln != nil {
		a.ln.Close()
		a.ln = nil
		a.report("")
		a.log.Info("alternate port listener stopped")
	}
	if want == "" {
		return
	}
	ln, err := net.Listen("tcp", want)
	if err != nil {
		// The port is validated against the gateway's own listeners, not
		// against other programs: say so clearly, and forget the address so
		// that the next settings change tries again even if it is the same.
		a.want = ""
		a.log.Error("alternate port: cannot listen; native clients cannot connect until the port is free or changed", "addr", want, "err", err)
		return
	}
	a.ln = ln
	a.report(ln.Addr().String())
	a.log.Info("alternate port listening for native clients", "addr", ln.Addr().String())
	go a.accept(ctx, ln)
}

func (a *alternateListener) accept(ctx context.Context, ln net.Listener) {
	for {
		c, err := ln.Accept()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			return
		}
		go a.srv.ServeConn(ctx, c)
	}
}

// start applies the current settings now (so Start returns with the
// listener bound) and then every published snapshot until ctx ends.
func (a *alternateListener) start(ctx context.Context, live *config.Live) {
	ch, unsubscribe := live.Subscribe()
	a.apply(ctx, live.Load())
	go func() {
		defer unsubscribe()
		for {
			select {
			case s := <-ch:
				a.apply(ctx, s)
			case <-ctx.Done():
				a.mu.Lock()
				if a.ln != nil {
					a.ln.Close()
					a.ln = nil
				}
				a.mu.Unlock()
				return
			}
		}
	}()
}

// tunnelServer builds the native-client server from the portal (when it
// admits native launches) and the gateway's certificate.
func (g *Gateway) tunnelServer() *tunnel.Server {
	cfg := g.certs.TLSConfig()
	cfg.NextProtos = []string{native.ALPN}
	opener, _ := g.portal.(tunnel.Opener)
	return &tunnel.Server{Opener: opener, TLSConfig: cfg, Logger: g.log}
}

// withTunnelALPN lets the main HTTPS server hand connections that
// negotiated native.ALPN to the tunnel, keeping HTTP/2 and HTTP/1.1 for
// browsers (a TLSNextProto map alone would turn HTTP/2 off).
func withTunnelALPN(ctx context.Context, srv *http.Server, t *tunnel.Server) {
	srv.TLSConfig.NextProtos = append(srv.TLSConfig.NextProtos, native.ALPN)
	var protos http.Protocols
	protos.SetHTTP1(true)
	protos.SetHTTP2(true)
	srv.Protocols = &protos
	srv.TLSNextProto = map[string]func(*http.Server, *tls.Conn, http.Handler){
		native.ALPN: func(_ *http.Server, c *tls.Conn, _ http.Handler) { t.ServeTLS(ctx, c) },
	}
}

// setListener records (or, with addr "", removes) a named listener for status.
func (g *Gateway) setListener(name, addr string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	out := g.listeners[:0]
	for _, l := range g.listeners {
		if l.Name != name {
			out = append(out, l)
		}
	}
	if addr != "" {
		out = append(out, admin.Listener{Name: name, Addr: addr})
	}
	g.listeners = out
}
