package detect

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/miekg/dns"
)

// answerTTL is the TTL of positive and negative answers. Zero: a nonce is
// single-use, so no resolver should keep an answer about it.
const answerTTL = 0

// probeTXT is the TXT answer for a detected nonce.
const probeTXT = "portico-detect ok"

// Answer builds the reply to one DNS query for zone (lower case, no
// trailing dot). It is the whole policy of the responder, kept free of
// sockets so it can be tested and fuzzed directly:
//
//   - only standard queries with one question of class IN are answered;
//   - names outside zone are REFUSED (never an open resolver, no
//     recursion offered);
//   - <nonce>.<zone> for an outstanding nonce reports the DNS probe and is
//     answered authoritatively (A 127.0.0.1, AAAA ::1, TXT; other types
//     get an empty answer);
//   - any other name in the zone is NXDOMAIN, the apex answers its SOA.
func Answer(req *dns.Msg, zone string, nonces *Nonces) *dns.Msg {
	resp := new(dns.Msg)
	resp.SetReply(req)
	resp.RecursionAvailable = false
	resp.Compress = true
	if req.Opcode != dns.OpcodeQuery {
		resp.SetRcode(req, dns.RcodeNotImplemented)
		return resp
	}
	if req.Response || len(req.Question) != 1 {
		resp.SetRcode(req, dns.RcodeFormatError)
		return resp
	}
	q := req.Question[0]
	name := strings.ToLower(dns.Fqdn(q.Name))
	apex := dns.Fqdn(zone)
	if q.Qclass != dns.ClassINET || !dns.IsSubDomain(apex, name) {
		resp.SetRcode(req, dns.RcodeRefused)
		return resp
	}
	resp.Authoritative = true
	soa := &dns.SOA{
		Hdr: dns.RR_Header{Name: apex, Rrtype: dns.TypeSOA, Class: dns.ClassINET, Ttl: answerTTL},
		Ns:  "ns." + apex, Mbox: "hostmaster." + apex, Serial: 1,
		Refresh: 3600, Retry: 600, Expire: 86400, Minttl: answerTTL,
	}
	if name == apex {
		if q.Qtype == dns.TypeSOA {
			resp.Answer = append(resp.Answer, soa)
		} else {
			resp.Ns = append(resp.Ns, soa)
		}
		return resp
	}
	label, parent, _ := strings.Cut(name, ".")
	if parent != apex || !ValidNonce(label) || !nonces.Report(label, ViaDNS) {
		resp.SetRcode(req, dns.RcodeNameError)
		resp.Ns = append(resp.Ns, soa)
		return resp
	}
	hdr := dns.RR_Header{Name: q.Name, Class: dns.ClassINET, Ttl: answerTTL}
	switch q.Qtype {
	case dns.TypeA:
		hdr.Rrtype = dns.TypeA
		resp.Answer = append(resp.Answer, &dns.A{Hdr: hdr, A: net.IPv4(127, 0, 0, 1)})
	case dns.TypeAAAA:
		hdr.Rrtype = dns.TypeAAAA
		resp.Answer = append(resp.Answer, &dns.AAAA{Hdr: hdr, AAAA: net.IPv6loopback})
	case dns.TypeTXT:
		hdr.Rrtype = dns.TypeTXT
		resp.Answer = append(resp.Answer, &dns.TXT{Hdr: hdr, Txt: []string{probeTXT}})
	default:
		resp.Ns = append(resp.Ns, soa)
	}
	return resp
}

// Responder is the detection DNS server on one UDP and one TCP socket of
// the same address.
type Responder struct {
	nonces *Nonces
	zone   func() string
	log    *slog.Logger

	mu      sync.Mutex
	servers []*dns.Server
	addr    string

	rrl *rateLimit
}

// NewResponder returns a stopped responder answering for the zone that
// zone() returns at the time of each query (so a settings change applies
// to the next query).
func NewResponder(nonces *Nonces, zone func() string, log *slog.Logger) *Responder {
	if log == nil {
		log = slog.Default()
	}
	return &Responder{nonces: nonces, zone: zone, log: log, rrl: newRateLimit(time.Now)}
}

// ServeDNS implements dns.Handler.
func (r *Responder) ServeDNS(w dns.ResponseWriter, req *dns.Msg) {
	udp, ok := w.RemoteAddr().(*net.UDPAddr)
	if ok {
		// Response rate limiting: UDP sources are spoofable, so a source
		// over its rate gets every other answer as an empty truncated one
		// (a real resolver retries over TCP) and the rest nothing.
		switch r.rrl.allow(udp.IP) {
		case rrlDrop:
			return
		case rrlSlip:
			resp := new(dns.Msg)
			resp.SetReply(req)
			resp.Truncated = true
			w.WriteMsg(resp)
			return
		}
	}
	resp := Answer(req, r.zone(), r.nonces)
	if ok {
		// Over UDP an answer that does not fit is truncated; the client
		// retries over TCP.
		size := dns.MinMsgSize
		if o := req.IsEdns0(); o != nil {
			size = int(o.UDPSize())
		}
		resp.Truncate(size)
		limitAmplification(req, resp)
	}
	if err := w.WriteMsg(resp); err != nil {
		r.log.Debug("detect DNS: write answer", "client", w.RemoteAddr().String(), "err", err)
	}
}

// Start binds addr over UDP and TCP and serves until Stop. With port 0 the
// TCP socket takes the port the UDP socket got.
func (r *Responder) Start(addr string) error {
	pc, ln, tcpAddr, err := listenBoth(addr)
	if err != nil {
		return err
	}
	udp := &dns.Server{PacketConn: pc, Handler: r, UDPSize: dns.DefaultMsgSize}
	tcp := &dns.Server{Listener: ln, Handler: r, ReadTimeout: 5 * time.Second, WriteTimeout: 5 * time.Second, IdleTimeout: func() time.Duration { return 5 * time.Second }}
	started := make(chan struct{}, 2)
	for _, s := range []*dns.Server{udp, tcp} {
		s.NotifyStartedFunc = func() { started <- struct{}{} }
		go func(s *dns.Server) {
			if err := s.ActivateAndServe(); err != nil && !errors.Is(err, net.ErrClosed) {
				r.log.Warn("detect DNS responder stopped", "addr", tcpAddr, "err", err)
			}
		}(s)
	}
	<-started
	<-started
	r.mu.Lock()
	r.servers = []*dns.Server{udp, tcp}
	r.addr = tcpAddr
	r.mu.Unlock()
	return nil
}

// Addr returns the bound address ("" when stopped).
func (r *Responder) Addr() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.addr
}

// Stop closes the sockets and waits (until ctx ends) for in-flight answers.
func (r *Responder) Stop(ctx context.Context) {
	r.mu.Lock()
	servers := r.servers
	r.servers, r.addr = nil, ""
	r.mu.Unlock()
	for _, s := range servers {
		if err := s.ShutdownContext(ctx); err != nil {
			r.log.Debug("detect DNS: shutdown", "err", err)
		}
	}
}

// listenBoth opens UDP and TCP on the same port. With port 0 the UDP
// socket picks one, and TCP may find that number taken (outgoing
// connections use the same range), so a few other picks are tried.
func listenBoth(addr string) (net.PacketConn, net.Listener, string, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, nil, "", fmt.Errorf("DNS listen address %q: %w", addr, err)
	}
	tries := 1
	if port == "0" {
		tries = 20
	}
	for i := 1; ; i++ {
		pc, err := net.ListenPacket("udp", addr)
		if err != nil {
			return nil, nil, "", fmt.Errorf("listen DNS (UDP) on %s: %w", addr, err)
		}
		tcpAddr := net.JoinHostPort(host, fmt.Sprint(pc.LocalAddr().(*net.UDPAddr).Port))
		ln, err := net.Listen("tcp", tcpAddr)
		if err == nil {
			return pc, ln, tcpAddr, nil
		}
		pc.Close()
		if i >= tries {
			return nil, nil, "", fmt.Errorf("listen DNS (TCP) on %s: %w", tcpAddr, err)
		}
	}
}

// limitAmplification keeps a UDP answer that confirms nothing (an unknown
// name, a refusal, an error) at most twice the query's size: it drops the
// authority section's SOA when that would exceed it. Only answers for a
// live nonce — which an outsider cannot guess — may be larger.
func limitAmplification(req, resp *dns.Msg) {
	if len(resp.Answer) > 0 {
		return
	}
	if resp.Len() > 2*req.Len() {
		resp.Ns, resp.Extra = nil, nil
	}
	if resp.Len() > 2*req.Len() {
		resp.Question = nil // the header alone is 12 bytes, a query at least 17
	}
}

// rrl verdicts.
const (
	rrlAnswer = iota
	rrlSlip
	rrlDrop
)

// Response rate limiting: per source (IPv4 /24, IPv6 /56) a bucket of
// rrlBurst answers refilled at rrlRate a second.
const (
	rrlRate    = 20
	rrlBurst   = 40
	rrlMaxKeys = 10000
)

type bucket struct {
	tokens float64
	last   time.Time
	over   int
}

// rateLimit is a bounded per-source token bucket table.
type rateLimit struct {
	now func() time.Time
	mu  sync.Mutex
	m   map[string]*bucket
}

func newRateLimit(now func() time.Time) *rateLimit {
	return &rateLimit{now: now, m: map[string]*bucket{}}
}

func (l *rateLimit) allow(ip net.IP) int {
	var key string
	if v4 := ip.To4(); v4 != nil {
		key = v4.Mask(net.CIDRMask(24, 32)).String()
	} else {
		key = ip.Mask(net.CIDRMask(56, 128)).String()
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	b, ok := l.m[key]
	if !ok {
		if len(l.m) >= rrlMaxKeys {
			// A table full of sources is itself a flood: start over
			// rather than grow (each source gets a fresh burst).
			l.m = map[string]*bucket{}
		}
		b = &bucket{tokens: rrlBurst, last: now}
		l.m[key] = b
	}
	b.tokens = min(rrlBurst, b.tokens+now.Sub(b.last).Seconds()*rrlRate)
	b.last = now
	if b.tokens >= 1 {
		b.tokens--
		b.over = 0
		return rrlAnswer
	}
	b.over++
	if b.over%2 == 1 {
		return rrlSlip
	}
	return rrlDrop
}
