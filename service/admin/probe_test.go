package admin

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"portico/internal/testserver"
	"portico/service/config"
	"portico/service/relay/rdp"
)

// serve starts a loopback TCP server that runs answer on each connection.
func serve(t *testing.T, answer func(net.Conn)) string { return testserver.Serve(t, answer) }

// closedPort is a loopback port nothing listens on.
func closedPort(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

func say(s string) func(net.Conn) {
	return func(c net.Conn) {
		c.Write([]byte(s))
		io.Copy(io.Discard, c)
	}
}

// rdpServer answers the X.224 Connection Request with confirm.
func rdpServer(confirm []byte) func(net.Conn) {
	return func(c net.Conn) {
		pkt, err := rdp.ReadTPKT(c, 512)
		if err != nil {
			return
		}
		if _, err := rdp.ParseConnectionRequest(pkt); err != nil {
			return
		}
		c.Write(confirm)
		io.Copy(io.Discard, c)
	}
}

func silent(c net.Conn) { io.Copy(io.Discard, c) }

func TestConnectionTestAgainstServers(t *testing.T) {
	ssh := serve(t, say("SSH-2.0-OpenSSH_9.2p1 Debian-2\r\n"))
	sshPre := serve(t, say("Welcome to the lab\r\nSSH-2.0-dropbear_2022.83\r\n"))
	vncSrv := serve(t, say("RFB 003.008\n"))
	rdpNLA := serve(t, rdpServer(rdp.BuildConnectionConfirm(true, rdp.ProtocolHybrid)))
	rdpLegacy := serve(t, rdpServer(rdp.BuildConnectionConfirm(false, 0)))
	http := serve(t, say("HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n"))
	quiet := serve(t, silent)
	closer := serve(t, func(net.Conn) {})
	refused := closedPort(t)
	cases := []struct {
		name      string
		proto     config.Protocol
		addr      string
		reachable bool
		result    string
		message   string
	}{
		{"ssh banner", config.ProtocolSSH, ssh, true, "reachable", "reachable: SSH-2.0-OpenSSH_9.2p1 Debian-2"},
		{"ssh text before banner", config.ProtocolSSH, sshPre, true, "reachable", "reachable: SSH-2.0-dropbear_2022.83"},
		{"vnc version", config.ProtocolVNC, vncSrv, true, "reachable", "reachable: RFB 003.008"},
		{"rdp with NLA", config.ProtocolRDP, rdpNLA, true, "reachable", "reachable: RDP server, security NLA (CredSSP)"},
		{"rdp standard security", config.ProtocolRDP, rdpLegacy, false, "unsupported", "standard RDP security only"},
		{"vnc port given to rdp", config.ProtocolRDP, vncSrv, false, "wrong-protocol", "not an RDP server"},
		{"ssh port given to vnc", config.ProtocolVNC, ssh, false, "wrong-protocol", `not an RFB (VNC) server: got "SSH-2.0-Open"`},
		{"http port given to ssh", config.ProtocolSSH, http, false, "wrong-protocol", `not an SSH server: it sent "HTTP/1.1 400 Bad Request"`},
		{"silent server", config.ProtocolVNC, quiet, false, "timeout", "connected, but no RFB version came back"},
		{"server closes", config.ProtocolSSH, closer, false, "closed", "closed it before sending its SSH banner"},
		{"nothing listens", config.ProtocolRDP, refused, false, "refused", "connection refused"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			// A short wait keeps the silent case quick; the others answer at once.
			got := testConnection(ctx, c.proto, c.addr, 300*time.Millisecond)
			msg := c.message
			if got.Reachable != c.reachable || got.Result != c.result || !strings.Contains(got.Message, msg) || got.Address != c.addr {
				t.Fatalf("got %+v, want reachable=%v result=%s message containing %q", got, c.reachable, c.result, msg)
			}
		})
	}
}

func TestReadSSHBannerRefusesHostileInput(t *testing.T) {
	cases := map[string]string{
		"long line":        strings.Repeat("x", 400) + "\n",
		"ssh 1":            "SSH-1.5-old\r\n",
		"control chars":    "SSH-2.0-a\x1bb\r\n",
		"endless preamble": strings.Repeat("hello\r\n", maxBannerLines+1),
	}
	for name, in := range cases {
		if b, err := readSSHBanner(strings.NewReader(in)); err == nil {
			t.Errorf("%s: accepted %q", name, b)
		}
	}
}

func FuzzReadSSHBanner(f *testing.F) {
	for _, s := range []string{"SSH-2.0-OpenSSH_9.2p1\r\n", "SSH-1.99-x\n", "pre\r\nSSH-2.0-x\r\n", "RFB 003.008\n", "", "\n\n\n", strings.Repeat("a", 300)} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := readSSHBanner(bytes.NewReader(b))
		if err != nil {
			return
		}
		if !strings.HasPrefix(s, "SSH-") || len(s) > 255 || strings.ContainsAny(s, "\r\n") {
			t.Fatalf("accepted banner %q", s)
		}
	})
}

// adminServer runs the admin API over the given resources on loopback.
func adminServer(t *testing.T, rs ...config.Resource) func(method, path string, body any) (int, []byte) {
	t.Helper()
	h := New(Deps{Live: config.NewLive(&config.Snapshot{Resources: rs}), Token: "tok"})
	srv := httptest.NewTLSServer(h)
	t.Cleanup(srv.Close)
	hc := srv.Client()
	hc.Transport.(*http.Transport).TLSClientConfig = &tls.Config{InsecureSkipVerify: true}
	return func(method, path string, body any) (int, []byte) {
		b, _ := json.Marshal(body)
		req, _ := http.NewRequest(method, srv.URL+path, bytes.NewReader(b))
		req.Header.Set("Authorization", "Bearer tok")
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		out, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, out
	}
}

func TestConnectionTestRoutes(t *testing.T) {
	vncAddr := serve(t, say("RFB 003.008\n"))
	host, port, _ := net.SplitHostPort(vncAddr)
	n, _ := strconv.Atoi(port)
	call := adminServer(t, config.Resource{ID: "pc", Name: "PC", Protocol: config.ProtocolVNC, Host: host, Port: n})

	code, body := call("POST", "/api/v1/resources/pc/test", nil)
	var got ConnectionTest
	json.Unmarshal(body, &got)
	if code != 200 || !got.Reachable || got.Message != "reachable: RFB 003.008" {
		t.Fatalf("stored resource: %d %s", code, body)
	}
	// An unsaved body: only protocol, host and port matter.
	code, body = call("POST", "/api/v1/resources/test", map[string]any{"protocol": "vnc", "host": host, "port": n})
	if json.Unmarshal(body, &got); code != 200 || !got.Reachable {
		t.Fatalf("unsaved resource: %d %s", code, body)
	}
	code, body = call("POST", "/api/v1/resources/test", map[string]any{"protocol": "vnc", "host": "bad host!", "port": 70000})
	if code != 400 || !strings.Contains(string(body), `"field": "host"`) || !strings.Contains(string(body), `"field": "port"`) || strings.Contains(string(body), `"field": "name"`) {
		t.Fatalf("bad unsaved resource: %d %s", code, body)
	}
	if code, body = call("POST", "/api/v1/resources/nope/test", nil); code != 404 {
		t.Fatalf("unknown resource: %d %s", code, body)
	}
}
