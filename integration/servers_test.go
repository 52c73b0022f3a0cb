package integration

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// need fails the test (never skips) when a program the test starts is
// missing, naming the Debian package that provides it: CI installs them.
func need(t testing.TB, prog, pkg string) string {
	t.Helper()
	p, err := exec.LookPath(prog)
	if err != nil {
		t.Fatalf("%s not found: apt-get install %s (make test installs it)", prog, pkg)
	}
	return p
}

func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func waitPort(t *testing.T, port int, what string, logs *bytes.Buffer) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		c, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(port), 200*time.Millisecond)
		if err == nil {
			c.Close()
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("%s did not listen on %d; output:\n%s", what, port, logs)
}

// syncBuffer is a bytes.Buffer safe for a process's concurrent writes.
type syncBuffer struct {
	mu sync.Mutex
	bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.Buffer.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.Buffer.String()
}

// startProc starts a background process killed at cleanup.
func startProc(t *testing.T, env []string, name string, args ...string) *syncBuffer {
	t.Helper()
	out := &syncBuffer{}
	cmd := exec.Command(name, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	return out
}

// xDisplay finds a free X display number (no lock file, no socket).
func xDisplay(t *testing.T) int {
	t.Helper()
	for n := 40 + os.Getpid()%50; n < 200; n++ {
		lock := fmt.Sprintf("/tmp/.X%d-lock", n)
		if b, err := os.ReadFile(lock); err == nil {
			// Killed X servers leave their lock behind; one whose process
			// is gone is free again (X servers reclaim such locks too).
			pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
			if pid <= 0 || !errors.Is(syscall.Kill(pid, 0), syscall.ESRCH) {
				continue
			}
			os.Remove(lock)
			os.Remove(fmt.Sprintf("/tmp/.X11-unix/X%d", n))
		}
		if _, err := os.Stat(fmt.Sprintf("/tmp/.X11-unix/X%d", n)); err == nil {
			continue
		}
		return n
	}
	t.Fatal("no free X display")
	return 0
}

// vncServer is a real TigerVNC server with a password and a solid colour
// drawn on it.
type vncServer struct {
	Port     int
	Display  string
	Password string
}

func startVNC(t *testing.T, password, colour string) vncServer {
	t.Helper()
	xvnc := need(t, "Xvnc", "tigervnc-standalone-server")
	vncpasswd := need(t, "vncpasswd", "tigervnc-tools")
	need(t, "xsetroot", "x11-xserver-utils")
	dir := t.TempDir()
	pwFile := filepath.Join(dir, "passwd")
	cmd := exec.Command(vncpasswd, "-f")
	cmd.Stdin = strings.NewReader(password + "\n")
	enc, err := cmd.Output()
	if err != nil {
		t.Fatalf("vncpasswd: %v", err)
	}
	os.WriteFile(pwFile, enc, 0o600)
	n := xDisplay(t)
	port := freePort(t)
	out := startProc(t, nil, xvnc, fmt.Sprintf(":%d", n), "-rfbport", strconv.Itoa(port), "-localhost", "-SecurityTypes", "VncAuth",
		"-PasswordFile", pwFile, "-geometry", "640x480", "-depth", "24", "-nolisten", "tcp", "-AcceptCutText=1", "-SendCutText=1")
	waitPort(t, port, "Xvnc", &out.Buffer)
	display := fmt.Sprintf(":%d", n)
	if err := exec.Command("xsetroot", "-display", display, "-solid", colour).Run(); err != nil {
		t.Fatalf("xsetroot: %v", err)
	}
	return vncServer{Port: port, Display: display, Password: password}
}

// sshServer is a real OpenSSH server on loopback with a test account.
type sshServer struct {
	Port           int
	User, Password string
	Home           string
}

const sshUser, sshPassword = "porticotest", "Test-Pass-1234"

func ensureUser(t *testing.T) string {
	t.Helper()
	if _, err := exec.Command("id", sshUser).Output(); err != nil {
		if out, err := exec.Command("useradd", "-m", "-s", "/bin/bash", sshUser).CombinedOutput(); err != nil {
			t.Fatalf("useradd (tests run as root): %v %s", err, out)
		}
	}
	cmd := exec.Command("chpasswd")
	cmd.Stdin = strings.NewReader(sshUser + ":" + sshPassword + "\n")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("chpasswd: %v %s", err, out)
	}
	home, _ := exec.Command("sh", "-c", "getent passwd "+sshUser+" | cut -d: -f6").Output()
	return strings.TrimSpace(string(home))
}

func startSSH(t *testing.T) sshServer {
	t.Helper()
	sshd := need(t, "/usr/sbin/sshd", "openssh-server")
	keygen := need(t, "ssh-keygen", "openssh-client")
	home := ensureUser(t)
	dir := t.TempDir()
	os.MkdirAll("/run/sshd", 0o755)
	hostKey := filepath.Join(dir, "host_ed25519")
	if out, err := exec.Command(keygen, "-q", "-t", "ed25519", "-N", "", "-f", hostKey).CombinedOutput(); err != nil {
		t.Fatalf("ssh-keygen: %v %s", err, out)
	}
	port := freePort(t)
	cfg := filepath.Join(dir, "sshd_config")
	os.WriteFile(cfg, []byte(fmt.Sprintf(`ListenAddress 127.0.0.1
Port %d
HostKey %s
PidFile %s/sshd.pid
UsePAM no
PasswordAuthentication yes
KbdInteractiveAuthentication no
PermitRootLogin no
StrictModes no
AllowUsers %s
Subsystem sftp internal-sftp
AcceptEnv LANG LC_*
`, port, hostKey, dir, sshUser)), 0o600)
	out := startProc(t, nil, sshd, "-D", "-e", "-f", cfg)
	waitPort(t, port, "sshd", &out.Buffer)
	return sshServer{Port: port, User: sshUser, Password: sshPassword, Home: home}
}

func ctxT(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}
