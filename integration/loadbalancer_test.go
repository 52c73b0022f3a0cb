package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"portico/internal/testcert"
	"portico/service/config"
)

// haproxy runs HAProxy in front of the given gateways, with cookie-based
// stickiness on cookie (prefix mode: HAProxy prefixes the portal's own
// session cookie with the server's name and strips it again on the way
// in). It returns the front end's https URL and a function that rewrites
// the configuration for another cookie name and restarts HAProxy on the
// same port.
func haproxy(t *testing.T, cookie string, backends ...*portico) (string, func(cookie string)) {
	t.Helper()
	exe := need(t, "haproxy", "haproxy")
	dir := t.TempDir()
	_, cert, key := testcert.New(t, "127.0.0.1")
	pem := append(append([]byte{}, cert...), key...)
	crt := filepath.Join(dir, "front.pem")
	if err := os.WriteFile(crt, pem, 0o600); err != nil {
		t.Fatal(err)
	}
	port := freePort(t)
	var stop func()
	start := func(cookie string) {
		if stop != nil {
			stop()
		}
		var servers strings.Builder
		for i, b := range backends {
			fmt.Fprintf(&servers, "  server gw%d %s ssl verify none cookie gw%d\n", i, strings.TrimPrefix(b.URL, "https://"), i)
		}
		cfg := fmt.Sprintf(`global
  maxconn 200
defaults
  mode http
  timeout connect 5s
  timeout client 30s
  timeout server 30s
frontend portal
  bind 127.0.0.1:%d ssl crt %s
  default_backend gateways
backend gateways
  balance roundrobin
  cookie %s prefix
%s`, port, crt, cookie, servers.String())
		file := filepath.Join(dir, "haproxy.cfg")
		if err := os.WriteFile(file, []byte(cfg), 0o600); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		logs := &syncBuffer{}
		cmd := exec.CommandContext(ctx, exe, "-f", file, "-db")
		cmd.Stdout, cmd.Stderr = logs, logs
		if err := cmd.Start(); err != nil {
			t.Fatalf("start haproxy: %v", err)
		}
		stop = func() { cancel(); cmd.Wait() }
		waitPort(t, port, "haproxy", &logs.Buffer)
	}
	start(cookie)
	t.Cleanup(func() { stop() })
	return fmt.Sprintf("https://127.0.0.1:%d", port), start
}

// resourceStatuses fetches the resource list n times with the given cookie
// header and counts the answers by status.
func resourceStatuses(t *testing.T, base, cookieHeader string, n int) map[int]int {
	t.Helper()
	c := portalClient()
	got := map[int]int{}
	for i := 0; i < n; i++ {
		req, _ := http.NewRequest("GET", base+"/userportal/api/resources", nil)
		req.Header.Set("Cookie", cookieHeader)
		resp, err := c.Do(req)
		if err != nil {
			t.Fatalf("resource list through the load balancer: %v", err)
		}
		if resp.StatusCode == 200 {
			var list []map[string]any
			if err := json.NewDecoder(resp.Body).Decode(&list); err != nil || len(list) != 1 {
				t.Fatalf("resource list: %v %v", list, err)
			}
		}
		resp.Body.Close()
		got[resp.StatusCode]++
	}
	return got
}

func TestStickySessionsBehindHAProxy(t *testing.T) {
	a := startPortico(t)
	a.seedUser(t)
	a.do(t, "POST", "/api/v1/resources", map[string]any{"id": "desk", "name": "Desk", "protocol": "vnc", "host": "127.0.0.1",
		"port": 5999, "groups": []string{"staff"}}, nil)
	// The second gateway runs the first one's configuration export.
	b := startPortico(t)
	var export json.RawMessage
	a.do(t, "GET", "/api/v1/export", nil, &export)
	b.do(t, "POST", "/api/v1/import", export, nil)

	front, restart := haproxy(t, config.DefaultCookieName, a, b)
	for _, cookie := range []string{config.DefaultCookieName, "AWSALB"} {
		if cookie != config.DefaultCookieName {
			for _, gw := range []*portico{a, b} {
				gw.editSite(t, func(s *config.PortalSettings) { s.Web.CookieName = cookie })
			}
			restart(cookie)
		}
		value := signInVia(t, portalClient(), front, cookie)
		server, session, ok := strings.Cut(value, "~")
		if !ok || (server != "gw0" && server != "gw1") {
			t.Fatalf("%s = %q: HAProxy did not prefix the portal's cookie with a server", cookie, value)
		}
		// Sessions live in each gateway's own store, so only stickiness
		// keeps every request working.
		if got := resourceStatuses(t, front, cookie+"="+value, 20); got[200] != 20 {
			t.Fatalf("cookie %s, signed in on %s: %v of 20 requests answered", cookie, server, got)
		}
		// Without HAProxy's prefix the requests are balanced round robin and
		// the other gateway does not know the session: the check above
		// would catch a broken stickiness.
		if got := resourceStatuses(t, front, cookie+"="+session, 20); got[401] == 0 || got[200] == 0 {
			t.Fatalf("cookie %s without the server prefix: %v — expected both gateways to answer", cookie, got)
		}
	}
}
