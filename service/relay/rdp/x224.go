package rdp

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// Security protocol flags of RDP_NEG_REQ / RDP_NEG_RSP ([MS-RDPBCGR] 2.2.1.1.1).
const (
	ProtocolRDP      uint32 = 0 // standard RDP security: no TLS, refused by the gateway
	ProtocolSSL      uint32 = 0x01
	ProtocolHybrid   uint32 = 0x02 // CredSSP (NLA)
	ProtocolRDSTLS   uint32 = 0x04
	ProtocolHybridEx uint32 = 0x08
	ProtocolRDSAAD   uint32 = 0x10
)

// Failure codes of RDP_NEG_FAILURE ([MS-RDPBCGR] 2.2.1.2.2).
const (
	FailureSSLRequired         uint32 = 1
	FailureSSLNotAllowed       uint32 = 2
	FailureSSLCertNotOnServer  uint32 = 3
	FailureInconsistentFlags   uint32 = 4
	FailureHybridRequired      uint32 = 5
	FailureSSLWithUserAuthReqd uint32 = 6
)

const (
	tpktHeaderLen = 4
	// x224FixedLen is TPKT header + LI + code + DST-REF + SRC-REF + class.
	x224FixedLen = tpktHeaderLen + 7
	negLen       = 8

	codeCR = 0xE0 // X.224 Connection Request
	codeCC = 0xD0 // X.224 Connection Confirm

	negTypeReq     = 0x01
	negTypeRsp     = 0x02
	negTypeFailure = 0x03
	negTypeCorrel  = 0x06
	correlLen      = 36
)

// errBadX224 is wrapped by every X.224/TPKT parsing failure.
var errBadX224 = errors.New("malformed X.224 PDU")

// ReadTPKT reads exactly one TPKT packet (RFC 1006) from r and returns it,
// header included. A packet longer than max bytes is refused before its body
// is read, so a hostile server cannot make the gateway buffer much.
func ReadTPKT(r io.Reader, max int) ([]byte, error) {
	var hdr [tpktHeaderLen]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return nil, fmt.Errorf("read TPKT header: %w", err)
	}
	if hdr[0] != 3 {
		return nil, fmt.Errorf("%w: TPKT version %d, want 3", errBadX224, hdr[0])
	}
	n := int(binary.BigEndian.Uint16(hdr[2:]))
	if n < tpktHeaderLen+3 {
		return nil, fmt.Errorf("%w: TPKT length %d too short", errBadX224, n)
	}
	if n > max {
		return nil, fmt.Errorf("%w: TPKT length %d exceeds limit %d", errBadX224, n, max)
	}
	pkt := make([]byte, n)
	copy(pkt, hdr[:])
	if _, err := io.ReadFull(r, pkt[tpktHeaderLen:]); err != nil {
		return nil, fmt.Errorf("read TPKT body (%d bytes): %w", n, err)
	}
	return pkt, nil
}

// Confirm is what the gateway needs from an X.224 Connection Confirm.
type Confirm struct {
	// Negotiated is false when the confirm carries no RDP_NEG_RSP or
	// RDP_NEG_FAILURE: a legacy server that only speaks standard security.
	Negotiated bool
	// Failed is true for RDP_NEG_FAILURE; FailureCode then holds its code.
	Failed      bool
	FailureCode uint32
	// Protocol is the selected ProtocolXxx value (0 when Failed or not Negotiated).
	Protocol uint32
	// Flags are the RDP_NEG_RSP flags (extended client data, GFX, ...).
	Flags uint8
}

// UsesTLS reports whether the server selected a protocol that starts with a
// TLS handshake, the only kind RDCleanPath can carry.
func (c Confirm) UsesTLS() bool { return c.Negotiated && !c.Failed && c.Protocol != ProtocolRDP }

// x224Body checks the TPKT and X.224 fixed header of a whole packet b and
// returns the variable part after the class byte.
func x224Body(b []byte, code byte) ([]byte, error) {
	if len(b) < x224FixedLen {
		return nil, fmt.Errorf("%w: %d bytes, too short", errBadX224, len(b))
	}
	if b[0] != 3 || int(binary.BigEndian.Uint16(b[2:])) != len(b) {
		return nil, fmt.Errorf("%w: TPKT header does not frame the %d bytes", errBadX224, len(b))
	}
	if int(b[4]) != len(b)-tpktHeaderLen-1 {
		return nil, fmt.Errorf("%w: X.224 length indicator %d does not match packet", errBadX224, b[4])
	}
	if b[5] != code {
		return nil, fmt.Errorf("%w: X.224 code %#x, want %#x", errBadX224, b[5], code)
	}
	return b[x224FixedLen:], nil
}

// ParseConnectionConfirm parses one whole TPKT-framed X.224 Connection
// Confirm, as returned by ReadTPKT.
func ParseConnectionConfirm(b []byte) (Confirm, error) {
	v, err := x224Body(b, codeCC)
	if err != nil {
		return Confirm{}, err
	}
	switch len(v) {
	case 0:
		return Confirm{}, nil
	case negLen:
	default:
		return Confirm{}, fmt.Errorf("%w: %d bytes of negotiation data, want 0 or %d", errBadX224, len(v), negLen)
	}
	if binary.LittleEndian.Uint16(v[2:]) != negLen {
		return Confirm{}, fmt.Errorf("%w: negotiation length %d, want %d", errBadX224, binary.LittleEndian.Uint16(v[2:]), negLen)
	}
	val := binary.LittleEndian.Uint32(v[4:])
	switch v[0] {
	case negTypeRsp:
		return Confirm{Negotiated: true, Protocol: val, Flags: v[1]}, nil
	case negTypeFailure:
		return Confirm{Negotiated: true, Failed: true, FailureCode: val}, nil
	}
	return Confirm{}, fmt.Errorf("%w: negotiation type %#x in confirm", errBadX224, v[0])
}

// Request is what the gateway checks in the client's Connection Request.
type Request struct {
	// Cookie is the routing token or "Cookie: mstshash=..." line, without CRLF.
	Cookie string
	// Negotiated is true when an RDP_NEG_REQ is present.
	Negotiated bool
	// Protocols is the requested ProtocolXxx set.
	Protocols uint32
}

// ParseConnectionRequest parses one whole TPKT-framed X.224 Connection
// Request. The gateway forwards the client's bytes unchanged, so this only
// makes sure they are exactly one well-formed request and nothing else.
func ParseConnectionRequest(b []byte) (Request, error) {
	v, err := x224Body(b, codeCR)
	if err != nil {
		return Request{}, err
	}
	var req Request
	if bytes.HasPrefix(v, []byte("Cookie:")) {
		i := bytes.Index(v, []byte("\r\n"))
		if i < 0 {
			return Request{}, fmt.Errorf("%w: cookie without CRLF", errBadX224)
		}
		req.Cookie, v = string(v[:i]), v[i+2:]
	}
	if len(v) == 0 {
		return req, nil
	}
	if len(v) < negLen || v[0] != negTypeReq || binary.LittleEndian.Uint16(v[2:]) != negLen {
		return Request{}, fmt.Errorf("%w: bad RDP_NEG_REQ", errBadX224)
	}
	req.Negotiated, req.Protocols = true, binary.LittleEndian.Uint32(v[4:])
	v = v[negLen:]
	// An optional RDP_NEG_CORRELATION_INFO may follow; nothing else may.
	if len(v) == 0 || (len(v) == correlLen && v[0] == negTypeCorrel && binary.LittleEndian.Uint16(v[2:]) == correlLen) {
		return req, nil
	}
	return Request{}, fmt.Errorf("%w: %d unexpected bytes after RDP_NEG_REQ", errBadX224, len(v))
}

// BuildConnectionRequest builds a TPKT-framed X.224 Connection Request with
// an RDP_NEG_REQ for protocols, and a "Cookie: mstshash=" line when user is
// set, as a client does. X.224 limits the header to 254 bytes, so user must
// be shorter than about 220 bytes; longer names give a packet parsers reject.
func BuildConnectionRequest(user string, protocols uint32) []byte {
	var v []byte
	if user != "" {
		v = append(v, "Cookie: mstshash="+user+"\r\n"...)
	}
	v = append(v, negTypeReq, 0)
	v = binary.LittleEndian.AppendUint16(v, negLen)
	v = binary.LittleEndian.AppendUint32(v, protocols)
	return frameX224(codeCR, v)
}

// BuildConnectionConfirm builds a TPKT-framed X.224 Connection Confirm with
// an RDP_NEG_RSP selecting protocol, as a server does. With negotiated false
// it carries no negotiation data at all, like a legacy server.
func BuildConnectionConfirm(negotiated bool, protocol uint32) []byte {
	var v []byte
	if negotiated {
		v = append(v, negTypeRsp, 0)
		v = binary.LittleEndian.AppendUint16(v, negLen)
		v = binary.LittleEndian.AppendUint32(v, protocol)
	}
	return frameX224(codeCC, v)
}

func frameX224(code byte, v []byte) []byte {
	n := x224FixedLen + len(v)
	b := make([]byte, 0, n)
	b = append(b, 3, 0)
	b = binary.BigEndian.AppendUint16(b, uint16(n))
	b = append(b, byte(n-tpktHeaderLen-1), code, 0, 0, 0, 0, 0)
	return append(b, v...)
}
