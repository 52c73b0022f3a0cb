package nla

import (
	"bytes"
	"crypto/hmac"
	"encoding/asn1"
	"errors"
	"io"
	"net"
	"testing"
)

// A TSRequest version 6 carrying one 40-byte NTLM negotiate token has the
// DER header every CredSSP client sends first.
func TestCredSSPTSRequestEncoding(t *testing.T) {
	tok := (&Client{}).Negotiate()
	b, err := TSRequest{Version: 6, NegoTokens: [][]byte{tok}}.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	head := []byte{0x30, 0x37, 0xa0, 0x03, 0x02, 0x01, 0x06, 0xa1, 0x30, 0x30, 0x2e, 0x30, 0x2c, 0xa0, 0x2a, 0x04, 0x28}
	if !bytes.HasPrefix(b, head) || !bytes.Equal(b[len(head):], tok) || len(tok) != 40 {
		t.Fatalf("TSRequest = %x", b)
	}
	r, err := ParseTSRequest(b)
	if err != nil || r.Version != 6 || len(r.NegoTokens) != 1 || !bytes.Equal(r.NegoTokens[0], tok) {
		t.Fatalf("round trip: %+v, %v", r, err)
	}
	// errorCode as Windows sends it: a negative INTEGER for 0xC000006D.
	withErr := append([]byte{0x30, 0x0d, 0xa0, 0x03, 0x02, 0x01, 0x06}, 0xa4, 0x06, 0x02, 0x04, 0xc0, 0x00, 0x00, 0x6d)
	if r, err := ParseTSRequest(withErr); err != nil || r.ErrorCode != 0xC000006D {
		t.Fatalf("errorCode: %+v, %v", r, err)
	}
}

func TestCredSSPPasswordCredentials(t *testing.T) {
	b, err := PasswordCredentials(Credentials{User: "u", Domain: "D", Password: "p"})
	if err != nil {
		t.Fatal(err)
	}
	var tc tsCredentials
	if _, err := asn1.Unmarshal(b, &tc); err != nil || tc.CredType != 1 {
		t.Fatalf("TSCredentials %+v: %v", tc, err)
	}
	var pc tsPasswordCreds
	if _, err := asn1.Unmarshal(tc.Credentials, &pc); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(pc.Domain, utf16le("D")) || !bytes.Equal(pc.User, utf16le("u")) || !bytes.Equal(pc.Password, utf16le("p")) {
		t.Fatalf("TSPasswordCreds %+v", pc)
	}
}

// testHost is the server side of CredSSP with NTLM, written from the
// specification independently of the client's code paths where it can
// be: it recomputes the proof from the password it knows.
type testHost struct {
	user, domain, password string
	version                int
	publicKey              []byte
	// misbehave: "order" answers the negotiate with a second request of
	// its own kind; "binding" signs a wrong public key.
	misbehave string
	got       Credentials
}

func (h *testHost) serve(c io.ReadWriter) error {
	b, err := ReadDER(c, maxTSRequest)
	if err != nil {
		return err
	}
	req, err := ParseTSRequest(b)
	if err != nil {
		return err
	}
	negotiate := req.NegoTokens[0]
	ch := withTimestamp(&testing.T{})
	if h.misbehave == "order" {
		ch = negotiate
	}
	writeTS(c, TSRequest{Version: h.version, NegoTokens: [][]byte{ch}})
	if b, err = ReadDER(c, maxTSRequest); err != nil {
		return err
	}
	if req, err = ParseTSRequest(b); err != nil {
		return err
	}
	auth := req.NegoTokens[0]
	nt, _ := field(auth, 20)
	key := NTOWFv2(h.password, h.user, h.domain)
	parsed, _ := ParseChallenge(ch)
	if !hmac.Equal(nt[:16], hmacMD5(key, parsed.ServerChallenge[:], nt[16:])) {
		c.Write([]byte{0x30, 0x0d, 0xa0, 0x03, 0x02, 0x01, 0x06, 0xa4, 0x06, 0x02, 0x04, 0xc0, 0x00, 0x00, 0x6d})
		return errors.New("wrong password")
	}
	enc, _ := field(auth, 52)
	exported := make([]byte, 16)
	rcEncrypt(hmacMD5(key, nt[:16]), exported, enc)
	zeroed := append([]byte(nil), auth...)
	clear(zeroed[72:88])
	if !hmac.Equal(auth[72:88], hmacMD5(exported, negotiate, ch, zeroed)) {
		return errors.New("bad MIC")
	}
	// The host's side: its outbound keys are the client's inbound ones.
	s := newSession(exported)
	s.signOut, s.signIn = s.signIn, s.signOut
	s.sealOut, s.sealIn = s.sealIn, s.sealOut
	hash, err := s.Unseal(req.PubKeyAuth)
	if err != nil {
		return err
	}
	if !bytes.Equal(hash, BindingHash(clientBindingMagic, req.ClientNonce, h.publicKey)) {
		return errors.New("client binding hash mismatch")
	}
	pk := h.publicKey
	if h.misbehave == "binding" {
		pk = []byte("another key")
	}
	writeTS(c, TSRequest{Version: h.version, PubKeyAuth: s.Seal(BindingHash(serverBindingMagic, req.ClientNonce, pk))})
	if b, err = ReadDER(c, maxTSRequest); err != nil {
		return err
	}
	if req, err = ParseTSRequest(b); err != nil {
		return err
	}
	plain, err := s.Unseal(req.AuthInfo)
	if err != nil {
		return err
	}
	var tc tsCredentials
	var pc tsPasswordCreds
	asn1.Unmarshal(plain, &tc)
	asn1.Unmarshal(tc.Credentials, &pc)
	h.got = Credentials{User: string(pc.User), Domain: string(pc.Domain), Password: string(pc.Password)}
	return nil
}

func runExchange(t *testing.T, h *testHost, creds Credentials) (error, error) {
	t.Helper()
	a, b := net.Pipe()
	done := make(chan error, 1)
	go func() { done <- h.serve(b); b.Close() }()
	err := Exchange(a, creds, h.publicKey, nil)
	a.Close()
	return err, <-done
}

func TestCredSSPExchangeSendsSealedCredentials(t *testing.T) {
	h := &testHost{user: "User", domain: "Domain", password: "Password", version: 6, publicKey: []byte("the host's RSA public key")}
	err, herr := runExchange(t, h, Credentials{User: "User", Domain: "Domain", Password: "Password"})
	if err != nil || herr != nil {
		t.Fatalf("client: %v; host: %v", err, herr)
	}
	if h.got.Password != string(utf16le("Password")) || h.got.User != string(utf16le("User")) {
		t.Fatalf("the host received %q", h.got)
	}
}

func TestCredSSPWrongPasswordIsRefused(t *testing.T) {
	h := &testHost{user: "User", domain: "Domain", password: "Password", version: 6, publicKey: []byte("k")}
	err, _ := runExchange(t, h, Credentials{User: "User", Domain: "Domain", Password: "wrong"})
	if !errors.Is(err, ErrRefused) {
		t.Fatalf("err = %v, want ErrRefused", err)
	}
}

func TestCredSSPMisbehavingHostEndsTheExchange(t *testing.T) {
	for _, m := range []string{"order", "binding"} {
		h := &testHost{user: "User", domain: "Domain", password: "Password", version: 6, publicKey: []byte("k"), misbehave: m}
		err, _ := runExchange(t, h, Credentials{User: "User", Domain: "Domain", Password: "Password"})
		if !errors.Is(err, ErrProtocol) {
			t.Errorf("%s: err = %v, want ErrProtocol", m, err)
		}
		if h.got != (Credentials{}) {
			t.Errorf("%s: credentials reached a host that failed the binding", m)
		}
	}
}

func TestCredSSPReadDERRefusesBadLengths(t *testing.T) {
	for _, b := range [][]byte{{0x31, 0}, {0x30, 0x84, 1, 2, 3, 4}, {0x30, 0x83, 0xff, 0xff, 0xff}} {
		if _, err := ReadDER(bytes.NewReader(b), maxTSRequest); err == nil {
			t.Errorf("%x accepted", b)
		}
	}
	if _, err := ReadDER(bytes.NewReader([]byte{0x30, 5, 1}), maxTSRequest); err == nil {
		t.Error("a truncated value was accepted")
	}
}
