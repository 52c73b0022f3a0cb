package rdp

import (
	"bytes"
	"errors"
	"fmt"
)

// ErrNoRoutingToken means a Connection Request carries no routing token
// (no cookie at all, or only the "Cookie: mstshash=<user>" a client sends
// when its .rdp file has no loadbalanceinfo).
var ErrNoRoutingToken = errors.New("the RDP connection request carries no routing token (loadbalanceinfo)")

// maxRoutingToken caps the token; X.224 limits the whole header anyway.
const maxRoutingToken = 200

// SplitRoutingToken takes one whole TPKT-framed X.224 Connection Request
// (as ReadTPKT returns it) whose routingToken field ([MS-RDPBCGR]
// 2.2.1.1) carries a gateway token, and returns the token and the same
// request rebuilt without it, ready to forward to the host. A client puts
// the .rdp file's loadbalanceinfo there verbatim, ended by CR LF; the
// load-balancer form "Cookie: msts=<token>" is accepted too.
func SplitRoutingToken(b []byte) (token string, stripped []byte, err error) {
	v, err := x224Body(b, codeCR)
	if err != nil {
		return "", nil, err
	}
	// A routing token is text; the RDP_NEG_REQ that may follow starts with
	// type 0x01, so a request without token starts with that byte or is empty.
	if len(v) == 0 || v[0] == negTypeReq {
		return "", nil, ErrNoRoutingToken
	}
	i := bytes.Index(v, []byte("\r\n"))
	if i < 0 {
		return "", nil, fmt.Errorf("%w: routing token without CR LF", errBadX224)
	}
	line := v[:i]
	if bytes.HasPrefix(line, []byte("Cookie: mstshash=")) {
		return "", nil, ErrNoRoutingToken
	}
	line = bytes.TrimPrefix(line, []byte("Cookie: msts="))
	if len(line) == 0 || len(line) > maxRoutingToken {
		return "", nil, fmt.Errorf("%w: routing token of %d bytes", errBadX224, len(line))
	}
	stripped = frameX224(codeCR, v[i+2:])
	// What remains must be a well-formed request on its own.
	if _, err := ParseConnectionRequest(stripped); err != nil {
		return "", nil, err
	}
	return string(line), stripped, nil
}
