package portal

import "net/http"

// relayState is per-portal state of the relays (none yet).
type relayState struct{}

// relayRoutes registers the relay endpoints (none yet).
func (p *Portal) relayRoutes(m *http.ServeMux) {}
