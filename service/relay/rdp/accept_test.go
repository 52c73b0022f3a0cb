package rdp

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// needBinary fails the test, naming the Debian package, when a server the
// test must run is not installed.
func needBinary(t *testing.T, name, pkg string) {
	t.Helper()
	if _, err := exec.LookPath(name); err != nil {
		t.Fatalf("%s not found: install the Debian package %s (apt-get install %s)", name, pkg, pkg)
	}
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// startProcess starts cmd with output to a log file and stops it at cleanup.
func startProcess(t *testing.T, cmd *exec.Cmd, log string) {
	t.Helper()
	f, err := os.Create(log)
	if err != nil {
		t.Fatalf("create log: %v", err)
	}
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", cmd.Path, err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		f.Close()
	})
}

// startShadow runs a real RDP server, freerdp-shadow-cli on its own Xvfb
// display, with the given /sec: mode, and returns its 127.0.0.1 address.
// While other packages' tests start X servers at the same time, the
// server sometimes cannot open the display Xvfb just reported (seen in
// CI); it is then tried again on a new display, up to three times.
func startShadow(t *testing.T, sec string) string {
	t.Helper()
	for try := 1; ; try++ {
		addr, log, ok := tryShadow(t, sec)
		if ok {
			return addr
		}
		if try == 3 || !strings.Contains(string(log), "failed to open display") {
			t.Fatalf("freerdp-shadow-cli never listened on %s:\n%s", addr, log)
		}
		t.Logf("freerdp-shadow-cli could not open its display (try %d), trying a new one", try)
	}
}

// tryShadow starts Xvfb and freerdp-shadow-cli once; ok is false with the
// server's log when it did not listen.
func tryShadow(t *testing.T, sec string) (addr string, log []byte, ok bool) {
	t.Helper()
	needBinary(t, "Xvfb", "xvfb")
	needBinary(t, "winpr-hash", "winpr-utils")
	needBinary(t, "freerdp-shadow-cli", "freerdp2-shadow-x11")
	dir := t.TempDir()

	// -displayfd lets Xvfb pick a free display and tell us which.
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatalf("pipe: %v", err)
	}
	defer r.Close()
	xvfb := exec.Command("Xvfb", "-displayfd", "3", "-screen", "0", "640x480x24", "-nolisten", "tcp")
	xvfb.ExtraFiles = []*os.File{w}
	startProcess(t, xvfb, filepath.Join(dir, "xvfb.log"))
	w.Close()
	display := make(chan string, 1)
	go func() {
		line, _ := bufio.NewReader(r).ReadString('\n')
		display <- strings.TrimSpace(line)
	}()
	var disp string
	select {
	case disp = <-display:
	case <-time.After(20 * time.Second):
		t.Fatalf("Xvfb did not report its display")
	}
	if disp == "" {
		log, _ := os.ReadFile(filepath.Join(dir, "xvfb.log"))
		t.Fatalf("Xvfb failed to start: %s", log)
	}

	sam, err := exec.Command("winpr-hash", "-u", "test", "-p", "test", "-f", "sam").Output()
	if err != nil {
		t.Fatalf("winpr-hash: %v", err)
	}
	samFile := filepath.Join(dir, "sam")
	if err := os.WriteFile(samFile, sam, 0o600); err != nil {
		t.Fatalf("write sam: %v", err)
	}

	port := freePort(t)
	shadow := exec.Command("freerdp-shadow-cli", "/bind-address:127.0.0.1", fmt.Sprintf("/port:%d", port),
		"-auth", "/sec:"+sec, "/sam-file:"+samFile)
	// HOME decides where the server writes its generated certificate.
	shadow.Env = []string{"DISPLAY=:" + disp, "HOME=" + dir, "PATH=" + os.Getenv("PATH")}
	logFile := filepath.Join(dir, "shadow.log")
	startProcess(t, shadow, logFile)

	addr = fmt.Sprintf("127.0.0.1:%d", port)
	deadline := time.Now().Add(20 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return addr, nil, true
		}
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(logFile)
			return addr, log, false
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// directLeaf is what any TLS client sees from the RDP server: X.224 first,
// then TLS. It returns the leaf certificate's DER.
func directLeaf(t *testing.T, addr string) []byte {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(20 * time.Second))
	if _, err := c.Write(BuildConnectionRequest("test", ProtocolSSL|ProtocolHybrid)); err != nil {
		t.Fatalf("write request: %v", err)
	}
	if _, err := ReadTPKT(c, 1024); err != nil {
		t.Fatalf("read confirm: %v", err)
	}
	tc := tls.Client(c, &tls.Config{InsecureSkipVerify: true})
	if err := tc.Handshake(); err != nil {
		t.Fatalf("direct TLS handshake: %v", err)
	}
	return tc.ConnectionState().PeerCertificates[0].Raw
}

func request(t *testing.T, destination, token string, protocols uint32) []byte {
	t.Helper()
	b, err := NewRequest(BuildConnectionRequest("test", protocols), destination, token, "").Marshal()
	if err != nil {
		t.Fatalf("marshal request: %v", err)
	}
	return b
}

// tokenAuth grants good → addr, forbidden → ErrForbidden, else unauthorized.
func tokenAuth(addr string) Authorizer {
	return func(_ context.Context, token string) (Target, error) {
		switch token {
		case "good":
			return Target{Addr: addr}, nil
		case "forbidden":
			return Target{}, fmt.Errorf("user may not open this host: %w", ErrForbidden)
		}
		return Target{}, errors.New("unknown ticket")
	}
}

func parseResp(t *testing.T, resp []byte) *PDU {
	t.Helper()
	if resp == nil {
		t.Fatalf("no response PDU")
	}
	p, err := ParsePDU(resp)
	if err != nil {
		t.Fatalf("response is not a valid PDU: %v", err)
	}
	if p.Version != Version {
		t.Fatalf("response version %d, want %d", p.Version, Version)
	}
	return p
}

func wantErrPDU(t *testing.T, resp []byte, want Err) *PDU {
	t.Helper()
	p := parseResp(t, resp)
	if p.Error == nil || *p.Error != want {
		t.Fatalf("response error = %+v, want %+v", p.Error, want)
	}
	if p.ServerAddr != "" || p.ServerCertChain != nil {
		t.Fatalf("error response carries success fields: %+v", p)
	}
	return p
}

func TestAcceptRealServer(t *testing.T) {
	addr := startShadow(t, "nla")
	leaf := directLeaf(t, addr)
	ctx := t.Context()

	success := func(t *testing.T, destination string) {
		resp, tc, err := Accept(ctx, request(t, destination, "good", ProtocolSSL|ProtocolHybrid|ProtocolHybridEx), tokenAuth(addr), nil)
		if err != nil {
			t.Fatalf("Accept: %v", err)
		}
		defer tc.Close()
		p := parseResp(t, resp)
		if p.Error != nil {
			t.Fatalf("success response has error %+v", p.Error)
		}
		c, err := ParseConnectionConfirm(p.X224)
		if err != nil {
			t.Fatalf("response x224: %v", err)
		}
		if c.Failed || c.Protocol&ProtocolHybrid == 0 {
			t.Fatalf("confirm %+v does not select HYBRID (NLA)", c)
		}
		if len(p.ServerCertChain) == 0 || !bytes.Equal(p.ServerCertChain[0], leaf) {
			t.Fatalf("chain leaf differs from the certificate the server presents directly")
		}
		if p.ServerAddr != addr {
			t.Fatalf("server_addr = %q, want %q", p.ServerAddr, addr)
		}
		st := tc.ConnectionState()
		if !st.HandshakeComplete || len(st.PeerCertificates) == 0 || !bytes.Equal(st.PeerCertificates[0].Raw, leaf) {
			t.Fatalf("returned conn: handshake complete %v, %d peer certs", st.HandshakeComplete, len(st.PeerCertificates))
		}
		// The conn must be live: the server speaks CredSSP next, so a
		// garbage TSRequest makes it close the session. Seeing that close
		// (rather than a timeout or a TLS error) proves the TLS channel works.
		tc.SetDeadline(time.Now().Add(20 * time.Second))
		if _, err := tc.Write([]byte{0x30, 0x03, 0x02, 0x01, 0x00}); err != nil {
			t.Fatalf("write over returned conn: %v", err)
		}
		if _, err := io.ReadAll(tc); err != nil && !errors.Is(err, io.EOF) && !isReset(err) {
			t.Fatalf("read over returned conn: %v", err)
		}
	}
	t.Run("nla selected, real chain", func(t *testing.T) { success(t, addr) })
	// A closed loopback port: were the destination used, Accept would fail
	// with connection refused, without traffic leaving the machine.
	bogus := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	t.Run("pdu destination ignored", func(t *testing.T) { success(t, bogus) })

	t.Run("certificate check sees the leaf and can refuse it", func(t *testing.T) {
		var seen []byte
		pinned := func(want string) Authorizer {
			return func(context.Context, string) (Target, error) {
				return Target{Addr: addr, CheckCert: func(c *x509.Certificate) error {
					seen = c.Raw
					if want != string(c.Raw) {
						return errors.New("certificate differs from the pinned one")
					}
					return nil
				}}, nil
			}
		}
		_, tc, err := Accept(ctx, request(t, addr, "good", ProtocolSSL|ProtocolHybrid), pinned(string(leaf)), nil)
		if err != nil {
			t.Fatalf("Accept with the right pin: %v", err)
		}
		tc.Close()
		if !bytes.Equal(seen, leaf) {
			t.Fatalf("CheckCert saw a certificate other than the host's leaf")
		}
		resp, tc, err := Accept(ctx, request(t, addr, "good", ProtocolSSL|ProtocolHybrid), pinned("another certificate"), nil)
		if tc != nil {
			t.Fatalf("got a connection although the certificate was refused")
		}
		if !errors.Is(err, ErrCertificateRejected) {
			t.Fatalf("err = %v, want ErrCertificateRejected", err)
		}
		wantErrPDU(t, resp, Err{Code: CodeGeneral, TLSAlert: AlertBadCertificate})
	})
	t.Run("standard security only is refused", func(t *testing.T) {
		resp, tc, err := Accept(ctx, request(t, addr, "good", ProtocolRDP), tokenAuth(addr), nil)
		if tc != nil {
			t.Fatalf("got a connection for a refused negotiation")
		}
		if !errors.Is(err, ErrNegotiationFailed) {
			t.Fatalf("err = %v, want ErrNegotiationFailed", err)
		}
		p := wantErrPDU(t, resp, Err{Code: CodeNegotiation})
		c, perr := ParseConnectionConfirm(p.X224)
		if perr != nil {
			t.Fatalf("attached confirm: %v", perr)
		}
		if !c.Failed || c.FailureCode == 0 {
			t.Fatalf("attached confirm %+v is not a negotiation failure", c)
		}
		t.Logf("server refused standard security with failure code %d: %v", c.FailureCode, err)
	})
}

func isReset(err error) bool {
	return strings.Contains(err.Error(), "connection reset")
}

// countingTarget stands in for an RDP host and records every connection
// that reaches it.
type countingTarget struct {
	addr string
	mu   sync.Mutex
	got  [][]byte // first bytes of each accepted connection
	seen chan struct{}
}

func newCountingTarget(t *testing.T) *countingTarget {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	ct := &countingTarget{addr: l.Addr().String(), seen: make(chan struct{}, 16)}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			buf := make([]byte, 64)
			c.SetReadDeadline(time.Now().Add(10 * time.Second))
			n, _ := c.Read(buf)
			c.Close()
			ct.mu.Lock()
			ct.got = append(ct.got, buf[:n])
			ct.mu.Unlock()
			ct.seen <- struct{}{}
		}
	}()
	return ct
}

// connectionsBeforeSentinel dials the target itself and returns how many
// connections reached it before that one: the accept queue is FIFO, so a
// connection Accept made would be counted first.
func (ct *countingTarget) connectionsBeforeSentinel(t *testing.T) int {
	c, err := net.Dial("tcp", ct.addr)
	if err != nil {
		t.Fatalf("sentinel dial: %v", err)
	}
	c.Write([]byte("sentinel"))
	defer c.Close()
	for {
		select {
		case <-ct.seen:
		case <-time.After(20 * time.Second):
			t.Fatalf("sentinel never reached the target")
		}
		ct.mu.Lock()
		for i, g := range ct.got {
			if string(g) == "sentinel" {
				ct.mu.Unlock()
				return i
			}
		}
		ct.mu.Unlock()
	}
}

func TestAcceptRefusesBeforeConnecting(t *testing.T) {
	tests := []struct {
		name    string
		first   func(t *testing.T, addr string) []byte
		want    Err
		wantErr error
	}{
		{"bad token", func(t *testing.T, a string) []byte { return request(t, a, "stolen", ProtocolHybrid) }, Err{Code: CodeGeneral, HTTPStatus: 401}, ErrUnauthorized},
		{"no token", func(t *testing.T, a string) []byte { return request(t, a, "", ProtocolHybrid) }, Err{Code: CodeGeneral, HTTPStatus: 401}, ErrUnauthorized},
		{"forbidden", func(t *testing.T, a string) []byte { return request(t, a, "forbidden", ProtocolHybrid) }, Err{Code: CodeGeneral, HTTPStatus: 403}, ErrForbidden},
		{"not DER", func(*testing.T, string) []byte { return []byte("GET / HTTP/1.1\r\n") }, Err{Code: CodeGeneral, HTTPStatus: 400}, ErrBadRequest},
		{"wrong version", func(t *testing.T, a string) []byte {
			b, _ := (&PDU{Version: 3389, ProxyAuth: "good", X224: BuildConnectionRequest("", ProtocolHybrid)}).Marshal()
			return b
		}, Err{Code: CodeGeneral, HTTPStatus: 400}, ErrBadRequest},
		{"good token, smuggled bytes after X.224", func(t *testing.T, a string) []byte {
			b, _ := NewRequest(append(BuildConnectionRequest("", ProtocolHybrid), "extra"...), a, "good", "").Marshal()
			return b
		}, Err{Code: CodeGeneral, HTTPStatus: 400}, ErrBadRequest},
		{"good token, no X.224", func(t *testing.T, a string) []byte {
			b, _ := NewRequest(nil, a, "good", "").Marshal()
			return b
		}, Err{Code: CodeGeneral, HTTPStatus: 400}, ErrBadRequest},
		{"oversized message", func(t *testing.T, a string) []byte {
			return request(t, a, strings.Repeat("x", 20<<10), ProtocolHybrid)
		}, Err{Code: CodeGeneral, HTTPStatus: 413}, ErrBadRequest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ct := newCountingTarget(t)
			dials := 0
			dial := func(ctx context.Context, addr string) (net.Conn, error) {
				dials++
				return (&net.Dialer{}).DialContext(ctx, "tcp", addr)
			}
			// The PDU's destination also names the target, so neither field
			// may lead there for a refused request.
			resp, tc, err := Accept(t.Context(), tt.first(t, ct.addr), tokenAuth(ct.addr), dial)
			if tc != nil {
				t.Fatalf("got a connection")
			}
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			wantErrPDU(t, resp, tt.want)
			if dials != 0 {
				t.Fatalf("dial called %d times", dials)
			}
			if n := ct.connectionsBeforeSentinel(t); n != 0 {
				t.Fatalf("%d connections reached the target", n)
			}
		})
	}
}

// fakeHost answers every connection with serve; for misbehaving hosts
// that a real server cannot be made to imitate.
func fakeHost(t *testing.T, serve func(c net.Conn)) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() { l.Close(); wg.Wait() })
	wg.Go(func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			wg.Go(func() {
				defer c.Close()
				c.SetDeadline(time.Now().Add(20 * time.Second))
				if _, err := ReadTPKT(c, 1024); err != nil {
					return
				}
				serve(c)
			})
		}
	})
	return l.Addr().String()
}

func TestAcceptUpstreamFailures(t *testing.T) {
	closedPort := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	tests := []struct {
		name    string
		addr    func(t *testing.T) string
		dial    func(ctx context.Context, addr string) (net.Conn, error)
		opts    Options
		want    Err
		wantErr error
	}{
		{"closed port", func(*testing.T) string { return closedPort }, nil, Options{}, Err{Code: CodeGeneral, WSALastError: WSAConnRefused}, ErrUpstream},
		{"dial timeout", func(*testing.T) string { return "127.0.0.1:1" },
			func(ctx context.Context, _ string) (net.Conn, error) { <-ctx.Done(); return nil, ctx.Err() },
			Options{DialTimeout: 50 * time.Millisecond}, Err{Code: CodeGeneral, WSALastError: WSATimedOut}, ErrUpstream},
		{"host not found", func(*testing.T) string { return "nohost.invalid:3389" },
			func(context.Context, string) (net.Conn, error) {
				return nil, &net.OpError{Op: "dial", Err: &net.DNSError{Err: "no such host", Name: "nohost.invalid", IsNotFound: true}}
			}, Options{}, Err{Code: CodeGeneral, WSALastError: WSAHostNotFound}, ErrUpstream},
		{"server selects standard security", func(t *testing.T) string {
			return fakeHost(t, func(c net.Conn) { c.Write(BuildConnectionConfirm(true, ProtocolRDP)) })
		}, nil, Options{}, Err{Code: CodeGeneral, HTTPStatus: 502}, ErrStandardSecurity},
		{"legacy server without negotiation", func(t *testing.T) string {
			return fakeHost(t, func(c net.Conn) { c.Write(BuildConnectionConfirm(false, 0)) })
		}, nil, Options{}, Err{Code: CodeGeneral, HTTPStatus: 502}, ErrStandardSecurity},
		{"server silent", func(t *testing.T) string {
			return fakeHost(t, func(c net.Conn) { io.Copy(io.Discard, c) })
		}, nil, Options{X224Timeout: 100 * time.Millisecond}, Err{Code: CodeGeneral, WSALastError: WSATimedOut}, ErrUpstream},
		{"oversized confirm", func(t *testing.T) string {
			return fakeHost(t, func(c net.Conn) { c.Write([]byte{3, 0, 0x10, 0}) })
		}, nil, Options{}, Err{Code: CodeGeneral, HTTPStatus: 502}, ErrUpstream},
		{"garbage confirm", func(t *testing.T) string {
			return fakeHost(t, func(c net.Conn) { c.Write(BuildConnectionRequest("", ProtocolHybrid)) })
		}, nil, Options{}, Err{Code: CodeGeneral, HTTPStatus: 502}, ErrUpstream},
		{"server closes after request", func(t *testing.T) string {
			return fakeHost(t, func(net.Conn) {})
		}, nil, Options{}, Err{Code: CodeGeneral, WSALastError: WSAConnAborted}, ErrUpstream},
		{"tls alert from server", func(t *testing.T) string {
			return fakeHost(t, func(c net.Conn) {
				c.Write(BuildConnectionConfirm(true, ProtocolSSL))
				// Read the ClientHello record, then answer a fatal
				// handshake_failure (40) alert record.
				var hdr [5]byte
				if _, err := io.ReadFull(c, hdr[:]); err != nil {
					return
				}
				io.CopyN(io.Discard, c, int64(hdr[3])<<8|int64(hdr[4]))
				c.Write([]byte{0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 40})
			})
		}, nil, Options{}, Err{Code: CodeGeneral, TLSAlert: 40}, ErrUpstream},
		{"tls silent", func(t *testing.T) string {
			return fakeHost(t, func(c net.Conn) {
				c.Write(BuildConnectionConfirm(true, ProtocolSSL))
				io.Copy(io.Discard, c)
			})
		}, nil, Options{TLSTimeout: 100 * time.Millisecond}, Err{Code: CodeGeneral, WSALastError: WSATimedOut}, ErrUpstream},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			addr := tt.addr(t)
			resp, tc, err := tt.opts.Accept(t.Context(), request(t, addr, "good", ProtocolHybrid|ProtocolSSL), tokenAuth(addr), tt.dial)
			if tc != nil {
				tc.Close()
				t.Fatalf("got a connection")
			}
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			wantErrPDU(t, resp, tt.want)
			t.Logf("err: %v", err)
		})
	}
}

func TestAcceptWritesTargetPreconnectionBlob(t *testing.T) {
	got := make(chan []byte, 1)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		c, err := l.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(20 * time.Second))
		pcb := make([]byte, 3)
		io.ReadFull(c, pcb)
		req, _ := ReadTPKT(c, 1024)
		got <- append(pcb, req...)
		c.Write(BuildConnectionConfirm(true, ProtocolRDP))
	}()
	x224 := BuildConnectionRequest("", ProtocolHybrid)
	first, err := NewRequest(x224, "", "t", "browser-pcb").Marshal()
	if err != nil {
		t.Fatalf("marshal: %v", err)
	}
	auth := func(context.Context, string) (Target, error) {
		return Target{Addr: l.Addr().String(), PreconnectionBlob: []byte("PCB")}, nil
	}
	if _, _, err := Accept(t.Context(), first, auth, nil); !errors.Is(err, ErrStandardSecurity) {
		t.Fatalf("err = %v, want ErrStandardSecurity from the stand-in host", err)
	}
	select {
	case b := <-got:
		if want := append([]byte("PCB"), x224...); !bytes.Equal(b, want) {
			t.Fatalf("host received %q, want the target's blob then the X.224 request %q", b, want)
		}
	case <-time.After(20 * time.Second):
		t.Fatalf("host received nothing")
	}
}

func TestNetErrorPDU(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want Err
	}{
		{"dns not found", &net.DNSError{Err: "no such host", IsNotFound: true}, Err{Code: CodeGeneral, WSALastError: WSAHostNotFound}},
		{"dns timeout", &net.DNSError{Err: "timeout", IsTimeout: true}, Err{Code: CodeGeneral, WSALastError: WSATimedOut}},
		{"deadline", fmt.Errorf("x: %w", context.DeadlineExceeded), Err{Code: CodeGeneral, WSALastError: WSATimedOut}},
		{"eof", io.ErrUnexpectedEOF, Err{Code: CodeGeneral, WSALastError: WSAConnAborted}},
		{"other", errors.New("weird"), Err{Code: CodeGeneral, HTTPStatus: 502}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := netErrorPDU(tt.err).Error; *got != tt.want {
				t.Fatalf("netErrorPDU(%v) = %+v, want %+v", tt.err, got, tt.want)
			}
		})
	}
}
