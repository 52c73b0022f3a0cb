package store

import (
	"encoding/binary"
	"fmt"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"
)

// maxRefusalKeys bounds the aggregator's memory between flushes: beyond
// it, further sources of a reason share one record ("many addresses").
const maxRefusalKeys = 10000

// AppendRefusal records a refusal that anyone on the network can cause
// at will (a throttled or busy sign-in, a refused form). It never writes
// at once: refusals of one source and reason within the store's refusal
// window (a minute) become one record with Count and the window's end in
// Until, written when the window closes, into a bucket of their own with
// its own limit — so a flood of refusals can neither make the store
// write per request nor push security events out of the log.
func (s *Store) AppendRefusal(e Event) {
	s.refusals.add(e)
}

// SetAuditRetention sets how many days audit records are kept (both
// security events and refusals); 0 keeps them until the count limits
// prune them. The gateway calls it with the live setting.
func (s *Store) SetAuditRetention(days int) { s.refusals.retention.Store(int64(days)) }

// FlushRefusals writes the refusals aggregated so far (the gateway's
// shutdown and tests).
func (s *Store) FlushRefusals() error { return s.refusals.flush() }

type refusalKey struct{ typ, ip, reason string }

// refusals aggregates AppendRefusal calls of one window.
type refusals struct {
	s         *Store
	window    time.Duration
	retention atomic.Int64 // days; 0 = none

	mu    sync.Mutex
	start time.Time
	m     map[refusalKey]*Event

	flushMu   sync.Mutex // one flush at a time
	lastPrune time.Time

	once sync.Once
	quit chan struct{}
	done chan struct{}
}

func startRefusals(s *Store) *refusals {
	r := &refusals{s: s, window: s.opt.RefusalWindow, m: map[refusalKey]*Event{}, start: time.Now().UTC(),
		quit: make(chan struct{}), done: make(chan struct{})}
	if r.window <= 0 {
		r.window = DefaultRefusalWindow
	}
	go r.run()
	return r
}

func (r *refusals) run() {
	defer close(r.done)
	t := time.NewTicker(r.window)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			// A failed flush (disk full) loses at most this window's
			// counts; the next window tries again.
			r.flush()
		case <-r.quit:
			r.flush()
			return
		}
	}
}

func (r *refusals) stop() {
	r.once.Do(func() { close(r.quit); <-r.done })
}

func (r *refusals) add(e Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(e.Detail) > 200 {
		e.Detail = e.Detail[:200]
	}
	if e.Time.IsZero() {
		e.Time = time.Now().UTC()
	}
	k := refusalKey{e.Type, e.ClientIP, e.Detail}
	if _, ok := r.m[k]; !ok && len(r.m) >= maxRefusalKeys {
		k.ip = "many addresses"
		e.ClientIP, e.User = k.ip, ""
	}
	if a, ok := r.m[k]; ok {
		a.Count++
		if a.User != e.User {
			a.User = "" // several accounts: the record names none
		}
		return
	}
	e.Count = 1
	r.m[k] = &e
}

// pending returns copies of the aggregates not yet written that match f,
// newest first; their Until is zero (the window is still open).
func (r *refusals) pending(f AuditFilter) []Event {
	r.mu.Lock()
	out := []Event{}
	for _, e := range r.m {
		if (f.Since.IsZero() || !e.Time.Before(f.Since)) && f.match(*e) {
			c := *e
			c.Detail = fmt.Sprintf("%s (%d since %s UTC, aggregating)", c.Detail, c.Count, r.start.Format("15:04:05"))
			out = append(out, c)
		}
	}
	r.mu.Unlock()
	sort.Slice(out, func(i, j int) bool { return out[i].Time.After(out[j].Time) })
	return out
}

// flush writes one record per source and reason of the window that ends
// now, then prunes refusal records beyond their limit and, at most once
// an hour, records of both kinds older than the retention.
func (r *refusals) flush() error {
	r.flushMu.Lock()
	defer r.flushMu.Unlock()
	r.mu.Lock()
	batch, start := r.m, r.start
	now := time.Now().UTC()
	r.m, r.start = map[refusalKey]*Event{}, now
	r.mu.Unlock()
	days := r.retention.Load()
	prune := days > 0 && now.Sub(r.lastPrune) >= time.Hour
	if len(batch) == 0 && !prune {
		return nil
	}
	err := r.s.db.Update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists(bRefusals)
		if err != nil {
			return fmt.Errorf("refusals bucket: %w", err)
		}
		seqs := tx.Bucket(bAudit)
		for _, e := range batch {
			seq, err := seqs.NextSequence()
			if err != nil {
				return fmt.Errorf("audit sequence: %w", err)
			}
			e.Seq, e.Until = seq, now
			e.Detail = fmt.Sprintf("%s (%d between %s and %s UTC, aggregated)", e.Detail, e.Count, start.Format("15:04:05"), now.Format("15:04:05"))
			if err := (&Tx{tx: tx}).put(bRefusals, binary.BigEndian.AppendUint64(nil, seq), e); err != nil {
				return err
			}
		}
		max := r.s.opt.MaxRefusalRecords
		if max <= 0 {
			max = MaxRefusalRecords
		}
		if err := pruneCount(b, max); err != nil {
			return err
		}
		if prune {
			cutoff := now.Add(-time.Duration(days) * 24 * time.Hour)
			if err := pruneOlder(b, cutoff); err != nil {
				return err
			}
			if err := pruneOlder(seqs, cutoff); err != nil {
				return err
			}
		}
		return nil
	})
	if err == nil && prune {
		r.lastPrune = now
	}
	if err != nil {
		return fmt.Errorf("write aggregated refusals: %w", err)
	}
	return nil
}
