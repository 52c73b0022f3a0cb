package rdp

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
)

// MCS and GCC structures of the Basic Settings Exchange ([MS-RDPBCGR]
// 2.2.1.3 and 2.2.1.4) and the MCS domain PDUs that carry channel data.
// Only what channel policy needs is parsed; everything else is carried
// over byte for byte.

// errBadMCS is wrapped by every MCS/GCC parsing failure.
var errBadMCS = errors.New("malformed MCS PDU")

const (
	// x224DataLen is the X.224 Data TPDU header (LI=2, DT, EOT) after TPKT.
	x224DataLen = 3
	// mcsOffset is where the MCS PDU starts in a TPKT record.
	mcsOffset = tpktHeaderLen + x224DataLen

	// maxConnectPDU caps the Connect Initial / Response the filter buffers;
	// real ones are well under 2 KiB.
	maxConnectPDU = 16 << 10

	// Domain MCS PDU types (T.125), in the top six bits of the first byte.
	mcsChannelJoinReq   = 14
	mcsChannelJoinConf  = 15
	mcsSendDataRequest  = 25
	mcsSendDataIndicate = 26

	// mcsUserIDBase is added to PER-encoded user IDs (T.125 UserId).
	mcsUserIDBase = 1001

	// Client and server data block types.
	csNet  = 0xC003
	csCore = 0xC001
	// keyboardLayoutAt is the offset of keyboardLayout in TS_UD_CS_CORE:
	// header, version, desktop width and height, colour depth, SAS sequence.
	keyboardLayoutAt = 16
	scSecurity       = 0x0C02
	scNet            = 0x0C03
	channelDefs      = 12 // bytes per CHANNEL_DEF

	// CHANNEL_DEF options that let the server compress a channel, which
	// the filter could not read.
	channelOptionCompressRDP = 0x00800000
	channelOptionCompress    = 0x00400000
)

// t124Identifier is the GCC Connect Data prefix: key object 0.0.20.124.0.1.
var t124Identifier = []byte{0x00, 0x05, 0x00, 0x14, 0x7C, 0x00, 0x01}

// readBERLen reads a BER definite length at b[0]; width is its encoded size.
func readBERLen(b []byte) (n, width int, err error) {
	if len(b) < 1 {
		return 0, 0, fmt.Errorf("%w: BER length missing", errBadMCS)
	}
	if b[0] < 0x80 {
		return int(b[0]), 1, nil
	}
	k := int(b[0] & 0x7F)
	if k == 0 || k > 2 || len(b) < 1+k {
		return 0, 0, fmt.Errorf("%w: unsupported BER length form %#x", errBadMCS, b[0])
	}
	for _, c := range b[1 : 1+k] {
		n = n<<8 | int(c)
	}
	return n, 1 + k, nil
}

// appendBERLen encodes n in at least width bytes (the width it had), or
// the smallest form that holds it.
func appendBERLen(b []byte, n, width int) []byte {
	switch {
	case n < 0x80 && width <= 1:
		return append(b, byte(n))
	case n < 0x100 && width <= 2:
		return append(b, 0x81, byte(n))
	default:
		return append(b, 0x82, byte(n>>8), byte(n))
	}
}

// readPERLen reads an aligned-PER length determinant (one or two bytes).
func readPERLen(b []byte) (n, width int, err error) {
	if len(b) < 1 {
		return 0, 0, fmt.Errorf("%w: PER length missing", errBadMCS)
	}
	switch {
	case b[0]&0x80 == 0:
		return int(b[0]), 1, nil
	case b[0]&0xC0 == 0x80 && len(b) >= 2:
		return int(b[0]&0x3F)<<8 | int(b[1]), 2, nil
	}
	return 0, 0, fmt.Errorf("%w: unsupported PER length form %#x", errBadMCS, b[0])
}

// appendPERLen encodes n as a PER length of at least width bytes.
func appendPERLen(b []byte, n, width int) []byte {
	if n < 0x80 && width <= 1 {
		return append(b, byte(n))
	}
	return append(b, 0x80|byte(n>>8), byte(n))
}

// berElem is one BER TLV of the MCS Connect PDUs.
type berElem struct {
	tag   []byte
	lenW  int
	value []byte
}

// readBER reads one TLV with a one- or two-byte tag (0x7F xx).
func readBER(b []byte) (berElem, []byte, error) {
	t := 1
	if len(b) > 0 && b[0]&0x1F == 0x1F {
		t = 2
	}
	if len(b) < t+1 {
		return berElem{}, nil, fmt.Errorf("%w: truncated BER element", errBadMCS)
	}
	n, w, err := readBERLen(b[t:])
	if err != nil {
		return berElem{}, nil, err
	}
	end := t + w + n
	if end > len(b) {
		return berElem{}, nil, fmt.Errorf("%w: BER element of %d bytes overruns its container", errBadMCS, n)
	}
	return berElem{tag: b[:t], lenW: w, value: b[t+w : end]}, b[end:], nil
}

func (e berElem) appendTo(b []byte, value []byte) []byte {
	b = append(b, e.tag...)
	b = appendBERLen(b, len(value), e.lenW)
	return append(b, value...)
}

// connectPDU is an MCS Connect Initial or Connect Response split into the
// parts a rewrite changes: the GCC user data blocks, and everything
// around them kept as it was.
type connectPDU struct {
	outer   berElem  // 0x7F65 / 0x7F66
	before  []byte   // the BER elements before userData, verbatim
	user    berElem  // userData OCTET STRING
	l1, l1W int      // the ConnectGCCPDU length as sent, and its PER width
	gccLen  int      // the ConnectGCCPDU's actual length
	gccHead []byte   // ConnectGCCPDU up to the user data length
	l2W     int      // PER width of the user data length
	blocks  [][]byte // user data blocks, each with its 4-byte header
}

// parseConnectPDU parses a whole TPKT record holding an MCS Connect
// Initial (tag 0x65) or Connect Response (0x66). gccHead parses the
// ConnectGCCPDU between its length and the user data length.
func parseConnectPDU(rec []byte, tag byte, gccHead func([]byte) (int, error)) (*connectPDU, error) {
	if len(rec) < mcsOffset+2 || int(binary.BigEndian.Uint16(rec[2:])) != len(rec) || rec[4] != 2 || rec[5] != 0xF0 {
		return nil, fmt.Errorf("%w: not a TPKT-framed X.224 data PDU", errBadMCS)
	}
	outer, rest, err := readBER(rec[mcsOffset:])
	if err != nil {
		return nil, err
	}
	if len(outer.tag) != 2 || outer.tag[0] != 0x7F || outer.tag[1] != tag || len(rest) != 0 {
		return nil, fmt.Errorf("%w: not an MCS Connect PDU (tag %x)", errBadMCS, outer.tag)
	}
	p := &connectPDU{outer: outer}
	v := outer.value
	for {
		e, next, err := readBER(v)
		if err != nil {
			return nil, err
		}
		if len(next) == 0 {
			if len(e.tag) != 1 || e.tag[0] != 0x04 {
				return nil, fmt.Errorf("%w: userData is not an OCTET STRING", errBadMCS)
			}
			p.before = outer.value[:len(outer.value)-len(v)]
			p.user = e
			break
		}
		v = next
	}
	g := p.user.value
	if !bytes.HasPrefix(g, t124Identifier) {
		return nil, fmt.Errorf("%w: GCC data without the T.124 identifier", errBadMCS)
	}
	g = g[len(t124Identifier):]
	n, w, err := readPERLen(g)
	if err != nil {
		return nil, err
	}
	// Implementations disagree on what this length counts (FreeRDP adds
	// 14 to the user data length, IronRDP 12) and [MS-RDPBCGR] has it
	// ignored, so it is not checked, only kept in step with a rewrite.
	p.l1, p.l1W, g = n, w, g[w:]
	p.gccLen = len(g)
	h, err := gccHead(g)
	if err != nil {
		return nil, err
	}
	p.gccHead, g = g[:h], g[h:]
	n, w, err = readPERLen(g)
	if err != nil {
		return nil, err
	}
	if n != len(g)-w {
		return nil, fmt.Errorf("%w: GCC user data length %d, %d bytes present", errBadMCS, n, len(g)-w)
	}
	p.l2W, g = w, g[w:]
	for len(g) > 0 {
		if len(g) < 4 {
			return nil, fmt.Errorf("%w: truncated user data block header", errBadMCS)
		}
		bl := int(binary.LittleEndian.Uint16(g[2:]))
		if bl < 4 || bl > len(g) {
			return nil, fmt.Errorf("%w: user data block %#x of length %d", errBadMCS, binary.LittleEndian.Uint16(g), bl)
		}
		p.blocks = append(p.blocks, g[:bl])
		g = g[bl:]
	}
	return p, nil
}

// block returns the index of the first user data block of type t, or -1.
func (p *connectPDU) block(t uint16) int {
	for i, b := range p.blocks {
		if binary.LittleEndian.Uint16(b) == t {
			return i
		}
	}
	return -1
}

// marshal rebuilds the TPKT record with every length recomputed.
func (p *connectPDU) marshal() []byte {
	var blocks []byte
	for _, b := range p.blocks {
		blocks = append(blocks, b...)
	}
	gcc := append([]byte{}, p.gccHead...)
	gcc = appendPERLen(gcc, len(blocks), p.l2W)
	gcc = append(gcc, blocks...)
	data := append([]byte{}, t124Identifier...)
	data = appendPERLen(data, max(0, p.l1+len(gcc)-p.gccLen), p.l1W)
	data = append(data, gcc...)
	body := append([]byte{}, p.before...)
	body = p.user.appendTo(body, data)
	rec := []byte{3, 0, 0, 0, 2, 0xF0, 0x80}
	rec = p.outer.appendTo(rec, body)
	binary.BigEndian.PutUint16(rec[2:], uint16(len(rec)))
	return rec
}

// gccRequestHead measures a ConferenceCreateRequest up to its user data
// length: choice, selection, conferenceName (numeric string), padding,
// set count, choice, and the h221 key "Duca".
func gccRequestHead(g []byte) (int, error) {
	if len(g) < 3 {
		return 0, fmt.Errorf("%w: truncated ConferenceCreateRequest", errBadMCS)
	}
	// The conference name is a numeric string of g[2]+1 digits, two per byte.
	i := 3 + (int(g[2])+2)/2
	i += 3 // padding, number of sets, choice
	if i+5 > len(g) || g[i] != 0 || string(g[i+1:i+5]) != "Duca" {
		return 0, fmt.Errorf("%w: ConferenceCreateRequest without the Duca key", errBadMCS)
	}
	return i + 5, nil
}

// gccResponseHead measures a ConferenceCreateResponse up to its user data
// length: choice, node ID, tag (PER integer), result, set count, choice,
// and the h221 key "McDn".
func gccResponseHead(g []byte) (int, error) {
	if len(g) < 4 {
		return 0, fmt.Errorf("%w: truncated ConferenceCreateResponse", errBadMCS)
	}
	i := 3 + 1 + int(g[3]) // choice, nodeID, tag length and bytes
	i += 3                 // result, number of sets, choice
	if i+5 > len(g) || g[i] != 0 || string(g[i+1:i+5]) != "McDn" {
		return 0, fmt.Errorf("%w: ConferenceCreateResponse without the McDn key", errBadMCS)
	}
	return i + 5, nil
}

// channelName returns a CHANNEL_DEF's name without its NUL padding.
func channelName(def []byte) string {
	n := def[:8]
	if i := bytes.IndexByte(n, 0); i >= 0 {
		n = n[:i]
	}
	return string(n)
}

// connectInitial is a parsed client MCS Connect Initial.
type connectInitial struct {
	*connectPDU
	net int // index of the CS_NET block, -1 if absent
}

func parseConnectInitial(rec []byte) (*connectInitial, error) {
	p, err := parseConnectPDU(rec, 0x65, gccRequestHead)
	if err != nil {
		return nil, fmt.Errorf("MCS Connect Initial: %w", err)
	}
	ci := &connectInitial{connectPDU: p, net: p.block(csNet)}
	if ci.net >= 0 {
		b := p.blocks[ci.net]
		if len(b) < 8 || len(b) != 8+channelDefs*int(binary.LittleEndian.Uint32(b[4:])) {
			return nil, fmt.Errorf("MCS Connect Initial: %w: CS_NET block of %d bytes does not hold its channel count", errBadMCS, len(b))
		}
	}
	return ci, nil
}

// setKeyboardLayout writes layout into the client core data, which hosts
// read to pick the session's keyboard map. It reports whether it changed
// anything (false without a core data block or with the same layout).
func (ci *connectInitial) setKeyboardLayout(layout uint32) bool {
	i := ci.block(csCore)
	if i < 0 || len(ci.blocks[i]) < keyboardLayoutAt+4 {
		return false
	}
	b := ci.blocks[i][keyboardLayoutAt : keyboardLayoutAt+4]
	if binary.LittleEndian.Uint32(b) == layout {
		return false
	}
	binary.LittleEndian.PutUint32(b, layout)
	return true
}

// channels lists the requested static channel names, in order.
func (ci *connectInitial) channels() []string {
	if ci.net < 0 {
		return nil
	}
	b := ci.blocks[ci.net][8:]
	var names []string
	for ; len(b) >= channelDefs; b = b[channelDefs:] {
		names = append(names, channelName(b))
	}
	return names
}

// removeChannel drops every channel with one of names (case-insensitive)
// from CS_NET and returns the positions they had, in order.
func (ci *connectInitial) removeChannel(names ...string) []int {
	if ci.net < 0 {
		return nil
	}
	old := ci.blocks[ci.net]
	nb := append([]byte{}, old[:8]...)
	var removed []int
	for i, def := 0, old[8:]; len(def) >= channelDefs; i, def = i+1, def[channelDefs:] {
		if channelIndex(names, channelName(def)) >= 0 {
			removed = append(removed, i)
			continue
		}
		nb = append(nb, def[:channelDefs]...)
	}
	binary.LittleEndian.PutUint16(nb[2:], uint16(len(nb)))
	binary.LittleEndian.PutUint32(nb[4:], uint32((len(nb)-8)/channelDefs))
	ci.blocks[ci.net] = nb
	return removed
}

// forbidCompression clears the options that would let the server compress
// the named channel, whose PDUs the filter must read.
func (ci *connectInitial) forbidCompression(name string) {
	if ci.net < 0 {
		return
	}
	b := append([]byte{}, ci.blocks[ci.net]...)
	for def := b[8:]; len(def) >= channelDefs; def = def[channelDefs:] {
		if bytes.EqualFold([]byte(channelName(def)), []byte(name)) {
			o := binary.LittleEndian.Uint32(def[8:])
			binary.LittleEndian.PutUint32(def[8:], o&^(channelOptionCompressRDP|channelOptionCompress))
		}
	}
	ci.blocks[ci.net] = b
}

// connectResponse is a parsed server MCS Connect Response.
type connectResponse struct {
	*connectPDU
	net int // index of the SC_NET block
	sec int // index of the SC_SECURITY block, -1 if absent
}

func parseConnectResponse(rec []byte) (*connectResponse, error) {
	p, err := parseConnectPDU(rec, 0x66, gccResponseHead)
	if err != nil {
		return nil, fmt.Errorf("MCS Connect Response: %w", err)
	}
	cr := &connectResponse{connectPDU: p, net: p.block(scNet), sec: p.block(scSecurity)}
	if cr.net < 0 {
		return nil, fmt.Errorf("MCS Connect Response: %w: no SC_NET block", errBadMCS)
	}
	b := p.blocks[cr.net]
	if len(b) < 8 || len(b) < 8+2*int(binary.LittleEndian.Uint16(b[6:])) {
		return nil, fmt.Errorf("MCS Connect Response: %w: SC_NET block of %d bytes does not hold its channel count", errBadMCS, len(b))
	}
	if cr.sec >= 0 && len(p.blocks[cr.sec]) < 12 {
		return nil, fmt.Errorf("MCS Connect Response: %w: short SC_SECURITY block", errBadMCS)
	}
	return cr, nil
}

// ioChannel is the MCS I/O channel ID.
func (cr *connectResponse) ioChannel() uint16 {
	return binary.LittleEndian.Uint16(cr.blocks[cr.net][4:])
}

// channelIDs returns the static channel IDs, in the client's request order.
func (cr *connectResponse) channelIDs() []uint16 {
	b := cr.blocks[cr.net]
	ids := make([]uint16, binary.LittleEndian.Uint16(b[6:]))
	for i := range ids {
		ids[i] = binary.LittleEndian.Uint16(b[8+2*i:])
	}
	return ids
}

// encrypted reports whether the server chose standard RDP encryption for
// the MCS layer, which would hide channel data from the filter.
func (cr *connectResponse) encrypted() bool {
	return cr.sec >= 0 && binary.LittleEndian.Uint32(cr.blocks[cr.sec][4:]) != 0
}

// setChannelIDs replaces the static channel list (with its padding rule).
func (cr *connectResponse) setChannelIDs(ids []uint16) {
	b := append([]byte{}, cr.blocks[cr.net][:8]...)
	for _, id := range ids {
		b = binary.LittleEndian.AppendUint16(b, id)
	}
	if len(ids)%2 == 1 {
		b = append(b, 0, 0)
	}
	binary.LittleEndian.PutUint16(b[2:], uint16(len(b)))
	binary.LittleEndian.PutUint16(b[6:], uint16(len(ids)))
	cr.blocks[cr.net] = b
}

// sendData is the header of an MCS Send Data Request (client) or Send
// Data Indication (server) in a TPKT record.
type sendData struct {
	channel uint16
	lenOff  int // offset of the PER user data length in the record
	lenW    int
	data    int // offset of the user data in the record
}

// parseSendData reads the Send Data header at the start of a TPKT record
// h (possibly only its first bytes); ok is false for other PDUs.
func parseSendData(h []byte, recLen int) (sd sendData, ok bool, err error) {
	if len(h) < mcsOffset+1 || h[4] != 2 || h[5] != 0xF0 {
		return sendData{}, false, nil
	}
	t := h[mcsOffset] >> 2
	if t != mcsSendDataRequest && t != mcsSendDataIndicate {
		return sendData{}, false, nil
	}
	if len(h) < mcsOffset+7 {
		return sendData{}, false, fmt.Errorf("%w: truncated Send Data header", errBadMCS)
	}
	sd.channel = binary.BigEndian.Uint16(h[mcsOffset+3:])
	sd.lenOff = mcsOffset + 6
	n, w, err := readPERLen(h[sd.lenOff:])
	if err != nil {
		return sendData{}, false, err
	}
	sd.lenW, sd.data = w, sd.lenOff+w
	if sd.data+n != recLen {
		return sendData{}, false, fmt.Errorf("%w: Send Data of %d bytes in a record of %d", errBadMCS, n, recLen)
	}
	return sd, true, nil
}

// channelJoin reads an MCS Channel Join Request; ok is false for other PDUs.
func channelJoin(h []byte) (initiator []byte, channel uint16, ok bool) {
	if len(h) < mcsOffset+5 || h[4] != 2 || h[5] != 0xF0 || h[mcsOffset]>>2 != mcsChannelJoinReq {
		return nil, 0, false
	}
	return h[mcsOffset+1 : mcsOffset+3], binary.BigEndian.Uint16(h[mcsOffset+3:]), true
}

// joinConfirm builds a successful Channel Join Confirm for channel, with
// the PER-encoded initiator of the request it answers.
func joinConfirm(initiator []byte, channel uint16) []byte {
	b := []byte{3, 0, 0, 15, 2, 0xF0, 0x80, mcsChannelJoinConf<<2 | 2, 0}
	b = append(b, initiator...)
	b = binary.BigEndian.AppendUint16(b, channel)
	return binary.BigEndian.AppendUint16(b, channel)
}
