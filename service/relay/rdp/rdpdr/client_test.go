package rdpdr

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"portico/service/config"
)

// host plays the server side of the channel against a Client.
type host struct {
	t       *testing.T
	c       *Client
	d       *Drive
	nextCID uint32
	refused []string
}

func newHost(t *testing.T, set config.Transfer, quota int64) *host {
	t.Helper()
	d, err := NewDrive(filepath.Join(t.TempDir(), "s1"), set, quota)
	if err != nil {
		t.Fatalf("NewDrive: %v", err)
	}
	t.Cleanup(func() { d.Close() })
	h := &host{t: t, d: d}
	d.Meter = Meter{Up: new(atomic.Int64), Down: new(atomic.Int64), Refused: func(w string) { h.refused = append(h.refused, w) }}
	h.c = NewClient(d, "TESTPC", slog.New(slog.DiscardHandler))
	return h
}

// send hands pdu to the client in chunks of at most size body bytes and
// returns the whole PDUs it answered with.
func (h *host) sendChunked(pdu []byte, size int) [][]byte {
	h.t.Helper()
	var out [][]byte
	var asm Reassembler
	for off := 0; off < len(pdu) || off == 0; {
		n := min(size, len(pdu)-off)
		var flags uint32
		if off == 0 {
			flags |= flagFirst
		}
		if off+n == len(pdu) {
			flags |= flagLast
		}
		c := binary.LittleEndian.AppendUint32(nil, uint32(len(pdu)))
		c = binary.LittleEndian.AppendUint32(c, flags)
		c = append(c, pdu[off:off+n]...)
		replies, err := h.c.HandleChunk(c)
		if err != nil {
			h.t.Fatalf("HandleChunk: %v", err)
		}
		for _, r := range replies {
			if len(r)-chunkHeaderLen > ChunkSize {
				h.t.Fatalf("reply chunk of %d bytes, more than %d", len(r)-chunkHeaderLen, ChunkSize)
			}
			p, err := asm.Add(r)
			if err != nil {
				h.t.Fatalf("reply chunks: %v", err)
			}
			if p != nil {
				out = append(out, append([]byte(nil), p...))
			}
		}
		off += n
		if n == 0 {
			break
		}
	}
	return out
}

func (h *host) send(pdu []byte) [][]byte { return h.sendChunked(pdu, ChunkSize) }

func le16(b []byte, v uint16) []byte { return binary.LittleEndian.AppendUint16(b, v) }
func le32(b []byte, v uint32) []byte { return binary.LittleEndian.AppendUint32(b, v) }
func le64(b []byte, v uint64) []byte { return binary.LittleEndian.AppendUint64(b, v) }

func pdu(packet uint16, body ...[]byte) []byte {
	b := le16(le16(nil, ctypCore), packet)
	for _, x := range body {
		b = append(b, x...)
	}
	return b
}

// irp builds a DR_DEVICE_IOREQUEST.
func (h *host) irp(file, major, minor uint32, body []byte) []byte {
	h.nextCID++
	b := le32(le32(le32(le32(le32(nil, driveID), file), h.nextCID), major), minor)
	return pdu(pakDeviceIORequest, b, body)
}

// completion is a parsed DR_DEVICE_IOCOMPLETION.
type completion struct {
	cid, status uint32
	body        []byte
}

func (h *host) call(file, major, minor uint32, body []byte) completion {
	h.t.Helper()
	return h.callChunked(file, major, minor, body, ChunkSize)
}

func (h *host) callChunked(file, major, minor uint32, body []byte, size int) completion {
	h.t.Helper()
	out := h.sendChunked(h.irp(file, major, minor, body), size)
	if len(out) != 1 {
		h.t.Fatalf("IRP %#x: %d replies, want 1", major, len(out))
	}
	r := out[0]
	if len(r) < 16 || binary.LittleEndian.Uint16(r[2:]) != pakDeviceIOComplete {
		h.t.Fatalf("IRP %#x: reply %x is not an I/O completion", major, r)
	}
	c := completion{cid: binary.LittleEndian.Uint32(r[8:]), status: binary.LittleEndian.Uint32(r[12:]), body: r[16:]}
	if c.cid != h.nextCID {
		h.t.Fatalf("completion ID %d, want %d", c.cid, h.nextCID)
	}
	return c
}

func createBody(path string, access, disposition, options uint32) []byte {
	p := utf16LE(path, true)
	b := le32(nil, access)
	b = le64(b, 0)
	b = le32(b, 0)
	b = le32(b, 7)
	b = le32(b, disposition)
	b = le32(b, options)
	b = le32(b, uint32(len(p)))
	return append(b, p...)
}

func (h *host) open(path string, access, disposition, options uint32) (uint32, uint32) {
	h.t.Helper()
	c := h.call(0, irpCreate, 0, createBody(path, access, disposition, options))
	if len(c.body) < 4 {
		h.t.Fatalf("create %s: body %x", path, c.body)
	}
	return c.status, binary.LittleEndian.Uint32(c.body)
}

func (h *host) mustOpen(path string, access, disposition, options uint32) uint32 {
	h.t.Helper()
	st, id := h.open(path, access, disposition, options)
	if st != statusSuccess {
		h.t.Fatalf("create %s: status %#x", path, st)
	}
	return id
}

func rwBody(length uint32, offset uint64, data []byte) []byte {
	b := le64(le32(nil, length), offset)
	return append(append(b, make([]byte, 20)...), data...)
}

func infoBody(class uint32, buf []byte) []byte {
	b := le32(le32(nil, class), uint32(len(buf)))
	return append(append(b, make([]byte, 24)...), buf...)
}

func queryDirBody(class uint32, initial bool, path string) []byte {
	var p []byte
	if initial {
		p = utf16LE(path, true)
	}
	b := le32(nil, class)
	b = append(b, boolByte(initial))
	b = le32(b, uint32(len(p)))
	return append(append(b, make([]byte, 23)...), p...)
}

// handshake runs MS-RDPEFS 3.1.3's start and returns the device list.
func (h *host) handshake() []byte {
	h.t.Helper()
	out := h.send(pdu(pakServerAnnounce, le32(le16(le16(nil, 1), 0x0C), 0xABCD)))
	if len(out) != 2 {
		h.t.Fatalf("server announce: %d replies, want announce reply and client name", len(out))
	}
	if want := pdu(pakClientIDConfirm, le32(le16(le16(nil, 1), 0x0C), 0xABCD)); !bytes.Equal(out[0], want) {
		h.t.Errorf("announce reply %x, want %x", out[0], want)
	}
	if binary.LittleEndian.Uint16(out[1][2:]) != pakClientName {
		h.t.Errorf("second reply %x is not the client name", out[1])
	}
	caps := pdu(pakServerCapability, le16(le16(nil, 2), 0),
		le32(le16(le16(nil, capGeneral), 44), 2), make([]byte, 36),
		le32(le16(le16(nil, capDrive), 8), 2))
	out = h.send(caps)
	if len(out) != 1 || binary.LittleEndian.Uint16(out[0][2:]) != pakClientCapability {
		h.t.Fatalf("server capabilities: replies %x", out)
	}
	got, err := parseServerCapability(out[0][4:])
	if err != nil || len(got) != 2 || got[0].typ != capGeneral || got[0].version != 2 || got[1].typ != capDrive || got[1].version != 2 {
		h.t.Fatalf("client capabilities %+v (%v), want general v2 and drive v2", got, err)
	}
	if ext := binary.LittleEndian.Uint32(got[0].data[20:]); ext&extUserLoggedOn == 0 {
		h.t.Errorf("extendedPDU %#x lacks the user-logged-on flag", ext)
	}
	if out := h.send(pdu(pakClientIDConfirm, le32(le16(le16(nil, 1), 0x0C), 0xABCD))); len(out) != 0 {
		h.t.Fatalf("client ID confirm answered with %x: the device list must wait for the logon", out)
	}
	out = h.send(pdu(pakUserLoggedOn))
	if len(out) != 1 {
		h.t.Fatalf("user logged on: %d replies", len(out))
	}
	if h.send(pdu(pakDeviceReply, le32(le32(nil, driveID), 0))) != nil {
		h.t.Fatalf("device reply answered")
	}
	return out[0]
}

func TestHandshakeAnnouncesOneDriveAfterLogon(t *testing.T) {
	h := newHost(t, config.TransferBidirectional, 1<<20)
	list := h.handshake()
	r := reader{b: list[4:]}
	n, typ, id, dos := r.u32(), r.u32(), r.u32(), r.bytes(8)
	if n != 1 || typ != deviceTypeFilesystem || id != driveID || string(bytes.TrimRight(dos, "\x00")) != DriveName {
		t.Fatalf("device list: count %d type %d id %d name %q", n, typ, id, dos)
	}
	if !h.c.Announced() {
		t.Fatal("Announced is false after the device list")
	}
}

func TestDriveRoundTripAtManyChunkings(t *testing.T) {
	for _, size := range []int{1, 7, 1600, 65536} {
		h := newHost(t, config.TransferBidirectional, 8<<20)
		h.handshake()
		data := make([]byte, 1200<<10)
		rand.Read(data)
		id := h.mustOpen(`\Download\report.bin`, accessWriteData|accessGenericW, dispCreate, optNonDirectory)
		for off := 0; off < len(data); off += 70 << 10 {
			part := data[off:min(off+70<<10, len(data))]
			c := h.callChunked(id, irpWrite, 0, rwBody(uint32(len(part)), uint64(off), part), size)
			if c.status != statusSuccess || binary.LittleEndian.Uint32(c.body) != uint32(len(part)) {
				t.Fatalf("chunks of %d: write at %d: status %#x body %x", size, off, c.status, c.body[:4])
			}
		}
		if c := h.call(id, irpClose, 0, make([]byte, 32)); c.status != statusSuccess {
			t.Fatalf("close: %#x", c.status)
		}
		offers, _ := h.d.Offers(0)
		if len(offers) != 1 || offers[0].Name != "Download/report.bin" || offers[0].Size != int64(len(data)) {
			t.Fatalf("chunks of %d: offers %+v", size, offers)
		}
		// Read it back through the host's side: reads are capped.
		id = h.mustOpen(`\Download\report.bin`, 0x1, dispOpen, 0)
		var got []byte
		for {
			c := h.callChunked(id, irpRead, 0, rwBody(4<<20, uint64(len(got)), nil), size)
			n := binary.LittleEndian.Uint32(c.body)
			if c.status != statusSuccess || n > maxRead {
				t.Fatalf("read: status %#x length %d (cap %d)", c.status, n, maxRead)
			}
			if n == 0 {
				break
			}
			got = append(got, c.body[4:4+n]...)
		}
		if !bytes.Equal(got, data) {
			t.Fatalf("chunks of %d: read back %d bytes, not what was written", size, len(got))
		}
		// And through the page.
		rc, n, err := h.d.Download(context.Background(), "Download/report.bin")
		if err != nil || n != int64(len(data)) {
			t.Fatalf("Download: %v (%d bytes)", err, n)
		}
		rc.Close()
	}
}

func TestDirectoryListingAndPatterns(t *testing.T) {
	h := newHost(t, config.TransferBidirectional, 1<<20)
	h.handshake()
	for _, n := range []string{"a.txt", "b.TXT", "c.doc", "ab.txt"} {
		id := h.mustOpen(`\`+n, accessGenericW, dispCreate, 0)
		h.call(id, irpClose, 0, make([]byte, 32))
	}
	if c := h.call(0, irpCreate, 0, createBody(`\sub`, accessGenericW, dispCreate, optDirectory)); c.status != statusSuccess {
		t.Fatalf("mkdir: %#x", c.status)
	}
	dir := h.mustOpen(`\`, 0x1, dispOpen, optDirectory)
	list := func(pattern string, class uint32) []string {
		var names []string
		c := h.call(dir, irpDirectoryControl, irpMinorQueryDir, queryDirBody(class, true, `\`+pattern))
		for c.status == statusSuccess {
			e := c.body[4:]
			var nl uint32
			off := 64
			switch class {
			case fileBothDirectoryInformation:
				nl, off = binary.LittleEndian.Uint32(e[60:]), 94
			case fileNamesInformation:
				nl, off = binary.LittleEndian.Uint32(e[8:]), 12
			case fileFullDirectoryInformation:
				nl, off = binary.LittleEndian.Uint32(e[60:]), 68
			default:
				nl = binary.LittleEndian.Uint32(e[60:])
			}
			names = append(names, string(bytes.ReplaceAll(e[off:off+int(nl)], []byte{0}, nil)))
			c = h.call(dir, irpDirectoryControl, irpMinorQueryDir, queryDirBody(class, false, ""))
		}
		if c.status != statusNoMoreFiles {
			t.Fatalf("listing %q ended with %#x", pattern, c.status)
		}
		return names
	}
	for _, tc := range []struct {
		pattern string
		class   uint32
		want    string
	}{
		{"*", fileDirectoryInformation, "Download a.txt ab.txt b.TXT c.doc sub"},
		{"*.txt", fileBothDirectoryInformation, "a.txt ab.txt b.TXT"},
		{"?.txt", fileNamesInformation, "a.txt b.TXT"},
		{"a*", fileFullDirectoryInformation, "a.txt ab.txt"},
		{"nothing*", fileDirectoryInformation, ""},
	} {
		if got := strings.Join(list(tc.pattern, tc.class), " "); got != tc.want {
			t.Errorf("pattern %q: %q, want %q", tc.pattern, got, tc.want)
		}
	}
}

func TestSetInformationRenameDeleteEndOfFile(t *testing.T) {
	h := newHost(t, config.TransferBidirectional, 1<<20)
	h.handshake()
	id := h.mustOpen(`\draft.txt`, accessGenericW, dispCreate, 0)
	h.call(id, irpWrite, 0, rwBody(5, 0, []byte("hello")))
	if c := h.call(id, irpSetInformation, 0, infoBody(fileEndOfFileInformation, le64(nil, 2))); c.status != statusSuccess {
		t.Fatalf("end of file: %#x", c.status)
	}
	to := utf16LE(`\Download\final.txt`, true)
	if c := h.call(id, irpSetInformation, 0, infoBody(fileRenameInformation, append(le32([]byte{0, 0}, uint32(len(to))), to...))); c.status != statusSuccess {
		t.Fatalf("rename: %#x", c.status)
	}
	h.call(id, irpClose, 0, make([]byte, 32))
	b, err := os.ReadFile(filepath.Join(h.d.dir, "drive", "Download", "final.txt"))
	if err != nil || string(b) != "he" {
		t.Fatalf("renamed file: %q %v", b, err)
	}
	if h.d.Used() != 2 {
		t.Errorf("used %d bytes, want 2", h.d.Used())
	}
	id = h.mustOpen(`\Download\final.txt`, accessDelete, dispOpen, 0)
	if c := h.call(id, irpSetInformation, 0, infoBody(fileDispositionInformation, []byte{1})); c.status != statusSuccess {
		t.Fatalf("disposition: %#x", c.status)
	}
	h.call(id, irpClose, 0, make([]byte, 32))
	if _, err := os.Stat(filepath.Join(h.d.dir, "drive", "Download", "final.txt")); !os.IsNotExist(err) {
		t.Fatalf("deleted file still there: %v", err)
	}
	if h.d.Used() != 0 {
		t.Errorf("used %d bytes after delete, want 0", h.d.Used())
	}
	// Delete on close from the create options.
	id = h.mustOpen(`\tmp.txt`, accessGenericW, dispCreate, optDeleteOnClose)
	h.call(id, irpClose, 0, make([]byte, 32))
	if _, err := os.Stat(filepath.Join(h.d.dir, "drive", "tmp.txt")); !os.IsNotExist(err) {
		t.Fatalf("delete-on-close file still there: %v", err)
	}
}

func TestClientToServerOnlyIsReadOnly(t *testing.T) {
	h := newHost(t, config.TransferClientToServer, 1<<20)
	h.handshake()
	if _, err := h.d.Upload(context.Background(), ".", "in.txt", strings.NewReader("from the user"), 1<<20); err != nil {
		t.Fatalf("Upload: %v", err)
	}
	id := h.mustOpen(`\in.txt`, 0x1, dispOpen, 0)
	if c := h.call(id, irpRead, 0, rwBody(100, 0, nil)); c.status != statusSuccess || string(c.body[4:]) != "from the user" {
		t.Fatalf("host read of the upload: %#x %q", c.status, c.body)
	}
	if c := h.call(id, irpWrite, 0, rwBody(1, 0, []byte("x"))); c.status != statusAccessDenied {
		t.Errorf("write on a read handle: %#x, want access denied", c.status)
	}
	for _, tc := range []struct {
		path                  string
		access, disp, options uint32
	}{
		{`\Download\new.txt`, accessGenericW, dispCreate, 0},
		{`\in.txt`, accessWriteData, dispOpen, 0},
		{`\in.txt`, 0x1, dispOverwriteIf, 0},
		{`\in.txt`, accessDelete, dispOpen, 0},
		{`\in.txt`, 0x1, dispOpen, optDeleteOnClose},
		{`\newdir`, 0x1, dispCreate, optDirectory},
	} {
		if st, _ := h.open(tc.path, tc.access, tc.disp, tc.options); st != statusAccessDenied {
			t.Errorf("create %s access %#x disposition %d: %#x, want access denied", tc.path, tc.access, tc.disp, st)
		}
	}
	if c := h.call(id, irpSetInformation, 0, infoBody(fileEndOfFileInformation, le64(nil, 0))); c.status != statusAccessDenied {
		t.Errorf("set end of file: %#x, want access denied", c.status)
	}
	if len(h.refused) < 7 {
		t.Errorf("refusals counted: %v", h.refused)
	}
	if b, _ := os.ReadFile(filepath.Join(h.d.dir, "drive", "in.txt")); string(b) != "from the user" {
		t.Errorf("the upload changed: %q", b)
	}
	if _, err := h.d.List("."); !errors.Is(err, ErrDirectionNotAllowed) {
		t.Errorf("List with client-to-server only: %v", err)
	}
	if _, _, err := h.d.Download(context.Background(), "in.txt"); !errors.Is(err, ErrDirectionNotAllowed) {
		t.Errorf("Download with client-to-server only: %v", err)
	}
	c := h.call(id, irpQueryVolumeInfo, 0, infoBody(fsAttributeInformation, nil))
	if attrs := binary.LittleEndian.Uint32(c.body[4:]); attrs&0x00080000 == 0 {
		t.Errorf("volume attributes %#x: not read-only", attrs)
	}
}

func TestServerToClientOnlyRefusesUploads(t *testing.T) {
	h := newHost(t, config.TransferServerToClient, 1<<20)
	if _, err := h.d.Upload(context.Background(), ".", "in.txt", strings.NewReader("x"), 10); !errors.Is(err, ErrDirectionNotAllowed) {
		t.Fatalf("Upload with server-to-client only: %v", err)
	}
	if names, _ := os.ReadDir(filepath.Join(h.d.dir, "drive")); len(names) != 1 {
		t.Errorf("drive holds %v, want only Download", names)
	}
	if _, err := NewDrive(filepath.Join(t.TempDir(), "off"), config.TransferDisabled, 1); !errors.Is(err, ErrDirectionNotAllowed) {
		t.Errorf("NewDrive(disabled): %v", err)
	}
}

func TestHostilePathsStayInside(t *testing.T) {
	h := newHost(t, config.TransferBidirectional, 1<<20)
	h.handshake()
	outside := filepath.Join(t.TempDir(), "secret.txt")
	os.WriteFile(outside, []byte("secret"), 0o600)
	os.Symlink(outside, filepath.Join(h.d.dir, "drive", "link"))
	os.Symlink(filepath.Dir(outside), filepath.Join(h.d.dir, "drive", "linkdir"))
	for _, p := range []string{`\..\secret.txt`, `\a\..\..\x`, `\link`, `\linkdir\secret.txt`, `C:\x`, `\x:stream`, `/../x`, "\\a\x00b", `\.`} {
		st, _ := h.open(p, 0x1, dispOpen, 0)
		if st == statusSuccess {
			t.Errorf("create %q succeeded", p)
		}
		st, _ = h.open(p, accessGenericW, dispOverwriteIf, 0)
		if st == statusSuccess {
			t.Errorf("create for writing %q succeeded", p)
		}
	}
	if b, _ := os.ReadFile(outside); string(b) != "secret" {
		t.Errorf("the outside file changed: %q", b)
	}
	// Unknown functions, handles and devices are answered, not fatal.
	if c := h.call(0, 0x1F, 0, nil); c.status != statusInvalidHandle {
		t.Errorf("unknown major on no handle: %#x", c.status)
	}
	dir := h.mustOpen(`\`, 0x1, dispOpen, optDirectory)
	for major, want := range map[uint32]uint32{0x1F: statusNotSupported, irpDeviceControl: statusNotSupported, irpSetVolumeInfo: statusNotSupported, irpRead: statusInvalidDeviceReq} {
		if c := h.call(dir, major, 0, make([]byte, 32)); c.status != want {
			t.Errorf("major %#x: %#x, want %#x", major, c.status, want)
		}
	}
	if c := h.call(dir, irpDirectoryControl, irpMinorNotifyChangeD, make([]byte, 32)); c.status != statusNotSupported {
		t.Errorf("change notification: %#x", c.status)
	}
	if c := h.call(dir, irpLockControl, 0, make([]byte, 32)); c.status != statusSuccess {
		t.Errorf("lock: %#x", c.status)
	}
	// Bad lengths inside an IRP get an error status.
	if c := h.call(0, irpCreate, 0, le32(make([]byte, 28), 1000)); c.status != statusInvalidParameter {
		t.Errorf("create with an overlong path length: %#x", c.status)
	}
	id := h.mustOpen(`\w.txt`, accessGenericW, dispCreate, 0)
	if c := h.call(id, irpWrite, 0, rwBody(100, 0, []byte("short"))); c.status != statusInvalidParameter {
		t.Errorf("write with a length past its data: %#x", c.status)
	}
}

func TestQuotaRefusesWritesAndUploads(t *testing.T) {
	h := newHost(t, config.TransferBidirectional, 64<<10)
	h.handshake()
	id := h.mustOpen(`\big.bin`, accessGenericW, dispCreate, 0)
	if c := h.call(id, irpWrite, 0, rwBody(60<<10, 0, make([]byte, 60<<10))); c.status != statusSuccess {
		t.Fatalf("write within quota: %#x", c.status)
	}
	if c := h.call(id, irpWrite, 0, rwBody(8<<10, 60<<10, make([]byte, 8<<10))); c.status != statusDiskFull {
		t.Fatalf("write past quota: %#x, want disk full", c.status)
	}
	if c := h.call(id, irpWrite, 0, rwBody(1, 1<<40, []byte{1})); c.status != statusDiskFull {
		t.Fatalf("sparse write far past quota: %#x, want disk full", c.status)
	}
	_, err := h.d.Upload(context.Background(), ".", "up.bin", bytes.NewReader(make([]byte, 10<<10)), 1<<20)
	if !errors.Is(err, ErrQuota) {
		t.Fatalf("upload over quota: %v", err)
	}
	for _, sub := range []string{"tmp", "drive"} {
		names, _ := os.ReadDir(filepath.Join(h.d.dir, sub))
		for _, n := range names {
			if n.Name() != "big.bin" && n.Name() != DownloadDir {
				t.Errorf("%s/%s left after a refused upload", sub, n.Name())
			}
		}
	}
	if h.d.Used() != 60<<10 {
		t.Errorf("used %d, want %d", h.d.Used(), 60<<10)
	}
	dir := h.d.dir
	h.d.Close()
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("Close left the folder: %v", err)
	}
}

func TestUploadNames(t *testing.T) {
	h := newHost(t, config.TransferBidirectional, 1<<20)
	for _, n := range []string{"", ".", "..", "a/b", `a\b`, "x\x00y", "c:d"} {
		if _, err := h.d.Upload(context.Background(), ".", n, strings.NewReader("x"), 10); err == nil {
			t.Errorf("Upload(%q) succeeded", n)
		}
	}
	if _, err := h.d.Upload(context.Background(), "Download", "ok.txt", strings.NewReader("x"), 10); err != nil {
		t.Errorf("Upload into Download: %v", err)
	}
}

func TestMatchPattern(t *testing.T) {
	for _, tc := range []struct {
		p, n string
		ok   bool
	}{
		{"*", "x", true}, {"*.*", "noext", true}, {"a?c", "abc", true}, {"a?c", "ac", false},
		{"*.TXT", "f.txt", true}, {"*a*b", "xaxxb", true}, {"*a*b", "xaxxbc", false}, {"<.txt", "a.txt", true},
		{"a>", "ab", true}, {"a\"txt", "a.txt", true}, {"exact", "exact", true}, {"exact", "exacts", false},
	} {
		if got := matchPattern(tc.p, tc.n); got != tc.ok {
			t.Errorf("matchPattern(%q, %q) = %v", tc.p, tc.n, got)
		}
	}
}

func TestReassemblerRefusesBadChunks(t *testing.T) {
	var a Reassembler
	chunk := func(total, flags uint32, body []byte) []byte {
		return append(le32(le32(nil, total), flags), body...)
	}
	for name, c := range map[string][]byte{
		"short":         {1, 2, 3},
		"no first":      chunk(4, flagLast, []byte{1, 2, 3, 4}),
		"too big":       chunk(MaxPDU+1, flagFirst, nil),
		"over announce": chunk(2, flagFirst|flagLast, []byte{1, 2, 3}),
		"compressed":    chunk(1, flagFirst|flagLast|flagCompressed, []byte{1}),
	} {
		a = Reassembler{}
		if _, err := a.Add(c); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	a = Reassembler{}
	a.Add(chunk(4, flagFirst, []byte{1}))
	if _, err := a.Add(chunk(4, flagLast, []byte{2})); err == nil {
		t.Error("short last chunk accepted")
	}
	for _, n := range []int{0, 1, ChunkSize, ChunkSize + 1, 5000} {
		p := make([]byte, n)
		rand.Read(p)
		a = Reassembler{}
		var got []byte
		for _, c := range Chunks(p) {
			out, err := a.Add(c)
			if err != nil {
				t.Fatalf("Chunks(%d): %v", n, err)
			}
			if out != nil {
				got = out
			}
		}
		if !bytes.Equal(got, p) || (got == nil && n > 0) {
			t.Errorf("Chunks(%d) did not reassemble", n)
		}
	}
}
