// Package rdp is the gateway's part of an RDP session from the browser. It
// owns two things:
//
//   - the RDCleanPath handshake IronRDP's web client (npm ironrdp-wasm) uses
//     to reach a host through a WebSocket proxy: the DER codec of
//     RDCleanPathPdu (pdu.go), the X.224/TPKT structures it needs (x224.go),
//     and Accept (accept.go), which authorizes the request, connects to the
//     host, performs the X.224 exchange and the TLS handshake, and builds
//     the answer for the browser;
//   - the filter on the plaintext RDP stream that follows (filter.go,
//     mcs.go, cliprdr.go): it reads the MCS channel join, enforces the
//     session's clipboard directions on the CLIPRDR channel and the
//     keyboard layout the page asked for (keyboard.go).
//
// It also reads the routing token a native client's .rdp file carries in its
// X.224 Connection Request (routing.go).
//
// It must not touch the WebSocket itself, the byte relay around the filter
// or ticket storage: those belong to the callers, which also decide the
// policy the filter enforces. The target host always comes from the
// Authorizer, never from the browser.
package rdp

import (
	"errors"
	"fmt"
	"unicode/utf8"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
)

// Version is the RDCleanPath version IronRDP speaks (BASE_VERSION 3389 + 1).
const Version uint64 = 3390

// Error codes carried in Err.Code.
const (
	// CodeGeneral is any failure other than RDP negotiation; the optional
	// HTTP, WSA and TLS fields say more.
	CodeGeneral uint16 = 1
	// CodeNegotiation means the RDP server refused the X.224 negotiation;
	// the PDU then carries the server's Connection Confirm.
	CodeNegotiation uint16 = 2
)

// WSA (Winsock) error numbers the web client knows how to describe.
const (
	WSAConnAborted  uint16 = 10053
	WSAConnReset    uint16 = 10054
	WSATimedOut     uint16 = 10060
	WSAConnRefused  uint16 = 10061
	WSANetUnreach   uint16 = 10051
	WSAHostUnreach  uint16 = 10065
	WSAHostNotFound uint16 = 11001
)

// Err is the RDCleanPathErr structure. Optional fields use 0 for "absent":
// no valid HTTP status or WSA error is 0, and TLS alert 0 (close_notify) is
// never a failure reason.
type Err struct {
	Code         uint16 // CodeGeneral or CodeNegotiation
	HTTPStatus   uint16 // [1], optional
	WSALastError uint16 // [2], optional
	TLSAlert     uint8  // [3], optional
}

// Error describes e in the same terms as IronRDP's Display, for logs.
func (e *Err) Error() string {
	s := fmt.Sprintf("RDCleanPath error code %d", e.Code)
	if e.HTTPStatus != 0 {
		s += fmt.Sprintf(" [HTTP %d]", e.HTTPStatus)
	}
	if e.WSALastError != 0 {
		s += fmt.Sprintf(" [WSA %d]", e.WSALastError)
	}
	if e.TLSAlert != 0 {
		s += fmt.Sprintf(" [TLS alert %d]", e.TLSAlert)
	}
	return s
}

// PDU is RDCleanPathPdu. Empty strings and nil slices are encoded as absent
// optional fields (the protocol gives an empty string no meaning).
type PDU struct {
	Version           uint64   // [0]
	Error             *Err     // [1] proxy → client
	Destination       string   // [2] client → proxy; never used for routing here
	ProxyAuth         string   // [3] client → proxy: the launch ticket
	ServerAuth        string   // [4] unused by IronRDP
	PreconnectionBlob string   // [5] client → proxy: preconnection blob
	X224              []byte   // [6] Connection Request or Confirm, TPKT framed
	ServerCertChain   [][]byte // [7] proxy → client: DER certificates, leaf first
	ServerAddr        string   // [9] proxy → client: resolved server address
}

// Context tags of the fields; 8 (ocsp_response) is reserved and unused.
const (
	tagVersion = iota
	tagError
	tagDestination
	tagProxyAuth
	tagServerAuth
	tagPCB
	tagX224
	tagCertChain
	_
	tagServerAddr
)

func explicit(n uint8) cbasn1.Tag { return cbasn1.Tag(n).ContextSpecific().Constructed() }

// NewRequest builds the client's first message, as the browser sends it.
func NewRequest(x224Request []byte, destination, token, pcb string) *PDU {
	return &PDU{Version: Version, Destination: destination, ProxyAuth: token, PreconnectionBlob: pcb, X224: x224Request}
}

// NewResponse builds the success answer: the server's Connection Confirm,
// its certificate chain (DER, leaf first) and the address actually reached.
func NewResponse(serverAddr string, x224Confirm []byte, chain [][]byte) *PDU {
	return &PDU{Version: Version, X224: x224Confirm, ServerCertChain: chain, ServerAddr: serverAddr}
}

// NewHTTPError builds a general error carrying an HTTP status (401, 403, ...).
func NewHTTPError(status uint16) *PDU {
	return &PDU{Version: Version, Error: &Err{Code: CodeGeneral, HTTPStatus: status}}
}

// NewWSAError builds a general error carrying a Winsock error number.
func NewWSAError(code uint16) *PDU {
	return &PDU{Version: Version, Error: &Err{Code: CodeGeneral, WSALastError: code}}
}

// AlertBadCertificate is the TLS alert number (bad_certificate) reported
// when the gateway itself rejects the host's certificate, so the page can
// tell "the certificate changed" apart from alerts the host sent.
const AlertBadCertificate = 42

// NewTLSError builds a general error carrying the TLS alert the server sent.
func NewTLSError(alert uint8) *PDU {
	return &PDU{Version: Version, Error: &Err{Code: CodeGeneral, TLSAlert: alert}}
}

// NewNegotiationError builds the negotiation error, with the server's
// Connection Confirm attached so the client can show the failure code.
func NewNegotiationError(x224Confirm []byte) *PDU {
	return &PDU{Version: Version, Error: &Err{Code: CodeNegotiation}, X224: x224Confirm}
}

// Marshal encodes p as DER, with the explicit context tags of IronRDP's
// definition.
func (p *PDU) Marshal() ([]byte, error) {
	var b cryptobyte.Builder
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddASN1(explicit(tagVersion), func(b *cryptobyte.Builder) { b.AddASN1Uint64(p.Version) })
		if e := p.Error; e != nil {
			b.AddASN1(explicit(tagError), func(b *cryptobyte.Builder) {
				b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
					b.AddASN1(explicit(0), func(b *cryptobyte.Builder) { b.AddASN1Uint64(uint64(e.Code)) })
					addOptUint(b, 1, uint64(e.HTTPStatus))
					addOptUint(b, 2, uint64(e.WSALastError))
					addOptUint(b, 3, uint64(e.TLSAlert))
				})
			})
		}
		addOptString(b, tagDestination, p.Destination)
		addOptString(b, tagProxyAuth, p.ProxyAuth)
		addOptString(b, tagServerAuth, p.ServerAuth)
		addOptString(b, tagPCB, p.PreconnectionBlob)
		if p.X224 != nil {
			b.AddASN1(explicit(tagX224), func(b *cryptobyte.Builder) { b.AddASN1OctetString(p.X224) })
		}
		if p.ServerCertChain != nil {
			b.AddASN1(explicit(tagCertChain), func(b *cryptobyte.Builder) {
				b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
					for _, c := range p.ServerCertChain {
						b.AddASN1OctetString(c)
					}
				})
			})
		}
		addOptString(b, tagServerAddr, p.ServerAddr)
	})
	out, err := b.Bytes()
	if err != nil {
		return nil, fmt.Errorf("marshal RDCleanPath PDU: %w", err)
	}
	return out, nil
}

func addOptUint(b *cryptobyte.Builder, tag uint8, v uint64) {
	if v != 0 {
		b.AddASN1(explicit(tag), func(b *cryptobyte.Builder) { b.AddASN1Uint64(v) })
	}
}

func addOptString(b *cryptobyte.Builder, tag uint8, s string) {
	if s == "" {
		return
	}
	b.AddASN1(explicit(tag), func(b *cryptobyte.Builder) {
		b.AddASN1(cbasn1.UTF8String, func(b *cryptobyte.Builder) { b.AddBytes([]byte(s)) })
	})
}

// errMalformed is wrapped by every ParsePDU failure.
var errMalformed = errors.New("malformed RDCleanPath PDU")

// ParsePDU decodes one DER RDCleanPathPdu that fills b exactly. Fields must
// appear in tag order; unknown tags and trailing bytes are rejected, as
// IronRDP's decoder does.
func ParsePDU(b []byte) (*PDU, error) {
	in := cryptobyte.String(b)
	var seq cryptobyte.String
	if !in.ReadASN1(&seq, cbasn1.SEQUENCE) || !in.Empty() {
		return nil, fmt.Errorf("%w: not a single DER SEQUENCE", errMalformed)
	}
	p := &PDU{}
	var field cryptobyte.String
	if !seq.ReadASN1(&field, explicit(tagVersion)) || !field.ReadASN1Integer(&p.Version) || !field.Empty() {
		return nil, fmt.Errorf("%w: bad version", errMalformed)
	}
	var present bool
	if !seq.ReadOptionalASN1(&field, &present, explicit(tagError)) {
		return nil, fmt.Errorf("%w: bad error field", errMalformed)
	}
	if present {
		e, err := parseErr(field)
		if err != nil {
			return nil, err
		}
		p.Error = e
	}
	for _, f := range []struct {
		tag uint8
		dst *string
	}{
		{tagDestination, &p.Destination},
		{tagProxyAuth, &p.ProxyAuth},
		{tagServerAuth, &p.ServerAuth},
		{tagPCB, &p.PreconnectionBlob},
	} {
		if err := readOptString(&seq, f.tag, f.dst); err != nil {
			return nil, err
		}
	}
	if !seq.ReadOptionalASN1(&field, &present, explicit(tagX224)) {
		return nil, fmt.Errorf("%w: bad x224 field", errMalformed)
	}
	if present {
		var os cryptobyte.String
		if !field.ReadASN1(&os, cbasn1.OCTET_STRING) || !field.Empty() {
			return nil, fmt.Errorf("%w: bad x224 octet string", errMalformed)
		}
		p.X224 = append([]byte{}, os...)
	}
	if !seq.ReadOptionalASN1(&field, &present, explicit(tagCertChain)) {
		return nil, fmt.Errorf("%w: bad certificate chain field", errMalformed)
	}
	if present {
		var list cryptobyte.String
		if !field.ReadASN1(&list, cbasn1.SEQUENCE) || !field.Empty() {
			return nil, fmt.Errorf("%w: bad certificate chain", errMalformed)
		}
		p.ServerCertChain = [][]byte{}
		for !list.Empty() {
			var c cryptobyte.String
			if !list.ReadASN1(&c, cbasn1.OCTET_STRING) {
				return nil, fmt.Errorf("%w: bad certificate in chain", errMalformed)
			}
			p.ServerCertChain = append(p.ServerCertChain, append([]byte{}, c...))
		}
	}
	if err := readOptString(&seq, tagServerAddr, &p.ServerAddr); err != nil {
		return nil, err
	}
	if !seq.Empty() {
		return nil, fmt.Errorf("%w: unexpected field", errMalformed)
	}
	return p, nil
}

func parseErr(field cryptobyte.String) (*Err, error) {
	var seq, f cryptobyte.String
	if !field.ReadASN1(&seq, cbasn1.SEQUENCE) || !field.Empty() {
		return nil, fmt.Errorf("%w: error is not a SEQUENCE", errMalformed)
	}
	e := &Err{}
	var code uint64
	if !seq.ReadASN1(&f, explicit(0)) || !f.ReadASN1Integer(&code) || !f.Empty() || code > 0xffff {
		return nil, fmt.Errorf("%w: bad error code", errMalformed)
	}
	e.Code = uint16(code)
	for _, o := range []struct {
		tag uint8
		max uint64
		set func(uint64)
	}{
		{1, 0xffff, func(v uint64) { e.HTTPStatus = uint16(v) }},
		{2, 0xffff, func(v uint64) { e.WSALastError = uint16(v) }},
		{3, 0xff, func(v uint64) { e.TLSAlert = uint8(v) }},
	} {
		var present bool
		if !seq.ReadOptionalASN1(&f, &present, explicit(o.tag)) {
			return nil, fmt.Errorf("%w: bad error field [%d]", errMalformed, o.tag)
		}
		if !present {
			continue
		}
		var v uint64
		if !f.ReadASN1Integer(&v) || !f.Empty() || v > o.max {
			return nil, fmt.Errorf("%w: bad error field [%d]", errMalformed, o.tag)
		}
		o.set(v)
	}
	if !seq.Empty() {
		return nil, fmt.Errorf("%w: unexpected error field", errMalformed)
	}
	return e, nil
}

func readOptString(seq *cryptobyte.String, tag uint8, dst *string) error {
	var field, s cryptobyte.String
	var present bool
	if !seq.ReadOptionalASN1(&field, &present, explicit(tag)) {
		return fmt.Errorf("%w: bad field [%d]", errMalformed, tag)
	}
	if !present {
		return nil
	}
	if !field.ReadASN1(&s, cbasn1.UTF8String) || !field.Empty() || !utf8.Valid(s) {
		return fmt.Errorf("%w: field [%d] is not a UTF8String", errMalformed, tag)
	}
	*dst = string(s)
	return nil
}
