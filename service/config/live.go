package config

import (
	"sync"
	"sync/atomic"
)

// Snapshot is the configuration the running gateway works from. It is built
// from the store after every committed change and never modified after
// publication: readers may keep a pointer to it without locking.
type Snapshot struct {
	// Version increases with every publication.
	Version uint64
	// Site is the site defaults.
	Site PortalSettings
	// Gateway is this node's gateway record.
	Gateway Gateway
	// Effective is Resolve(Site, Gateway).
	Effective Effective
	// Resources are all published resources (credentials still sealed).
	Resources []Resource
	// Policies are the client policies in order.
	Policies []ClientPolicy
	// UserEpochs maps each local account (by lower-case name) to
	// its credential generation (directory.User.Epoch): a portal sign-in
	// is valid only while its account is here with the epoch it was made
	// under. Every user change publishes a new snapshot, so a disable,
	// delete or password change takes effect at the next request without
	// reading the store.
	UserEpochs map[string]int64
	// SignIn is how users sign in: directories and the second factor
	// (bind passwords still sealed).
	SignIn SignIn
}

// Resource returns the resource with the given ID.
func (s *Snapshot) Resource(id string) (Resource, bool) {
	for _, r := range s.Resources {
		if r.ID == id {
			return r, true
		}
	}
	return Resource{}, false
}

// Live holds the current Snapshot and tells subscribers about new ones.
// This is how a settings change reaches the portal and relays without a
// restart.
type Live struct {
	cur  atomic.Pointer[Snapshot]
	mu   sync.Mutex
	subs map[chan *Snapshot]struct{}
}

// NewLive starts with the given snapshot.
func NewLive(s *Snapshot) *Live {
	l := &Live{subs: map[chan *Snapshot]struct{}{}}
	l.cur.Store(s)
	return l
}

// Load returns the current snapshot; cheap enough for every request.
func (l *Live) Load() *Snapshot { return l.cur.Load() }

// Publish makes s current (its Version is set here) and notifies
// subscribers. A slow subscriber only misses intermediate snapshots: it
// always gets the latest one.
func (l *Live) Publish(s *Snapshot) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if old := l.cur.Load(); old != nil {
		s.Version = old.Version + 1
	}
	l.cur.Store(s)
	for ch := range l.subs {
		select {
		case <-ch: // drop the stale one
		default:
		}
		ch <- s
	}
}

// Subscribe returns a channel that receives each newly published snapshot
// and a function to stop receiving.
func (l *Live) Subscribe() (<-chan *Snapshot, func()) {
	ch := make(chan *Snapshot, 1)
	l.mu.Lock()
	l.subs[ch] = struct{}{}
	l.mu.Unlock()
	return ch, func() {
		l.mu.Lock()
		delete(l.subs, ch)
		l.mu.Unlock()
	}
}
