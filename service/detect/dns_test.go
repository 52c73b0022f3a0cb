package detect

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
)

const testZone = "detect.gw.example.com"

// startResponder runs a real responder on a free 127.0.0.1 port.
func startResponder(t *testing.T, n *Nonces) string {
	t.Helper()
	r := NewResponder(n, func() string { return testZone }, nil)
	if err := r.Start("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		r.Stop(ctx)
	})
	return r.Addr()
}

func TestResponderOverUDPAndTCP(t *testing.T) {
	for _, network := range []string{"udp", "tcp"} {
		t.Run(network, func(t *testing.T) {
			n := NewNonces(0)
			addr := startResponder(t, n)
			nonce, _ := n.Issue("s", time.Minute)
			c := &dns.Client{Net: network, Timeout: 5 * time.Second}
			ask := func(name string, qtype uint16) *dns.Msg {
				t.Helper()
				m := new(dns.Msg)
				m.SetQuestion(dns.Fqdn(name), qtype)
				m.RecursionDesired = true
				resp, _, err := c.Exchange(m, addr)
				if err != nil {
					t.Fatalf("query %s: %v", name, err)
				}
				if resp.RecursionAvailable {
					t.Errorf("%s: the responder offers recursion", name)
				}
				return resp
			}

			if resp := ask("www.example.org", dns.TypeA); resp.Rcode != dns.RcodeRefused || len(resp.Answer) != 0 {
				t.Fatalf("name outside the zone: %s, want REFUSED and no answer", dns.RcodeToString[resp.Rcode])
			}
			if resp := ask(strings.Repeat("b", NonceLen)+"."+testZone, dns.TypeA); resp.Rcode != dns.RcodeNameError || !resp.Authoritative {
				t.Fatalf("unknown nonce: %s aa=%v, want authoritative NXDOMAIN", dns.RcodeToString[resp.Rcode], resp.Authoritative)
			}
			if r, _ := n.Check(nonce, "s"); r.Detected {
				t.Fatal("detected before the nonce was asked")
			}
			// Mixed case, as resolvers using 0x20 randomisation send it.
			name := strings.ToUpper(nonce) + "." + testZone
			resp := ask(name, dns.TypeA)
			if resp.Rcode != dns.RcodeSuccess || !resp.Authoritative || len(resp.Answer) != 1 {
				t.Fatalf("outstanding nonce: %v", resp)
			}
			if a, ok := resp.Answer[0].(*dns.A); !ok || !a.A.Equal(net.IPv4(127, 0, 0, 1)) || a.Hdr.Name != dns.Fqdn(name) {
				t.Fatalf("answer %v, want A 127.0.0.1 for %s", resp.Answer[0], name)
			}
			if resp := ask(nonce+"."+testZone, dns.TypeTXT); len(resp.Answer) != 1 || resp.Answer[0].(*dns.TXT).Txt[0] != probeTXT {
				t.Fatalf("TXT answer: %v", resp)
			}
			r, err := n.Check(nonce, "s")
			if err != nil || !r.Detected || r.Via != ViaDNS {
				t.Fatalf("after the DNS probe: %+v, %v", r, err)
			}
			if resp := ask(testZone, dns.TypeSOA); resp.Rcode != dns.RcodeSuccess || len(resp.Answer) != 1 {
				t.Fatalf("apex SOA: %v", resp)
			}
		})
	}
}

func TestAnswerRules(t *testing.T) {
	n := NewNonces(0)
	nonce, _ := n.Issue("s", time.Minute)
	q := func(name string, qtype, class uint16) *dns.Msg {
		m := new(dns.Msg)
		m.SetQuestion(dns.Fqdn(name), qtype)
		m.Question[0].Qclass = class
		return m
	}
	notify := q(testZone, dns.TypeSOA, dns.ClassINET)
	notify.Opcode = dns.OpcodeNotify
	two := q(testZone, dns.TypeSOA, dns.ClassINET)
	two.Question = append(two.Question, two.Question[0])
	tests := []struct {
		name  string
		req   *dns.Msg
		rcode int
		ans   int
	}{
		{"notify", notify, dns.RcodeNotImplemented, 0},
		{"two questions", two, dns.RcodeFormatError, 0},
		{"chaos class", q(nonce+"."+testZone, dns.TypeTXT, dns.ClassCHAOS), dns.RcodeRefused, 0},
		{"parent of zone", q("gw.example.com", dns.TypeA, dns.ClassINET), dns.RcodeRefused, 0},
		{"zone as suffix of another name", q("xdetect.gw.example.com", dns.TypeA, dns.ClassINET), dns.RcodeRefused, 0},
		{"below a nonce", q("x."+nonce+"."+testZone, dns.TypeA, dns.ClassINET), dns.RcodeNameError, 0},
		{"apex NS has no data", q(testZone, dns.TypeNS, dns.ClassINET), dns.RcodeSuccess, 0},
		{"nonce MX has no data", q(nonce+"."+testZone, dns.TypeMX, dns.ClassINET), dns.RcodeSuccess, 0},
		{"nonce AAAA", q(nonce+"."+testZone, dns.TypeAAAA, dns.ClassINET), dns.RcodeSuccess, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp := Answer(tc.req, testZone, n)
			if resp.Rcode != tc.rcode || len(resp.Answer) != tc.ans || resp.Id != tc.req.Id || !resp.Response {
				t.Fatalf("got %s with %d answers, want %s with %d", dns.RcodeToString[resp.Rcode], len(resp.Answer), dns.RcodeToString[tc.rcode], tc.ans)
			}
		})
	}
}

// FuzzAnswer feeds arbitrary bytes to the responder as a DNS query: it must
// never panic, always produce a packable reply with the query's ID, never
// offer recursion and never answer for a name outside its zone.
func FuzzAnswer(f *testing.F) {
	n := NewNonces(0)
	nonce, _ := n.Issue("s", time.Hour)
	for _, name := range []string{nonce + "." + testZone, testZone, "example.org", "x." + testZone} {
		m := new(dns.Msg)
		m.SetQuestion(dns.Fqdn(name), dns.TypeA)
		m.SetEdns0(4096, true)
		b, _ := m.Pack()
		f.Add(b)
	}
	f.Add([]byte{0, 1, 1, 0, 0, 2, 0, 0, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		req := new(dns.Msg)
		if err := req.Unpack(b); err != nil {
			return // the server answers FORMERR before the handler
		}
		resp := Answer(req, testZone, n)
		if _, err := resp.Pack(); err != nil {
			t.Fatalf("reply does not pack: %v", err)
		}
		if resp.Id != req.Id || resp.RecursionAvailable {
			t.Fatalf("id %d/%d ra=%v", resp.Id, req.Id, resp.RecursionAvailable)
		}
		for _, rr := range resp.Answer {
			if !dns.IsSubDomain(testZone+".", strings.ToLower(rr.Header().Name)) {
				t.Fatalf("answer outside the zone: %v", rr)
			}
		}
	})
}

// TestDNSAnswersBoundedAndRateLimited: over UDP an answer for an unknown
// name is at most twice the query, and one source flooding the responder
// gets at most its burst and rate answered in full.
func TestDNSAnswersBoundedAndRateLimited(t *testing.T) {
	n := NewNonces(0)
	addr := startResponder(t, n)
	conn, err := net.Dial("udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	for _, name := range []string{"a." + testZone, "x." + testZone, testZone, "www.example.org", strings.Repeat("b", NonceLen) + "." + testZone} {
		m := new(dns.Msg)
		m.SetQuestion(dns.Fqdn(name), dns.TypeTXT)
		q, _ := m.Pack()
		conn.Write(q)
		buf := make([]byte, 4096)
		conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		k, err := conn.Read(buf)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if k > 2*len(q) {
			t.Fatalf("%s: %d-byte answer to a %d-byte query", name, k, len(q))
		}
	}
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn("a."+testZone), dns.TypeA)
	q, _ := m.Pack()
	start := time.Now()
	for i := 0; i < 300; i++ {
		conn.Write(q)
	}
	full, slipped := 0, 0
	buf := make([]byte, 4096)
	for {
		conn.SetReadDeadline(time.Now().Add(time.Second))
		k, err := conn.Read(buf)
		if err != nil {
			break
		}
		var r dns.Msg
		if r.Unpack(buf[:k]) == nil && r.Truncated {
			slipped++
		} else {
			full++
		}
	}
	allowed := rrlBurst + int(time.Since(start).Seconds()*rrlRate) + 5 // 5 from the size checks above
	if full > allowed || slipped == 0 || full+slipped >= 300 {
		t.Fatalf("300 queries from one source: %d answered, %d truncated; at most %d answers allowed, the rest limited", full, slipped, allowed)
	}
}

func TestRateLimitBounded(t *testing.T) {
	now := time.Unix(0, 0)
	l := newRateLimit(func() time.Time { return now })
	for i := 0; i < 3*rrlMaxKeys; i++ {
		l.allow(net.IPv4(10, byte(i>>16), byte(i>>8), 1))
	}
	if len(l.m) > rrlMaxKeys {
		t.Fatalf("%d sources remembered", len(l.m))
	}
}
