package secret

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestSealRoundTripAndKeyFile(t *testing.T) {
	dir := t.TempDir()
	b, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	st, _ := os.Stat(filepath.Join(dir, KeyFile))
	if st.Mode().Perm() != 0o600 {
		t.Fatalf("key mode %v", st.Mode())
	}
	s, err := b.Seal("hunter2")
	if err != nil || !IsSealed(s) || strings.Contains(s, "hunter2") {
		t.Fatalf("sealed %q, %v", s, err)
	}
	again, _ := b.Seal(s)
	if again != s {
		t.Fatal("sealing is not idempotent")
	}
	b2, _ := Open(dir) // same key from disk
	if pt, err := b2.Unseal(s); err != nil || pt != "hunter2" {
		t.Fatalf("unseal %q, %v", pt, err)
	}
	other, _ := Open(t.TempDir())
	if _, err := other.Unseal(s); err == nil || !strings.Contains(err.Error(), "wrong secret key") {
		t.Fatalf("foreign key opened it: %v", err)
	}
	if _, err := b.Unseal("plain"); err == nil {
		t.Fatal("unsealed a plain value")
	}
	if _, err := b.Unseal(s[:len(s)-4]); err == nil {
		t.Fatal("unsealed a truncated value")
	}
}

func TestDamagedKeyFile(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, KeyFile), []byte("short"), 0o600)
	if _, err := Open(dir); err == nil || !strings.Contains(err.Error(), "damaged") {
		t.Fatalf("got %v", err)
	}
}
