package integration

import (
	"context"
	"io"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"portico/internal/sambadc"
	"portico/service/config"
)

// Passwords of the throwaway test domain.
const (
	sambaAdminPass = sambadc.AdminPass
	alicePass      = sambadc.AlicePass
)

// sambaDomain is the shared Samba AD DC of the TestDirectory tests.
type sambaDomain struct{ *sambadc.Domain }

func (d *sambaDomain) tool(args ...string) error   { return d.Tool(args...) }
func (d *sambaDomain) start() error                { return d.Start() }
func (d *sambaDomain) stop()                       { d.Stop() }
func (d *sambaDomain) directory() config.Directory { return d.Directory() }

// sharedSamba is provisioned once per test binary (provisioning takes
// seconds) and torn down by TestMain.
var sharedSamba struct {
	once sync.Once
	d    *sambadc.Domain
	err  error
}

// TestMain tears the shared Samba domain down after the tests.
func TestMain(m *testing.M) {
	code := m.Run()
	if d := sharedSamba.d; d != nil {
		d.Close()
	}
	os.Exit(code)
}

// samba returns the shared domain controller, provisioning and starting
// it on first use.
func samba(t *testing.T) *sambaDomain {
	t.Helper()
	for _, p := range [][2]string{{"samba", "samba"}, {"samba-tool", "samba"}, {"ip", "iproute2"}} {
		need(t, p[0], p[1])
	}
	if os.Geteuid() != 0 {
		if os.Getenv("CI") != "" {
			t.Fatal("the Samba tests need root (network namespaces); CI runs as root")
		}
		t.Skip("the Samba tests need root to create a network namespace")
	}
	sharedSamba.once.Do(func() { sharedSamba.d, sharedSamba.err = sambadc.Provision() })
	if sharedSamba.err != nil {
		t.Fatalf("samba: %v", sharedSamba.err)
	}
	return &sambaDomain{sharedSamba.d}
}

// testCA makes a CA and a server certificate for ip, in PEM.
func testCA(ip string) (caPEM, certPEM, keyPEM []byte, err error) { return sambadc.TestCA(ip) }

// signInAttempt posts the portal's sign-in form as a browser would and
// returns the final status and page, and the client (holding the session
// cookie when it worked).
func signInAttempt(t *testing.T, base, user, password string) (int, string, *http.Client) {
	t.Helper()
	c := portalClient()
	resp, err := c.Get(base + "/userportal/")
	if err != nil {
		t.Fatalf("sign-in page: %v", err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	m := regexp.MustCompile(`name="csrf" value="([^"]+)"`).FindSubmatch(page)
	if m == nil {
		t.Fatalf("no sign-in form:\n%s", page)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "POST", base+"/userportal/signin",
		strings.NewReader(url.Values{"csrf": {string(m[1])}, "username": {user}, "password": {password}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err = c.Do(req)
	if err != nil {
		t.Fatalf("sign in as %s: %v", user, err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp.StatusCode, string(body), c
}

// signedIn reports whether a sign-in page result is the signed-in home page.
func signedIn(status int, body string) bool {
	return status == http.StatusOK && strings.Contains(body, `data-csrf="`) && !strings.Contains(body, `name="password"`)
}
