package config

import (
	"fmt"
	"net"
	"strconv"
	"strings"
)

// Mode is what a gateway does with client traffic.
type Mode string

// Gateway modes.
const (
	// ModeNormal serves the User Portal and relays sessions itself.
	ModeNormal Mode = "normal"
	// ModeForwarding forwards every client TLS connection to an upstream
	// gateway and serves no portal.
	ModeForwarding Mode = "forwarding"
)

// DefaultGatewayID is the key of this node's gateway record. Portico is a
// single-node appliance; the ID exists so exports and a later multi-gateway
// site keep working.
const DefaultGatewayID = "default"

// Gateway is one gateway's own settings.
type Gateway struct {
	// ID identifies the gateway; DefaultGatewayID on a single node.
	ID string `json:"id"`
	// Name is shown in the GUI and audit log.
	Name string `json:"name"`
	// Mode is normal or forwarding.
	Mode Mode `json:"mode"`
	// Upstream is host:port of the gateway that Forwarding mode forwards to.
	Upstream string `json:"upstream"`
	// Listen holds the stored listen addresses; command-line flags win.
	Listen Listen `json:"listen"`
	// Detect holds the native-client detection DNS responder's settings.
	Detect Detect `json:"detect"`
	// PublicHosts are the names and IPs clients use to reach the gateway;
	// they go into the self-signed certificate's SANs. Empty = this
	// machine's name and addresses.
	PublicHosts []string `json:"publicHosts"`
	// TrustedProxies are CIDRs of reverse proxies / load balancers whose
	// X-Forwarded-For and Forwarded headers are believed.
	TrustedProxies []string `json:"trustedProxies"`
	// InheritPortal makes the effective User Portal settings the site
	// defaults (following later edits); when false Portal is used.
	InheritPortal bool `json:"inheritPortal"`
	// Portal is the gateway's own User Portal settings set.
	Portal PortalSettings `json:"portal"`
	// Security holds the sign-in, session and audit limits.
	Security Security `json:"security"`
}

// Listen holds listen addresses as host:port (host may be empty for all).
type Listen struct {
	// HTTPS serves the portal, relays and native tunnels.
	HTTPS string `json:"https"`
	// HTTP only redirects to HTTPS.
	HTTP string `json:"http"`
	// Admin serves the admin API; loopback only.
	Admin string `json:"admin"`
}

// Default listen addresses of an installed gateway.
const (
	DefaultHTTPSAddr = ":443"
	DefaultHTTPAddr  = ":80"
	DefaultAdminAddr = "127.0.0.1:9443"
)

// DefaultGateway returns a new node's gateway record: normal mode,
// inheriting the site defaults.
func DefaultGateway() Gateway {
	return Gateway{
		ID:             DefaultGatewayID,
		Name:           "Portico gateway",
		Mode:           ModeNormal,
		Listen:         Listen{HTTPS: DefaultHTTPSAddr, HTTP: DefaultHTTPAddr, Admin: DefaultAdminAddr},
		Detect:         Detect{DNSListen: DefaultDNSAddr},
		PublicHosts:    []string{},
		TrustedProxies: []string{},
		InheritPortal:  true,
		Portal:         DefaultPortal(),
		Security:       DefaultSecurity(),
	}
}

// Normalize trims what can be trimmed and returns notices for the portal set.
func (g *Gateway) Normalize() []Notice {
	g.Name = strings.TrimSpace(g.Name)
	g.Upstream = strings.TrimSpace(g.Upstream)
	g.Detect.DNSListen = strings.TrimSpace(g.Detect.DNSListen)
	g.Detect.Zone = strings.TrimSpace(g.Detect.Zone)
	g.Security.normalize()
	notes := g.Portal.Normalize()
	for i := range notes {
		notes[i].Field = "portal." + notes[i].Field
	}
	return notes
}

// Validate checks the gateway record. usedPorts is as for
// PortalSettings.Validate; the gateway's own listen ports are added to it.
func (g Gateway) Validate(usedPorts map[int]string) error {
	var es FieldErrors
	if g.ID == "" {
		es.add("id", g.ID, "give the gateway an ID")
	}
	if g.Name == "" || len(g.Name) > 100 {
		es.add("name", g.Name, "give the gateway a name of 1 to 100 characters")
	}
	switch g.Mode {
	case ModeNormal:
	case ModeForwarding:
		if err := ValidateHostPort(g.Upstream); err != nil {
			es.add("upstream", g.Upstream, "forwarding mode needs the upstream gateway as host:port: %v", err)
		}
	default:
		es.add("mode", g.Mode, "use normal or forwarding")
	}
	ports := map[int]string{}
	for k, v := range usedPorts {
		ports[k] = v
	}
	for _, l := range []struct{ field, addr, purpose string }{
		{"listen.https", g.Listen.HTTPS, "HTTPS listener"},
		{"listen.http", g.Listen.HTTP, "HTTP redirect listener"},
		{"listen.admin", g.Listen.Admin, "admin API"},
	} {
		port, err := ListenPort(l.addr)
		if err != nil {
			es.add(l.field, l.addr, "%v", err)
			continue
		}
		if other, ok := ports[port]; ok && other != l.purpose {
			es.add(l.field, l.addr, "port %d is already used by the %s", port, other)
			continue
		}
		ports[port] = l.purpose
	}
	g.Detect.validate(&es, ports)
	g.Security.validate(&es)
	if err := ValidateLoopbackAddr(g.Listen.Admin); err != nil {
		es.add("listen.admin", g.Listen.Admin, "%v", err)
	}
	for i, h := range g.PublicHosts {
		if err := ValidateHostname(h); err != nil {
			es.add(fmt.Sprintf("publicHosts[%d]", i), h, "%v", err)
		}
	}
	for i, c := range g.TrustedProxies {
		if _, err := ParseCIDROrIP(c); err != nil {
			es.add(fmt.Sprintf("trustedProxies[%d]", i), c, "%v", err)
		}
	}
	if err := g.Portal.Validate(ports); err != nil {
		fes, _ := AsFieldErrors(err)
		es = append(es, fes.under("portal")...)
	}
	return es.errOrNil()
}

// ListenPort returns the port of a host:port listen address.
func ListenPort(addr string) (int, error) {
	_, p, err := net.SplitHostPort(addr)
	if err != nil {
		return 0, fmt.Errorf("use host:port or :port, e.g. :443")
	}
	n, err := strconv.Atoi(p)
	if err != nil || n < 1 || n > 65535 {
		return 0, fmt.Errorf("port %q is not a number from 1 to 65535", p)
	}
	return n, nil
}

// ValidateHostPort checks a host:port dial address.
func ValidateHostPort(addr string) error {
	h, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("use host:port, e.g. gw2.example.com:443")
	}
	if _, err := ListenPort(addr); err != nil {
		return err
	}
	return ValidateHostname(h)
}

// ValidateLoopbackAddr refuses admin listen addresses that are reachable
// from the network: the admin API is for this machine only.
func ValidateLoopbackAddr(addr string) error {
	h, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("use 127.0.0.1:port")
	}
	if h == "localhost" {
		return nil
	}
	ip := net.ParseIP(h)
	if ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("the admin API listens on loopback only: use 127.0.0.1:port or [::1]:port")
	}
	return nil
}

// ParseCIDROrIP accepts a CIDR or a single IP (taken as /32 or /128).
func ParseCIDROrIP(s string) (*net.IPNet, error) {
	s = strings.TrimSpace(s)
	if ip := net.ParseIP(s); ip != nil {
		bits := 128
		if ip4 := ip.To4(); ip4 != nil {
			ip, bits = ip4, 32
		}
		return &net.IPNet{IP: ip, Mask: net.CIDRMask(bits, bits)}, nil
	}
	_, n, err := net.ParseCIDR(s)
	if err != nil {
		return nil, fmt.Errorf("%q is not an IP address or CIDR such as 10.0.0.0/8", s)
	}
	return n, nil
}

// Effective is the User Portal settings a gateway actually runs with, and
// where they came from.
type Effective struct {
	// Portal is the settings set in force.
	Portal PortalSettings `json:"portal"`
	// Source is "site defaults" or "gateway".
	Source string `json:"source"`
	// PortalAvailable is false when the portal must not be served.
	PortalAvailable bool `json:"portalAvailable"`
	// Reason explains why the portal is unavailable.
	Reason string `json:"reason,omitempty"`
}

// Effective-settings sources.
const (
	SourceSite    = "site defaults"
	SourceGateway = "gateway"
)

// Resolve computes a gateway's effective User Portal settings. It is the
// only place that applies the inherit flag and the mode rule; the portal,
// relays and GUI all ask it.
func Resolve(site PortalSettings, g Gateway) Effective {
	e := Effective{Portal: g.Portal, Source: SourceGateway}
	if g.InheritPortal {
		e.Portal, e.Source = site, SourceSite
	}
	switch {
	case g.Mode == ModeForwarding:
		e.Reason = "the gateway is in Forwarding mode, which has no User Portal"
	case !e.Portal.Enabled:
		e.Reason = "the User Portal is disabled in the " + e.Source
	default:
		e.PortalAvailable = true
	}
	return e
}
