package rdp

import (
	"bytes"
	"errors"
	"testing"
)

// withToken builds a Connection Request as a client does for an .rdp file
// with loadbalanceinfo: the token line, then the RDP_NEG_REQ.
func withToken(line string, protocols uint32) []byte {
	neg := BuildConnectionRequest("", protocols)[x224FixedLen:]
	return frameX224(codeCR, append([]byte(line+"\r\n"), neg...))
}

func TestSplitRoutingToken(t *testing.T) {
	bare := BuildConnectionRequest("", ProtocolSSL|ProtocolHybrid)
	for _, tc := range []struct {
		name string
		in   []byte
		tok  string
	}{
		{"loadbalanceinfo", withToken("tk_AbC-123", ProtocolSSL|ProtocolHybrid), "tk_AbC-123"},
		{"msts cookie", withToken("Cookie: msts=tk_AbC-123", ProtocolSSL|ProtocolHybrid), "tk_AbC-123"},
	} {
		tok, out, err := SplitRoutingToken(tc.in)
		if err != nil || tok != tc.tok {
			t.Fatalf("%s: token %q, %v", tc.name, tok, err)
		}
		if !bytes.Equal(out, bare) {
			t.Fatalf("%s: stripped request\n%x, want\n%x", tc.name, out, bare)
		}
	}
	// A token and nothing else (a client that negotiates nothing).
	tok, out, err := SplitRoutingToken(frameX224(codeCR, []byte("tk\r\n")))
	if err != nil || tok != "tk" || len(out) != x224FixedLen {
		t.Fatalf("token only: %q %x %v", tok, out, err)
	}
}

func TestSplitRoutingTokenRejects(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   []byte
		want error
	}{
		{"no cookie", BuildConnectionRequest("", ProtocolSSL), ErrNoRoutingToken},
		{"user cookie", BuildConnectionRequest("alice", ProtocolSSL), ErrNoRoutingToken},
		{"no CRLF", frameX224(codeCR, []byte("tk")), errBadX224},
		{"empty msts", withToken("Cookie: msts=", ProtocolSSL), errBadX224},
		{"junk after token", frameX224(codeCR, []byte("tk\r\nxyz")), errBadX224},
		{"confirm, not request", BuildConnectionConfirm(true, ProtocolSSL), errBadX224},
		{"short", []byte{3, 0, 0, 4}, errBadX224},
	} {
		if _, _, err := SplitRoutingToken(tc.in); !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
		}
	}
}

func FuzzSplitRoutingToken(f *testing.F) {
	f.Add(withToken("tk_AbC-123", ProtocolSSL|ProtocolHybrid))
	f.Add(withToken("Cookie: msts=x", ProtocolHybrid))
	f.Add(BuildConnectionRequest("alice", ProtocolSSL))
	f.Add(frameX224(codeCR, []byte("t\r\n\x06\x00\x24\x00")))
	f.Fuzz(func(t *testing.T, b []byte) {
		tok, out, err := SplitRoutingToken(b)
		if err != nil {
			return
		}
		if tok == "" || bytes.Contains([]byte(tok), []byte("\r\n")) {
			t.Fatalf("token %q", tok)
		}
		if _, err := ParseConnectionRequest(out); err != nil {
			t.Fatalf("stripped request does not parse: %v", err)
		}
		if len(out) >= len(b) {
			t.Fatalf("stripped request not shorter: %d >= %d", len(out), len(b))
		}
	})
}
