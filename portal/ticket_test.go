package portal

import (
	"errors"
	"testing"
	"time"
)

func TestTicketsSingleUseExpiryAndBinding(t *testing.T) {
	now := time.Unix(1000, 0)
	s := NewTickets()
	s.now = func() time.Time { return now }
	v, err := s.Issue(Ticket{Resource: "ws1", User: "alice", PortalSession: "sessA"}, TicketTTL)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Redeem(v, "sessB"); !errors.Is(err, ErrTicketForeign) {
		t.Fatalf("foreign session: %v", err)
	}
	// A refused redeem still consumes it: no guessing the session afterwards.
	if _, err := s.Redeem(v, "sessA"); !errors.Is(err, ErrTicketUnknown) {
		t.Fatalf("reuse after foreign attempt: %v", err)
	}
	v, _ = s.Issue(Ticket{Resource: "ws1", User: "alice", PortalSession: "sessA"}, TicketTTL)
	got, err := s.Redeem(v, "sessA")
	if err != nil || got.Resource != "ws1" || got.User != "alice" {
		t.Fatalf("redeem: %+v %v", got, err)
	}
	if _, err := s.Redeem(v, "sessA"); !errors.Is(err, ErrTicketUnknown) {
		t.Fatalf("replay: %v", err)
	}
	v, _ = s.Issue(Ticket{Resource: "ws1", PortalSession: "sessA"}, TicketTTL)
	now = now.Add(TicketTTL + time.Second)
	if _, err := s.Redeem(v, "sessA"); !errors.Is(err, ErrTicketExpired) {
		t.Fatalf("expired: %v", err)
	}
	if _, err := s.Redeem("", ""); !errors.Is(err, ErrTicketMissing) {
		t.Fatalf("missing: %v", err)
	}
	// Expired tickets are swept on a later issue.
	for i := 0; i < 5; i++ {
		s.Issue(Ticket{}, time.Second)
	}
	now = now.Add(time.Minute)
	s.Issue(Ticket{}, time.Second)
	if s.Len() != 1 {
		t.Fatalf("expired tickets not swept: %d left", s.Len())
	}
}

func FuzzRedeem(f *testing.F) {
	s := NewTickets()
	good, _ := s.Issue(Ticket{Resource: "r", PortalSession: "p"}, time.Hour)
	f.Add(good, "p")
	f.Add("", "")
	f.Add("AAAA", "p")
	f.Fuzz(func(t *testing.T, value, sess string) {
		tk, err := s.Redeem(value, sess)
		if err == nil && (value != good || sess != "p" || tk.Resource != "r") {
			t.Fatalf("redeemed %q for %q", value, sess)
		}
	})
}
