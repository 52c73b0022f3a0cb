package portal

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"strings"
	"sync"
	"time"

	"portico/service/directory"
	"portico/service/store"
)

// Session lifetimes. Idle: a forgotten browser signs out by itself;
// absolute: even an active one signs in again each working day.
const (
	IdleTimeout     = 30 * time.Minute
	AbsoluteTimeout = 12 * time.Hour
	// touchEvery limits how often activity is written to the store.
	touchEvery = time.Minute
)

// Session is a signed-in portal user. It is kept in memory and in the store
// (keyed by the hash of the cookie value), so it survives a restart.
type Session struct {
	// User is the account's user name.
	User string `json:"user"`
	// Domain is the account's domain.
	Domain string `json:"domain,omitempty"`
	// DisplayName is shown in the page header.
	DisplayName string `json:"displayName,omitempty"`
	// Groups at sign-in.
	Groups []string `json:"groups"`
	// CSRF is the token every state-changing request must echo.
	CSRF string `json:"csrf"`
	// Created and LastSeen drive the absolute and idle timeouts.
	Created  time.Time `json:"created"`
	LastSeen time.Time `json:"lastSeen"`
	// ClientIP at sign-in, and ReportedIP from the IP detection service.
	ClientIP   string `json:"clientIP"`
	ReportedIP string `json:"reportedIP,omitempty"`
	// Notice is shown once on the next page (e.g. login-format hint).
	Notice string `json:"notice,omitempty"`
	// Native is the native-client detection result of this sign-in
	// ("", "detected", "not-detected"), remembered until sign-out.
	Native string `json:"native,omitempty"`

	id string // hash of the cookie value; not stored in the record
}

// ID returns the session's store key (the hash of its cookie value).
func (s *Session) ID() string { return s.id }

func randomToken() string {
	var b [32]byte
	rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

func hashToken(v string) string {
	sum := sha256.Sum256([]byte(v))
	return hex.EncodeToString(sum[:])
}

// SessionStore keeps portal sessions in memory, backed by the store.
type SessionStore struct {
	st  *store.Store
	now func() time.Time
	mu  sync.Mutex
	m   map[string]*Session
	// revoked reports whether a user's identity changed at or after a
	// sign-in's creation (sessions.Registry.RevokedSince); such a sign-in
	// is over. Nil revokes nothing.
	revoked func(user string, created time.Time) bool
}

// NewSessionStore returns a session store over st.
func NewSessionStore(st *store.Store) *SessionStore {
	return &SessionStore{st: st, now: time.Now, m: map[string]*Session{}}
}

// Create starts a session and returns the cookie value.
func (ss *SessionStore) Create(s Session) (string, *Session, error) {
	value := randomToken()
	now := ss.now()
	s.id, s.CSRF, s.Created, s.LastSeen = hashToken(value), randomToken(), now, now
	if err := ss.st.PutSession(s.id, &s); err != nil {
		return "", nil, fmt.Errorf("store portal session: %w", err)
	}
	ss.mu.Lock()
	ss.m[s.id] = &s
	ss.mu.Unlock()
	return value, &s, nil
}

// Get returns the live session for a cookie value, refreshing its idle
// timer; nil when there is none or it timed out.
func (ss *SessionStore) Get(value string) *Session {
	if value == "" || len(value) > 128 {
		return nil
	}
	return ss.ByID(hashToken(value))
}

// ByID is Get by store key, for native launches: their ticket names the
// portal session it was issued to, and that session must still be live.
func (ss *SessionStore) ByID(id string) *Session {
	if id == "" {
		return nil
	}
	ss.mu.Lock()
	s, ok := ss.m[id]
	ss.mu.Unlock()
	if !ok {
		var rec Session
		if err := ss.st.Session(id, &rec); err != nil {
			return nil
		}
		rec.id = id
		s = &rec
		ss.mu.Lock()
		ss.m[id] = s
		ss.mu.Unlock()
	}
	now := ss.now()
	ss.mu.Lock()
	expired := now.Sub(s.LastSeen) > IdleTimeout || now.Sub(s.Created) > AbsoluteTimeout || (ss.revoked != nil && ss.revoked(s.User, s.Created))
	persist := !expired && now.Sub(s.LastSeen) > touchEvery
	if !expired {
		s.LastSeen = now
	}
	snapshot := *s
	ss.mu.Unlock()
	if expired {
		ss.Delete(id)
		return nil
	}
	if persist {
		ss.st.PutSession(id, &snapshot)
	}
	return s
}

// Update writes changed fields of s (e.g. ReportedIP, Notice).
func (ss *SessionStore) Update(s *Session, fn func(*Session)) error {
	ss.mu.Lock()
	fn(s)
	snapshot := *s
	ss.mu.Unlock()
	return ss.st.PutSession(s.id, &snapshot)
}

// Delete ends a session by ID.
func (ss *SessionStore) Delete(id string) {
	ss.mu.Lock()
	delete(ss.m, id)
	ss.mu.Unlock()
	ss.st.DeleteSession(id)
}

// DeleteUser ends every session of a user (account disabled or removed).
func (ss *SessionStore) DeleteUser(user string) {
	ss.mu.Lock()
	for id, s := range ss.m {
		if strings.EqualFold(s.User, user) {
			delete(ss.m, id)
		}
	}
	ss.mu.Unlock()
	ss.st.DeleteSessionsWhere(func(_ string, raw []byte) bool {
		return strings.Contains(strings.ToLower(string(raw)), `"user":"`+strings.ToLower(user)+`"`)
	})
}

// Throttle slows down password guessing per client IP and per account.
// After FreeAttempts failures in Window, each further failure doubles a
// lock-out starting at BaseDelay, capped at MaxDelay.
type Throttle struct {
	mu  sync.Mutex
	m   map[string]*strikes
	now func() time.Time
}

// Throttle parameters.
const (
	FreeAttempts = 5
	Window       = 15 * time.Minute
	BaseDelay    = 5 * time.Second
	MaxDelay     = 15 * time.Minute
)

type strikes struct {
	fails int
	last  time.Time
	until time.Time
}

// NewThrottle returns an empty throttle.
func NewThrottle() *Throttle { return &Throttle{m: map[string]*strikes{}, now: time.Now} }

// ErrThrottled carries how long the client must wait.
type ErrThrottled struct{ Wait time.Duration }

func (e ErrThrottled) Error() string {
	return fmt.Sprintf("too many failed sign-ins: try again in %d s", int(e.Wait.Seconds()+0.999))
}

// Check returns ErrThrottled if any key is locked out.
func (t *Throttle) Check(keys ...string) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.now()
	var wait time.Duration
	for _, k := range keys {
		if s, ok := t.m[k]; ok && now.Before(s.until) && s.until.Sub(now) > wait {
			wait = s.until.Sub(now)
		}
	}
	if wait > 0 {
		return ErrThrottled{Wait: wait}
	}
	return nil
}

// Fail records a failure for each key.
func (t *Throttle) Fail(keys ...string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.now()
	for _, k := range keys {
		s, ok := t.m[k]
		if !ok || now.Sub(s.last) > Window {
			s = &strikes{}
			t.m[k] = s
		}
		s.fails++
		s.last = now
		if over := s.fails - FreeAttempts + 1; over > 0 {
			d := BaseDelay << min(over-1, 20)
			if d > MaxDelay {
				d = MaxDelay
			}
			s.until = now.Add(d)
		}
	}
	if len(t.m) > 100000 {
		for k, s := range t.m {
			if now.Sub(s.last) > Window {
				delete(t.m, k)
			}
		}
	}
}

// Succeed clears the account's strikes (not the IP's: one right password
// must not reset an address that is guessing at many accounts).
func (t *Throttle) Succeed(account string) {
	t.mu.Lock()
	delete(t.m, account)
	t.mu.Unlock()
}

// account re-reads the signed-in user's account. It runs on every launch
// (not on page views, which must not touch the store): an account disabled
// or removed since sign-in ends all its portal sessions here, and group
// changes take effect for the next launch.
func (p *Portal) account(s *Session) (directory.User, bool) {
	var u directory.User
	err := p.Store.View(func(t *store.Tx) (err error) { u, err = t.User(s.User); return })
	if err != nil || u.Disabled {
		p.sessions.DeleteUser(s.User)
		return u, false
	}
	if strings.Join(u.Groups, "\x00") != strings.Join(s.Groups, "\x00") {
		p.sessions.Update(s, func(s *Session) { s.Groups = u.Groups })
	}
	return u, true
}
