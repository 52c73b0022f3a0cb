// Package mfa owns the second sign-in factor: time-based one-time codes
// (RFC 6238 over RFC 4226, HMAC-SHA-1, 6 digits, 30-second steps — what
// every authenticator app speaks), their enrolment records, and the ten
// single-use recovery codes (stored as hashes). It decides nothing about
// who must use it (config.TOTPSettings) and stores nothing itself (the
// store keeps Enrolment records); throttling is the sign-in guard's.
package mfa

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base32"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"net/url"
	"strings"
	"time"
)

// TOTP parameters.
const (
	// Step is the time step of a code.
	Step = 30 * time.Second
	// Digits is the length of a code.
	Digits = 6
	// Skew is how many steps before and after now are accepted (clock drift
	// of the phone).
	Skew = 1
	// SecretBytes is the length of a new key (160 bits, RFC 4226's advice).
	SecretBytes = 20
	// RecoveryCodes is how many recovery codes an enrolment gets.
	RecoveryCodes = 10
)

// Enrolment is one user's second factor as stored.
type Enrolment struct {
	// Secret is the TOTP key (base32), sealed at rest by the caller.
	Secret string `json:"secret"`
	// Created is when it was confirmed.
	Created time.Time `json:"created"`
	// LastStep is the time step of the last accepted code: a code of that
	// step or an earlier one is refused (replay).
	LastStep int64 `json:"lastStep"`
	// Recovery holds the SHA-256 of each unused recovery code; a used one
	// is removed.
	Recovery []string `json:"recovery"`
}

var b32 = base32.StdEncoding.WithPadding(base32.NoPadding)

// NewSecret returns a fresh base32 key.
func NewSecret() (string, error) {
	b := make([]byte, SecretBytes)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("generate TOTP key: %w", err)
	}
	return b32.EncodeToString(b), nil
}

// decodeSecret accepts the key as apps show it: any case, spaces, padding.
func decodeSecret(s string) ([]byte, error) {
	s = strings.ToUpper(strings.NewReplacer(" ", "", "-", "", "=", "").Replace(s))
	return b32.DecodeString(s)
}

// HOTP is RFC 4226's value for key and counter, with digits digits.
func HOTP(key []byte, counter uint64, digits int) string {
	var msg [8]byte
	binary.BigEndian.PutUint64(msg[:], counter)
	m := hmac.New(sha1.New, key)
	m.Write(msg[:])
	sum := m.Sum(nil)
	off := sum[len(sum)-1] & 0x0f
	v := binary.BigEndian.Uint32(sum[off:off+4]) & 0x7fffffff
	mod := uint32(1)
	for range digits {
		mod *= 10
	}
	return fmt.Sprintf("%0*d", digits, v%mod)
}

// StepAt is the RFC 6238 time step of t.
func StepAt(t time.Time) int64 { return t.Unix() / int64(Step/time.Second) }

// Code is the code for secret at time t (tests and enrolment checks).
func Code(secret string, t time.Time) (string, error) {
	key, err := decodeSecret(secret)
	if err != nil {
		return "", fmt.Errorf("TOTP key: %w", err)
	}
	return HOTP(key, uint64(StepAt(t)), Digits), nil
}

// Verify checks code against secret at now, within Skew steps, and refuses
// any step at or before lastStep (a code already used, or an older one).
// It returns the step that matched.
func Verify(secret, code string, now time.Time, lastStep int64) (int64, bool) {
	code = strings.ReplaceAll(strings.TrimSpace(code), " ", "")
	key, err := decodeSecret(secret)
	if err != nil || len(code) != Digits {
		return 0, false
	}
	cur := StepAt(now)
	matched, found := int64(0), 0
	for s := cur - Skew; s <= cur+Skew; s++ {
		// Compare every candidate, so time does not say which step matched.
		if subtle.ConstantTimeCompare([]byte(HOTP(key, uint64(s), Digits)), []byte(code)) == 1 && s > lastStep {
			matched, found = s, 1
		}
	}
	return matched, found == 1
}

// URI is the otpauth:// URI authenticator apps read from the QR code.
func URI(issuer, account, secret string) string {
	label := url.PathEscape(issuer + ":" + account)
	q := url.Values{"secret": {secret}, "issuer": {issuer}, "algorithm": {"SHA1"}, "digits": {fmt.Sprint(Digits)}, "period": {"30"}}
	return "otpauth://totp/" + label + "?" + q.Encode()
}

// recoveryAlphabet has no look-alikes (0/O, 1/I/L).
const recoveryAlphabet = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"

// NewRecoveryCodes returns RecoveryCodes fresh codes (XXXXX-XXXXX, about
// 49 bits each) and their hashes for the Enrolment.
func NewRecoveryCodes() (codes, hashes []string, err error) {
	for range RecoveryCodes {
		b := make([]byte, 10)
		if _, err := rand.Read(b); err != nil {
			return nil, nil, fmt.Errorf("generate recovery codes: %w", err)
		}
		var s strings.Builder
		for i, c := range b {
			if i == 5 {
				s.WriteByte('-')
			}
			s.WriteByte(recoveryAlphabet[int(c)%len(recoveryAlphabet)])
		}
		codes = append(codes, s.String())
		hashes = append(hashes, HashRecovery(s.String()))
	}
	return codes, hashes, nil
}

// HashRecovery is the stored form of a recovery code. The codes are random
// and long, so a plain SHA-256 suffices (no guessing dictionary exists).
func HashRecovery(code string) string {
	c := strings.ToUpper(strings.NewReplacer(" ", "", "-", "").Replace(strings.TrimSpace(code)))
	sum := sha256.Sum256([]byte("portico-recovery\x00" + c))
	return hex.EncodeToString(sum[:])
}

// IsRecoveryCode reports whether typed looks like a recovery code rather
// than a TOTP code.
func IsRecoveryCode(typed string) bool {
	return len(strings.NewReplacer(" ", "", "-", "").Replace(strings.TrimSpace(typed))) == 10
}

// UseRecovery removes the recovery code typed from e, reporting whether it
// was there (each code works once).
func (e *Enrolment) UseRecovery(typed string) bool {
	h := HashRecovery(typed)
	for i, r := range e.Recovery {
		if subtle.ConstantTimeCompare([]byte(r), []byte(h)) == 1 {
			e.Recovery = append(e.Recovery[:i:i], e.Recovery[i+1:]...)
			return true
		}
	}
	return false
}
