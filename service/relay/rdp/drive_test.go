package rdp

import (
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"io"
	"log/slog"
	"net"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"
	"unicode/utf16"

	"portico/service/config"
	"portico/service/relay/rdp/rdpdr"
)

// driveHost is a host whose writes may come from two goroutines (the
// browser's and the drive's) and whose reads serve what the test queues,
// step bytes at a time, blocking until there is something.
type driveHost struct {
	net.Conn
	mu     sync.Mutex
	cond   *sync.Cond
	got    bytes.Buffer
	serve  []byte
	step   int
	closed bool
}

func newDriveHost(step int) *driveHost {
	h := &driveHost{step: step}
	h.cond = sync.NewCond(&h.mu)
	return h
}

func (h *driveHost) Write(b []byte) (int, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.got.Write(b)
	h.cond.Broadcast()
	return len(b), nil
}

func (h *driveHost) Read(b []byte) (int, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for len(h.serve) == 0 && !h.closed {
		h.cond.Wait()
	}
	if len(h.serve) == 0 {
		return 0, io.EOF
	}
	n := copy(b[:min(len(b), h.step)], h.serve)
	h.serve = h.serve[n:]
	return n, nil
}

func (h *driveHost) Close() error {
	h.mu.Lock()
	h.closed = true
	h.cond.Broadcast()
	h.mu.Unlock()
	return nil
}
func (h *driveHost) SetReadDeadline(time.Time) error { return nil }

func (h *driveHost) queue(b []byte) {
	h.mu.Lock()
	h.serve = append(h.serve, b...)
	h.cond.Broadcast()
	h.mu.Unlock()
}

// waitUp waits until what reached the host holds b.
func (h *driveHost) waitUp(t *testing.T, what string, b []byte) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	h.mu.Lock()
	defer h.mu.Unlock()
	for !bytes.Contains(h.got.Bytes(), b) {
		if time.Now().After(deadline) {
			t.Fatalf("%s never reached the host (step %d, %d bytes up)", what, h.step, h.got.Len())
		}
		h.mu.Unlock()
		time.Sleep(time.Millisecond)
		h.mu.Lock()
	}
}

func (h *driveHost) up() []byte {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]byte(nil), h.got.Bytes()...)
}

// rdpdrPDU builds an RDPDR PDU of the core component.
func rdpdrPDU(packet uint16, body ...[]byte) []byte {
	b := binary.LittleEndian.AppendUint16(nil, 0x4472)
	b = binary.LittleEndian.AppendUint16(b, packet)
	return slices.Concat(append([][]byte{b}, body...)...)
}

func u16le(v uint16) []byte { return binary.LittleEndian.AppendUint16(nil, v) }
func u32le(v uint32) []byte { return binary.LittleEndian.AppendUint32(nil, v) }
func u64le(v uint64) []byte { return binary.LittleEndian.AppendUint64(nil, v) }

// utf16nul is s in UTF-16LE with its terminator, as rdpdr paths go.
func utf16nul(s string) []byte {
	var b []byte
	for _, c := range utf16.Encode([]rune(s)) {
		b = binary.LittleEndian.AppendUint16(b, c)
	}
	return append(b, 0, 0)
}

// ioRequest builds a DR_DEVICE_IOREQUEST for the drive (device 1).
func ioRequest(file, cid, major uint32, body []byte) []byte {
	return rdpdrPDU(0x4952, u32le(1), u32le(file), u32le(cid), u32le(major), u32le(0), body)
}

// TestFilterDriveChannel runs a whole drive session through the filter
// at 1, 7, 1600 and 65,536 bytes per read and write: the channel is
// requested, hidden from the browser, joined, the handshake runs and the
// host writes a file in several chunks.
func TestFilterDriveChannel(t *testing.T) {
	const (
		driveChannel = 1005
		placeholder  = 0xFFFF
	)
	for _, step := range []int{1, 7, 1600, 65536} {
		d, err := rdpdr.NewDrive(filepath.Join(t.TempDir(), "s"), config.TransferBidirectional, 1<<20)
		if err != nil {
			t.Fatal(err)
		}
		defer d.Close()
		cl := rdpdr.NewClient(d, "TEST", slog.New(slog.DiscardHandler))
		h := newDriveHost(step)
		c := NewFilter(Policy{Clipboard: config.TransferBidirectional, FileTransfer: config.TransferBidirectional, Drive: cl}, slog.New(slog.DiscardHandler)).Wrap(h)
		var down bytes.Buffer
		var downMu sync.Mutex
		readDone := make(chan error, 1)
		go func() {
			buf := make([]byte, 64<<10)
			for {
				n, err := c.Read(buf)
				downMu.Lock()
				down.Write(buf[:n])
				downMu.Unlock()
				if err != nil {
					readDone <- err
					return
				}
			}
		}()
		write := func(b []byte) {
			for len(b) > 0 {
				n := min(step, len(b))
				if _, err := c.Write(b[:n]); err != nil {
					t.Fatalf("step %d: write: %v", step, err)
				}
				b = b[n:]
			}
		}
		// The browser asks for a drive channel of its own: it is removed,
		// and the gateway's is appended.
		write(buildConnectInitial("cliprdr", "rdpdr"))
		h.waitUp(t, "the Connect Initial", []byte{0x7F, 0x65})
		ci, err := parseConnectInitial(h.up())
		if err != nil {
			t.Fatalf("step %d: Connect Initial sent: %v", step, err)
		}
		if names := ci.channels(); !slices.Equal(names, []string{"cliprdr", "rdpdr"}) {
			t.Fatalf("step %d: server asked for %v", step, names)
		}
		h.queue(buildConnectResponse(ioChannel, clipChannel, driveChannel))
		// The browser joins what it knows, including the placeholder,
		// once it has the Connect Response.
		for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(time.Millisecond) {
			downMu.Lock()
			ok := bytes.Contains(down.Bytes(), []byte{0x7F, 0x66})
			downMu.Unlock()
			if ok {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("step %d: no Connect Response reached the browser", step)
			}
		}
		write(slices.Concat(joinRequest(userID, ioChannel), joinRequest(userID, clipChannel), joinRequest(userID, placeholder)))
		h.waitUp(t, "the gateway's join of the drive channel", joinRequest(userID, driveChannel))
		h.queue(slices.Concat(
			tpkt([]byte{mcsChannelJoinConf<<2 | 2, 0, 0, 6, 3, 0xEB, 3, 0xEB}),
			tpkt([]byte{mcsChannelJoinConf<<2 | 2, 0, 0, 6, 3, 0xEC, 3, 0xEC}),
			tpkt([]byte{mcsChannelJoinConf<<2 | 2, 0, 0, 6, 3, 0xED, 3, 0xED}),
			chunks(false, driveChannel, rdpdrPDU(0x496E, u16le(1), u16le(12), u32le(77)), 1600)))
		h.waitUp(t, "the client name", utf16nul("TEST"))
		h.waitUp(t, "the announce reply", sendDataPDU(true, driveChannel, slices.Concat(u32le(12), u32le(3), rdpdrPDU(0x4343, u16le(1), u16le(12), u32le(77))))[7:])
		h.queue(slices.Concat(
			chunks(false, driveChannel, rdpdrPDU(0x5350, u16le(1), u16le(0), u16le(1), u16le(44), u32le(2), make([]byte, 36)), 1600),
			chunks(false, driveChannel, rdpdrPDU(0x4343, u16le(1), u16le(12), u32le(77)), 1600),
			chunks(false, driveChannel, rdpdrPDU(0x554C), 1600)))
		h.waitUp(t, "the device list", []byte("Portico\x00"))
		// The host writes a file into Download in chunks of 1,600 bytes.
		data := make([]byte, 5000)
		rand.Read(data)
		create := slices.Concat(u32le(0x40000000), u64le(0), u32le(0), u32le(7), u32le(2), u32le(0x40))
		name := utf16nul(`\Download\host.bin`)
		create = slices.Concat(create, u32le(uint32(len(name))), name)
		h.queue(chunks(false, driveChannel, ioRequest(0, 1, 0, create), 1600))
		h.waitUp(t, "the create's completion", rdpdrPDU(0x4943, u32le(1), u32le(1), u32le(0), u32le(1)))
		h.queue(chunks(false, driveChannel, ioRequest(1, 2, 4, slices.Concat(u32le(5000), u64le(0), make([]byte, 20), data)), 1600))
		h.waitUp(t, "the write's completion", rdpdrPDU(0x4943, u32le(1), u32le(2), u32le(0), u32le(5000)))
		h.queue(chunks(false, driveChannel, ioRequest(1, 3, 2, make([]byte, 32)), 1600))
		h.waitUp(t, "the close's completion", rdpdrPDU(0x4943, u32le(1), u32le(3), u32le(0)))
		// A tampering browser that sends on the drive channel is dropped;
		// clipboard traffic still flows.
		write(slices.Concat(sendDataPDU(true, driveChannel, []byte("browser-on-drive")), sendDataPDU(true, clipChannel, chunkBody("clip-data"))))
		h.waitUp(t, "clipboard data", []byte("clip-data"))
		h.Close()
		if err := <-readDone; !errors.Is(err, io.EOF) {
			t.Fatalf("step %d: read: %v", step, err)
		}
		c.Close()
		if bytes.Contains(h.up(), []byte("browser-on-drive")) {
			t.Errorf("step %d: the browser's data on the drive channel reached the host", step)
		}
		rc, n, err := d.Download(t.Context(), "Download/host.bin")
		if err != nil || n != int64(len(data)) {
			t.Fatalf("step %d: the host's file: %v (%d bytes)", step, err, n)
		}
		b, _ := io.ReadAll(rc)
		rc.Close()
		if !bytes.Equal(b, data) {
			t.Errorf("step %d: the host's file differs", step)
		}
		if offers, _ := d.Offers(0); len(offers) != 1 {
			t.Errorf("step %d: offers %v", step, offers)
		}
		// The browser saw none of it.
		downMu.Lock()
		seen := down.Bytes()
		i := bytes.Index(seen, []byte{0x7F, 0x66})
		cr, err := parseConnectResponse(seen[i-7 : i-7+int(binary.BigEndian.Uint16(seen[i-5:]))])
		if err != nil {
			t.Fatalf("step %d: Connect Response seen: %v", step, err)
		}
		if ids := cr.channelIDs(); !slices.Equal(ids, []uint16{clipChannel, placeholder}) {
			t.Errorf("step %d: the browser sees channel IDs %v", step, ids)
		}
		if bytes.Contains(seen, []byte{0x03, 0xED}) || bytes.Contains(seen, []byte{0x6E, 0x49}) || bytes.Contains(seen, []byte("Download")) {
			t.Errorf("step %d: the drive channel's join confirm or data reached the browser", step)
		}
		if !bytes.Contains(seen, joinConfirm([]byte{0, 6}, placeholder)) {
			t.Errorf("step %d: the placeholder's join was not answered", step)
		}
		downMu.Unlock()
	}
}

// chunkBody is one whole channel chunk holding s.
func chunkBody(s string) []byte {
	return slices.Concat(u32le(uint32(len(s))), u32le(3), []byte(s))
}

// FuzzFilterDrive runs arbitrary server bytes through a filter serving a
// drive, after a real channel setup: it must end or go on, never panic.
func FuzzFilterDrive(f *testing.F) {
	const driveChannel = 1005
	f.Add(chunks(false, driveChannel, rdpdrPDU(0x496E, u16le(1), u16le(12), u32le(77)), 1600), uint8(7))
	f.Add(chunks(false, driveChannel, ioRequest(0, 1, 0, slices.Concat(u32le(1), u64le(0), u32le(0), u32le(7), u32le(1), u32le(0), u32le(4), utf16nul(`\`))), 9), uint8(1))
	f.Add(sendDataPDU(false, driveChannel, []byte{0xFF, 0xFF, 0xFF, 0xFF, 1, 0, 0, 0}), uint8(3))
	f.Add(tpkt([]byte{mcsChannelJoinConf<<2 | 2, 0, 0, 6, 3, 0xED, 3, 0xED}), uint8(0))
	dir := f.TempDir()
	n := 0
	f.Fuzz(func(t *testing.T, down []byte, step uint8) {
		n++
		d, err := rdpdr.NewDrive(filepath.Join(dir, "s"+strconv.Itoa(n)), config.TransferBidirectional, 1<<20)
		if err != nil {
			t.Fatal(err)
		}
		defer d.Close()
		log := slog.New(slog.DiscardHandler)
		h := newDriveHost(int(step%64) + 1)
		c := NewFilter(Policy{Clipboard: config.TransferBidirectional, FileTransfer: config.TransferBidirectional, Drive: rdpdr.NewClient(d, "F", log)}, log).Wrap(h)
		defer c.Close()
		if _, err := c.Write(buildConnectInitial("cliprdr")); err != nil {
			t.Fatal(err)
		}
		h.queue(buildConnectResponse(ioChannel, clipChannel, driveChannel))
		buf := make([]byte, 4096)
		for h.pending() {
			if _, err := c.Read(buf); err != nil {
				t.Fatal(err)
			}
		}
		c.Write(joinRequest(userID, ioChannel))
		h.queue(down)
		h.Close()
		for {
			if _, err := c.Read(buf); err != nil {
				break
			}
		}
	})
}

func (h *driveHost) pending() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.serve) > 0
}
