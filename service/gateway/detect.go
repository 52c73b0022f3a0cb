package gateway

import (
	"context"
	"sync"
	"time"

	"portico/service/config"
	"portico/service/detect"
)

// detectDNS keeps the detection DNS responder on the address the settings
// (or the --dns-addr flag) ask for: a settings change moves or stops it
// without a restart. A port it cannot bind (53 without the capability, or
// taken by another program) is logged and leaves detection to the HTTP
// probe; it does not stop the gateway.
type detectDNS struct {
	g    *Gateway
	resp *detect.Responder

	mu   sync.Mutex
	want string // address the settings ask for; "" = off
}

// apply brings the responder in line with a snapshot.
func (d *detectDNS) apply(s *config.Snapshot) {
	want := d.g.opt.DNSAddr
	if want == "" {
		want = s.Gateway.DNSAddr()
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if want == d.want {
		return
	}
	d.want = want
	if d.resp.Addr() != "" {
		d.stop()
	}
	if want == "" {
		d.g.log.Info("detection DNS responder off (detect.dnsListen is off): native clients are detected by the HTTP probe only")
		return
	}
	if err := d.resp.Start(want); err != nil {
		d.g.log.Error("detection DNS responder cannot listen; native clients are detected by the HTTP probe only until the address is free or changed (port 53 needs CAP_NET_BIND_SERVICE)", "addr", want, "err", err)
		return
	}
	d.g.setListener("dns", d.resp.Addr())
	d.g.log.Info("detection DNS responder listening", "addr", d.resp.Addr(), "zone", s.Gateway.DetectZone())
}

func (d *detectDNS) stop() {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	d.resp.Stop(ctx)
	d.g.setListener("dns", "")
}

// start applies the current settings now (so Start returns with the
// responder bound) and then every published snapshot, until the returned
// function is called; that stops the responder before returning.
func (d *detectDNS) start() (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	ch, unsubscribe := d.g.live.Subscribe()
	d.apply(d.g.live.Load())
	go func() {
		defer close(done)
		defer unsubscribe()
		for {
			select {
			case s := <-ch:
				d.apply(s)
			case <-ctx.Done():
				d.mu.Lock()
				d.stop()
				d.mu.Unlock()
				return
			}
		}
	}()
	return func() { cancel(); <-done }
}

// listener returns the bound address of a named listener, "" when none.
func (g *Gateway) listener(name string) string {
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, l := range g.listeners {
		if l.Name == name {
			return l.Addr
		}
	}
	return ""
}
