package nla

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/x509"
	"encoding/asn1"
	"errors"
	"fmt"
	"io"
)

// CredSSP ([MS-CSSP]) as the client: NTLM tokens travel in TSRequest
// negoTokens, the host's TLS public key is bound to the NTLM session
// (pubKeyAuth), and only then are the password credentials sent sealed.

// credSSPVersion is the highest TSRequest version the gateway speaks:
// version 5 and later bind the public key with a hash and a client nonce.
const credSSPVersion = 6

// maxTSRequest caps a TSRequest read from the host.
const maxTSRequest = 64 << 10

// Errors of the CredSSP exchange.
var (
	// ErrRefused: the host rejected the credentials (a logon failure
	// error code, or it closed the connection after the authenticate
	// message).
	ErrRefused = errors.New("credssp: the host refused the credentials")
	// ErrProtocol is wrapped by errors about malformed or out-of-order
	// TSRequests, and a public key binding that does not verify.
	ErrProtocol = errors.New("credssp: protocol error")
)

// TSRequest is the CredSSP message ([MS-CSSP] 2.2.1).
type TSRequest struct {
	Version     int
	NegoTokens  [][]byte
	AuthInfo    []byte
	PubKeyAuth  []byte
	ErrorCode   uint32
	ClientNonce []byte
}

type negoToken struct {
	Token []byte `asn1:"explicit,tag:0"`
}

type tsRequestOut struct {
	Version     int         `asn1:"explicit,tag:0"`
	NegoTokens  []negoToken `asn1:"explicit,optional,omitempty,tag:1"`
	AuthInfo    []byte      `asn1:"explicit,optional,omitempty,tag:2"`
	PubKeyAuth  []byte      `asn1:"explicit,optional,omitempty,tag:3"`
	ClientNonce []byte      `asn1:"explicit,optional,omitempty,tag:5"`
}

type tsRequestIn struct {
	Version     int         `asn1:"explicit,tag:0"`
	NegoTokens  []negoToken `asn1:"explicit,optional,tag:1"`
	AuthInfo    []byte      `asn1:"explicit,optional,tag:2"`
	PubKeyAuth  []byte      `asn1:"explicit,optional,tag:3"`
	ErrorCode   int64       `asn1:"explicit,optional,tag:4"`
	ClientNonce []byte      `asn1:"explicit,optional,tag:5"`
}

// Marshal encodes the request in DER. ErrorCode is never sent by a client.
func (r TSRequest) Marshal() ([]byte, error) {
	out := tsRequestOut{Version: r.Version, AuthInfo: r.AuthInfo, PubKeyAuth: r.PubKeyAuth, ClientNonce: r.ClientNonce}
	for _, t := range r.NegoTokens {
		out.NegoTokens = append(out.NegoTokens, negoToken{t})
	}
	b, err := asn1.Marshal(out)
	if err != nil {
		return nil, fmt.Errorf("credssp: encode TSRequest: %w", err)
	}
	return b, nil
}

// ParseTSRequest decodes one DER TSRequest; trailing bytes are an error.
func ParseTSRequest(b []byte) (*TSRequest, error) {
	var in tsRequestIn
	rest, err := asn1.Unmarshal(b, &in)
	if err != nil {
		return nil, fmt.Errorf("%w: TSRequest: %w", ErrProtocol, err)
	}
	if len(rest) > 0 {
		return nil, fmt.Errorf("%w: %d bytes after the TSRequest", ErrProtocol, len(rest))
	}
	if in.Version < 1 {
		return nil, fmt.Errorf("%w: TSRequest version %d", ErrProtocol, in.Version)
	}
	r := &TSRequest{Version: in.Version, AuthInfo: in.AuthInfo, PubKeyAuth: in.PubKeyAuth, ErrorCode: uint32(in.ErrorCode), ClientNonce: in.ClientNonce}
	for _, t := range in.NegoTokens {
		r.NegoTokens = append(r.NegoTokens, t.Token)
	}
	return r, nil
}

type tsCredentials struct {
	CredType    int    `asn1:"explicit,tag:0"`
	Credentials []byte `asn1:"explicit,tag:1"`
}

type tsPasswordCreds struct {
	Domain   []byte `asn1:"explicit,tag:0"`
	User     []byte `asn1:"explicit,tag:1"`
	Password []byte `asn1:"explicit,tag:2"`
}

// PasswordCredentials encodes TSCredentials carrying TSPasswordCreds
// (credType 1), the names and password in UTF-16LE.
func PasswordCredentials(c Credentials) ([]byte, error) {
	inner, err := asn1.Marshal(tsPasswordCreds{Domain: utf16le(c.Domain), User: utf16le(c.User), Password: utf16le(c.Password)})
	if err != nil {
		return nil, fmt.Errorf("credssp: encode TSPasswordCreds: %w", err)
	}
	defer clear(inner)
	b, err := asn1.Marshal(tsCredentials{CredType: 1, Credentials: inner})
	if err != nil {
		return nil, fmt.Errorf("credssp: encode TSCredentials: %w", err)
	}
	return b, nil
}

// SubjectPublicKey is what CredSSP binds to: the subjectPublicKey BIT
// STRING's contents of the host certificate ([MS-CSSP] 3.1.5).
func SubjectPublicKey(cert *x509.Certificate) ([]byte, error) {
	var spki struct {
		Algorithm asn1.RawValue
		PublicKey asn1.BitString
	}
	if _, err := asn1.Unmarshal(cert.RawSubjectPublicKeyInfo, &spki); err != nil {
		return nil, fmt.Errorf("credssp: host certificate's public key: %w", err)
	}
	return spki.PublicKey.Bytes, nil
}

const (
	clientBindingMagic = "CredSSP Client-To-Server Binding Hash\x00"
	serverBindingMagic = "CredSSP Server-To-Client Binding Hash\x00"
)

// BindingHash is the public-key binding of TSRequest version 5 and later.
func BindingHash(magic string, nonce, publicKey []byte) []byte {
	h := sha256.New()
	h.Write([]byte(magic))
	h.Write(nonce)
	h.Write(publicKey)
	return h.Sum(nil)
}

// Logon failure NTSTATUS values a host may put in errorCode.
const (
	statusLogonFailure     = 0xC000006D
	statusAccountRestrict  = 0xC000006E
	statusWrongPassword    = 0xC000006A
	statusNoSuchUser       = 0xC0000064
	statusPasswordExpired  = 0xC0000071
	statusAccountDisabled  = 0xC0000072
	statusAccountLockedOut = 0xC0000234
)

func refusedCode(code uint32) bool {
	switch code {
	case statusLogonFailure, statusAccountRestrict, statusWrongPassword, statusNoSuchUser,
		statusPasswordExpired, statusAccountDisabled, statusAccountLockedOut:
		return true
	}
	return false
}

// Exchange runs CredSSP as the client over rw, the TLS connection to the
// host whose certificate gave publicKey (see SubjectPublicKey). It
// returns nil once the sealed credentials were sent. rand, when not nil,
// supplies nonces and keys (tests).
func Exchange(rw io.ReadWriter, creds Credentials, publicKey []byte, random func([]byte) error) error {
	if random == nil {
		random = func(b []byte) error { _, err := rand.Read(b); return err }
	}
	client := &Client{Creds: creds, Rand: random}
	defer client.Creds.Zero()

	if err := writeTS(rw, TSRequest{Version: credSSPVersion, NegoTokens: [][]byte{client.Negotiate()}}); err != nil {
		return err
	}
	resp, err := readTS(rw, false)
	if err != nil {
		return err
	}
	if len(resp.NegoTokens) != 1 {
		return fmt.Errorf("%w: %d negoTokens where the NTLM challenge was due", ErrProtocol, len(resp.NegoTokens))
	}
	version := min(resp.Version, credSSPVersion)
	auth, sess, err := client.Authenticate(resp.NegoTokens[0])
	if err != nil {
		return fmt.Errorf("%w: %w", ErrProtocol, err)
	}

	req := TSRequest{Version: version, NegoTokens: [][]byte{auth}}
	var expect []byte
	if version >= 5 {
		req.ClientNonce = make([]byte, 32)
		if err := random(req.ClientNonce); err != nil {
			return fmt.Errorf("credssp: client nonce: %w", err)
		}
		req.PubKeyAuth = sess.Seal(BindingHash(clientBindingMagic, req.ClientNonce, publicKey))
		expect = BindingHash(serverBindingMagic, req.ClientNonce, publicKey)
	} else {
		req.PubKeyAuth = sess.Seal(publicKey)
		expect = append([]byte(nil), publicKey...)
		if len(expect) > 0 {
			expect[0]++
		}
	}
	if err := writeTS(rw, req); err != nil {
		return err
	}
	resp, err = readTS(rw, true)
	if err != nil {
		return err
	}
	got, err := sess.Unseal(resp.PubKeyAuth)
	if err != nil {
		return fmt.Errorf("%w: pubKeyAuth: %w", ErrProtocol, err)
	}
	if subtle.ConstantTimeCompare(got, expect) != 1 {
		return fmt.Errorf("%w: the host's public key binding does not match its TLS certificate", ErrProtocol)
	}

	creds2, err := PasswordCredentials(creds)
	if err != nil {
		return err
	}
	sealed := sess.Seal(creds2)
	clear(creds2)
	return writeTS(rw, TSRequest{Version: version, AuthInfo: sealed})
}

func writeTS(w io.Writer, r TSRequest) error {
	b, err := r.Marshal()
	if err != nil {
		return err
	}
	if _, err := w.Write(b); err != nil {
		return fmt.Errorf("credssp: write TSRequest: %w", err)
	}
	return nil
}

// readTS reads one TSRequest. afterAuth says the authenticate message was
// sent, so a closed connection or a logon error code means the
// credentials were refused.
func readTS(r io.Reader, afterAuth bool) (*TSRequest, error) {
	b, err := ReadDER(r, maxTSRequest)
	if err != nil {
		if afterAuth && (errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF)) {
			return nil, fmt.Errorf("%w (the host closed the connection)", ErrRefused)
		}
		return nil, fmt.Errorf("credssp: read TSRequest: %w", err)
	}
	resp, err := ParseTSRequest(b)
	if err != nil {
		return nil, err
	}
	if resp.ErrorCode != 0 {
		if afterAuth && refusedCode(resp.ErrorCode) {
			return nil, fmt.Errorf("%w (status %#08x)", ErrRefused, resp.ErrorCode)
		}
		return nil, fmt.Errorf("%w: the host answered error %#08x", ErrProtocol, resp.ErrorCode)
	}
	return resp, nil
}

// ReadDER reads exactly one DER SEQUENCE from r, header included, refusing
// one longer than max before reading its body.
func ReadDER(r io.Reader, max int) ([]byte, error) {
	head := make([]byte, 2, 6)
	if _, err := io.ReadFull(r, head); err != nil {
		return nil, err
	}
	if head[0] != 0x30 {
		return nil, fmt.Errorf("%w: %#x where a DER SEQUENCE was due", ErrProtocol, head[0])
	}
	n := int(head[1])
	if head[1]&0x80 != 0 {
		w := int(head[1] & 0x7f)
		if w == 0 || w > 3 {
			return nil, fmt.Errorf("%w: DER length of %d bytes", ErrProtocol, w)
		}
		head = head[:2+w]
		if _, err := io.ReadFull(r, head[2:]); err != nil {
			return nil, err
		}
		n = 0
		for _, c := range head[2:] {
			n = n<<8 | int(c)
		}
	}
	if n > max {
		return nil, fmt.Errorf("%w: DER value of %d bytes (limit %d)", ErrProtocol, n, max)
	}
	out := make([]byte, len(head)+n)
	copy(out, head)
	if _, err := io.ReadFull(r, out[len(head):]); err != nil {
		return nil, err
	}
	return out, nil
}
