package tlscert

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestOpenGeneratesSelfSigned(t *testing.T) {
	dir := &memStorage{}
	before := time.Now()
	m, err := Open(dir, []string{"gw.example.test", "10.0.0.7", "[::1]", "*.apps.example.test"})
	if err != nil {
		t.Fatal(err)
	}
	after := time.Now()

	files := dir.snapshot()
	if files["cert"] == "" || files["key"] == "" {
		t.Fatalf("storage holds %v, want a certificate and a key", files)
	}

	certs := readCerts(t, []byte(files["cert"]))
	if len(certs) != 1 {
		t.Fatalf("%d certificates on disk", len(certs))
	}
	c := certs[0]
	pub, ok := c.PublicKey.(*ecdsa.PublicKey)
	if !ok || pub.Curve != elliptic.P256() {
		t.Errorf("key is %T, want ECDSA P-256", c.PublicKey)
	}
	if !slices.Equal(c.DNSNames, []string{"gw.example.test", "*.apps.example.test"}) {
		t.Errorf("DNS SANs %v", c.DNSNames)
	}
	var ips []string
	for _, ip := range c.IPAddresses {
		ips = append(ips, ip.String())
	}
	if !slices.Equal(ips, []string{"10.0.0.7", "::1"}) {
		t.Errorf("IP SANs %v", ips)
	}
	if c.KeyUsage != x509.KeyUsageDigitalSignature || !slices.Equal(c.ExtKeyUsage, []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}) {
		t.Errorf("key usage %v, extended %v", c.KeyUsage, c.ExtKeyUsage)
	}
	if !c.BasicConstraintsValid || c.IsCA {
		t.Errorf("basic constraints valid=%v CA=%v, want valid and not a CA", c.BasicConstraintsValid, c.IsCA)
	}
	// A random 128-bit serial has fewer than 65 bits with probability 2^-64.
	if n := c.SerialNumber.BitLen(); n > 128 || n <= 64 || c.SerialNumber.Sign() <= 0 {
		t.Errorf("serial %v has %d bits, want a random positive 128-bit number", c.SerialNumber, n)
	}
	// Certificates carry whole seconds.
	if c.NotBefore.Before(before.Add(-time.Hour-time.Second)) || c.NotBefore.After(after.Add(-time.Hour)) {
		t.Errorf("NotBefore %v is not one hour before generation (%v)", c.NotBefore, before)
	}
	if got := c.NotAfter.Sub(c.NotBefore); got != 825*24*time.Hour+time.Hour {
		t.Errorf("validity %v, want 825 days from generation", got)
	}

	info := m.Info()
	if !info.SelfSigned || info.ChainLength != 1 || info.SHA256 != Fingerprint(c.Raw) || info.Subject != c.Subject.String() {
		t.Errorf("info %+v does not describe the certificate on disk", info)
	}
	addr := serve(t, m.TLSConfig())
	if got := servedFingerprint(t, addr); got != Fingerprint(c.Raw) {
		t.Errorf("server presents %s, disk has %s", got, Fingerprint(c.Raw))
	}

	// A second start loads the same certificate and leaves the files alone.
	m2, err := Open(dir, []string{"other.example.test"})
	if err != nil {
		t.Fatal(err)
	}
	if got := m2.Info().SHA256; got != info.SHA256 {
		t.Errorf("reopen serves %s, want the stored %s", got, info.SHA256)
	}
	if !sameFiles(files, dir.snapshot()) {
		t.Error("reopen changed the stored pair")
	}
}

func TestOpenWithoutHostsUsesDefaultHosts(t *testing.T) {
	m, err := Open(&memStorage{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	info := m.Info()
	want := []string{"localhost", "127.0.0.1", "::1"}
	if h, err := os.Hostname(); err == nil {
		want = append(want, h)
	}
	got := append(append([]string{}, info.DNSNames...), info.IPAddresses...)
	for _, w := range want {
		if !slices.Contains(got, w) {
			t.Errorf("SANs %v lack %s", got, w)
		}
	}
	hosts := DefaultHosts()
	if len(dedupe(hosts)) != len(hosts) {
		t.Errorf("DefaultHosts has duplicates: %v", hosts)
	}
}

func TestFingerprintMatchesOpenSSL(t *testing.T) {
	openssl, err := exec.LookPath("openssl")
	if err != nil {
		t.Fatalf("openssl not found (install the Debian package openssl): %v", err)
	}
	dir := &memStorage{}
	m, err := Open(dir, []string{"localhost"})
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(openssl, "x509", "-noout", "-fingerprint", "-sha256", "-in", certFile(t, dir)).Output()
	if err != nil {
		t.Fatalf("openssl: %v", err)
	}
	_, want, ok := strings.Cut(strings.TrimSpace(string(out)), "=")
	if !ok {
		t.Fatalf("unexpected openssl output %q", out)
	}
	if got := m.Info().SHA256; got != want {
		t.Errorf("Fingerprint %s, openssl says %s", got, want)
	}
}

func TestInfoJSON(t *testing.T) {
	m, err := Open(&memStorage{}, []string{"gw.example.test", "192.0.2.1"})
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(m.Info())
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"subject", "issuer", "dnsNames", "ipAddresses", "notBefore", "notAfter", "sha256", "selfSigned", "chainLength"} {
		if _, ok := got[k]; !ok {
			t.Errorf("JSON %s lacks %q", b, k)
		}
	}
	if got["selfSigned"] != true || got["chainLength"] != float64(1) {
		t.Errorf("JSON %s", b)
	}
}

func TestGenerateSelfSigned(t *testing.T) {
	dir := &memStorage{}
	m, err := Open(dir, []string{"old.example.test"})
	if err != nil {
		t.Fatal(err)
	}
	addr := serve(t, m.TLSConfig())
	old := servedFingerprint(t, addr)

	t.Run("bad hosts change nothing", func(t *testing.T) {
		files := dir.snapshot()
		for _, hosts := range [][]string{{"gw.example.test:443"}, {"https://gw.example.test"}, {"two words"}, {"-dash.example.test"}, {"ok.example.test", ""}, {"bad..dots"}} {
			err := m.GenerateSelfSigned(hosts)
			if !errors.Is(err, ErrBadHost) {
				t.Errorf("%q: got %v, want ErrBadHost", hosts, err)
			}
		}
		if !sameFiles(files, dir.snapshot()) || servedFingerprint(t, addr) != old {
			t.Error("a refused generation changed the certificate")
		}
	})

	if err := m.GenerateSelfSigned([]string{"new.example.test"}); err != nil {
		t.Fatal(err)
	}
	st, err := handshake(t, addr, &tls.Config{})
	if err != nil {
		t.Fatal(err)
	}
	leaf := st.PeerCertificates[0]
	if Fingerprint(leaf.Raw) == old || !slices.Equal(leaf.DNSNames, []string{"new.example.test"}) {
		t.Fatalf("new connections get %v, want the new certificate", leaf.DNSNames)
	}
	m2, err := Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	if m2.Info().SHA256 != Fingerprint(leaf.Raw) {
		t.Error("the new certificate was not stored")
	}
}

func TestImportGoodChain(t *testing.T) {
	pki := newPKI(t)
	cases := []struct {
		name     string
		key      func() (any, []byte) // the leaf key and its PEM
		withRoot bool
		mangle   func([]byte) []byte // how the admin's files differ
	}{
		{"ecdsa pkcs8", func() (any, []byte) { k := mustECDSA(t, elliptic.P256()); return k, pkcs8PEM(t, k) }, false, nil},
		{"ecdsa sec1", func() (any, []byte) { k := mustECDSA(t, elliptic.P256()); return k, sec1PEM(t, k) }, false, nil},
		{"ecdsa p384 with root", func() (any, []byte) { k := mustECDSA(t, elliptic.P384()); return k, pkcs8PEM(t, k) }, true, nil},
		{"rsa pkcs1", func() (any, []byte) { k := rsaKey(t, 2048); return k, pkcs1PEM(k) }, false, nil},
		{"rsa pkcs8", func() (any, []byte) { k := rsaKey(t, 2048); return k, pkcs8PEM(t, k) }, false, nil},
		{"windows line ends and text around", func() (any, []byte) { k := mustECDSA(t, elliptic.P256()); return k, pkcs8PEM(t, k) }, false,
			func(b []byte) []byte {
				return append([]byte("subject=CN = exported by a tool\r\n"), bytes.ReplaceAll(b, []byte("\n"), []byte("\r\n"))...)
			}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			key, keyPEM := tc.key()
			leaf := pki.leaf(t, "portal.example.test", signerOf(t, key), nil)
			chain := cat(leaf.pem, pki.inter.pem)
			wantLen := 2
			if tc.withRoot {
				chain, wantLen = cat(chain, pki.root.pem), 3
			}

			dir := &memStorage{}
			m, err := Open(dir, []string{"localhost"})
			if err != nil {
				t.Fatal(err)
			}
			addr := serve(t, m.TLSConfig())
			selfSigned := m.Info().SHA256
			if got := servedFingerprint(t, addr); got != selfSigned {
				t.Fatalf("before import the server presents %s, want the self-signed %s", got, selfSigned)
			}
			// A client that trusts only the test root refuses the self-signed one.
			verified := &tls.Config{RootCAs: pki.pool(), ServerName: "portal.example.test"}
			if _, err := handshake(t, addr, verified); err == nil {
				t.Fatal("a client trusting only the test root accepted the self-signed certificate")
			}

			if tc.mangle != nil {
				chain, keyPEM = tc.mangle(chain), tc.mangle(keyPEM)
			}
			if err := m.Import(chain, keyPEM); err != nil {
				t.Fatal(err)
			}

			// Same server, no restart: the next connection gets the chain and
			// a verifying client accepts it.
			st, err := handshake(t, addr, verified)
			if err != nil {
				t.Fatalf("verifying client refused the imported chain: %v", err)
			}
			if !st.PeerCertificates[0].Equal(leaf.cert) || len(st.PeerCertificates) != wantLen || !st.PeerCertificates[1].Equal(pki.inter.cert) {
				t.Fatalf("server presents %d certificates starting %s", len(st.PeerCertificates), st.PeerCertificates[0].Subject)
			}
			info := m.Info()
			if info.SelfSigned || info.ChainLength != wantLen || info.SHA256 != Fingerprint(leaf.cert.Raw) || info.Issuer != pki.inter.cert.Subject.String() {
				t.Errorf("info %+v", info)
			}

			// A restart serves the imported chain.
			m2, err := Open(dir, nil)
			if err != nil {
				t.Fatal(err)
			}
			addr2 := serve(t, m2.TLSConfig())
			if _, err := handshake(t, addr2, verified); err != nil {
				t.Fatalf("after reopen: %v", err)
			}
			if got := servedFingerprint(t, addr2); got != info.SHA256 {
				t.Errorf("after reopen the server presents %s, want %s", got, info.SHA256)
			}
		})
	}
}

func TestImportBadChangesNothing(t *testing.T) {
	pki := newPKI(t)
	leaf := pki.leaf(t, "portal.example.test", nil, nil)
	other := pki.leaf(t, "other.example.test", nil, nil)
	now := time.Now()
	expired := pki.leaf(t, "old.example.test", nil, func(c *x509.Certificate) {
		c.NotBefore, c.NotAfter = time.Date(2023, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(2024, 1, 2, 12, 0, 0, 0, time.UTC)
	})
	future := pki.leaf(t, "future.example.test", nil, func(c *x509.Certificate) { c.NotBefore = now.Add(24 * time.Hour) })
	clientOnly := pki.leaf(t, "client.example.test", nil, func(c *x509.Certificate) { c.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth} })
	weak := rsaKey(t, 1024)
	weakLeaf := pki.leaf(t, "weak.example.test", weak, nil)
	rsaOnlyEnc := rsaKey(t, 2048)
	encipherOnly := pki.leaf(t, "encipher.example.test", rsaOnlyEnc, func(c *x509.Certificate) { c.KeyUsage = x509.KeyUsageKeyEncipherment })
	noSAN := pki.leaf(t, "nosan.example.test", nil, func(c *x509.Certificate) { c.DNSNames = nil })
	// A renewed intermediate: same name, new key, so it did not sign leaf.
	renewed := issue(t, pki.inter.cert.Subject.CommonName, pki.root, true, nil, nil)
	notCA := pki.leaf(t, "notca.example.test", nil, nil)
	underNotCA := issue(t, "under.example.test", notCA, false, nil, nil)
	p224 := mustECDSA(t, elliptic.P224())
	p224Leaf := pki.leaf(t, "p224.example.test", p224, nil)
	edKey := mustEd25519(t)
	edLeaf := pki.leaf(t, "ed.example.test", edKey, nil)

	damaged := []byte(strings.Replace(string(pki.inter.pem), "\n", "\n!!", 2))
	cases := []struct {
		name      string
		cert, key []byte
		kind      error
		hint      string // part of the message that tells the admin what to do
	}{
		{"garbage PEM", []byte("-----BEGIN CERTIFICATE-----\n@@@ not base64 @@@\n-----END CERTIFICATE-----\n"), pkcs8PEM(t, leaf.key), ErrBadPEM, "copy each block whole"},
		{"damaged issuer block", cat(leaf.pem, damaged), pkcs8PEM(t, leaf.key), ErrBadPEM, "1 of 2 blocks"},
		{"plain text", []byte("hello"), pkcs8PEM(t, leaf.key), ErrNoCertificate, "BEGIN CERTIFICATE"},
		{"binary DER", leaf.cert.Raw, pkcs8PEM(t, leaf.key), ErrNoCertificate, "openssl x509 -inform der"},
		{"key in certificate field", pkcs8PEM(t, leaf.key), pkcs8PEM(t, leaf.key), ErrNoCertificate, "holds PRIVATE KEY"},
		{"unreadable certificate", []byte("-----BEGIN CERTIFICATE-----\naGVsbG8=\n-----END CERTIFICATE-----\n"), pkcs8PEM(t, leaf.key), ErrBadCertificate, "certificate 1 cannot be read"},
		{"no key", leaf.pem, nil, ErrNoKey, "BEGIN PRIVATE KEY"},
		{"certificate in key field", leaf.pem, leaf.pem, ErrNoKey, "holds CERTIFICATE"},
		{"mismatched key", leaf.pem, pkcs8PEM(t, other.key), ErrKeyMismatch, "the key is for a different certificate"},
		{"expired", expired.pem, pkcs8PEM(t, expired.key), ErrExpired, "certificate expired on 2024-01-02: import a current one"},
		{"not yet valid", future.pem, pkcs8PEM(t, future.key), ErrNotYetValid, "not valid before " + future.cert.NotBefore.UTC().Format("2006-01-02 15:04")},
		{"intermediate missing", cat(leaf.pem, pki.root.pem), pkcs8PEM(t, leaf.key), ErrChainOrder,
			"certificate 2 (CN=Portico Test Root) did not issue certificate 1 (CN=portal.example.test): list the server certificate first"},
		{"issuers first", cat(pki.root.pem, pki.inter.pem, leaf.pem), pkcs8PEM(t, leaf.key), ErrChainOrder, "the key belongs to certificate 3"},
		{"issuers swapped", cat(leaf.pem, pki.root.pem, pki.inter.pem), pkcs8PEM(t, leaf.key), ErrChainOrder, "certificate 2 (CN=Portico Test Root) did not issue"},
		{"renewed intermediate", cat(leaf.pem, renewed.pem), pkcs8PEM(t, leaf.key), ErrChainOrder, "certificate 2 (CN=Portico Test Intermediate) did not issue certificate 1"},
		{"issuer not a CA", cat(underNotCA.pem, notCA.pem), pkcs8PEM(t, underNotCA.key), ErrIssuerNotCA, "is not a CA certificate"},
		{"client auth only", clientOnly.pem, pkcs8PEM(t, clientOnly.key), ErrNotServerCert, "TLS Web Server Authentication"},
		{"no digital signature", encipherOnly.pem, pkcs1PEM(rsaOnlyEnc), ErrNotServerCert, "Digital Signature"},
		{"no SAN", noSAN.pem, pkcs8PEM(t, noSAN.key), ErrNoSubjectAltName, "Subject Alternative Names"},
		{"RSA 1024", weakLeaf.pem, pkcs1PEM(weak), ErrWeakKey, "only 1024 bits"},
		{"P-224", p224Leaf.pem, pkcs8PEM(t, p224), ErrBadKey, "use P-256 or P-384"},
		{"Ed25519", edLeaf.pem, pkcs8PEM(t, edKey), ErrBadKey, "not accepted by browsers"},
		{"encrypted PKCS#8", leaf.pem, []byte("-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----\n"), ErrBadKey, "openssl pkey"},
		{"encrypted legacy", leaf.pem, []byte("-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\nDEK-Info: AES-128-CBC,00000000000000000000000000000000\n\nAAAA\n-----END RSA PRIVATE KEY-----\n"), ErrBadKey, "password"},
		{"unreadable key", leaf.pem, []byte("-----BEGIN EC PRIVATE KEY-----\naGVsbG8=\n-----END EC PRIVATE KEY-----\n"), ErrBadKey, "export the key again"},
	}

	dir := &memStorage{}
	m, err := Open(dir, []string{"localhost"})
	if err != nil {
		t.Fatal(err)
	}
	addr := serve(t, m.TLSConfig())
	files := dir.snapshot()
	served := servedFingerprint(t, addr)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := m.Import(tc.cert, tc.key)
			if !errors.Is(err, tc.kind) {
				t.Fatalf("got %v, want kind %q", err, tc.kind)
			}
			if !strings.Contains(err.Error(), tc.hint) {
				t.Errorf("message %q does not contain %q", err, tc.hint)
			}
			if !sameFiles(files, dir.snapshot()) {
				t.Error("a refused import changed the files")
			}
			if got := servedFingerprint(t, addr); got != served || m.Info().SHA256 != served {
				t.Error("a refused import changed the served certificate")
			}
		})
	}
}

// failingStorage refuses to save.
type failingStorage struct{ Storage }

func (failingStorage) Save([]byte, []byte) error { return errors.New("disk full") }

func TestImportSaveFailureChangesNothing(t *testing.T) {
	dir := &memStorage{}
	if _, err := Open(dir, []string{"localhost"}); err != nil {
		t.Fatal(err)
	}
	m, err := Open(failingStorage{dir}, nil)
	if err != nil {
		t.Fatal(err)
	}
	addr := serve(t, m.TLSConfig())
	served := servedFingerprint(t, addr)
	pki := newPKI(t)
	leaf := pki.leaf(t, "portal.example.test", nil, nil)
	if err := m.Import(cat(leaf.pem, pki.inter.pem), pkcs8PEM(t, leaf.key)); err == nil || !strings.Contains(err.Error(), "disk full") {
		t.Fatalf("got %v, want the storage error", err)
	}
	if err := m.GenerateSelfSigned(nil); err == nil {
		t.Fatal("generation succeeded although saving failed")
	}
	if servedFingerprint(t, addr) != served {
		t.Error("an unsaved certificate is being served")
	}
}

func TestReload(t *testing.T) {
	dir := &memStorage{}
	m, err := Open(dir, []string{"localhost"})
	if err != nil {
		t.Fatal(err)
	}
	addr := serve(t, m.TLSConfig())
	// Another writer (e.g. a configuration import) replaces the files.
	other, err := Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := other.GenerateSelfSigned([]string{"replaced.example.test"}); err != nil {
		t.Fatal(err)
	}
	if servedFingerprint(t, addr) == other.Info().SHA256 {
		t.Fatal("served the new files before Reload")
	}
	if err := m.Reload(); err != nil {
		t.Fatal(err)
	}
	if got := servedFingerprint(t, addr); got != other.Info().SHA256 {
		t.Errorf("after Reload the server presents %s, want %s", got, other.Info().SHA256)
	}
	// Damaged files: Reload fails and the current certificate stays.
	cert, _, _ := dir.Load()
	if err := dir.Save(cert, []byte("junk")); err != nil {
		t.Fatal(err)
	}
	if err := m.Reload(); !errors.Is(err, ErrNoKey) {
		t.Errorf("reload of a damaged key: got %v, want ErrNoKey", err)
	}
	if got := servedFingerprint(t, addr); got != other.Info().SHA256 {
		t.Error("a failed Reload changed the served certificate")
	}
}

func TestTLSConfigPolicy(t *testing.T) {
	pki := newPKI(t)
	ecdsaMgr, err := Open(&memStorage{}, []string{"localhost"})
	if err != nil {
		t.Fatal(err)
	}
	rsaMgr, err := Open(&memStorage{}, []string{"localhost"})
	if err != nil {
		t.Fatal(err)
	}
	k := rsaKey(t, 2048)
	leaf := pki.leaf(t, "portal.example.test", k, nil)
	if err := rsaMgr.Import(cat(leaf.pem, pki.inter.pem), pkcs1PEM(k)); err != nil {
		t.Fatal(err)
	}
	servers := map[string]string{"ecdsa": serve(t, ecdsaMgr.TLSConfig()), "rsa": serve(t, rsaMgr.TLSConfig())}
	// Control servers with the same certificates that accept anything Go
	// can speak: a client refused by the gateway but accepted here was
	// refused because of the gateway's policy, not because of the client.
	permissive := func(m *Manager) *tls.Config {
		var all []uint16
		for _, s := range append(tls.CipherSuites(), tls.InsecureCipherSuites()...) {
			all = append(all, s.ID)
		}
		return &tls.Config{MinVersion: tls.VersionTLS10, CipherSuites: all, GetCertificate: m.GetCertificate}
	}
	controls := map[string]string{"ecdsa": serve(t, permissive(ecdsaMgr)), "rsa": serve(t, permissive(rsaMgr))}

	v := func(minV, maxV uint16, suites ...uint16) *tls.Config {
		return &tls.Config{MinVersion: minV, MaxVersion: maxV, CipherSuites: suites}
	}
	withCurves := func(c *tls.Config, curves ...tls.CurveID) *tls.Config { c.CurvePreferences = curves; return c }
	withALPN := func(c *tls.Config, protos ...string) *tls.Config { c.NextProtos = protos; return c }
	cases := []struct {
		name   string
		cert   string
		client *tls.Config
		ok     bool
		check  func(tls.ConnectionState) bool
	}{
		{"TLS 1.0", "ecdsa", v(tls.VersionTLS10, tls.VersionTLS10), false, nil},
		{"TLS 1.1", "ecdsa", v(tls.VersionTLS11, tls.VersionTLS11), false, nil},
		{"TLS 1.1 rsa", "rsa", v(tls.VersionTLS11, tls.VersionTLS11), false, nil},
		{"ECDHE-ECDSA CBC", "ecdsa", v(tls.VersionTLS12, tls.VersionTLS12, tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA), false, nil},
		{"ECDHE-ECDSA CBC SHA256", "ecdsa", v(tls.VersionTLS12, tls.VersionTLS12, tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256), false, nil},
		{"ECDHE-RSA CBC", "rsa", v(tls.VersionTLS12, tls.VersionTLS12, tls.TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA), false, nil},
		{"RSA key exchange GCM", "rsa", v(tls.VersionTLS12, tls.VersionTLS12, tls.TLS_RSA_WITH_AES_128_GCM_SHA256), false, nil},
		{"TLS 1.2 P-384 only", "ecdsa", withCurves(v(tls.VersionTLS12, tls.VersionTLS12), tls.CurveP384), false, nil},
		{"TLS 1.3 P-384 only", "ecdsa", withCurves(v(tls.VersionTLS13, tls.VersionTLS13), tls.CurveP384), false, nil},

		{"TLS 1.2 ECDHE-ECDSA AES-GCM", "ecdsa", v(tls.VersionTLS12, tls.VersionTLS12, tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256), true,
			func(s tls.ConnectionState) bool { return s.CipherSuite == tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256 }},
		{"TLS 1.2 ECDHE-ECDSA ChaCha20", "ecdsa", v(tls.VersionTLS12, tls.VersionTLS12, tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256), true,
			func(s tls.ConnectionState) bool {
				return s.CipherSuite == tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256
			}},
		{"TLS 1.2 ECDHE-RSA AES-256-GCM", "rsa", v(tls.VersionTLS12, tls.VersionTLS12, tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384), true,
			func(s tls.ConnectionState) bool { return s.CipherSuite == tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384 }},
		{"TLS 1.2 P-256", "ecdsa", withCurves(v(tls.VersionTLS12, tls.VersionTLS12), tls.CurveP256), true,
			func(s tls.ConnectionState) bool { return s.CurveID == tls.CurveP256 }},
		{"TLS 1.3", "ecdsa", v(tls.VersionTLS13, tls.VersionTLS13), true,
			func(s tls.ConnectionState) bool { return s.Version == tls.VersionTLS13 }},
		{"TLS 1.3 rsa", "rsa", v(tls.VersionTLS13, tls.VersionTLS13), true,
			func(s tls.ConnectionState) bool { return s.Version == tls.VersionTLS13 }},
		{"TLS 1.3 X25519", "ecdsa", withCurves(v(tls.VersionTLS13, tls.VersionTLS13), tls.X25519), true,
			func(s tls.ConnectionState) bool { return s.CurveID == tls.X25519 }},
		{"ALPN h2", "ecdsa", withALPN(v(0, 0), "h2", "http/1.1"), true,
			func(s tls.ConnectionState) bool { return s.NegotiatedProtocol == "h2" }},
		{"ALPN http/1.1", "ecdsa", withALPN(v(0, 0), "http/1.1"), true,
			func(s tls.ConnectionState) bool { return s.NegotiatedProtocol == "http/1.1" }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			st, err := handshake(t, servers[tc.cert], tc.client)
			if !tc.ok {
				if err == nil {
					t.Fatalf("gateway accepted %s with suite %s", tls.VersionName(st.Version), tls.CipherSuiteName(st.CipherSuite))
				}
				if _, err := handshake(t, controls[tc.cert], tc.client); err != nil {
					t.Fatalf("control server also refuses this client, so the test proves nothing: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("refused: %v", err)
			}
			if !tc.check(st) {
				t.Errorf("negotiated %s %s curve %v ALPN %q", tls.VersionName(st.Version), tls.CipherSuiteName(st.CipherSuite), st.CurveID, st.NegotiatedProtocol)
			}
		})
	}
}

// TestSwapDuringHandshakes runs handshakes while the certificate changes;
// with -race it checks the swap is safe for concurrent connections.
func TestSwapDuringHandshakes(t *testing.T) {
	m, err := Open(&memStorage{}, []string{"localhost"})
	if err != nil {
		t.Fatal(err)
	}
	addr := serve(t, m.TLSConfig())
	errs := make(chan error, 1)
	go func() {
		for i := 0; i < 4; i++ {
			if err := m.GenerateSelfSigned([]string{"localhost"}); err != nil {
				errs <- err
				return
			}
		}
		errs <- nil
	}()
	for i := 0; i < 20; i++ {
		st, err := handshake(t, addr, &tls.Config{})
		if err != nil {
			t.Fatal(err)
		}
		leaf := st.PeerCertificates[0]
		if err := leaf.CheckSignature(leaf.SignatureAlgorithm, leaf.RawTBSCertificate, leaf.Signature); err != nil {
			t.Fatalf("served certificate does not verify: %v", err)
		}
	}
	if err := <-errs; err != nil {
		t.Fatal(err)
	}
}

func TestFingerprintFormat(t *testing.T) {
	for _, der := range [][]byte{nil, []byte("x"), bytes.Repeat([]byte{0xff}, 1000)} {
		fp := Fingerprint(der)
		parts := strings.Split(fp, ":")
		if len(parts) != 32 {
			t.Fatalf("%q has %d parts", fp, len(parts))
		}
		for _, p := range parts {
			if len(p) != 2 || strings.ToUpper(p) != p {
				t.Fatalf("%q: part %q is not two upper-case hex digits", fp, p)
			}
		}
	}
	if Fingerprint([]byte("a")) == Fingerprint([]byte("b")) {
		t.Error("different input, same fingerprint")
	}
}

// TestImportOpenSSLFiles imports files the way admins make them, with the
// openssl command line, including its quirks (an EC PARAMETERS block
// before the key, traditional RSA keys, password-protected keys).
func TestImportOpenSSLFiles(t *testing.T) {
	openssl, err := exec.LookPath("openssl")
	if err != nil {
		t.Fatalf("openssl not found (install the Debian package openssl): %v", err)
	}
	work := t.TempDir()
	run := func(args ...string) {
		t.Helper()
		cmd := exec.Command(openssl, args...)
		cmd.Dir = work
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("openssl %v: %v\n%s", args, err, out)
		}
	}
	read := func(name string) []byte {
		t.Helper()
		b, err := os.ReadFile(filepath.Join(work, name))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	san := "subjectAltName=DNS:gw.example.test,IP:127.0.0.1"
	run("ecparam", "-name", "prime256v1", "-genkey", "-out", "ec.key")
	run("req", "-new", "-x509", "-key", "ec.key", "-out", "ec.crt", "-days", "30", "-subj", "/CN=gw.example.test", "-addext", san)
	run("genrsa", "-traditional", "-out", "rsa.key", "2048")
	run("req", "-new", "-x509", "-key", "rsa.key", "-out", "rsa.crt", "-days", "30", "-subj", "/CN=gw.example.test", "-addext", san)
	run("req", "-new", "-x509", "-key", "rsa.key", "-out", "client.crt", "-days", "30", "-subj", "/CN=client", "-addext", san, "-addext", "extendedKeyUsage=clientAuth")
	run("pkey", "-in", "ec.key", "-aes256", "-passout", "pass:secret", "-out", "ec-enc.key")
	if !bytes.Contains(read("ec.key"), []byte("EC PARAMETERS")) || !bytes.Contains(read("rsa.key"), []byte("RSA PRIVATE KEY")) {
		t.Fatal("openssl did not write the key formats this test is about")
	}

	dir := &memStorage{}
	m, err := Open(dir, []string{"localhost"})
	if err != nil {
		t.Fatal(err)
	}
	addr := serve(t, m.TLSConfig())
	for _, tc := range []struct{ cert, key string }{{"ec.crt", "ec.key"}, {"rsa.crt", "rsa.key"}} {
		if err := m.Import(read(tc.cert), read(tc.key)); err != nil {
			t.Fatalf("%s: %v", tc.cert, err)
		}
		out, err := exec.Command(openssl, "x509", "-noout", "-fingerprint", "-sha256", "-in", filepath.Join(work, tc.cert)).Output()
		if err != nil {
			t.Fatal(err)
		}
		_, want, _ := strings.Cut(strings.TrimSpace(string(out)), "=")
		if got := servedFingerprint(t, addr); got != want {
			t.Errorf("%s: server presents %s, openssl says %s", tc.cert, got, want)
		}
	}
	if err := m.Import(read("client.crt"), read("rsa.key")); !errors.Is(err, ErrNotServerCert) {
		t.Errorf("client certificate: got %v, want ErrNotServerCert", err)
	}
	if err := m.Import(read("ec.crt"), read("ec-enc.key")); !errors.Is(err, ErrBadKey) || !strings.Contains(err.Error(), "password") {
		t.Errorf("encrypted key: got %v, want ErrBadKey about the password", err)
	}
}
