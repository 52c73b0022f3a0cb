package store

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Event is one audit-log record.
type Event struct {
	// Seq is the record's sequence number, set by AppendAudit.
	Seq uint64 `json:"seq"`
	// Time is when it happened (UTC).
	Time time.Time `json:"time"`
	// Type is a dotted event name, e.g. "signin.ok", "signin.fail",
	// "session.start", "ticket.refused", "config.change".
	Type string `json:"type"`
	// User is the portal user or "admin" for admin API changes.
	User string `json:"user,omitempty"`
	// ClientIP is the trusted client IP.
	ClientIP string `json:"clientIP,omitempty"`
	// ReportedIP is the IP the client's IP detection service reported.
	ReportedIP string `json:"reportedIP,omitempty"`
	// Resource is the resource ID involved, if any.
	Resource string `json:"resource,omitempty"`
	// Detail is a human-readable description.
	Detail string `json:"detail,omitempty"`
	// Count is how many refusals an aggregated record stands for (see
	// AppendRefusal); 0 for a single event.
	Count int `json:"count,omitempty"`
	// Until ends an aggregated record's window, which starts at Time.
	Until time.Time `json:"until,omitzero"`
}

// Audit limits. Security events (sign-ins, launches, admin changes) and
// aggregated refusals are kept apart, each with its own limit, so that
// refusals — which anyone on the network can cause — never push a
// security event out.
const (
	// MaxAuditEvents is how many security events are kept at most.
	MaxAuditEvents = 200000
	// MaxRefusalRecords is how many aggregated refusal records are kept.
	MaxRefusalRecords = 100000
	// DefaultRefusalWindow is the aggregation window of refusals.
	DefaultRefusalWindow = time.Minute
)

// AppendAudit adds an event and returns once it is committed and fsynced.
// Concurrent calls share one transaction (see auditQueue), so a busy
// portal does not pay one fsync per audited request.
func (s *Store) AppendAudit(e Event) error {
	return s.audit.append(s, e)
}

// AppendAudit adds an event within t.
func (t *Tx) AppendAudit(e Event) error {
	b := t.tx.Bucket(bAudit)
	seq, err := b.NextSequence()
	if err != nil {
		return fmt.Errorf("audit sequence: %w", err)
	}
	e.Seq = seq
	if e.Time.IsZero() {
		e.Time = time.Now().UTC()
	}
	if err := t.put(bAudit, binary.BigEndian.AppendUint64(nil, seq), e); err != nil {
		return err
	}
	if seq%1000 == 0 {
		return pruneCount(b, t.maxAudit())
	}
	return nil
}

// pruneCount deletes a bucket's oldest records beyond max. It counts with
// a cursor: Bucket.Stats does not see the transaction's own writes.
func pruneCount(b *bolt.Bucket, max int) error {
	c := b.Cursor()
	over := -max
	for k, _ := c.First(); k != nil; k, _ = c.Next() {
		over++
	}
	for k, _ := c.First(); k != nil && over > 0; k, _ = c.First() {
		if err := c.Delete(); err != nil {
			return fmt.Errorf("prune audit: %w", err)
		}
		over--
	}
	return nil
}

// pruneOlder deletes a bucket's records from before cutoff (records are
// in time order, so it stops at the first newer one).
func pruneOlder(b *bolt.Bucket, cutoff time.Time) error {
	c := b.Cursor()
	for k, v := c.First(); k != nil; k, v = c.First() {
		var e struct {
			Time time.Time `json:"time"`
		}
		if json.Unmarshal(v, &e) == nil && !e.Time.Before(cutoff) {
			return nil
		}
		if err := c.Delete(); err != nil {
			return fmt.Errorf("prune audit: %w", err)
		}
	}
	return nil
}

// AuditFilter selects audit events. Zero fields match everything.
type AuditFilter struct {
	// User matches case-insensitively.
	User string
	// Type matches an exact type or a prefix ending in "." (e.g. "signin.").
	Type string
	// Since and Until bound the time.
	Since, Until time.Time
	// Limit caps the number returned (default 500).
	Limit int
}

// Audit returns matching events, security events and aggregated
// refusals merged, newest first.
func (s *Store) Audit(f AuditFilter) ([]Event, error) {
	if f.Limit <= 0 {
		f.Limit = 500
	}
	out := []Event{}
	err := s.db.View(func(tx *bolt.Tx) error {
		// Both buckets are keyed by the one audit sequence: merge by key.
		var cs []*bolt.Cursor
		var ks, vs [][]byte
		for _, name := range [][]byte{bAudit, bRefusals} {
			if b := tx.Bucket(name); b != nil {
				c := b.Cursor()
				k, v := c.Last()
				cs, ks, vs = append(cs, c), append(ks, k), append(vs, v)
			}
		}
		for len(out) < f.Limit {
			i := -1
			for j := range cs {
				if ks[j] != nil && (i < 0 || bytes.Compare(ks[j], ks[i]) > 0) {
					i = j
				}
			}
			if i < 0 {
				break
			}
			k, v := ks[i], vs[i]
			ks[i], vs[i] = cs[i].Prev()
			var e Event
			if err := json.Unmarshal(v, &e); err != nil {
				return fmt.Errorf("decode audit %x: %w", k, err)
			}
			if !f.Since.IsZero() && e.Time.Before(f.Since) {
				ks[i] = nil // this bucket is done; the other may still have newer ones
				continue
			}
			if f.match(e) {
				out = append(out, e)
			}
		}
		return nil
	})
	if err != nil || s.refusals == nil {
		return out, err
	}
	// Refusals of the open window are not written yet: merge them in by
	// time, so the log is current without a write per refusal.
	pend := s.refusals.pending(f)
	merged := make([]Event, 0, len(out)+len(pend))
	for i, j := 0, 0; (i < len(out) || j < len(pend)) && len(merged) < f.Limit; {
		if j >= len(pend) || i < len(out) && !out[i].Time.Before(pend[j].Time) {
			merged, i = append(merged, out[i]), i+1
		} else {
			merged, j = append(merged, pend[j]), j+1
		}
	}
	return merged, nil
}

func (f AuditFilter) match(e Event) bool {
	if f.User != "" && !strings.EqualFold(f.User, e.User) {
		return false
	}
	if f.Type != "" {
		if strings.HasSuffix(f.Type, ".") {
			if !strings.HasPrefix(e.Type, f.Type) {
				return false
			}
		} else if e.Type != f.Type {
			return false
		}
	}
	if !f.Until.IsZero() && e.Time.After(f.Until) {
		return false
	}
	return true
}

// PutSession stores a portal session record under id (the caller passes a
// hash of the cookie value, never the value itself).
func (s *Store) PutSession(id string, v any) error {
	return s.Update(func(t *Tx) error { return t.put(bSessions, []byte(id), v) })
}

// Session reads a portal session record into v.
func (s *Store) Session(id string, v any) error {
	return s.View(func(t *Tx) error { return t.get(bSessions, []byte(id), v) })
}

// DeleteSession removes a portal session record.
func (s *Store) DeleteSession(id string) error {
	return s.Update(func(t *Tx) error {
		if err := t.del(bSessions, []byte(id)); err != nil && err != ErrNotFound {
			return err
		}
		return nil
	})
}

// DeleteSessionsWhere removes every session record for which drop returns
// true (e.g. expired ones, or all of a disabled user's).
func (s *Store) DeleteSessionsWhere(drop func(id string, raw []byte) bool) (int, error) {
	n := 0
	err := s.db.Update(func(tx *bolt.Tx) error {
		c := tx.Bucket(bSessions).Cursor()
		for k, v := c.First(); k != nil; {
			if drop(string(k), v) {
				if err := c.Delete(); err != nil {
					return err
				}
				n++
				k, v = c.Seek(k)
				continue
			}
			k, v = c.Next()
		}
		return nil
	})
	return n, err
}
