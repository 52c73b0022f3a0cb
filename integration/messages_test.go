package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/input"
	"github.com/chromedp/chromedp"
)

// shown is what a session page tells the user when its session ended.
type shown struct{ Reason, Title, Text string }

// pageMessage waits until the session page shows an end and returns it,
// checking it against the page's own vocabulary and for any backend
// detail.
func pageMessage(t *testing.T, ctx context.Context, leaks ...string) shown {
	t.Helper()
	waitJS(t, ctx, 60*time.Second, `document.body.dataset.state === 'off' && !!document.body.dataset.reason`, "the session page shows why it ended")
	var raw string
	run(t, ctx, 5*time.Second, chromedp.Evaluate(`JSON.stringify({reason: document.body.dataset.reason, title: document.getElementById('overlay-title').textContent,
		text: document.getElementById('overlay-msg').textContent, state: document.getElementById('state').textContent, vocab: JSON.parse(document.getElementById('session').dataset.messages)})`, &raw))
	var got struct {
		Reason, Title, Text, State string
		Vocab                      map[string]json.RawMessage
	}
	if err := json.Unmarshal([]byte(raw), &got); err != nil {
		t.Fatal(err)
	}
	var want struct{ Title, Text string }
	if json.Unmarshal(got.Vocab[got.Reason], &want) != nil || want.Title != got.Title || want.Text != got.Text || got.State != got.Title {
		t.Fatalf("the page shows %q / %q (state %q) for %q, not the vocabulary's %q / %q", got.Title, got.Text, got.State, got.Reason, want.Title, want.Text)
	}
	all := got.Title + " " + got.Text + " " + got.State
	for _, l := range append(leaks, "127.0.0.1", "dial", "tcp", "EOF", "error:", "%!") {
		if strings.Contains(all, l) {
			t.Fatalf("the page's message %q contains %q", all, l)
		}
	}
	return shown{got.Reason, got.Title, got.Text}
}

// launchPage opens the resource's session page from the portal; for RDP
// it types password.
func launchPage(t *testing.T, ctx context.Context, p *portico, id, rdpPassword string) {
	t.Helper()
	run(t, ctx, 20*time.Second, chromedp.Navigate(p.URL+"/userportal/"), chromedp.WaitVisible(`#home`, chromedp.ByID))
	sel := fmt.Sprintf(`button.open[data-id=%q]`, id)
	run(t, ctx, 20*time.Second, chromedp.WaitVisible(sel, chromedp.ByQuery), chromedp.Evaluate(fmt.Sprintf(`document.querySelector(%q).click(); true`, sel), nil))
	if rdpPassword != "" {
		run(t, ctx, 20*time.Second, chromedp.WaitVisible(`#rdp-pass`, chromedp.ByID),
			chromedp.SendKeys(`#rdp-pass`, rdpPassword, chromedp.ByID), chromedp.Click(`#rdp-form button[type=submit]`, chromedp.ByQuery))
	}
}

// adminDisconnect ends the one live session through the admin API.
func adminDisconnect(t *testing.T, p *portico) {
	t.Helper()
	var live []map[string]any
	waitFor(t, 20*time.Second, "one live session", func() bool { p.do(t, "GET", "/api/v1/sessions", nil, &live); return len(live) == 1 })
	p.do(t, "DELETE", "/api/v1/sessions/"+live[0]["id"].(string), nil, nil)
}

func TestMessagesEveryFailureOfEveryProtocol(t *testing.T) {
	vnc := startVNC(t, "vnc-pass", "#ff0000")
	ssh := startSSH(t)
	rdp := startRDP(t, "#00c000")
	p := startPortico(t)
	p.seedUser(t)
	closed := freePort(t)
	ports := []string{strconv.Itoa(closed), strconv.Itoa(vnc.Port), strconv.Itoa(ssh.Port), strconv.Itoa(rdp.Port)}
	add := func(id, proto string, port int, cred map[string]any, extra ...string) {
		r := map[string]any{"id": id, "name": id, "protocol": proto, "host": "127.0.0.1", "port": port, "groups": []string{"staff"}, "credentials": cred}
		if len(extra) == 2 {
			r[extra[0]] = extra[1]
		}
		p.do(t, "POST", "/api/v1/resources", r, nil)
	}
	add("vnc-ok", "vnc", vnc.Port, map[string]any{"password": "vnc-pass"})
	add("vnc-badpw", "vnc", vnc.Port, map[string]any{"password": "not-it"})
	add("vnc-gone", "vnc", closed, map[string]any{"password": "vnc-pass"})
	sshCred := map[string]any{"username": ssh.User, "password": ssh.Password}
	add("ssh-ok", "ssh", ssh.Port, sshCred)
	add("ssh-badpw", "ssh", ssh.Port, map[string]any{"username": ssh.User, "password": "not-it"})
	add("ssh-gone", "ssh", closed, sshCred)
	add("ssh-badkey", "ssh", ssh.Port, sshCred, "hostKey", "SHA256:"+strings.Repeat("A", 43))
	rdpCred := map[string]any{"mode": "ask", "username": "test"}
	add("rdp-ok", "rdp", rdp.Port, rdpCred)
	add("rdp-gone", "rdp", closed, rdpCred)
	ctx := browser(t)
	signIn(t, ctx, p)

	type step struct {
		name, reason string
		do           func(t *testing.T)
	}
	expect := func(s step) {
		t.Run(s.name, func(t *testing.T) {
			s.do(t)
			if got := pageMessage(t, ctx, ports...); got.Reason != s.reason {
				t.Fatalf("%s shows %q (%s), want the message for %q", s.name, got.Title, got.Reason, s.reason)
			}
		})
	}
	open := func(id, pw string) func(*testing.T) { return func(t *testing.T) { launchPage(t, ctx, p, id, pw) } }
	connected := func(t *testing.T, id, pw string) {
		launchPage(t, ctx, p, id, pw)
		waitJS(t, ctx, 60*time.Second, `document.body.dataset.state === 'on'`, id+" connected")
	}
	bogusTicket := func(id string) func(*testing.T) {
		return func(t *testing.T) {
			// From the portal first: from the same session page only the
			// fragment would change, which reloads nothing.
			run(t, ctx, 20*time.Second, chromedp.Navigate(p.URL+"/userportal/"), chromedp.WaitVisible(`#home`, chromedp.ByID),
				chromedp.Navigate(p.URL+"/userportal/session/"+id+"#ticket=not-a-ticket"))
			if strings.HasPrefix(id, "rdp") {
				run(t, ctx, 20*time.Second, chromedp.WaitVisible(`#rdp-pass`, chromedp.ByID),
					chromedp.SendKeys(`#rdp-pass`, "test", chromedp.ByID), chromedp.Click(`#rdp-form button[type=submit]`, chromedp.ByQuery))
			}
		}
	}
	for _, s := range []step{
		{"vnc/host-unreachable", "host-unreachable", open("vnc-gone", "")},
		{"vnc/credentials", "credentials", open("vnc-badpw", "")},
		{"vnc/ticket", "ticket", bogusTicket("vnc-ok")},
		{"vnc/admin", "admin", func(t *testing.T) { connected(t, "vnc-ok", ""); adminDisconnect(t, p) }},
		{"ssh/host-unreachable", "host-unreachable", open("ssh-gone", "")},
		{"ssh/credentials", "credentials", open("ssh-badpw", "")},
		{"ssh/host-identity", "host-identity", open("ssh-badkey", "")},
		{"ssh/ticket", "ticket", bogusTicket("ssh-ok")},
		{"ssh/admin", "admin", func(t *testing.T) { connected(t, "ssh-ok", ""); adminDisconnect(t, p) }},
		{"ssh/host-ended", "host-ended", func(t *testing.T) {
			connected(t, "ssh-ok", "")
			run(t, ctx, 10*time.Second, chromedp.Focus(`.xterm-helper-textarea`, chromedp.ByQuery), input.InsertText("exit"), chromedp.KeyEvent("\r"))
		}},
		{"rdp/host-unreachable", "host-unreachable", open("rdp-gone", "test")},
		{"rdp/credentials", "credentials", open("rdp-ok", "wrong")},
		{"rdp/ticket", "ticket", bogusTicket("rdp-ok")},
		{"rdp/admin", "admin", func(t *testing.T) { connected(t, "rdp-ok", "test"); adminDisconnect(t, p) }},
	} {
		expect(s)
	}
}
