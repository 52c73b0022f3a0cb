package integration

import (
	"crypto/tls"
	"encoding/json"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"portico/service/config"
	"portico/service/native"
)

// portalClient is a browser-like HTTP client: a cookie jar, redirects
// followed, the test certificates accepted.
func portalClient() *http.Client {
	jar, _ := cookiejar.New(nil)
	return &http.Client{Jar: jar, Timeout: 20 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, DisableKeepAlives: true}}
}

// signInVia signs alice in through base and returns the session cookie's
// value as the browser holds it.
func signInVia(t *testing.T, c *http.Client, base, cookie string) string {
	t.Helper()
	resp, err := c.Get(base + "/userportal/")
	if err != nil {
		t.Fatalf("sign-in page: %v", err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	m := regexp.MustCompile(`name="csrf" value="([^"]+)"`).FindSubmatch(page)
	if m == nil {
		t.Fatalf("no sign-in form at %s:\n%s", base, page)
	}
	resp, err = c.PostForm(base+"/userportal/signin", url.Values{"csrf": {string(m[1])}, "username": {"alice@office"}, "password": {"alice-password"}})
	if err != nil {
		t.Fatalf("sign in: %v", err)
	}
	resp.Body.Close()
	u, _ := url.Parse(base + "/userportal/")
	for _, ck := range c.Jar.Cookies(u) {
		if ck.Name == cookie {
			return ck.Value
		}
	}
	t.Fatalf("no %s cookie after signing in through %s (status %d)", cookie, base, resp.StatusCode)
	return ""
}

// portalUser is alice signed in to the portal over plain HTTPS (no
// browser): what the portal page's script does, done by hand.
type portalUser struct {
	p    *portico
	hc   *http.Client
	csrf string
	fp   string // SHA-256 of the gateway's certificate, as the portal would put in a launch URL
	// detected is set once the portal recorded this sign-in's client.
	detected bool
}

func signInHTTP(t *testing.T, p *portico) *portalUser {
	t.Helper()
	u := &portalUser{p: p, hc: portalClient()}
	signInVia(t, u.hc, p.URL, config.DefaultCookieName)
	m := regexp.MustCompile(`data-csrf="([^"]+)"`).FindStringSubmatch(u.get(t, "/userportal/"))
	if m == nil {
		t.Fatal("not signed in: home page without data-csrf")
	}
	u.csrf = m[1]
	c, err := tls.Dial("tcp", strings.TrimPrefix(p.URL, "https://"), &tls.Config{InsecureSkipVerify: true})
	if err != nil {
		t.Fatal(err)
	}
	u.fp = native.Fingerprint(c.ConnectionState().PeerCertificates[0].Raw)
	c.Close()
	return u
}

func (u *portalUser) get(t *testing.T, path string) string {
	t.Helper()
	resp, err := u.hc.Get(u.p.URL + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

func (u *portalUser) post(t *testing.T, path string) (int, []byte) {
	t.Helper()
	req, _ := http.NewRequest("POST", u.p.URL+path, nil)
	req.Header.Set("X-CSRF-Token", u.csrf)
	resp, err := u.hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

// ticket asks the portal's launch endpoint for a ticket, as the page does.
func (u *portalUser) ticket(t *testing.T, id string) string {
	t.Helper()
	code, body := u.post(t, "/userportal/api/launch/"+id)
	var r struct{ URL string }
	if code != http.StatusOK || json.Unmarshal(body, &r) != nil {
		t.Fatalf("launch %s: %d %s", id, code, body)
	}
	_, tk, ok := strings.Cut(r.URL, "#ticket=")
	if !ok {
		t.Fatalf("launch URL without ticket: %s", r.URL)
	}
	return tk
}

// nativeLaunch is the portico://launch URL the portal hands the page for
// a native launch. The portal hands them out once the client was detected,
// so the first call answers the detection's HTTP probe as portico-client
// does.
func (u *portalUser) nativeLaunch(t *testing.T, id string) string {
	t.Helper()
	if !u.detected {
		code, body := u.post(t, "/userportal/api/detect")
		var start struct{ Nonce string }
		if json.Unmarshal(body, &start); code != http.StatusOK || start.Nonce == "" {
			t.Fatalf("start detection: %d %s", code, body)
		}
		probe, err := portalClient().Post(u.p.URL+"/userportal/api/detect/probe", "text/plain", strings.NewReader(start.Nonce))
		if err != nil || probe.StatusCode >= 300 {
			t.Fatalf("detection probe: %v %v", probe, err)
		}
		probe.Body.Close()
		u.get(t, "/userportal/api/detect/"+start.Nonce) // the page's poll records the result
		u.detected = true
	}
	code, body := u.post(t, "/userportal/api/launch/"+id)
	var r struct{ NativeURL string }
	if json.Unmarshal(body, &r); code != http.StatusOK || !strings.HasPrefix(r.NativeURL, "portico://launch?") {
		t.Fatalf("native launch of %s: %d %s", id, code, body)
	}
	return r.NativeURL
}

// relay opens the session WebSocket with the user's cookies and the
// portal's origin, as the session page does.
func (u *portalUser) relay(t *testing.T, kind, ticket, query string) *websocket.Conn {
	t.Helper()
	d := websocket.Dialer{Jar: u.hc.Jar, TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, HandshakeTimeout: 20 * time.Second}
	ws, resp, err := d.Dial(strings.Replace(u.p.URL, "https://", "wss://", 1)+"/userportal/relay/"+kind+"?ticket="+url.QueryEscape(ticket)+query,
		http.Header{"Origin": {u.p.URL}})
	if err != nil {
		status := 0
		if resp != nil {
			status = resp.StatusCode
		}
		t.Fatalf("relay %s: %v (HTTP %d)", kind, err, status)
	}
	t.Cleanup(func() { ws.Close() })
	return ws
}
