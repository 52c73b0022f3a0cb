// Package sessions is the registry of live remote sessions (VNC, SSH, RDP,
// native tunnels): who, what, from where, since when, bytes each way,
// refusals, and a way to end one with a Reason. Each Session is the one
// meter its relay and filters report to. The admin API lists and
// disconnects through it, identity changes revoke a user's sessions
// through it, and the gateway ends all of them on shutdown. It does not
// move any bytes itself.
package sessions

import (
	"crypto/rand"
	"encoding/hex"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Info describes a live session. Counters are updated by the relay while
// the session runs.
type Info struct {
	// ID identifies the session in the admin API.
	ID string `json:"id"`
	// User is the portal user.
	User string `json:"user"`
	// Resource is the resource ID.
	Resource string `json:"resource"`
	// Protocol is rdp, vnc or ssh.
	Protocol string `json:"protocol"`
	// Via is empty for browser sessions, "tunnel" for portico-client's
	// tunnel and "rdp-file" for a stock RDP client with an .rdp file.
	Via string `json:"via,omitempty"`
	// ClientIP is the trusted client IP.
	ClientIP string `json:"clientIP"`
	// ReportedIP is what the client's IP detection service reported.
	ReportedIP string `json:"reportedIP,omitempty"`
	// PortalSignIn identifies the portal sign-in the session was opened
	// from; signing out ends the sessions that carry it.
	PortalSignIn string `json:"-"`
	// Started is when the session began.
	Started time.Time `json:"started"`
	// BytesUp is client→host bytes so far.
	BytesUp int64 `json:"bytesUp"`
	// BytesDown is host→client bytes so far.
	BytesDown int64 `json:"bytesDown"`
	// Refused counts clipboard or file transfers the gateway refused in
	// this session because the effective policy does not allow them,
	// whichever filter saw them (RFB, the RDP clipboard channel, SFTP).
	Refused int64 `json:"refused"`
	// FilesUp and FilesDown are the bytes of files the user uploaded into
	// and downloaded from the session (SFTP or the RDP drive).
	FilesUp   int64 `json:"filesUp"`
	FilesDown int64 `json:"filesDown"`
}

// Session is a registered live session and its meter: every relay and
// filter of the session reports bytes and refusals here.
type Session struct {
	info    Info
	up      atomic.Int64
	down    atomic.Int64
	refused atomic.Int64
	filesUp atomic.Int64
	filesDn atomic.Int64
	cancel  func(reason Reason)
}

// Up counts client→host bytes; relays add to it.
func (s *Session) Up() *atomic.Int64 { return &s.up }

// Down counts host→client bytes; relays add to it.
func (s *Session) Down() *atomic.Int64 { return &s.down }

// Refuse counts one transfer refused by policy. Filters call it from
// their relay goroutines; it is safe for concurrent use.
func (s *Session) Refuse() { s.refused.Add(1) }

// Refused is how many transfers were refused so far.
func (s *Session) Refused() int64 { return s.refused.Load() }

// Info returns the session's description with its current counters.
func (s *Session) Info() Info {
	i := s.info
	i.BytesUp, i.BytesDown, i.Refused = s.up.Load(), s.down.Load(), s.refused.Load()
	i.FilesUp, i.FilesDown = s.filesUp.Load(), s.filesDn.Load()
	return i
}

// FilesUp counts bytes of files uploaded into the session.
func (s *Session) FilesUp() *atomic.Int64 { return &s.filesUp }

// FilesDown counts bytes of files downloaded from the session.
func (s *Session) FilesDown() *atomic.Int64 { return &s.filesDn }

// ID returns the session's ID.
func (s *Session) ID() string { return s.info.ID }

// Registry holds the live sessions and the users whose sign-ins were
// revoked.
type Registry struct {
	mu   sync.Mutex
	live map[string]*Session
	// revoked maps a user (lower case) to when their identity last
	// changed: portal sign-ins made before that are no longer valid.
	revoked map[string]time.Time
	// onRevoke are called with the user on each Revoke (the portal drops
	// the user's sign-ins).
	onRevoke []func(user string)
}

// NewRegistry returns an empty registry.
func NewRegistry() *Registry {
	return &Registry{live: map[string]*Session{}, revoked: map[string]time.Time{}}
}

// Add registers a session. cancel must end it (closing its connections)
// and may be called more than once. The returned remove function must be
// called when the session ends.
func (r *Registry) Add(info Info, cancel func(reason Reason)) (*Session, func()) {
	var b [8]byte
	rand.Read(b[:])
	info.ID = hex.EncodeToString(b[:])
	if info.Started.IsZero() {
		info.Started = time.Now().UTC()
	}
	s := &Session{info: info, cancel: cancel}
	r.mu.Lock()
	r.live[info.ID] = s
	r.mu.Unlock()
	return s, func() {
		r.mu.Lock()
		delete(r.live, info.ID)
		r.mu.Unlock()
	}
}

// List returns the live sessions, oldest first, with current counters.
func (r *Registry) List() []Info {
	r.mu.Lock()
	out := make([]Info, 0, len(r.live))
	for _, s := range r.live {
		out = append(out, s.Info())
	}
	r.mu.Unlock()
	sort.Slice(out, func(a, b int) bool { return out[a].Started.Before(out[b].Started) })
	return out
}

// Count returns the number of live sessions.
func (r *Registry) Count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.live)
}

// Disconnect ends one session; false if there is no such session.
func (r *Registry) Disconnect(id string, reason Reason) bool {
	r.mu.Lock()
	s, ok := r.live[id]
	r.mu.Unlock()
	if ok {
		s.cancel(reason)
	}
	return ok
}

// DisconnectWhere ends every session for which match returns true and
// returns how many it ended (e.g. all of a disabled user's sessions).
func (r *Registry) DisconnectWhere(match func(Info) bool, reason Reason) int {
	r.mu.Lock()
	var hit []*Session
	for _, s := range r.live {
		if match(s.info) {
			hit = append(hit, s)
		}
	}
	r.mu.Unlock()
	for _, s := range hit {
		s.cancel(reason)
	}
	return len(hit)
}

// CountWhere is how many live sessions match: what an action that would
// end them (sign-out, disabling an account, deleting a resource) closes.
func (r *Registry) CountWhere(match func(Info) bool) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, s := range r.live {
		if match(s.info) {
			n++
		}
	}
	return n
}

// Revoke ends everything a user is signed in with after a change to
// their identity (disabled, removed, password reset, groups changed):
// portal sign-ins made until now stop being valid (RevokedSince), the
// OnRevoke hooks run, and the user's live sessions end with reason. It
// returns how many live sessions it ended.
func (r *Registry) Revoke(user string, reason Reason) int {
	key := strings.ToLower(user)
	r.mu.Lock()
	r.revoked[key] = time.Now()
	hooks := append([]func(string){}, r.onRevoke...)
	r.mu.Unlock()
	for _, h := range hooks {
		h(user)
	}
	return r.DisconnectWhere(func(i Info) bool { return strings.EqualFold(i.User, user) }, reason)
}

// RevokedSince reports whether the user's identity changed at or after t
// (a sign-in made at t is no longer valid). The portal asks it on every
// request, so it is a map look-up.
func (r *Registry) RevokedSince(user string, t time.Time) bool {
	r.mu.Lock()
	at, ok := r.revoked[strings.ToLower(user)]
	r.mu.Unlock()
	return ok && !t.After(at)
}

// OnRevoke adds a hook Revoke calls with the user before it ends their
// live sessions.
func (r *Registry) OnRevoke(fn func(user string)) {
	r.mu.Lock()
	r.onRevoke = append(r.onRevoke, fn)
	r.mu.Unlock()
}
