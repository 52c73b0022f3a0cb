package rdp

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"time"
	"unicode/utf16"

	"portico/service/relay/rdp/nla"
)

// Credential injection. With Target.SignIn set, the browser's web client
// starts without CredSSP (it asks for TLS only) and the gateway signs in
// to the host itself:
//
//  1. the X.224 request the host gets asks for TLS and NLA (HYBRID);
//  2. after the TLS handshake the host certificate is checked (pinned)
//     before any credential leaves;
//  3. if the host chose NLA, the gateway runs CredSSP with it (package
//     nla); the browser is answered as if the host had chosen TLS;
//  4. the filter then rewrites the client core data's
//     serverSelectedProtocol to what the host chose, the server core
//     data's clientRequestedProtocols to what the browser asked for, and
//     the Client Info PDU (user, domain, password, autologon; the
//     initial program of a RemoteApp resource).
//
// A TLS-only host (xrdp) gets the Client Info autologon alone. The
// credentials never travel towards the browser.

// SignIn is the account the gateway signs in to the host with, for one
// session. Accept zeroes it once it is no longer needed.
type SignIn struct {
	// Creds is the account; an empty password means the gateway has
	// none (a TLS-only host may still show its own login screen).
	Creds nla.Credentials
}

// Errors of a sign-in by the gateway, wrapped by Accept's err.
var (
	// ErrCredentialsRefused: the host refused the gateway's credentials.
	// The browser's error PDU carries HTTPStatusCredentialsRefused.
	ErrCredentialsRefused = errors.New("rdcleanpath: the host refused the credentials the gateway signed in with")
	// ErrNoCredentials: the host requires NLA and the gateway has no
	// password for it. The browser's PDU carries HTTPStatusNoCredentials.
	ErrNoCredentials = errors.New("rdcleanpath: the host requires Network Level Authentication and the gateway has no password for it")
	// ErrNLA: the CredSSP exchange with the host failed (malformed or
	// out-of-order messages, a public key binding that does not verify).
	ErrNLA = errors.New("rdcleanpath: NLA with the host failed")
)

// HTTP statuses in the error PDU that tell the page why a sign-in by the
// gateway failed (the web client only shows a number).
const (
	HTTPStatusCredentialsRefused = 511
	HTTPStatusNoCredentials      = 428
)

// Connection is what Options.Connect returns on success.
type Connection struct {
	// Resp is the RDCleanPath response (or error) PDU for the browser.
	Resp []byte
	// Host is the TLS connection to relay; nil on failure.
	Host *tls.Conn
	// Logon, when not nil, says what the filter must rewrite (set with
	// Target.SignIn); pass it in Policy.Logon.
	Logon *Logon
}

// Logon is what the filter writes into a session the gateway signed in to
// (or whose initial program it sets).
type Logon struct {
	// HostProtocol replaces serverSelectedProtocol in the client core
	// data (the host checks it against what it chose); 0 leaves it.
	HostProtocol uint32
	// ClientProtocols replaces clientRequestedProtocols in the server
	// core data, so the browser sees what it asked for; 0 leaves it.
	ClientProtocols uint32
	// Creds, when it has a user, goes into the Client Info PDU with the
	// autologon flag.
	Creds nla.Credentials
	// AlternateShell and WorkDir, when set, are the session's initial
	// program and its working directory (RD Session Hosts honour them).
	AlternateShell, WorkDir string
}

// zero drops the credentials.
func (l *Logon) zero() { l.Creds.Zero() }

// rewritesInfo reports whether the Client Info PDU must be rewritten.
func (l *Logon) rewritesInfo() bool {
	return l != nil && (l.Creds.User != "" || l.AlternateShell != "" || l.WorkDir != "")
}

// setRequestedProtocols returns a copy of the X.224 request x224 asking
// for protocols instead; the browser's cookie and correlation info stay.
func setRequestedProtocols(x224 []byte, protocols uint32) ([]byte, error) {
	v, err := x224Body(x224, codeCR)
	if err != nil {
		return nil, err
	}
	at := len(x224) - len(v)
	if bytes.HasPrefix(v, []byte("Cookie:")) {
		i := bytes.Index(v, []byte("\r\n"))
		if i < 0 {
			return nil, fmt.Errorf("%w: cookie without CRLF", errBadX224)
		}
		at += i + 2
	}
	if len(x224) < at+negLen || x224[at] != negTypeReq {
		return nil, fmt.Errorf("%w: no RDP_NEG_REQ to rewrite", errBadX224)
	}
	out := append([]byte(nil), x224...)
	binary.LittleEndian.PutUint32(out[at+4:], protocols)
	return out, nil
}

// setSelectedProtocol returns a copy of the X.224 confirm raw selecting
// protocol, its flags kept.
func setSelectedProtocol(raw []byte, protocol uint32) []byte {
	out := append([]byte(nil), raw...)
	binary.LittleEndian.PutUint32(out[len(out)-4:], protocol)
	return out
}

// signIn runs steps 1 to 3 for accept: req is the browser's parsed X.224
// request. It returns the confirm for the browser and the host connection.
func (o Options) signIn(ctx context.Context, conn net.Conn, target Target, x224 []byte, req Request) ([]byte, *tls.Conn, *Logon, error) {
	in := target.SignIn
	defer in.Creds.Zero()
	if !req.Negotiated || req.Protocols&ProtocolSSL == 0 {
		return nil, nil, nil, fail(NewHTTPError(400), fmt.Errorf("%w: the web client must offer TLS when the gateway signs in (requested %#x)", ErrBadRequest, req.Protocols))
	}
	toHost, err := setRequestedProtocols(x224, ProtocolSSL|ProtocolHybrid)
	if err != nil {
		return nil, nil, nil, fail(NewHTTPError(400), fmt.Errorf("%w: %w", ErrBadRequest, err))
	}
	raw, err := o.negotiate(ctx, conn, target, toHost)
	if err != nil {
		return nil, nil, nil, err
	}
	c, _ := ParseConnectionConfirm(raw)
	if c.Protocol != ProtocolSSL && c.Protocol != ProtocolHybrid {
		return nil, nil, nil, fail(NewHTTPError(502), fmt.Errorf("%w: %s selected protocol %#x, neither TLS nor NLA", ErrUpstream, target.Addr, c.Protocol))
	}
	if c.Protocol == ProtocolHybrid && in.Creds.Password == "" {
		return nil, nil, nil, fail(NewHTTPError(HTTPStatusNoCredentials), fmt.Errorf("%w (%s)", ErrNoCredentials, target.Addr))
	}
	tc, err := o.handshake(ctx, conn, target.Addr)
	if err != nil {
		return nil, nil, nil, err
	}
	leaf := tc.ConnectionState().PeerCertificates[0]
	// The pin is checked here, before CredSSP: a machine impersonating
	// the host must not receive the password.
	if target.CheckCert != nil {
		if err := target.CheckCert(leaf); err != nil {
			tc.Close()
			return nil, nil, nil, fail(NewTLSError(AlertBadCertificate), fmt.Errorf("%w: %s: %w", ErrCertificateRejected, target.Addr, err))
		}
	}
	if c.Protocol == ProtocolHybrid {
		if err := o.credSSP(ctx, tc, leaf, in.Creds, target.Addr); err != nil {
			tc.Close()
			return nil, nil, nil, err
		}
	}
	logon := &Logon{ClientProtocols: req.Protocols, Creds: in.Creds}
	if c.Protocol != ProtocolSSL {
		logon.HostProtocol = c.Protocol
	}
	return setSelectedProtocol(raw, ProtocolSSL), tc, logon, nil
}

func (o Options) credSSP(ctx context.Context, tc *tls.Conn, cert *x509.Certificate, creds nla.Credentials, addr string) error {
	stop := deadlineOnCancel(ctx, tc)
	defer stop()
	if err := tc.SetDeadline(time.Now().Add(o.TLSTimeout)); err != nil {
		return fail(NewHTTPError(500), fmt.Errorf("set CredSSP deadline: %w", err))
	}
	pub, err := nla.SubjectPublicKey(cert)
	if err != nil {
		return fail(NewHTTPError(502), fmt.Errorf("%w: %s: %w", ErrNLA, addr, err))
	}
	err = nla.Exchange(tc, creds, pub, nil)
	switch {
	case errors.Is(err, nla.ErrRefused):
		return fail(NewHTTPError(HTTPStatusCredentialsRefused), fmt.Errorf("%w (%s, user %q): %w", ErrCredentialsRefused, addr, creds.User, err))
	case err != nil:
		return fail(NewHTTPError(502), fmt.Errorf("%w: %s: %w", ErrNLA, addr, err))
	}
	if err := tc.SetDeadline(time.Time{}); err != nil {
		return fail(NewHTTPError(500), fmt.Errorf("clear deadline: %w", err))
	}
	return nil
}

// Client Info PDU ([MS-RDPBCGR] 2.2.1.11).
const (
	secInfoPkt       = 0x0040
	infoAutologon    = 0x00000008
	infoUnicode      = 0x00000010
	infoFixedLen     = 18 // CodePage, flags, five cb fields
	maxInfoPDU       = 8 << 10
	maxInfoFieldUTF  = 512 // bytes of each string field the PDU allows
	infoStringFields = 5
)

// rewriteClientInfo returns the TPKT record rec (a Send Data Request
// whose user data starts at sd.data) with the Client Info PDU changed as
// l says; ok is false when rec is not a Client Info PDU.
func rewriteClientInfo(rec []byte, sd sendData, l *Logon) (out []byte, ok bool, err error) {
	data := rec[sd.data:]
	if len(data) < 4 || binary.LittleEndian.Uint16(data)&secInfoPkt == 0 {
		return nil, false, nil
	}
	info := data[4:]
	if len(info) < infoFixedLen {
		return nil, false, fmt.Errorf("%w: Client Info PDU of %d bytes", ErrPolicy, len(info))
	}
	flags := binary.LittleEndian.Uint32(info[4:])
	if flags&infoUnicode == 0 {
		return nil, false, fmt.Errorf("%w: the client sent its Client Info PDU in ANSI, which the gateway does not rewrite", ErrPolicy)
	}
	var fields [infoStringFields][]byte // domain, user, password, shell, work dir
	p := info[infoFixedLen:]
	for i := range fields {
		n := int(binary.LittleEndian.Uint16(info[8+2*i:]))
		if n+2 > len(p) || n > maxInfoFieldUTF {
			return nil, false, fmt.Errorf("%w: Client Info field %d of %d bytes overruns the PDU", ErrPolicy, i, n)
		}
		fields[i], p = p[:n], p[n+2:]
	}
	extra := p
	if l.Creds.User != "" {
		fields[0], fields[1], fields[2] = utf16z(l.Creds.Domain), utf16z(l.Creds.User), utf16z(l.Creds.Password)
		flags |= infoAutologon
	}
	if l.AlternateShell != "" {
		fields[3] = utf16z(l.AlternateShell)
	}
	if l.WorkDir != "" {
		fields[4] = utf16z(l.WorkDir)
	}
	body := binary.LittleEndian.AppendUint16(nil, binary.LittleEndian.Uint16(data))
	body = append(body, data[2:4]...)
	body = append(body, info[:4]...)
	body = binary.LittleEndian.AppendUint32(body, flags)
	for _, f := range fields {
		if len(f) > maxInfoFieldUTF {
			return nil, false, fmt.Errorf("%w: a Client Info value is longer than the %d bytes RDP allows", ErrPolicy, maxInfoFieldUTF)
		}
		body = binary.LittleEndian.AppendUint16(body, uint16(len(f)))
	}
	for _, f := range fields {
		body = append(append(body, f...), 0, 0)
	}
	body = append(body, extra...)
	out = append([]byte(nil), rec[:sd.lenOff]...)
	out = appendPERLen(out, len(body), 2)
	out = append(out, body...)
	binary.BigEndian.PutUint16(out[2:], uint16(len(out)))
	clear(body)
	return out, true, nil
}

// utf16z is s in UTF-16LE without the terminator.
func utf16z(s string) []byte {
	u := utf16.Encode([]rune(s))
	b := make([]byte, 2*len(u))
	for i, r := range u {
		binary.LittleEndian.PutUint16(b[2*i:], r)
	}
	return b
}

// Offsets in the core data blocks (with their 4-byte headers).
const (
	serverSelectedProtocolAt  = 212 // TS_UD_CS_CORE
	clientRequestedProtocolAt = 8   // TS_UD_SC_CORE
	scCore                    = 0x0C01
)

// setServerSelectedProtocol writes protocol into the client core data;
// it reports whether it changed anything.
func (ci *connectInitial) setServerSelectedProtocol(protocol uint32) bool {
	i := ci.block(csCore)
	if i < 0 || len(ci.blocks[i]) < serverSelectedProtocolAt+4 {
		return false
	}
	b := ci.blocks[i][serverSelectedProtocolAt:]
	if binary.LittleEndian.Uint32(b) == protocol {
		return false
	}
	binary.LittleEndian.PutUint32(b, protocol)
	return true
}

// setClientRequestedProtocols writes protocols into the server core data.
func (cr *connectResponse) setClientRequestedProtocols(protocols uint32) bool {
	i := cr.block(scCore)
	if i < 0 || len(cr.blocks[i]) < clientRequestedProtocolAt+4 {
		return false
	}
	b := cr.blocks[i][clientRequestedProtocolAt:]
	if binary.LittleEndian.Uint32(b) == protocols {
		return false
	}
	binary.LittleEndian.PutUint32(b, protocols)
	return true
}

// infoPending reports whether the client's Client Info PDU is still to be
// rewritten.
func (f *Filter) infoPending() bool { return f.logon.rewritesInfo() && !f.infoDone.Load() }

// clientInfo rewrites the Client Info PDU, the first Send Data Request on
// the I/O channel that carries SEC_INFO_PKT; other records pass.
func (d *direction) clientInfo(rec []byte, sd sendData) ([]byte, bool, error) {
	f := d.f
	out, ok, err := rewriteClientInfo(rec, sd, f.logon)
	if err != nil || !ok {
		return nil, false, err
	}
	f.infoDone.Store(true)
	f.logon.zero()
	if !f.removed.Load() && !f.directional {
		d.phase = phasePass
	}
	f.log.Debug("rdp filter: Client Info PDU rewritten by the gateway")
	return out, true, nil
}

// connectResponseLogon is connectResponse for a session the gateway
// signed in to: the server core data is made to echo what the browser
// asked for, then the channel policy runs as usual.
func (d *direction) connectResponseLogon(rec []byte) ([]byte, bool, error) {
	repl, drop := []byte(nil), false
	if d.f.idle.Load() {
		d.phase = phasePass
	} else {
		var err error
		if repl, drop, err = d.connectResponse(rec); err != nil {
			return nil, false, err
		}
	}
	if drop {
		rec = repl
	}
	cr, err := parseConnectResponse(rec)
	if err != nil {
		return nil, false, fmt.Errorf("%w: %w", ErrPolicy, err)
	}
	if d.f.logon.ClientProtocols == 0 || !cr.setClientRequestedProtocols(d.f.logon.ClientProtocols) {
		return repl, drop, nil
	}
	return cr.marshal(), true, nil
}
