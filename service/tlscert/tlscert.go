// Package tlscert owns the gateway's TLS certificate: a self-signed ECDSA
// certificate generated on first start (with SANs for the gateway's names
// and addresses), import of an admin's PEM certificate chain and key with
// validation that says what to fix, live replacement for new connections,
// and the gateway's TLS configuration (TLS 1.2+, AEAD suites only). It
// persists through a Storage it is given and knows nothing of HTTP.
package tlscert

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Storage persists one certificate chain and key in PEM.
type Storage interface {
	// Load returns the stored PEM; ErrNotStored when there is none.
	Load() (certPEM, keyPEM []byte, err error)
	// Save stores the PEM atomically.
	Save(certPEM, keyPEM []byte) error
}

// ErrNotStored tells Open to generate a certificate.
var ErrNotStored = errors.New("no certificate stored")

// SelfSignedValidity is how long generated certificates are valid (the
// longest browsers accept for server certificates).
const SelfSignedValidity = 825 * 24 * time.Hour

// Manager holds the current certificate.
type Manager struct {
	store Storage
	mu    sync.Mutex // serialises replacements
	cur   atomic.Pointer[tls.Certificate]
	now   func() time.Time
}

// Open loads the stored certificate or, if there is none, generates a
// self-signed one for hosts (DefaultHosts() when empty) and stores it.
func Open(st Storage, hosts []string) (*Manager, error) {
	m := &Manager{store: st, now: time.Now}
	certPEM, keyPEM, err := st.Load()
	if errors.Is(err, ErrNotStored) {
		return m, m.GenerateSelfSigned(hosts)
	}
	if err != nil {
		return nil, fmt.Errorf("load certificate: %w", err)
	}
	c, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("stored certificate is damaged (%v): import a certificate or generate a new self-signed one", err)
	}
	if c.Leaf == nil {
		c.Leaf, _ = x509.ParseCertificate(c.Certificate[0])
	}
	m.cur.Store(&c)
	return m, nil
}

// Reload re-reads the storage (after a configuration import).
func (m *Manager) Reload() error {
	certPEM, keyPEM, err := m.store.Load()
	if err != nil {
		return fmt.Errorf("reload certificate: %w", err)
	}
	c, err := parsePair(certPEM, keyPEM, m.now())
	if err != nil {
		return err
	}
	m.cur.Store(c)
	return nil
}

// DefaultHosts lists this machine's name, localhost and its addresses.
func DefaultHosts() []string {
	hosts := []string{"localhost", "127.0.0.1", "::1"}
	if h, err := os.Hostname(); err == nil && h != "" {
		hosts = append([]string{h}, hosts...)
	}
	if addrs, err := net.InterfaceAddrs(); err == nil {
		for _, a := range addrs {
			if n, ok := a.(*net.IPNet); ok && !n.IP.IsLoopback() && !n.IP.IsLinkLocalUnicast() {
				hosts = append(hosts, n.IP.String())
			}
		}
	}
	return hosts
}

// GenerateSelfSigned makes, stores and starts using a new self-signed
// ECDSA P-256 certificate for hosts.
func (m *Manager) GenerateSelfSigned(hosts []string) error {
	if len(hosts) == 0 {
		hosts = DefaultHosts()
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return fmt.Errorf("generate key: %w", err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
	if err != nil {
		return fmt.Errorf("serial: %w", err)
	}
	now := m.now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: hosts[0], Organization: []string{"Portico gateway (self-signed)"}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(SelfSignedValidity),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
	}
	for _, h := range hosts {
		if ip := net.ParseIP(strings.Trim(h, "[]")); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return fmt.Errorf("create certificate: %w", err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return fmt.Errorf("encode key: %w", err)
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})
	c, err := parsePair(certPEM, keyPEM, now)
	if err != nil {
		return err
	}
	return m.replace(c, certPEM, keyPEM)
}

// Import validates a PEM certificate chain (leaf first) and key and, only
// if all is well, stores it and serves it to new connections. On error
// nothing changes.
func (m *Manager) Import(certPEM, keyPEM []byte) error {
	c, err := parsePair(certPEM, keyPEM, m.now())
	if err != nil {
		return err
	}
	// Store a normalised copy: just the certificates and the key.
	var chain bytes.Buffer
	for _, der := range c.Certificate {
		pem.Encode(&chain, &pem.Block{Type: "CERTIFICATE", Bytes: der})
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(c.PrivateKey)
	if err != nil {
		return fmt.Errorf("encode key: %w", err)
	}
	return m.replace(c, chain.Bytes(), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}))
}

func (m *Manager) replace(c *tls.Certificate, certPEM, keyPEM []byte) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.store.Save(certPEM, keyPEM); err != nil {
		return fmt.Errorf("store certificate: %w", err)
	}
	m.cur.Store(c)
	return nil
}

// parsePair decodes and validates a chain and key.
func parsePair(certPEM, keyPEM []byte, now time.Time) (*tls.Certificate, error) {
	var certs []*x509.Certificate
	rest := certPEM
	for {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		if b.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, fmt.Errorf("certificate %d cannot be read (%v): export it again as PEM", len(certs)+1, err)
		}
		certs = append(certs, c)
	}
	if len(certs) == 0 {
		return nil, errors.New("no certificate found: paste the PEM text that starts with -----BEGIN CERTIFICATE-----")
	}
	key, err := parseKey(keyPEM)
	if err != nil {
		return nil, err
	}
	leaf := certs[0]
	if !publicKeysEqual(leaf.PublicKey, key.Public()) {
		return nil, errors.New("certificate and key do not match: the key belongs to a different certificate; import the key that was made with this certificate")
	}
	if rk, ok := key.(*rsa.PrivateKey); ok && rk.N.BitLen() < 2048 {
		return nil, fmt.Errorf("the RSA key has only %d bits: use at least 2048", rk.N.BitLen())
	}
	if now.After(leaf.NotAfter) {
		return nil, fmt.Errorf("certificate expired on %s: import a current one", leaf.NotAfter.UTC().Format("2006-01-02"))
	}
	if now.Before(leaf.NotBefore) {
		return nil, fmt.Errorf("certificate is not valid before %s: check the machine's clock or import another", leaf.NotBefore.UTC().Format("2006-01-02 15:04 MST"))
	}
	if len(leaf.ExtKeyUsage) > 0 && !hasServerAuth(leaf.ExtKeyUsage) {
		return nil, errors.New("certificate is not for servers (no TLS Web Server Authentication in Extended Key Usage): import a server certificate")
	}
	for i := 0; i+1 < len(certs); i++ {
		if err := certs[i].CheckSignatureFrom(certs[i+1]); err != nil {
			return nil, fmt.Errorf("chain out of order: certificate %d (%s) did not issue certificate %d (%s): list the server certificate first, then each issuer", i+2, certs[i+1].Subject.CommonName, i+1, certs[i].Subject.CommonName)
		}
	}
	c := &tls.Certificate{PrivateKey: key, Leaf: leaf}
	for _, x := range certs {
		c.Certificate = append(c.Certificate, x.Raw)
	}
	return c, nil
}

func parseKey(keyPEM []byte) (crypto.Signer, error) {
	rest := keyPEM
	for {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			return nil, errors.New("no private key found: paste the PEM text that starts with -----BEGIN PRIVATE KEY----- (encrypted keys must be decrypted first)")
		}
		switch b.Type {
		case "PRIVATE KEY":
			k, err := x509.ParsePKCS8PrivateKey(b.Bytes)
			if err != nil {
				return nil, fmt.Errorf("private key cannot be read: %v", err)
			}
			s, ok := k.(crypto.Signer)
			if !ok {
				return nil, errors.New("unsupported private key type: use RSA, ECDSA or Ed25519")
			}
			return s, nil
		case "RSA PRIVATE KEY":
			k, err := x509.ParsePKCS1PrivateKey(b.Bytes)
			if err != nil {
				return nil, fmt.Errorf("RSA private key cannot be read: %v", err)
			}
			return k, nil
		case "EC PRIVATE KEY":
			k, err := x509.ParseECPrivateKey(b.Bytes)
			if err != nil {
				return nil, fmt.Errorf("EC private key cannot be read: %v", err)
			}
			return k, nil
		case "ENCRYPTED PRIVATE KEY":
			return nil, errors.New("the private key is encrypted: decrypt it first (openssl pkey -in key.pem -out plain.pem)")
		}
	}
}

func publicKeysEqual(a, b crypto.PublicKey) bool {
	type equaler interface{ Equal(crypto.PublicKey) bool }
	switch k := a.(type) {
	case *rsa.PublicKey, *ecdsa.PublicKey, ed25519.PublicKey:
		return k.(equaler).Equal(b)
	}
	return false
}

func hasServerAuth(us []x509.ExtKeyUsage) bool {
	for _, u := range us {
		if u == x509.ExtKeyUsageServerAuth || u == x509.ExtKeyUsageAny {
			return true
		}
	}
	return false
}

// GetCertificate serves the current certificate to new TLS connections.
func (m *Manager) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	return m.cur.Load(), nil
}

// TLSConfig is the gateway's server configuration: TLS 1.2 and 1.3 only,
// forward-secret AEAD suites, HTTP/2 offered.
func (m *Manager) TLSConfig() *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		CipherSuites: []uint16{
			tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
			tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384, tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
			tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256, tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
		},
		CurvePreferences: []tls.CurveID{tls.X25519, tls.CurveP256},
		NextProtos:       []string{"h2", "http/1.1"},
		GetCertificate:   m.GetCertificate,
	}
}

// Info describes a certificate for the admin.
type Info struct {
	Subject     string    `json:"subject"`
	Issuer      string    `json:"issuer"`
	DNSNames    []string  `json:"dnsNames"`
	IPAddresses []string  `json:"ipAddresses"`
	NotBefore   time.Time `json:"notBefore"`
	NotAfter    time.Time `json:"notAfter"`
	SHA256      string    `json:"sha256"`
	SelfSigned  bool      `json:"selfSigned"`
	ChainLength int       `json:"chainLength"`
}

// Info returns the current certificate's description.
func (m *Manager) Info() Info {
	c := m.cur.Load()
	l := c.Leaf
	i := Info{Subject: l.Subject.String(), Issuer: l.Issuer.String(), DNSNames: l.DNSNames, NotBefore: l.NotBefore, NotAfter: l.NotAfter,
		SHA256: Fingerprint(l.Raw), ChainLength: len(c.Certificate),
		SelfSigned: bytes.Equal(l.RawIssuer, l.RawSubject) && l.CheckSignature(l.SignatureAlgorithm, l.RawTBSCertificate, l.Signature) == nil}
	if i.DNSNames == nil {
		i.DNSNames = []string{}
	}
	i.IPAddresses = []string{}
	for _, ip := range l.IPAddresses {
		i.IPAddresses = append(i.IPAddresses, ip.String())
	}
	return i
}

// Fingerprint is the SHA-256 of a DER certificate as colon-separated
// upper-case hex, the form admins compare with browsers' certificate views.
func Fingerprint(der []byte) string {
	sum := sha256.Sum256(der)
	parts := make([]string, len(sum))
	for i, b := range sum {
		parts[i] = fmt.Sprintf("%02X", b)
	}
	return strings.Join(parts, ":")
}
