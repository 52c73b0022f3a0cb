// Package integration holds Portico's end-to-end tests: the built binaries,
// real RDP, VNC and SSH servers on loopback, a real load balancer and headless
// Chromium driving the User Portal, each proving a promise where a user or a
// host would see it.
package integration

import (
	"bufio"
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"portico/service/admin"
	"portico/service/config"
)

// builds holds the commands built for this test run, by package.
var builds sync.Map

type build struct {
	once      sync.Once
	path, err string
}

// command builds the program in pkg (a folder of the repository, pure Go)
// as name, once for the whole test run, and returns its path.
func command(t testing.TB, pkg, name string) string {
	t.Helper()
	v, _ := builds.LoadOrStore(pkg, &build{})
	b := v.(*build)
	b.once.Do(func() {
		dir, err := os.MkdirTemp("", "portico-bin-")
		if err != nil {
			b.err = err.Error()
			return
		}
		b.path = filepath.Join(dir, name)
		cmd := exec.Command("go", "build", "-o", b.path, "../"+pkg)
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			b.err = err.Error() + "\n" + string(out)
		}
	})
	if b.err != "" {
		t.Fatalf("build %s: %s", pkg, b.err)
	}
	return b.path
}

// gatewayBinary is portico-gateway, built once per test run.
func gatewayBinary(t testing.TB) string { return command(t, "service", "portico-gateway") }

// portico is a running gateway binary with its admin API.
type portico struct {
	URL   string // https://127.0.0.1:PORT
	Data  string
	API   *admin.Client
	Admin string // first-run admin password
	PID   int    // the gateway process, for benchmarks reading /proc
}

func startPortico(t testing.TB, args ...string) *portico {
	t.Helper()
	// freePort's ports are free when picked, but other test processes may
	// take one before the gateway binds it: try again with new ones.
	for attempt := 1; ; attempt++ {
		p, logs, ok := tryStartPortico(t, args...)
		if ok {
			return p
		}
		if attempt == 3 || !strings.Contains(logs, "address already in use") {
			t.Fatalf("the gateway did not start:\n%s", logs)
		}
	}
}

// tryStartPortico starts the gateway on fresh loopback ports and data dir;
// on failure it returns the gateway's log.
func tryStartPortico(t testing.TB, args ...string) (*portico, string, bool) {
	t.Helper()
	bin := gatewayBinary(t)
	data := t.TempDir()
	port := freePort(t)
	cmd := exec.Command(bin, "run", "--data-dir", data, "--https-addr", "127.0.0.1:"+strconv.Itoa(port),
		"--http-addr", "127.0.0.1:"+strconv.Itoa(freePort(t)), "--admin-addr", "127.0.0.1:"+strconv.Itoa(freePort(t)),
		"--dns-addr", "127.0.0.1:0")
	cmd.Args = append(cmd.Args, args...)
	logs := &syncBuffer{}
	cmd.Stderr = logs
	out, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(out)
	pw, started := "", false
	pwRE := regexp.MustCompile(`password: (\S+)`)
	for sc.Scan() {
		if m := pwRE.FindStringSubmatch(sc.Text()); m != nil {
			pw = m[1]
		}
		if strings.Contains(sc.Text(), "User Portal at") {
			started = true
			break
		}
	}
	if !started {
		cmd.Process.Kill()
		cmd.Wait()
		return nil, logs.String(), false
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		if t.Failed() {
			t.Logf("gateway log:\n%s", logs.String())
		}
	})
	go io.Copy(io.Discard, out)
	c, err := admin.Dial(data)
	if err != nil {
		t.Fatalf("admin API: %v\n%s", err, logs.String())
	}
	return &portico{URL: "https://127.0.0.1:" + strconv.Itoa(port), Data: data, API: c, Admin: pw, PID: cmd.Process.Pid}, "", true
}

// do calls the admin API and fails the test on error.
func (p *portico) do(t testing.TB, method, path string, body, out any) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := p.API.Do(ctx, method, path, body, out); err != nil {
		t.Fatalf("admin API %s %s: %v", method, path, err)
	}
}

// seedUser adds group "staff" and user alice in it.
func (p *portico) seedUser(t testing.TB) {
	p.do(t, "POST", "/api/v1/groups", map[string]string{"name": "staff"}, nil)
	p.do(t, "POST", "/api/v1/users", map[string]any{"username": "alice", "domain": "OFFICE", "displayName": "Alice Example", "groups": []string{"staff"}, "password": "alice-password"}, nil)
}

// editSite changes the site defaults through the admin API.
func (p *portico) editSite(t *testing.T, fn func(*config.PortalSettings)) {
	t.Helper()
	var cur struct{ Settings config.PortalSettings }
	p.do(t, "GET", "/api/v1/settings/site", nil, &cur)
	fn(&cur.Settings)
	p.do(t, "PUT", "/api/v1/settings/site", cur.Settings, nil)
}
