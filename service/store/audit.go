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
}

// MaxAuditEvents is how many audit records are kept; older ones are pruned.
const MaxAuditEvents = 200000

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
	if seq%1000 == 0 && seq > MaxAuditEvents {
		return pruneAudit(b, seq-MaxAuditEvents)
	}
	return nil
}

func pruneAudit(b *bolt.Bucket, below uint64) error {
	limit := binary.BigEndian.AppendUint64(nil, below)
	c := b.Cursor()
	for k, _ := c.First(); k != nil && bytes.Compare(k, limit) < 0; k, _ = c.First() {
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

// Audit returns matching events, newest first.
func (s *Store) Audit(f AuditFilter) ([]Event, error) {
	if f.Limit <= 0 {
		f.Limit = 500
	}
	out := []Event{}
	err := s.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bAudit).Cursor()
		for k, v := c.Last(); k != nil && len(out) < f.Limit; k, v = c.Prev() {
			var e Event
			if err := json.Unmarshal(v, &e); err != nil {
				return fmt.Errorf("decode audit %x: %w", k, err)
			}
			if !f.Since.IsZero() && e.Time.Before(f.Since) {
				break
			}
			if f.match(e) {
				out = append(out, e)
			}
		}
		return nil
	})
	return out, err
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
