package relay

import (
	"bytes"
	"errors"
	"net"
	"strings"
	"sync"
	"testing"
)

// recordConn records each Write it is given; after failAfter writes it
// fails them.
type recordConn struct {
	net.Conn
	mu        sync.Mutex
	writes    []string
	failAfter int
}

var errBroken = errors.New("broken pipe")

func (c *recordConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.failAfter > 0 && len(c.writes) >= c.failAfter {
		return 0, errBroken
	}
	c.writes = append(c.writes, string(p))
	return len(p), nil
}

func (c *recordConn) got() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.writes...)
}

func TestBatchConnGathersWhileHeld(t *testing.T) {
	rc := &recordConn{}
	bc := NewBatchConn(rc)
	if _, err := bc.Write([]byte("direct")); err != nil {
		t.Fatal(err)
	}
	bc.Hold()
	for _, s := range []string{"rec1", "rec2", "rec3"} {
		if n, err := bc.Write([]byte(s)); err != nil || n != len(s) {
			t.Fatalf("held write %q: %d, %v", s, n, err)
		}
	}
	// A write from another goroutine meanwhile (a ping) joins the batch.
	done := make(chan struct{})
	go func() {
		defer close(done)
		bc.Write([]byte("ping"))
	}()
	<-done
	if got := rc.got(); len(got) != 1 {
		t.Fatalf("writes reached the connection before Release: %q", got)
	}
	bc.Hold() // nested: only the outer Release sends
	bc.Write([]byte("rec4"))
	if err := bc.Release(); err != nil {
		t.Fatal(err)
	}
	if got := rc.got(); len(got) != 1 {
		t.Fatalf("inner Release sent: %q", got)
	}
	if err := bc.Release(); err != nil {
		t.Fatal(err)
	}
	want := []string{"direct", "rec1rec2rec3pingrec4"}
	if got := rc.got(); strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("writes %q, want %q", got, want)
	}
	bc.Write([]byte("after"))
	if got := rc.got(); len(got) != 3 || got[2] != "after" {
		t.Fatalf("write after Release not sent straight: %q", got)
	}
}

// TestBatchConnOverflow: more than a batch's room is sent in order, in
// batch-sized writes at most, with nothing lost.
func TestBatchConnOverflow(t *testing.T) {
	rc := &recordConn{}
	bc := NewBatchConn(rc)
	var want bytes.Buffer
	bc.Hold()
	for i := range 5 {
		p := bytes.Repeat([]byte{byte('a' + i)}, 30<<10)
		want.Write(p)
		bc.Write(p)
	}
	big := bytes.Repeat([]byte{'z'}, 2*batchSize)
	want.Write(big)
	bc.Write(big)
	bc.Write([]byte("tail"))
	want.WriteString("tail")
	if err := bc.Release(); err != nil {
		t.Fatal(err)
	}
	got := rc.got()
	if s := strings.Join(got, ""); s != want.String() {
		t.Fatalf("bytes out of order or lost: %d bytes, want %d", len(s), want.Len())
	}
	for i, w := range got {
		if len(w) > batchSize && w != string(big) {
			t.Fatalf("write %d is %d bytes, above the batch size", i, len(w))
		}
	}
	if len(got) >= 7 {
		t.Fatalf("%d writes for 7 held writes: nothing was gathered", len(got))
	}
}

// TestBatchConnError: a gathered write that fails is reported by Release
// and by every write after it.
func TestBatchConnError(t *testing.T) {
	rc := &recordConn{failAfter: 1}
	bc := NewBatchConn(rc)
	bc.Write([]byte("ok"))
	bc.Hold()
	if _, err := bc.Write([]byte("lost")); err != nil {
		t.Fatalf("held write: %v", err)
	}
	if err := bc.Release(); !errors.Is(err, errBroken) {
		t.Fatalf("Release: %v, want the write's error", err)
	}
	if _, err := bc.Write([]byte("more")); !errors.Is(err, errBroken) {
		t.Fatalf("write after a failed batch: %v", err)
	}
}
