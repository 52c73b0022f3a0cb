package rdp

import (
	"encoding/binary"
	"fmt"
	"strings"
	"unicode/utf16"
)

// CLIPRDR ([MS-RDPECLIP]): the clipboard virtual channel. The filter
// reads the message type of every clipboard PDU and, for a direction the
// policy blocks, lets the PDU through with its data removed: a Format
// List becomes an empty list and a Format Data or File Contents Response
// becomes a failure response. The receiver then answers or waits exactly
// as it would with a real peer, so neither side hangs, and no byte of
// clipboard data, format name or file crosses.

// cliprdrName is the static virtual channel of the clipboard.
const cliprdrName = "cliprdr"

// CLIPRDR message types and flags.
const (
	cbFormatList           = 0x0002
	cbFormatDataRequest    = 0x0004
	cbFormatDataResponse   = 0x0005
	cbClipCaps             = 0x0007
	cbFileContentsResponse = 0x0009

	cbResponseFail       = 0x0002
	cbASCIINames         = 0x0004
	cbUseLongFormatNames = 0x00000002

	cliprdrHeaderLen = 8
	shortFormatLen   = 36 // formatId + 32-byte name
)

// Channel PDU header ([MS-RDPBCGR] 2.2.6.1.1) flags.
const (
	channelFlagFirst      = 0x00000001
	channelFlagLast       = 0x00000002
	channelFlagCompressed = 0x00200000
	channelHeaderLen      = 8
)

// fileListFormat is the clipboard format that carries a file list
// (FILEDESCRIPTORW array); its data is file transfer, not clipboard text.
const fileListFormat = "FileGroupDescriptorW"

// Sides of the clipboard conversation, indexing per-sender state.
const (
	client = 0
	server = 1
)

// Format IDs the filter tracks; noFormat means none announced, and
// anyFormat means the announcement could not be read, so every format is
// treated as possibly a file list.
const (
	noFormat  int64 = -1
	anyFormat int64 = -2
)

// clipState is the clipboard conversation as the filter follows it. Both
// relay directions use it, under Filter.mu.
type clipState struct {
	// longNames[side]: that side announced CB_USE_LONG_FORMAT_NAMES.
	longNames [2]bool
	// fileList[side]: the format ID that side announced for file lists.
	fileList [2]int64
	// requested[side]: the format last requested from that side.
	requested [2]int64
}

func newClipState() clipState {
	return clipState{fileList: [2]int64{noFormat, noFormat}, requested: [2]int64{noFormat, noFormat}}
}

// cliprdrAction is what happens to one clipboard PDU.
type cliprdrAction int

const (
	cliprdrPass    cliprdrAction = iota
	cliprdrObserve               // pass, and read the whole PDU when it is complete
	cliprdrNeuter                // replace by the data-free form
)

// decide chooses the action for a clipboard PDU that sender starts with
// header hdr (8 bytes, followed by what of its body the record holds).
// clip and files say whether data may flow from sender to the other side.
func (s *clipState) decide(sender int, hdr []byte, clip, files bool) cliprdrAction {
	typ := binary.LittleEndian.Uint16(hdr)
	body := hdr[cliprdrHeaderLen:]
	switch typ {
	case cbClipCaps:
		return cliprdrObserve
	case cbFormatList:
		if !clip {
			return cliprdrNeuter
		}
		return cliprdrObserve
	case cbFormatDataRequest:
		f := noFormat
		if len(body) >= 4 {
			f = int64(binary.LittleEndian.Uint32(body))
		}
		s.requested[1-sender] = f
	case cbFormatDataResponse:
		fl := s.fileList[sender]
		isFiles := fl == anyFormat || (fl != noFormat && fl == s.requested[sender])
		s.requested[sender] = noFormat
		if !clip || (isFiles && !files) {
			return cliprdrNeuter
		}
	case cbFileContentsResponse:
		if !files {
			return cliprdrNeuter
		}
	}
	return cliprdrPass
}

// neutered returns the data-free replacement of a clipboard PDU header
// hdr and how many body bytes it keeps (File Contents keeps its stream ID).
func neutered(hdr []byte) (msgType, flags uint16, keep int) {
	typ := binary.LittleEndian.Uint16(hdr)
	switch typ {
	case cbFormatList:
		return typ, 0, 0
	case cbFileContentsResponse:
		if len(hdr) >= cliprdrHeaderLen+4 {
			return typ, cbResponseFail, 4
		}
	}
	return typ, cbResponseFail, 0
}

// observed takes a whole PDU of sender that decide chose to observe.
func (s *clipState) observed(sender int, pdu []byte, complete bool) {
	if len(pdu) < cliprdrHeaderLen {
		return
	}
	typ := binary.LittleEndian.Uint16(pdu)
	flags := binary.LittleEndian.Uint16(pdu[2:])
	body := pdu[cliprdrHeaderLen:]
	if n := int(binary.LittleEndian.Uint32(pdu[4:])); n <= len(body) {
		body = body[:n]
	} else {
		complete = false
	}
	switch typ {
	case cbClipCaps:
		s.longNames[sender] = complete && capsLongNames(body)
	case cbFormatList:
		s.fileList[sender] = anyFormat
		if !complete {
			return
		}
		long := s.longNames[client] && s.longNames[server]
		formats, err := parseFormatList(body, long, flags&cbASCIINames != 0)
		if err != nil {
			// A list sent before both capability PDUs were seen may use
			// the other variant.
			if formats, err = parseFormatList(body, !long, flags&cbASCIINames != 0); err != nil {
				return
			}
		}
		s.fileList[sender] = noFormat
		for _, f := range formats {
			if strings.EqualFold(f.name, fileListFormat) {
				s.fileList[sender] = int64(f.id)
			}
		}
	}
}

// capsLongNames reads the general capability set of a Clipboard
// Capabilities PDU body.
func capsLongNames(body []byte) bool {
	if len(body) < 4 {
		return false
	}
	n := int(binary.LittleEndian.Uint16(body))
	b := body[4:]
	for ; n > 0 && len(b) >= 4; n-- {
		typ, l := binary.LittleEndian.Uint16(b), int(binary.LittleEndian.Uint16(b[2:]))
		if l < 4 || l > len(b) {
			return false
		}
		if typ == 1 && l >= 12 {
			return binary.LittleEndian.Uint32(b[8:])&cbUseLongFormatNames != 0
		}
		b = b[l:]
	}
	return false
}

// clipFormat is one entry of a Format List.
type clipFormat struct {
	id   uint32
	name string
}

// parseFormatList decodes a Format List body in the long (formatId +
// NUL-terminated UTF-16) or short (formatId + 32-byte name) variant.
func parseFormatList(b []byte, long, ascii bool) ([]clipFormat, error) {
	var out []clipFormat
	if !long {
		if len(b)%shortFormatLen != 0 {
			return nil, fmt.Errorf("short format list of %d bytes is not a multiple of %d", len(b), shortFormatLen)
		}
		for ; len(b) > 0; b = b[shortFormatLen:] {
			name := b[4:shortFormatLen]
			var s string
			if ascii {
				s = cString(name)
			} else {
				s = utf16String(name)
			}
			out = append(out, clipFormat{id: binary.LittleEndian.Uint32(b), name: s})
		}
		return out, nil
	}
	for len(b) > 0 {
		if len(b) < 6 {
			return nil, fmt.Errorf("truncated long format name entry (%d bytes)", len(b))
		}
		id := binary.LittleEndian.Uint32(b)
		b = b[4:]
		end := -1
		for i := 0; i+1 < len(b); i += 2 {
			if b[i] == 0 && b[i+1] == 0 {
				end = i
				break
			}
		}
		if end < 0 {
			return nil, fmt.Errorf("long format name of format %d without terminator", id)
		}
		out = append(out, clipFormat{id: id, name: utf16String(b[:end])})
		b = b[end+2:]
	}
	return out, nil
}

func cString(b []byte) string {
	for i, c := range b {
		if c == 0 {
			return string(b[:i])
		}
	}
	return string(b)
}

func utf16String(b []byte) string {
	u := make([]uint16, 0, len(b)/2)
	for i := 0; i+1 < len(b); i += 2 {
		c := binary.LittleEndian.Uint16(b[i:])
		if c == 0 {
			break
		}
		u = append(u, c)
	}
	return string(utf16.Decode(u))
}
