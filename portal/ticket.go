package portal

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"sync"
	"time"
)

// Ticket is a launch ticket: the only thing the browser holds to open a
// session. The target (resource) is recorded here, server-side; the browser
// never names a host or port.
type Ticket struct {
	// Resource is the resource ID the ticket opens.
	Resource string
	// User is the portal user the ticket was issued to.
	User string
	// PortalSession is the hash of the portal session that asked for it.
	PortalSession string
	// ClientIP is the trusted client IP at issue time.
	ClientIP string
	// ReportedIP is the IP the client's IP detection service reported.
	ReportedIP string
	// ClientOS is the client OS guessed from the user agent.
	ClientOS string
	// Groups are the user's groups at issue time.
	Groups []string
	// Expires is when the ticket stops being valid.
	Expires time.Time
	// Native marks tickets for the native client's tunnel.
	Native bool
}

// Ticket errors; each is audited by the caller with its reason.
var (
	ErrTicketMissing = errors.New("no launch ticket")
	ErrTicketUnknown = errors.New("unknown or already used launch ticket")
	ErrTicketExpired = errors.New("launch ticket expired")
	ErrTicketForeign = errors.New("launch ticket belongs to another sign-in")
)

// TicketTTL is how long a browser ticket stays valid: long enough to load
// the session page and open the WebSocket, short enough to be useless if
// it leaks.
const TicketTTL = 30 * time.Second

// Tickets is the in-memory, single-use ticket store. Tickets are keyed by
// the SHA-256 of their value, so the map never holds a usable secret and
// lookup by hash is constant-time in the secret.
type Tickets struct {
	mu   sync.Mutex
	m    map[[32]byte]Ticket
	now  func() time.Time
	last time.Time
}

// NewTickets returns an empty store.
func NewTickets() *Tickets {
	return &Tickets{m: map[[32]byte]Ticket{}, now: time.Now}
}

// Issue stores t and returns the ticket value to hand to the browser.
func (s *Tickets) Issue(t Ticket, ttl time.Duration) (string, error) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	value := base64.RawURLEncoding.EncodeToString(b[:])
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	t.Expires = now.Add(ttl)
	s.m[sha256.Sum256([]byte(value))] = t
	if now.Sub(s.last) > 10*time.Second {
		s.last = now
		for k, v := range s.m {
			if now.After(v.Expires) {
				delete(s.m, k)
			}
		}
	}
	return value, nil
}

// Redeem consumes a ticket. It is single-use: a second Redeem of the same
// value fails with ErrTicketUnknown, whatever the outcome of the first.
// portalSession, when non-empty, must match the session the ticket was
// issued to.
func (s *Tickets) Redeem(value, portalSession string) (Ticket, error) {
	if value == "" {
		return Ticket{}, ErrTicketMissing
	}
	if len(value) > 128 {
		return Ticket{}, ErrTicketUnknown
	}
	key := sha256.Sum256([]byte(value))
	s.mu.Lock()
	t, ok := s.m[key]
	delete(s.m, key)
	s.mu.Unlock()
	switch {
	case !ok:
		return Ticket{}, ErrTicketUnknown
	case s.now().After(t.Expires):
		return Ticket{}, ErrTicketExpired
	case portalSession != "" && subtle.ConstantTimeCompare([]byte(portalSession), []byte(t.PortalSession)) != 1:
		return Ticket{}, ErrTicketForeign
	}
	return t, nil
}

// state tells the page whether a native launch's ticket (by its hash) was
// picked up: "pending" while it is valid and unused, "not-opened" once it
// expired unused, "opened" when it was redeemed. Tickets of another
// sign-in read as "opened" so nothing about them leaks.
func (s *Tickets) state(hash [32]byte, portalSession string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.m[hash]
	switch {
	case !ok || subtle.ConstantTimeCompare([]byte(portalSession), []byte(t.PortalSession)) != 1:
		return "opened"
	case s.now().After(t.Expires):
		return "not-opened"
	}
	return "pending"
}

// Len returns the number of stored tickets (for tests and status).
func (s *Tickets) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.m)
}
