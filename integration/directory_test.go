package integration

import (
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"portico/service/config"
	"portico/service/store"
)

// directoryPortico starts a gateway signing users in against the shared
// Samba domain, with resources for OFFICE\Staff (alice reaches it only
// through the nested Accounting group) and OFFICE\Other.
func directoryPortico(t *testing.T, d *sambaDomain) *portico {
	t.Helper()
	p := startPortico(t)
	p.do(t, "PUT", "/api/v1/settings/signin", config.SignIn{Directories: []config.Directory{d.directory()}}, nil)
	p.do(t, "POST", "/api/v1/resources", map[string]any{"id": "ledger", "name": "Ledger desktop", "protocol": "vnc", "host": "127.0.0.1", "port": 5999,
		"groups": []string{`OFFICE\Staff`}}, nil)
	p.do(t, "POST", "/api/v1/resources", map[string]any{"id": "lab", "name": "Lab machine", "protocol": "vnc", "host": "127.0.0.1", "port": 5998,
		"groups": []string{`OFFICE\Other`}}, nil)
	return p
}

func (p *portico) setPre2000(t *testing.T, on bool) {
	p.editSite(t, func(ps *config.PortalSettings) { ps.Restrictions.PreWindows2000Login = on })
}

// TestDirectorySignInBothFormats signs alice in through the real portal as
// OFFICE\alice, alice@office.test and plain alice; she sees the resource of
// OFFICE\Staff (through nested Accounting) and not the one of OFFICE\Other;
// a group client policy for OFFICE\Staff turns her clipboard off.
func TestDirectorySignInBothFormats(t *testing.T) {
	d := samba(t)
	p := directoryPortico(t, d)

	p.setPre2000(t, true)
	status, body, _ := signInAttempt(t, p.URL, `OFFICE\alice`, alicePass)
	if !signedIn(status, body) {
		t.Fatalf(`OFFICE\alice not signed in (status %d):%s`, status, pageError(body))
	}
	if !strings.Contains(body, "Ledger desktop") || strings.Contains(body, "Lab machine") {
		t.Fatalf("alice's resources are not those of her nested groups:\n%s", body)
	}
	if !strings.Contains(body, "OFFICE\\alice") && !strings.Contains(body, "Alice") {
		t.Fatalf("the page does not name alice:\n%s", body)
	}

	p.setPre2000(t, false)
	status, body, c := signInAttempt(t, p.URL, "alice@office.test", alicePass)
	if !signedIn(status, body) || !strings.Contains(body, "Ledger desktop") {
		t.Fatalf("alice@office.test not signed in (status %d):%s", status, pageError(body))
	}
	// The sign-in page asks for the domain's own form.
	resp, err := portalClient().Get(p.URL + "/userportal/")
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(page), "alice@office.test") {
		t.Fatalf("the sign-in hint does not show the domain's DNS name:\n%s", page)
	}
	if status, body, _ := signInAttempt(t, p.URL, "alice", alicePass); !signedIn(status, body) {
		t.Fatalf("plain alice not signed in (status %d):%s", status, pageError(body))
	}

	// Group client policy: OFFICE\Staff gets no clipboard.
	clip := func() string {
		t.Helper()
		resp, err := c.Get(p.URL + "/userportal/session/ledger")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		m := regexp.MustCompile(`data-clip-to-server="(\w+)"`).FindSubmatch(b)
		if m == nil {
			t.Fatalf("session page without clipboard setting (status %d):\n%s", resp.StatusCode, b)
		}
		return string(m[1])
	}
	if got := clip(); got != "true" {
		t.Fatalf("before the policy the clipboard is %s", got)
	}
	p.do(t, "PUT", "/api/v1/policies", []config.ClientPolicy{{ID: "staff", Name: "Staff without clipboard", Enabled: true,
		Groups: []string{`OFFICE\Staff`}, Clipboard: config.TransferDisabled}}, nil)
	if got := clip(); got != "false" {
		t.Fatalf("the OFFICE\\Staff policy did not reach alice's session page: clipboard %s", got)
	}
	var ex struct {
		Policy string `json:"policy"`
	}
	p.do(t, "POST", "/api/v1/policies/explain", map[string]string{"user": `OFFICE\alice`, "resource": "ledger", "clientOS": "linux"}, &ex)
	if ex.Policy != "Staff without clipboard" {
		t.Fatalf("explain for OFFICE\\alice matched policy %q", ex.Policy)
	}
	var ev []store.Event
	p.do(t, "GET", "/api/v1/audit?type=signin.ok&user="+`OFFICE%5Calice`, nil, &ev)
	if len(ev) == 0 || !strings.Contains(ev[len(ev)-1].Detail, "directory office") {
		t.Fatalf("audit of alice's sign-ins: %+v", ev)
	}
}

// TestDirectoryAccountStates: a disabled account, a password that must be
// changed and a wrong password each get their own message; a name with
// filter syntax in it is just a wrong name. (Each refusal counts against
// the address, so a fresh portal takes every few of them.)
func TestDirectoryAccountStates(t *testing.T) {
	d := samba(t)
	var p *portico
	for i, c := range []struct{ user, pass, want string }{
		{`OFFICE\dave`, "D4ve-Passw0rd!", "Your account is disabled"},
		{`OFFICE\erin`, "Er1n-Passw0rd!", "change your password"},
		{`OFFICE\alice`, "not-her-password", "Wrong user name or password"},
		{`OFFICE\*`, alicePass, "Wrong user name or password"},
		{`OFFICE\alice)(sAMAccountName=*`, alicePass, "Wrong user name or password"},
		{`OFFICE\alice`, "", "Wrong user name or password"},
	} {
		if i%3 == 0 {
			p = directoryPortico(t, d)
		}
		status, body, _ := signInAttempt(t, p.URL, c.user, c.pass)
		if signedIn(status, body) || !strings.Contains(body, c.want) {
			t.Errorf("%s: want %q, got status %d:%s", c.user, c.want, status, pageError(body))
		}
	}
}

// TestDirectoryGroupChange: bob, in no group, sees nothing; once the
// directory puts him in Accounting, his next sign-in shows the Staff
// resource (through the nesting).
func TestDirectoryGroupChange(t *testing.T) {
	d := samba(t)
	p := directoryPortico(t, d)
	status, body, _ := signInAttempt(t, p.URL, `OFFICE\bob`, "B0b-Passw0rd!")
	if !signedIn(status, body) {
		t.Fatalf("bob not signed in (status %d):%s", status, pageError(body))
	}
	if strings.Contains(body, "Ledger desktop") {
		t.Fatal("bob sees the Staff resource before he is in a group")
	}
	if err := d.tool("group", "addmembers", "Accounting", "bob"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.tool("group", "removemembers", "Accounting", "bob") })
	status, body, c := signInAttempt(t, p.URL, `OFFICE\bob`, "B0b-Passw0rd!")
	if !signedIn(status, body) || !strings.Contains(body, "Ledger desktop") {
		t.Fatalf("after joining Accounting bob's next sign-in does not show the Staff resource (status %d)", status)
	}

	// Disabled in the directory: the next launch (once the group cache of
	// one second has passed) refuses and ends the portal session.
	dir := d.directory()
	dir.GroupCacheSeconds = 1
	p.do(t, "PUT", "/api/v1/settings/signin", config.SignIn{Directories: []config.Directory{dir}}, nil)
	csrf := regexp.MustCompile(`data-csrf="([^"]+)"`).FindStringSubmatch(body)[1]
	launch := func() int {
		req, _ := http.NewRequest("POST", p.URL+"/userportal/api/launch/ledger", nil)
		req.Header.Set("X-CSRF-Token", csrf)
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := launch(); code != http.StatusOK {
		t.Fatalf("bob's launch before he is disabled: %d", code)
	}
	if err := d.tool("user", "disable", "bob"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.tool("user", "enable", "bob") })
	time.Sleep(1100 * time.Millisecond) // past the group cache; not an assertion on time
	if code := launch(); code != http.StatusForbidden {
		t.Fatalf("a launch after bob was disabled in the directory: %d", code)
	}
	if code := launch(); code != http.StatusUnauthorized {
		t.Fatalf("bob's portal session survived his account being disabled: %d", code)
	}
}

// TestDirectoryLDAPSPinnedCA: with the domain's CA pinned the admin Test
// finds alice and her nested groups; with another CA pinned the Test says
// TLS failed and sign-ins say the directory cannot be reached.
func TestDirectoryLDAPSPinnedCA(t *testing.T) {
	d := samba(t)
	p := directoryPortico(t, d)
	type testResult struct {
		OK    bool `json:"ok"`
		Steps []struct {
			Stage  string `json:"stage"`
			OK     bool   `json:"ok"`
			Detail string `json:"detail"`
		} `json:"steps"`
		Account *struct {
			Username string   `json:"username"`
			Groups   []string `json:"groups"`
		} `json:"account"`
	}
	var res testResult
	p.do(t, "POST", "/api/v1/directories/test", map[string]any{"directory": d.directory(), "user": "alice"}, &res)
	if !res.OK || res.Account == nil || res.Account.Username != "alice" {
		t.Fatalf("Test with the domain's CA: %+v", res)
	}
	groups := strings.Join(res.Account.Groups, ",")
	for _, g := range []string{`OFFICE\Accounting`, `OFFICE\Staff`, `OFFICE\Domain Users`} {
		if !strings.Contains(groups, g) {
			t.Fatalf("Test found alice's groups %v, without %s", res.Account.Groups, g)
		}
	}

	other, _, _, err := testCA("192.0.2.1")
	if err != nil {
		t.Fatal(err)
	}
	wrong := d.directory()
	wrong.CACertPEM = string(other)
	res = testResult{}
	p.do(t, "POST", "/api/v1/directories/test", map[string]any{"directory": wrong, "user": "alice"}, &res)
	if res.OK || len(res.Steps) == 0 || res.Steps[len(res.Steps)-1].Stage != "tls" || !strings.Contains(res.Steps[len(res.Steps)-1].Detail, "certificate") {
		t.Fatalf("Test with a foreign CA pinned: %+v", res)
	}
	p.do(t, "PUT", "/api/v1/settings/signin", config.SignIn{Directories: []config.Directory{wrong}}, nil)
	status, body, _ := signInAttempt(t, p.URL, `OFFICE\alice`, alicePass)
	if signedIn(status, body) || !strings.Contains(body, "The directory cannot be reached") {
		t.Fatalf("sign-in against an untrusted certificate: status %d:%s", status, pageError(body))
	}

	// Bad settings: field errors, nothing stored.
	bad := d.directory()
	bad.Servers = []string{"ldap://" + d.IP}
	bad.BaseDN = "not a DN"
	err = p.API.Do(t.Context(), "PUT", "/api/v1/settings/signin", config.SignIn{Directories: []config.Directory{bad}}, nil)
	if err == nil || !strings.Contains(err.Error(), "servers[0]") || !strings.Contains(err.Error(), "baseDN") {
		t.Fatalf("bad directory settings: %v", err)
	}
	var cur struct {
		Settings config.SignIn `json:"settings"`
	}
	p.do(t, "GET", "/api/v1/settings/signin", nil, &cur)
	if len(cur.Settings.Directories) != 1 || cur.Settings.Directories[0].CACertPEM != string(other) || cur.Settings.Directories[0].BindPassword != "" {
		t.Fatalf("after a refused change the stored settings are %+v", cur.Settings)
	}
}

// TestDirectoryStopped: with the domain controller stopped a directory
// user is told the directory cannot be reached (the audit names the
// server) and the local admin still signs in.
func TestDirectoryStopped(t *testing.T) {
	d := samba(t)
	p := directoryPortico(t, d)
	d.stop()
	t.Cleanup(func() {
		if err := d.start(); err != nil {
			t.Errorf("restart samba: %v", err)
		}
	})
	status, body, _ := signInAttempt(t, p.URL, `OFFICE\alice`, alicePass)
	if signedIn(status, body) || !strings.Contains(body, "The directory cannot be reached; try again or ask your administrator") {
		t.Fatalf("directory down: status %d:%s", status, pageError(body))
	}
	var ev []store.Event
	p.do(t, "GET", "/api/v1/audit?type=signin.fail", nil, &ev)
	if len(ev) == 0 || !strings.Contains(ev[len(ev)-1].Detail, "ldaps://"+d.IP) {
		t.Fatalf("the audit does not name the failed server: %+v", ev)
	}
	if status, body, _ := signInAttempt(t, p.URL, "admin", p.Admin); !signedIn(status, body) {
		t.Fatalf("local admin with the directory down: status %d:%s", status, pageError(body))
	}
}

// pageError extracts the sign-in page's error line for a failure message.
func pageError(body string) string {
	if m := regexp.MustCompile(`(?s)class="error"[^>]*>(.*?)<`).FindStringSubmatch(body); m != nil {
		return " " + strings.TrimSpace(m[1])
	}
	if len(body) > 600 {
		body = body[:600]
	}
	return fmt.Sprintf("\n%s", body)
}
