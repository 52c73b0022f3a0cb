package sshrelay

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
)

// The dedicated local account the tests sign in as. Tests run as root in
// CI; TestMain creates the account when it is missing.
const (
	// Not the integration tests' user: both packages run at once under
	// go test ./... and each sets its own password.
	testUser     = "porticorelay"
	testPassword = "portico-Test-pw-7"
	sshdPath     = "/usr/sbin/sshd"
)

// userSetupErr is set once by TestMain and read by every test that needs
// sshd, which then fails naming the cause.
var userSetupErr error

func TestMain(m *testing.M) {
	userSetupErr = ensureTestUser()
	os.Exit(m.Run())
}

// ensureTestUser creates testUser with testPassword if needed; running it
// again only resets the password.
func ensureTestUser() error {
	if _, err := user.Lookup(testUser); err != nil {
		out, err := exec.Command("useradd", "-m", "-s", "/bin/bash", testUser).CombinedOutput()
		if err != nil {
			return fmt.Errorf("useradd %s (tests must run as root): %v: %s", testUser, err, out)
		}
	}
	cmd := exec.Command("chpasswd")
	cmd.Stdin = bytes.NewBufferString(testUser + ":" + testPassword + "\n")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("chpasswd %s (tests must run as root): %v: %s", testUser, err, out)
	}
	return nil
}

// testHost is a running sshd and the material to reach it.
type testHost struct {
	addr        string
	fingerprint string // of the host key, from its .pub file
	userKeyPEM  []byte // authorized for testUser
	home        string // testUser's home directory on this machine
	dir         string // the test's temp dir, readable by testUser
}

// keygen runs ssh-keygen for an ed25519 key at file with passphrase.
func keygen(t testing.TB, file, passphrase string) {
	t.Helper()
	out, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", passphrase, "-C", "portico-test", "-f", file).CombinedOutput()
	if err != nil {
		t.Fatalf("ssh-keygen %s: %v: %s", file, err, out)
	}
}

// fingerprintOf reads a .pub file and returns its SHA256 fingerprint.
func fingerprintOf(t testing.TB, pubFile string) string {
	t.Helper()
	b, err := os.ReadFile(pubFile)
	if err != nil {
		t.Fatal(err)
	}
	pub, _, _, _, err := ssh.ParseAuthorizedKey(b)
	if err != nil {
		t.Fatalf("parse %s: %v", pubFile, err)
	}
	return ssh.FingerprintSHA256(pub)
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

// startSSHD runs a real OpenSSH server on 127.0.0.1 for this test only.
func startSSHD(t testing.TB) *testHost {
	t.Helper()
	if _, err := os.Stat(sshdPath); err != nil {
		t.Fatalf("%s not found: install the openssh-server package", sshdPath)
	}
	if _, err := exec.LookPath("ssh-keygen"); err != nil {
		t.Fatalf("ssh-keygen not found: install the openssh-client package")
	}
	if userSetupErr != nil {
		t.Fatalf("test user setup: %v", userSetupErr)
	}
	u, err := user.Lookup(testUser)
	if err != nil {
		t.Fatal(err)
	}
	// sshd refuses to start without its privilege-separation directory.
	if err := os.MkdirAll("/run/sshd", 0o755); err != nil {
		t.Fatalf("create /run/sshd: %v", err)
	}

	dir := t.TempDir()
	// sshd reads AuthorizedKeysFile as the user, so the path to it must be
	// traversable by testUser (TempDir and its parent are 0700).
	for _, d := range []string{dir, filepath.Dir(dir)} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	hostKey := filepath.Join(dir, "host_ed25519")
	keygen(t, hostKey, "")
	userKey := filepath.Join(dir, "user_ed25519")
	keygen(t, userKey, "")
	pub, err := os.ReadFile(userKey + ".pub")
	if err != nil {
		t.Fatal(err)
	}
	authKeys := filepath.Join(dir, "authorized_keys")
	if err := os.WriteFile(authKeys, pub, 0o644); err != nil {
		t.Fatal(err)
	}
	userPEM, err := os.ReadFile(userKey)
	if err != nil {
		t.Fatal(err)
	}

	port := freePort(t)
	config := fmt.Sprintf(`ListenAddress 127.0.0.1
Port %d
HostKey %s
PidFile %s
UsePAM no
StrictModes no
AuthorizedKeysFile %s
PasswordAuthentication yes
KbdInteractiveAuthentication no
PubkeyAuthentication yes
PermitRootLogin no
AllowUsers %s
AcceptEnv LANG LC_*
Subsystem sftp internal-sftp
`, port, hostKey, filepath.Join(dir, "sshd.pid"), authKeys, testUser)
	configFile := filepath.Join(dir, "sshd_config")
	if err := os.WriteFile(configFile, []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}

	var logBuf syncBuffer
	cmd := exec.Command(sshdPath, "-D", "-e", "-f", configFile)
	cmd.Stdout = &logBuf
	cmd.Stderr = &logBuf
	if err := cmd.Start(); err != nil {
		t.Fatalf("start sshd: %v", err)
	}
	exited := make(chan struct{})
	go func() {
		cmd.Wait()
		close(exited)
	}()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-exited
		if t.Failed() {
			t.Logf("sshd log:\n%s", logBuf.String())
		}
	})

	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	deadline := time.Now().Add(15 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			break
		}
		select {
		case <-exited:
			t.Fatalf("sshd exited at start:\n%s", logBuf.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("sshd did not listen on %s: %v\n%s", addr, err, logBuf.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	return &testHost{
		addr:        addr,
		fingerprint: fingerprintOf(t, hostKey+".pub"),
		userKeyPEM:  userPEM,
		home:        u.HomeDir,
		dir:         dir,
	}
}

// dial signs in as testUser with the password, trusting on first use.
func (h *testHost) dial(t testing.TB) *Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, err := Dial(ctx, h.addr, Credentials{User: testUser, Password: testPassword}, HostKeyPolicy{Pinned: h.fingerprint})
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}
