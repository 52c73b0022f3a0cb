package mfa

import (
	"strings"
	"testing"
	"time"
)

// TestTOTPRFC6238Vectors: the SHA-1 test vectors of RFC 6238 appendix B.
func TestTOTPRFC6238Vectors(t *testing.T) {
	key := []byte("12345678901234567890")
	for unix, want := range map[int64]string{59: "94287082", 1111111109: "07081804", 1111111111: "14050471",
		1234567890: "89005924", 2000000000: "69279037", 20000000000: "65353130"} {
		if got := HOTP(key, uint64(StepAt(time.Unix(unix, 0))), 8); got != want {
			t.Errorf("T=%d: %s, want %s", unix, got, want)
		}
	}
	// RFC 4226 appendix D, 6 digits.
	for i, want := range []string{"755224", "287082", "359152", "969429", "338314"} {
		if got := HOTP(key, uint64(i), 6); got != want {
			t.Errorf("HOTP(%d) = %s, want %s", i, got, want)
		}
	}
}

func TestTOTPVerifyReplayAndSkew(t *testing.T) {
	sec, err := NewSecret()
	if err != nil {
		t.Fatal(err)
	}
	now := time.Unix(1_800_000_000, 0)
	code, _ := Code(sec, now)
	step, ok := Verify(sec, code, now, 0)
	if !ok || step != StepAt(now) {
		t.Fatal("current code refused")
	}
	if _, ok := Verify(sec, code, now, step); ok {
		t.Fatal("the same code accepted twice in its time step")
	}
	prev, _ := Code(sec, now.Add(-Step))
	if _, ok := Verify(sec, prev, now, 0); !ok {
		t.Fatal("previous step's code refused (clock drift)")
	}
	if _, ok := Verify(sec, prev, now, step); ok {
		t.Fatal("an older code accepted after a newer one")
	}
	old, _ := Code(sec, now.Add(-3*Step))
	if _, ok := Verify(sec, old, now, 0); ok {
		t.Fatal("a code three steps old accepted")
	}
	for _, bad := range []string{"", "12345", "1234567", "abcdef"} {
		if _, ok := Verify(sec, bad, now, 0); ok {
			t.Fatalf("%q accepted", bad)
		}
	}
	if !strings.HasPrefix(URI("Portico", `OFFICE\alice`, sec), "otpauth://totp/Portico:OFFICE%5Calice?") {
		t.Fatalf("uri %s", URI("Portico", `OFFICE\alice`, sec))
	}
}

func TestTOTPRecoveryCodes(t *testing.T) {
	codes, hashes, err := NewRecoveryCodes()
	if err != nil || len(codes) != RecoveryCodes || len(hashes) != RecoveryCodes {
		t.Fatal(codes, err)
	}
	e := Enrolment{Recovery: hashes}
	for _, h := range hashes {
		for _, c := range codes {
			if h == c {
				t.Fatal("a code stored in clear")
			}
		}
	}
	if !IsRecoveryCode(codes[3]) || IsRecoveryCode("123456") {
		t.Fatal("recovery code shape")
	}
	if !e.UseRecovery(strings.ToLower(codes[3])) {
		t.Fatal("recovery code refused")
	}
	if e.UseRecovery(codes[3]) {
		t.Fatal("recovery code used twice")
	}
	if len(e.Recovery) != RecoveryCodes-1 || !e.UseRecovery(codes[0]) {
		t.Fatal("other codes lost")
	}
}
