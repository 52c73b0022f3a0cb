package portal

import (
	"net"
	"net/http"
	"net/url"
	"strings"
)

// sameOrigin reports whether a WebSocket's Origin is the portal page's own
// origin: scheme https, and host and port equal to the request's (the Host
// header, already checked against the gateway's names), with 443 implied
// when a side names no port. The browser's relay connections come from
// the portal page only; a page elsewhere (even on the same host over
// http, or on another port) must not open them with the user's ticket.
func sameOrigin(r *http.Request, origin string) bool {
	u, err := url.Parse(origin)
	if err != nil || u.Scheme != "https" || u.User != nil || (u.Path != "" && u.Path != "/") {
		return false
	}
	oh, op := splitHostPortDefault(u.Host)
	rh, rp := splitHostPortDefault(r.Host)
	return oh != "" && strings.EqualFold(oh, rh) && op == rp
}

func splitHostPortDefault(hp string) (host, port string) {
	if h, p, err := net.SplitHostPort(hp); err == nil {
		return strings.Trim(h, "[]"), p
	}
	return strings.Trim(hp, "[]"), "443"
}
