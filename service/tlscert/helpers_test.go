package tlscert

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// issued is a certificate made by a test, with its key.
type issued struct {
	cert *x509.Certificate
	key  crypto.Signer
	pem  []byte
}

// issue makes a certificate for cn signed by parent (self-signed when nil)
// with key (a new P-256 key when nil); mod adjusts the template.
func issue(tb testing.TB, cn string, parent *issued, isCA bool, key crypto.Signer, mod func(*x509.Certificate)) *issued {
	tb.Helper()
	if key == nil {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			tb.Fatal(err)
		}
		key = k
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 64))
	if err != nil {
		tb.Fatal(err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: serial, Subject: pkix.Name{CommonName: cn},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		BasicConstraintsValid: true, IsCA: isCA,
	}
	if isCA {
		tmpl.KeyUsage = x509.KeyUsageCertSign | x509.KeyUsageCRLSign
	} else {
		tmpl.KeyUsage = x509.KeyUsageDigitalSignature
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
		tmpl.DNSNames = []string{cn}
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
		tb.Fatalf("create %s: %v", cn, err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		tb.Fatal(err)
	}
	return &issued{cert: c, key: key, pem: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}
}

// testPKI is root CA → intermediate → server certificates.
type testPKI struct{ root, inter *issued }

func newPKI(tb testing.TB) testPKI {
	root := issue(tb, "Portico Test Root", nil, true, nil, nil)
	return testPKI{root: root, inter: issue(tb, "Portico Test Intermediate", root, true, nil, nil)}
}

func (p testPKI) leaf(tb testing.TB, cn string, key crypto.Signer, mod func(*x509.Certificate)) *issued {
	return issue(tb, cn, p.inter, false, key, mod)
}

func (p testPKI) pool() *x509.CertPool {
	pool := x509.NewCertPool()
	pool.AddCert(p.root.cert)
	return pool
}

func rsaKey(tb testing.TB, bits int) *rsa.PrivateKey {
	tb.Helper()
	k, err := rsa.GenerateKey(rand.Reader, bits)
	if err != nil {
		tb.Fatal(err)
	}
	return k
}

// Key encodings an admin may bring.
func pkcs8PEM(tb testing.TB, k crypto.Signer) []byte {
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		tb.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
}

func pkcs1PEM(k *rsa.PrivateKey) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(k)})
}

func sec1PEM(tb testing.TB, k *ecdsa.PrivateKey) []byte {
	der, err := x509.MarshalECPrivateKey(k)
	if err != nil {
		tb.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der})
}

func cat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

// serve runs a real TLS server on 127.0.0.1 with cfg that completes each
// handshake and hangs up.
func serve(t *testing.T, cfg *tls.Config) string {
	t.Helper()
	ln, err := tls.Listen("tcp", "127.0.0.1:0", cfg)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				c.SetDeadline(time.Now().Add(30 * time.Second))
				if c.(*tls.Conn).Handshake() == nil {
					c.Read(make([]byte, 1)) // until the client hangs up
				}
			}()
		}
	}()
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	return ln.Addr().String()
}

// handshake connects to addr with cfg (trusting anything unless cfg has
// RootCAs) and returns the negotiated state.
func handshake(t *testing.T, addr string, cfg *tls.Config) (tls.ConnectionState, error) {
	t.Helper()
	cfg = cfg.Clone()
	if cfg.RootCAs == nil {
		cfg.InsecureSkipVerify = true
	}
	d := &net.Dialer{Timeout: 30 * time.Second}
	c, err := tls.DialWithDialer(d, "tcp", addr, cfg)
	if err != nil {
		return tls.ConnectionState{}, err
	}
	defer c.Close()
	return c.ConnectionState(), nil
}

// servedFingerprint is the fingerprint of the leaf a new connection gets.
func servedFingerprint(t *testing.T, addr string) string {
	t.Helper()
	st, err := handshake(t, addr, &tls.Config{})
	if err != nil {
		t.Fatalf("handshake: %v", err)
	}
	return Fingerprint(st.PeerCertificates[0].Raw)
}

// memStorage keeps the pair in memory: the gateway's own Storage is the
// store (service/gateway), which has its own tests.
type memStorage struct {
	mu        sync.Mutex
	cert, key []byte
}

func (s *memStorage) Load() ([]byte, []byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cert == nil {
		return nil, nil, ErrNotStored
	}
	return bytes.Clone(s.cert), bytes.Clone(s.key), nil
}

func (s *memStorage) Save(cert, key []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.cert, s.key = bytes.Clone(cert), bytes.Clone(key)
	return nil
}

// snapshot is what the storage holds.
func (s *memStorage) snapshot() map[string]string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return map[string]string{"cert": string(s.cert), "key": string(s.key)}
}

// certFile writes the stored certificate to a file (for openssl).
func certFile(t testing.TB, s *memStorage) string {
	t.Helper()
	cert, _, err := s.Load()
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "cert.pem")
	if err := os.WriteFile(p, cert, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func sameFiles(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// readCerts parses every certificate in PEM data.
func readCerts(t testing.TB, data []byte) []*x509.Certificate {
	t.Helper()
	var certs []*x509.Certificate
	for {
		var b *pem.Block
		b, data = pem.Decode(data)
		if b == nil {
			return certs
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			t.Fatal(err)
		}
		certs = append(certs, c)
	}
}

// hasKind tells whether err wraps one of the kinds Import reports.
func hasKind(err error) bool {
	kinds := []error{ErrBadPEM, ErrNoCertificate, ErrBadCertificate, ErrNoKey, ErrBadKey, ErrKeyMismatch, ErrExpired,
		ErrNotYetValid, ErrChainOrder, ErrIssuerNotCA, ErrNotServerCert, ErrWeakKey, ErrInsecureHash, ErrNoSubjectAltName}
	for _, k := range kinds {
		if errors.Is(err, k) {
			return true
		}
	}
	return false
}

func mustECDSA(tb testing.TB, c elliptic.Curve) *ecdsa.PrivateKey {
	tb.Helper()
	k, err := ecdsa.GenerateKey(c, rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	return k
}

func mustEd25519(tb testing.TB) ed25519.PrivateKey {
	tb.Helper()
	_, k, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	return k
}

func signerOf(tb testing.TB, k any) crypto.Signer {
	tb.Helper()
	s, ok := k.(crypto.Signer)
	if !ok {
		tb.Fatalf("%T is not a signer", k)
	}
	return s
}
