package tlscert

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
)

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

// File names inside a Dir.
const (
	CertFile = "cert.pem"
	KeyFile  = "key.pem"
)

// Temporary names used while saving. They are fixed (not random) because
// Load must recognise them to finish or undo a save cut short by a crash.
const (
	certNew = ".cert.pem.new"
	keyNew  = ".key.pem.new"
)

// Dir is a Storage in a directory: cert.pem (mode 0644) and key.pem
// (mode 0600). Only one process may use a Dir at a time.
//
// A save writes and fsyncs both new files under temporary names, then
// renames key.pem and cert.pem into place, in that order. The key rename is
// the commit point: a crash before it leaves the old pair, a crash after it
// leaves a complete new cert file that Load renames into place.
type Dir string

func (d Dir) path(name string) string { return filepath.Join(string(d), name) }

// Load reads cert.pem and key.pem, first finishing or undoing a save that
// was interrupted.
func (d Dir) Load() ([]byte, []byte, error) {
	if err := d.recover(); err != nil {
		return nil, nil, err
	}
	cert, certErr := os.ReadFile(d.path(CertFile))
	key, keyErr := os.ReadFile(d.path(KeyFile))
	certMissing, keyMissing := errors.Is(certErr, fs.ErrNotExist), errors.Is(keyErr, fs.ErrNotExist)
	switch {
	case certMissing && keyMissing:
		return nil, nil, fmt.Errorf("%s: %w", string(d), ErrNotStored)
	case certMissing || keyMissing:
		// Never treat half a pair as "nothing stored": generating would
		// overwrite the file the admin still has.
		have, lost := CertFile, KeyFile
		if certMissing {
			have, lost = KeyFile, CertFile
		}
		return nil, nil, fmt.Errorf("%s has %s but not %s: restore %s, or remove both files to get a new self-signed certificate", string(d), have, lost, lost)
	case certErr != nil:
		return nil, nil, fmt.Errorf("read certificate: %w", certErr)
	case keyErr != nil:
		return nil, nil, fmt.Errorf("read key: %w", keyErr)
	}
	return cert, key, nil
}

// recover brings the directory back to a plain pair after a crash in Save.
func (d Dir) recover() error {
	certTmp, keyTmp := exists(d.path(certNew)), exists(d.path(keyNew))
	if certTmp && !keyTmp {
		// The key was renamed (committed); the cert file is complete
		// because it was fsynced before that rename.
		if err := os.Rename(d.path(certNew), d.path(CertFile)); err != nil {
			return fmt.Errorf("finish interrupted certificate save: %w", err)
		}
		return syncDir(string(d))
	}
	// Not committed: drop the leftovers. The cert file goes first so that
	// a crash in between cannot leave the "committed" state above.
	for _, name := range []string{certNew, keyNew} {
		if err := os.Remove(d.path(name)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("remove leftover %s: %w", name, err)
		}
	}
	return nil
}

// Save replaces cert.pem and key.pem atomically (see Dir).
func (d Dir) Save(certPEM, keyPEM []byte) (err error) {
	if err := os.MkdirAll(string(d), 0o700); err != nil {
		return fmt.Errorf("create %s: %w", string(d), err)
	}
	if err := d.recover(); err != nil {
		return err
	}
	committed := false
	defer func() {
		if err != nil && !committed {
			os.Remove(d.path(certNew))
			os.Remove(d.path(keyNew))
		}
	}()
	// The key temp file is written first: see recover for why the order
	// of these files matters.
	if err := writeSynced(d.path(keyNew), keyPEM, 0o600); err != nil {
		return err
	}
	if err := writeSynced(d.path(certNew), certPEM, 0o644); err != nil {
		return err
	}
	if err := syncDir(string(d)); err != nil {
		return err
	}
	if err := os.Rename(d.path(keyNew), d.path(KeyFile)); err != nil {
		return fmt.Errorf("replace %s: %w", KeyFile, err)
	}
	committed = true
	if err := os.Rename(d.path(certNew), d.path(CertFile)); err != nil {
		return fmt.Errorf("replace %s (the next start completes it): %w", CertFile, err)
	}
	return syncDir(string(d))
}

func writeSynced(path string, data []byte, perm os.FileMode) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		return fmt.Errorf("create %s: %w", path, err)
	}
	// Chmod because the umask may have narrowed or the platform ignored perm.
	if err := f.Chmod(perm); err != nil && runtime.GOOS != "windows" {
		f.Close()
		return fmt.Errorf("chmod %s: %w", path, err)
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("sync %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("close %s: %w", path, err)
	}
	return nil
}

// syncDir makes renames in dir durable. Windows cannot fsync a directory
// (and its renames are journaled by NTFS), so it is skipped there.
func syncDir(dir string) error {
	if runtime.GOOS == "windows" {
		return nil
	}
	f, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("open %s: %w", dir, err)
	}
	defer f.Close()
	if err := f.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	return nil
}

func exists(path string) bool {
	_, err := os.Lstat(path)
	return err == nil
}
