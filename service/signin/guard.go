// Package signin bounds the work an outsider can make the gateway do by
// signing in. It owns the one path every credential check goes through
// (Guard.Check): per-address and per-account attempt reservations taken
// before the check runs, a gateway-wide limit of checks in flight with a
// short queue, and the signed device cookies that let a browser which has
// signed in before keep signing in while its account is under attack from
// elsewhere. It knows nothing of passwords, directories or pages: callers
// hand it a verify function and an Attempt naming who is trying.
package signin

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

// Throttle parameters: after FreeAttempts failures of a key within Window,
// each further attempt waits for a lock-out that doubles from BaseDelay up
// to MaxDelay, and only one attempt of that key may be checked at a time.
const (
	FreeAttempts = 5
	Window       = 15 * time.Minute
	BaseDelay    = 5 * time.Second
	MaxDelay     = 15 * time.Minute
	// MaxKeys bounds the throttle's memory (about 100 bytes a key); when
	// it is full of live keys, attempts with new keys are refused as busy
	// rather than forgetting the strikes of keys under attack.
	MaxKeys = 100000
)

// Attempt names who is trying to sign in. The keys are opaque to the
// guard; a caller that checks a second factor (a TOTP code) passes the
// same Attempt with its own Account prefix so that codes are throttled
// apart from passwords.
type Attempt struct {
	// IP is the trusted client address.
	IP string
	// Account is a stable key of the account tried, e.g. "local:alice"
	// or "dir:office\alice"; lower-case it before passing.
	Account string
	// Device is the ID from a valid device cookie issued to this very
	// account by an earlier successful sign-in, "" when there is none.
	// A known device is throttled on its own key only (the OWASP
	// device-cookie pattern): failures from elsewhere cannot lock it out.
	Device string
}

func (a Attempt) keys() []string {
	if a.Device != "" {
		return []string{"dev:" + a.Account + "\x00" + a.Device}
	}
	return []string{"ip:" + a.IP, "acct:" + a.Account}
}

// Refusal is the error Check returns when it did not run the check.
type Refusal struct {
	// Reason is "throttled" (too many failures of this address, account
	// or device) or "busy" (the gateway is checking as many sign-ins as
	// it can; nothing about this client).
	Reason string
	// Wait is how long the client should wait before trying again.
	Wait time.Duration
}

func (r *Refusal) Error() string {
	if r.Reason == "busy" {
		return fmt.Sprintf("the gateway is busy: try again in %d s", r.Seconds())
	}
	return fmt.Sprintf("too many failed sign-ins: try again in %d s", r.Seconds())
}

// Seconds is Wait rounded up to whole seconds, at least 1 (Retry-After).
func (r *Refusal) Seconds() int { return max(1, int((r.Wait+time.Second-1)/time.Second)) }

// Options size a Guard; zero fields take the defaults.
type Options struct {
	// InFlight is how many checks may run at once (default: the number of
	// CPUs). Each argon2id check holds 19 MiB, so this bounds the memory
	// sign-ins can use.
	InFlight int
	// Reserved is how many further checks only known devices may run
	// (default InFlight/2, at least 1), so a flood of unknown devices
	// cannot keep a returning user out.
	Reserved int
	// Queue is how many attempts may wait for a check slot (default
	// 4×InFlight); the rest are refused as busy at once.
	Queue int
	// QueueWait is the longest an attempt waits for a slot (default 2 s).
	QueueWait time.Duration
	// FreeAttempts overrides the constant of that name (tests that sign
	// in many times from one address); zero is FreeAttempts.
	FreeAttempts int
	// Now is the clock (tests); nil is time.Now.
	Now func() time.Time
}

// Stats are the guard's counters since start, for the admin API.
type Stats struct {
	// Checks is how many verify functions ran (each one hash or bind).
	Checks uint64 `json:"checks"`
	// InFlight is how many run now; PeakInFlight the most at once.
	InFlight     int64 `json:"inFlight"`
	PeakInFlight int64 `json:"peakInFlight"`
	// Throttled and Busy count refusals by reason.
	Throttled uint64 `json:"throttled"`
	Busy      uint64 `json:"busy"`
	// Keys is how many addresses, accounts and devices are remembered.
	Keys int `json:"keys"`
	// Limit, Reserved and Queue are the sizes in use.
	Limit    int `json:"limit"`
	Reserved int `json:"reserved"`
	Queue    int `json:"queue"`
}

// Guard is the single gate of credential checks. The zero value is not
// usable; use NewGuard. It is safe for concurrent use.
type Guard struct {
	opt     Options
	common  chan struct{} // slots any attempt may take
	known   chan struct{} // extra slots for known devices
	waiting atomic.Int64

	mu        sync.Mutex
	m         map[string]*strikes
	lastPrune time.Time

	checks, throttled, busy atomic.Uint64
	inFlight, peak          atomic.Int64
}

type strikes struct {
	fails   int
	pending int // checks reserved and not yet settled
	last    time.Time
	until   time.Time
}

// NewGuard returns a guard sized by o.
func NewGuard(o Options) *Guard {
	if o.InFlight <= 0 {
		o.InFlight = max(1, runtime.NumCPU())
	}
	if o.Reserved <= 0 {
		o.Reserved = max(1, o.InFlight/2)
	}
	if o.Queue <= 0 {
		o.Queue = 4 * o.InFlight
	}
	if o.QueueWait <= 0 {
		o.QueueWait = 2 * time.Second
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.FreeAttempts <= 0 {
		o.FreeAttempts = FreeAttempts
	}
	return &Guard{opt: o, common: make(chan struct{}, o.InFlight), known: make(chan struct{}, o.Reserved), m: map[string]*strikes{}}
}

// Check is the one way a credential is checked. Every check — a local
// password hash, a directory bind, a TOTP or recovery code — runs as
// verify inside Check, which
//
//  1. reserves one attempt on each of the Attempt's keys before anything
//     costly happens, so N parallel requests get at most the allowed
//     number of checks (the rest: *Refusal "throttled", at once);
//  2. waits for one of the gateway-wide check slots, at most QueueWait
//     and only if the short queue has room (else *Refusal "busy");
//  3. runs verify once and settles the reservation: a failure counts
//     against every key, a success clears the account's (or device's)
//     strikes but not the address's.
//
// verify must do the same work whatever the outcome (run the hash even
// for an unknown user), and return whether the credential is right. A
// non-nil error from Check is always a *Refusal or ctx's error; verify
// did not run then.
func (g *Guard) Check(ctx context.Context, a Attempt, verify func() bool) (bool, error) {
	keys := a.keys()
	if err := g.reserve(keys); err != nil {
		return false, err
	}
	release, err := g.slot(ctx, a.Device != "")
	if err != nil {
		g.settle(keys, a, false, false)
		return false, err
	}
	g.checks.Add(1)
	n := g.inFlight.Add(1)
	for p := g.peak.Load(); n > p && !g.peak.CompareAndSwap(p, n); p = g.peak.Load() {
	}
	ok := verify()
	g.inFlight.Add(-1)
	release()
	g.settle(keys, a, true, ok)
	return ok, nil
}

// reserve takes one pending attempt on every key, or none.
func (g *Guard) reserve(keys []string) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	now := g.opt.Now()
	var wait time.Duration
	for _, k := range keys {
		s, ok := g.m[k]
		if !ok {
			if len(g.m) >= MaxKeys && !g.prune(now) {
				g.busy.Add(1)
				return &Refusal{Reason: "busy", Wait: time.Minute}
			}
			continue
		}
		if s.pending == 0 && now.Sub(s.last) > Window {
			s.fails, s.until = 0, time.Time{}
		}
		if s.fails+s.pending < g.opt.FreeAttempts {
			continue
		}
		switch {
		case s.pending > 0:
			// Over the free attempts one check at a time: wait for it.
			wait = max(wait, time.Second, s.until.Sub(now))
		case now.Before(s.until):
			wait = max(wait, s.until.Sub(now))
		}
	}
	if wait > 0 {
		g.throttled.Add(1)
		return &Refusal{Reason: "throttled", Wait: wait}
	}
	for _, k := range keys {
		s, ok := g.m[k]
		if !ok {
			s = &strikes{}
			g.m[k] = s
		}
		s.pending++
		s.last = now
	}
	return nil
}

// prune forgets keys that carry no lock-out any more; it scans at most
// once a second so that a flood of new keys cannot make each attempt pay
// for a full scan. It reports whether there is room for a new key.
func (g *Guard) prune(now time.Time) bool {
	if now.Sub(g.lastPrune) >= time.Second {
		g.lastPrune = now
		for k, s := range g.m {
			if s.pending == 0 && now.Sub(s.last) > Window || s.pending == 0 && s.fails < g.opt.FreeAttempts && now.Sub(s.last) > time.Minute {
				delete(g.m, k)
			}
		}
	}
	return len(g.m) < MaxKeys
}

// settle ends the reservation: ran reports whether verify ran, ok its
// answer.
func (g *Guard) settle(keys []string, a Attempt, ran, ok bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	now := g.opt.Now()
	for i, k := range keys {
		s := g.m[k]
		if s == nil {
			continue
		}
		s.pending--
		switch {
		case !ran:
		case ok && (a.Device != "" || i == 1):
			// The account's (or device's) strikes end with the right
			// credential; the address's do not: one right password must
			// not reset an address guessing at many accounts.
			delete(g.m, k)
		case !ok:
			s.fails++
			s.last = now
			if over := s.fails - g.opt.FreeAttempts + 1; over > 0 {
				s.until = now.Add(min(BaseDelay<<min(over-1, 20), MaxDelay))
			}
		}
	}
}

// slot waits for a check slot; release gives it back.
func (g *Guard) slot(ctx context.Context, known bool) (release func(), err error) {
	select {
	case g.common <- struct{}{}:
		return func() { <-g.common }, nil
	default:
	}
	if known {
		select {
		case g.known <- struct{}{}:
			return func() { <-g.known }, nil
		default:
		}
	}
	if g.waiting.Add(1) > int64(g.opt.Queue) {
		g.waiting.Add(-1)
		g.busy.Add(1)
		return nil, &Refusal{Reason: "busy", Wait: time.Second}
	}
	defer g.waiting.Add(-1)
	t := time.NewTimer(g.opt.QueueWait)
	defer t.Stop()
	var knownCh chan struct{}
	if known {
		knownCh = g.known
	}
	select {
	case g.common <- struct{}{}:
		return func() { <-g.common }, nil
	case knownCh <- struct{}{}:
		return func() { <-g.known }, nil
	case <-t.C:
		g.busy.Add(1)
		return nil, &Refusal{Reason: "busy", Wait: time.Second}
	case <-ctx.Done():
		return nil, fmt.Errorf("wait for a sign-in slot: %w", ctx.Err())
	}
}

// Stats returns the counters.
func (g *Guard) Stats() Stats {
	g.mu.Lock()
	keys := len(g.m)
	g.mu.Unlock()
	return Stats{Checks: g.checks.Load(), InFlight: g.inFlight.Load(), PeakInFlight: g.peak.Load(),
		Throttled: g.throttled.Load(), Busy: g.busy.Load(), Keys: keys,
		Limit: g.opt.InFlight, Reserved: g.opt.Reserved, Queue: g.opt.Queue}
}

// IsRefusal returns the refusal in err, if it is one.
func IsRefusal(err error) (*Refusal, bool) {
	var r *Refusal
	ok := errors.As(err, &r)
	return r, ok
}
