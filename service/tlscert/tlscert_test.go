package tlscert

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"strings"
	"testing"
	"time"
)

// memStorage is a Storage in memory, counting saves.
type memStorage struct {
	cert, key []byte
	saves     int
}

func (m *memStorage) Load() ([]byte, []byte, error) {
	if m.cert == nil {
		return nil, nil, ErrNotStored
	}
	return m.cert, m.key, nil
}

func (m *memStorage) Save(c, k []byte) error { m.cert, m.key = c, k; m.saves++; return nil }

type issued struct {
	cert *x509.Certificate
	key  crypto.Signer
	pem  []byte
}

var serial int64

func issue(t *testing.T, cn string, parent *issued, isCA bool, key crypto.Signer, mod func(*x509.Certificate)) *issued {
	t.Helper()
	if key == nil {
		k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		key = k
	}
	serial++
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: cn}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		BasicConstraintsValid: true, IsCA: isCA, DNSNames: []string{cn}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	if isCA {
		tmpl.KeyUsage = x509.KeyUsageCertSign
		tmpl.DNSNames, tmpl.ExtKeyUsage = nil, nil
	}
	if mod != nil {
		mod(tmpl)
	}
	signer, parentCert := key, tmpl
	if parent != nil {
		signer, parentCert = parent.key, parent.cert
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parentCert, key.Public(), signer)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := x509.ParseCertificate(der)
	return &issued{cert: c, key: key, pem: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}
}

func keyPEM(t *testing.T, k crypto.Signer) []byte {
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
}

func served(t *testing.T, m *Manager) *x509.Certificate {
	t.Helper()
	ln, err := tls.Listen("tcp", "127.0.0.1:0", m.TLSConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err == nil {
			c.(*tls.Conn).Handshake()
			c.Close()
		}
	}()
	c, err := tls.Dial("tcp", ln.Addr().String(), &tls.Config{InsecureSkipVerify: true})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return c.ConnectionState().PeerCertificates[0]
}

func TestGenerateAndReopen(t *testing.T) {
	st := &memStorage{}
	m, err := Open(st, []string{"gw.example.com", "10.0.0.7"})
	if err != nil {
		t.Fatal(err)
	}
	info := m.Info()
	if !info.SelfSigned || info.DNSNames[0] != "gw.example.com" || info.IPAddresses[0] != "10.0.0.7" || st.saves != 1 {
		t.Fatalf("info %+v saves %d", info, st.saves)
	}
	if _, ok := served(t, m).PublicKey.(*ecdsa.PublicKey); !ok {
		t.Fatal("not ECDSA")
	}
	m2, err := Open(st, nil)
	if err != nil {
		t.Fatal(err)
	}
	if m2.Info().SHA256 != info.SHA256 || st.saves != 1 {
		t.Fatal("reopen generated a new certificate")
	}
	if len(strings.Split(info.SHA256, ":")) != 32 {
		t.Fatalf("fingerprint format %q", info.SHA256)
	}
}

func TestImportGoodChainLive(t *testing.T) {
	for _, name := range []string{"ecdsa", "rsa"} {
		t.Run(name, func(t *testing.T) {
			var leafKey crypto.Signer
			if name == "rsa" {
				leafKey, _ = rsa.GenerateKey(rand.Reader, 2048)
			}
			root := issue(t, "Root CA", nil, true, nil, nil)
			inter := issue(t, "Intermediate", root, true, nil, nil)
			leaf := issue(t, "portal.example.com", inter, false, leafKey, nil)
			st := &memStorage{}
			m, _ := Open(st, []string{"localhost"})
			before := served(t, m)
			chain := append(append([]byte{}, leaf.pem...), inter.pem...)
			if err := m.Import(chain, keyPEM(t, leaf.key)); err != nil {
				t.Fatal(err)
			}
			after := served(t, m)
			if before.Equal(after) || !after.Equal(leaf.cert) {
				t.Fatal("new connections do not get the imported certificate")
			}
			if m.Info().ChainLength != 2 || m.Info().SelfSigned {
				t.Fatalf("info %+v", m.Info())
			}
			m2, err := Open(st, nil)
			if err != nil || !served(t, m2).Equal(leaf.cert) {
				t.Fatalf("imported certificate not persisted: %v", err)
			}
		})
	}
}

func TestImportBadLeavesEverythingUnchanged(t *testing.T) {
	root := issue(t, "Root CA", nil, true, nil, nil)
	inter := issue(t, "Intermediate", root, true, nil, nil)
	leaf := issue(t, "portal.example.com", inter, false, nil, nil)
	other := issue(t, "other", inter, false, nil, nil)
	expired := issue(t, "old", inter, false, nil, func(c *x509.Certificate) {
		c.NotBefore, c.NotAfter = time.Now().Add(-48*time.Hour), time.Now().Add(-24*time.Hour)
	})
	future := issue(t, "future", inter, false, nil, func(c *x509.Certificate) { c.NotBefore = time.Now().Add(24 * time.Hour) })
	clientOnly := issue(t, "client", inter, false, nil, func(c *x509.Certificate) { c.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth} })
	weak, _ := rsa.GenerateKey(rand.Reader, 1024)
	weakLeaf := issue(t, "weak", inter, false, weak, nil)
	cases := []struct {
		name      string
		cert, key []byte
		want      string
	}{
		{"garbage", []byte("hello"), []byte("world"), "no certificate found"},
		{"no key", leaf.pem, nil, "no private key found"},
		{"mismatched key", leaf.pem, keyPEM(t, other.key), "do not match"},
		{"expired", expired.pem, keyPEM(t, expired.key), "expired on"},
		{"not yet valid", future.pem, keyPEM(t, future.key), "not valid before"},
		{"out of order", append(append([]byte{}, leaf.pem...), root.pem...), keyPEM(t, leaf.key), "chain out of order"},
		{"client auth only", clientOnly.pem, keyPEM(t, clientOnly.key), "not for servers"},
		{"weak rsa", weakLeaf.pem, keyPEM(t, weak), "at least 2048"},
		{"encrypted key", leaf.pem, []byte("-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----\n"), "encrypted"},
	}
	st := &memStorage{}
	m, _ := Open(st, []string{"localhost"})
	fp := m.Info().SHA256
	stored := append([]byte{}, st.cert...)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := m.Import(tc.cert, tc.key)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want %q", err, tc.want)
			}
			if m.Info().SHA256 != fp || !bytes.Equal(st.cert, stored) || st.saves != 1 {
				t.Fatal("a refused import changed the certificate")
			}
		})
	}
}

func TestTLSConfigRefusesOldAndCBC(t *testing.T) {
	m, _ := Open(&memStorage{}, []string{"localhost"})
	ln, err := tls.Listen("tcp", "127.0.0.1:0", m.TLSConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func(c net.Conn) { c.(*tls.Conn).Handshake(); c.Close() }(c)
		}
	}()
	dial := func(cfg *tls.Config) error {
		cfg.InsecureSkipVerify = true
		c, err := tls.Dial("tcp", ln.Addr().String(), cfg)
		if err == nil {
			c.Close()
		}
		return err
	}
	if err := dial(&tls.Config{MaxVersion: tls.VersionTLS11}); err == nil {
		t.Fatal("TLS 1.1 accepted")
	}
	if err := dial(&tls.Config{MaxVersion: tls.VersionTLS12, CipherSuites: []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA}}); err == nil {
		t.Fatal("CBC suite accepted")
	}
	if err := dial(&tls.Config{MinVersion: tls.VersionTLS13}); err != nil {
		t.Fatalf("TLS 1.3 refused: %v", err)
	}
}

func FuzzImport(f *testing.F) {
	f.Add([]byte("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"), []byte("-----BEGIN PRIVATE KEY-----\nMIIB\n-----END PRIVATE KEY-----\n"))
	f.Add([]byte(""), []byte(""))
	st := &memStorage{}
	m, err := Open(st, []string{"localhost"})
	if err != nil {
		f.Fatal(err)
	}
	fp := m.Info().SHA256
	f.Fuzz(func(t *testing.T, cert, key []byte) {
		if err := m.Import(cert, key); err != nil && m.Info().SHA256 != fp {
			t.Fatal("failed import changed the certificate")
		}
		fp = m.Info().SHA256
	})
}
