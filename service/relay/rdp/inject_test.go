package rdp

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/binary"
	"errors"
	"math/big"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"portico/service/relay/rdp/nla"
)

func testCert(t *testing.T) tls.Certificate {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, err := x509.CreateCertificate(rand.Reader, &x509.Certificate{SerialNumber: big.NewInt(1), NotAfter: time.Now().Add(time.Hour)},
		&x509.Certificate{SerialNumber: big.NewInt(1)}, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// nlaHost is a fake host that selects NLA, completes TLS and then runs
// answer on the TLS connection; got counts the CredSSP bytes it received.
func nlaHost(t *testing.T, got *atomic.Int64, answer func(c *tls.Conn)) string {
	cert := testCert(t)
	return fakeHost(t, func(c net.Conn) {
		c.Write(BuildConnectionConfirm(true, ProtocolHybrid))
		tc := tls.Server(c, &tls.Config{Certificates: []tls.Certificate{cert}})
		if tc.Handshake() != nil {
			return
		}
		tc.SetReadDeadline(time.Now().Add(2 * time.Second))
		buf := make([]byte, 4096)
		n, _ := tc.Read(buf)
		got.Add(int64(n))
		if n > 0 && answer != nil {
			answer(tc)
		}
	})
}

func signInAuth(addr string, check func(*x509.Certificate) error) Authorizer {
	return func(context.Context, string) (Target, error) {
		return Target{Addr: addr, CheckCert: check, SignIn: &SignIn{Creds: nla.Credentials{User: "svc", Password: "secret"}}}, nil
	}
}

// A host that answers the NTLM negotiate out of order (with a negotiate
// of its own) or with a bad length ends the attempt with ErrNLA; the
// gateway only returns an error.
func TestSignInMisbehavingHostEndsTheSession(t *testing.T) {
	for name, answer := range map[string]func(c *tls.Conn){
		"out of order": func(c *tls.Conn) {
			b, _ := nla.TSRequest{Version: 6, NegoTokens: [][]byte{(&nla.Client{}).Negotiate()}}.Marshal()
			c.Write(b)
		},
		"bad length": func(c *tls.Conn) { c.Write([]byte{0x30, 0x84, 0xff, 0xff, 0xff, 0xff}) },
		"not DER":    func(c *tls.Conn) { c.Write([]byte("HTTP/1.1 400 Bad Request\r\n\r\n")) },
	} {
		var got atomic.Int64
		addr := nlaHost(t, &got, answer)
		c, err := Options{TLSTimeout: 5 * time.Second}.Connect(context.Background(), request(t, "x", "good", ProtocolSSL), signInAuth(addr, nil), nil)
		if c.Host != nil || !errors.Is(err, ErrNLA) {
			t.Errorf("%s: host %v, err %v; want ErrNLA", name, c.Host, err)
		}
	}
}

// The certificate pin is checked before any CredSSP byte leaves.
func TestSignInChecksThePinBeforeCredentialsLeave(t *testing.T) {
	var got atomic.Int64
	addr := nlaHost(t, &got, nil)
	c, err := connectSignIn(t, addr, func(*x509.Certificate) error { return errors.New("not the pinned certificate") })
	if c.Host != nil || !errors.Is(err, ErrCertificateRejected) {
		t.Fatalf("host %v, err %v", c.Host, err)
	}
	time.Sleep(100 * time.Millisecond)
	if got.Load() != 0 {
		t.Fatalf("the host received %d CredSSP bytes although its certificate was refused", got.Load())
	}
}

func connectSignIn(t *testing.T, addr string, check func(*x509.Certificate) error) (Connection, error) {
	t.Helper()
	return Options{}.Connect(context.Background(), request(t, "x", "good", ProtocolSSL), signInAuth(addr, check), nil)
}

// clientInfoRecord builds a Client Info PDU as the web client sends it.
func clientInfoRecord(user, pass string, flags uint32) []byte {
	info := binary.LittleEndian.AppendUint32(nil, 0)
	info = binary.LittleEndian.AppendUint32(info, flags)
	fields := [][]byte{utf16z(""), utf16z(user), utf16z(pass), utf16z(""), utf16z("")}
	for _, f := range fields {
		info = binary.LittleEndian.AppendUint16(info, uint16(len(f)))
	}
	for _, f := range fields {
		info = append(append(info, f...), 0, 0)
	}
	info = append(info, 2, 0, 0x0e, 0, 'x', 0, 0, 0) // start of the extended info, kept as is
	data := append([]byte{secInfoPkt, 0, 0, 0}, info...)
	rec := []byte{3, 0, 0, 0, 2, 0xF0, 0x80, mcsSendDataRequest << 2, 0, 6, 0x03, 0xEB, 0x70}
	rec = appendPERLen(rec, len(data), 2)
	rec = append(rec, data...)
	binary.BigEndian.PutUint16(rec[2:], uint16(len(rec)))
	return rec
}

func TestClientInfoRewriteSetsTheAccountAndProgram(t *testing.T) {
	rec := clientInfoRecord("portico", "", infoUnicode)
	sd, ok, err := parseSendData(rec, len(rec))
	if err != nil || !ok {
		t.Fatalf("test record: %v", err)
	}
	l := &Logon{Creds: nla.Credentials{User: "svc", Domain: "OFFICE", Password: "secret"}, AlternateShell: `C:\app.exe -x`, WorkDir: `C:\`}
	out, ok, err := rewriteClientInfo(rec, sd, l)
	if err != nil || !ok {
		t.Fatalf("rewrite: %v %v", ok, err)
	}
	sd2, ok, err := parseSendData(out, len(out))
	if err != nil || !ok {
		t.Fatalf("the rewritten record does not frame: %v", err)
	}
	info := out[sd2.data+4:]
	if binary.LittleEndian.Uint32(info[4:])&infoAutologon == 0 {
		t.Fatal("autologon flag not set")
	}
	for _, want := range [][]byte{utf16z("OFFICE"), utf16z("svc"), utf16z("secret"), utf16z(`C:\app.exe -x`), []byte{2, 0, 0x0e, 0, 'x'}} {
		if !bytes.Contains(info, want) {
			t.Errorf("rewritten Client Info lacks %q", want)
		}
	}
	// The web client's placeholder account is gone.
	if bytes.Contains(out, utf16z("portico")) {
		t.Error("the browser's user name survived the rewrite")
	}
	// ANSI and overrunning fields are refused, not guessed at.
	if _, _, err := rewriteClientInfo(clientInfoRecord("a", "b", 0), sd, l); err == nil {
		t.Error("an ANSI Client Info PDU was rewritten")
	}
	bad := append([]byte(nil), rec...)
	binary.LittleEndian.PutUint16(bad[sd.data+4+10:], 0xfff0)
	if _, _, err := rewriteClientInfo(bad, sd, l); err == nil {
		t.Error("a Client Info field overrunning the PDU was accepted")
	}
}

func FuzzRewriteClientInfo(f *testing.F) {
	f.Add(clientInfoRecord("portico", "", infoUnicode))
	f.Add(clientInfoRecord("a", "b", 0))
	f.Fuzz(func(t *testing.T, rec []byte) {
		sd, ok, err := parseSendData(rec, len(rec))
		if err != nil || !ok {
			return
		}
		out, ok, err := rewriteClientInfo(rec, sd, &Logon{Creds: nla.Credentials{User: "u", Password: "p"}, AlternateShell: "s"})
		if err != nil || !ok {
			return
		}
		if _, ok, err := parseSendData(out, len(out)); err != nil || !ok {
			t.Fatalf("a rewrite does not frame: %v", err)
		}
	})
}
