package tunnel

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"portico/service/native"
	"portico/service/relay"
	"portico/service/relay/rdp"
)

// recordingOpener admits the ticket "good" and connects it to host, an
// in-memory connection the test plays the host on.
type recordingOpener struct {
	mu   sync.Mutex
	reqs []Request
	host net.Conn
}

func (o *recordingOpener) OpenTunnel(ctx context.Context, r Request) (*Opened, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.reqs = append(o.reqs, r)
	if r.Ticket != "good" {
		return nil, errors.New("unknown or already used launch ticket: open the resource again")
	}
	gwSide, hostSide := net.Pipe()
	o.host = hostSide
	return &Opened{Protocol: "ssh", Abort: func() { gwSide.Close() }, Serve: func(ctx context.Context, c io.ReadWriteCloser) error {
		return relay.Pipe(ctx, c, gwSide, nil)
	}}, nil
}

func (o *recordingOpener) hostConn() net.Conn {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.host
}

func (o *recordingOpener) requests() []Request {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]Request(nil), o.reqs...)
}

// listen serves s on a loopback port and returns the address and the
// certificate fingerprint it presents.
func listen(t *testing.T, o Opener) (string, string) {
	t.Helper()
	certSrv := httptest.NewUnstartedServer(nil)
	certSrv.StartTLS()
	t.Cleanup(certSrv.Close)
	cfg := certSrv.TLS.Clone()
	cfg.NextProtos = []string{native.ALPN}
	s := &Server{Opener: o, TLSConfig: cfg}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go s.ServeConn(context.Background(), c)
		}
	}()
	return ln.Addr().String(), native.Fingerprint(certSrv.Certificate().Raw)
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return c
}

func TestTLSTunnel(t *testing.T) {
	o := &recordingOpener{}
	addr, fp := listen(t, o)

	c, proto, err := Dial(ctx(t), addr, fp, "good")
	if err != nil || proto != "ssh" {
		t.Fatalf("Dial: %q %v", proto, err)
	}
	defer c.Close()
	go c.Write([]byte("to-host"))
	buf := make([]byte, 7)
	if _, err := io.ReadFull(o.hostConn(), buf); err != nil || string(buf) != "to-host" {
		t.Fatalf("host got %q %v", buf, err)
	}
	go o.hostConn().Write([]byte("to-client"))
	buf = make([]byte, 9)
	if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "to-client" {
		t.Fatalf("client got %q %v", buf, err)
	}
	if r := o.requests(); len(r) != 1 || r[0].Via != ViaTunnel || r[0].ClientIP != "127.0.0.1" {
		t.Fatalf("opener saw %+v", r)
	}

	// A refusal reaches the client as the opener's message.
	_, _, err = Dial(ctx(t), addr, fp, "spent")
	var ref *native.RefusedError
	if !errors.As(err, &ref) || !strings.Contains(ref.Message, "unknown or already used launch ticket") {
		t.Fatalf("refused Dial: %v", err)
	}
	// The pin is checked before anything is sent.
	n := len(o.requests())
	if _, _, err := Dial(ctx(t), addr, strings.Repeat("00", 32), "good"); err == nil || !strings.Contains(err.Error(), "not the one the portal named") {
		t.Fatalf("wrong pin: %v", err)
	}
	if len(o.requests()) != n {
		t.Fatal("a client with a wrong pin still sent its ticket")
	}
}

func TestMalformedHelloIsAnswered(t *testing.T) {
	o := &recordingOpener{}
	addr, _ := listen(t, o)
	c, err := tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true, NextProtos: []string{native.ALPN}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.Write([]byte("GET / HTTP/1.1\r\n\r\n"))
	_, err = native.ReadAnswer(c)
	var ref *native.RefusedError
	if !errors.As(err, &ref) || !strings.Contains(ref.Message, "not a Portico tunnel hello") {
		t.Fatalf("answer to HTTP: %v", err)
	}
	if len(o.requests()) != 0 {
		t.Fatal("opener called for a malformed hello")
	}
}

// connectionRequest is what xfreerdp sends with /load-balance-info.
func connectionRequest(token string) []byte {
	neg := rdp.BuildConnectionRequest("", rdp.ProtocolSSL|rdp.ProtocolHybrid)[11:]
	v := append([]byte(token+"\r\n"), neg...)
	n := 11 + len(v)
	return append([]byte{3, 0, byte(n >> 8), byte(n), byte(n - 5), 0xE0, 0, 0, 0, 0, 0}, v...)
}

func TestRDPRoutingTokenPath(t *testing.T) {
	o := &recordingOpener{}
	addr, _ := listen(t, o)
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.Write(connectionRequest("good"))
	want := rdp.BuildConnectionRequest("", rdp.ProtocolSSL|rdp.ProtocolHybrid)
	for o.requests() == nil {
		time.Sleep(5 * time.Millisecond)
	}
	got := make([]byte, len(want))
	o.hostConn().SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.ReadFull(o.hostConn(), got); err != nil || !bytes.Equal(got, want) {
		t.Fatalf("host got %x %v, want the request without the token %x", got, err, want)
	}
	go o.hostConn().Write([]byte("confirm"))
	buf := make([]byte, 7)
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "confirm" {
		t.Fatalf("client got %q %v", buf, err)
	}
	if r := o.requests(); len(r) != 1 || r[0].Via != ViaRDPFile || r[0].Ticket != "good" {
		t.Fatalf("opener saw %+v", r)
	}
}

func TestRDPWithoutTokenAndJunkAreDropped(t *testing.T) {
	o := &recordingOpener{}
	addr, _ := listen(t, o)
	for name, first := range map[string][]byte{
		"rdp without token":   rdp.BuildConnectionRequest("alice", rdp.ProtocolSSL),
		"token not a ticket":  connectionRequest("a b"),
		"neither TLS nor RDP": []byte("SSH-2.0-OpenSSH\r\n"),
	} {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		c.Write(first)
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		if n, err := c.Read(make([]byte, 1)); err == nil || n != 0 {
			t.Errorf("%s: connection not closed (%d, %v)", name, n, err)
		}
		c.Close()
	}
	if r := o.requests(); len(r) != 0 {
		t.Fatalf("opener called for %+v", r)
	}
}
