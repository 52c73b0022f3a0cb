package sessions

import (
	"testing"
	"time"
)

func TestRegistry(t *testing.T) {
	r := NewRegistry()
	var ended []string
	a, removeA := r.Add(Info{User: "alice", Protocol: "vnc"}, func(reason Reason) { ended = append(ended, "a:"+string(reason)) })
	_, removeB := r.Add(Info{User: "bob", Protocol: "ssh"}, func(reason Reason) { ended = append(ended, "b:"+string(reason)) })
	a.Up().Add(10)
	a.Down().Add(20)
	if r.Count() != 2 {
		t.Fatalf("count %d", r.Count())
	}
	for _, i := range r.List() {
		if i.User == "alice" && (i.BytesUp != 10 || i.BytesDown != 20) {
			t.Fatalf("counters %+v", i)
		}
	}
	if !r.Disconnect(a.ID(), "admin") || len(ended) != 1 || ended[0] != "a:admin" {
		t.Fatalf("disconnect: %v", ended)
	}
	if r.Disconnect("nope", "x") {
		t.Fatal("disconnected a missing session")
	}
	if n := r.DisconnectWhere(func(i Info) bool { return i.User == "bob" }, "disabled"); n != 1 {
		t.Fatalf("DisconnectWhere %d", n)
	}
	removeA()
	removeB()
	if r.Count() != 0 {
		t.Fatal("sessions not removed")
	}
}

func TestRegistryRevoke(t *testing.T) {
	r := NewRegistry()
	var hooked []string
	r.OnRevoke(func(u string) { hooked = append(hooked, u) })
	var ended []Reason
	s, remove := r.Add(Info{User: "Alice", Resource: "x"}, func(reason Reason) { ended = append(ended, reason) })
	defer remove()
	before := time.Now()
	if r.RevokedSince("alice", before) {
		t.Fatal("revoked before any change")
	}
	s.Refuse()
	if got := r.List()[0].Refused; got != 1 {
		t.Fatalf("refused %d", got)
	}
	if n := r.CountWhere(func(i Info) bool { return i.Resource == "x" }); n != 1 {
		t.Fatalf("count %d", n)
	}
	if n := r.Revoke("alice", ReasonAccountChanged); n != 1 || len(ended) != 1 || ended[0] != ReasonAccountChanged {
		t.Fatalf("revoke ended %d: %v", n, ended)
	}
	if len(hooked) != 1 || !r.RevokedSince("ALICE", before) {
		t.Fatalf("hooks %v, revoked since %v", hooked, r.RevokedSince("ALICE", before))
	}
	if r.RevokedSince("alice", time.Now().Add(time.Second)) {
		t.Fatal("a sign-in after the change is revoked too")
	}
}

func TestReasonCodes(t *testing.T) {
	seen := map[int]bool{}
	for _, r := range Reasons {
		c := r.Code()
		if c < 4000 || c > 4999 || seen[c] {
			t.Fatalf("code %d of %s", c, r)
		}
		seen[c] = true
		if back, ok := ReasonOf(c); !ok || back != r {
			t.Fatalf("ReasonOf(%d) = %s", c, back)
		}
	}
}
