package portal

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"regexp"
	"strings"
	"testing"

	"portico/service/config"
	"portico/service/directory"
	"portico/service/secret"
	"portico/service/sessions"
	"portico/service/signin"
	"portico/service/store"
)

type env struct {
	t    *testing.T
	st   *store.Store
	live *config.Live
	p    *Portal
	srv  *httptest.Server
}

func newEnv(t *testing.T, opts ...func(*Deps)) *env {
	t.Helper()
	return newEnvWithStore(t, store.Options{}, opts...)
}

// newEnvWithStore is newEnv over a store opened with so.
func newEnvWithStore(t *testing.T, so store.Options, opts ...func(*Deps)) *env {
	t.Helper()
	dir := t.TempDir()
	st, err := store.Open(dir, so)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	box, _ := secret.Open(dir)
	hash, _ := directory.HashPassword("alice-password")
	err = st.Update(func(tx *store.Tx) error {
		tx.PutGroup(directory.Group{Name: "staff"})
		tx.PutUser(directory.User{Username: "alice", Domain: "OFFICE", DisplayName: "Alice A.", Groups: []string{"staff"}, PasswordHash: hash})
		tx.PutUser(directory.User{Username: "bob", Groups: []string{}, PasswordHash: hash, Disabled: true})
		for _, r := range []config.Resource{
			{ID: "ws1", Name: "Workstation", Protocol: config.ProtocolVNC, Host: "127.0.0.1", Groups: []string{"staff"}},
			{ID: "secret-server", Name: "Secret", Protocol: config.ProtocolSSH, Host: "127.0.0.1", Users: []string{"bob"}},
		} {
			r.Normalize()
			tx.PutResource(r)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	var snap *config.Snapshot
	st.View(func(tx *store.Tx) (err error) { snap, err = tx.Snapshot(config.DefaultGatewayID); return })
	live := config.NewLive(snap)
	d := Deps{Live: live, Store: st, Secrets: box, Sessions: sessions.NewRegistry(), Static: http.FileServer(http.Dir("../assets/static")),
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	for _, o := range opts {
		o(&d)
	}
	p := New(d)
	srv := httptest.NewTLSServer(p)
	t.Cleanup(srv.Close)
	return &env{t: t, st: st, live: live, p: p, srv: srv}
}

// editSite changes the site defaults the way the admin API does.
func (e *env) editSite(fn func(*config.PortalSettings)) {
	e.t.Helper()
	err := e.st.Apply(e.live, config.DefaultGatewayID, func(tx *store.Tx) error {
		s, _ := tx.Site()
		fn(&s)
		return tx.PutSite(s)
	})
	if err != nil {
		e.t.Fatal(err)
	}
}

func (e *env) client() *http.Client {
	jar, _ := cookiejar.New(nil)
	// A copy: httptest's Client is shared, and each browser needs its own jar.
	c := *e.srv.Client()
	c.Jar = jar
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &c
}

var csrfRE = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

func (e *env) get(c *http.Client, path string) (*http.Response, string) {
	e.t.Helper()
	resp, err := c.Get(e.srv.URL + path)
	if err != nil {
		e.t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp, string(b)
}

func (e *env) signIn(c *http.Client, user, pw string) (*http.Response, string) {
	e.t.Helper()
	_, page := e.get(c, "/userportal/")
	m := csrfRE.FindStringSubmatch(page)
	if m == nil {
		e.t.Fatalf("no csrf field in sign-in page:\n%s", page)
	}
	resp, err := c.PostForm(e.srv.URL+"/userportal/signin", url.Values{"csrf": {m[1]}, "username": {user}, "password": {pw}})
	if err != nil {
		e.t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp, string(b)
}

func TestSignInPageHeadersAndCookies(t *testing.T) {
	e := newEnv(t)
	resp, page := e.get(e.client(), "/userportal/")
	if resp.StatusCode != 200 || !strings.Contains(page, "user@domain") {
		t.Fatalf("sign-in page %d:\n%s", resp.StatusCode, page)
	}
	if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "frame-ancestors 'none'") || resp.Header.Get("X-Frame-Options") != "DENY" {
		t.Fatalf("framing not refused: %q %q", csp, resp.Header.Get("X-Frame-Options"))
	}
	c := resp.Cookies()[0]
	if c.Name != "_SessionId_signin" || !c.Secure || !c.HttpOnly || c.SameSite != http.SameSiteLaxMode {
		t.Fatalf("pre-auth cookie %+v", c)
	}
	if r, _ := e.get(e.client(), "/elsewhere/"); r.StatusCode != 404 {
		t.Fatalf("outside the portal path: %d", r.StatusCode)
	}
}

func TestSignInFlowAssignmentsAndLaunch(t *testing.T) {
	e := newEnv(t)
	c := e.client()
	resp, body := e.signIn(c, "alice", "wrong-password")
	if resp.StatusCode != 401 || !strings.Contains(body, "Wrong user name or password") {
		t.Fatalf("wrong password: %d", resp.StatusCode)
	}
	resp, _ = e.signIn(c, `OFFICE\alice`, "alice-password")
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("sign-in: %d", resp.StatusCode)
	}
	var sess *http.Cookie
	for _, ck := range resp.Cookies() {
		if ck.Name == "_SessionId" {
			sess = ck
		}
	}
	if sess == nil || !sess.HttpOnly || !sess.Secure {
		t.Fatalf("session cookie %+v", resp.Cookies())
	}
	_, home := e.get(c, "/userportal/")
	if !strings.Contains(home, "Workstation") || strings.Contains(home, "Secret") || strings.Contains(home, "127.0.0.1") {
		t.Fatalf("home lists the wrong resources or leaks a host:\n%s", home)
	}
	csrf := regexp.MustCompile(`data-csrf="([^"]+)"`).FindStringSubmatch(home)[1]
	launch := func(id, token string) (*http.Response, map[string]any) {
		req, _ := http.NewRequest("POST", e.srv.URL+"/userportal/api/launch/"+id, nil)
		if token != "" {
			req.Header.Set("X-CSRF-Token", token)
		}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var out map[string]any
		json.NewDecoder(resp.Body).Decode(&out)
		resp.Body.Close()
		return resp, out
	}
	if r, _ := launch("ws1", ""); r.StatusCode != 403 {
		t.Fatalf("launch without CSRF token: %d", r.StatusCode)
	}
	if r, _ := launch("secret-server", csrf); r.StatusCode != 403 {
		t.Fatalf("launch of an unassigned resource: %d", r.StatusCode)
	}
	r, out := launch("ws1", csrf)
	if r.StatusCode != 200 || !strings.Contains(out["url"].(string), "/userportal/session/ws1#ticket=") {
		t.Fatalf("launch: %d %v", r.StatusCode, out)
	}
	// VNC has no file transfer: its page offers no file panel, though the
	// policy allows both directions.
	if _, page := e.get(c, "/userportal/session/ws1"); !strings.Contains(page, `data-protocol="vnc"`) || strings.Contains(page, "btn-files") {
		t.Fatalf("VNC session page without its protocol or with a file panel:\n%s", page)
	}
	ev, _ := e.st.Audit(store.AuditFilter{User: "alice"})
	types := []string{}
	for _, x := range ev {
		types = append(types, x.Type)
	}
	if got := strings.Join(types, ","); !strings.Contains(got, "launch,launch.refused,signin.ok,signin.fail") {
		t.Fatalf("audit trail %s", got)
	}
	// The session survives a gateway restart: a new portal over the same store.
	p2 := New(e.p.Deps)
	req := httptest.NewRequest("GET", "/userportal/api/resources", nil)
	req.AddCookie(sess)
	rec := httptest.NewRecorder()
	p2.ServeHTTP(rec, req)
	if rec.Code != 200 || !strings.Contains(rec.Body.String(), "ws1") {
		t.Fatalf("session lost across restart: %d %s", rec.Code, rec.Body)
	}
	// Sign-out needs the CSRF token and ends the session.
	resp, err := c.PostForm(e.srv.URL+"/userportal/signout", url.Values{"csrf": {csrf}})
	if err != nil || resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("sign-out: %v %v", resp.StatusCode, err)
	}
	if r, _ := e.get(c, "/userportal/api/resources"); r.StatusCode != 401 {
		t.Fatalf("after sign-out: %d", r.StatusCode)
	}
}

func TestLoginFormats(t *testing.T) {
	e := newEnv(t)
	for _, name := range []string{"alice", `OFFICE\alice`, "alice@office.example.com", "ALICE@OFFICE"} {
		if resp, _ := e.signIn(e.client(), name, "alice-password"); resp.StatusCode != http.StatusSeeOther {
			t.Errorf("%q refused: %d", name, resp.StatusCode)
		}
	}
	if resp, _ := e.signIn(e.client(), `OTHER\alice`, "alice-password"); resp.StatusCode != 401 {
		t.Errorf("wrong domain accepted: %d", resp.StatusCode)
	}
	e.editSite(func(s *config.PortalSettings) { s.Restrictions.PreWindows2000Login = true })
	c := e.client()
	_, page := e.get(c, "/userportal/")
	if !strings.Contains(page, `DOMAIN\user`) {
		t.Fatal("sign-in hint does not follow the pre-Windows 2000 setting")
	}
	e.signIn(c, "alice@office.example.com", "alice-password")
	_, home := e.get(c, "/userportal/")
	if !strings.Contains(home, `next time sign in as OFFICE\alice`) {
		t.Fatalf("no hint about the configured format:\n%s", home)
	}
	resp, body := e.signIn(e.client(), `OFFICE\`, "x")
	if resp.StatusCode != 400 || !strings.Contains(body, `Sign in as OFFICE\alice`) {
		t.Fatalf("malformed login: %d %s", resp.StatusCode, body)
	}
}

func TestDisabledAccountAndThrottle(t *testing.T) {
	e := newEnv(t)
	resp, body := e.signIn(e.client(), "bob", "alice-password")
	if resp.StatusCode != 403 || !strings.Contains(body, "disabled") {
		t.Fatalf("disabled account: %d", resp.StatusCode)
	}
	c := e.client()
	for i := 0; i < signin.FreeAttempts; i++ {
		e.signIn(c, "alice", "nope")
	}
	resp, body = e.signIn(c, "alice", "nope")
	if resp.StatusCode != 429 || !regexp.MustCompile(`Try again in \d+ s`).MatchString(body) {
		t.Fatalf("throttle: %d", resp.StatusCode)
	}
	// Even the right password waits until the lock-out passes.
	if resp, _ := e.signIn(c, "alice", "alice-password"); resp.StatusCode != 429 {
		t.Fatalf("locked-out account accepted: %d", resp.StatusCode)
	}
}

func TestCookieNameEmbeddingAndPathFollowSettingsLive(t *testing.T) {
	e := newEnv(t)
	e.editSite(func(s *config.PortalSettings) {
		s.Web.CookieName = "AWSALB"
		s.Web.Path = "/office"
		s.Restrictions.AllowEmbedding = true
	})
	c := e.client()
	resp, _ := e.signIn2(c, "/office")
	found := false
	for _, ck := range resp.Cookies() {
		if ck.Name == "AWSALB" {
			found = true
			if ck.SameSite != http.SameSiteNoneMode || !ck.Secure || !ck.Partitioned {
				t.Fatalf("embedded cookie must be SameSite=None; Secure; Partitioned: %+v", ck)
			}
		}
	}
	if !found {
		t.Fatalf("cookie not renamed: %v", resp.Cookies())
	}
	r, _ := e.get(c, "/office/")
	if r.Header.Get("X-Frame-Options") != "" || !strings.Contains(r.Header.Get("Content-Security-Policy"), "frame-ancestors *") {
		t.Fatal("framing still refused with embedding allowed")
	}
}

// signIn2 signs alice in under another portal path.
func (e *env) signIn2(c *http.Client, path string) (*http.Response, string) {
	_, page := e.get(c, path+"/")
	m := csrfRE.FindStringSubmatch(page)
	resp, err := c.PostForm(e.srv.URL+path+"/signin", url.Values{"csrf": {m[1]}, "username": {"alice"}, "password": {"alice-password"}})
	if err != nil {
		e.t.Fatal(err)
	}
	resp.Body.Close()
	return resp, ""
}

func TestCORS(t *testing.T) {
	e := newEnv(t)
	e.editSite(func(s *config.PortalSettings) {
		s.Restrictions.CORS = config.CORS{Enabled: true, Origins: []string{"https://intranet.example.com"}, CacheSeconds: 900}
	})
	preflight := func(origin string) *http.Response {
		req, _ := http.NewRequestWithContext(context.Background(), "OPTIONS", e.srv.URL+"/userportal/api/resources", nil)
		req.Header.Set("Origin", origin)
		req.Header.Set("Access-Control-Request-Method", "GET")
		resp, err := e.srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	ok := preflight("https://intranet.example.com")
	if ok.StatusCode != 204 || ok.Header.Get("Access-Control-Allow-Origin") != "https://intranet.example.com" ||
		ok.Header.Get("Access-Control-Max-Age") != "900" || ok.Header.Get("Access-Control-Allow-Credentials") != "true" {
		t.Fatalf("allowed origin preflight: %d %v", ok.StatusCode, ok.Header)
	}
	if bad := preflight("https://evil.example.com"); bad.Header.Get("Access-Control-Allow-Origin") != "" {
		t.Fatal("CORS headers for a foreign origin")
	}
}

func TestMain(m *testing.M) { os.Exit(m.Run()) }

func TestDisabledAfterSignInCannotLaunch(t *testing.T) {
	e := newEnv(t)
	c := e.client()
	e.signIn(c, "alice", "alice-password")
	_, home := e.get(c, "/userportal/")
	csrf := regexp.MustCompile(`data-csrf="([^"]+)"`).FindStringSubmatch(home)[1]
	err := e.st.Apply(e.live, config.DefaultGatewayID, func(tx *store.Tx) error {
		u, _ := tx.User("alice")
		u.Disabled = true
		return tx.PutUser(u)
	})
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest("POST", e.srv.URL+"/userportal/api/launch/ws1", nil)
	req.Header.Set("X-CSRF-Token", csrf)
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("launch by a disabled account: %d", resp.StatusCode)
	}
	if r, _ := e.get(c, "/userportal/api/resources"); r.StatusCode != http.StatusUnauthorized {
		t.Fatalf("the disabled account's portal session survived: %d", r.StatusCode)
	}
}

// The portal page's resource list is rendered once per settings version and
// user: a published change (a renamed resource, a new one, the new-tab
// setting) shows on the next page, and each user sees only their own list.
func TestPortalResourceListFollowsSettings(t *testing.T) {
	e := newEnv(t)
	c := e.client()
	if resp, _ := e.signIn(c, `OFFICE\alice`, "alice-password"); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("sign-in: %d", resp.StatusCode)
	}
	if _, home := e.get(c, "/userportal/"); !strings.Contains(home, `data-name="Workstation"`) || strings.Contains(home, "Secret") || !strings.Contains(home, `class="newtab"`) {
		t.Fatalf("first page lists the wrong resources:\n%s", home)
	}
	err := e.st.Apply(e.live, config.DefaultGatewayID, func(tx *store.Tx) error {
		for _, r := range []config.Resource{
			{ID: "ws1", Name: "Renamed <desk>", Protocol: config.ProtocolVNC, Host: "127.0.0.1", Groups: []string{"staff"}},
			{ID: "ws2", Name: "Second desk", Protocol: config.ProtocolVNC, Host: "127.0.0.1", Users: []string{"alice"}},
		} {
			r.Normalize()
			if err := tx.PutResource(r); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	e.editSite(func(s *config.PortalSettings) { s.Client.OpenInNewTab = false })
	_, home := e.get(c, "/userportal/")
	if !strings.Contains(home, `data-name="Renamed &lt;desk&gt;"`) || !strings.Contains(home, "Second desk") || strings.Contains(home, `"Workstation"`) || strings.Contains(home, `class="newtab"`) {
		t.Fatalf("page after the change does not show it (escaped):\n%s", home)
	}
	if strings.Contains(home, "<desk>") {
		t.Fatalf("resource name not escaped:\n%s", home)
	}
}

// TestPortalPageRenderedWhole: a page is rendered whole and sent with its
// Content-Length (one write, not 4 KiB chunks), and a pooled render
// buffer carries nothing of the page before it into the next.
func TestPortalPageRenderedWhole(t *testing.T) {
	e := newEnv(t)
	// Its own client: e.client() hands out the test server's one client.
	anon := &http.Client{Transport: e.srv.Client().Transport}
	resp, signin := e.get(anon, "/userportal/")
	if resp.ContentLength != int64(len(signin)) || len(resp.TransferEncoding) != 0 {
		t.Fatalf("sign-in page: Content-Length %d, Transfer-Encoding %v, body %d bytes", resp.ContentLength, resp.TransferEncoding, len(signin))
	}
	// Enough resources for a page larger than net/http's 4 KiB response
	// buffer, which a page written straight to the response leaves as
	// chunks without a Content-Length.
	err := e.st.Apply(e.live, config.DefaultGatewayID, func(tx *store.Tx) error {
		for i := range 40 {
			r := config.Resource{ID: fmt.Sprintf("desk%d", i), Name: fmt.Sprintf("Desk number %d", i), Protocol: config.ProtocolVNC, Host: "127.0.0.1", Users: []string{"alice"}}
			r.Normalize()
			if err := tx.PutResource(r); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	c := e.client()
	if resp, _ := e.signIn(c, `OFFICE\alice`, "alice-password"); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("sign-in: %d", resp.StatusCode)
	}
	for i := range 3 {
		resp, home := e.get(c, "/userportal/")
		if resp.StatusCode != http.StatusOK || resp.ContentLength != int64(len(home)) || len(resp.TransferEncoding) != 0 {
			t.Fatalf("home page %d: status %d, Content-Length %d, Transfer-Encoding %v, body %d bytes", i, resp.StatusCode, resp.ContentLength, resp.TransferEncoding, len(home))
		}
		if len(home) <= 4096 || strings.Count(home, "</html>") != 1 || !strings.Contains(home, `data-name="Desk number 39"`) {
			t.Fatalf("home page %d is not one whole page:\n%s", i, home)
		}
		// Each sign-in page has its own CSRF token; otherwise it is the
		// same page, with nothing of the home page before it.
		_, again := e.get(anon, "/userportal/")
		if csrfRE.ReplaceAllString(again, "") != csrfRE.ReplaceAllString(signin, "") {
			t.Fatalf("sign-in page after a home page differs:\n%s", again)
		}
	}
}
