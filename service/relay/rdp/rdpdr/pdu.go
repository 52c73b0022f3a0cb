// Package rdpdr is the gateway's end of the RDP device-redirection static
// channel ([MS-RDPEFS]): toward the host it is the rdpdr client, announces
// one file-system drive named Portico, and answers the host's I/O
// requests from a folder of the session (Drive). It owns the channel's
// PDUs, the handshake, the IRP dispatch, the per-session folder and its
// quota, and which of the two transfer directions each operation needs.
// It does not frame MCS or TPKT records: service/relay/rdp finds the
// channel's chunks in the stream, hands them to a Client and sends what
// the Client answers.
package rdpdr

import (
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"unicode/utf16"
)

// ErrMalformed is wrapped by every failure to parse a PDU from the host.
var ErrMalformed = errors.New("malformed rdpdr PDU")

// Component and packet IDs of RDPDR_HEADER.
const (
	ctypCore = 0x4472
	ctypPrn  = 0x5052

	pakServerAnnounce   = 0x496E
	pakClientIDConfirm  = 0x4343
	pakClientName       = 0x434E
	pakDeviceListAnnce  = 0x4441
	pakDeviceReply      = 0x6472
	pakDeviceIORequest  = 0x4952
	pakDeviceIOComplete = 0x4943
	pakServerCapability = 0x5350
	pakClientCapability = 0x4350
	pakUserLoggedOn     = 0x554C
)

// Capability sets.
const (
	capGeneral = 1
	capDrive   = 4

	generalCapsVersion2 = 2
	driveCapsVersion2   = 2

	// extendedPDU flags the client supports: device removal, display
	// name and the user-logged-on PDU that releases the device list.
	extDeviceRemove  = 0x1
	extDisplayName   = 0x2
	extUserLoggedOn  = 0x4
	rdpdrMinorClient = 0x000C

	deviceTypeFilesystem = 0x8
)

// IRP major and minor functions.
const (
	irpCreate             = 0x00
	irpClose              = 0x02
	irpRead               = 0x03
	irpWrite              = 0x04
	irpQueryInformation   = 0x05
	irpSetInformation     = 0x06
	irpQueryVolumeInfo    = 0x0A
	irpSetVolumeInfo      = 0x0B
	irpDirectoryControl   = 0x0C
	irpDeviceControl      = 0x0E
	irpLockControl        = 0x11
	irpMinorQueryDir      = 0x01
	irpMinorNotifyChangeD = 0x02
)

// NTSTATUS values the drive answers with.
const (
	statusSuccess            = 0x00000000
	statusNoMoreFiles        = 0x80000006
	statusUnsuccessful       = 0xC0000001
	statusInvalidHandle      = 0xC0000008
	statusInvalidParameter   = 0xC000000D
	statusNoSuchFile         = 0xC000000F
	statusInvalidDeviceReq   = 0xC0000010
	statusAccessDenied       = 0xC0000022
	statusObjectNameInvalid  = 0xC0000033
	statusObjectNameNotFound = 0xC0000034
	statusObjectNameCollide  = 0xC0000035
	statusObjectPathNotFound = 0xC000003A
	statusDiskFull           = 0xC000007F
	statusFileIsADirectory   = 0xC00000BA
	statusNotSupported       = 0xC00000BB
	statusDirectoryNotEmpty  = 0xC0000101
	statusNotADirectory      = 0xC0000103
	statusTooManyOpenedFiles = 0xC000011F
)

// reader reads little-endian fields and remembers the first shortfall,
// so a parser checks once at the end instead of at every field.
type reader struct {
	b   []byte
	err error
}

func (r *reader) need(n int) bool {
	if r.err != nil {
		return false
	}
	if n < 0 || len(r.b) < n {
		r.err = fmt.Errorf("%w: %d bytes needed, %d left", ErrMalformed, n, len(r.b))
		return false
	}
	return true
}

func (r *reader) u8() uint8 {
	if !r.need(1) {
		return 0
	}
	v := r.b[0]
	r.b = r.b[1:]
	return v
}

func (r *reader) u16() uint16 {
	if !r.need(2) {
		return 0
	}
	v := binary.LittleEndian.Uint16(r.b)
	r.b = r.b[2:]
	return v
}

func (r *reader) u32() uint32 {
	if !r.need(4) {
		return 0
	}
	v := binary.LittleEndian.Uint32(r.b)
	r.b = r.b[4:]
	return v
}

func (r *reader) u64() uint64 {
	if !r.need(8) {
		return 0
	}
	v := binary.LittleEndian.Uint64(r.b)
	r.b = r.b[8:]
	return v
}

func (r *reader) bytes(n int) []byte {
	if !r.need(n) {
		return nil
	}
	v := r.b[:n]
	r.b = r.b[n:]
	return v
}

// header is RDPDR_HEADER.
type header struct{ component, packet uint16 }

func parseHeader(b []byte) (header, []byte, error) {
	r := reader{b: b}
	h := header{r.u16(), r.u16()}
	return h, r.b, r.err
}

func appendHeader(b []byte, packet uint16) []byte {
	b = binary.LittleEndian.AppendUint16(b, ctypCore)
	return binary.LittleEndian.AppendUint16(b, packet)
}

// serverAnnounce is the Server Announce Request (and Server Client ID
// Confirm, which has the same body).
type serverAnnounce struct {
	major, minor uint16
	clientID     uint32
}

func parseServerAnnounce(body []byte) (serverAnnounce, error) {
	r := reader{b: body}
	a := serverAnnounce{r.u16(), r.u16(), r.u32()}
	return a, r.err
}

// clientAnnounceReply answers the server's announce with the same client
// ID and the lower of the two minor versions.
func clientAnnounceReply(a serverAnnounce) []byte {
	b := appendHeader(nil, pakClientIDConfirm)
	b = binary.LittleEndian.AppendUint16(b, 1)
	b = binary.LittleEndian.AppendUint16(b, min(a.minor, rdpdrMinorClient))
	return binary.LittleEndian.AppendUint32(b, a.clientID)
}

// clientNameRequest names the client computer (Unicode).
func clientNameRequest(name string) []byte {
	n := utf16LE(name, true)
	b := appendHeader(nil, pakClientName)
	b = binary.LittleEndian.AppendUint32(b, 1) // UnicodeFlag
	b = binary.LittleEndian.AppendUint32(b, 0) // CodePage
	b = binary.LittleEndian.AppendUint32(b, uint32(len(n)))
	return append(b, n...)
}

// capability is one CAPABILITY_HEADER and its data.
type capability struct {
	typ     uint16
	version uint32
	data    []byte
}

func parseServerCapability(body []byte) ([]capability, error) {
	r := reader{b: body}
	n := int(r.u16())
	r.u16() // padding
	var caps []capability
	for i := 0; i < n && r.err == nil; i++ {
		typ, l, v := r.u16(), int(r.u16()), r.u32()
		if r.err == nil && l < 8 {
			return nil, fmt.Errorf("%w: capability %d of length %d", ErrMalformed, typ, l)
		}
		caps = append(caps, capability{typ, v, r.bytes(l - 8)})
	}
	return caps, r.err
}

// clientCapability is the Client Core Capability Response: a general
// set of version 2 and a drive set of version 2, nothing else (no
// printers, ports or smart cards).
func clientCapability() []byte {
	b := appendHeader(nil, pakClientCapability)
	b = binary.LittleEndian.AppendUint16(b, 2)
	b = binary.LittleEndian.AppendUint16(b, 0)
	b = binary.LittleEndian.AppendUint16(b, capGeneral)
	b = binary.LittleEndian.AppendUint16(b, 44)
	b = binary.LittleEndian.AppendUint32(b, generalCapsVersion2)
	b = binary.LittleEndian.AppendUint32(b, 0)    // osType (ignored)
	b = binary.LittleEndian.AppendUint32(b, 0)    // osVersion (ignored)
	b = binary.LittleEndian.AppendUint16(b, 1)    // protocolMajorVersion
	b = binary.LittleEndian.AppendUint16(b, 0x0C) // protocolMinorVersion
	b = binary.LittleEndian.AppendUint32(b, 0xFFFF)
	b = binary.LittleEndian.AppendUint32(b, 0) // ioCode2
	b = binary.LittleEndian.AppendUint32(b, extDeviceRemove|extDisplayName|extUserLoggedOn)
	b = binary.LittleEndian.AppendUint32(b, 0) // extraFlags1: no async I/O
	b = binary.LittleEndian.AppendUint32(b, 0) // extraFlags2
	b = binary.LittleEndian.AppendUint32(b, 0) // SpecialTypeDeviceCap
	b = binary.LittleEndian.AppendUint16(b, capDrive)
	b = binary.LittleEndian.AppendUint16(b, 8)
	return binary.LittleEndian.AppendUint32(b, driveCapsVersion2)
}

// deviceListAnnounce announces one file-system drive.
func deviceListAnnounce(id uint32, name string) []byte {
	b := appendHeader(nil, pakDeviceListAnnce)
	b = binary.LittleEndian.AppendUint32(b, 1)
	b = binary.LittleEndian.AppendUint32(b, deviceTypeFilesystem)
	b = binary.LittleEndian.AppendUint32(b, id)
	var dos [8]byte
	copy(dos[:7], name)
	b = append(b, dos[:]...)
	data := utf16LE(name, true)
	b = binary.LittleEndian.AppendUint32(b, uint32(len(data)))
	return append(b, data...)
}

// ioRequest is DR_DEVICE_IOREQUEST: the IRP header and what follows it.
type ioRequest struct {
	device, file, completion uint32
	major, minor             uint32
	body                     []byte
}

func parseIORequest(body []byte) (ioRequest, error) {
	r := reader{b: body}
	q := ioRequest{device: r.u32(), file: r.u32(), completion: r.u32(), major: r.u32(), minor: r.u32()}
	q.body = r.b
	return q, r.err
}

// reply starts a DR_DEVICE_IOCOMPLETION for q with status.
func (q ioRequest) reply(status uint32) []byte {
	b := appendHeader(make([]byte, 0, 64), pakDeviceIOComplete)
	b = binary.LittleEndian.AppendUint32(b, q.device)
	b = binary.LittleEndian.AppendUint32(b, q.completion)
	return binary.LittleEndian.AppendUint32(b, status)
}

// createRequest is DR_CREATE_REQ.
type createRequest struct {
	access, attributes, share, disposition, options uint32
	path                                            string
}

func parseCreate(b []byte) (createRequest, error) {
	r := reader{b: b}
	c := createRequest{access: r.u32()}
	r.u64() // AllocationSize
	c.attributes, c.share, c.disposition, c.options = r.u32(), r.u32(), r.u32(), r.u32()
	n := int(r.u32())
	p := r.bytes(n)
	if r.err != nil {
		return c, r.err
	}
	var err error
	c.path, err = decodePath(p)
	return c, err
}

// readWrite is DR_READ_REQ / DR_WRITE_REQ: length, offset, 20 bytes of
// padding, and for a write the data.
type readWrite struct {
	length uint32
	offset uint64
	data   []byte
}

func parseReadWrite(b []byte, write bool) (readWrite, error) {
	r := reader{b: b}
	rw := readWrite{length: r.u32(), offset: r.u64()}
	r.bytes(20)
	if write {
		rw.data = r.bytes(int(rw.length))
	}
	if r.err == nil && rw.offset > 1<<62 {
		return rw, fmt.Errorf("%w: offset %d", ErrMalformed, rw.offset)
	}
	return rw, r.err
}

// infoRequest is the common head of the query/set information and query
// volume information requests: class, length, 24 bytes of padding, and
// Length bytes of buffer.
type infoRequest struct {
	class uint32
	buf   []byte
}

func parseInfo(b []byte, withBuffer bool) (infoRequest, error) {
	r := reader{b: b}
	q := infoRequest{class: r.u32()}
	n := int(r.u32())
	r.bytes(24)
	if withBuffer {
		q.buf = r.bytes(n)
	}
	return q, r.err
}

// queryDir is DR_DRIVE_QUERY_DIRECTORY_REQ.
type queryDir struct {
	class   uint32
	initial bool
	path    string
}

func parseQueryDir(b []byte) (queryDir, error) {
	r := reader{b: b}
	q := queryDir{class: r.u32(), initial: r.u8() != 0}
	n := int(r.u32())
	r.bytes(23)
	p := r.bytes(n)
	if r.err != nil {
		return q, r.err
	}
	if !q.initial {
		return q, nil
	}
	var err error
	q.path, err = decodePath(p)
	return q, err
}

// renameInfo is the FileRenameInformation buffer of [MS-RDPEFS]
// 2.2.3.3.9: ReplaceIfExists, RootDirectory, FileNameLength, FileName.
type renameInfo struct {
	replace bool
	path    string
}

func parseRename(b []byte) (renameInfo, error) {
	r := reader{b: b}
	ri := renameInfo{replace: r.u8() != 0}
	r.u8() // RootDirectory: always 0 for redirected drives
	n := int(r.u32())
	p := r.bytes(n)
	if r.err != nil {
		return ri, r.err
	}
	var err error
	ri.path, err = decodePath(p)
	return ri, err
}

// errBadName marks a path the drive refuses as a name
// (STATUS_OBJECT_NAME_INVALID) rather than as a malformed PDU.
var errBadName = errors.New("invalid name")

// decodePath reads a UTF-16LE path with at most one terminating NUL. A
// NUL inside the name, an unpaired surrogate or an odd length is refused.
func decodePath(b []byte) (string, error) {
	if len(b)%2 != 0 {
		return "", fmt.Errorf("%w: path of %d bytes is not UTF-16", errBadName, len(b))
	}
	u := make([]uint16, len(b)/2)
	for i := range u {
		u[i] = binary.LittleEndian.Uint16(b[2*i:])
	}
	if len(u) > 0 && u[len(u)-1] == 0 {
		u = u[:len(u)-1]
	}
	for i := 0; i < len(u); i++ {
		switch c := u[i]; {
		case c == 0:
			return "", fmt.Errorf("%w: NUL inside a path", errBadName)
		case c >= 0xD800 && c < 0xDC00 && i+1 < len(u) && u[i+1] >= 0xDC00 && u[i+1] <= 0xDFFF:
			i++
		case c >= 0xD800 && c <= 0xDFFF:
			return "", fmt.Errorf("%w: unpaired surrogate in a path", errBadName)
		}
	}
	return string(utf16.Decode(u)), nil
}

// utf16LE encodes s, with a terminating NUL when nul is set.
func utf16LE(s string, nul bool) []byte {
	u := utf16.Encode([]rune(s))
	if nul {
		u = append(u, 0)
	}
	b := make([]byte, 0, 2*len(u))
	for _, c := range u {
		b = binary.LittleEndian.AppendUint16(b, c)
	}
	return b
}

// splitPath turns a host path (\dir\name) into its components, refusing
// what could name something outside the drive or that Windows itself
// would refuse: "." and "..", drive letters and stream names (':') and
// control characters. Forward slashes separate components as backslashes
// do (Windows reads them so, and xrdp sends them in some requests). With
// pattern set, the last component may hold the wildcards * ? < > ".
func splitPath(p string, pattern bool) ([]string, error) {
	var out []string
	parts := strings.FieldsFunc(p, func(r rune) bool { return r == '\\' || r == '/' })
	for i, c := range parts {
		last := i == len(parts)-1
		if c == "." || c == ".." || len(c) > 255 {
			return nil, fmt.Errorf("%w: component %q", errBadName, c)
		}
		for _, r := range c {
			bad := r < 0x20 || strings.ContainsRune(`:|`, r)
			if !(pattern && last) {
				bad = bad || strings.ContainsRune(`*?<>"`, r)
			}
			if bad {
				return nil, fmt.Errorf("%w: %q in a name", errBadName, r)
			}
		}
		out = append(out, c)
	}
	if len(out) > 64 {
		return nil, fmt.Errorf("%w: path %d levels deep", errBadName, len(out))
	}
	return out, nil
}
