package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/canvas"
	"fyne.io/fyne/v2/test"
	"fyne.io/fyne/v2/widget"

	"portico/service/admin"
	"portico/service/config"
)

func freePort(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// gateway builds and starts the real portico-gateway binary on a temp data
// dir, as the GUI finds it in production.
func gateway(t *testing.T) (string, *admin.Client) {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "portico-gateway")
	build := exec.Command("go", "build", "-o", bin, "../service")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build gateway: %v\n%s", err, out)
	}
	data := t.TempDir()
	cmd := exec.Command(bin, "run", "--data-dir", data, "--https-addr", freePort(t), "--http-addr", freePort(t), "--admin-addr", freePort(t))
	out, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		if strings.Contains(sc.Text(), "User Portal at") {
			break
		}
	}
	go func() {
		for sc.Scan() {
		}
	}()
	c, err := admin.Dial(data)
	if err != nil {
		t.Fatal(err)
	}
	return data, c
}

func newTestUI(t *testing.T) (*UI, *admin.Client) {
	t.Helper()
	data, c := gateway(t)
	a := test.NewApp()
	t.Cleanup(a.Quit)
	w := a.NewWindow("test")
	w.Resize(fyne.NewSize(1100, 760))
	u := NewUI(a, w, data, "")
	u.Connect()
	u.Wait()
	return u, c
}

func get[T any](t *testing.T, c *admin.Client, path string) T {
	t.Helper()
	var v T
	if err := c.Do(context.Background(), "GET", path, nil, &v); err != nil {
		t.Fatal(err)
	}
	return v
}

type settingsReply[T any] struct{ Settings T }

func typeInto(e interface {
	SetText(string)
}, s string) {
	e.SetText(s)
}

func TestEverySiteSettingThroughTheWidgets(t *testing.T) {
	u, c := newTestUI(t)
	f := u.portal.site
	test.Tap(f.enabled) // off
	f.launch.SetSelected(launchLabels[config.LaunchNativeWithFallback])
	test.Tap(f.allowSelect)
	test.Tap(f.newTab) // off
	f.detection.SetSelected(detectLabels[config.DetectOnPrompt])
	typeInto(f.detectTO, "45")
	test.Tap(f.ipDetect)
	typeInto(f.ipURL, "https://ip.example.com/json")
	test.Tap(f.altHostOn)
	typeInto(f.altHost, "nlb.example.com")
	test.Tap(f.altPortOn)
	typeInto(f.altPort, "5443")
	typeInto(f.path, "/office")
	typeInto(f.cookie, "AWSALB")
	test.Tap(f.pre2000)
	test.Tap(f.embed)
	typeInto(f.embedFrom, "https://intranet.example.com")
	f.files.SetSelected(transferLabels[config.TransferClientToServer])
	f.clip.SetSelected(transferLabels[config.TransferServerToClient])
	test.Tap(f.cors)
	typeInto(f.origins, "https://intranet.example.com\nhttps://other.example.com:8443")
	typeInto(f.corsCache, "120")
	test.Tap(u.portal.siteSave)
	u.Wait()

	got := get[settingsReply[config.PortalSettings]](t, c, "/api/v1/settings/site").Settings
	want := config.PortalSettings{
		Enabled: false,
		Client: config.ClientSettings{LaunchMethod: config.LaunchNativeWithFallback, AllowUserSelect: true, OpenInNewTab: false,
			Detection: config.DetectOnPrompt, DetectionTimeoutSeconds: 45, IPDetection: config.IPDetection{Enabled: true, URL: "https://ip.example.com/json"}},
		NLB: config.NLBSettings{AlternateHostEnabled: true, AlternateHost: "nlb.example.com", AlternatePortEnabled: true, AlternatePort: 5443},
		Web: config.WebSettings{Path: "/office", CookieName: "AWSALB"},
		Restrictions: config.Restrictions{PreWindows2000Login: true, AllowEmbedding: true, EmbeddingOrigins: []string{"https://intranet.example.com"}, FileTransfer: config.TransferClientToServer,
			Clipboard: config.TransferServerToClient, CORS: config.CORS{Enabled: true, Origins: []string{"https://intranet.example.com", "https://other.example.com:8443"}, CacheSeconds: 120}},
	}
	if fmt.Sprintf("%+v", got) != fmt.Sprintf("%+v", want) {
		t.Fatalf("stored settings differ:\n got %+v\nwant %+v\nmessage: %s", got, want, u.portal.message.Text)
	}
}

func TestDependentOptionRules(t *testing.T) {
	u, c := newTestUI(t)
	f := u.portal.site
	f.launch.SetSelected(launchLabels[config.LaunchBrowser])
	if !f.allowSelect.Disabled() || !f.detectBtn.Disabled() {
		t.Fatal("select-method and detection must be disabled with browser-only launch")
	}
	f.launch.SetSelected(launchLabels[config.LaunchNativeWithFallback])
	if f.allowSelect.Disabled() || f.detectBtn.Disabled() {
		t.Fatal("select-method must be enabled with native-with-fallback")
	}
	test.Tap(f.allowSelect)
	f.launch.SetSelected(launchLabels[config.LaunchNative])
	if f.allowSelect.Checked || !f.allowSelect.Disabled() {
		t.Fatal("select-method must turn off and disable when leaving native-with-fallback")
	}
	// CORS with no origins turns itself off and the GUI says so.
	test.Tap(f.cors)
	typeInto(f.origins, "")
	test.Tap(u.portal.siteSave)
	u.Wait()
	if f.cors.Checked || !f.notices.Visible() || !strings.Contains(f.notices.Text, "no allowed origins") {
		t.Fatalf("CORS auto-off not shown: checked=%v notice=%q", f.cors.Checked, f.notices.Text)
	}
	// An alternate port that collides with a gateway port: error next to the field, nothing saved.
	st := get[admin.Status](t, c, "/api/v1/status")
	_, httpsPort, _ := net.SplitHostPort(st.Listeners[0].Addr)
	test.Tap(f.altPortOn)
	typeInto(f.altPort, httpsPort)
	test.Tap(u.portal.siteSave)
	u.Wait()
	if e := f.errs["nlb.alternatePort"]; !e.Visible() || !strings.Contains(e.Text, "already used by the HTTPS listener") {
		t.Fatalf("port conflict not shown next to the field: %q", e.Text)
	}
	if get[settingsReply[config.PortalSettings]](t, c, "/api/v1/settings/site").Settings.NLB.AlternatePortEnabled {
		t.Fatal("refused change was stored")
	}
	// The Default button restores the default port.
	test.Tap(f.altPortDf)
	if f.altPort.Text != fmt.Sprint(config.DefaultAlternatePort) {
		t.Fatalf("Default button: %q", f.altPort.Text)
	}
}

func TestInheritToggleShowsSiteValues(t *testing.T) {
	u, c := newTestUI(t)
	p := u.portal
	typeInto(p.site.cookie, "SiteCookie")
	test.Tap(p.siteSave)
	u.Wait()
	if !p.inherit.Checked || p.gw.cookie.Text != "SiteCookie" || !p.gw.cookie.Disabled() {
		t.Fatalf("inheriting gateway must show the site value read-only: %q disabled=%v", p.gw.cookie.Text, p.gw.cookie.Disabled())
	}
	test.Tap(p.inherit) // off
	if p.gw.cookie.Disabled() {
		t.Fatal("own settings must be editable")
	}
	typeInto(p.gw.cookie, "GatewayCookie")
	test.Tap(p.gwSave)
	u.Wait()
	eff := get[config.Effective](t, c, "/api/v1/settings/effective")
	if eff.Source != config.SourceGateway || eff.Portal.Web.CookieName != "GatewayCookie" {
		t.Fatalf("effective %+v (%s)", eff, p.message.Text)
	}
}

func TestIPDetectionTestButton(t *testing.T) {
	u, _ := newTestUI(t)
	svc := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte(`{"ip":"198.51.100.23"}`)) }))
	defer svc.Close()
	f := u.portal.site
	typeInto(f.ipURL, svc.URL)
	f.testIPDetection()
	u.Wait()
	if !strings.Contains(f.ipTestResult.Text, "198.51.100.23") {
		t.Fatalf("test result %q", f.ipTestResult.Text)
	}
	typeInto(f.ipURL, "ftp://nope")
	f.testIPDetection()
	u.Wait()
	if !strings.Contains(f.ipTestResult.Text, "failed") {
		t.Fatalf("bad URL result %q", f.ipTestResult.Text)
	}
}

func TestResourceAddedInTheGUI(t *testing.T) {
	u, c := newTestUI(t)
	c.Do(context.Background(), "POST", "/api/v1/groups", map[string]string{"name": "staff"}, nil)
	c.Do(context.Background(), "POST", "/api/v1/users", map[string]any{"username": "alice", "groups": []string{"staff"}, "password": "alice-password"}, nil)
	u.resources.edit(nil)
	f := u.lastResourceForm
	typeInto(f.groups, "staff")
	typeInto(f.name, "Office PC")
	f.proto.SetSelected("vnc")
	typeInto(f.host, "127.0.0.1")
	typeInto(f.pass, "vnc-secret")
	typeInto(f.port, "not-a-port")
	test.Tap(u.lastResourceSave)
	u.Wait()
	if e := f.fieldErrs["port"]; !e.Visible() || !strings.Contains(e.Text, "number") {
		t.Fatalf("bad port not reported at the field: %q", e.Text)
	}
	typeInto(f.port, "5901")
	test.Tap(u.lastResourceSave)
	u.Wait()
	var rows []resourceRow
	c.Do(context.Background(), "GET", "/api/v1/resources", nil, &rows)
	if len(rows) != 1 || rows[0].Name != "Office PC" || rows[0].Port != 5901 || !rows[0].HasPassword || rows[0].Protocol != config.ProtocolVNC {
		t.Fatalf("resources %+v (%s)", rows, f.errs.Text)
	}
	deadline := time.Now().Add(5 * time.Second)
	for len(u.resources.rows) != 1 && time.Now().Before(deadline) {
		u.Wait()
	}
	if len(u.resources.rows) != 1 {
		t.Fatal("resource list not refreshed")
	}
	// A user of the assigned group can launch it in the portal.
	st := get[admin.Status](t, c, "/api/v1/status")
	base := "https://" + st.Listeners[0].Addr + "/userportal"
	jar, _ := cookiejar.New(nil)
	hc := &http.Client{Jar: jar, Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	resp, err := hc.Get(base + "/")
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	csrf := regexp.MustCompile(`name="csrf" value="([^"]+)"`).FindSubmatch(page)[1]
	resp, err = hc.PostForm(base+"/signin", url.Values{"csrf": {string(csrf)}, "username": {"alice"}, "password": {"alice-password"}})
	if err != nil {
		t.Fatal(err)
	}
	home, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	token := regexp.MustCompile(`data-csrf="([^"]+)"`).FindSubmatch(home)
	if token == nil || !strings.Contains(string(home), "Office PC") {
		t.Fatalf("the GUI-made resource is not in alice's portal:\n%s", home)
	}
	req, _ := http.NewRequest("POST", base+"/api/launch/"+rows[0].ID, nil)
	req.Header.Set("X-CSRF-Token", string(token[1]))
	resp, err = hc.Do(req)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("launch: %v %v", resp.StatusCode, err)
	}
	resp.Body.Close()
}

func TestGatewayNetworkSettings(t *testing.T) {
	u, c := newTestUI(t)
	p := u.status
	typeInto(p.hosts, "portal.example.com, 192.0.2.10")
	typeInto(p.proxies, "10.0.0.0/8")
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dns := l.Addr().String()
	l.Close()
	typeInto(p.dns, dns)
	typeInto(p.zone, "detect.portal.example.com")
	p.applyMode()
	u.Wait()
	g := get[settingsReply[config.Gateway]](t, c, "/api/v1/settings/gateway").Settings
	if strings.Join(g.PublicHosts, ",") != "portal.example.com,192.0.2.10" || strings.Join(g.TrustedProxies, ",") != "10.0.0.0/8" ||
		g.Detect.DNSListen != dns || g.Detect.Zone != "detect.portal.example.com" {
		t.Fatalf("gateway record %+v", g)
	}
}

// TestTabSwitchDropsFocus: the launch-method Select must not keep the
// keyboard focus once its tab is left. Fyne forgets the canvas of objects
// that stay hidden for a minute; a hidden, focused Select that then got
// Space or an arrow key opened its menu with no canvas and the window
// died in NewPopUpMenu.
func TestTabSwitchDropsFocus(t *testing.T) {
	u, _ := newTestUI(t)
	cv := u.win.Canvas()
	u.tabs.SelectIndex(1) // User Portal
	f := u.portal.site
	cv.Focus(f.launch)
	f.launch.SetSelected(launchLabels[config.LaunchNative])
	if cv.Focused() != f.launch {
		t.Fatal("the launch method did not take the focus")
	}
	u.tabs.SelectIndex(2)
	if cv.Focused() != nil {
		t.Fatalf("after leaving the tab %T still has the focus", cv.Focused())
	}
	u.tabs.SelectIndex(1)
	cv.Focus(u.portal.gw.launch)
	u.portal.subtabs.SelectIndex(0)
	if cv.Focused() != nil {
		t.Fatalf("after leaving the gateway sub-tab %T still has the focus", cv.Focused())
	}
	u.Wait()
}

// TestUserDialogErrorsAtTheirField: a refused user shows each error under
// its own field in the open dialog, naming the item ("nosuchgroup"), not
// its position in the list.
func TestUserDialogErrorsAtTheirField(t *testing.T) {
	u, _ := newTestUI(t)
	u.users.editUser(nil)
	d := u.lastDialog
	var entries []*keyEntry
	walk(d.content, func(o fyne.CanvasObject) {
		if e, ok := o.(*keyEntry); ok {
			entries = append(entries, e)
		}
	})
	if len(entries) < 5 {
		t.Fatalf("%d entries in the user dialog", len(entries))
	}
	entries[0].SetText("dave")
	entries[3].SetText("staff, nosuchgroup")
	entries[4].SetText("dave-password-1")
	test.Tap(d.primary)
	u.Wait()
	var under []string
	walk(d.content, func(o fyne.CanvasObject) {
		if c, ok := o.(*fyne.Container); ok && len(c.Objects) == 2 && c.Objects[0] == entries[3] {
			if txt, ok := c.Objects[1].(*canvas.Text); ok && txt.Visible() {
				under = append(under, txt.Text)
			}
		}
	})
	if len(under) != 1 || !strings.Contains(under[0], `"nosuchgroup"`) || strings.Contains(under[0], "[1]") {
		var all []string
		walk(d.content, func(o fyne.CanvasObject) {
			if txt, ok := o.(*canvas.Text); ok && txt.Visible() && txt.Text != "" {
				all = append(all, txt.Text)
			}
			if l, ok := o.(*widget.Label); ok && l.Text != "" {
				all = append(all, l.Text)
			}
		})
		t.Fatalf("groups field error %q, want one naming \"nosuchgroup\" (dialog shows %q)", under, all)
	}
	if u.win.Canvas().Overlays().Top() == nil {
		t.Fatal("the refused dialog closed")
	}
}
