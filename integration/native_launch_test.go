package integration

import (
	"bytes"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"portico/service/config"
	"portico/service/native"
)

// clientBinary is portico-client, built once per test run.
func clientBinary(t *testing.T) string { return command(t, "client", "portico-client") }

// enableNative turns on native launches and the alternate port, and waits
// until the gateway listens there.
func enableNative(t *testing.T, p *portico) int {
	t.Helper()
	alt := freePort(t)
	p.editSite(t, func(s *config.PortalSettings) {
		s.Client.LaunchMethod = config.LaunchNativeWithFallback
		s.NLB.AlternatePortEnabled, s.NLB.AlternatePort = true, alt
	})
	waitPort(t, alt, "the alternate port listener", &bytes.Buffer{})
	return alt
}

// runClient runs portico-client on a launch URL with the viewer overridden.
func runClient(t *testing.T, launch, viewer string, env ...string) (string, error) {
	t.Helper()
	cmd := exec.CommandContext(ctxT(t, 90*time.Second), clientBinary(t), launch)
	cmd.Env = append(append(os.Environ(), "PORTICO_VIEWER="+viewer), env...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func TestNativeLaunchSSHThroughTheAlternatePort(t *testing.T) {
	need(t, "ssh", "openssh-client")
	srv := startSSH(t)
	p := startPortico(t)
	p.seedUser(t)
	p.do(t, "POST", "/api/v1/resources", map[string]any{"id": "shell", "name": "shell", "protocol": "ssh", "host": "127.0.0.1", "port": srv.Port, "groups": []string{"staff"},
		"credentials": map[string]any{"username": srv.User}}, nil)
	alt := enableNative(t, p)
	u := signInHTTP(t, p)

	// A key only this test authorises, so ssh runs without a password.
	dir := t.TempDir()
	key := filepath.Join(dir, "id")
	if out, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", key).CombinedOutput(); err != nil {
		t.Fatalf("ssh-keygen: %v %s", err, out)
	}
	pub, _ := os.ReadFile(key + ".pub")
	sshDir := filepath.Join(srv.Home, ".ssh")
	os.MkdirAll(sshDir, 0o700)
	ak, err := os.OpenFile(filepath.Join(sshDir, "authorized_keys"), os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	ak.Write(pub)
	ak.Close()
	exec.Command("chown", "-R", srv.User, sshDir).Run()

	mark := fmt.Sprintf("native-%d", time.Now().UnixNano())
	proof := filepath.Join(srv.Home, mark)
	release := proof + ".release"
	t.Cleanup(func() { os.Remove(proof); os.Remove(release) })
	// The viewer: real ssh through the client's loopback port, which writes
	// a file on the host and then holds the session open until released.
	viewer := `ssh -o BatchMode=yes -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -i ` + key +
		` -p "$PORTICO_PORT" -l "$PORTICO_USER" "$PORTICO_HOST" 'echo ok-'"$PORTICO_NAME"' > ` + mark + `; while [ ! -e ` + mark + `.release ]; do sleep 0.1; done'`
	launch := u.nativeLaunch(t, "shell")
	done := make(chan error, 1)
	var out string
	go func() {
		var err error
		out, err = runClient(t, launch, viewer)
		done <- err
	}()
	waitFor(t, 30*time.Second, "the file the tunnelled ssh writes", func() bool {
		b, _ := os.ReadFile(proof)
		return string(b) == "ok-shell\n"
	})
	// While it runs it is a live session, counted like a browser session.
	var live []map[string]any
	p.do(t, "GET", "/api/v1/sessions", nil, &live)
	if len(live) != 1 || live[0]["protocol"] != "ssh" || live[0]["via"] != "tunnel" || live[0]["user"] != "alice" || live[0]["bytesUp"].(float64) == 0 || live[0]["bytesDown"].(float64) == 0 {
		t.Fatalf("live sessions during the native launch: %v", live)
	}
	os.WriteFile(release, nil, 0o600)
	if err := <-done; err != nil {
		t.Fatalf("portico-client: %v\n%s", err, out)
	}
	waitFor(t, 10*time.Second, "the native session's end in the audit log", func() bool {
		for _, e := range auditEvents(t, p, "session.end") {
			if e["resource"] == "shell" && strings.Contains(fmt.Sprint(e["detail"]), "bytes up") {
				return true
			}
		}
		return false
	})
	if ev := auditEvents(t, p, "session.start"); len(ev) != 1 || !strings.Contains(fmt.Sprint(ev[0]["detail"]), "native ssh (tunnel)") {
		t.Fatalf("session.start audit: %v", ev)
	}

	// The same ticket again: refused by the gateway, with its message, and audited.
	out, err = runClient(t, launch, "echo the viewer must not start; exit 9")
	if err == nil || !strings.Contains(out, "unknown or already used launch ticket") || strings.Contains(out, "must not start") {
		t.Fatalf("replayed ticket: %v\n%s", err, out)
	}
	waitFor(t, 5*time.Second, "the replay in the audit log", func() bool {
		for _, e := range auditEvents(t, p, "ticket.refused") {
			if strings.Contains(fmt.Sprint(e["detail"]), "native tunnel: unknown or already used") {
				return true
			}
		}
		return false
	})

	// A gateway whose certificate is not the pinned one is refused by the client.
	bad := native.LaunchURL{Gateway: "127.0.0.1:" + strconv.Itoa(alt), Fingerprint: strings.Repeat("ab", 32), Ticket: mustParseLaunch(t, u.nativeLaunch(t, "shell")).Ticket, Proto: "ssh", Name: "shell"}
	if out, err := runClient(t, bad.String(), "exit 9"); err == nil || !strings.Contains(out, "is not the one the portal named") {
		t.Fatalf("wrong pin: %v\n%s", err, out)
	}
}

func TestNativeLaunchRDPAndRDPFile(t *testing.T) {
	xfreerdp := need(t, "xfreerdp", "freerdp2-x11")
	srv := startRDP(t, "#00c000")
	p := startPortico(t)
	p.seedUser(t)
	p.do(t, "POST", "/api/v1/resources", map[string]any{"id": "office", "name": "Office desktop", "protocol": "rdp", "host": "127.0.0.1",
		"port": srv.Port, "groups": []string{"staff"}, "credentials": map[string]any{"mode": "ask", "username": "test"}}, nil)
	u := signInHTTP(t, p)

	// Browser-only gateways offer no .rdp file.
	if code, body := u.post(t, "/userportal/api/launch/office/rdp-file"); code != http.StatusForbidden {
		t.Fatalf("rdp file with launch method browser: %d %s", code, body)
	}
	alt := enableNative(t, p)
	gw := "127.0.0.1:" + strconv.Itoa(alt)
	env := []string{"DISPLAY=" + srv.Display}

	// portico-client with real xfreerdp (NLA against freerdp-shadow) as the viewer.
	viewer := xfreerdp + ` /v:"$PORTICO_HOST:$PORTICO_PORT" /u:"$PORTICO_USER" /p:test /cert-ignore /auth-only`
	if out, err := runClient(t, u.nativeLaunch(t, "office"), viewer, env...); err != nil {
		t.Fatalf("xfreerdp /auth-only through the tunnel: %v\n%s", err, out)
	}
	// A wrong password fails at the host, end to end through the tunnel.
	wrong := strings.Replace(viewer, "/p:test", "/p:wrong", 1)
	if out, err := runClient(t, u.nativeLaunch(t, "office"), wrong, env...); err == nil {
		t.Fatalf("wrong RDP password accepted through the tunnel:\n%s", out)
	}

	// The .rdp file: stock client, routing token = ticket, same alternate port.
	code, body := u.post(t, "/userportal/api/launch/office/rdp-file")
	if code != http.StatusOK {
		t.Fatalf("rdp file: %d %s", code, body)
	}
	fields := map[string]string{}
	for _, line := range strings.Split(string(body), "\r\n") {
		if k, v, ok := strings.Cut(line, ":s:"); ok {
			fields[k] = v
		}
	}
	if fields["full address"] != gw || fields["username"] != "test" || native.CheckTicket(fields["loadbalanceinfo"]) != nil {
		t.Fatalf("rdp file:\n%s", body)
	}
	rdpFile := func(ticket string) error {
		cmd := exec.CommandContext(ctxT(t, 60*time.Second), xfreerdp, "/load-balance-info:"+ticket, "/v:"+fields["full address"], "/u:test", "/p:test", "/cert-ignore", "/auth-only")
		cmd.Env = append(os.Environ(), env...)
		out, err := cmd.CombinedOutput()
		if err != nil {
			return fmt.Errorf("%v\n%s", err, out)
		}
		return nil
	}
	if err := rdpFile(fields["loadbalanceinfo"]); err != nil {
		t.Fatalf("xfreerdp with the .rdp file's routing token: %v", err)
	}
	if err := rdpFile(fields["loadbalanceinfo"]); err == nil {
		t.Fatal("the .rdp file's ticket worked twice")
	}
	var starts []string
	for _, e := range auditEvents(t, p, "session.start") {
		starts = append(starts, fmt.Sprint(e["detail"]))
	}
	joined := strings.Join(starts, "\n")
	if strings.Count(joined, "native rdp (tunnel)") != 2 || strings.Count(joined, "native rdp (rdp-file)") != 1 {
		t.Fatalf("session.start audit:\n%s", joined)
	}
	waitFor(t, 5*time.Second, "the replayed .rdp ticket in the audit log", func() bool {
		for _, e := range auditEvents(t, p, "ticket.refused") {
			if strings.Contains(fmt.Sprint(e["detail"]), "native rdp-file: unknown or already used") {
				return true
			}
		}
		return false
	})
}

func mustParseLaunch(t *testing.T, s string) native.LaunchURL {
	t.Helper()
	u, err := native.ParseLaunchURL(s)
	if err != nil {
		t.Fatalf("launch URL %q: %v", s, err)
	}
	return u
}
