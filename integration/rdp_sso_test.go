package integration

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"os"
	"testing"
	"time"

	"portico/service/relay/rdp"
	"portico/service/relay/rdp/nla"
)

// credSSPWith runs the gateway's CredSSP client against the host at port
// with creds and returns its error; on success it also checks that the
// host keeps the connection open for the MCS phase.
func credSSPWith(t *testing.T, port int, creds nla.Credentials) error {
	t.Helper()
	c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(60 * time.Second))
	if _, err := c.Write(rdp.BuildConnectionRequest("", rdp.ProtocolSSL|rdp.ProtocolHybrid)); err != nil {
		t.Fatal(err)
	}
	raw, err := rdp.ReadTPKT(c, 1024)
	if err != nil {
		t.Fatal(err)
	}
	cc, err := rdp.ParseConnectionConfirm(raw)
	if err != nil || cc.Protocol != rdp.ProtocolHybrid {
		t.Fatalf("confirm %+v, %v: the host did not choose NLA", cc, err)
	}
	tc := tls.Client(c, &tls.Config{InsecureSkipVerify: true})
	if err := tc.Handshake(); err != nil {
		t.Fatal(err)
	}
	pub, err := nla.SubjectPublicKey(tc.ConnectionState().PeerCertificates[0])
	if err != nil {
		t.Fatal(err)
	}
	if err := nla.Exchange(tc, creds, pub, nil); err != nil {
		return err
	}
	tc.SetReadDeadline(time.Now().Add(time.Second))
	var b [1]byte
	if _, err := tc.Read(b[:]); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("after CredSSP the host sent or closed (%v) instead of waiting for the MCS Connect Initial", err)
	}
	return nil
}

// TestCredSSPRoundTripWithFreeRDPShadow: MS-CSSP has no published
// vectors, so the exchange (TSRequest v6, nonce, binding hash, sealed
// TSPasswordCreds) is proven against FreeRDP's server: the right password
// passes, a wrong one is refused, both with and without a domain.
func TestCredSSPRoundTripWithFreeRDPShadow(t *testing.T) {
	srv := startRDPWith(t, "#00c000", "test:test", "alice:alice-password:OFFICE")
	if err := credSSPWith(t, srv.Port, nla.Credentials{User: "test", Password: "test"}); err != nil {
		t.Fatalf("right password: %v", err)
	}
	if err := credSSPWith(t, srv.Port, nla.Credentials{User: "alice", Domain: "OFFICE", Password: "alice-password"}); err != nil {
		t.Fatalf("right password with a domain: %v", err)
	}
	if err := credSSPWith(t, srv.Port, nla.Credentials{User: "test", Password: "wrong"}); !errors.Is(err, nla.ErrRefused) {
		t.Fatalf("wrong password: err = %v, want ErrRefused", err)
	}
}
