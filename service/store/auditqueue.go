package store

import "sync"

// maxAuditBatch bounds one group commit's transaction, so that a burst
// cannot build a transaction whose commit makes its first caller wait for
// thousands of others.
const maxAuditBatch = 1000

// auditQueue is a group commit for AppendAudit: callers that arrive while
// a commit is running wait, and the first of them then commits all of
// them in one transaction — one write and one fsync for the batch instead
// of one each, which is what bbolt's single writer made every portal
// launch queue behind. Unlike bbolt's DB.Batch it adds no delay: a lone
// caller commits at once; batches form only from the callers a running
// commit makes wait.
//
// The leader is always pending[0]: whoever finds no commit running leads
// and commits the batch starting with itself; when it is done it wakes
// the next waiter, if any, to lead the next batch. So every caller waits
// for at most the running commit and then its own.
type auditQueue struct {
	mu      sync.Mutex
	pending []*auditWrite
	leading bool // a caller is committing; invariant: pending non-empty ⇒ leading
}

// auditWrite is one AppendAudit call waiting for its commit.
type auditWrite struct {
	e   Event
	err error
	// wake receives true when this caller is to lead the next batch,
	// false when its event was committed (err says how).
	wake chan bool
}

// append commits e together with whatever other events arrive meanwhile
// and returns once the transaction holding e is committed (or failed).
func (q *auditQueue) append(s *Store, e Event) error {
	w := &auditWrite{e: e, wake: make(chan bool, 1)}
	q.mu.Lock()
	q.pending = append(q.pending, w)
	lead := !q.leading
	q.leading = true
	q.mu.Unlock()
	if !lead && !<-w.wake {
		return w.err
	}

	q.mu.Lock()
	batch := q.pending[:min(len(q.pending), maxAuditBatch)]
	q.pending = q.pending[len(batch):]
	q.mu.Unlock()
	// Every event of a batch shares its fate: an append fails only when
	// the transaction does (disk error, store closed), which would fail
	// each of them alone too.
	err := s.Update(func(t *Tx) error {
		for _, b := range batch {
			if err := t.AppendAudit(b.e); err != nil {
				return err
			}
		}
		return nil
	})
	q.mu.Lock()
	var next *auditWrite
	if len(q.pending) > 0 {
		next = q.pending[0]
	} else {
		q.leading = false
	}
	q.mu.Unlock()
	for _, b := range batch[1:] {
		b.err = err
		b.wake <- false
	}
	if next != nil {
		next.wake <- true
	}
	return err
}
