package tlscert

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Kinds of problems with a certificate or key. Every error Import returns
// wraps one of them (test with errors.Is); its text tells the admin what
// to fix.
var (
	ErrBadPEM           = errors.New("damaged PEM text")
	ErrNoCertificate    = errors.New("no certificate")
	ErrBadCertificate   = errors.New("unreadable certificate")
	ErrNoKey            = errors.New("no private key")
	ErrBadKey           = errors.New("unusable private key")
	ErrKeyMismatch      = errors.New("certificate and key do not match")
	ErrExpired          = errors.New("certificate expired")
	ErrNotYetValid      = errors.New("certificate not yet valid")
	ErrChainOrder       = errors.New("chain out of order")
	ErrIssuerNotCA      = errors.New("issuer is not a CA")
	ErrNotServerCert    = errors.New("not a server certificate")
	ErrWeakKey          = errors.New("key too weak")
	ErrInsecureHash     = errors.New("insecure signature algorithm")
	ErrNoSubjectAltName = errors.New("no subject alternative names")
	ErrBadHost          = errors.New("bad host name")
)

// minRSABits is the smallest RSA modulus browsers and CAs still accept.
const minRSABits = 2048

// problem is an admin-facing message carrying one of the Err kinds.
type problem struct {
	kind error
	msg  string
}

func (p *problem) Error() string { return p.msg }
func (p *problem) Unwrap() error { return p.kind }

func fail(kind error, format string, args ...any) error {
	return &problem{kind: kind, msg: fmt.Sprintf(format, args...)}
}

// decodePEM returns all PEM blocks in data, or ErrBadPEM when some
// "-----BEGIN" line did not yield a block: pem.Decode silently skips a
// damaged block, which would otherwise drop a certificate from a chain.
func decodePEM(data []byte, field string) ([]*pem.Block, error) {
	var blocks []*pem.Block
	for rest := data; ; {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		blocks = append(blocks, b)
	}
	if begins := bytes.Count(data, []byte("-----BEGIN ")); begins > len(blocks) {
		return nil, fail(ErrBadPEM, "the %s PEM text is damaged (%d of %d blocks can be read): copy each block whole, from its -----BEGIN line to its -----END line", field, len(blocks), begins)
	}
	return blocks, nil
}

// parsePair decodes a chain (leaf first) and its key and checks what is
// needed to serve them at all: readable, and the key belongs to the leaf.
// Import adds the policy checks of checkImport.
func parsePair(certPEM, keyPEM []byte) (*tls.Certificate, []*x509.Certificate, error) {
	certs, err := parseChain(certPEM)
	if err != nil {
		return nil, nil, err
	}
	key, err := parseKey(keyPEM)
	if err != nil {
		return nil, nil, err
	}
	pub, ok := key.Public().(interface{ Equal(crypto.PublicKey) bool })
	if !ok || !pub.Equal(certs[0].PublicKey) {
		// A key that fits a later certificate means the issuers came first.
		for i, c := range certs[1:] {
			if ok && pub.Equal(c.PublicKey) {
				return nil, nil, fail(ErrChainOrder, "chain out of order: the key belongs to certificate %d (%s), not to certificate 1 (%s): list the server certificate first, then its issuers", i+2, describe(c), describe(certs[0]))
			}
		}
		return nil, nil, fail(ErrKeyMismatch, "certificate and key do not match: the key is for a different certificate; import the key that was created together with %s", describe(certs[0]))
	}
	c := &tls.Certificate{PrivateKey: key, Leaf: certs[0]}
	for _, x := range certs {
		c.Certificate = append(c.Certificate, x.Raw)
	}
	return c, certs, nil
}

func parseChain(certPEM []byte) ([]*x509.Certificate, error) {
	blocks, err := decodePEM(certPEM, "certificate")
	if err != nil {
		return nil, err
	}
	var certs []*x509.Certificate
	var others []string
	for _, b := range blocks {
		if b.Type != "CERTIFICATE" {
			others = append(others, b.Type)
			continue
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, fail(ErrBadCertificate, "certificate %d cannot be read (%v): export it again in PEM (Base-64) format", len(certs)+1, err)
		}
		certs = append(certs, c)
	}
	if len(certs) > 0 {
		return certs, nil
	}
	switch {
	case len(others) > 0:
		return nil, fail(ErrNoCertificate, "no certificate found: the certificate field holds %s; paste the text that starts with -----BEGIN CERTIFICATE-----", strings.Join(others, ", "))
	case len(certPEM) > 0 && certPEM[0] == 0x30:
		return nil, fail(ErrNoCertificate, "no PEM certificate found: this looks like binary DER; convert it with: openssl x509 -inform der -in cert.cer -out cert.pem")
	}
	return nil, fail(ErrNoCertificate, "no certificate found: paste the PEM text that starts with -----BEGIN CERTIFICATE-----")
}

func parseKey(keyPEM []byte) (crypto.Signer, error) {
	blocks, err := decodePEM(keyPEM, "private key")
	if err != nil {
		return nil, err
	}
	var seen []string
	for _, b := range blocks {
		var k any
		var err error
		switch {
		case b.Type == "ENCRYPTED PRIVATE KEY" || strings.Contains(b.Headers["Proc-Type"], "ENCRYPTED"):
			return nil, fail(ErrBadKey, "the private key is protected by a password: decrypt it first (openssl pkey -in key.pem -out plain-key.pem)")
		case b.Type == "PRIVATE KEY":
			k, err = x509.ParsePKCS8PrivateKey(b.Bytes)
		case b.Type == "RSA PRIVATE KEY":
			k, err = x509.ParsePKCS1PrivateKey(b.Bytes)
		case b.Type == "EC PRIVATE KEY":
			k, err = x509.ParseECPrivateKey(b.Bytes)
		default:
			// e.g. the "EC PARAMETERS" block openssl ecparam writes first.
			seen = append(seen, b.Type)
			continue
		}
		if err != nil {
			return nil, fail(ErrBadKey, "the %s cannot be read (%v): export the key again as PEM", strings.ToLower(b.Type), err)
		}
		return checkKeyType(k)
	}
	if len(seen) > 0 {
		return nil, fail(ErrNoKey, "no private key found: the key field holds %s; paste the text that starts with -----BEGIN PRIVATE KEY-----", strings.Join(seen, ", "))
	}
	return nil, fail(ErrNoKey, "no private key found: paste the PEM text that starts with -----BEGIN PRIVATE KEY----- (or RSA / EC PRIVATE KEY)")
}

// checkKeyType admits the key types browsers accept for TLS servers.
func checkKeyType(k any) (crypto.Signer, error) {
	switch k := k.(type) {
	case *rsa.PrivateKey:
		return k, nil
	case *ecdsa.PrivateKey:
		if k.Curve != elliptic.P256() && k.Curve != elliptic.P384() {
			return nil, fail(ErrBadKey, "the ECDSA key uses curve %s, which browsers do not accept: use P-256 or P-384", k.Curve.Params().Name)
		}
		return k, nil
	case ed25519.PrivateKey:
		return nil, fail(ErrBadKey, "Ed25519 keys are not accepted by browsers: use an ECDSA P-256 or RSA 2048+ key")
	}
	return nil, fail(ErrBadKey, "unsupported private key type %T: use an ECDSA P-256 or RSA 2048+ key", k)
}

// checkImport applies the rules an imported certificate must meet to be
// served to browsers; parsePair has already checked the key matches.
func checkImport(certs []*x509.Certificate, key crypto.Signer, now time.Time) error {
	leaf := certs[0]
	if rk, ok := key.(*rsa.PrivateKey); ok && rk.N.BitLen() < minRSABits {
		return fail(ErrWeakKey, "the RSA key has only %d bits: browsers need at least %d; request a new certificate with a %d-bit or larger key", rk.N.BitLen(), minRSABits, minRSABits)
	}
	if now.After(leaf.NotAfter) {
		return fail(ErrExpired, "certificate expired on %s: import a current one", leaf.NotAfter.UTC().Format(time.DateOnly))
	}
	if now.Before(leaf.NotBefore) {
		return fail(ErrNotYetValid, "certificate is not valid before %s UTC: check this machine's clock, or wait and import it then", leaf.NotBefore.UTC().Format("2006-01-02 15:04"))
	}
	if len(leaf.ExtKeyUsage) > 0 && !hasServerAuth(leaf.ExtKeyUsage) {
		return fail(ErrNotServerCert, "%s is not for servers (its Extended Key Usage lacks TLS Web Server Authentication): import a server certificate", describe(leaf))
	}
	// Every suite we offer (ECDHE in TLS 1.2, all of TLS 1.3) signs with
	// the key, so a Key Usage without Digital Signature cannot work.
	if leaf.KeyUsage != 0 && leaf.KeyUsage&x509.KeyUsageDigitalSignature == 0 {
		return fail(ErrNotServerCert, "%s does not allow Digital Signature in its Key Usage, which TLS needs: request a server certificate that does", describe(leaf))
	}
	if len(leaf.DNSNames) == 0 && len(leaf.IPAddresses) == 0 {
		return fail(ErrNoSubjectAltName, "%s has no Subject Alternative Names, and browsers ignore the Common Name: request one that lists the gateway's DNS names", describe(leaf))
	}
	for i := 0; i+1 < len(certs); i++ {
		if err := checkIssued(certs[i], certs[i+1], i+1); err != nil {
			return err
		}
	}
	return nil
}

// checkIssued checks that parent (certificate n+1) issued child
// (certificate n), numbering from 1 as the admin sees the file.
func checkIssued(child, parent *x509.Certificate, n int) error {
	outOfOrder := func() error {
		return fail(ErrChainOrder, "chain out of order: certificate %d (%s) did not issue certificate %d (%s): list the server certificate first, then its issuers, each followed by the one that issued it", n+1, describe(parent), n, describe(child))
	}
	if !bytes.Equal(child.RawIssuer, parent.RawSubject) {
		return outOfOrder()
	}
	err := parent.CheckSignature(child.SignatureAlgorithm, child.RawTBSCertificate, child.Signature)
	var insecure x509.InsecureAlgorithmError
	switch {
	case errors.As(err, &insecure):
		return fail(ErrInsecureHash, "certificate %d (%s) is signed with %v, which browsers reject: get it reissued", n, describe(child), child.SignatureAlgorithm)
	case err != nil:
		return outOfOrder()
	}
	if parent.Version >= 3 && (!parent.BasicConstraintsValid || !parent.IsCA) {
		return fail(ErrIssuerNotCA, "certificate %d (%s) is not a CA certificate, so it cannot issue certificate %d: include the issuing CA's certificate instead", n+1, describe(parent), n)
	}
	return nil
}

func hasServerAuth(us []x509.ExtKeyUsage) bool {
	for _, u := range us {
		if u == x509.ExtKeyUsageServerAuth || u == x509.ExtKeyUsageAny {
			return true
		}
	}
	return false
}

// describe names a certificate the way the admin will recognise it.
func describe(c *x509.Certificate) string {
	if c.Subject.CommonName != "" {
		return "CN=" + c.Subject.CommonName
	}
	if s := c.Subject.String(); s != "" {
		return s
	}
	return "empty subject"
}
