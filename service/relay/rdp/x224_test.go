package rdp

import (
	"bytes"
	"errors"
	"io"
	"testing"
)

func TestReadTPKT(t *testing.T) {
	confirm := BuildConnectionConfirm(true, ProtocolHybrid)
	tests := []struct {
		name    string
		in      []byte
		max     int
		want    []byte
		wantErr error
	}{
		{"one packet", confirm, 1024, confirm, nil},
		{"stops at packet end", append(append([]byte{}, confirm...), 0x16, 3, 3), 1024, confirm, nil},
		{"exactly max", confirm, len(confirm), confirm, nil},
		{"over max", confirm, len(confirm) - 1, nil, errBadX224},
		{"bad version", append([]byte{2}, confirm[1:]...), 1024, nil, errBadX224},
		{"length below minimum", []byte{3, 0, 0, 4}, 1024, nil, errBadX224},
		{"truncated header", []byte{3, 0}, 1024, nil, io.ErrUnexpectedEOF},
		{"truncated body", confirm[:10], 1024, nil, io.ErrUnexpectedEOF},
		{"empty", nil, 1024, nil, io.EOF},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ReadTPKT(bytes.NewReader(tt.in), tt.max)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("ReadTPKT err = %v, want %v", err, tt.wantErr)
				}
				return
			}
			if err != nil || !bytes.Equal(got, tt.want) {
				t.Fatalf("ReadTPKT = %x, %v; want %x", got, err, tt.want)
			}
		})
	}
}

func TestReadTPKTDoesNotBufferPastLimit(t *testing.T) {
	// A header announcing 65535 bytes must be refused after 4 bytes, not
	// after reading (or waiting for) the whole body.
	r := &countingReader{r: io.MultiReader(bytes.NewReader([]byte{3, 0, 0xff, 0xff}), zeros{})}
	if _, err := ReadTPKT(r, 1024); !errors.Is(err, errBadX224) {
		t.Fatalf("err = %v, want errBadX224", err)
	}
	if r.n != 4 {
		t.Fatalf("read %d bytes, want 4", r.n)
	}
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) { clear(p); return len(p), nil }

type countingReader struct {
	r io.Reader
	n int
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += n
	return n, err
}

// failureConfirm is an RDP_NEG_FAILURE confirm laid out byte by byte from
// [MS-RDPBCGR] 2.2.1.2, independently of the builder under test.
func failureConfirm(code byte) []byte {
	return []byte{
		3, 0, 0, 19, // TPKT, length 19
		14, 0xD0, 0, 0, 0x12, 0x34, 0, // LI, CC, DST-REF, SRC-REF, class
		0x03, 0, 8, 0, code, 0, 0, 0, // RDP_NEG_FAILURE
	}
}

func TestParseConnectionConfirm(t *testing.T) {
	tests := []struct {
		name string
		in   []byte
		want Confirm
		tls  bool
	}{
		{"hybrid", BuildConnectionConfirm(true, ProtocolHybrid), Confirm{Negotiated: true, Protocol: ProtocolHybrid}, true},
		{"ssl", BuildConnectionConfirm(true, ProtocolSSL), Confirm{Negotiated: true, Protocol: ProtocolSSL}, true},
		{"hybrid ex", BuildConnectionConfirm(true, ProtocolHybridEx), Confirm{Negotiated: true, Protocol: ProtocolHybridEx}, true},
		{"standard security selected", BuildConnectionConfirm(true, ProtocolRDP), Confirm{Negotiated: true}, false},
		{"legacy, no negotiation", BuildConnectionConfirm(false, 0), Confirm{}, false},
		{"failure hybrid required", failureConfirm(5), Confirm{Negotiated: true, Failed: true, FailureCode: FailureHybridRequired}, false},
		{"flags kept", []byte{3, 0, 0, 19, 14, 0xD0, 0, 0, 0, 0, 0, 0x02, 0x1f, 8, 0, 2, 0, 0, 0}, Confirm{Negotiated: true, Protocol: ProtocolHybrid, Flags: 0x1f}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseConnectionConfirm(tt.in)
			if err != nil {
				t.Fatalf("ParseConnectionConfirm: %v", err)
			}
			if got != tt.want {
				t.Fatalf("got %+v, want %+v", got, tt.want)
			}
			if got.UsesTLS() != tt.tls {
				t.Fatalf("UsesTLS = %v, want %v", got.UsesTLS(), tt.tls)
			}
		})
	}
}

func TestParseConnectionConfirmRejects(t *testing.T) {
	good := BuildConnectionConfirm(true, ProtocolHybrid)
	mod := func(f func(b []byte) []byte) []byte { return f(append([]byte{}, good...)) }
	tests := []struct {
		name string
		in   []byte
	}{
		{"too short", good[:8]},
		{"tpkt length mismatch", mod(func(b []byte) []byte { b[3]++; return b })},
		{"length indicator mismatch", mod(func(b []byte) []byte { b[4]--; return b })},
		{"connection request code", mod(func(b []byte) []byte { b[5] = 0xE0; return b })},
		{"request type in confirm", mod(func(b []byte) []byte { b[11] = 0x01; return b })},
		{"bad neg length", mod(func(b []byte) []byte { b[13] = 9; return b })},
		{"partial neg data", []byte{3, 0, 0, 14, 9, 0xD0, 0, 0, 0, 0, 0, 2, 0, 8}},
		{"trailing bytes", []byte{3, 0, 0, 20, 15, 0xD0, 0, 0, 0, 0, 0, 2, 0, 8, 0, 2, 0, 0, 0, 0}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if c, err := ParseConnectionConfirm(tt.in); !errors.Is(err, errBadX224) {
				t.Fatalf("ParseConnectionConfirm(%x) = %+v, %v; want errBadX224", tt.in, c, err)
			}
		})
	}
}

func TestParseConnectionRequest(t *testing.T) {
	correlation := append([]byte{0x06, 0, 36, 0}, make([]byte, 32)...)
	withCorrelation := BuildConnectionRequest("", ProtocolHybrid)
	withCorrelation = append(withCorrelation, correlation...)
	withCorrelation[3] += 36
	withCorrelation[4] += 36

	tests := []struct {
		name string
		in   []byte
		want Request
		ok   bool
	}{
		{"ironrdp style", BuildConnectionRequest("alice", ProtocolHybrid|ProtocolSSL|ProtocolHybridEx),
			Request{Cookie: "Cookie: mstshash=alice", Negotiated: true, Protocols: ProtocolHybrid | ProtocolSSL | ProtocolHybridEx}, true},
		{"no cookie, rdp only", BuildConnectionRequest("", ProtocolRDP), Request{Negotiated: true}, true},
		{"correlation info", withCorrelation, Request{Negotiated: true, Protocols: ProtocolHybrid}, true},
		{"bare legacy request", []byte{3, 0, 0, 11, 6, 0xE0, 0, 0, 0, 0, 0}, Request{}, true},
		{"confirm is not a request", BuildConnectionConfirm(true, ProtocolHybrid), Request{}, false},
		{"cookie without crlf", []byte{3, 0, 0, 18, 13, 0xE0, 0, 0, 0, 0, 0, 'C', 'o', 'o', 'k', 'i', 'e', ':'}, Request{}, false},
		{"junk after request", append(BuildConnectionRequest("", ProtocolSSL), 0x16), Request{}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseConnectionRequest(tt.in)
			if !tt.ok {
				if !errors.Is(err, errBadX224) {
					t.Fatalf("ParseConnectionRequest = %+v, %v; want errBadX224", got, err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("ParseConnectionRequest = %+v, %v; want %+v", got, err, tt.want)
			}
		})
	}
}

func FuzzReadConfirm(f *testing.F) {
	f.Add(BuildConnectionConfirm(true, ProtocolHybrid), 1024)
	f.Add(BuildConnectionConfirm(false, 0), 1024)
	f.Add(failureConfirm(5), 1024)
	f.Add([]byte{3, 0, 0xff, 0xff}, 70000)
	f.Fuzz(func(t *testing.T, b []byte, max int) {
		pkt, err := ReadTPKT(bytes.NewReader(b), max)
		if err != nil {
			return
		}
		if len(pkt) > max || len(pkt) > len(b) || !bytes.Equal(pkt, b[:len(pkt)]) {
			t.Fatalf("ReadTPKT returned %d bytes not a prefix within max %d", len(pkt), max)
		}
		c, err := ParseConnectionConfirm(pkt)
		if err != nil {
			return
		}
		if c.Failed && c.UsesTLS() {
			t.Fatalf("failed confirm claims TLS: %+v", c)
		}
	})
}

func FuzzParseConnectionRequest(f *testing.F) {
	f.Add(BuildConnectionRequest("alice", ProtocolHybrid|ProtocolSSL))
	f.Add(BuildConnectionRequest("", 0))
	f.Add([]byte{3, 0, 0, 11, 6, 0xE0, 0, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := ParseConnectionRequest(b)
		if err != nil {
			return
		}
		if int(b[2])<<8|int(b[3]) != len(b) {
			t.Fatalf("accepted %x whose TPKT length does not frame it", b)
		}
		if !r.Negotiated && r.Protocols != 0 {
			t.Fatalf("protocols without RDP_NEG_REQ: %+v", r)
		}
	})
}
