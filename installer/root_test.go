package installer

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// throwawayRoot is a copy-on-write view of the host's root file system:
// an overlay whose upper layer lives in t.TempDir(). Packages installed in
// it see a real Debian system (dpkg database, useradd, deb-systemd-helper)
// while every change lands in the upper layer, never on the host. Each
// command mounts the overlay in a private mount namespace of its own, so
// nothing stays mounted when it exits.
type throwawayRoot struct {
	upper, work, merged string
}

func newThrowawayRoot(t *testing.T) *throwawayRoot {
	t.Helper()
	need(t, "unshare", "util-linux")
	need(t, "chroot", "coreutils")
	need(t, "setpriv", "util-linux")
	if os.Geteuid() != 0 {
		t.Fatalf("installing a package into a throwaway root needs root (mount, chroot): run the tests as root")
	}
	dir := t.TempDir()
	r := &throwawayRoot{filepath.Join(dir, "upper"), filepath.Join(dir, "work"), filepath.Join(dir, "merged")}
	for _, d := range []string{r.upper, r.work, r.merged} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return r
}

// mountScript mounts the overlay, /dev and /proc and then runs the
// command in the chroot (exec, so signals reach the command itself).
const mountScript = `set -e
mount -t overlay overlay -o "lowerdir=/,upperdir=$R_UPPER,workdir=$R_WORK" "$R_MERGED"
mount --bind /dev "$R_MERGED/dev"
mount -t proc proc "$R_MERGED/proc"
exec chroot "$@"`

// command prepares args to run inside the root; chrootArgs go before the
// new root (e.g. --userspec=portico:portico).
func (r *throwawayRoot) command(ctx context.Context, chrootArgs []string, args ...string) *exec.Cmd {
	full := []string{"--mount", "--propagation", "private", "sh", "-c", mountScript, "sh"}
	full = append(full, chrootArgs...)
	full = append(full, r.merged)
	full = append(full, args...)
	cmd := exec.CommandContext(ctx, "unshare", full...)
	cmd.Env = append(os.Environ(), "R_UPPER="+r.upper, "R_WORK="+r.work, "R_MERGED="+r.merged,
		"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "DEBIAN_FRONTEND=noninteractive")
	return cmd
}

// run runs a command as root inside the root and returns its output.
func (r *throwawayRoot) run(t *testing.T, ctx context.Context, args ...string) string {
	t.Helper()
	cmd := r.command(ctx, nil, args...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("in the throwaway root: %v: %v\n%s", args, err, out)
	}
	return string(out)
}

// path is where a file of the root shows up on the host when it was
// written inside the root (the upper layer).
func (r *throwawayRoot) path(p string) string { return filepath.Join(r.upper, p) }

// copyIn puts a host file into the root for commands to use.
func (r *throwawayRoot) copyIn(t *testing.T, src string) string {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	// Not under /tmp: a directory made in the upper layer would hide the
	// host's /tmp modes.
	dst := filepath.Join("/portico-test", filepath.Base(src))
	if err := os.MkdirAll(r.path("/portico-test"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(r.path(dst), b, 0o644); err != nil {
		t.Fatal(err)
	}
	return dst
}
