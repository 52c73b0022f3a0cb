// Package secret seals credentials that the gateway holds for hosts
// (passwords, private keys) so they are encrypted at rest in the store. The
// key lives in its own file in the data directory (secret.key, 0600), not in
// the bbolt file, so a copy of the database alone reveals nothing.
package secret

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// KeyFile is the key's file name in the data directory.
const KeyFile = "secret.key"

const prefix = "sealed:v1:"

// Box seals and opens secrets with AES-256-GCM.
type Box struct {
	aead cipher.AEAD
	// macKey is derived from the key for MAC, never used to encrypt.
	macKey []byte
}

// Open loads the key from dataDir, creating it on first use.
func Open(dataDir string) (*Box, error) {
	path := filepath.Join(dataDir, KeyFile)
	key, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		key = make([]byte, 32)
		if _, err := rand.Read(key); err != nil {
			return nil, fmt.Errorf("generate secret key: %w", err)
		}
		if err := writeNew(path, key); err != nil {
			return nil, err
		}
	} else if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	if len(key) != 32 {
		return nil, fmt.Errorf("%s is damaged (%d bytes, want 32): restore it from backup", path, len(key))
	}
	return New(key)
}

// New makes a Box from a 32-byte key.
func New(key []byte) (*Box, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("secret key: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("secret key: %w", err)
	}
	derive := hmac.New(sha256.New, key)
	derive.Write([]byte("portico mac key v1"))
	return &Box{aead: aead, macKey: derive.Sum(nil)}, nil
}

func writeNew(path string, data []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("create %s: %w", path, err)
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("sync %s: %w", path, err)
	}
	return f.Close()
}

// IsSealed reports whether s is a sealed value.
func IsSealed(s string) bool { return strings.HasPrefix(s, prefix) }

// Seal encrypts plaintext; "" stays "" and an already sealed value is
// returned unchanged, so sealing is idempotent.
func (b *Box) Seal(plaintext string) (string, error) {
	if plaintext == "" || IsSealed(plaintext) {
		return plaintext, nil
	}
	nonce := make([]byte, b.aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return "", fmt.Errorf("seal: %w", err)
	}
	out := b.aead.Seal(nonce, nonce, []byte(plaintext), []byte(prefix))
	return prefix + base64.RawStdEncoding.EncodeToString(out), nil
}

// Unseal decrypts a sealed value; "" stays "".
func (b *Box) Unseal(sealed string) (string, error) {
	if sealed == "" {
		return "", nil
	}
	if !IsSealed(sealed) {
		return "", errors.New("unseal: value is not sealed")
	}
	raw, err := base64.RawStdEncoding.DecodeString(sealed[len(prefix):])
	if err != nil || len(raw) < b.aead.NonceSize() {
		return "", errors.New("unseal: damaged value")
	}
	n := b.aead.NonceSize()
	pt, err := b.aead.Open(nil, raw[:n], raw[n:], []byte(prefix))
	if err != nil {
		return "", errors.New("unseal: wrong secret key or damaged value (was secret.key replaced?)")
	}
	return string(pt), nil
}

// MAC returns an HMAC-SHA256 of msg for purpose (e.g. "device-cookie"),
// keyed by a key derived from the secret key, for values the gateway
// hands out and must recognise later without storing them.
func (b *Box) MAC(purpose string, msg []byte) []byte {
	m := hmac.New(sha256.New, b.macKey)
	m.Write([]byte(purpose))
	m.Write([]byte{0})
	m.Write(msg)
	return m.Sum(nil)
}
