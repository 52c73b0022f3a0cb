package rdp

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"reflect"
	"syscall"
	"time"
)

// Target is where a launch ticket leads. It comes from the Authorizer, never
// from the browser's PDU.
type Target struct {
	// Addr is the RDP host as host:port.
	Addr string
	// PreconnectionBlob, when set, is written to the host before the X.224
	// request (Hyper-V VM routing). The browser's own blob is ignored because
	// it would let the browser pick a backend.
	PreconnectionBlob []byte
	// CheckCert, when set, vets the host's TLS leaf certificate after the
	// handshake (trust on first use, pinning). An error ends the attempt
	// with ErrCertificateRejected before any RDP byte is relayed.
	CheckCert func(leaf *x509.Certificate) error
	// SignIn, when set, makes the gateway sign in to the host itself
	// (see inject.go); the browser must then offer TLS.
	SignIn *SignIn
}

// Authorizer checks the token the browser put in proxy_auth and returns the
// target it grants. Errors wrapping ErrForbidden answer 403; any other error
// answers 401.
type Authorizer func(ctx context.Context, token string) (Target, error)

// Sentinel errors wrapped by Accept's err, for logs and audit.
var (
	// ErrUnauthorized: missing, unknown, expired or reused token (HTTP 401).
	ErrUnauthorized = errors.New("rdcleanpath: unauthorized")
	// ErrForbidden: a valid token that may not open this target (HTTP 403).
	ErrForbidden = errors.New("rdcleanpath: forbidden")
	// ErrBadRequest: the browser's PDU or X.224 request is malformed (HTTP 400).
	ErrBadRequest = errors.New("rdcleanpath: bad request")
	// ErrNegotiationFailed: the RDP server answered RDP_NEG_FAILURE.
	ErrNegotiationFailed = errors.New("rdcleanpath: RDP negotiation failed")
	// ErrStandardSecurity: the server selected standard RDP security (no
	// TLS), which RDCleanPath cannot carry and the gateway refuses.
	ErrStandardSecurity = errors.New("rdcleanpath: server selected standard RDP security (no TLS); enable TLS or NLA on the host")
	// ErrCertificateRejected: Target.CheckCert refused the host's
	// certificate, e.g. it differs from the pinned one. The browser sees a
	// TLS error with alert AlertBadCertificate.
	ErrCertificateRejected = errors.New("rdcleanpath: host certificate rejected")
	// ErrUpstream: the RDP server could not be reached or misbehaved.
	ErrUpstream = errors.New("rdcleanpath: RDP server error")
)

// Options tunes Accept. Zero fields take the defaults shown.
type Options struct {
	DialTimeout time.Duration // connecting to the host; default 10 s
	X224Timeout time.Duration // X.224 request/confirm exchange; default 5 s
	TLSTimeout  time.Duration // TLS handshake with the host; default 10 s
	// MaxConfirm caps the X.224 Connection Confirm size; default 1 KiB.
	MaxConfirm int
	// MaxRequest caps the browser's first message; default 16 KiB.
	MaxRequest int
	// TLSMinVersion is the oldest TLS version accepted from hosts; default
	// TLS 1.2. Old Windows hosts may need tls.VersionTLS10.
	TLSMinVersion uint16
}

func (o Options) withDefaults() Options {
	def := func(v *time.Duration, d time.Duration) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&o.DialTimeout, 10*time.Second)
	def(&o.X224Timeout, 5*time.Second)
	def(&o.TLSTimeout, 10*time.Second)
	if o.MaxConfirm <= 0 {
		o.MaxConfirm = 1024
	}
	if o.MaxRequest <= 0 {
		o.MaxRequest = 16 << 10
	}
	if o.TLSMinVersion == 0 {
		o.TLSMinVersion = tls.VersionTLS12
	}
	return o
}

// Accept runs the gateway side of RDCleanPath with default Options; see
// Options.Accept.
func Accept(ctx context.Context, first []byte, auth Authorizer, dial func(ctx context.Context, addr string) (net.Conn, error)) (resp []byte, server *tls.Conn, err error) {
	return Options{}.Accept(ctx, first, auth, dial)
}

// Accept handles the browser's first WebSocket message: it authorizes the
// token, connects to the granted target (dial defaults to TCP), forwards the
// X.224 request, checks the confirm and completes TLS with the host, whose
// certificate is deliberately not verified: the browser verifies it itself
// from the chain in the response (CredSSP binds to its public key).
//
// On success resp is the response PDU and server is the TLS connection to
// relay. On failure server is nil, resp is the error PDU to send back
// (nil only if even that could not be encoded) and err says why.
func (o Options) Accept(ctx context.Context, first []byte, auth Authorizer, dial func(ctx context.Context, addr string) (net.Conn, error)) (resp []byte, server *tls.Conn, err error) {
	c, err := o.Connect(ctx, first, auth, dial)
	return c.Resp, c.Host, err
}

// Connect is Accept that also says what the filter must rewrite when the
// gateway signed in to the host (Connection.Logon).
func (o Options) Connect(ctx context.Context, first []byte, auth Authorizer, dial func(ctx context.Context, addr string) (net.Conn, error)) (Connection, error) {
	o = o.withDefaults()
	if dial == nil {
		dial = func(ctx context.Context, addr string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "tcp", addr)
		}
	}
	pdu, tc, logon, err := o.accept(ctx, first, auth, dial)
	if err != nil {
		pdu = errorPDU(err)
	}
	resp, merr := pdu.Marshal()
	if merr != nil {
		if tc != nil {
			tc.Close()
		}
		return Connection{}, errors.Join(err, merr)
	}
	return Connection{Resp: resp, Host: tc, Logon: logon}, err
}

// failure carries the error PDU chosen where the failure happened, since
// only there is it known which field describes it best.
type failure struct {
	pdu *PDU
	err error
}

func (f *failure) Error() string { return f.err.Error() }
func (f *failure) Unwrap() error { return f.err }

func fail(pdu *PDU, err error) error { return &failure{pdu: pdu, err: err} }

func errorPDU(err error) *PDU {
	if f, ok := errors.AsType[*failure](err); ok {
		return f.pdu
	}
	return NewHTTPError(500)
}

func (o Options) accept(ctx context.Context, first []byte, auth Authorizer, dial func(context.Context, string) (net.Conn, error)) (*PDU, *tls.Conn, *Logon, error) {
	if len(first) > o.MaxRequest {
		return nil, nil, nil, fail(NewHTTPError(413), fmt.Errorf("%w: first message is %d bytes, limit %d", ErrBadRequest, len(first), o.MaxRequest))
	}
	req, err := ParsePDU(first)
	if err != nil {
		return nil, nil, nil, fail(NewHTTPError(400), fmt.Errorf("%w: %w", ErrBadRequest, err))
	}
	if req.Version != Version {
		return nil, nil, nil, fail(NewHTTPError(400), fmt.Errorf("%w: version %d, want %d", ErrBadRequest, req.Version, Version))
	}
	if req.ProxyAuth == "" {
		return nil, nil, nil, fail(NewHTTPError(401), fmt.Errorf("%w: no token in proxy_auth", ErrUnauthorized))
	}
	target, err := auth(ctx, req.ProxyAuth)
	if err != nil {
		if errors.Is(err, ErrForbidden) {
			return nil, nil, nil, fail(NewHTTPError(403), fmt.Errorf("%w: %w", ErrForbidden, err))
		}
		return nil, nil, nil, fail(NewHTTPError(401), fmt.Errorf("%w: %w", ErrUnauthorized, err))
	}
	// The request is checked only after the token so that an anonymous
	// caller learns nothing but 401.
	creq, err := ParseConnectionRequest(req.X224)
	if err != nil {
		return nil, nil, nil, fail(NewHTTPError(400), fmt.Errorf("%w: x224_connection_pdu: %w", ErrBadRequest, err))
	}

	conn, err := o.dial(ctx, dial, target.Addr)
	if err != nil {
		return nil, nil, nil, err
	}
	if target.SignIn != nil {
		confirm, tc, logon, err := o.signIn(ctx, conn, target, req.X224, creq)
		if err != nil {
			conn.Close()
			return nil, nil, nil, err
		}
		return NewResponse(conn.RemoteAddr().String(), confirm, certChain(tc)), tc, logon, nil
	}
	confirm, err := o.negotiate(ctx, conn, target, req.X224)
	if err != nil {
		conn.Close()
		return nil, nil, nil, err
	}
	tc, err := o.handshake(ctx, conn, target.Addr)
	if err != nil {
		conn.Close()
		return nil, nil, nil, err
	}
	peers := tc.ConnectionState().PeerCertificates
	if target.CheckCert != nil {
		if err := target.CheckCert(peers[0]); err != nil {
			tc.Close()
			return nil, nil, nil, fail(NewTLSError(AlertBadCertificate), fmt.Errorf("%w: %s: %w", ErrCertificateRejected, target.Addr, err))
		}
	}
	return NewResponse(conn.RemoteAddr().String(), confirm, certChain(tc)), tc, nil, nil
}

// certChain is the host's certificate chain as the browser receives it.
func certChain(tc *tls.Conn) [][]byte {
	var chain [][]byte
	for _, c := range tc.ConnectionState().PeerCertificates {
		chain = append(chain, c.Raw)
	}
	return chain
}

func (o Options) dial(ctx context.Context, dial func(context.Context, string) (net.Conn, error), addr string) (net.Conn, error) {
	dctx, cancel := context.WithTimeout(ctx, o.DialTimeout)
	defer cancel()
	conn, err := dial(dctx, addr)
	if err != nil {
		return nil, fail(netErrorPDU(err), fmt.Errorf("%w: dial %s: %w", ErrUpstream, addr, err))
	}
	return conn, nil
}

// negotiate sends the preconnection blob and X.224 request and returns the
// server's confirm once it selects a TLS-based protocol.
func (o Options) negotiate(ctx context.Context, conn net.Conn, target Target, x224 []byte) ([]byte, error) {
	stop := deadlineOnCancel(ctx, conn)
	defer stop()
	if err := conn.SetDeadline(time.Now().Add(o.X224Timeout)); err != nil {
		return nil, fail(NewHTTPError(500), fmt.Errorf("set X.224 deadline: %w", err))
	}
	if len(target.PreconnectionBlob) > 0 {
		if _, err := conn.Write(target.PreconnectionBlob); err != nil {
			return nil, fail(netErrorPDU(err), fmt.Errorf("%w: write preconnection blob to %s: %w", ErrUpstream, target.Addr, err))
		}
	}
	if _, err := conn.Write(x224); err != nil {
		return nil, fail(netErrorPDU(err), fmt.Errorf("%w: write X.224 request to %s: %w", ErrUpstream, target.Addr, err))
	}
	raw, err := ReadTPKT(conn, o.MaxConfirm)
	if err != nil {
		return nil, fail(netErrorPDU(err), fmt.Errorf("%w: read X.224 confirm from %s: %w", ErrUpstream, target.Addr, err))
	}
	c, err := ParseConnectionConfirm(raw)
	switch {
	case err != nil:
		return nil, fail(NewHTTPError(502), fmt.Errorf("%w: X.224 confirm from %s: %w", ErrUpstream, target.Addr, err))
	case c.Failed:
		return nil, fail(NewNegotiationError(raw), fmt.Errorf("%w: %s answered failure code %d", ErrNegotiationFailed, target.Addr, c.FailureCode))
	case !c.UsesTLS():
		return nil, fail(NewHTTPError(502), fmt.Errorf("%w (%s)", ErrStandardSecurity, target.Addr))
	}
	return raw, nil
}

func (o Options) handshake(ctx context.Context, conn net.Conn, addr string) (*tls.Conn, error) {
	cfg := &tls.Config{
		// The browser verifies the chain it receives; the gateway only
		// captures it. See Accept.
		InsecureSkipVerify: true,
		MinVersion:         o.TLSMinVersion,
	}
	if host, _, err := net.SplitHostPort(addr); err == nil && net.ParseIP(host) == nil {
		cfg.ServerName = host
	}
	hctx, cancel := context.WithTimeout(ctx, o.TLSTimeout)
	defer cancel()
	tc := tls.Client(conn, cfg)
	if err := tc.HandshakeContext(hctx); err != nil {
		pdu := netErrorPDU(err)
		if a, ok := remoteAlert(err); ok {
			pdu = NewTLSError(a)
		} else if hctx.Err() != nil {
			pdu = NewWSAError(WSATimedOut)
		}
		return nil, fail(pdu, fmt.Errorf("%w: TLS handshake with %s: %w", ErrUpstream, addr, err))
	}
	if err := conn.SetDeadline(time.Time{}); err != nil {
		return nil, fail(NewHTTPError(500), fmt.Errorf("clear deadline: %w", err))
	}
	if len(tc.ConnectionState().PeerCertificates) == 0 {
		return nil, fail(NewHTTPError(502), fmt.Errorf("%w: %s sent no certificate", ErrUpstream, addr))
	}
	return tc, nil
}

// deadlineOnCancel makes blocking I/O on conn return as soon as ctx ends.
func deadlineOnCancel(ctx context.Context, conn net.Conn) (stop func() bool) {
	return context.AfterFunc(ctx, func() { conn.SetDeadline(time.Unix(1, 0)) })
}

// remoteAlert extracts the alert number of a TLS alert received from the
// peer. crypto/tls reports it as a *net.OpError with Op "remote error"
// wrapping an unexported uint8 type, so reflection is the only way to read
// the number without matching message strings.
func remoteAlert(err error) (uint8, bool) {
	op, ok := errors.AsType[*net.OpError](err)
	if !ok || op.Op != "remote error" || op.Err == nil {
		return 0, false
	}
	if a, ok := op.Err.(tls.AlertError); ok {
		return uint8(a), true
	}
	if v := reflect.ValueOf(op.Err); v.Kind() == reflect.Uint8 {
		return uint8(v.Uint()), true
	}
	return 0, false
}

// netErrorPDU maps a network error to the WSA number the web client shows
// (it was written for Windows sockets); errors with no WSA analogue become
// HTTP 502.
func netErrorPDU(err error) *PDU {
	if dns, ok := errors.AsType[*net.DNSError](err); ok {
		if dns.IsTimeout {
			return NewWSAError(WSATimedOut)
		}
		return NewWSAError(WSAHostNotFound)
	}
	if ne, ok := errors.AsType[net.Error](err); ok && ne.Timeout() {
		return NewWSAError(WSATimedOut)
	}
	switch {
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, os.ErrDeadlineExceeded), errors.Is(err, syscall.ETIMEDOUT):
		return NewWSAError(WSATimedOut)
	case errors.Is(err, syscall.ECONNREFUSED):
		return NewWSAError(WSAConnRefused)
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE):
		return NewWSAError(WSAConnReset)
	case errors.Is(err, syscall.ECONNABORTED), errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return NewWSAError(WSAConnAborted)
	case errors.Is(err, syscall.ENETUNREACH):
		return NewWSAError(WSANetUnreach)
	case errors.Is(err, syscall.EHOSTUNREACH):
		return NewWSAError(WSAHostUnreach)
	}
	return NewHTTPError(502)
}
