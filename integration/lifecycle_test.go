package integration

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/storage"
	"github.com/chromedp/chromedp"
)

// hostConns counts the established TCP connections to a local server
// port: what the host sees of the gateway's sessions.
func hostConns(t testing.TB, port int) int {
	t.Helper()
	n := 0
	for _, f := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(b), "\n")[1:] {
			fs := strings.Fields(line)
			if len(fs) < 4 || fs[3] != "01" { // 01 = ESTABLISHED
				continue
			}
			_, lp, ok := strings.Cut(fs[1], ":")
			if !ok {
				continue
			}
			if v, err := strconv.ParseUint(lp, 16, 16); err == nil && int(v) == port {
				n++
			}
		}
	}
	return n
}

// tab is another "tab" of the signed-in browser ctx: headless Chromium
// here does not run a second tab's scripts for the test, so it is a
// browser of its own holding the same sign-in cookie, which is all tabs
// share for the portal.
func tab(t *testing.T, ctx context.Context) context.Context {
	t.Helper()
	var cookies []*network.Cookie
	run(t, ctx, 20*time.Second, chromedp.ActionFunc(func(ctx context.Context) (err error) {
		cookies, err = storage.GetCookies().Do(ctx)
		return err
	}))
	c := browser(t)
	run(t, c, 20*time.Second, chromedp.ActionFunc(func(ctx context.Context) error {
		var ps []*network.CookieParam
		for _, k := range cookies {
			ps = append(ps, &network.CookieParam{Name: k.Name, Value: k.Value, Domain: k.Domain, Path: k.Path, Secure: k.Secure, HTTPOnly: k.HTTPOnly, SameSite: k.SameSite})
		}
		return storage.SetCookies(ps).Do(ctx)
	}))
	return c
}

// openIn opens resource id from the portal page in the tab c; RDP
// resources get the test account's password typed.
func openIn(t *testing.T, c context.Context, p *portico, id string, rdp bool) {
	t.Helper()
	run(t, c, 20*time.Second, chromedp.Navigate(p.URL+"/userportal/"), chromedp.WaitVisible(`#home`, chromedp.ByID))
	if !rdp {
		open(t, c, id)
		return
	}
	run(t, c, 20*time.Second, clickOpen(id),
		chromedp.WaitVisible(`#rdp-pass`, chromedp.ByID),
		chromedp.SendKeys(`#rdp-pass`, "test", chromedp.ByID), chromedp.Click(`#rdp-form button[type=submit]`, chromedp.ByQuery))
	waitJS(t, c, 60*time.Second, `document.body.dataset.state === 'on'`, id+" RDP session connected")
}

// clickOpen clicks a resource's Open button from the page's script: the
// click navigates at once, and chromedp's own Click sometimes reports the
// vanished node as an error.
func clickOpen(id string) chromedp.Action {
	sel := fmt.Sprintf(`button.open[data-id=%q]`, id)
	return chromedp.Tasks{chromedp.WaitVisible(sel, chromedp.ByQuery), chromedp.WaitReady(portalReady, chromedp.ByQuery), chromedp.Evaluate(fmt.Sprintf(`document.querySelector(%q).click(); true`, sel), nil)}
}

// endedWith waits until the session page in c shows the message of reason.
func endedWith(t *testing.T, c context.Context, reason, title string) {
	t.Helper()
	waitJS(t, c, 60*time.Second, fmt.Sprintf(`document.body.dataset.reason === %q && document.body.dataset.state === 'off'`, reason), "session page ended with "+reason)
	var got string
	run(t, c, 5*time.Second, chromedp.Text(`#overlay-title`, &got, chromedp.ByID))
	if got != title {
		t.Fatalf("the page says %q, want %q", got, title)
	}
}

// threeHosts is a VNC, an SSH and an RDP host, each a resource of the
// staff group on the gateway.
type threeHosts struct {
	vnc vncServer
	ssh sshServer
	rdp rdpServer
}

func startThree(t *testing.T, p *portico) threeHosts {
	h := threeHosts{vnc: startVNC(t, "vnc-pass", "#ff0000"), ssh: startSSH(t), rdp: startRDP(t, "#00c000")}
	p.seedUser(t)
	p.do(t, "POST", "/api/v1/resources", map[string]any{"id": "design", "name": "Design", "protocol": "vnc", "host": "127.0.0.1", "port": h.vnc.Port,
		"groups": []string{"staff"}, "credentials": map[string]any{"password": "vnc-pass"}}, nil)
	p.do(t, "POST", "/api/v1/resources", map[string]any{"id": "shell", "name": "Shell", "protocol": "ssh", "host": "127.0.0.1", "port": h.ssh.Port,
		"groups": []string{"staff"}, "credentials": map[string]any{"username": h.ssh.User, "password": h.ssh.Password}}, nil)
	p.do(t, "POST", "/api/v1/resources", map[string]any{"id": "office", "name": "Office", "protocol": "rdp", "host": "127.0.0.1", "port": h.rdp.Port,
		"groups": []string{"staff"}, "credentials": map[string]any{"mode": "ask", "username": "test"}}, nil)
	return h
}

// openThree opens the three sessions in three tabs and waits until each
// host sees its connection.
func openThree(t *testing.T, ctx context.Context, p *portico, h threeHosts) (vncTab, sshTab, rdpTab context.Context) {
	vncTab, sshTab, rdpTab = tab(t, ctx), tab(t, ctx), tab(t, ctx)
	openIn(t, vncTab, p, "design", false)
	openIn(t, sshTab, p, "shell", false)
	openIn(t, rdpTab, p, "office", true)
	for name, port := range map[string]int{"VNC": h.vnc.Port, "SSH": h.ssh.Port, "RDP": h.rdp.Port} {
		waitFor(t, 20*time.Second, name+" host connection", func() bool { return hostConns(t, port) > 0 })
	}
	return
}

// hostsClosed waits until no host sees a connection from the gateway and
// the gateway lists no live session.
func hostsClosed(t *testing.T, p *portico, ports ...int) {
	t.Helper()
	for _, port := range ports {
		waitFor(t, 30*time.Second, fmt.Sprintf("host on port %d sees its connection close", port), func() bool { return hostConns(t, port) == 0 })
	}
}

func TestLifecycleSignOutClosesSessionsInOtherTabs(t *testing.T) {
	p := startPortico(t)
	h := startThree(t, p)
	ctx := browser(t)
	signIn(t, ctx, p)
	vncTab, sshTab, rdpTab := openThree(t, ctx, p, h)

	// The portal page says what signing out closes before it does.
	run(t, ctx, 20*time.Second, chromedp.Navigate(p.URL+"/userportal/"), chromedp.WaitVisible(`#home`, chromedp.ByID),
		chromedp.Click(`form[action$="/signout"] button`, chromedp.ByQuery), chromedp.WaitVisible(`#signout-confirm`, chromedp.ByID))
	var msg string
	run(t, ctx, 5*time.Second, chromedp.Text(`#signout-msg`, &msg, chromedp.ByID))
	if msg != "Signing out closes your 3 open sessions." {
		t.Fatalf("sign-out confirmation says %q", msg)
	}
	run(t, ctx, 20*time.Second, chromedp.Click(`#signout-yes`, chromedp.ByID), chromedp.WaitVisible(`#username`, chromedp.ByID))
	for _, c := range []context.Context{vncTab, sshTab, rdpTab} {
		endedWith(t, c, "signed-out", "You signed out")
	}
	hostsClosed(t, p, h.vnc.Port, h.ssh.Port, h.rdp.Port)
	// A signed-out page does not reconnect by itself.
	time.Sleep(4 * time.Second)
	for _, c := range []context.Context{vncTab, sshTab, rdpTab} {
		waitJS(t, c, 5*time.Second, `document.body.dataset.state === 'off' && document.getElementById('overlay-retry').hidden`, "no reconnect after sign-out")
	}
}

func TestLifecycleAdminChangesCloseSessions(t *testing.T) {
	p := startPortico(t)
	h := startThree(t, p)
	ctx := browser(t)

	// Disabling the account closes all three, and the pages say why.
	signIn(t, ctx, p)
	vncTab, sshTab, rdpTab := openThree(t, ctx, p, h)
	var affected struct{ Count int }
	p.do(t, "GET", "/api/v1/sessions/affected?user=alice", nil, &affected)
	if affected.Count != 3 {
		t.Fatalf("the admin API says disabling alice closes %d sessions, want 3", affected.Count)
	}
	p.do(t, "PUT", "/api/v1/users/alice", map[string]any{"domain": "OFFICE", "displayName": "Alice Example", "groups": []string{"staff"}, "disabled": true}, nil)
	for _, c := range []context.Context{vncTab, sshTab, rdpTab} {
		endedWith(t, c, "account-changed", "You were signed out")
	}
	hostsClosed(t, p, h.vnc.Port, h.ssh.Port, h.rdp.Port)

	// Deleting a resource closes its session only; unassigning another
	// closes that one.
	p.do(t, "PUT", "/api/v1/users/alice", map[string]any{"domain": "OFFICE", "displayName": "Alice Example", "groups": []string{"staff"}, "disabled": false}, nil)
	signIn(t, ctx, p)
	vncTab, sshTab, rdpTab = openThree(t, ctx, p, h)
	p.do(t, "GET", "/api/v1/sessions/affected?resource=design", nil, &affected)
	if affected.Count != 1 {
		t.Fatalf("the admin API says removing design closes %d sessions, want 1", affected.Count)
	}
	p.do(t, "DELETE", "/api/v1/resources/design", nil, nil)
	endedWith(t, vncTab, "access-removed", "Access removed")
	hostsClosed(t, p, h.vnc.Port)
	for _, c := range []context.Context{sshTab, rdpTab} {
		waitJS(t, c, 5*time.Second, `document.body.dataset.state === 'on'`, "other sessions still up")
	}
	unassign(t, p, "shell", "office")
	endedWith(t, sshTab, "access-removed", "Access removed")
	endedWith(t, rdpTab, "access-removed", "Access removed")
	hostsClosed(t, p, h.ssh.Port, h.rdp.Port)
}

// processTree is pid and all its descendants.
func processTree(pid int) []int {
	children := map[int][]int{}
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		id, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		// The command may hold spaces: the fields after ")" are fixed.
		s := string(b)
		fs := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
		if len(fs) > 1 {
			if pp, err := strconv.Atoi(fs[1]); err == nil {
				children[pp] = append(children[pp], id)
			}
		}
	}
	out := []int{pid}
	for i := 0; i < len(out); i++ {
		out = append(out, children[out[i]]...)
	}
	return out
}

func TestLifecycleStoppedBrowserFreesItsSession(t *testing.T) {
	vnc := startVNC(t, "vnc-pass", "#ff0000")
	// The real keep-alive, at a test interval: a peer silent for 2.5
	// intervals is dead (the product's 20 s default frees it within 50 s).
	p := startPortico(t, "--keepalive", "2s")
	p.seedUser(t)
	p.do(t, "POST", "/api/v1/resources", map[string]any{"id": "design", "name": "Design", "protocol": "vnc", "host": "127.0.0.1", "port": vnc.Port,
		"groups": []string{"staff"}, "credentials": map[string]any{"password": "vnc-pass"}}, nil)
	ctx := browser(t)
	signIn(t, ctx, p)
	open(t, ctx, "design")
	waitFor(t, 20*time.Second, "VNC host connection", func() bool { return hostConns(t, vnc.Port) == 1 })

	pids := processTree(chromedp.FromContext(ctx).Browser.Process().Pid)
	for _, pid := range pids {
		syscall.Kill(pid, syscall.SIGSTOP)
	}
	t.Cleanup(func() {
		for _, pid := range pids {
			syscall.Kill(pid, syscall.SIGCONT)
		}
	})
	waitFor(t, 60*time.Second, "the stopped browser's session freed at the host", func() bool { return hostConns(t, vnc.Port) == 0 })
	var live []map[string]any
	p.do(t, "GET", "/api/v1/sessions", nil, &live)
	if len(live) != 0 {
		t.Fatalf("live sessions after the browser stopped: %v", live)
	}
}

// cutProxy forwards a loopback port to the gateway and can cut every
// connection it carries, as a network drop does.
type cutProxy struct {
	ln    net.Listener
	mu    sync.Mutex
	conns []net.Conn
}

func newCutProxy(t *testing.T, target string) *cutProxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	c := &cutProxy{ln: ln}
	t.Cleanup(func() { ln.Close(); c.cut() })
	go func() {
		for {
			in, err := ln.Accept()
			if err != nil {
				return
			}
			out, err := net.Dial("tcp", target)
			if err != nil {
				in.Close()
				continue
			}
			c.mu.Lock()
			c.conns = append(c.conns, in, out)
			c.mu.Unlock()
			go func() { io.Copy(out, in); out.Close() }()
			go func() { io.Copy(in, out); in.Close() }()
		}
	}()
	return c
}

// cut closes the gateway side of every connection (and so the browser's).
func (c *cutProxy) cut() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, x := range c.conns {
		x.Close()
	}
	c.conns = nil
}

func TestLifecycleNetworkDropReconnects(t *testing.T) {
	vnc := startVNC(t, "vnc-pass", "#ff0000")
	ssh := startSSH(t)
	p := startPortico(t)
	p.seedUser(t)
	p.do(t, "POST", "/api/v1/resources", map[string]any{"id": "design", "name": "Design", "protocol": "vnc", "host": "127.0.0.1", "port": vnc.Port,
		"groups": []string{"staff"}, "credentials": map[string]any{"password": "vnc-pass"}}, nil)
	p.do(t, "POST", "/api/v1/resources", map[string]any{"id": "shell", "name": "Shell", "protocol": "ssh", "host": "127.0.0.1", "port": ssh.Port,
		"groups": []string{"staff"}, "credentials": map[string]any{"username": ssh.User, "password": ssh.Password}}, nil)
	proxy := newCutProxy(t, strings.TrimPrefix(p.URL, "https://"))
	via := &portico{URL: "https://" + proxy.ln.Addr().String(), Data: p.Data, API: p.API}
	ctx := browser(t)
	signIn(t, ctx, via)
	vncTab, sshTab := tab(t, ctx), tab(t, ctx)
	openIn(t, vncTab, via, "design", false)
	openIn(t, sshTab, via, "shell", false)
	for _, c := range []context.Context{vncTab, sshTab} {
		run(t, c, 5*time.Second, chromedp.Evaluate(`window.__reconnected = false; window.__firstPage = document.body.dataset.state; true`, nil))
	}

	proxy.cut()
	for _, c := range []context.Context{vncTab, sshTab} {
		waitJS(t, c, 30*time.Second, `document.body.dataset.state === 'retry' || document.body.dataset.reason === 'network'`, "the page counts down to a reconnect")
		var countdown string
		run(t, c, 5*time.Second, chromedp.Evaluate(`document.getElementById('overlay-countdown').textContent`, &countdown))
		if !strings.HasPrefix(countdown, "Reconnecting in ") {
			t.Fatalf("countdown shows %q", countdown)
		}
		waitJS(t, c, 60*time.Second, `document.body.dataset.state === 'on'`, "reconnected by itself")
	}
	waitFor(t, 20*time.Second, "both hosts connected again", func() bool { return hostConns(t, vnc.Port) == 1 && hostConns(t, ssh.Port) == 1 })

	// Cancel stops a countdown.
	proxy.cut()
	waitJS(t, vncTab, 30*time.Second, `document.body.dataset.state === 'retry'`, "countdown after the second drop")
	run(t, vncTab, 5*time.Second, chromedp.Click(`#btn-cancel-retry`, chromedp.ByID))
	time.Sleep(6 * time.Second)
	waitJS(t, vncTab, 5*time.Second, `document.body.dataset.state === 'off'`, "no reconnect after Cancel")
	waitJS(t, sshTab, 60*time.Second, `document.body.dataset.state === 'on'`, "the other tab reconnected")

	// A signed-out session does not come back.
	run(t, ctx, 20*time.Second, chromedp.Navigate(via.URL+"/userportal/"), chromedp.WaitVisible(`#home`, chromedp.ByID),
		chromedp.Click(`form[action$="/signout"] button`, chromedp.ByQuery), chromedp.WaitVisible(`#signout-confirm`, chromedp.ByID),
		chromedp.Click(`#signout-yes`, chromedp.ByID), chromedp.WaitVisible(`#username`, chromedp.ByID))
	endedWith(t, sshTab, "signed-out", "You signed out")
	time.Sleep(6 * time.Second)
	waitJS(t, sshTab, 5*time.Second, `document.body.dataset.state === 'off'`, "no reconnect after sign-out")
	waitFor(t, 20*time.Second, "SSH host connection closed", func() bool { return hostConns(t, ssh.Port) == 0 })
}
