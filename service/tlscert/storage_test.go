package tlscert

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestDirRecoversInterruptedSave recreates, with real files, each state a
// crash inside Dir.Save can leave, and checks Load yields a whole pair:
// the old one before the commit point, the new one after it.
func TestDirRecoversInterruptedSave(t *testing.T) {
	pki := newPKI(t)
	oldLeaf := pki.leaf(t, "old.example.test", nil, nil)
	newLeaf := pki.leaf(t, "new.example.test", nil, nil)
	oldCert, oldKey := oldLeaf.pem, pkcs8PEM(t, oldLeaf.key)
	newCert, newKey := newLeaf.pem, pkcs8PEM(t, newLeaf.key)

	cases := []struct {
		name     string
		files    map[string][]byte // written over a saved old pair
		wantCert []byte
	}{
		{"crash while writing the key", map[string][]byte{keyNew: newKey[:10]}, oldCert},
		{"crash while writing the certificate", map[string][]byte{keyNew: newKey, certNew: newCert[:10]}, oldCert},
		{"crash before the renames", map[string][]byte{keyNew: newKey, certNew: newCert}, oldCert},
		{"crash after the key rename", map[string][]byte{KeyFile: newKey, certNew: newCert}, newCert},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			if err := Dir(dir).Save(oldCert, oldKey); err != nil {
				t.Fatal(err)
			}
			for name, data := range tc.files {
				if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
					t.Fatal(err)
				}
			}
			m, err := OpenDir(dir, nil)
			if err != nil {
				t.Fatalf("open after crash: %v", err)
			}
			if got, want := m.Info().SHA256, Fingerprint(readCerts(t, filepath.Join(dir, CertFile))[0].Raw); got != want {
				t.Errorf("serves %s but the file holds %s", got, want)
			}
			files := snapshot(t, dir)
			if files[CertFile] != string(tc.wantCert) || len(files) != 2 {
				t.Errorf("after recovery: %d files, cert.pem is the expected one: %v", len(files), files[CertFile] == string(tc.wantCert))
			}
		})
	}
}

func TestDirHalfPairIsNotOverwritten(t *testing.T) {
	for _, keep := range []string{CertFile, KeyFile} {
		t.Run(keep, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, keep), []byte("precious"), 0o600); err != nil {
				t.Fatal(err)
			}
			_, err := OpenDir(dir, nil)
			if err == nil || errors.Is(err, ErrNotStored) || !strings.Contains(err.Error(), "remove both files") {
				t.Fatalf("got %v, want an error that explains the missing file", err)
			}
			if files := snapshot(t, dir); len(files) != 1 || files[keep] != "precious" {
				t.Errorf("files changed: %v", files)
			}
		})
	}
}

func TestDirSaveReplacesExistingFiles(t *testing.T) {
	dir := t.TempDir()
	d := Dir(dir)
	if _, _, err := d.Load(); !errors.Is(err, ErrNotStored) {
		t.Fatalf("empty dir: got %v, want ErrNotStored", err)
	}
	// A key file that an admin left world-readable gets 0600 on save.
	if err := os.WriteFile(filepath.Join(dir, KeyFile), []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, v := range []string{"one", "two"} {
		if err := d.Save([]byte("cert "+v), []byte("key "+v)); err != nil {
			t.Fatal(err)
		}
		c, k, err := d.Load()
		if err != nil || string(c) != "cert "+v || string(k) != "key "+v {
			t.Fatalf("load after save %s: %q %q %v", v, c, k, err)
		}
	}
	fi, err := os.Stat(filepath.Join(dir, KeyFile))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("key mode %v (%v), want 0600", fi.Mode().Perm(), err)
	}
}
