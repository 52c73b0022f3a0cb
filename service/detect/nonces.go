// Package detect is native-client detection on the gateway side: the store
// of one-time nonces the portal hands to portico-client, the DNS responder
// that answers <nonce>.<zone> authoritatively, and the HTTP probe endpoint.
// A probe of either kind marks its nonce as detected; the portal reads the
// result for the sign-in that asked.
//
// It owns the nonces and the responder's sockets. It must not touch portal
// sessions, settings or the store: the portal binds a nonce to its session
// ID and decides what a detection means, the gateway passes in the
// listen address and zone from the live settings.
package detect

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base32"
	"errors"
	"strings"
	"sync"
	"time"
)

// Via is a set of probe kinds that reached the gateway.
type Via uint8

// Probe kinds.
const (
	ViaHTTP Via = 1 << iota
	ViaDNS
)

// String lists the probe kinds, e.g. "http+dns".
func (v Via) String() string {
	var parts []string
	if v&ViaHTTP != 0 {
		parts = append(parts, "http")
	}
	if v&ViaDNS != 0 {
		parts = append(parts, "dns")
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, "+")
}

// Nonce errors.
var (
	// ErrUnknown means the nonce was never issued, was already consumed,
	// or belongs to another sign-in.
	ErrUnknown = errors.New("unknown detection nonce")
	// ErrExpired means the detection timeout passed without a probe.
	ErrExpired = errors.New("detection timed out")
	// ErrFull means too many detections are in progress.
	ErrFull = errors.New("too many detections in progress; try again in a moment")
)

// nonceEncoding is lower-case base32 without padding: a nonce is a valid
// DNS label, and DNS may change its case on the way (0x20 randomisation),
// so lookups lower-case it.
var nonceEncoding = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// NonceLen is the length of a nonce (20 random bytes → 32 characters).
const NonceLen = 32

// DefaultMaxNonces bounds the store; each portal sign-in holds at most one.
const DefaultMaxNonces = 10000

type entry struct {
	session string
	expires time.Time
	via     Via
}

// Nonces holds the outstanding detection nonces. Each is random, bound to
// the portal session that asked, expires at the detection timeout, and is
// consumed when the portal reads a positive result. Issuing a new one for
// a session drops that session's previous one, so the store never holds
// more than one per sign-in, and never more than its bound.
type Nonces struct {
	mu  sync.Mutex
	m   map[string]*entry
	max int
	now func() time.Time
}

// NewNonces returns an empty store holding at most max nonces
// (DefaultMaxNonces when max <= 0).
func NewNonces(max int) *Nonces {
	if max <= 0 {
		max = DefaultMaxNonces
	}
	return &Nonces{m: map[string]*entry{}, max: max, now: time.Now}
}

// Issue creates a nonce for session valid for ttl.
func (n *Nonces) Issue(session string, ttl time.Duration) (string, error) {
	var b [20]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	nonce := nonceEncoding.EncodeToString(b[:])
	n.mu.Lock()
	defer n.mu.Unlock()
	now := n.now()
	for k, e := range n.m {
		if e.session == session || now.After(e.expires) {
			delete(n.m, k)
		}
	}
	if len(n.m) >= n.max {
		return "", ErrFull
	}
	n.m[nonce] = &entry{session: session, expires: now.Add(ttl)}
	return nonce, nil
}

// Report records a probe. It returns false when the nonce is not (or no
// longer) outstanding; the probe answers then say "unknown" and change
// nothing.
func (n *Nonces) Report(nonce string, via Via) bool {
	nonce = strings.ToLower(nonce)
	n.mu.Lock()
	defer n.mu.Unlock()
	e, ok := n.m[nonce]
	if !ok || n.now().After(e.expires) {
		return false
	}
	e.via |= via
	return true
}

// Result is the state of a detection.
type Result struct {
	// Detected is true once any probe arrived.
	Detected bool
	// Via says which probes arrived.
	Via Via
}

// Check returns the state of session's nonce. A positive result consumes
// the nonce (single use); a pending one stays until it expires, after
// which Check returns ErrExpired once and forgets it.
func (n *Nonces) Check(nonce, session string) (Result, error) {
	nonce = strings.ToLower(nonce)
	n.mu.Lock()
	defer n.mu.Unlock()
	e, ok := n.m[nonce]
	if !ok || subtle.ConstantTimeCompare([]byte(e.session), []byte(session)) != 1 {
		return Result{}, ErrUnknown
	}
	if e.via != 0 {
		delete(n.m, nonce)
		return Result{Detected: true, Via: e.via}, nil
	}
	if n.now().After(e.expires) {
		delete(n.m, nonce)
		return Result{}, ErrExpired
	}
	return Result{}, nil
}

// Len returns the number of outstanding nonces.
func (n *Nonces) Len() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return len(n.m)
}

// ValidNonce reports whether s has a nonce's form (either case), so the
// probes refuse junk before taking the lock and portico-client refuses a
// detect URL that could not be the portal's.
func ValidNonce(s string) bool {
	if len(s) != NonceLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i] | 0x20
		if !(c >= 'a' && c <= 'z' || s[i] >= '2' && s[i] <= '7') {
			return false
		}
	}
	return true
}
