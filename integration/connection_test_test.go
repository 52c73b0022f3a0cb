package integration

import (
	"strings"
	"testing"

	"portico/service/admin"
)

// TestResourceConnectionTest asks the real gateway binary to test
// resources that point at real servers (OpenSSH, TigerVNC,
// freerdp-shadow with NLA), at the wrong server, and at a closed port.
func TestResourceConnectionTest(t *testing.T) {
	ssh := startSSH(t)
	vnc := startVNC(t, "vnc-pass", "#336699")
	rdp := startRDP(t, "#669933")
	closed := freePort(t)
	p := startPortico(t)
	add := func(id, proto string, port int) {
		p.do(t, "POST", "/api/v1/resources", map[string]any{"id": id, "name": id, "protocol": proto, "host": "127.0.0.1", "port": port}, nil)
	}
	add("shell", "ssh", ssh.Port)
	add("desk", "vnc", vnc.Port)
	add("win", "rdp", rdp.Port)
	add("mixed-up", "rdp", vnc.Port)
	add("gone", "vnc", closed)
	cases := []struct {
		id, result, message string
	}{
		{"shell", "reachable", "reachable: SSH-2.0-OpenSSH"},
		{"desk", "reachable", "reachable: RFB 003.008"},
		{"win", "reachable", "reachable: RDP server, security NLA"},
		{"mixed-up", "wrong-protocol", "not an RDP server"},
		{"gone", "refused", "connection refused"},
	}
	for _, c := range cases {
		var got admin.ConnectionTest
		p.do(t, "POST", "/api/v1/resources/"+c.id+"/test", nil, &got)
		if got.Result != c.result || got.Reachable != (c.result == "reachable") || !strings.Contains(got.Message, c.message) {
			t.Errorf("%s: got %+v, want %s with %q", c.id, got, c.result, c.message)
		}
	}
	// The RDP host's answer says whether it asks for NLA (freerdp-shadow
	// with /sec:nla refuses TLS alone) and what that means for the mode.
	var nla admin.ConnectionTest
	p.do(t, "POST", "/api/v1/resources/win/test", nil, &nla)
	if nla.NLA != "required" || !strings.Contains(nla.Message, "users type their credentials") {
		t.Errorf("NLA host: %+v", nla)
	}
	// The same for a resource not saved yet (the GUI's dialog before Save).
	var got admin.ConnectionTest
	p.do(t, "POST", "/api/v1/resources/test", map[string]any{"protocol": "ssh", "host": "127.0.0.1", "port": ssh.Port}, &got)
	if !got.Reachable || !strings.HasPrefix(got.Detail, "SSH-2.0-OpenSSH") {
		t.Errorf("unsaved ssh resource: %+v", got)
	}
}
