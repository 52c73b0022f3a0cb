package config

import (
	"net"
	"strings"
)

// Detect is a gateway's native-client detection settings: where its DNS
// responder listens and which zone it answers for. The detection timeout
// and mode are User Portal settings (Client); these belong to the node
// because they name its sockets and its DNS name.
type Detect struct {
	// DNSListen is the responder's UDP and TCP address (host:port). Empty
	// means DefaultDNSAddr; DNSOff turns the responder off, leaving the HTTP
	// probe. Port 53 needs privileges (CAP_NET_BIND_SERVICE on Linux), so
	// the default is an unprivileged port the client is told about in the
	// detect URL.
	DNSListen string `json:"dnsListen"`
	// Zone is the DNS zone probes are asked under (<nonce>.<zone>). Empty
	// derives it from the first public host name (detect.<host>), else
	// DefaultDetectZone. Delegate it to the gateway in public DNS for the
	// system-resolver probe to reach it; the direct probe needs no
	// delegation.
	Zone string `json:"zone"`
}

// Detection defaults.
const (
	DefaultDNSAddr = ":8053"
	// DNSOff as DNSListen turns the DNS responder off.
	DNSOff = "off"
	// DefaultDetectZone is used when no zone is set and no public host name
	// is known; .invalid can never clash with a real name (RFC 6761).
	DefaultDetectZone = "detect.portico.invalid"
)

// DNSAddr is the address the detection DNS responder listens on, or ""
// when it is turned off.
func (g Gateway) DNSAddr() string {
	switch a := strings.TrimSpace(g.Detect.DNSListen); a {
	case "":
		return DefaultDNSAddr
	case DNSOff:
		return ""
	default:
		return a
	}
}

// DetectZone is the zone the responder answers for: lower case, without
// the trailing dot.
func (g Gateway) DetectZone() string {
	if z := strings.TrimSuffix(strings.TrimSpace(g.Detect.Zone), "."); z != "" {
		return strings.ToLower(z)
	}
	for _, h := range g.PublicHosts {
		if net.ParseIP(strings.Trim(h, "[]")) == nil && strings.Contains(h, ".") {
			return "detect." + strings.ToLower(strings.TrimSuffix(h, "."))
		}
	}
	return DefaultDetectZone
}

// validate checks the detection settings; ports is updated with the
// DNS port so nothing else may take it.
func (d Detect) validate(es *FieldErrors, ports map[int]string) {
	const purpose = "detection DNS responder"
	switch a := strings.TrimSpace(d.DNSListen); a {
	case "", DNSOff:
	default:
		port, err := ListenPort(a)
		if err != nil {
			es.add("detect.dnsListen", a, "%v (or %q to turn the DNS probe off)", err, DNSOff)
			break
		}
		if other, ok := ports[port]; ok && other != purpose {
			es.add("detect.dnsListen", a, "port %d is already used by the %s", port, other)
			break
		}
		ports[port] = purpose
	}
	if z := strings.TrimSuffix(strings.TrimSpace(d.Zone), "."); z != "" {
		switch {
		case net.ParseIP(z) != nil:
			es.add("detect.zone", d.Zone, "use a DNS name such as detect.gateway.example.com, not an IP address")
		case !strings.Contains(z, "."):
			es.add("detect.zone", d.Zone, "use a name with at least two labels, such as detect.gateway.example.com")
		default:
			if err := ValidateHostname(z); err != nil {
				es.add("detect.zone", d.Zone, "%v", err)
			} else if len(z) > 200 {
				// <nonce>. must still fit in a 253-character name.
				es.add("detect.zone", d.Zone, "use at most 200 characters so the probe name fits in DNS")
			}
		}
	}
}
