package sshrelay

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"golang.org/x/crypto/ssh"
)

// Errors callers can tell apart with errors.Is.
var (
	// ErrAuthFailed means the host refused the credentials.
	ErrAuthFailed = errors.New("SSH authentication failed")
	// ErrHostKeyChanged means the host presented a key other than the
	// pinned one.
	ErrHostKeyChanged = errors.New("host key changed")
)

// authError names the user whose credentials were refused.
type authError struct{ user string }

func (e authError) Error() string {
	return "SSH host refused the credentials for user " + e.user
}

func (e authError) Is(target error) bool { return target == ErrAuthFailed }

// handshakeTimeout bounds a Dial whose ctx has no deadline, so a host that
// accepts TCP but never speaks SSH cannot hold a goroutine forever.
const handshakeTimeout = 30 * time.Second

// Credentials are what the gateway signs in with. Password and
// PrivateKeyPEM may both be set; the key is offered first.
type Credentials struct {
	User          string
	Password      string
	PrivateKeyPEM []byte
	Passphrase    string // for an encrypted PrivateKeyPEM
}

// HostKeyPolicy decides which host key is accepted.
type HostKeyPolicy struct {
	// Pinned is the expected key's fingerprint as ssh.FingerprintSHA256
	// prints it ("SHA256:..."); empty means trust on first use.
	Pinned string
	// OnFirstUse receives the host's fingerprint when Pinned is empty so
	// the caller can store it; an error from it refuses the connection.
	// With neither Pinned nor OnFirstUse any host key is accepted.
	OnFirstUse func(fingerprint string) error
}

// Client is an authenticated SSH connection to one host.
type Client struct {
	conn *ssh.Client
	user string
}

// Dial connects to addr ("host:port"), checks the host key against hk and
// signs in with cred. The ctx deadline covers TCP connect and handshake.
func Dial(ctx context.Context, addr string, cred Credentials, hk HostKeyPolicy) (*Client, error) {
	if cred.User == "" {
		return nil, errors.New("ssh dial: no user name")
	}
	auth, err := authMethods(cred)
	if err != nil {
		return nil, err
	}
	// The library wraps callback errors in its own wording; keep ours so
	// the message stays the one an administrator can act on.
	var hostKeyErr error
	check := hostKeyCallback(hk)
	cfg := &ssh.ClientConfig{
		User: cred.User,
		Auth: auth,
		HostKeyCallback: func(host string, remote net.Addr, key ssh.PublicKey) error {
			hostKeyErr = check(host, remote, key)
			return hostKeyErr
		},
	}

	d := net.Dialer{KeepAliveConfig: TCPKeepAlive}
	raw, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("dial ssh host %s: %w (%w)", addr, err, ErrUnreachable)
	}
	deadline, ok := ctx.Deadline()
	if !ok {
		deadline = time.Now().Add(handshakeTimeout)
	}
	if err := raw.SetDeadline(deadline); err != nil {
		raw.Close()
		return nil, fmt.Errorf("ssh handshake with %s: %w", addr, err)
	}
	// ssh.NewClientConn takes no ctx; closing the socket is the only way
	// to stop it when ctx is cancelled early.
	stop := context.AfterFunc(ctx, func() { raw.Close() })
	sc, chans, reqs, err := ssh.NewClientConn(raw, addr, cfg)
	stopped := stop()
	if err != nil {
		raw.Close()
		if hostKeyErr != nil {
			return nil, hostKeyErr
		}
		return nil, handshakeError(ctx, addr, cred.User, err)
	}
	if !stopped {
		sc.Close()
		return nil, fmt.Errorf("ssh handshake with %s: %w", addr, ctx.Err())
	}
	if err := raw.SetDeadline(time.Time{}); err != nil {
		sc.Close()
		return nil, fmt.Errorf("ssh handshake with %s: %w", addr, err)
	}
	return &Client{conn: ssh.NewClient(sc, chans, reqs), user: cred.User}, nil
}

// ErrUnreachable is wrapped by Dial's error when no TCP connection to the
// host could be made.
var ErrUnreachable = errors.New("host unreachable")

// ErrHostSilent is KeepAlive's error for a host that stopped answering.
var ErrHostSilent = errors.New("SSH host stopped answering")

// TCPKeepAlive is the TCP keep-alive toward hosts: a host whose machine or
// network is gone is noticed in about 30 s even while nothing is sent.
var TCPKeepAlive = net.KeepAliveConfig{Enable: true, Idle: 15 * time.Second, Interval: 5 * time.Second, Count: 3}

// KeepAlive asks the host for a reply every interval (the keepalive
// request OpenSSH's ServerAliveInterval sends) and returns ErrHostSilent
// when one is not answered within another interval: a host that stopped
// answering, though its TCP connection lives, ends the session. It returns
// nil when ctx ends.
func (c *Client) KeepAlive(ctx context.Context, interval time.Duration) error {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		answered := make(chan error, 1)
		go func() {
			_, _, err := c.conn.SendRequest("keepalive@openssh.com", true, nil)
			answered <- err
		}()
		select {
		case <-ctx.Done():
			return nil
		case err := <-answered:
			if err != nil {
				return fmt.Errorf("%w: %w", ErrHostSilent, err)
			}
		case <-time.After(interval):
			return ErrHostSilent
		}
	}
}

// Close ends the SSH connection and every session on it.
func (c *Client) Close() error {
	return c.conn.Close()
}

func authMethods(cred Credentials) ([]ssh.AuthMethod, error) {
	var methods []ssh.AuthMethod
	if len(cred.PrivateKeyPEM) > 0 {
		var signer ssh.Signer
		var err error
		if cred.Passphrase != "" {
			signer, err = ssh.ParsePrivateKeyWithPassphrase(cred.PrivateKeyPEM, []byte(cred.Passphrase))
		} else {
			signer, err = ssh.ParsePrivateKey(cred.PrivateKeyPEM)
		}
		var missing *ssh.PassphraseMissingError
		switch {
		case errors.As(err, &missing):
			return nil, errors.New("ssh private key is encrypted: set its passphrase in the resource settings")
		case err != nil:
			return nil, fmt.Errorf("parse ssh private key: %w", err)
		}
		methods = append(methods, ssh.PublicKeys(signer))
	}
	if cred.Password != "" {
		pw := cred.Password
		// Hosts often offer only keyboard-interactive for passwords (PAM),
		// so answer every prompt of it with the password too.
		methods = append(methods,
			ssh.Password(pw),
			ssh.KeyboardInteractive(func(_, _ string, questions []string, _ []bool) ([]string, error) {
				answers := make([]string, len(questions))
				for i := range answers {
					answers[i] = pw
				}
				return answers, nil
			}))
	}
	if len(methods) == 0 {
		return nil, errors.New("ssh dial: credentials have neither a password nor a private key")
	}
	return methods, nil
}

func hostKeyCallback(hk HostKeyPolicy) ssh.HostKeyCallback {
	return func(_ string, _ net.Addr, key ssh.PublicKey) error {
		got := ssh.FingerprintSHA256(key)
		if hk.Pinned != "" {
			if got != hk.Pinned {
				return fmt.Errorf("%w: expected %s, got %s; if the host was reinstalled, clear the pinned key in the resource settings",
					ErrHostKeyChanged, hk.Pinned, got)
			}
			return nil
		}
		if hk.OnFirstUse != nil {
			if err := hk.OnFirstUse(got); err != nil {
				return fmt.Errorf("host key %s not accepted: %w", got, err)
			}
		}
		return nil
	}
}

// handshakeError turns the library's handshake failures into messages an
// administrator can act on.
func handshakeError(ctx context.Context, addr, user string, err error) error {
	if ctx.Err() != nil {
		return fmt.Errorf("ssh handshake with %s: %w", addr, ctx.Err())
	}
	msg := err.Error()
	if strings.Contains(msg, "unable to authenticate") || strings.Contains(msg, "Too many authentication failures") {
		return authError{user: user}
	}
	return fmt.Errorf("ssh handshake with %s: %w", addr, err)
}
