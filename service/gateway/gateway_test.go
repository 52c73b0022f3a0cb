package gateway

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"portico/service/admin"
	"portico/service/config"
)

type testGW struct {
	*Gateway
	https, http, admin string
	client             *admin.Client
	out                *bytes.Buffer
}

func startGW(t *testing.T, portal http.Handler) *testGW {
	var build func(Parts) http.Handler
	if portal != nil {
		build = func(Parts) http.Handler { return portal }
	}
	t.Helper()
	out := &bytes.Buffer{}
	dir := t.TempDir()
	g, err := New(Options{
		DataDir: dir, HTTPSAddr: "127.0.0.1:0", HTTPAddr: "127.0.0.1:0", AdminAddr: "127.0.0.1:0", DNSAddr: "127.0.0.1:0",
		Version: "test", Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Out: out, Portal: build,
	})
	if err != nil {
		t.Fatal(err)
	}
	startForTest(t, g)
	tg := &testGW{Gateway: g, out: out}
	for _, l := range g.Listeners() {
		switch l.Name {
		case "https":
			tg.https = l.Addr
		case "http-redirect":
			tg.http = l.Addr
		case "admin":
			tg.admin = l.Addr
		}
	}
	c, err := admin.Dial(dir)
	if err != nil {
		t.Fatal(err)
	}
	tg.client = c
	return tg
}

func insecureClient() *http.Client {
	return &http.Client{
		Transport:     &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, ForceAttemptHTTP2: true},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		Timeout:       10 * time.Second,
	}
}

func TestFirstRunPrintsCredentialsOnce(t *testing.T) {
	g := startGW(t, nil)
	if !strings.Contains(g.out.String(), "user:     admin") || !strings.Contains(g.out.String(), "password: ") {
		t.Fatalf("first-run message missing: %q", g.out.String())
	}
	st, err := os.Stat(filepath.Join(g.opt.DataDir, TokenFile))
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("token file: %v %v", st, err)
	}
}

func TestHTTPSOnlyModernTLSAndHSTS(t *testing.T) {
	g := startGW(t, nil)
	resp, err := insecureClient().Get("https://" + g.https + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.Header.Get("Strict-Transport-Security") != "max-age=31536000" {
		t.Fatalf("HSTS = %q", resp.Header.Get("Strict-Transport-Security"))
	}
	if resp.TLS.Version < tls.VersionTLS12 {
		t.Fatalf("TLS version %x", resp.TLS.Version)
	}
	if resp.ProtoMajor != 2 {
		t.Fatalf("HTTP/2 not negotiated: %s", resp.Proto)
	}
	for _, v := range []uint16{tls.VersionTLS10, tls.VersionTLS11} {
		c, err := tls.Dial("tcp", g.https, &tls.Config{InsecureSkipVerify: true, MinVersion: v, MaxVersion: v})
		if err == nil {
			c.Close()
			t.Fatalf("TLS version %x accepted", v)
		}
	}
}

func TestHTTPRedirectsToHTTPS(t *testing.T) {
	g := startGW(t, nil)
	_, httpsPort, _ := net.SplitHostPort(g.https)
	resp, err := insecureClient().Get("http://" + g.http + "/userportal/x?y=1")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	want := "https://127.0.0.1:" + httpsPort + "/userportal/x?y=1"
	if resp.StatusCode != http.StatusMovedPermanently || resp.Header.Get("Location") != want {
		t.Fatalf("got %d %q, want 301 %q", resp.StatusCode, resp.Header.Get("Location"), want)
	}
}

func TestRootRedirectsToPortalPathAndFollowsLiveChange(t *testing.T) {
	g := startGW(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "portal:"+r.URL.Path) }))
	hc := insecureClient()
	loc := func() string {
		resp, err := hc.Get("https://" + g.https + "/")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.Header.Get("Location")
	}
	if l := loc(); l != config.DefaultPortalPath+"/" {
		t.Fatalf("/ → %q", l)
	}
	site := config.DefaultPortal()
	site.Web.Path = "/office"
	if err := g.client.Do(context.Background(), "PUT", "/api/v1/settings/site", site, nil); err != nil {
		t.Fatal(err)
	}
	if l := loc(); l != "/office/" {
		t.Fatalf("after live change / → %q", l)
	}
	// Disable the portal: a clear 503 page, no restart.
	site.Enabled = false
	if err := g.client.Do(context.Background(), "PUT", "/api/v1/settings/site", site, nil); err != nil {
		t.Fatal(err)
	}
	resp, err := hc.Get("https://" + g.https + "/office/")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(string(body), "not available") {
		t.Fatalf("disabled portal: %d %s", resp.StatusCode, body)
	}
	// The page speaks to users: no settings jargon meant for the admin.
	for _, admin := range []string{"site defaults", "disabled in the", "Forwarding", "administrator"} {
		if strings.Contains(string(body), admin) {
			t.Errorf("the portal-disabled page says %q to users: %s", admin, body)
		}
	}
}

func TestAdminAPIAuth(t *testing.T) {
	g := startGW(t, nil)
	hc := insecureClient()
	for _, tok := range []string{"", "Bearer wrong", "Basic " + g.Token()} {
		req, _ := http.NewRequest("GET", "https://"+g.admin+"/api/v1/status", nil)
		if tok != "" {
			req.Header.Set("Authorization", tok)
		}
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("auth %q: %d", tok, resp.StatusCode)
		}
	}
	var st admin.Status
	if err := g.client.Do(context.Background(), "GET", "/api/v1/status", nil, &st); err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, l := range st.Listeners {
		names[l.Name] = true
	}
	if st.Version != "test" || !names["https"] || !names["http-redirect"] || !names["admin"] || !names["dns"] || st.Mode != config.ModeNormal {
		t.Fatalf("status %+v", st)
	}
	// A request arriving from a non-loopback peer is refused even with the token.
	h := admin.New(g.adminDeps())
	rec := httptest.NewRecorder()
	req := httptest.NewRequest("GET", "/api/v1/status", nil)
	req.RemoteAddr = "192.0.2.10:40000"
	req.Header.Set("Authorization", "Bearer "+g.Token())
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusForbidden {
		t.Fatalf("non-loopback peer: %d", rec.Code)
	}
}

func TestAdminAddrMustBeLoopback(t *testing.T) {
	g, err := New(Options{DataDir: t.TempDir(), HTTPSAddr: "127.0.0.1:0", HTTPAddr: "127.0.0.1:0", AdminAddr: "0.0.0.0:0", Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer g.store.Close()
	if err := g.Start(context.Background()); err == nil || !strings.Contains(err.Error(), "loopback") {
		t.Fatalf("got %v", err)
	}
}

func TestSettingsValidationAndInheritanceThroughAPI(t *testing.T) {
	g := startGW(t, nil)
	ctx := context.Background()
	site := config.DefaultPortal()
	site.Web.CookieName = "bad cookie"
	err := g.client.Do(ctx, "PUT", "/api/v1/settings/site", site, nil)
	ae, ok := err.(*admin.APIError)
	if !ok || ae.Status != 400 || len(ae.Fields) != 1 || ae.Fields[0].Field != "web.cookieName" {
		t.Fatalf("bad cookie: %v", err)
	}
	if g.live.Load().Site.Web.CookieName != config.DefaultCookieName {
		t.Fatal("refused change was stored")
	}
	// The alternate port may not be the HTTPS port the gateway listens on.
	_, p, _ := net.SplitHostPort(g.https)
	var port int
	fmt.Sscan(p, &port)
	site = config.DefaultPortal()
	site.NLB.AlternatePortEnabled, site.NLB.AlternatePort = true, port
	err = g.client.Do(ctx, "PUT", "/api/v1/settings/site", site, nil)
	if ae, ok := err.(*admin.APIError); !ok || len(ae.Fields) == 0 || ae.Fields[0].Field != "nlb.alternatePort" {
		t.Fatalf("port collision: %v", err)
	}
	// CORS without origins turns itself off and says so.
	site = config.DefaultPortal()
	site.Restrictions.CORS.Enabled = true
	var reply struct {
		Settings config.PortalSettings
		Notices  []config.Notice
	}
	if err := g.client.Do(ctx, "PUT", "/api/v1/settings/site", site, &reply); err != nil {
		t.Fatal(err)
	}
	if reply.Settings.Restrictions.CORS.Enabled || len(reply.Notices) == 0 {
		t.Fatalf("CORS auto-off: %+v", reply)
	}
	// Inheritance: the gateway follows the site until it stops inheriting.
	site.Web.CookieName = "AWSALB"
	g.client.Do(ctx, "PUT", "/api/v1/settings/site", site, nil)
	var eff config.Effective
	g.client.Do(ctx, "GET", "/api/v1/settings/effective", nil, &eff)
	if eff.Portal.Web.CookieName != "AWSALB" || eff.Source != config.SourceSite {
		t.Fatalf("inheriting: %+v", eff)
	}
	gw := g.live.Load().Gateway
	gw.InheritPortal = false
	gw.Portal.Web.CookieName = "OwnCookie"
	if err := g.client.Do(ctx, "PUT", "/api/v1/settings/gateway", gw, nil); err != nil {
		t.Fatal(err)
	}
	site.Web.CookieName = "Later"
	g.client.Do(ctx, "PUT", "/api/v1/settings/site", site, nil)
	g.client.Do(ctx, "GET", "/api/v1/settings/effective", nil, &eff)
	if eff.Portal.Web.CookieName != "OwnCookie" || eff.Source != config.SourceGateway {
		t.Fatalf("own settings: %+v", eff)
	}
	// Unknown fields are refused, not ignored.
	err = g.client.Do(ctx, "PUT", "/api/v1/settings/site", []byte(`{"enabled":true,"colour":"blue"}`), nil)
	if ae, ok := err.(*admin.APIError); !ok || ae.Status != 400 || !strings.Contains(ae.Message, "colour") {
		t.Fatalf("unknown field: %v", err)
	}
}

func TestForwardingModeForwardsToUpstream(t *testing.T) {
	upstream := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "upstream says hi") }))
	upstream.StartTLS()
	defer upstream.Close()
	g := startGW(t, nil)
	ctx := context.Background()

	gw := g.live.Load().Gateway
	gw.Mode, gw.Upstream = config.ModeForwarding, upstream.Listener.Addr().String()
	if err := g.client.Do(ctx, "PUT", "/api/v1/settings/gateway", gw, nil); err != nil {
		t.Fatal(err)
	}
	// The client's TLS session is with the upstream: its certificate, its answer.
	pool := x509.NewCertPool()
	pool.AddCert(upstream.Certificate())
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, ServerName: "example.com"}}, Timeout: 10 * time.Second}
	resp, err := hc.Get("https://" + g.https + "/anything")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(body) != "upstream says hi" {
		t.Fatalf("forwarded answer %q", body)
	}
	var st admin.Status
	g.client.Do(ctx, "GET", "/api/v1/status", nil, &st)
	if st.PortalAvailable || st.Mode != config.ModeForwarding {
		t.Fatalf("status in forwarding mode: %+v", st)
	}
	// Back to normal mode: the gateway's own certificate and portal again.
	gw.Mode = config.ModeNormal
	if err := g.client.Do(ctx, "PUT", "/api/v1/settings/gateway", gw, nil); err != nil {
		t.Fatal(err)
	}
	resp, err = insecureClient().Get("https://" + g.https + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.TLS.PeerCertificates[0].Equal(upstream.Certificate()) {
		t.Fatal("still forwarding after switching back to normal mode")
	}
}

func TestGracefulShutdownFinishesInFlightRequests(t *testing.T) {
	started := make(chan struct{})
	g := startGW(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(started)
		time.Sleep(300 * time.Millisecond)
		fmt.Fprint(w, "finished")
	}))
	type result struct {
		body string
		err  error
	}
	res := make(chan result, 1)
	go func() {
		resp, err := insecureClient().Get("https://" + g.https + "/userportal/slow")
		if err != nil {
			res <- result{err: err}
			return
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		res <- result{body: string(b)}
	}()
	<-started
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := g.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	r := <-res
	if r.err != nil || r.body != "finished" {
		t.Fatalf("in-flight request: %q %v", r.body, r.err)
	}
	if _, err := net.DialTimeout("tcp", g.https, time.Second); err == nil {
		t.Fatal("listener still open after shutdown")
	}
}

func TestCertificateImportThroughAPI(t *testing.T) {
	g := startGW(t, nil)
	ctx := context.Background()
	err := g.client.Do(ctx, "POST", "/api/v1/certificate/import", map[string]string{"certPEM": "garbage", "keyPEM": "garbage"}, nil)
	if ae, ok := err.(*admin.APIError); !ok || ae.Status != 400 || !strings.Contains(ae.Message, "current one stays in use") {
		t.Fatalf("bad import: %v", err)
	}
	var before, after struct{ SHA256 string }
	g.client.Do(ctx, "GET", "/api/v1/certificate", nil, &before)
	if err := g.client.Do(ctx, "POST", "/api/v1/certificate/self-signed", map[string]any{"hosts": []string{"portal.example.com"}}, &after); err != nil {
		t.Fatal(err)
	}
	if before.SHA256 == after.SHA256 || after.SHA256 == "" {
		t.Fatal("new self-signed certificate not in use")
	}
	c, err := tls.Dial("tcp", g.https, &tls.Config{InsecureSkipVerify: true})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if got := c.ConnectionState().PeerCertificates[0].DNSNames; len(got) != 1 || got[0] != "portal.example.com" {
		t.Fatalf("served certificate names %v", got)
	}
}

func TestResourceSecretsAreSealedAndNeverReturned(t *testing.T) {
	g := startGW(t, nil)
	ctx := context.Background()
	var out map[string]any
	err := g.client.Do(ctx, "POST", "/api/v1/resources", map[string]any{
		"name": "Office PC", "protocol": "vnc", "host": "127.0.0.1", "credentials": map[string]any{"password": "s3cret!"},
	}, &out)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := json.Marshal(out)
	if strings.Contains(string(raw), "s3cret") || out["hasPassword"] != true || out["id"] != "office-pc" {
		t.Fatalf("create answer %s", raw)
	}
	stored, _ := g.live.Load().Resource("office-pc")
	if !strings.HasPrefix(stored.Credentials.Password, "sealed:") {
		t.Fatalf("password not sealed at rest: %q", stored.Credentials.Password)
	}
	if pt, _ := g.box.Unseal(stored.Credentials.Password); pt != "s3cret!" {
		t.Fatal("sealed password does not open")
	}
	// An update without the password keeps it.
	if err := g.client.Do(ctx, "PUT", "/api/v1/resources/office-pc", map[string]any{"name": "Office PC 2", "protocol": "vnc", "host": "127.0.0.1"}, nil); err != nil {
		t.Fatal(err)
	}
	kept, _ := g.live.Load().Resource("office-pc")
	if kept.Credentials.Password != stored.Credentials.Password || kept.Name != "Office PC 2" {
		t.Fatalf("update lost the password or the name: %+v", kept)
	}
	// Assignment to a missing group is refused.
	err = g.client.Do(ctx, "PUT", "/api/v1/resources/office-pc", map[string]any{"name": "x", "protocol": "vnc", "host": "127.0.0.1", "groups": []string{"ghosts"}}, nil)
	if ae, ok := err.(*admin.APIError); !ok || ae.Status != 400 {
		t.Fatalf("missing group: %v", err)
	}
}

// startForTest starts g and shuts it down when the test ends.
func startForTest(t *testing.T, g *Gateway) {
	t.Helper()
	if err := g.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		g.Shutdown(ctx)
	})
}
