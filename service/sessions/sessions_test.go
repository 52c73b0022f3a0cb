package sessions

import "testing"

func TestRegistry(t *testing.T) {
	r := NewRegistry()
	var ended []string
	a, removeA := r.Add(Info{User: "alice", Protocol: "vnc"}, func(reason string) { ended = append(ended, "a:"+reason) })
	_, removeB := r.Add(Info{User: "bob", Protocol: "ssh"}, func(reason string) { ended = append(ended, "b:"+reason) })
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
