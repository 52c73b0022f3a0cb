// Package tlscert owns the gateway's TLS certificate: a self-signed ECDSA
// certificate generated on first start (with SANs for the gateway's names
// and addresses), import of an admin's PEM chain and key with validation
// that says what to fix, live replacement for new connections, and the
// gateway's TLS server configuration (TLS 1.2+, forward-secret AEAD suites
// only). It persists through a Storage it is given (the gateway keeps the
// pair in its store) and must not know about HTTP, the store's schema or the admin API.
package tlscert

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
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

// SelfSignedValidity is how long generated certificates are valid: the
// longest lifetime Apple platforms accept for server certificates.
const SelfSignedValidity = 825 * 24 * time.Hour

// selfSignedBackdate absorbs small clock differences between the gateway
// and its clients.
const selfSignedBackdate = time.Hour

// Manager holds the certificate the gateway serves.
type Manager struct {
	store Storage
	now   func() time.Time
	mu    sync.Mutex // serialises replacements so disk and memory agree
	cur   atomic.Pointer[tls.Certificate]
}

// Open loads the stored certificate or, if there is none, generates a
// self-signed one for hosts (DefaultHosts() when empty) and stores it.
// A stored certificate is served as it is, even if expired: Import is
// where policy is enforced, and a gateway that refuses to start cannot be
// given a new certificate.
func Open(st Storage, hosts []string) (*Manager, error) {
	m := &Manager{store: st, now: time.Now}
	certPEM, keyPEM, err := st.Load()
	if errors.Is(err, ErrNotStored) {
		if err := m.GenerateSelfSigned(hosts); err != nil {
			return nil, err
		}
		return m, nil
	}
	if err != nil {
		return nil, fmt.Errorf("load certificate: %w", err)
	}
	c, _, err := parsePair(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("stored certificate is damaged (%w): import a certificate or generate a new self-signed one", err)
	}
	m.cur.Store(c)
	return m, nil
}

// Reload serves what the storage now holds (after it was changed outside
// this Manager, e.g. by a configuration import). On error the current
// certificate stays.
func (m *Manager) Reload() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	certPEM, keyPEM, err := m.store.Load()
	if err != nil {
		return fmt.Errorf("reload certificate: %w", err)
	}
	c, _, err := parsePair(certPEM, keyPEM)
	if err != nil {
		return fmt.Errorf("reload certificate: %w", err)
	}
	m.cur.Store(c)
	return nil
}

// DefaultHosts lists this machine's host name, localhost, the loopback
// addresses and the addresses of its other interfaces. Link-local
// addresses are left out: they need a zone, which a certificate cannot
// name.
func DefaultHosts() []string {
	var hosts []string
	if h, err := os.Hostname(); err == nil && h != "" {
		hosts = append(hosts, h)
	}
	hosts = append(hosts, "localhost", "127.0.0.1", "::1")
	if addrs, err := net.InterfaceAddrs(); err == nil {
		for _, a := range addrs {
			if n, ok := a.(*net.IPNet); ok && !n.IP.IsLoopback() && !n.IP.IsLinkLocalUnicast() {
				hosts = append(hosts, n.IP.String())
			}
		}
	}
	return dedupe(hosts)
}

func dedupe(xs []string) []string {
	seen := make(map[string]bool, len(xs))
	out := xs[:0:0]
	for _, x := range xs {
		if !seen[strings.ToLower(x)] {
			seen[strings.ToLower(x)] = true
			out = append(out, x)
		}
	}
	return out
}

// splitHosts sorts host entries into DNS names and IP addresses.
func splitHosts(hosts []string) ([]string, []net.IP, error) {
	var names []string
	var ips []net.IP
	for _, h := range dedupe(hosts) {
		h = strings.TrimSpace(h)
		if ip := net.ParseIP(strings.TrimSuffix(strings.TrimPrefix(h, "["), "]")); ip != nil {
			ips = append(ips, ip)
			continue
		}
		if !validDNSName(h) {
			return nil, nil, fail(ErrBadHost, "%q is not a DNS name or an IP address: give a name like gateway.example.com or an address like 192.0.2.10, without port or scheme", h)
		}
		names = append(names, strings.TrimSuffix(h, "."))
	}
	return names, ips, nil
}

// validDNSName accepts host names (and a leading "*." wildcard) as
// certificates carry them. Underscores are allowed because Windows
// machine names often have them.
func validDNSName(h string) bool {
	h = strings.TrimSuffix(strings.TrimPrefix(h, "*."), ".")
	if h == "" || len(h) > 253 {
		return false
	}
	for _, label := range strings.Split(h, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for _, r := range label {
			if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
				return false
			}
		}
	}
	return true
}

// GenerateSelfSigned makes a new self-signed ECDSA P-256 certificate for
// hosts (DefaultHosts() when empty; each a DNS name or an IP address),
// stores it and serves it to new connections. On error nothing changes.
func (m *Manager) GenerateSelfSigned(hosts []string) error {
	if len(hosts) == 0 {
		hosts = DefaultHosts()
	}
	names, ips, err := splitHosts(hosts)
	if err != nil {
		return err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return fmt.Errorf("generate key: %w", err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
	if err != nil {
		return fmt.Errorf("generate serial number: %w", err)
	}
	var cn string
	switch {
	case len(names) > 0:
		cn = names[0]
	case len(ips) > 0:
		cn = ips[0].String()
	}
	if len(cn) > 64 { // the X.509 upper bound for a common name
		cn = ""
	}
	now := m.now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: cn, Organization: []string{"Portico gateway (self-signed)"}},
		NotBefore:             now.Add(-selfSignedBackdate),
		NotAfter:              now.Add(SelfSignedValidity),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  false,
		DNSNames:              names,
		IPAddresses:           ips,
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
	c, _, err := parsePair(certPEM, keyPEM)
	if err != nil {
		return fmt.Errorf("check generated certificate: %w", err)
	}
	return m.replace(c, certPEM, keyPEM)
}

// Import validates a PEM certificate chain (server certificate first, then
// its issuers) and its private key (PKCS#8, PKCS#1 or SEC 1) and, only if
// all is well, stores them and serves them to new connections. On error
// nothing changes, on disk or in memory, and the error wraps one of the
// Err kinds and says what to fix.
func (m *Manager) Import(certPEM, keyPEM []byte) error {
	c, certs, err := parsePair(certPEM, keyPEM)
	if err != nil {
		return err
	}
	if err := checkImport(certs, c.PrivateKey.(crypto.Signer), m.now()); err != nil {
		return err
	}
	// Store a normalised copy: just the certificates and a PKCS#8 key.
	var chain bytes.Buffer
	for _, der := range c.Certificate {
		chain.Write(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(c.PrivateKey)
	if err != nil {
		return fmt.Errorf("encode key: %w", err)
	}
	return m.replace(c, chain.Bytes(), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}))
}

// replace persists first and swaps only after, so a failed save leaves
// the served certificate and the stored one in agreement.
func (m *Manager) replace(c *tls.Certificate, certPEM, keyPEM []byte) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.store.Save(certPEM, keyPEM); err != nil {
		return fmt.Errorf("store certificate: %w", err)
	}
	m.cur.Store(c)
	return nil
}

// GetCertificate returns the current certificate; it is the
// tls.Config.GetCertificate hook, so a replacement takes effect for the
// next handshake without a restart.
func (m *Manager) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	return m.cur.Load(), nil
}

// TLSConfig is the gateway's server configuration: TLS 1.2 and 1.3 only,
// forward-secret AEAD suites, HTTP/2 offered before HTTP/1.1.
func (m *Manager) TLSConfig() *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		// TLS 1.2 only; the TLS 1.3 suites are all AEAD and not configurable.
		CipherSuites: []uint16{
			tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
			tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384, tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
			tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256, tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
		},
		// X25519MLKEM768 is X25519 combined with a post-quantum KEM (never
		// weaker than X25519); current browsers offer it first.
		CurvePreferences: []tls.CurveID{tls.X25519MLKEM768, tls.X25519, tls.CurveP256},
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
	SHA256      string    `json:"sha256"` // Fingerprint of the leaf
	SelfSigned  bool      `json:"selfSigned"`
	ChainLength int       `json:"chainLength"`
}

// Info describes the certificate now served.
func (m *Manager) Info() Info {
	c := m.cur.Load()
	l := c.Leaf
	i := Info{
		Subject:     l.Subject.String(),
		Issuer:      l.Issuer.String(),
		DNSNames:    append([]string{}, l.DNSNames...),
		IPAddresses: []string{},
		NotBefore:   l.NotBefore,
		NotAfter:    l.NotAfter,
		SHA256:      Fingerprint(l.Raw),
		// Not CheckSignatureFrom: it also demands the issuer be a CA, which
		// a self-signed server certificate is not.
		SelfSigned:  bytes.Equal(l.RawIssuer, l.RawSubject) && l.CheckSignature(l.SignatureAlgorithm, l.RawTBSCertificate, l.Signature) == nil,
		ChainLength: len(c.Certificate),
	}
	for _, ip := range l.IPAddresses {
		i.IPAddresses = append(i.IPAddresses, ip.String())
	}
	return i
}

// Fingerprint is the SHA-256 of a DER certificate as colon-separated
// upper-case hex pairs, the form browsers and openssl show, for pinning.
func Fingerprint(der []byte) string {
	sum := sha256.Sum256(der)
	var b strings.Builder
	for i, x := range sum {
		if i > 0 {
			b.WriteByte(':')
		}
		fmt.Fprintf(&b, "%02X", x)
	}
	return b.String()
}
