package tlscert

import "errors"

// Storage persists one certificate chain and its key in PEM.
type Storage interface {
	// Load returns the stored PEM; an error wrapping ErrNotStored when
	// there is none.
	Load() (certPEM, keyPEM []byte, err error)
	// Save stores the PEM atomically: afterwards Load returns either the
	// old pair or the new one, never a mix.
	Save(certPEM, keyPEM []byte) error
}

// ErrNotStored tells Open to generate a certificate.
var ErrNotStored = errors.New("no certificate stored")
