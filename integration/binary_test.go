package integration

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/json"
	"io"
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
)

// buildGateway compiles the real portico-gateway binary once per test run,
// pure Go as it ships.
func buildGateway(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "portico-gateway")
	cmd := exec.Command("go", "build", "-o", bin, "../service")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	return bin
}

// runGatewayBinary starts the built gateway in the foreground on free
// loopback ports with its data in data, and returns it with its standard
// output (the first-run credentials and the portal URL). It is killed when
// the test ends.
func runGatewayBinary(t *testing.T, data string) (*exec.Cmd, io.Reader) {
	t.Helper()
	bin := buildGateway(t)
	cmd := exec.Command(bin, "run", "--data-dir", data, "--https-addr", "127.0.0.1:"+strconv.Itoa(freePort(t)),
		"--http-addr", "127.0.0.1:"+strconv.Itoa(freePort(t)), "--admin-addr", "127.0.0.1:"+strconv.Itoa(freePort(t)),
		"--dns-addr", "127.0.0.1:0")
	stdout, _ := cmd.StdoutPipe()
	cmd.Stderr = io.Discard
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	return cmd, stdout
}

// TestBinaryForegroundRunCLIAndSIGTERM runs the gateway binary as a user
// would (`portico-gateway run`), reads the first-run credentials and the
// portal URL it prints, uses the config CLI against it, and stops it with
// SIGTERM: it must exit 0 and release the store.
func TestBinaryForegroundRunCLIAndSIGTERM(t *testing.T) {
	data := t.TempDir()
	cmd, stdout := runGatewayBinary(t, data)
	var printed strings.Builder
	sc := bufio.NewScanner(stdout)
	urlRE := regexp.MustCompile(`User Portal at (https://\S+)`)
	var portalURL string
	deadline := time.AfterFunc(20*time.Second, func() { cmd.Process.Kill() })
	for sc.Scan() {
		printed.WriteString(sc.Text() + "\n")
		if m := urlRE.FindStringSubmatch(sc.Text()); m != nil {
			portalURL = m[1]
			break
		}
	}
	deadline.Stop()
	go io.Copy(io.Discard, stdout)
	if !regexp.MustCompile(`password: \S{20}`).MatchString(printed.String()) || portalURL == "" {
		t.Fatalf("first-run output lacks credentials or URL:\n%s", printed.String())
	}
	hc := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := hc.Get(strings.TrimSuffix(portalURL, "/userportal/") + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.TLS.Version < tls.VersionTLS12 {
		t.Fatalf("TLS %x", resp.TLS.Version)
	}

	out, err := exec.Command(cmd.Path, "config", "get", "status", "--data-dir", data).Output()
	if err != nil {
		t.Fatalf("config get status: %v", err)
	}
	var st struct{ Mode string }
	if json.Unmarshal(out, &st) != nil || st.Mode != "normal" {
		t.Fatalf("status: %s", out)
	}
	bad := filepath.Join(t.TempDir(), "bad.json")
	os.WriteFile(bad, []byte(`{"enabled":true,"colour":1}`), 0o600)
	cli := exec.Command(cmd.Path, "config", "set", "site", bad, "--data-dir", data)
	msg, err := cli.CombinedOutput()
	if err == nil || !strings.Contains(string(msg), "colour") {
		t.Fatalf("bad settings accepted or unclear: %v %s", err, msg)
	}
	export := filepath.Join(t.TempDir(), "export.json")
	if out, err := exec.Command(cmd.Path, "config", "export", export, "--data-dir", data).CombinedOutput(); err != nil {
		t.Fatalf("export: %v %s", err, out)
	}
	if out, err := exec.Command(cmd.Path, "config", "import", export, "--data-dir", data).CombinedOutput(); err != nil {
		t.Fatalf("import of own export: %v %s", err, out)
	}

	// A second gateway on the same data directory refuses clearly.
	second, _ := exec.Command(cmd.Path, "run", "--data-dir", data, "--https-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0", "--admin-addr", "127.0.0.1:0").CombinedOutput()
	if !strings.Contains(string(second), "already in use by PID "+strconv.Itoa(cmd.Process.Pid)) {
		t.Fatalf("second instance: %s", second)
	}

	cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("exit after SIGTERM: %v", err)
		}
	case <-ctx.Done():
		t.Fatal("gateway did not stop after SIGTERM")
	}
	if _, err := os.Stat(filepath.Join(data, "portico.db.pid")); !os.IsNotExist(err) {
		t.Fatal("store not closed cleanly (pid file left)")
	}
	if out, _ := exec.Command(cmd.Path, "version").Output(); !strings.HasPrefix(string(out), "portico-gateway ") {
		t.Fatalf("version: %s", out)
	}
}
