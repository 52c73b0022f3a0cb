package store

import (
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// TestAuditConcurrentAppendsSurviveReopen: many callers at once (the
// portal under load) each get their event committed exactly once, with
// distinct sequence numbers, and all of it is in the file after reopening.
func TestAuditConcurrentAppendsSurviveReopen(t *testing.T) {
	const writers, each = 64, 20
	dir := t.TempDir()
	s, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, writers*each)
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				if err := s.AppendAudit(Event{Type: "launch", User: "alice", Detail: fmt.Sprintf("w%d-%d", w, i)}); err != nil {
					errs <- err
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("append: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s = openT(t, dir)
	events, err := s.Audit(AuditFilter{Type: "launch", Limit: 10 * writers * each})
	if err != nil {
		t.Fatal(err)
	}
	seen, seqs := map[string]int{}, map[uint64]bool{}
	for _, e := range events {
		seen[e.Detail]++
		if seqs[e.Seq] {
			t.Errorf("sequence number %d used twice", e.Seq)
		}
		seqs[e.Seq] = true
	}
	for w := range writers {
		for i := range each {
			if d := fmt.Sprintf("w%d-%d", w, i); seen[d] != 1 {
				t.Errorf("event %s stored %d times after reopening, want once", d, seen[d])
			}
		}
	}
	if len(events) != writers*each {
		t.Errorf("%d launch events after reopening, want %d", len(events), writers*each)
	}
}

// TestAuditCallersWaitingShareOneCommit pins down the group commit: while
// bbolt's writer is busy, the appends that arrive wait and are then
// committed together — one transaction, not one each. The writer is held
// by a test transaction so that the batch's make-up is certain.
func TestAuditCallersWaitingShareOneCommit(t *testing.T) {
	const waiting = 50
	s := openT(t, t.TempDir())
	txid := func() int {
		var id int
		s.db.View(func(tx *bolt.Tx) error { id = tx.ID(); return nil })
		return id
	}
	before := txid()

	holding, release := make(chan struct{}), make(chan struct{})
	unblock := sync.OnceFunc(func() { close(release) })
	t.Cleanup(unblock) // before the store closes, should the test fail early
	held := make(chan error, 1)
	go func() {
		held <- s.Update(func(*Tx) error { close(holding); <-release; return nil })
	}()
	<-holding
	results := make(chan error, waiting+1)
	// The first append leads: it takes the (one-event) batch and blocks
	// on the busy writer.
	go func() { results <- s.AppendAudit(Event{Type: "launch", Detail: "leader"}) }()
	waitQueue(t, &s.audit, func(q *auditQueue) bool { return q.leading && len(q.pending) == 0 })
	for i := range waiting {
		go func() { results <- s.AppendAudit(Event{Type: "launch", Detail: fmt.Sprint(i)}) }()
	}
	waitQueue(t, &s.audit, func(q *auditQueue) bool { return len(q.pending) == waiting })
	unblock()
	if err := <-held; err != nil {
		t.Fatal(err)
	}
	for range waiting + 1 {
		if err := <-results; err != nil {
			t.Fatalf("append: %v", err)
		}
	}
	// The holder's transaction, the leader's, and one for all the others.
	if got := txid() - before; got != 3 {
		t.Errorf("%d write transactions for 1 holder and %d appends, want 3 (holder, leader, one batch)", got, waiting+1)
	}
	events, err := s.Audit(AuditFilter{Type: "launch"})
	if err != nil {
		t.Fatal(err)
	}
	if len(events) != waiting+1 {
		t.Errorf("%d events stored, want %d", len(events), waiting+1)
	}
}

// waitQueue waits until the queue's state satisfies ok; the deadline is
// only against a hang.
func waitQueue(t *testing.T, q *auditQueue, ok func(*auditQueue) bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		q.mu.Lock()
		done := ok(q)
		q.mu.Unlock()
		if done {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("the audit queue never reached the expected state")
		}
		time.Sleep(time.Millisecond)
	}
}

// TestKillDuringAuditAppends kills a process appending audit events from
// many goroutines at once: every append that returned before the kill is in
// the file — a group commit acknowledges nothing before its fsync.
func TestKillDuringAuditAppends(t *testing.T) {
	if dir := os.Getenv("PORTICO_AUDIT_WRITER"); dir != "" {
		s, err := Open(dir, Options{})
		if err != nil {
			fmt.Println("error", err)
			os.Exit(1)
		}
		var mu sync.Mutex
		var wg sync.WaitGroup
		for w := range 16 {
			wg.Go(func() {
				for i := 0; ; i++ {
					d := fmt.Sprintf("w%d-%d", w, i)
					err := s.AppendAudit(Event{Type: "launch", Detail: d})
					mu.Lock()
					if err != nil {
						fmt.Println("error", err)
						os.Exit(1)
					}
					fmt.Println("ack", d)
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		os.Exit(0)
	}
	dir, acked := killWriterAfter(t, "TestKillDuringAuditAppends", "PORTICO_AUDIT_WRITER", 500)
	s := openT(t, dir)
	events, err := s.Audit(AuditFilter{Type: "launch", Limit: MaxAuditEvents})
	if err != nil {
		t.Fatal(err)
	}
	stored := map[string]bool{}
	for _, e := range events {
		stored[e.Detail] = true
	}
	for _, d := range acked {
		if !stored[d] {
			t.Errorf("acknowledged audit event %s lost", d)
		}
	}
}
