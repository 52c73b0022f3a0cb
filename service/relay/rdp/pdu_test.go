package rdp

import (
	"bytes"
	"encoding/hex"
	"errors"
	"reflect"
	"strings"
	"testing"
)

func mustHex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		t.Fatalf("bad hex in test: %v", err)
	}
	return b
}

// The expected bytes are the encodings IronRDP's own encoder produces for
// the same values (its testsuite vectors), so passing means the browser
// and the gateway agree on every tag and length.
func TestMarshalMatchesIronRDP(t *testing.T) {
	deadbeef := []byte{0xDE, 0xAD, 0xBE, 0xFF}
	tests := []struct {
		name string
		pdu  *PDU
		der  string
	}{
		{
			"request",
			NewRequest(deadbeef, "destination", "proxy auth", "PCB"),
			"3032a00402020d3ea20d0c0b64657374696e6174696f6ea30c0c0a70726f78792061757468a5050c03504342a6060404deadbeff",
		},
		{
			"response",
			NewResponse("192.168.7.95", deadbeef, [][]byte{deadbeef, deadbeef, deadbeef}),
			"3034a00402020d3ea6060404deadbeffa7143012" + "0404deadbeff0404deadbeff0404deadbeff" + "a90e0c0c3139322e3136382e372e3935",
		},
		{"http error", NewHTTPError(500), "3015a00402020d3ea10d300ba003020101a104020201f4"},
		{"tls error", NewTLSError(48), "3014a00402020d3ea10c300aa003020101a303020130"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			want := mustHex(t, tt.der)
			got, err := tt.pdu.Marshal()
			if err != nil {
				t.Fatalf("Marshal: %v", err)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("Marshal =\n%x\nwant\n%x", got, want)
			}
			back, err := ParsePDU(want)
			if err != nil {
				t.Fatalf("ParsePDU: %v", err)
			}
			if !reflect.DeepEqual(back, tt.pdu) {
				t.Fatalf("ParsePDU = %+v, want %+v", back, tt.pdu)
			}
		})
	}
}

func TestPDURoundTrip(t *testing.T) {
	big := bytes.Repeat([]byte{0x5a}, 70000) // forces 3-byte DER lengths
	tests := []struct {
		name string
		pdu  *PDU
	}{
		{"minimal", &PDU{Version: Version}},
		{"version zero", &PDU{Version: 0}},
		{"huge version", &PDU{Version: 1<<64 - 1}},
		{"request unicode", NewRequest(BuildConnectionRequest("bob", ProtocolHybrid|ProtocolSSL), "höst.example:3389", "tïcket✓", "")},
		{"request with server_auth", &PDU{Version: Version, ProxyAuth: "t", ServerAuth: "s", X224: []byte{}}},
		{"response empty chain", NewResponse("[::1]:3389", []byte{1, 2, 3}, [][]byte{})},
		{"response big cert", NewResponse("10.0.0.1:3389", []byte{1}, [][]byte{big, {}, {0}})},
		{"wsa error", NewWSAError(WSAConnRefused)},
		{"negotiation error", NewNegotiationError([]byte{3, 0, 0, 19})},
		{"all error fields", &PDU{Version: Version, Error: &Err{Code: 0xffff, HTTPStatus: 0xffff, WSALastError: 0xffff, TLSAlert: 0xff}}},
		{"error code zero", &PDU{Version: Version, Error: &Err{}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			der, err := tt.pdu.Marshal()
			if err != nil {
				t.Fatalf("Marshal: %v", err)
			}
			got, err := ParsePDU(der)
			if err != nil {
				t.Fatalf("ParsePDU: %v", err)
			}
			if !reflect.DeepEqual(got, tt.pdu) {
				t.Fatalf("round trip = %+v, want %+v", got, tt.pdu)
			}
		})
	}
}

func TestParsePDURejects(t *testing.T) {
	tests := []struct{ name, der string }{
		{"empty", ""},
		{"not a sequence", "3100"},
		{"trailing byte", "3006a00402020d3e00"},
		{"no version", "3000"},
		{"negative version", "3005a003020180"},
		{"non-minimal version", "3006a0040202000d"},
		{"version not explicit", "300402020d3e"},
		{"fields out of order", "3012a00402020d3ea3030c0174a2050c03647374"},
		{"unknown tag 8", "300ba00402020d3ea8030c0178"},
		{"printable string instead of utf8", "300ba00402020d3ea303130174"},
		{"invalid utf8", "300ba00402020d3ea3030c01ff"},
		{"two values in explicit tag", "300ea00402020d3ea3060c01740c0175"},
		{"http status over 16 bits", "3016a00402020d3ea10e300ca003020101a1050203010000"},
		{"tls alert over 8 bits", "3015a00402020d3ea10d300ba003020101a304020201ff"},
		{"error without code", "300ca00402020d3ea1043002a100"},
		{"x224 not octet string", "300ca00402020d3ea604300200ff"},
		{"chain element not octet string", "300ea00402020d3ea7063004020100ff"},
		{"truncated", "3032a00402020d3ea20d0c0b64657374"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := mustHex(t, tt.der)
			p, err := ParsePDU(b)
			if err == nil {
				t.Fatalf("ParsePDU(%s) = %+v, want error", tt.der, p)
			}
			if !errors.Is(err, errMalformed) {
				t.Fatalf("error %v does not wrap errMalformed", err)
			}
		})
	}
}

func FuzzParsePDU(f *testing.F) {
	for _, p := range []*PDU{
		NewRequest(BuildConnectionRequest("u", ProtocolHybrid), "d:3389", "tok", "pcb"),
		NewResponse("127.0.0.1:3389", BuildConnectionConfirm(true, ProtocolHybrid), [][]byte{{1, 2}, {3}}),
		NewHTTPError(401), NewWSAError(WSATimedOut), NewTLSError(40), NewNegotiationError([]byte{3, 0}),
	} {
		b, err := p.Marshal()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte{0x30, 0x80})
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := ParsePDU(b)
		if err != nil {
			return
		}
		// Whatever parses must survive re-encoding unchanged, or the
		// gateway could answer something other than what it understood.
		der, err := p.Marshal()
		if err != nil {
			t.Fatalf("Marshal of parsed PDU: %v", err)
		}
		again, err := ParsePDU(der)
		if err != nil {
			t.Fatalf("reparse: %v", err)
		}
		if !reflect.DeepEqual(again, p) {
			t.Fatalf("reparse = %+v, want %+v", again, p)
		}
	})
}
