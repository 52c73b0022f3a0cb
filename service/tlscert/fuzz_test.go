package tlscert

import (
	"bytes"
	"testing"
)

// FuzzImport feeds arbitrary certificate and key text to Import. It must
// never panic; a refusal must be one of the admin-facing kinds and leave
// the stored and the served certificate as they were; an acceptance must
// leave storage and memory in agreement.
func FuzzImport(f *testing.F) {
	pki := newPKI(f)
	leaf := pki.leaf(f, "portal.example.test", nil, nil)
	rsaK := rsaKey(f, 2048)
	rsaLeaf := pki.leaf(f, "rsa.example.test", rsaK, nil)
	key := pkcs8PEM(f, leaf.key)
	f.Add(cat(leaf.pem, pki.inter.pem), key)
	f.Add(cat(pki.inter.pem, leaf.pem), key)
	f.Add(leaf.pem, pkcs8PEM(f, pki.inter.key))
	f.Add(rsaLeaf.pem, pkcs1PEM(rsaK))
	f.Add([]byte("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"), []byte("-----BEGIN PRIVATE KEY-----\nMIIB\n-----END PRIVATE KEY-----\n"))
	f.Add([]byte("-----BEGIN CERTIFICATE-----\n-----BEGIN CERTIFICATE-----\n"), []byte("-----BEGIN EC PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\n\n-----END EC PRIVATE KEY-----\n"))
	f.Add([]byte{}, []byte{})
	f.Add(leaf.cert.Raw, []byte{0x30, 0x82})

	st := &memStorage{}
	m, err := Open(st, []string{"localhost"})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, certPEM, keyPEM []byte) {
		oldCert, oldKey, _ := st.Load()
		served := m.Info().SHA256
		err := m.Import(certPEM, keyPEM)
		newCert, newKey, _ := st.Load()
		if err != nil {
			if !hasKind(err) {
				t.Fatalf("refusal %q has no kind", err)
			}
			if !bytes.Equal(oldCert, newCert) || !bytes.Equal(oldKey, newKey) || m.Info().SHA256 != served {
				t.Fatalf("refused import (%v) changed the certificate", err)
			}
			return
		}
		// Stored and served agree: what is stored loads as what is served.
		c, _, err := parsePair(newCert, newKey)
		if err != nil {
			t.Fatalf("accepted import stored an unloadable pair: %v", err)
		}
		if Fingerprint(c.Leaf.Raw) != m.Info().SHA256 {
			t.Fatal("stored and served certificates differ")
		}
	})
}
