// Package sessions is the registry of live remote sessions (VNC, SSH, RDP,
// native tunnels): who, what, from where, since when, bytes each way, and a
// way to end one. The admin API lists and disconnects through it, and the
// gateway ends all of them on shutdown. It does not move any bytes itself.
package sessions

import (
	"crypto/rand"
	"encoding/hex"
	"sort"
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
	// Started is when the session began.
	Started time.Time `json:"started"`
	// BytesUp is client→host bytes so far.
	BytesUp int64 `json:"bytesUp"`
	// BytesDown is host→client bytes so far.
	BytesDown int64 `json:"bytesDown"`
	// Blocked counts clipboard or file transfers the gateway refused in
	// this session because the effective policy does not allow them.
	Blocked int64 `json:"blocked"`
	// FilesUp and FilesDown are the bytes of files the user uploaded into
	// and downloaded from the session (SFTP or the RDP drive).
	FilesUp   int64 `json:"filesUp"`
	FilesDown int64 `json:"filesDown"`
}

// Session is a registered live session.
type Session struct {
	info    Info
	up      atomic.Int64
	down    atomic.Int64
	blocked atomic.Int64
	filesUp atomic.Int64
	filesDn atomic.Int64
	cancel  func(reason string)
}

// Up counts client→host bytes; relays add to it.
func (s *Session) Up() *atomic.Int64 { return &s.up }

// Down counts host→client bytes; relays add to it.
func (s *Session) Down() *atomic.Int64 { return &s.down }

// Blocked counts transfers refused by policy; relays add to it.
func (s *Session) Blocked() *atomic.Int64 { return &s.blocked }

// FilesUp counts bytes of files uploaded into the session.
func (s *Session) FilesUp() *atomic.Int64 { return &s.filesUp }

// FilesDown counts bytes of files downloaded from the session.
func (s *Session) FilesDown() *atomic.Int64 { return &s.filesDn }

// ID returns the session's ID.
func (s *Session) ID() string { return s.info.ID }

// Registry holds the live sessions.
type Registry struct {
	mu   sync.Mutex
	live map[string]*Session
}

// NewRegistry returns an empty registry.
func NewRegistry() *Registry { return &Registry{live: map[string]*Session{}} }

// Add registers a session. cancel must end it (closing its connections)
// and may be called more than once. The returned remove function must be
// called when the session ends.
func (r *Registry) Add(info Info, cancel func(reason string)) (*Session, func()) {
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
		i := s.info
		i.BytesUp, i.BytesDown, i.Blocked = s.up.Load(), s.down.Load(), s.blocked.Load()
		i.FilesUp, i.FilesDown = s.filesUp.Load(), s.filesDn.Load()
		out = append(out, i)
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
func (r *Registry) Disconnect(id, reason string) bool {
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
func (r *Registry) DisconnectWhere(match func(Info) bool, reason string) int {
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
