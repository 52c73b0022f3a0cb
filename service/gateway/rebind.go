package gateway

import (
	"context"
	"crypto/tls"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"sync"

	"portico/service/config"
)

// rebinder keeps one listener (HTTPS, HTTP redirect, admin API) on the
// address the live settings ask for: a changed address is bound first and
// served, and only then is the old listener closed, so a bad address
// (taken, not local) leaves the gateway reachable where it was. Connections
// already accepted keep running on the old address until they end. An
// address given on the command line wins over the settings and is never
// moved.
type rebinder struct {
	name string
	log  *slog.Logger
	// fixed is true when a command-line flag chose the address.
	fixed bool
	// want reads the address from a snapshot (the stored value or the
	// default).
	want func(*config.Snapshot) string
	// check refuses an address before it is bound (the admin API must stay
	// on loopback); nil accepts any.
	check func(addr string) error
	// serve starts serving on a newly bound listener and returns what to
	// close to stop accepting there (the listener itself, or the HTTPS
	// dispatcher around it).
	serve func(ln net.Listener) net.Listener
	// moved reports the new bound address.
	moved func(addr string)

	mu  sync.Mutex
	cur string       // the address asked for that ln is bound to
	ln  net.Listener // what serves now (closed when the address moves)
}

// follow applies every published snapshot until ctx ends.
func (r *rebinder) follow(ctx context.Context, live *config.Live) {
	if r.fixed {
		return
	}
	ch, unsubscribe := live.Subscribe()
	go func() {
		defer unsubscribe()
		for {
			select {
			case s := <-ch:
				r.apply(s)
			case <-ctx.Done():
				return
			}
		}
	}()
}

// apply moves the listener when the snapshot asks for another address.
func (r *rebinder) apply(s *config.Snapshot) {
	want := r.want(s)
	r.mu.Lock()
	defer r.mu.Unlock()
	if want == r.cur {
		return
	}
	if r.check != nil {
		if err := r.check(want); err != nil {
			r.log.Error("listen address not applied", "listener", r.name, "addr", want, "err", err)
			return
		}
	}
	ln, err := net.Listen("tcp", want)
	if err != nil {
		// The old listener keeps serving; the same address is tried again
		// on the next change (r.cur is unchanged).
		r.log.Error("listen address not applied: cannot bind, still serving on the old one", "listener", r.name, "addr", want, "old", r.ln.Addr().String(), "err", err)
		return
	}
	old := r.ln
	r.ln, r.cur = r.serve(ln), want
	old.Close()
	r.moved(ln.Addr().String())
	r.log.Info("listener moved", "listener", r.name, "addr", ln.Addr().String(), "old", old.Addr().String())
}

// httpsPort is the port the HTTPS listener is bound to now.
func (g *Gateway) httpsPort() int {
	_, port, _ := net.SplitHostPort(g.listener("https"))
	n, _ := strconv.Atoi(port)
	return n
}

// followListenAddrs moves the HTTPS, HTTP redirect and admin API listeners
// when their stored addresses change, unless a command-line flag fixed
// them. Each server keeps serving what it already accepted.
func (g *Gateway) followListenAddrs(ctx context.Context, httpsLn, httpLn, adminLn net.Listener, main, redirect, adminSrv *http.Server, adminCfg *tls.Config) {
	l := func(s *config.Snapshot) config.Listen { return s.Gateway.Listen }
	or := func(v, def string) string {
		if v == "" {
			return def
		}
		return v
	}
	start := g.live.Load()
	rebinders := []*rebinder{
		{
			name: "https", fixed: g.opt.HTTPSAddr != "", cur: or(l(start).HTTPS, config.DefaultHTTPSAddr), ln: g.disp,
			want: func(s *config.Snapshot) string { return or(l(s).HTTPS, config.DefaultHTTPSAddr) },
			serve: func(ln net.Listener) net.Listener {
				d := newDispatcher(ln, g.live, g.log)
				g.mu.Lock()
				g.disp, g.disps = d, append(g.disps, d)
				g.mu.Unlock()
				go d.serve()
				go serveLogged(g.log, "https", func() error { return main.ServeTLS(d, "", "") })
				return d
			},
		},
		{
			name: "http-redirect", fixed: g.opt.HTTPAddr != "", cur: or(l(start).HTTP, config.DefaultHTTPAddr), ln: httpLn,
			want: func(s *config.Snapshot) string { return or(l(s).HTTP, config.DefaultHTTPAddr) },
			serve: func(ln net.Listener) net.Listener {
				go serveLogged(g.log, "http", func() error { return redirect.Serve(ln) })
				return ln
			},
		},
		{
			name: "admin", fixed: g.opt.AdminAddr != "", cur: or(l(start).Admin, config.DefaultAdminAddr), ln: adminLn,
			want:  func(s *config.Snapshot) string { return or(l(s).Admin, config.DefaultAdminAddr) },
			check: config.ValidateLoopbackAddr,
			serve: func(ln net.Listener) net.Listener {
				go serveLogged(g.log, "admin", func() error { return adminSrv.Serve(tls.NewListener(ln, adminCfg)) })
				if err := g.writeEndpoint(ln.Addr().String()); err != nil {
					g.log.Warn("could not write admin endpoint file", "err", err)
				}
				return ln
			},
		},
	}
	for _, r := range rebinders {
		r.log = g.log
		r.moved = func(addr string) { g.setListener(r.name, addr) }
		r.follow(ctx, g.live)
	}
}
