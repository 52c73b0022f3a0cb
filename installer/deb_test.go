package installer

import (
	"bufio"
	"context"
	"debug/elf"
	"encoding/xml"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"portico/service/admin"
	"portico/service/store"
)

// oldRelease is the first commit of this repository whose gateway runs as
// a service with the admin API: the upgrade test installs a package of it
// and upgrades to the working tree's build.
const oldRelease = "442a6a1"

const (
	dataDir = "/var/lib/portico"
	unit    = "/lib/systemd/system/portico-gateway.service"
)

// buildDeb runs installer/build-deb.sh and returns the package path.
func buildDeb(t *testing.T, ctx context.Context, env ...string) string {
	t.Helper()
	env = append(env, "DIST="+t.TempDir(), "DEB_COMPRESS=gzip")
	out := run(t, ctx, repoRoot(t), env, "installer/build-deb.sh")
	deb := strings.TrimSpace(out[strings.LastIndex(strings.TrimSpace(out), "\n")+1:])
	if _, err := os.Stat(deb); err != nil {
		t.Fatalf("build-deb.sh printed %q, not a package: %v", out, err)
	}
	return deb
}

// buildOldGateway builds portico-gateway from the oldRelease commit.
func buildOldGateway(t *testing.T, ctx context.Context) string {
	t.Helper()
	root := repoRoot(t)
	if err := exec.CommandContext(ctx, "git", "-C", root, "cat-file", "-e", oldRelease+"^{commit}").Run(); err != nil {
		t.Fatalf("commit %s (the older release the upgrade starts from) is not in this clone: fetch the full history (git fetch --unshallow)", oldRelease)
	}
	src := t.TempDir()
	run(t, ctx, root, nil, "sh", "-c", `git archive "$1" | tar -x -C "$2"`, "sh", oldRelease, src)
	bin := filepath.Join(t.TempDir(), "portico-gateway")
	run(t, ctx, src, []string{"CGO_ENABLED=0"}, "go", "build", "-trimpath", "-ldflags", "-X main.version=old-"+oldRelease, "-o", bin, "./service")
	return bin
}

func TestDebPackage(t *testing.T) {
	for _, c := range [][2]string{{"dpkg-deb", "dpkg"}, {"fakeroot", "fakeroot"}, {"git", "git"}, {"systemd-analyze", "systemd"}, {"useradd", "passwd"}, {"deb-systemd-helper", "init-system-helpers"}, {"lintian", "lintian"}, {"desktop-file-validate", "desktop-file-utils"}} {
		need(t, c[0], c[1])
	}
	ctx, cancel := context.WithTimeout(context.Background(), buildTimeout)
	defer cancel()
	newVersion := "0.9.0-test"
	deb := buildDeb(t, ctx, "VERSION="+newVersion)

	t.Run("contents", func(t *testing.T) { checkContents(t, ctx, deb) })
	t.Run("install-upgrade-remove-purge", func(t *testing.T) {
		oldDeb := buildDeb(t, ctx, "VERSION=old", "DEB_VERSION=0.0.1", "GATEWAY_BIN="+buildOldGateway(t, ctx))
		checkLifecycle(t, ctx, oldDeb, deb, newVersion)
	})
}

// checkContents inspects the package without installing it.
func checkContents(t *testing.T, ctx context.Context, deb string) {
	// Every file, its mode and owner.
	want := map[string]string{
		"./usr/bin/portico-gateway":                      "-rwxr-xr-x",
		"./usr/bin/portico-admin":                        "-rwxr-xr-x",
		"./usr/bin/portico-client":                       "-rwxr-xr-x",
		"./usr/share/portico/clients/portico-client.exe": "-rw-r--r--",
		"./usr/share/portico/clients/portico-client":     "lrwxrwxrwx",
		"." + unit: "-rw-r--r--",
		"./usr/share/applications/io.portico.admin.desktop":           "-rw-r--r--",
		"./usr/share/icons/hicolor/256x256/apps/io.portico.admin.png": "-rw-r--r--",
		"./usr/share/polkit-1/actions/io.portico.admin.policy":        "-rw-r--r--",
		"./usr/share/man/man8/portico-gateway.8.gz":                   "-rw-r--r--",
		"./usr/share/man/man1/portico-admin.1.gz":                     "-rw-r--r--",
		"./usr/share/man/man1/portico-client.1.gz":                    "-rw-r--r--",
		"./usr/share/doc/portico/copyright":                           "-rw-r--r--",
		"./usr/share/doc/portico/changelog.gz":                        "-rw-r--r--",
		"./usr/share/lintian/overrides/portico":                       "-rw-r--r--",
	}
	listing := run(t, ctx, "", nil, "dpkg-deb", "--contents", deb)
	seen := map[string]bool{}
	sc := bufio.NewScanner(strings.NewReader(listing))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 6 {
			continue
		}
		mode, owner, name := f[0], f[1], f[5]
		if owner != "root/root" {
			t.Errorf("%s is owned by %s, want root/root", name, owner)
		}
		if strings.HasPrefix(name, "./var/") || strings.HasPrefix(name, "./etc/") {
			t.Errorf("%s: the package must not ship state or configuration files (the gateway keeps both in its store)", name)
		}
		if w, ok := want[name]; ok {
			seen[name] = true
			if mode != w {
				t.Errorf("%s has mode %s, want %s", name, mode, w)
			}
		}
	}
	for name := range want {
		if !seen[name] {
			t.Errorf("%s is missing from the package:\n%s", name, listing)
		}
	}

	x := t.TempDir()
	run(t, ctx, "", nil, "dpkg-deb", "--raw-extract", deb, x)

	// Maintainer scripts: executable, valid sh.
	for _, s := range []string{"postinst", "prerm", "postrm"} {
		p := filepath.Join(x, "DEBIAN", s)
		st, err := os.Stat(p)
		if err != nil {
			t.Errorf("maintainer script %s: %v", s, err)
			continue
		}
		if st.Mode().Perm() != 0o755 {
			t.Errorf("%s has mode %v, want 0755", s, st.Mode().Perm())
		}
		run(t, ctx, "", nil, "sh", "-n", p)
	}

	// The unit runs the gateway's own foreground mode as the portico user
	// in the data directory the GUI looks in by default.
	raw, err := os.ReadFile(filepath.Join(x, unit))
	if err != nil {
		t.Fatal(err)
	}
	u := string(raw)
	if admin.DefaultDataDir() != dataDir {
		t.Errorf("admin.DefaultDataDir() = %s: the GUI would not find the packaged gateway's data in %s", admin.DefaultDataDir(), dataDir)
	}
	for _, line := range []string{
		"ExecStart=/usr/bin/portico-gateway run --data-dir " + dataDir,
		"User=portico", "Group=portico",
		"AmbientCapabilities=CAP_NET_BIND_SERVICE", "CapabilityBoundingSet=CAP_NET_BIND_SERVICE",
		"NoNewPrivileges=yes", "ProtectSystem=strict", "ReadWritePaths=" + dataDir, "PrivateTmp=yes",
		"ProtectHome=yes", "WantedBy=multi-user.target",
		// net.InterfaceAddrs (SANs of the self-signed certificate) needs netlink.
		"RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX AF_NETLINK",
	} {
		if !regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(line) + `$`).MatchString(u) {
			t.Errorf("unit file lacks the line %q:\n%s", line, u)
		}
	}

	// Depends covers every shared library the GUI links (the gateway and
	// client are static).
	depends := run(t, ctx, "", nil, "dpkg-deb", "--field", deb, "Depends")
	for _, bin := range []string{"portico-gateway", "portico-client"} {
		if libs := neededLibs(t, filepath.Join(x, "usr/bin", bin)); len(libs) != 0 {
			t.Errorf("%s links %v: it must be a static pure-Go build (CGO_ENABLED=0)", bin, libs)
		}
	}
	for _, lib := range neededLibs(t, filepath.Join(x, "usr/bin/portico-admin")) {
		owner := run(t, ctx, "", nil, "sh", "-c", `dpkg -S "*/$1" | grep -v :i386 | head -n1 | cut -d: -f1`, "sh", lib)
		owner = strings.TrimSpace(owner)
		if owner == "" || !regexp.MustCompile(`(^|[ ,])`+regexp.QuoteMeta(owner)+`($|[ ,(])`).MatchString(depends) {
			t.Errorf("portico-admin needs %s (package %q), which Depends: %s does not list", lib, owner, depends)
		}
	}

	// The menu entry starts the GUI through pkexec with the polkit action
	// that lets exactly that program open a window as root.
	desktop := filepath.Join(x, "usr/share/applications/io.portico.admin.desktop")
	if out := run(t, ctx, "", nil, "desktop-file-validate", desktop); out != "" {
		t.Errorf("desktop-file-validate: %s", out)
	}
	if d := readFile(t, desktop); !strings.Contains(d, "\nExec=pkexec /usr/bin/portico-admin\n") || !strings.Contains(d, "\nIcon=io.portico.admin\n") {
		t.Errorf("desktop entry does not start /usr/bin/portico-admin through pkexec with the packaged icon:\n%s", d)
	}
	checkPolkit(t, readFile(t, filepath.Join(x, "usr/share/polkit-1/actions/io.portico.admin.policy")))

	// Debian's own checks: no errors or warnings beyond the documented
	// overrides (usr/share/lintian/overrides/portico).
	lint, _ := exec.CommandContext(ctx, "lintian", "--tag-display-limit", "0", deb).CombinedOutput()
	for _, line := range strings.Split(string(lint), "\n") {
		if strings.HasPrefix(line, "E: ") || strings.HasPrefix(line, "W: ") {
			t.Errorf("lintian: %s", line)
		}
	}

	// The man pages carry the programs' own help, and nothing else.
	for _, m := range []struct{ page, want string }{
		{"man8/portico-gateway.8.gz", "portico-gateway install"},
		{"man1/portico-admin.1.gz", "-gateway-binary"},
		{"man1/portico-client.1.gz", "portico-client version"},
	} {
		man := run(t, ctx, "", nil, "sh", "-c", `gzip -dc "$1"`, "sh", filepath.Join(x, "usr/share/man", m.page))
		if !strings.Contains(man, m.want) || !strings.HasPrefix(man, ".TH PORTICO-") {
			t.Errorf("%s lacks %q:\n%s", m.page, m.want, man)
		}
		if strings.Contains(man, "Fyne error") || strings.Contains(man, "/tmp/") {
			t.Errorf("%s has log noise or build paths in it:\n%s", m.page, man)
		}
	}
}

// checkPolkit parses the polkit action: pkexec needs its exec.path to be
// the program it runs and allow_gui to keep DISPLAY; only admins may run it.
func checkPolkit(t *testing.T, policy string) {
	t.Helper()
	var doc struct {
		Actions []struct {
			ID       string `xml:"id,attr"`
			Defaults struct {
				Any      string `xml:"allow_any"`
				Inactive string `xml:"allow_inactive"`
				Active   string `xml:"allow_active"`
			} `xml:"defaults"`
			Annotate []struct {
				Key   string `xml:"key,attr"`
				Value string `xml:",chardata"`
			} `xml:"annotate"`
		} `xml:"action"`
	}
	if err := xml.Unmarshal([]byte(policy), &doc); err != nil {
		t.Fatalf("polkit action: %v", err)
	}
	if len(doc.Actions) != 1 || doc.Actions[0].ID != "io.portico.admin.run" {
		t.Fatalf("polkit actions %+v, want io.portico.admin.run", doc.Actions)
	}
	a := doc.Actions[0]
	notes := map[string]string{}
	for _, n := range a.Annotate {
		notes[n.Key] = n.Value
	}
	if notes["org.freedesktop.policykit.exec.path"] != "/usr/bin/portico-admin" || notes["org.freedesktop.policykit.exec.allow_gui"] != "true" {
		t.Errorf("polkit annotations %v: pkexec would not run /usr/bin/portico-admin with a display", notes)
	}
	for _, d := range []string{a.Defaults.Any, a.Defaults.Inactive, a.Defaults.Active} {
		if !strings.HasPrefix(d, "auth_admin") {
			t.Errorf("polkit defaults %+v: every case must ask for an administrator", a.Defaults)
		}
	}
}

func neededLibs(t *testing.T, path string) []string {
	t.Helper()
	f, err := elf.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	libs, err := f.ImportedLibraries()
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return libs
}

// checkLifecycle installs the old package into a throwaway root, lets its
// gateway write a store, upgrades to the new package, and removes and
// purges it, checking what each step leaves behind.
func checkLifecycle(t *testing.T, ctx context.Context, oldDeb, newDeb, newVersion string) {
	r := newThrowawayRoot(t)
	oldIn, newIn := r.copyIn(t, oldDeb), r.copyIn(t, newDeb)

	// Fresh install: user, data directory, enabled unit, client downloads.
	// A file left by a gateway that ran as root before is handed over.
	if err := os.MkdirAll(r.path(dataDir), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(r.path(dataDir+"/left-by-root"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	r.run(t, ctx, "dpkg", "-i", oldIn)
	if got := strings.TrimSpace(r.run(t, ctx, "stat", "-c", "%U", dataDir+"/left-by-root")); got != "portico" {
		t.Errorf("a file already in %s belongs to %s after install, want portico", dataDir, got)
	}
	passwd := strings.Split(strings.TrimSpace(r.run(t, ctx, "getent", "passwd", "portico")), ":")
	if len(passwd) != 7 {
		t.Fatalf("getent passwd portico = %v", passwd)
	}
	if uid, _ := strconv.Atoi(passwd[2]); uid == 0 || uid >= 1000 {
		t.Errorf("portico has uid %d, want a system uid (1..999)", uid)
	}
	if passwd[5] != dataDir || passwd[6] != "/usr/sbin/nologin" {
		t.Errorf("portico: home %s shell %s, want %s and /usr/sbin/nologin", passwd[5], passwd[6], dataDir)
	}
	if got := strings.TrimSpace(r.run(t, ctx, "stat", "-c", "%a %U %G", dataDir)); got != "700 portico portico" {
		t.Errorf("%s is %q, want 700 portico portico", dataDir, got)
	}
	if got := strings.TrimSpace(r.run(t, ctx, "readlink", dataDir+"/clients")); got != "/usr/share/portico/clients" {
		t.Errorf("%s/clients points to %q", dataDir, got)
	}
	r.run(t, ctx, "test", "-L", "/etc/systemd/system/multi-user.target.wants/portico-gateway.service")
	if out := r.run(t, ctx, "portico-gateway", "version"); !strings.Contains(out, "old-"+oldRelease) {
		t.Errorf("installed old gateway says %q", out)
	}
	if out := r.run(t, ctx, "systemd-analyze", "verify", unit); strings.TrimSpace(out) != "" {
		t.Errorf("systemd-analyze verify %s:\n%s", unit, out)
	}

	// The old gateway's first start as the service user: a store, a
	// self-signed certificate, the admin token; an admin adds a user.
	var before admin.Status
	var beforeCert, afterCert struct{ SHA256 string }
	withGateway(t, ctx, r, func(c *admin.Client) {
		if err := c.Do(ctx, http.MethodPost, "/api/v1/users", map[string]any{"username": "kept", "displayName": "Kept across upgrades", "groups": []string{}, "password": "Correct-Horse-9"}, nil); err != nil {
			t.Fatalf("create a user on the old gateway: %v", err)
		}
		mustDo(t, ctx, c, "/api/v1/status", &before)
		mustDo(t, ctx, c, "/api/v1/certificate", &beforeCert)
	})
	token := readFile(t, r.path(dataDir+"/admin.token"))
	for _, f := range []string{"admin.token", "portico.db", "secret.key"} {
		st, err := os.Stat(r.path(dataDir + "/" + f))
		if err != nil {
			t.Fatalf("the gateway did not write %s: %v", f, err)
		}
		if st.Mode().Perm()&0o077 != 0 {
			t.Errorf("%s has mode %v: only the portico user may read it", f, st.Mode().Perm())
		}
		if uid := st.Sys().(*syscall.Stat_t).Uid; strconv.Itoa(int(uid)) != passwd[2] {
			t.Errorf("%s belongs to uid %d, want portico (%s)", f, uid, passwd[2])
		}
	}

	// Upgrade: same data, same token, same certificate, the user is still
	// there, the new build reads the store.
	r.run(t, ctx, "dpkg", "-i", newIn)
	if out := r.run(t, ctx, "portico-gateway", "version"); !strings.Contains(out, newVersion) {
		t.Errorf("after the upgrade portico-gateway version says %q, want %s", out, newVersion)
	}
	if readFile(t, r.path(dataDir+"/admin.token")) != token {
		t.Error("the upgrade changed the admin token")
	}
	withGateway(t, ctx, r, func(c *admin.Client) {
		var after admin.Status
		mustDo(t, ctx, c, "/api/v1/status", &after)
		mustDo(t, ctx, c, "/api/v1/certificate", &afterCert)
		var u struct{ DisplayName string }
		mustDo(t, ctx, c, "/api/v1/users/kept", &u)
		if u.DisplayName != "Kept across upgrades" {
			t.Errorf("user made before the upgrade reads back as %+v", u)
		}
		if after.Version != newVersion || after.Schema != store.SchemaVersion() || after.DataDir != dataDir {
			t.Errorf("after the upgrade: version %q schema %d data %q, want %q %d %q", after.Version, after.Schema, after.DataDir, newVersion, store.SchemaVersion(), dataDir)
		}
		if before.Version == after.Version {
			t.Errorf("the old and new gateways both say version %q: the upgrade test did not start from the old build", before.Version)
		}
	})
	if beforeCert.SHA256 == "" || afterCert.SHA256 != beforeCert.SHA256 {
		t.Errorf("certificate before %q, after the upgrade %q: the stored certificate was not kept", beforeCert.SHA256, afterCert.SHA256)
	}

	// The gateway's own "install" refuses to shadow the packaged unit with
	// an unhardened root one in /etc/systemd/system.
	if out, err := r.command(ctx, nil, "portico-gateway", "install").CombinedOutput(); err == nil || !strings.Contains(string(out), "already installed the service") {
		t.Errorf("portico-gateway install on top of the package: %v\n%s", err, out)
	}
	r.run(t, ctx, "test", "!", "-e", "/etc/systemd/system/portico-gateway.service")

	// Remove keeps the data and the user; the programs go.
	r.run(t, ctx, "dpkg", "--remove", "portico")
	r.run(t, ctx, "test", "!", "-e", "/usr/bin/portico-gateway")
	r.run(t, ctx, "test", "-s", dataDir+"/portico.db")
	r.run(t, ctx, "getent", "passwd", "portico")

	// Purge deletes the data, the user and the unit's enablement.
	r.run(t, ctx, "dpkg", "--purge", "portico")
	r.run(t, ctx, "test", "!", "-e", dataDir)
	r.run(t, ctx, "test", "!", "-L", "/etc/systemd/system/multi-user.target.wants/portico-gateway.service")
	for _, db := range []string{"passwd", "group"} {
		if out, err := r.command(ctx, nil, "getent", db, "portico").CombinedOutput(); err == nil {
			t.Errorf("after purge getent %s portico still finds %s", db, out)
		}
	}
}

// withGateway runs the installed gateway in the root with what the unit
// gives it: user portico, CAP_NET_BIND_SERVICE as its only capability,
// no_new_privs, the packaged data directory. Its HTTPS listener is on a
// privileged loopback port, the rest on free ones. f gets an admin client
// found the way the GUI finds it and the gateway's status; then the
// gateway is stopped with SIGTERM.
func withGateway(t *testing.T, ctx context.Context, r *throwawayRoot, f func(*admin.Client)) {
	t.Helper()
	endpoint := r.path(dataDir + "/admin-endpoint.json")
	os.Remove(endpoint) // written anew by each start
	https := privilegedPort(t)
	cmd := r.command(ctx, nil, "setpriv", "--reuid=portico", "--regid=portico", "--init-groups",
		"--inh-caps=-all,+net_bind_service", "--ambient-caps=-all,+net_bind_service", "--bounding-set=-all,+net_bind_service",
		"--no-new-privs", "/usr/bin/portico-gateway", "run",
		"--data-dir", dataDir, "--https-addr", https, "--http-addr", freePort(t), "--admin-addr", freePort(t))
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	alive := func() error {
		select {
		case err := <-exited:
			exited <- err
			return fmt.Errorf("gateway exited (%v):\n%s", err, out.String())
		default:
			return nil
		}
	}
	wctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	waitFile(t, wctx, endpoint, alive)
	// Found as the GUI finds it: endpoint and token in the data directory.
	c, err := admin.Dial(r.path(dataDir))
	if err != nil {
		t.Fatal(err)
	}
	var st admin.Status
	mustDo(t, ctx, c, "/api/v1/status", &st)
	if !hasListener(st, https) {
		t.Errorf("the gateway as user portico did not bind the privileged port %s: listeners %+v", https, st.Listeners)
	}
	func() {
		defer func() {
			cmd.Process.Signal(syscall.SIGTERM)
			if err := <-exited; err != nil {
				t.Errorf("gateway did not stop cleanly on SIGTERM: %v\n%s", err, out.String())
			}
		}()
		f(c)
	}()
}

func hasListener(st admin.Status, addr string) bool {
	for _, l := range st.Listeners {
		if l.Addr == addr {
			return true
		}
	}
	return false
}

// privilegedPort is a loopback port below 1024 that was free a moment
// ago, to show the gateway binds one without root.
func privilegedPort(t *testing.T) string {
	t.Helper()
	for p := 1023; p > 900; p-- {
		addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(p))
		if l, err := net.Listen("tcp", addr); err == nil {
			l.Close()
			return addr
		}
	}
	t.Fatal("no free loopback port in 901..1023")
	return ""
}

func mustDo(t *testing.T, ctx context.Context, c *admin.Client, path string, out any) {
	t.Helper()
	if err := c.Do(ctx, http.MethodGet, path, nil, out); err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
