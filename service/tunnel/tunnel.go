// Package tunnel is the gateway's entry for native clients. It owns the
// connection-level protocol on the alternate port (and on the main HTTPS
// port for clients that offer the native.ALPN protocol): a first byte of
// 0x16 starts a TLS tunnel (hello with the launch ticket, one answer line,
// then raw bytes), a first byte of 0x03 is a stock RDP client opened from
// an .rdp file, whose routing token (loadbalanceinfo) is the ticket.
//
// It decides nothing about tickets, users or hosts: an Opener (the portal)
// redeems the ticket, applies every check the browser relays apply,
// connects to the host and relays. It must not read settings or the store.
package tunnel

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"time"

	"portico/service/native"
	"portico/service/relay"
	"portico/service/relay/rdp"
)

// Via says how a native client reached the gateway.
type Via string

// The two ways in.
const (
	// ViaTunnel is portico-client's TLS tunnel (any protocol).
	ViaTunnel Via = "tunnel"
	// ViaRDPFile is a stock RDP client using a downloaded .rdp file (RDP only).
	ViaRDPFile Via = "rdp-file"
)

// Request is one native launch to admit.
type Request struct {
	// Ticket is the launch ticket the client presented.
	Ticket string
	// ClientIP is the connection's remote address.
	ClientIP string
	// Via is how the client came in.
	Via Via
}

// Opened is an admitted launch, connected to its host.
type Opened struct {
	// Protocol is rdp, vnc or ssh.
	Protocol string
	// Serve relays between the client and the host until either ends or
	// ctx is done, and closes both. It registers, counts and audits the
	// session.
	Serve func(ctx context.Context, client io.ReadWriteCloser) error
	// Abort releases the host connection when the client is gone before
	// Serve could start.
	Abort func()
}

// Opener admits native launches; the portal implements it. Its errors are
// shown to the user, so they say what to do.
type Opener interface {
	OpenTunnel(ctx context.Context, r Request) (*Opened, error)
}

// Limits on what a client may send before it is admitted.
const (
	// HandshakeTimeout bounds the TLS handshake plus hello, or the RDP
	// Connection Request: a silent client is dropped.
	HandshakeTimeout = 15 * time.Second
	// maxConnectionRequest caps the X.224 Connection Request (X.224 allows
	// at most 259 bytes).
	maxConnectionRequest = 512
)

// Server serves native-client connections.
type Server struct {
	// Opener admits launches; nil refuses every launch.
	Opener Opener
	// TLSConfig is the gateway's server configuration for connections that
	// start TLS here (the alternate port).
	TLSConfig *tls.Config
	// Logger receives structured logs.
	Logger *slog.Logger
}

// ServeConn serves one connection accepted on the alternate port and
// closes it.
func (s *Server) ServeConn(ctx context.Context, c net.Conn) {
	c.SetDeadline(time.Now().Add(HandshakeTimeout))
	br := bufio.NewReaderSize(c, maxConnectionRequest)
	first, err := br.Peek(1)
	if err != nil {
		c.Close()
		return
	}
	conn := &bufferedConn{Conn: c, r: br}
	switch first[0] {
	case 0x16: // TLS handshake record
		// Over a BatchConn, Pipe sends each relayed read's TLS
		// records in one system call.
		tc := tls.Server(relay.NewBatchConn(conn), s.TLSConfig)
		if err := tc.HandshakeContext(ctx); err != nil {
			s.log().Debug("native tunnel: TLS handshake failed", "client", c.RemoteAddr().String(), "err", err)
			c.Close()
			return
		}
		s.ServeTLS(ctx, tc)
	case 0x03: // TPKT: an RDP client with an .rdp file
		s.serveRDPFile(ctx, conn)
	default:
		s.log().Debug("native tunnel: not TLS and not RDP", "client", c.RemoteAddr().String(), "first", first[0])
		c.Close()
	}
}

// ServeTLS serves a tunnel on an established TLS connection (the main
// port hands over connections that negotiated native.ALPN) and closes it.
func (s *Server) ServeTLS(ctx context.Context, tc *tls.Conn) {
	tc.SetDeadline(time.Now().Add(HandshakeTimeout))
	ticket, err := native.ReadHello(tc)
	if err != nil {
		tc.Write(native.ErrAnswer(err.Error()))
		tc.Close()
		return
	}
	o, err := s.open(ctx, Request{Ticket: ticket, ClientIP: remoteIP(tc), Via: ViaTunnel})
	if err != nil {
		tc.Write(native.ErrAnswer(err.Error()))
		tc.Close()
		return
	}
	if _, err := tc.Write(native.OKAnswer(o.Protocol)); err != nil {
		o.Abort()
		tc.Close()
		return
	}
	tc.SetDeadline(time.Time{})
	s.serve(ctx, o, tc)
}

// serveRDPFile reads the client's Connection Request, redeems its routing
// token, and forwards the request without the token to the host. RDP gives
// no way to show a message at this point: a refused client is disconnected
// and the reason is in the audit log.
func (s *Server) serveRDPFile(ctx context.Context, c *bufferedConn) {
	cr, err := rdp.ReadTPKT(c, maxConnectionRequest)
	if err != nil {
		s.log().Debug("native RDP: bad connection request", "client", c.RemoteAddr().String(), "err", err)
		c.Close()
		return
	}
	token, stripped, err := rdp.SplitRoutingToken(cr)
	if err == nil {
		err = native.CheckTicket(token)
	}
	if err != nil {
		s.log().Info("native RDP: no usable routing token", "client", c.RemoteAddr().String(), "err", err)
		c.Close()
		return
	}
	o, err := s.open(ctx, Request{Ticket: token, ClientIP: remoteIP(c), Via: ViaRDPFile})
	if err != nil {
		c.Close()
		return
	}
	c.SetDeadline(time.Time{})
	// The host sees the request first, as if the client had sent it.
	c.r = io.MultiReader(&onceReader{b: stripped}, c.r)
	s.serve(ctx, o, c)
}

func (s *Server) open(ctx context.Context, r Request) (*Opened, error) {
	if s.Opener == nil {
		return nil, errors.New("the User Portal is not running on this gateway")
	}
	return s.Opener.OpenTunnel(ctx, r)
}

func (s *Server) serve(ctx context.Context, o *Opened, client io.ReadWriteCloser) {
	if err := o.Serve(ctx, client); err != nil && !errors.Is(err, context.Canceled) {
		s.log().Debug("native session ended", "protocol", o.Protocol, "err", err)
	}
}

func (s *Server) log() *slog.Logger {
	if s.Logger == nil {
		return slog.Default()
	}
	return s.Logger
}

func remoteIP(c net.Conn) string {
	if a, ok := c.RemoteAddr().(*net.TCPAddr); ok {
		return a.IP.String()
	}
	return ""
}

// bufferedConn reads through r (which holds bytes already peeked from
// Conn) and writes straight to Conn.
type bufferedConn struct {
	net.Conn
	r io.Reader
}

func (c *bufferedConn) Read(p []byte) (int, error) { return c.r.Read(p) }

// onceReader yields b, then EOF (so io.MultiReader moves on).
type onceReader struct{ b []byte }

func (o *onceReader) Read(p []byte) (int, error) {
	if len(o.b) == 0 {
		return 0, io.EOF
	}
	n := copy(p, o.b)
	o.b = o.b[n:]
	return n, nil
}

// Dial opens a client tunnel: TLS to addr with the certificate pinned by
// its SHA-256 fingerprint (not the system roots), native.ALPN offered, the
// hello sent and the answer read. It returns the connection, ready for
// raw bytes, and the protocol the gateway opened.
func Dial(ctx context.Context, addr, fingerprint, ticket string) (*tls.Conn, string, error) {
	want, err := native.NormalizeFingerprint(fingerprint)
	if err != nil {
		return nil, "", err
	}
	hello, err := native.AppendHello(nil, ticket)
	if err != nil {
		return nil, "", err
	}
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, "", fmt.Errorf("gateway address %q: %w", addr, err)
	}
	cfg := &tls.Config{
		ServerName: host,
		NextProtos: []string{native.ALPN},
		MinVersion: tls.VersionTLS12,
		// The chain is not checked against roots: the pin below is stronger
		// (it names the one certificate the portal saw).
		InsecureSkipVerify: true,
		VerifyConnection: func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 {
				return errors.New("the gateway sent no certificate")
			}
			if got := native.Fingerprint(cs.PeerCertificates[0].Raw); got != want {
				return fmt.Errorf("the gateway's certificate (SHA-256 %s) is not the one the portal named (%s): not connecting", got, want)
			}
			return nil
		},
	}
	d := &tls.Dialer{NetDialer: &net.Dialer{Timeout: HandshakeTimeout, KeepAlive: 30 * time.Second}, Config: cfg}
	nc, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, "", fmt.Errorf("connect to the gateway at %s: %w", addr, err)
	}
	tc := nc.(*tls.Conn)
	tc.SetDeadline(time.Now().Add(HandshakeTimeout))
	if _, err := tc.Write(hello); err != nil {
		tc.Close()
		return nil, "", fmt.Errorf("send the launch ticket to %s: %w", addr, err)
	}
	proto, err := native.ReadAnswer(tc)
	if err != nil {
		tc.Close()
		return nil, "", err
	}
	tc.SetDeadline(time.Time{})
	return tc, proto, nil
}
