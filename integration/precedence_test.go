package integration

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"portico/service/config"
)

// wsReader reads a WebSocket's binary messages as one byte stream.
type wsReader struct {
	ws  *websocket.Conn
	cur io.Reader
}

func (r *wsReader) Read(b []byte) (int, error) {
	for {
		if r.cur != nil {
			n, err := r.cur.Read(b)
			if err == io.EOF {
				r.cur = nil
				if n > 0 {
					return n, nil
				}
				continue
			}
			return n, err
		}
		typ, next, err := r.ws.NextReader()
		if err != nil {
			return 0, err
		}
		if typ == websocket.BinaryMessage {
			r.cur = next
		}
	}
}

// rfbClient is a minimal RFB 3.8 viewer: enough to exchange cut text and
// to use a framebuffer update as an ordering sentinel.
type rfbClient struct {
	t   *testing.T
	ws  *websocket.Conn
	r   *bufio.Reader
	bpp int
}

func dialRFB(t *testing.T, ws *websocket.Conn) *rfbClient {
	t.Helper()
	ws.SetReadDeadline(time.Now().Add(60 * time.Second))
	c := &rfbClient{t: t, ws: ws, r: bufio.NewReader(&wsReader{ws: ws})}
	version := c.read(12)
	c.send(version)
	types := c.read(int(c.read(1)[0]))
	if !bytes.Contains(types, []byte{1}) {
		t.Fatalf("gateway offers security types %v, want None", types)
	}
	c.send([]byte{1})
	if res := c.read(4); binary.BigEndian.Uint32(res) != 0 {
		t.Fatalf("security result %v", res)
	}
	c.send([]byte{1}) // shared
	init := c.read(24)
	c.bpp = int(init[4])
	c.read(int(binary.BigEndian.Uint32(init[20:24])))
	return c
}

func (c *rfbClient) read(n int) []byte {
	c.t.Helper()
	b := make([]byte, n)
	if _, err := io.ReadFull(c.r, b); err != nil {
		c.t.Fatalf("RFB read: %v", err)
	}
	return b
}

func (c *rfbClient) send(b []byte) {
	c.t.Helper()
	if err := c.ws.WriteMessage(websocket.BinaryMessage, b); err != nil {
		c.t.Fatalf("RFB write: %v", err)
	}
}

func (c *rfbClient) cutText(text string) {
	m := make([]byte, 8, 8+len(text))
	m[0] = 6
	binary.BigEndian.PutUint32(m[4:], uint32(len(text)))
	c.send(append(m, text...))
}

// sync requests a 1×1 update and reads the server's messages until it
// arrives, returning the cut texts received before it. RFB keeps order,
// so anything the server sent earlier has arrived by then.
func (c *rfbClient) sync(until func(cut string) bool) []string {
	c.send([]byte{3, 0, 0, 0, 0, 0, 0, 1, 0, 1})
	var cuts []string
	for {
		switch typ := c.read(1)[0]; typ {
		case 0:
			n := int(binary.BigEndian.Uint16(c.read(3)[1:]))
			for i := 0; i < n; i++ {
				h := c.read(12)
				w, hh := int(binary.BigEndian.Uint16(h[4:])), int(binary.BigEndian.Uint16(h[6:]))
				if enc := int32(binary.BigEndian.Uint32(h[8:])); enc != 0 {
					c.t.Fatalf("unexpected encoding %d without SetEncodings", enc)
				}
				c.read(w * hh * c.bpp / 8)
			}
			if until == nil {
				return cuts
			}
			c.send([]byte{3, 1, 0, 0, 0, 0, 0, 1, 0, 1})
		case 2:
		case 3:
			cut := string(c.read(7 + 0)[3:])
			text := string(c.read(int(binary.BigEndian.Uint32([]byte(cut)))))
			cuts = append(cuts, text)
			if until != nil && until(text) {
				return cuts
			}
		default:
			c.t.Fatalf("unexpected RFB server message %d", typ)
		}
	}
}

// allows reports whether the intersection of the levels allows a direction.
func allows(dir string, levels ...config.Transfer) bool {
	for _, l := range levels {
		if l != config.TransferBidirectional && string(l) != dir {
			return false
		}
	}
	return true
}

// TestPrecedenceEnforcedOnTheWire samples the host ∩ portal ∩ client-policy
// table (policy.Decide is tested over all 64 combinations) against what the
// gateway lets through on a real SFTP transfer and a real VNC clipboard.
func TestPrecedenceEnforcedOnTheWire(t *testing.T) {
	const (
		off  = config.TransferDisabled
		up   = config.TransferClientToServer
		down = config.TransferServerToClient
		both = config.TransferBidirectional
	)
	samples := [][3]config.Transfer{
		{both, both, both}, {both, both, up}, {both, down, both}, {up, both, both},
		{down, both, down}, {both, both, off}, {up, down, both}, {off, both, both},
	}
	ssh := startSSH(t)
	vnc := startVNC(t, "vnc-pass", "#404040")
	p := startPortico(t)
	p.seedUser(t)
	if err := os.WriteFile(filepath.Join(ssh.Home, "seed.bin"), []byte("from the host"), 0o644); err != nil {
		t.Fatal(err)
	}
	u := signInHTTP(t, p)
	for i, s := range samples {
		host, portal, pol := s[0], s[1], s[2]
		t.Run(fmt.Sprintf("host=%s/portal=%s/policy=%s", host, portal, pol), func(t *testing.T) {
			for _, r := range []map[string]any{
				{"id": "shell", "name": "Shell", "protocol": "ssh", "port": ssh.Port, "credentials": map[string]any{"username": ssh.User, "password": ssh.Password}},
				{"id": "desk", "name": "Desk", "protocol": "vnc", "port": vnc.Port, "credentials": map[string]any{"password": "vnc-pass"}},
			} {
				r["host"], r["groups"], r["clipboard"], r["fileTransfer"] = "127.0.0.1", []string{"staff"}, host, host
				method, path := "POST", "/api/v1/resources"
				if i > 0 {
					method, path = "PUT", "/api/v1/resources/"+r["id"].(string)
				}
				p.do(t, method, path, r, nil)
			}
			p.editSite(t, func(ps *config.PortalSettings) {
				ps.Restrictions.Clipboard, ps.Restrictions.FileTransfer = portal, portal
			})
			p.do(t, "PUT", "/api/v1/policies", []config.ClientPolicy{{ID: "all", Name: "Everyone", Enabled: true, Groups: []string{"staff"}, Clipboard: pol, FileTransfer: pol}}, nil)
			wantUp, wantDown := allows(string(up), host, portal, pol), allows(string(down), host, portal, pol)

			// SFTP through the gateway's files API.
			ws := u.relay(t, "ssh", u.ticket(t, "shell"), "&cols=80&rows=24")
			ws.SetReadDeadline(time.Now().Add(30 * time.Second))
			sid := ""
			for sid == "" {
				var m map[string]any
				if err := ws.ReadJSON(&m); err != nil {
					if _, ok := err.(*json.SyntaxError); ok {
						continue
					}
					t.Fatalf("SSH relay: %v", err)
				}
				if m["type"] == "session" {
					sid, _ = m["id"].(string)
				}
			}
			name := fmt.Sprintf("up-%d.bin", i)
			req, _ := http.NewRequest("POST", p.URL+"/userportal/api/files/"+sid+"?name="+name, strings.NewReader("from the browser"))
			req.Header.Set("X-CSRF-Token", u.csrf)
			resp, err := u.hc.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			_, statErr := os.Stat(filepath.Join(ssh.Home, name))
			if (resp.StatusCode == 200) != wantUp || (statErr == nil) != wantUp {
				t.Errorf("upload: status %d, on the host: %v; want allowed=%v", resp.StatusCode, statErr == nil, wantUp)
			}
			resp, err = u.hc.Get(p.URL + "/userportal/api/files/" + sid + "/download?name=seed.bin")
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if (resp.StatusCode == 200 && string(body) == "from the host") != wantDown || (resp.StatusCode != 200 && resp.StatusCode != 403) {
				t.Errorf("download: status %d %q; want allowed=%v", resp.StatusCode, body, wantDown)
			}
			ws.Close()

			// VNC clipboard through the gateway's RFB proxy.
			rfb := dialRFB(t, u.relay(t, "vnc", u.ticket(t, "desk"), ""))
			toHost := fmt.Sprintf("to-host-%d", i)
			rfb.cutText(toHost)
			rfb.sync(nil)
			if wantUp {
				waitFor(t, 10*time.Second, "the cut text on the VNC server's clipboard", func() bool { return xclip(vnc.Display) == toHost })
			} else if got := xclip(vnc.Display); got == toHost {
				t.Errorf("client-to-server cut text reached the VNC server although blocked")
			}
			toClient := fmt.Sprintf("to-client-%d", i)
			setClip := exec.Command("xclip", "-display", vnc.Display, "-selection", "clipboard", "-i")
			setClip.Stdin = strings.NewReader(toClient)
			// xclip forks a child that owns the selection until the X
			// server ends; Run returns when the parent exits.
			if err := setClip.Run(); err != nil {
				t.Fatalf("xclip: %v", err)
			}
			if wantDown {
				rfb.sync(func(cut string) bool { return cut == toClient })
			} else {
				// Wait until the gateway has dropped the server's cut text,
				// then use an update as a sentinel behind it.
				waitFor(t, 15*time.Second, "the gateway to drop the server's cut text", func() bool {
					var live []map[string]any
					p.do(t, "GET", "/api/v1/sessions", nil, &live)
					for _, s := range live {
						if s["protocol"] == "vnc" && s["refused"].(float64) > 0 {
							return true
						}
					}
					return false
				})
				for _, cut := range rfb.sync(nil) {
					if cut == toClient {
						t.Errorf("server-to-client cut text reached the viewer although blocked")
					}
				}
			}
			rfb.ws.Close()
		})
	}
}
