package detect

import (
	"errors"
	"strings"
	"testing"
	"time"
)

// clock is a settable time source for expiry tests.
type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func newTestNonces(max int) (*Nonces, *clock) {
	c := &clock{t: time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)}
	n := NewNonces(max)
	n.now = c.now
	return n, c
}

func TestNonceLifecycle(t *testing.T) {
	n, _ := newTestNonces(0)
	nonce, err := n.Issue("sess-a", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if len(nonce) != NonceLen || !ValidNonce(nonce) || strings.ToLower(nonce) != nonce {
		t.Fatalf("nonce %q is not a lower-case DNS label of %d characters", nonce, NonceLen)
	}
	if r, err := n.Check(nonce, "sess-a"); err != nil || r.Detected {
		t.Fatalf("before any probe: %+v, %v", r, err)
	}
	if _, err := n.Check(nonce, "sess-b"); !errors.Is(err, ErrUnknown) {
		t.Fatalf("another session's check: %v, want ErrUnknown", err)
	}
	// DNS may change the case of the name on the way.
	if !n.Report(strings.ToUpper(nonce), ViaDNS) || !n.Report(nonce, ViaHTTP) {
		t.Fatal("report of an outstanding nonce refused")
	}
	r, err := n.Check(nonce, "sess-a")
	if err != nil || !r.Detected || r.Via != ViaHTTP|ViaDNS || r.Via.String() != "http+dns" {
		t.Fatalf("after probes: %+v, %v", r, err)
	}
	if _, err := n.Check(nonce, "sess-a"); !errors.Is(err, ErrUnknown) {
		t.Fatalf("second check of a consumed nonce: %v, want ErrUnknown", err)
	}
	if n.Report(nonce, ViaHTTP) {
		t.Fatal("a consumed nonce was accepted again")
	}
}

func TestNonceExpiry(t *testing.T) {
	n, c := newTestNonces(0)
	nonce, _ := n.Issue("s", 20*time.Second)
	c.t = c.t.Add(21 * time.Second)
	if n.Report(nonce, ViaDNS) {
		t.Fatal("an expired nonce was accepted")
	}
	if _, err := n.Check(nonce, "s"); !errors.Is(err, ErrExpired) {
		t.Fatalf("check after the timeout: %v, want ErrExpired", err)
	}
	if n.Len() != 0 {
		t.Fatalf("expired nonce kept: %d", n.Len())
	}
}

func TestNonceOnePerSessionAndBound(t *testing.T) {
	n, c := newTestNonces(2)
	first, _ := n.Issue("s1", time.Minute)
	second, _ := n.Issue("s1", time.Minute)
	if n.Report(first, ViaHTTP) {
		t.Fatal("a session's earlier nonce still counts after it asked again")
	}
	if !n.Report(second, ViaHTTP) {
		t.Fatal("the session's current nonce was refused")
	}
	if _, err := n.Issue("s2", time.Minute); err != nil {
		t.Fatal(err)
	}
	if _, err := n.Issue("s3", time.Minute); !errors.Is(err, ErrFull) {
		t.Fatalf("third nonce in a store of 2: %v, want ErrFull", err)
	}
	c.t = c.t.Add(2 * time.Minute)
	if _, err := n.Issue("s3", time.Minute); err != nil {
		t.Fatalf("expired nonces must make room: %v", err)
	}
	if n.Len() != 1 {
		t.Fatalf("store holds %d nonces, want 1", n.Len())
	}
}

func TestValidNonce(t *testing.T) {
	for s, want := range map[string]bool{
		strings.Repeat("a", NonceLen):            true,
		strings.Repeat("A7", NonceLen/2):         true,
		strings.Repeat("a", NonceLen-1):          false,
		strings.Repeat("a", NonceLen-1) + "1":    false,
		strings.Repeat("a", NonceLen-1) + "-":    false,
		strings.Repeat("a", NonceLen-1) + "{":    false,
		strings.Repeat("a", NonceLen-1) + "\x00": false,
	} {
		if got := ValidNonce(s); got != want {
			t.Errorf("ValidNonce(%q) = %v, want %v", s, got, want)
		}
	}
}
