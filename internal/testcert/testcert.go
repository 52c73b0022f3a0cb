// Package testcert gives tests a self-signed certificate made by the
// gateway's own tlscert package, kept in memory: a TLS test server's
// configuration, or the PEM pair for a peer such as HAProxy.
package testcert

import (
	"testing"

	"portico/service/tlscert"
)

// memory is a tlscert.Storage that keeps the pair in memory.
type memory struct{ cert, key []byte }

func (m *memory) Load() ([]byte, []byte, error) {
	if m.cert == nil {
		return nil, nil, tlscert.ErrNotStored
	}
	return m.cert, m.key, nil
}

func (m *memory) Save(cert, key []byte) error { m.cert, m.key = cert, key; return nil }

// New returns a certificate manager with a fresh self-signed certificate
// for hosts, and the certificate and key PEM it serves.
func New(tb testing.TB, hosts ...string) (m *tlscert.Manager, certPEM, keyPEM []byte) {
	tb.Helper()
	var st memory
	m, err := tlscert.Open(&st, hosts)
	if err != nil {
		tb.Fatalf("test certificate: %v", err)
	}
	return m, st.cert, st.key
}
