package portal

import (
	"net"
	"net/http"
	"strings"

	"portico/service/config"
)

// ClientIP returns the client address for audit and policy: the socket
// peer, or — only when that peer is a trusted proxy — the right-most
// address in X-Forwarded-For / Forwarded that is not itself a trusted
// proxy. Headers from untrusted peers are ignored, so they cannot be
// spoofed.
func ClientIP(r *http.Request, trusted []string) net.IP {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	peer := net.ParseIP(host)
	if peer == nil || len(trusted) == 0 {
		return peer
	}
	nets := make([]*net.IPNet, 0, len(trusted))
	for _, t := range trusted {
		if n, err := config.ParseCIDROrIP(t); err == nil {
			nets = append(nets, n)
		}
	}
	isTrusted := func(ip net.IP) bool {
		for _, n := range nets {
			if n.Contains(ip) {
				return true
			}
		}
		return false
	}
	if !isTrusted(peer) {
		return peer
	}
	chain := forwardedChain(r)
	for i := len(chain) - 1; i >= 0; i-- {
		ip := chain[i]
		if !isTrusted(ip) {
			return ip
		}
	}
	if len(chain) > 0 {
		return chain[0]
	}
	return peer
}

// forwardedChain lists the addresses from Forwarded (RFC 7239) or, if it
// is absent, X-Forwarded-For, in order (client first).
func forwardedChain(r *http.Request) []net.IP {
	var out []net.IP
	if fw := r.Header.Values("Forwarded"); len(fw) > 0 {
		for _, line := range fw {
			for _, elem := range strings.Split(line, ",") {
				for _, pair := range strings.Split(elem, ";") {
					k, v, ok := strings.Cut(strings.TrimSpace(pair), "=")
					if !ok || !strings.EqualFold(k, "for") {
						continue
					}
					v = strings.Trim(v, `"`)
					if h, _, err := net.SplitHostPort(v); err == nil {
						v = h
					}
					if ip := net.ParseIP(strings.Trim(v, "[]")); ip != nil {
						out = append(out, ip)
					}
				}
			}
		}
		return out
	}
	for _, line := range r.Header.Values("X-Forwarded-For") {
		for _, part := range strings.Split(line, ",") {
			if ip := net.ParseIP(strings.TrimSpace(part)); ip != nil {
				out = append(out, ip)
			}
		}
	}
	return out
}
