package installer

import (
	"bytes"
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// buildTimeout bounds one package build (cgo GUI builds included) against
// hangs; it is not a speed assertion.
const buildTimeout = 15 * time.Minute

// need fails the test when a command is missing, naming the Debian
// package that provides it.
func need(t *testing.T, cmd, pkg string) {
	t.Helper()
	if _, err := exec.LookPath(cmd); err != nil {
		t.Fatalf("%s is needed: apt-get install %s (scripts/deps.sh test)", cmd, pkg)
	}
}

// repoRoot is the module root: the tests run in installer/.
func repoRoot(t *testing.T) string {
	t.Helper()
	dir, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

// run runs a command in dir with extra environment and returns its
// standard output; it fails the test with both outputs on an error.
func run(t *testing.T, ctx context.Context, dir string, env []string, name string, args ...string) string {
	t.Helper()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %s: %v\nstdout:\n%s\nstderr:\n%s", name, strings.Join(args, " "), err, out.String(), errb.String())
	}
	return out.String()
}

// freePort is a loopback TCP port that was free a moment ago.
func freePort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// waitFile waits until path exists, against hangs only.
func waitFile(t *testing.T, ctx context.Context, path string, alive func() error) {
	t.Helper()
	for {
		if _, err := os.Stat(path); err == nil {
			return
		}
		if err := alive(); err != nil {
			t.Fatalf("waiting for %s: %v", path, err)
		}
		select {
		case <-ctx.Done():
			t.Fatalf("%s did not appear: %v", path, ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}
