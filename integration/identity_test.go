package integration

import (
	"encoding/json"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"portico/service/sessions"
)

// closeCode reads ws until it closes and returns the close code.
func closeCode(t *testing.T, ws *websocket.Conn) int {
	t.Helper()
	ws.SetReadDeadline(time.Now().Add(30 * time.Second))
	for {
		if _, _, err := ws.ReadMessage(); err != nil {
			var ce *websocket.CloseError
			if errors.As(err, &ce) {
				return ce.Code
			}
			t.Fatalf("the session's WebSocket ended without a close frame: %v", err)
		}
	}
}

// sshSession opens a browser SSH session over plain HTTPS and waits until
// the gateway announces it (the host accepted the sign-in).
func sshSession(t *testing.T, u *portalUser, id string) *websocket.Conn {
	t.Helper()
	ws := u.relay(t, "ssh", u.ticket(t, id), "")
	ws.SetReadDeadline(time.Now().Add(30 * time.Second))
	for {
		typ, b, err := ws.ReadMessage()
		if err != nil {
			t.Fatalf("SSH session: %v", err)
		}
		var m struct{ Type string }
		if typ == websocket.TextMessage && json.Unmarshal(b, &m) == nil && m.Type == "session" {
			return ws
		}
	}
}

func TestIdentityChangeEndsSignInsAndSessions(t *testing.T) {
	vnc := startVNC(t, "vnc-pass", "#ff0000")
	ssh := startSSH(t)
	alice := map[string]any{"domain": "OFFICE", "displayName": "Alice Example", "groups": []string{"staff"}}
	with := func(k string, v any) map[string]any {
		m := map[string]any{}
		for a, b := range alice {
			m[a] = b
		}
		m[k] = v
		return m
	}
	for _, tc := range []struct {
		name   string
		change func(t *testing.T, p *portico)
		// signedOut: the old cookie is refused; otherwise only the
		// resource is (unassigned).
		signedOut bool
		reason    sessions.Reason
	}{
		{"PasswordReset", func(t *testing.T, p *portico) {
			p.do(t, "POST", "/api/v1/users/alice/password", map[string]string{"password": "Another-Passw0rd-42"}, nil)
		}, true, sessions.ReasonAccountChanged},
		{"Disable", func(t *testing.T, p *portico) { p.do(t, "PUT", "/api/v1/users/alice", with("disabled", true), nil) }, true, sessions.ReasonAccountChanged},
		{"Delete", func(t *testing.T, p *portico) { p.do(t, "DELETE", "/api/v1/users/alice", nil, nil) }, true, sessions.ReasonAccountChanged},
		{"GroupChange", func(t *testing.T, p *portico) { p.do(t, "PUT", "/api/v1/users/alice", with("groups", []string{}), nil) }, true, sessions.ReasonAccountChanged},
		{"Unassign", func(t *testing.T, p *portico) {
			unassign(t, p, "design", "shell")
		}, false, sessions.ReasonAccessRemoved},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := startPortico(t)
			p.seedUser(t)
			p.do(t, "POST", "/api/v1/resources", map[string]any{"id": "design", "name": "Design", "protocol": "vnc", "host": "127.0.0.1", "port": vnc.Port,
				"groups": []string{"staff"}, "credentials": map[string]any{"password": "vnc-pass"}}, nil)
			p.do(t, "POST", "/api/v1/resources", map[string]any{"id": "shell", "name": "Shell", "protocol": "ssh", "host": "127.0.0.1", "port": ssh.Port,
				"groups": []string{"staff"}, "credentials": map[string]any{"username": ssh.User, "password": ssh.Password}}, nil)
			u := signInHTTP(t, p)
			vncWS := u.relay(t, "vnc", u.ticket(t, "design"), "")
			dialRFB(t, vncWS)
			sshWS := sshSession(t, u, "shell")
			waitFor(t, 20*time.Second, "both hosts connected", func() bool { return hostConns(t, vnc.Port) == 1 && hostConns(t, ssh.Port) == 1 })

			tc.change(t, p)
			for name, ws := range map[string]*websocket.Conn{"VNC": vncWS, "SSH": sshWS} {
				if got := closeCode(t, ws); got != tc.reason.Code() {
					t.Fatalf("%s session closed with code %d, want %d (%s)", name, got, tc.reason.Code(), tc.reason)
				}
			}
			waitFor(t, 20*time.Second, "the hosts see their connections close", func() bool { return hostConns(t, vnc.Port) == 0 && hostConns(t, ssh.Port) == 0 })

			resp, err := u.hc.Get(p.URL + "/userportal/api/resources")
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			code, _ := u.post(t, "/userportal/api/launch/design")
			if tc.signedOut {
				if resp.StatusCode != http.StatusUnauthorized || code != http.StatusUnauthorized {
					t.Fatalf("the old cookie still works: resources %d, launch %d", resp.StatusCode, code)
				}
			} else if resp.StatusCode != http.StatusOK || code == http.StatusOK {
				t.Fatalf("after unassigning: resources %d (want 200), launch %d (want a refusal)", resp.StatusCode, code)
			}
			if tc.name == "Disable" {
				// Re-enabling the account does not revive the old cookie.
				p.do(t, "PUT", "/api/v1/users/alice", with("disabled", false), nil)
				if code, _ := u.post(t, "/userportal/api/launch/design"); code != http.StatusUnauthorized {
					t.Fatalf("after re-enabling, the old cookie launches (%d)", code)
				}
			}
		})
	}
}

// unassign takes the resources away from every group (alice's staff).
func unassign(t *testing.T, p *portico, ids ...string) {
	t.Helper()
	for _, id := range ids {
		var res map[string]any
		p.do(t, "GET", "/api/v1/resources/"+id, nil, &res)
		// Secrets stay as stored: the API shows only whether they exist.
		delete(res, "hasPassword")
		delete(res, "hasPrivateKey")
		res["groups"] = []string{}
		p.do(t, "PUT", "/api/v1/resources/"+id, res, nil)
	}
}
