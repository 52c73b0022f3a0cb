package sshrelay

import (
	"bytes"
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// syncBuffer is a bytes.Buffer safe for a writer goroutine and a reader.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func dialCtx(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// whoami runs a command on c and returns its output, proving the session
// is really signed in as the expected user.
func whoami(t *testing.T, c *Client) string {
	t.Helper()
	s, err := c.conn.NewSession()
	if err != nil {
		t.Fatalf("session: %v", err)
	}
	defer s.Close()
	out, err := s.Output("id -un")
	if err != nil {
		t.Fatalf("id -un: %v", err)
	}
	return strings.TrimSpace(string(out))
}

func TestDialAuth(t *testing.T) {
	h := startSSHD(t)

	encKey := filepath.Join(h.dir, "enc_ed25519")
	keygen(t, encKey, "sesame")
	encPub, err := os.ReadFile(encKey + ".pub")
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(filepath.Join(h.dir, "authorized_keys"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write(encPub); err != nil {
		t.Fatal(err)
	}
	f.Close()
	encPEM, err := os.ReadFile(encKey)
	if err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name    string
		cred    Credentials
		wantErr error
		wantMsg string
	}{
		{name: "password", cred: Credentials{User: testUser, Password: testPassword}},
		{name: "key", cred: Credentials{User: testUser, PrivateKeyPEM: h.userKeyPEM}},
		{name: "encrypted key", cred: Credentials{User: testUser, PrivateKeyPEM: encPEM, Passphrase: "sesame"}},
		{name: "wrong password", cred: Credentials{User: testUser, Password: "wrong"},
			wantErr: ErrAuthFailed, wantMsg: "SSH host refused the credentials for user " + testUser},
		{name: "unknown user", cred: Credentials{User: "nobody-portico", Password: testPassword},
			wantErr: ErrAuthFailed, wantMsg: "SSH host refused the credentials for user nobody-portico"},
		{name: "encrypted key without passphrase", cred: Credentials{User: testUser, PrivateKeyPEM: encPEM},
			wantMsg: "passphrase"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Dial(dialCtx(t), h.addr, tt.cred, HostKeyPolicy{Pinned: h.fingerprint})
			if tt.wantMsg == "" {
				if err != nil {
					t.Fatalf("Dial: %v", err)
				}
				defer c.Close()
				if got := whoami(t, c); got != testUser {
					t.Fatalf("signed in as %q, want %q", got, testUser)
				}
				return
			}
			if err == nil {
				c.Close()
				t.Fatal("Dial succeeded, want an error")
			}
			if tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
				t.Errorf("error %v is not %v", err, tt.wantErr)
			}
			if !strings.Contains(err.Error(), tt.wantMsg) {
				t.Errorf("error %q does not contain %q", err, tt.wantMsg)
			}
		})
	}
}

func TestDialHostKey(t *testing.T) {
	h := startSSHD(t)
	cred := Credentials{User: testUser, Password: testPassword}

	// Trust on first use reports the real host key's fingerprint.
	var seen []string
	c, err := Dial(dialCtx(t), h.addr, cred, HostKeyPolicy{OnFirstUse: func(fp string) error {
		seen = append(seen, fp)
		return nil
	}})
	if err != nil {
		t.Fatalf("first use: %v", err)
	}
	c.Close()
	if len(seen) != 1 || seen[0] != h.fingerprint {
		t.Fatalf("OnFirstUse saw %q, want [%q]", seen, h.fingerprint)
	}

	// The stored fingerprint, pinned, is accepted.
	c, err = Dial(dialCtx(t), h.addr, cred, HostKeyPolicy{Pinned: seen[0], OnFirstUse: func(string) error {
		t.Error("OnFirstUse called although a key is pinned")
		return nil
	}})
	if err != nil {
		t.Fatalf("pinned: %v", err)
	}
	c.Close()

	// Another key's fingerprint is refused, naming both.
	other := filepath.Join(h.dir, "other_ed25519")
	keygen(t, other, "")
	wrong := fingerprintOf(t, other+".pub")
	_, err = Dial(dialCtx(t), h.addr, cred, HostKeyPolicy{Pinned: wrong})
	if !errors.Is(err, ErrHostKeyChanged) {
		t.Fatalf("wrong pin: got %v, want ErrHostKeyChanged", err)
	}
	want := "host key changed: expected " + wrong + ", got " + h.fingerprint + "; if the host was reinstalled, clear the pinned key in the resource settings"
	if err.Error() != want {
		t.Errorf("wrong pin error:\n got %q\nwant %q", err, want)
	}

	// A caller that cannot store the key refuses the connection.
	refuse := errors.New("store unavailable")
	_, err = Dial(dialCtx(t), h.addr, cred, HostKeyPolicy{OnFirstUse: func(string) error { return refuse }})
	if !errors.Is(err, refuse) {
		t.Fatalf("OnFirstUse error: got %v, want it wrapped", err)
	}
}

func TestDialCancelled(t *testing.T) {
	// A listener that accepts but never speaks SSH: only ctx can end Dial.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := l.Accept()
		if err == nil {
			accepted <- c
		}
	}()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := Dial(ctx, l.Addr().String(), Credentials{User: "u", Password: "p"}, HostKeyPolicy{})
		done <- err
	}()
	select {
	case c := <-accepted:
		t.Cleanup(func() { c.Close() })
	case <-time.After(20 * time.Second):
		t.Fatal("Dial did not connect")
	}
	// Dial is now inside the handshake, waiting for the server's banner.
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("got %v, want context.Canceled", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("Dial did not return after cancel")
	}
}
