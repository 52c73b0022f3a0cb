package nla

import (
	"bytes"
	"testing"
)

// Seeds live in testdata/fuzz; CI runs them as normal tests.

func FuzzParseChallenge(f *testing.F) {
	f.Fuzz(func(t *testing.T, b []byte) {
		ch, err := ParseChallenge(b)
		if err != nil {
			return
		}
		c := &Client{Creds: Credentials{User: "u", Password: "p"}}
		c.Negotiate()
		auth, _, err := c.Authenticate(b)
		if err == nil && len(auth) < 72 {
			t.Fatalf("authenticate of %d bytes for challenge %+v", len(auth), ch)
		}
	})
}

func FuzzParseTSRequest(f *testing.F) {
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := ParseTSRequest(b)
		if err != nil {
			return
		}
		if _, err := r.Marshal(); err != nil {
			t.Fatalf("a parsed TSRequest does not encode: %v", err)
		}
		ReadDER(bytes.NewReader(b), maxTSRequest)
	})
}

func FuzzUnseal(f *testing.F) {
	f.Fuzz(func(t *testing.T, b []byte) {
		s := newSession(bytes.Repeat([]byte{0x55}, 16))
		s.Unseal(b)
	})
}
