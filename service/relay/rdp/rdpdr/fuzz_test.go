package rdpdr

import (
	"encoding/binary"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"

	"portico/service/config"
)

// seedPDUs are well-formed host PDUs of every kind the client handles.
func seedPDUs() [][]byte {
	h := &host{}
	rename := utf16LE(`\b.txt`, true)
	return [][]byte{
		pdu(pakServerAnnounce, le32(le16(le16(nil, 1), 0x0C), 7)),
		pdu(pakServerCapability, le16(le16(nil, 1), 0), le32(le16(le16(nil, capGeneral), 44), 2), make([]byte, 36)),
		pdu(pakClientIDConfirm, le32(le16(le16(nil, 1), 0x0C), 7)),
		pdu(pakUserLoggedOn),
		pdu(pakDeviceReply, le32(le32(nil, driveID), 0)),
		h.irp(0, irpCreate, 0, createBody(`\a.txt`, accessGenericW, dispOpenIf, 0)),
		h.irp(0, irpCreate, 0, createBody(`\`, 1, dispOpen, optDirectory)),
		h.irp(1, irpWrite, 0, rwBody(3, 0, []byte("abc"))),
		h.irp(1, irpRead, 0, rwBody(3, 0, nil)),
		h.irp(1, irpQueryInformation, 0, infoBody(fileStandardInformation, nil)),
		h.irp(1, irpSetInformation, 0, infoBody(fileRenameInformation, append(le32([]byte{1, 0}, uint32(len(rename))), rename...))),
		h.irp(1, irpSetInformation, 0, infoBody(fileEndOfFileInformation, le64(nil, 1))),
		h.irp(1, irpQueryVolumeInfo, 0, infoBody(fsFullSizeInformation, nil)),
		h.irp(2, irpDirectoryControl, irpMinorQueryDir, queryDirBody(fileBothDirectoryInformation, true, `\*`)),
		h.irp(1, irpClose, 0, make([]byte, 32)),
	}
}

// FuzzClientPDU feeds arbitrary host PDUs, after a real start of the
// protocol, to a client: it must answer or fail, never panic, and never
// touch anything outside its drive.
func FuzzClientPDU(f *testing.F) {
	for _, p := range seedPDUs() {
		f.Add(p)
	}
	d, err := NewDrive(filepath.Join(f.TempDir(), "fuzz"), config.TransferBidirectional, 1<<20)
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { d.Close() })
	log := slog.New(slog.DiscardHandler)
	f.Fuzz(func(t *testing.T, b []byte) {
		c := NewClient(d, "FUZZ", log)
		defer c.Close()
		for _, p := range seedPDUs()[:6] {
			c.HandlePDU(p)
		}
		out, err := c.HandlePDU(b)
		if err != nil && out != nil {
			t.Fatalf("replies %x with error %v", out, err)
		}
		for _, r := range out {
			if len(r) < 4 || binary.LittleEndian.Uint16(r) != ctypCore {
				t.Fatalf("reply %x without an RDPDR header", r)
			}
		}
	})
}

// FuzzReassembler splits arbitrary bytes into chunks at the sizes the
// first byte picks.
func FuzzReassembler(f *testing.F) {
	f.Add([]byte{8, 0, 0, 0, 0, 3, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8})
	f.Add(Chunks(make([]byte, 3000))[1])
	f.Add(Chunks([]byte("abc"))[0])
	f.Fuzz(func(t *testing.T, b []byte) {
		var a Reassembler
		for len(b) > 0 {
			n := min(len(b), 8+int(b[0])%64)
			p, err := a.Add(b[:n])
			if err == nil && p != nil && len(p) > MaxPDU {
				t.Fatalf("PDU of %d bytes past the limit", len(p))
			}
			b = b[n:]
		}
	})
}

// FuzzPath checks that no host path the parser accepts names something
// outside the drive.
func FuzzPath(f *testing.F) {
	for _, s := range []string{`\a\b.txt`, `\..\x`, `\`, "", `\a\*.t?t`, "\\a\x00", `C:\x`, `\x:y`} {
		f.Add(utf16LE(s, true))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := decodePath(b)
		if err != nil {
			return
		}
		if strings.ContainsRune(s, 0) {
			t.Fatalf("decoded path %q holds a NUL", s)
		}
		for _, pattern := range []bool{false, true} {
			parts, err := splitPath(s, pattern)
			if err != nil {
				continue
			}
			for _, c := range parts {
				if c == "" || c == "." || c == ".." || strings.ContainsAny(c, "/\\:\x00") {
					t.Fatalf("component %q of %q accepted", c, s)
				}
			}
		}
		if r, err := relPath(s); err == nil && (filepath.IsAbs(r) || strings.HasPrefix(r, "..")) {
			t.Fatalf("relPath(%q) = %q", s, r)
		}
	})
}
