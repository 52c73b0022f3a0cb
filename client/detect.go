package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/miekg/dns"

	"portico/service/detect"
)

// probeTimeout bounds each probe: detection must answer well within the
// portal's timeout, and a probe that cannot reach the gateway in this time
// will not reach it later either.
const probeTimeout = 4 * time.Second

// detectURL is a parsed portico://detect URL.
type detectURL struct {
	gw    string // host:port of the portal's HTTPS listener
	path  string // portal path, e.g. /userportal
	fp    []byte // SHA-256 of the gateway's TLS leaf
	nonce string
	dns   string // host:port of the gateway's DNS responder ("" = none)
	zone  string // the detect zone, no trailing dot
}

// parseDetectURL checks every field of a detect URL. Any web page can open
// a portico:// link, so a malformed or unexpected field is refused and
// nothing is sent.
func parseDetectURL(u *url.URL) (detectURL, error) {
	q, err := url.ParseQuery(u.RawQuery)
	if err != nil {
		return detectURL{}, fmt.Errorf("detect URL query: %w", err)
	}
	d := detectURL{gw: q.Get("gw"), path: q.Get("path"), nonce: q.Get("n"), dns: q.Get("dns"), zone: strings.TrimSuffix(q.Get("zone"), ".")}
	if err := checkHostPort(d.gw); err != nil {
		return detectURL{}, fmt.Errorf("detect URL gw: %w", err)
	}
	if d.path == "" || d.path[0] != '/' || len(d.path) > 128 || strings.ContainsAny(d.path, "?#%\\ ") || strings.Contains(d.path, "..") {
		return detectURL{}, fmt.Errorf("detect URL path %q: want the portal path, e.g. /userportal", d.path)
	}
	fp := strings.ReplaceAll(strings.ToLower(q.Get("fp")), ":", "")
	if d.fp, err = hex.DecodeString(fp); err != nil || len(d.fp) != sha256.Size {
		return detectURL{}, fmt.Errorf("detect URL fp %q: want the gateway certificate's SHA-256 as 64 hex digits", q.Get("fp"))
	}
	if !detect.ValidNonce(d.nonce) {
		return detectURL{}, fmt.Errorf("detect URL n %q: not a detection nonce", d.nonce)
	}
	if d.dns != "" {
		if err := checkHostPort(d.dns); err != nil {
			return detectURL{}, fmt.Errorf("detect URL dns: %w", err)
		}
	}
	if d.zone != "" {
		if _, ok := dns.IsDomainName(d.zone); !ok || !strings.Contains(d.zone, ".") || len(d.zone) > 200 || net.ParseIP(d.zone) != nil {
			return detectURL{}, fmt.Errorf("detect URL zone %q: not a DNS zone name", d.zone)
		}
	}
	return d, nil
}

// checkHostPort accepts host:port with a plain host name or IP address.
func checkHostPort(s string) error {
	host, port, err := net.SplitHostPort(s)
	if err != nil || host == "" {
		return fmt.Errorf("%q: want host:port", s)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return fmt.Errorf("%q: port must be 1-65535", s)
	}
	if net.ParseIP(host) == nil {
		if _, ok := dns.IsDomainName(host); !ok || strings.ContainsAny(host, "/@\\ ") {
			return fmt.Errorf("%q: not a host name or IP address", s)
		}
	}
	return nil
}

// pinnedTLS trusts exactly the certificate whose SHA-256 is fp: the gateway
// is usually self-signed, and the portal told us which one it serves.
func pinnedTLS(fp []byte, serverName string) *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		ServerName: serverName,
		// Verification is the pin below, not the system roots.
		InsecureSkipVerify: true,
		VerifyConnection: func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 {
				return errors.New("the gateway sent no certificate")
			}
			sum := sha256.Sum256(cs.PeerCertificates[0].Raw)
			if subtle.ConstantTimeCompare(sum[:], fp) != 1 {
				return fmt.Errorf("the gateway's certificate (SHA-256 %x) is not the one the portal named", sum)
			}
			return nil
		},
	}
}

// httpProbe POSTs the nonce to the portal's probe endpoint.
func httpProbe(ctx context.Context, d detectURL) error {
	host, _, _ := net.SplitHostPort(d.gw)
	tr := &http.Transport{TLSClientConfig: pinnedTLS(d.fp, host), Proxy: nil, ForceAttemptHTTP2: true}
	defer tr.CloseIdleConnections()
	target := (&url.URL{Scheme: "https", Host: d.gw, Path: d.path + "/api/detect/probe"}).String()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, strings.NewReader(d.nonce))
	if err != nil {
		return fmt.Errorf("HTTP probe %s: %w", target, err)
	}
	req.Header.Set("Content-Type", "text/plain")
	resp, err := (&http.Client{Transport: tr, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}).Do(req)
	if err != nil {
		return fmt.Errorf("HTTP probe %s: %w", target, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return fmt.Errorf("HTTP probe %s: %s: %s", target, resp.Status, bytes.TrimSpace(msg))
	}
	return nil
}

// dnsProbe looks <nonce>.<zone> up at the gateway's own responder and
// through the system resolver (which reaches the gateway when the zone is
// delegated to it), whichever answers first.
func dnsProbe(ctx context.Context, d detectURL) error {
	if d.zone == "" {
		return errors.New("DNS probe: the detect URL names no zone")
	}
	name := d.nonce + "." + d.zone
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	type result struct {
		via string
		err error
	}
	results := make(chan result, 2)
	n := 0
	if d.dns != "" {
		n++
		go func() { results <- result{"the gateway's DNS responder " + d.dns, directLookup(ctx, d.dns, name)} }()
	}
	n++
	go func() {
		addrs, err := net.DefaultResolver.LookupHost(ctx, name)
		if err == nil && len(addrs) == 0 {
			err = errors.New("no address in the answer")
		}
		results <- result{"the system resolver", err}
	}()
	var errs []error
	for range n {
		r := <-results
		if r.err == nil {
			return nil
		}
		errs = append(errs, fmt.Errorf("DNS probe %s via %s: %w", name, r.via, r.err))
	}
	return errors.Join(errs...)
}

// directLookup asks server for name's A record over UDP, and over TCP when
// the UDP answer is truncated.
func directLookup(ctx context.Context, server, name string) error {
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(name), dns.TypeA)
	m.RecursionDesired = false
	resp, _, err := (&dns.Client{Net: "udp"}).ExchangeContext(ctx, m, server)
	if err == nil && resp.Truncated {
		resp, _, err = (&dns.Client{Net: "tcp"}).ExchangeContext(ctx, m, server)
	}
	if err != nil {
		return err
	}
	if resp.Rcode != dns.RcodeSuccess || len(resp.Answer) == 0 {
		return fmt.Errorf("answer %s (the nonce is unknown or expired)", dns.RcodeToString[resp.Rcode])
	}
	return nil
}

// runDetect answers a portico://detect URL: both probes run at once, each
// with a short timeout; either one is enough for the portal. The exit code
// is 0 when at least one got through, 1 when neither did, 2 for a bad URL.
func runDetect(ctx context.Context, u *url.URL, stdout, stderr io.Writer) int {
	d, err := parseDetectURL(u)
	if err != nil {
		fmt.Fprintf(stderr, "portico-client: %v\n", err)
		return 2
	}
	ctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	httpErr, dnsErr := make(chan error, 1), make(chan error, 1)
	go func() { httpErr <- httpProbe(ctx, d) }()
	go func() { dnsErr <- dnsProbe(ctx, d) }()
	var ok []string
	for _, p := range []struct {
		name string
		err  error
	}{{"HTTP", <-httpErr}, {"DNS", <-dnsErr}} {
		if p.err != nil {
			fmt.Fprintf(stderr, "%s probe failed: %v\n", p.name, p.err)
			continue
		}
		ok = append(ok, p.name)
	}
	if len(ok) == 0 {
		fmt.Fprintln(stderr, "portico-client: the gateway was not reached; the portal will offer the browser or the download")
		return 1
	}
	fmt.Fprintf(stdout, "detected by the %s probe\n", strings.Join(ok, " and "))
	return 0
}
