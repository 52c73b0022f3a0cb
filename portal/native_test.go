package portal

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"portico/service/config"
	"portico/service/detect"
)

func TestDecideLaunch(t *testing.T) {
	const (
		B   = config.LaunchBrowser
		N   = config.LaunchNative
		NWF = config.LaunchNativeWithFallback
	)
	tests := []struct {
		in   launchInput
		want launchAction
	}{
		// browser: always the HTML5 client, whatever else is known.
		{launchInput{Method: B}, actBrowser},
		{launchInput{Method: B, State: nativeDetected}, actBrowser},
		{launchInput{Method: B, State: nativeDetected, AllowSelect: true, Choice: N}, actBrowser},
		// native: never the browser.
		{launchInput{Method: N}, actAskDetect},
		{launchInput{Method: N, State: nativeDetected}, actNative},
		{launchInput{Method: N, State: nativeNotDetected}, actShowDownload},
		{launchInput{Method: N, State: nativeNotDetected, InBrowser: true}, actShowDownload},
		{launchInput{Method: N, State: nativeDetected, AllowSelect: true, Choice: B}, actNative},
		// native-with-fallback without a user choice.
		{launchInput{Method: NWF}, actAskDetect},
		{launchInput{Method: NWF, State: nativeDetected}, actNative},
		{launchInput{Method: NWF, State: nativeNotDetected}, actFallbackOffer},
		// ... the fallback offer accepted.
		{launchInput{Method: NWF, State: nativeNotDetected, InBrowser: true}, actBrowser},
		{launchInput{Method: NWF, State: nativeDetected, InBrowser: true}, actBrowser},
		{launchInput{Method: NWF, InBrowser: true}, actBrowser},
		// ... the user's own choice, honoured only when selecting is allowed.
		{launchInput{Method: NWF, State: nativeDetected, AllowSelect: true, Choice: B}, actBrowser},
		{launchInput{Method: NWF, AllowSelect: true, Choice: B}, actBrowser},
		{launchInput{Method: NWF, State: nativeDetected, AllowSelect: false, Choice: B}, actNative},
		{launchInput{Method: NWF, State: nativeDetected, AllowSelect: true, Choice: N}, actNative},
		{launchInput{Method: NWF, State: nativeNotDetected, AllowSelect: true, Choice: N}, actFallbackOffer},
		{launchInput{Method: NWF, AllowSelect: true, Choice: N}, actAskDetect},
		{launchInput{Method: NWF, State: nativeNotDetected, AllowSelect: true, Choice: "carrier-pigeon"}, actFallbackOffer},
		// An unknown method (never valid in settings) falls back to the browser.
		{launchInput{Method: "", State: nativeDetected}, actBrowser},
	}
	for _, tc := range tests {
		if got := decideLaunch(tc.in); got != tc.want {
			t.Errorf("decideLaunch(%+v) = %s, want %s", tc.in, got, tc.want)
		}
	}
}

// detectEnv is a portal with detection wired as the gateway wires it.
type detectEnv struct {
	*env
	nonces  *detect.Nonces
	fp      string
	clients string
}

func newDetectEnv(t *testing.T) *detectEnv {
	e := newEnv(t)
	ne := &detectEnv{env: e, nonces: detect.NewNonces(0), clients: t.TempDir()}
	d := e.p.Deps
	d.Nonces = ne.nonces
	d.Fingerprint = func() string { return ne.fp }
	d.DetectDNS = func() string { return "0.0.0.0:8053" }
	d.ClientDirs = []string{ne.clients}
	e.p = New(d)
	e.srv.Close()
	e.srv = httptest.NewTLSServer(e.p)
	t.Cleanup(e.srv.Close)
	sum := sha256.Sum256(e.srv.Certificate().Raw)
	ne.fp = strings.ToUpper(hex.EncodeToString(sum[:])) // as tlscert shows it, minus colons
	return ne
}

// signedIn signs alice in and returns her client and CSRF token. Each
// call has its own client (env.client shares the server's one).
func (ne *detectEnv) signedIn() (*http.Client, string) {
	ne.t.Helper()
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Transport: ne.srv.Client().Transport, Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	ne.signIn(c, "alice", "alice-password")
	_, home := ne.get(c, "/userportal/")
	m := regexp.MustCompile(`data-csrf="([^"]+)"`).FindStringSubmatch(home)
	if m == nil {
		ne.t.Fatalf("not signed in:\n%s", home)
	}
	return c, m[1]
}

// call sends an API request with the CSRF token and decodes the answer.
func (ne *detectEnv) call(c *http.Client, method, path, csrf, body string, out any) int {
	ne.t.Helper()
	req, _ := http.NewRequest(method, ne.srv.URL+path, strings.NewReader(body))
	req.Header.Set("X-CSRF-Token", csrf)
	req.Header.Set("Accept", "application/json")
	resp, err := c.Do(req)
	if err != nil {
		ne.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if out != nil && len(b) > 0 {
		if err := json.Unmarshal(b, out); err != nil {
			ne.t.Fatalf("%s %s: %v in %s", method, path, err, b)
		}
	}
	return resp.StatusCode
}

func TestDetectionFlowRemembersResultAndLaunchesNative(t *testing.T) {
	ne := newDetectEnv(t)
	ne.editSite(func(p *config.PortalSettings) {
		p.Client.LaunchMethod = config.LaunchNativeWithFallback
		p.Client.DetectionTimeoutSeconds = 30
	})
	c, csrf := ne.signedIn()

	var reply launchReply
	if code := ne.call(c, "POST", "/userportal/api/launch/ws1", csrf, "", &reply); code != 200 || reply.Action != string(actAskDetect) || reply.NativeURL != "" {
		t.Fatalf("launch before detection: %d %+v, want ask-detect", code, reply)
	}
	if code := ne.call(c, "POST", "/userportal/api/detect", "wrong", "", nil); code != http.StatusForbidden {
		t.Fatalf("detection without the CSRF token: %d", code)
	}
	var start struct {
		URL, Nonce     string
		TimeoutSeconds int
	}
	if code := ne.call(c, "POST", "/userportal/api/detect", csrf, "", &start); code != 200 {
		t.Fatalf("start detection: %d", code)
	}
	u, err := url.Parse(start.URL)
	if err != nil || u.Scheme != "portico" || u.Host != "detect" {
		t.Fatalf("detect URL %q", start.URL)
	}
	q := u.Query()
	gwHost, _, _ := net.SplitHostPort(q.Get("gw"))
	if q.Get("gw") != strings.TrimPrefix(ne.srv.URL, "https://") || q.Get("n") != start.Nonce || q.Get("path") != "/userportal" ||
		q.Get("fp") != strings.ToLower(ne.fp) || q.Get("zone") != config.DefaultDetectZone || q.Get("dns") != net.JoinHostPort(gwHost, "8053") || start.TimeoutSeconds != 30 {
		t.Fatalf("detect URL fields: %v", q)
	}
	var st map[string]string
	ne.call(c, "GET", "/userportal/api/detect/"+start.Nonce, csrf, "", &st)
	if st["state"] != "pending" {
		t.Fatalf("status before any probe: %v", st)
	}
	// Another sign-in cannot read (or consume) this detection.
	other, _ := ne.signedIn()
	if code := ne.call(other, "GET", "/userportal/api/detect/"+start.Nonce, "", "", nil); code != 404 {
		t.Fatalf("another sign-in read the detection: %d", code)
	}
	// The HTTP probe, as portico-client sends it: no cookie, the nonce as body.
	resp, err := (&http.Client{Transport: ne.srv.Client().Transport}).Post(ne.srv.URL+"/userportal/api/detect/probe", "text/plain", strings.NewReader(start.Nonce))
	if err != nil || resp.StatusCode != http.StatusNoContent {
		t.Fatalf("probe: %v %v", resp.Status, err)
	}
	ne.call(c, "GET", "/userportal/api/detect/"+start.Nonce, csrf, "", &st)
	if st["state"] != "detected" || st["via"] != "http" {
		t.Fatalf("status after the probe: %v", st)
	}

	// Remembered: the launch is native right away, with the agreed URL.
	reply = launchReply{}
	if code := ne.call(c, "POST", "/userportal/api/launch/ws1", csrf, "", &reply); code != 200 || reply.Action != string(actNative) {
		t.Fatalf("launch after detection: %d %+v", code, reply)
	}
	lu, _ := url.Parse(reply.NativeURL)
	lq := lu.Query()
	if lu.Scheme != "portico" || lu.Host != "launch" || lq.Get("gw") != q.Get("gw") || lq.Get("fp") != strings.ToLower(ne.fp) ||
		lq.Get("proto") != "vnc" || lq.Get("name") != "Workstation" || lq.Get("user") != "alice" || lq.Get("t") == "" {
		t.Fatalf("launch URL %s", reply.NativeURL)
	}
	tk, err := ne.p.tickets.Redeem(lq.Get("t"), "")
	if err != nil || !tk.Native || tk.Resource != "ws1" || tk.User != "alice" {
		t.Fatalf("ticket in the launch URL: %+v %v", tk, err)
	}
	// The page watches the launch: the ticket was redeemed, so it opened.
	ne.call(c, "GET", "/userportal/api/launch/native/"+reply.Watch, csrf, "", &st)
	if st["state"] != "opened" {
		t.Fatalf("watch after redeem: %v", st)
	}
	reply = launchReply{}
	ne.call(c, "POST", "/userportal/api/launch/ws1", csrf, "", &reply)
	ne.call(c, "GET", "/userportal/api/launch/native/"+reply.Watch, csrf, "", &st)
	if st["state"] != "pending" {
		t.Fatalf("watch of an unused ticket: %v", st)
	}
	// Unused within the detection timeout: the launch failed, the page
	// offers the browser.
	b, _ := hex.DecodeString(reply.Watch)
	ne.p.tickets.mu.Lock()
	tk = ne.p.tickets.m[[32]byte(b)]
	if ttl := tk.Expires.Sub(ne.p.tickets.now()); ttl > 30*time.Second+detectGrace || ttl < 29*time.Second {
		t.Errorf("native-with-fallback ticket lives %v, want the detection timeout plus grace", ttl)
	}
	ne.p.tickets.now = func() time.Time { return tk.Expires.Add(time.Second) }
	ne.p.tickets.mu.Unlock()
	ne.call(c, "GET", "/userportal/api/launch/native/"+reply.Watch, csrf, "", &st)
	if st["state"] != "not-opened" {
		t.Fatalf("watch of an expired ticket: %v", st)
	}
}

func TestNotDetectedFallbackAndUserChoice(t *testing.T) {
	ne := newDetectEnv(t)
	ne.editSite(func(p *config.PortalSettings) { p.Client.LaunchMethod = config.LaunchNativeWithFallback })
	c, csrf := ne.signedIn()
	// The detection timed out (the expiry itself is tested in service/detect).
	for _, s := range ne.p.sessions.m {
		ne.p.sessions.Update(s, func(s *Session) { s.Native = string(nativeNotDetected) })
	}
	var reply launchReply
	ne.call(c, "POST", "/userportal/api/launch/ws1", csrf, "", &reply)
	if reply.Action != string(actFallbackOffer) || reply.NativeURL == "" {
		t.Fatalf("not detected with fallback: %+v", reply)
	}
	reply = launchReply{}
	ne.call(c, "POST", "/userportal/api/launch/ws1?method=browser", csrf, "", &reply)
	if reply.Action != string(actBrowser) || !strings.Contains(reply.URL, "/session/ws1#ticket=") {
		t.Fatalf("fallback accepted: %+v", reply)
	}

	// Choosing a method is refused until the admin allows it.
	if code := ne.call(c, "POST", "/userportal/api/launch-method", csrf, `{"method":"browser"}`, nil); code != http.StatusForbidden {
		t.Fatalf("choice while not allowed: %d", code)
	}
	ne.editSite(func(p *config.PortalSettings) { p.Client.AllowUserSelect = true })
	if code := ne.call(c, "POST", "/userportal/api/launch-method", csrf, `{"method":"teleport"}`, nil); code != http.StatusBadRequest {
		t.Fatalf("bad choice: %d", code)
	}
	if code := ne.call(c, "POST", "/userportal/api/launch-method", csrf, `{"method":"browser"}`, nil); code != http.StatusNoContent {
		t.Fatalf("choice: %d", code)
	}
	reply = launchReply{}
	ne.call(c, "POST", "/userportal/api/launch/ws1", csrf, "", &reply)
	if reply.Action != string(actBrowser) {
		t.Fatalf("user chose the browser: %+v", reply)
	}
	// The choice is the user's: a new sign-in keeps it, and the page shows it.
	c2, _ := ne.signedIn()
	if _, home := ne.get(c2, "/userportal/"); !strings.Contains(home, `data-choice="browser"`) {
		t.Fatal("the stored choice is not on the page of a new sign-in")
	}
	// Native only: not detected shows the download, never the browser.
	ne.editSite(func(p *config.PortalSettings) {
		p.Client.LaunchMethod = config.LaunchNative
		p.Client.AllowUserSelect = false
	})
	reply = launchReply{}
	ne.call(c, "POST", "/userportal/api/launch/ws1?method=browser", csrf, "", &reply)
	if reply.Action != string(actShowDownload) || reply.NativeURL == "" {
		t.Fatalf("native only, not detected: %+v", reply)
	}
}

// TestNativeURLFollowsNLBLive: changing the alternate host and port
// changes the gw of the next launch URL, without a restart.
func TestNativeURLFollowsNLBLive(t *testing.T) {
	ne := newDetectEnv(t)
	ne.editSite(func(p *config.PortalSettings) { p.Client.LaunchMethod = config.LaunchNative })
	c, csrf := ne.signedIn()
	for _, s := range ne.p.sessions.m {
		ne.p.sessions.Update(s, func(s *Session) { s.Native = string(nativeDetected) })
	}
	gw := func() string {
		t.Helper()
		var reply launchReply
		ne.call(c, "POST", "/userportal/api/launch/ws1", csrf, "", &reply)
		u, err := url.Parse(reply.NativeURL)
		if err != nil || reply.Action != string(actNative) {
			t.Fatalf("launch: %+v", reply)
		}
		return u.Query().Get("gw")
	}
	main := strings.TrimPrefix(ne.srv.URL, "https://")
	mainHost, _, _ := net.SplitHostPort(main)
	steps := []struct {
		edit func(*config.NLBSettings)
		want string
	}{
		{func(*config.NLBSettings) {}, main},
		{func(n *config.NLBSettings) { n.AlternatePortEnabled, n.AlternatePort = true, 4443 }, net.JoinHostPort(mainHost, "4443")},
		{func(n *config.NLBSettings) { n.AlternateHostEnabled, n.AlternateHost = true, "nlb.example.com" }, "nlb.example.com:4443"},
		{func(n *config.NLBSettings) { n.AlternatePort = 5443 }, "nlb.example.com:5443"},
		{func(n *config.NLBSettings) { n.AlternatePortEnabled = false }, "nlb.example.com:" + strings.Split(main, ":")[1]},
		{func(n *config.NLBSettings) { n.AlternateHostEnabled = false }, main},
	}
	for i, s := range steps {
		ne.editSite(func(p *config.PortalSettings) { s.edit(&p.NLB) })
		if got := gw(); got != s.want {
			t.Fatalf("step %d: gw %s, want %s", i, got, s.want)
		}
	}
}

func TestClientDownloads(t *testing.T) {
	ne := newDetectEnv(t)
	ne.editSite(func(p *config.PortalSettings) { p.Client.LaunchMethod = config.LaunchNative })
	c, _ := ne.signedIn()
	if _, home := ne.get(c, "/userportal/"); !strings.Contains(home, "No portico-client build is available on this gateway") {
		t.Fatal("the page does not say that no client is available")
	}
	os.WriteFile(filepath.Join(ne.clients, "portico-client.exe"), []byte("MZ windows build"), 0o644)
	os.WriteFile(filepath.Join(ne.clients, "portico-client"), []byte("\x7fELF linux build"), 0o755)
	os.WriteFile(filepath.Join(ne.clients, "README"), []byte("not a client"), 0o644)
	_, home := ne.get(c, "/userportal/")
	win, lin := strings.Index(home, `/client/portico-client.exe"`), strings.Index(home, `/client/portico-client"`)
	if win < 0 || lin < 0 || win > lin || strings.Contains(home, "/client/README") {
		t.Fatalf("download links (Windows first, clients only) missing:\n%s", home)
	}
	resp, body := ne.get(c, "/userportal/client/portico-client")
	if resp.StatusCode != 200 || body != "\x7fELF linux build" || !strings.Contains(resp.Header.Get("Content-Disposition"), "attachment") {
		t.Fatalf("download: %d %q %v", resp.StatusCode, body, resp.Header)
	}
	for _, name := range []string{"README", "portico-client-missing"} {
		if resp, _ := ne.get(c, "/userportal/client/"+name); resp.StatusCode != 404 {
			t.Errorf("download of %s: %d, want 404", name, resp.StatusCode)
		}
	}
	// Only listed builds are served: a path that climbs out is never a file.
	if resp, body := ne.get(c, "/userportal/client/..%2f..%2fportico-client"); resp.StatusCode == 200 || strings.Contains(body, "ELF") {
		t.Errorf("path traversal served %d %q", resp.StatusCode, body)
	}
	if resp, _ := ne.get(ne.client(), "/userportal/client/portico-client"); resp.StatusCode == 200 {
		t.Fatal("a signed-out visitor downloaded the client")
	}
}
