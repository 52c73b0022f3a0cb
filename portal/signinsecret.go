package portal

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"fmt"
	"sync"
)

// signInSecrets keeps the password of each portal sign-in, for RDP
// resources whose credential mode is "portal", sealed with a key that
// exists only in this process's memory. Nothing of it is written: after a
// restart (or once the sign-in ends or expires) the password is gone and
// such resources cannot sign in until the user signs in to the portal
// again.
type signInSecrets struct {
	aead cipher.AEAD
	mu   sync.Mutex
	m    map[string][]byte // portal session ID → nonce || sealed password
}

func newSignInSecrets() *signInSecrets {
	key := make([]byte, 32)
	rand.Read(key)
	block, err := aes.NewCipher(key)
	if err != nil {
		panic(fmt.Sprintf("aes with a 32-byte key: %v", err)) // cannot happen
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		panic(fmt.Sprintf("gcm: %v", err)) // cannot happen
	}
	clear(key)
	return &signInSecrets{aead: aead, m: map[string][]byte{}}
}

// put seals password for the portal session id.
func (v *signInSecrets) put(id, password string) {
	nonce := make([]byte, v.aead.NonceSize(), v.aead.NonceSize()+len(password)+v.aead.Overhead())
	rand.Read(nonce)
	plain := []byte(password)
	sealed := v.aead.Seal(nonce, nonce, plain, []byte(id))
	clear(plain)
	v.mu.Lock()
	v.m[id] = sealed
	v.mu.Unlock()
}

// open returns the password kept for id.
func (v *signInSecrets) open(id string) (string, bool) {
	v.mu.Lock()
	sealed, ok := v.m[id]
	v.mu.Unlock()
	n := v.aead.NonceSize()
	if !ok || len(sealed) < n {
		return "", false
	}
	plain, err := v.aead.Open(nil, sealed[:n], sealed[n:], []byte(id))
	if err != nil {
		return "", false
	}
	pw := string(plain)
	clear(plain)
	return pw, true
}

// drop forgets the password of id.
func (v *signInSecrets) drop(id string) {
	v.mu.Lock()
	if b, ok := v.m[id]; ok {
		clear(b)
		delete(v.m, id)
	}
	v.mu.Unlock()
}
