package main

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"portico/service/relay/rdp"
)

const (
	// chunk is the write size of the source and of upload messages: what
	// a busy remote desktop produces per read.
	chunk = 64 << 10
	// ackEvery is how many bytes the sink reads before it answers one
	// byte, so an upload's end is seen through the relay under test.
	ackEvery = 8 << 20
)

// backends are the loopback TCP servers every setup relays to.
type backends struct {
	source, sink, echo string
	rdp                string // an RDP host stand-in: X.224, TLS, then 64 KiB blocks
	listeners          []net.Listener
}

func startBackends(certFile, keyFile string) (*backends, error) {
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("load certificate: %w", err)
	}
	serveRDP := func(c net.Conn) { serveRDPHost(c, &tls.Config{Certificates: []tls.Certificate{cert}}) }
	b := &backends{}
	for _, s := range []struct {
		addr  *string
		serve func(net.Conn)
	}{{&b.source, serveSource}, {&b.sink, serveSink}, {&b.echo, serveEcho}, {&b.rdp, serveRDP}} {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			b.close()
			return nil, fmt.Errorf("listen backend: %w", err)
		}
		b.listeners = append(b.listeners, l)
		*s.addr = l.Addr().String()
		go func() {
			for {
				c, err := l.Accept()
				if err != nil {
					return
				}
				go func() {
					defer c.Close()
					s.serve(c)
				}()
			}
		}()
	}
	return b, nil
}

func (b *backends) close() {
	for _, l := range b.listeners {
		l.Close()
	}
}

// serveSource writes 64 KiB blocks until the connection breaks.
func serveSource(c net.Conn) {
	buf := make([]byte, chunk)
	for {
		if _, err := c.Write(buf); err != nil {
			return
		}
	}
}

// serveRDPHost stands in for an RDP host streaming screen updates: it
// answers the X.224 connection request with TLS, does the TLS handshake
// the gateway starts, then writes 64 KiB blocks until the connection
// breaks.
func serveRDPHost(c net.Conn, cfg *tls.Config) {
	if _, err := rdp.ReadTPKT(c, 1024); err != nil {
		return
	}
	if _, err := c.Write(rdp.BuildConnectionConfirm(true, rdp.ProtocolSSL)); err != nil {
		return
	}
	tc := tls.Server(c, cfg)
	buf := make([]byte, chunk)
	for {
		if _, err := tc.Write(buf); err != nil {
			return
		}
	}
}

// serveSink discards what it reads and answers one byte per ackEvery.
func serveSink(c net.Conn) {
	buf := make([]byte, chunk)
	var total int64
	for {
		n, err := c.Read(buf)
		before := total / ackEvery
		total += int64(n)
		for range total/ackEvery - before {
			if _, werr := c.Write([]byte{'k'}); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// serveEcho writes back what it reads.
func serveEcho(c net.Conn) {
	buf := make([]byte, 4096)
	for {
		n, err := c.Read(buf)
		if n > 0 {
			if _, werr := c.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// writeCert writes a self-signed ECDSA certificate for 127.0.0.1 and its
// key as PEM files in dir.
func writeCert(dir string) (certFile, keyFile string, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return "", "", fmt.Errorf("generate key: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "127.0.0.1"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return "", "", fmt.Errorf("create certificate: %w", err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return "", "", fmt.Errorf("marshal key: %w", err)
	}
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		return "", "", fmt.Errorf("write certificate: %w", err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		return "", "", fmt.Errorf("write key: %w", err)
	}
	return certFile, keyFile, nil
}

// freePort returns a loopback port nobody listens on right now.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// waitListening waits until something accepts on addr.
func waitListening(ctx context.Context, addr string) error {
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("wait for %s: %w", addr, err)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// startWebsockify starts Debian's websockify, wss only, in front of
// target; it returns the process and its address.
func startWebsockify(ctx context.Context, certFile, keyFile, target string) (*exec.Cmd, string, error) {
	bin, err := exec.LookPath("websockify")
	if err != nil {
		return nil, "", fmt.Errorf("websockify not found (install the Debian package websockify): %w", err)
	}
	port, err := freePort()
	if err != nil {
		return nil, "", err
	}
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	cmd := exec.Command(bin, "--ssl-only", "--cert", certFile, "--key", keyFile, addr, target)
	cmd.Stdout, cmd.Stderr = nil, nil
	// SIGTERM makes websockify end its per-connection children too.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	if err := cmd.Start(); err != nil {
		return nil, "", fmt.Errorf("start websockify: %w", err)
	}
	wctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	if err := waitListening(wctx, addr); err != nil {
		stop(cmd)
		return nil, "", err
	}
	return cmd, addr, nil
}

// startRelay starts this program again as Portico's relay server and
// returns it with its address.
// With profile set, the relay writes a CPU profile there when it stops.
func startRelay(certFile, keyFile string, b *backends, profile string) (*exec.Cmd, string, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, "", fmt.Errorf("find own executable: %w", err)
	}
	args := []string{"-serve-relay"}
	if profile != "" {
		abs, err := filepath.Abs(profile)
		if err != nil {
			return nil, "", fmt.Errorf("profile path: %w", err)
		}
		args = append(args, "-pprof", abs)
	}
	cmd := exec.Command(self, append(args, certFile, keyFile, b.source, b.sink, b.echo, b.rdp)...)
	cmd.Stderr = os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, "", fmt.Errorf("relay stdout: %w", err)
	}
	if err := cmd.Start(); err != nil {
		return nil, "", fmt.Errorf("start relay: %w", err)
	}
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		stop(cmd)
		return nil, "", fmt.Errorf("read relay address: %w", err)
	}
	return cmd, strings.TrimSpace(line), nil
}

// CPUs the throughput measurements are split over, when the machine has
// two or more: the relay under test (websockify or Portico) runs on
// relayCPU, the harness — its clients and the TCP backends — on
// harnessCPU. Each relay thus gets one whole core, the same for both, and
// the measuring client cannot take the relay's core: on a 2-core machine
// the client otherwise limits the figures and both relays look alike. The
// raw TCP baseline runs in the harness, on its core.
//
// Round trips and idle sessions are measured unsplit: pinned apart, every
// hop wakes the other, idle virtual CPU, which measures the hypervisor
// (about 80µs more per round trip here), not the relay.
const (
	harnessCPU = "0"
	relayCPU   = "1"
)

// splitCPUs pins the harness to harnessCPU and the relays' processes (all
// their threads; websockify's per-connection children inherit it when they
// fork) to relayCPU, or with on false lets them all run anywhere again. It
// does nothing on a single CPU or without taskset.
func splitCPUs(on bool, relayPIDs ...int) error {
	if _, err := exec.LookPath("taskset"); err != nil || runtime.NumCPU() < 2 {
		return nil
	}
	all := fmt.Sprintf("0-%d", runtime.NumCPU()-1)
	set := func(pid int, cpus string) error {
		if !on {
			cpus = all
		}
		if out, err := exec.Command("taskset", "-a", "-p", "-c", cpus, strconv.Itoa(pid)).CombinedOutput(); err != nil {
			return fmt.Errorf("set the CPUs of process %d: %w: %s", pid, err, out)
		}
		return nil
	}
	if err := set(os.Getpid(), harnessCPU); err != nil {
		return err
	}
	for _, pid := range relayPIDs {
		if pid == 0 {
			continue
		}
		if err := set(pid, relayCPU); err != nil {
			return err
		}
	}
	return nil
}

// stop ends a process the harness started and reaps it.
func stop(cmd *exec.Cmd) {
	if cmd == nil || cmd.Process == nil {
		return
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	_ = cmd.Wait()
}
