package rdp

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"slices"
	"testing"
	"time"

	"portico/service/config"
)

// recordingHost is the RDP host side of a filtered connection: it records what
// the filter writes and serves canned server bytes in reads of at most
// step bytes, so records arrive split at every possible place.
type recordingHost struct {
	net.Conn // nil: only the methods below are used
	got      bytes.Buffer
	serve    []byte
	step     int
}

func (h *recordingHost) Write(b []byte) (int, error) { return h.got.Write(b) }
func (h *recordingHost) Read(b []byte) (int, error) {
	if len(h.serve) == 0 {
		return 0, io.EOF
	}
	n := copy(b[:min(len(b), h.step)], h.serve)
	h.serve = h.serve[n:]
	return n, nil
}
func (h *recordingHost) SetReadDeadline(time.Time) error { return nil }

// session runs client bytes up and server bytes down through a filter for
// policy p in pieces of step bytes, server bytes after client bytes that
// precede them (as the real exchange orders them). It returns what reached
// the server and the client.
func session(t *testing.T, p Policy, step int, exchange ...[]byte) (toServer, toClient []byte) {
	t.Helper()
	h := &recordingHost{step: step}
	c := NewFilter(p, nil).Wrap(h)
	var client bytes.Buffer
	buf := make([]byte, 64<<10)
	for i, part := range exchange {
		if i%2 == 0 { // client → server
			for len(part) > 0 {
				n := min(step, len(part))
				if _, err := c.Write(part[:n]); err != nil {
					t.Fatalf("write: %v", err)
				}
				part = part[n:]
			}
			continue
		}
		h.serve = append(h.serve, part...)
		for {
			n, err := c.Read(buf)
			client.Write(buf[:n])
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatalf("read: %v", err)
			}
		}
	}
	return h.got.Bytes(), client.Bytes()
}

func sendDataPDU(req bool, channel uint16, data []byte) []byte {
	typ := byte(mcsSendDataIndicate << 2)
	if req {
		typ = mcsSendDataRequest << 2
	}
	b := []byte{typ, 0, 6}
	b = binary.BigEndian.AppendUint16(b, channel)
	b = append(b, 0x70)
	b = append(b, perLen2(len(data))...)
	return tpkt(append(b, data...))
}

func cliprdrPDU(typ, flags uint16, body []byte) []byte {
	b := binary.LittleEndian.AppendUint16(nil, typ)
	b = binary.LittleEndian.AppendUint16(b, flags)
	b = binary.LittleEndian.AppendUint32(b, uint32(len(body)))
	return append(b, body...)
}

// chunks splits a clipboard PDU into channel PDUs of at most size bytes.
func chunks(req bool, channel uint16, pdu []byte, size int) []byte {
	var out []byte
	for i := 0; i < len(pdu); i += size {
		end := min(i+size, len(pdu))
		var fl uint32
		if i == 0 {
			fl |= channelFlagFirst
		}
		if end == len(pdu) {
			fl |= channelFlagLast
		}
		h := binary.LittleEndian.AppendUint32(nil, uint32(len(pdu)))
		h = binary.LittleEndian.AppendUint32(h, fl|0x10)
		out = append(out, sendDataPDU(req, channel, append(h, pdu[i:end]...))...)
	}
	return out
}

func joinRequest(user, channel uint16) []byte {
	b := []byte{mcsChannelJoinReq << 2}
	b = binary.BigEndian.AppendUint16(b, user-mcsUserIDBase)
	return tpkt(binary.BigEndian.AppendUint16(b, channel))
}

func longFormatList(formats map[uint32]string) []byte {
	var b []byte
	for _, id := range slices.Sorted(func(yield func(uint32) bool) {
		for k := range formats {
			if !yield(k) {
				return
			}
		}
	}) {
		b = binary.LittleEndian.AppendUint32(b, id)
		for _, r := range formats[id] {
			b = binary.LittleEndian.AppendUint16(b, uint16(r))
		}
		b = append(b, 0, 0)
	}
	return b
}

func caps(long bool) []byte {
	var fl uint32 = 0x04 // CB_STREAM_FILECLIP_ENABLED
	if long {
		fl |= cbUseLongFormatNames
	}
	b := []byte{1, 0, 0, 0, 1, 0, 12, 0, 2, 0, 0, 0}
	return cliprdrPDU(cbClipCaps, 0, binary.LittleEndian.AppendUint32(b, fl))
}

// clipboardPDUs lists the clipboard PDUs that reached one side, in order,
// reassembled from their chunks.
func clipboardPDUs(t *testing.T, stream []byte, channel uint16) [][]byte {
	t.Helper()
	var out [][]byte
	var cur []byte
	for len(stream) > 0 {
		if stream[0] != 3 {
			t.Fatalf("stream not at a TPKT boundary: % x", stream[:min(16, len(stream))])
		}
		n := int(binary.BigEndian.Uint16(stream[2:]))
		rec := stream[:n]
		stream = stream[n:]
		sd, ok, err := parseSendData(rec, n)
		if err != nil {
			t.Fatalf("bad Send Data after filtering: %v", err)
		}
		if !ok || sd.channel != channel {
			continue
		}
		total := int(binary.LittleEndian.Uint32(rec[sd.data:]))
		fl := binary.LittleEndian.Uint32(rec[sd.data+4:])
		if fl&channelFlagFirst != 0 {
			cur = nil
		}
		cur = append(cur, rec[sd.data+8:]...)
		if fl&channelFlagLast != 0 {
			if len(cur) != total {
				t.Fatalf("clipboard PDU of %d bytes announced as %d", len(cur), total)
			}
			out = append(out, cur)
		}
	}
	return out
}

// reaches reports whether a clipboard PDU containing b reached that side.
func reaches(t *testing.T, stream, b []byte) bool {
	for _, p := range clipboardPDUs(t, stream, clipChannel) {
		if bytes.Contains(p, b) {
			return true
		}
	}
	return false
}

const (
	ioChannel   = 1003
	clipChannel = 1004
	userID      = 1007
)

func policy(clip, files config.Transfer) Policy { return Policy{Clipboard: clip, FileTransfer: files} }

func TestFilterDisabledRemovesClipboardChannel(t *testing.T) {
	const drdynvc = 1005
	for _, step := range []int{1, 3, 7, 64, 1 << 16} {
		up, down := session(t, policy(config.TransferDisabled, config.TransferBidirectional), step,
			slices.Concat([]byte{0x30, 0x03, 0x02, 0x01, 0x06}, buildConnectInitial("cliprdr", "drdynvc")),              // a TSRequest, then MCS
			slices.Concat([]byte{0x30, 0x02, 0x05, 0x00}, []byte{0, 0, 0, 0}, buildConnectResponse(ioChannel, drdynvc)), // TSRequest, Early User Authorization Result
			slices.Concat(joinRequest(userID, ioChannel), joinRequest(userID, 0xFFFF), joinRequest(userID, drdynvc),
				sendDataPDU(true, 0xFFFF, []byte{8, 0, 0, 0, 3, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8})),
			slices.Concat(tpkt([]byte{mcsChannelJoinConf<<2 | 2, 0, 0, 6, 3, 0xEB, 3, 0xEB})),
		)
		if bytes.Contains(up, []byte("cliprdr")) {
			t.Fatalf("step %d: cliprdr reached the server", step)
		}
		if !bytes.Contains(up, []byte("drdynvc")) {
			t.Fatalf("step %d: the other channel was lost", step)
		}
		if bytes.Contains(up, joinRequest(userID, 0xFFFF)) || bytes.Contains(up, []byte{0, 0xFF, 0xFF, 0x70}) {
			t.Fatalf("step %d: the placeholder channel's join or data reached the server", step)
		}
		if !bytes.Contains(up, joinRequest(userID, drdynvc)) || !bytes.Contains(up, joinRequest(userID, ioChannel)) {
			t.Fatalf("step %d: real joins were lost", step)
		}
		i := bytes.Index(down, []byte{0x7F, 0x66})
		if i < 0 {
			t.Fatalf("step %d: no Connect Response reached the client", step)
		}
		cr, err := parseConnectResponse(down[i-7 : i-7+int(binary.BigEndian.Uint16(down[i-5:]))])
		if err != nil {
			t.Fatalf("step %d: %v", step, err)
		}
		if ids := cr.channelIDs(); !slices.Equal(ids, []uint16{0xFFFF, drdynvc}) {
			t.Fatalf("step %d: client sees channel IDs %v, want the placeholder where cliprdr was", step, ids)
		}
		if !bytes.Contains(down, joinConfirm([]byte{0, 6}, 0xFFFF)) {
			t.Fatalf("step %d: the client's join of the placeholder was not answered", step)
		}
		if !bytes.HasPrefix(down, []byte{0x30, 0x02, 0x05, 0x00, 0, 0, 0, 0}) {
			t.Fatalf("step %d: CredSSP bytes changed", step)
		}
	}
}

func TestFilterClipboardDirections(t *testing.T) {
	text := longFormatList(map[uint32]string{13: "", 0xC004: "Secret format name"})
	for _, tc := range []struct {
		clip             config.Transfer
		upData, downData bool // whether data may reach the server / the client
	}{
		{config.TransferClientToServer, true, false},
		{config.TransferServerToClient, false, true},
		{config.TransferBidirectional, true, true},
	} {
		for _, step := range []int{1 << 16, 5, 1} {
			payload := bytes.Repeat([]byte("clipboard-text-"), 300) // several 1600-byte chunks
			up, down := session(t, policy(tc.clip, config.TransferDisabled), step,
				buildConnectInitial("cliprdr"),
				slices.Concat(buildConnectResponse(ioChannel, clipChannel), chunks(false, clipChannel, caps(true), 1600)),
				slices.Concat(chunks(true, clipChannel, caps(true), 1600),
					chunks(true, clipChannel, cliprdrPDU(cbFormatList, 0, text), 20), // chunked format list
					chunks(true, clipChannel, cliprdrPDU(cbFormatDataResponse, 1, payload), 1600),
					chunks(true, clipChannel, cliprdrPDU(cbFormatDataRequest, 0, []byte{13, 0, 0, 0}), 1600)),
				slices.Concat(chunks(false, clipChannel, cliprdrPDU(cbFormatList, 0, text), 1600),
					chunks(false, clipChannel, cliprdrPDU(cbFormatDataResponse, 1, payload), 1600)),
			)
			if tc.clip != config.TransferBidirectional {
				ci, err := parseConnectInitial(up[:binary.BigEndian.Uint16(up[2:])])
				if err != nil {
					t.Fatal(err)
				}
				if o := binary.LittleEndian.Uint32(ci.blocks[ci.net][8+8:]); o&channelOptionCompressRDP != 0 {
					t.Fatalf("%s: clipboard channel may still be compressed (options %#x)", tc.clip, o)
				}
			}
			for _, side := range []struct {
				name   string
				stream []byte
				data   bool
				offset int // the client's format data request comes last
			}{{"server", up, tc.upData, 0}, {"client", down, tc.downData, 1}} {
				pdus := clipboardPDUs(t, side.stream, clipChannel)
				if len(pdus) < 3 {
					t.Fatalf("%s step %d: %d clipboard PDUs reached the %s, want every one", tc.clip, step, len(pdus), side.name)
				}
				list, resp := pdus[len(pdus)-3+side.offset], pdus[len(pdus)-2+side.offset]
				if side.data {
					if !bytes.Equal(list, cliprdrPDU(cbFormatList, 0, text)) || !bytes.Equal(resp, cliprdrPDU(cbFormatDataResponse, 1, payload)) {
						t.Fatalf("%s step %d: allowed clipboard data to the %s was changed", tc.clip, step, side.name)
					}
					continue
				}
				if !bytes.Equal(list, cliprdrPDU(cbFormatList, 0, nil)) {
					t.Fatalf("%s step %d: format list to the %s is % x, want an empty list", tc.clip, step, side.name, list)
				}
				if !bytes.Equal(resp, cliprdrPDU(cbFormatDataResponse, cbResponseFail, nil)) {
					t.Fatalf("%s step %d: data response to the %s is % x…, want a failure response", tc.clip, step, side.name, resp[:min(16, len(resp))])
				}
				if bytes.Contains(side.stream, []byte("clipboard-text")) || bytes.Contains(side.stream, []byte{'S', 0, 'e', 0, 'c', 0}) {
					t.Fatalf("%s step %d: blocked clipboard data reached the %s", tc.clip, step, side.name)
				}
			}
		}
	}
}

func TestFilterFileTransferThroughClipboard(t *testing.T) {
	const fileList = 0xC0A1
	formats := longFormatList(map[uint32]string{13: "", fileList: fileListFormat})
	files := bytes.Repeat([]byte("FILEDESCRIPTOR"), 200)
	text := []byte("h\x00i\x00\x00\x00")
	streamID := []byte{7, 0, 0, 0}
	for _, tc := range []struct {
		files            config.Transfer
		downList, upData bool // file list to the client, file contents to the server
	}{
		{config.TransferDisabled, false, false},
		{config.TransferServerToClient, true, false},
		{config.TransferClientToServer, false, true},
		{config.TransferBidirectional, true, true},
	} {
		up, down := session(t, policy(config.TransferBidirectional, tc.files), 1<<16,
			buildConnectInitial("cliprdr"),
			slices.Concat(buildConnectResponse(ioChannel, clipChannel), chunks(false, clipChannel, caps(true), 1600)),
			chunks(true, clipChannel, caps(true), 1600),
			chunks(false, clipChannel, cliprdrPDU(cbFormatList, 0, formats), 1600),
			chunks(true, clipChannel, cliprdrPDU(cbFormatDataRequest, 0, []byte{0xA1, 0xC0, 0, 0}), 1600),
			chunks(false, clipChannel, cliprdrPDU(cbFormatDataResponse, 1, files), 1600),
			chunks(true, clipChannel, cliprdrPDU(cbFormatDataRequest, 0, []byte{13, 0, 0, 0}), 1600),
			chunks(false, clipChannel, cliprdrPDU(cbFormatDataResponse, 1, text), 1600),
			chunks(true, clipChannel, cliprdrPDU(cbFileContentsResponse, 1, slices.Concat(streamID, files)), 1600),
			nil,
		)
		gotList := reaches(t, down, files)
		if gotList != tc.downList {
			t.Errorf("files %s: file list reached the client: %v, want %v", tc.files, gotList, tc.downList)
		}
		if !reaches(t, down, cliprdrPDU(cbFormatDataResponse, 1, text)) {
			t.Errorf("files %s: clipboard text was blocked with the files", tc.files)
		}
		gotData := reaches(t, up, files)
		if gotData != tc.upData {
			t.Errorf("files %s: file contents reached the server: %v, want %v", tc.files, gotData, tc.upData)
		}
		if !tc.upData && !reaches(t, up, cliprdrPDU(cbFileContentsResponse, cbResponseFail, streamID)) {
			t.Errorf("files %s: blocked file contents not answered with a failure for stream 7", tc.files)
		}
	}
}

func TestFilterInactiveIsThePlainConnection(t *testing.T) {
	h := &recordingHost{}
	if c := NewFilter(policy(config.TransferBidirectional, config.TransferBidirectional), nil).Wrap(h); c != net.Conn(h) {
		t.Fatal("a filter with nothing to enforce wraps the connection")
	}
}

func TestFilterRefusesWhatItCannotFilter(t *testing.T) {
	pol := policy(config.TransferClientToServer, config.TransferDisabled)
	for name, parts := range map[string][][]byte{
		"garbage before MCS":  {{0x99, 1, 2, 3}},
		"bad Connect Initial": {tpkt([]byte{0x7F, 0x65, 0x01, 0x00})},
		"compressed clipboard": {buildConnectInitial("cliprdr"), buildConnectResponse(ioChannel, clipChannel),
			sendDataPDU(true, clipChannel, []byte{8, 0, 0, 0, 0x03, 0, 0x20, 0, 2, 0, 0, 0, 0, 0, 0, 0})},
	} {
		h := &recordingHost{step: 1 << 16}
		c := NewFilter(pol, nil).Wrap(h)
		var err error
		for i, p := range parts {
			if i%2 == 0 {
				_, err = c.Write(p)
			} else {
				h.serve = p
				_, err = c.Read(make([]byte, 4096))
			}
			if err != nil {
				break
			}
		}
		if !errors.Is(err, ErrPolicy) {
			t.Errorf("%s: err %v, want ErrPolicy", name, err)
		}
	}
}

func TestParseFormatList(t *testing.T) {
	long := longFormatList(map[uint32]string{13: "", 0xC0A1: fileListFormat})
	got, err := parseFormatList(long, true, false)
	if err != nil || len(got) != 2 || got[1].id != 0xC0A1 || got[1].name != fileListFormat {
		t.Fatalf("long list: %v %v", got, err)
	}
	short := make([]byte, 2*shortFormatLen)
	binary.LittleEndian.PutUint32(short[shortFormatLen:], 0xC0A2)
	copy(short[shortFormatLen+4:], "FileGroupDescriptorW")
	got, err = parseFormatList(short, false, true)
	if err != nil || len(got) != 2 || got[1].name != fileListFormat {
		t.Fatalf("short ASCII list: %v %v", got, err)
	}
	for name, b := range map[string][]byte{"unterminated": long[:len(long)-2], "short list length": short[:40]} {
		if _, err := parseFormatList(b, name != "short list length", true); err == nil {
			t.Errorf("%s: parsed", name)
		}
	}
}

func FuzzFormatList(f *testing.F) {
	f.Add(longFormatList(map[uint32]string{13: "", 0xC0A1: fileListFormat}), true)
	f.Add(make([]byte, 72), false)
	f.Add(caps(true)[8:], true)
	f.Fuzz(func(t *testing.T, b []byte, long bool) {
		parseFormatList(b, long, !long)
		capsLongNames(b)
		var s clipState = newClipState()
		s.observed(client, b, true)
		s.decide(server, append(make([]byte, 8), b...), false, false)
	})
}

// FuzzFilter feeds arbitrary streams in both directions: the filter must
// not panic or loop, and it never sends the server more than it was given
// (it only removes or shortens client PDUs).
func FuzzFilter(f *testing.F) {
	f.Add(buildConnectInitial("cliprdr"), buildConnectResponse(ioChannel, clipChannel),
		chunks(true, clipChannel, cliprdrPDU(cbFormatList, 0, longFormatList(map[uint32]string{13: ""})), 7), uint8(3), uint8(0))
	f.Add(buildConnectInitial("cliprdr", "rdpsnd"), buildConnectResponse(ioChannel, 1004, 1005),
		joinRequest(userID, 0xFFFF), uint8(1), uint8(1))
	f.Add([]byte{0x30, 0x81, 0x01, 0}, []byte{0, 0, 0, 0, 3}, []byte{0x44, 0x05, 1, 2, 3}, uint8(2), uint8(2))
	f.Fuzz(func(t *testing.T, up1, down, up2 []byte, step, pol uint8) {
		p := policy(config.Transfers[int(pol)%4], config.Transfers[int(pol/4)%4])
		h := &recordingHost{step: int(step%64) + 1}
		c := NewFilter(p, nil).Wrap(h)
		buf := make([]byte, 1024)
		if _, err := c.Write(up1); err != nil {
			return
		}
		h.serve = down
		for {
			if _, err := c.Read(buf); err != nil {
				break
			}
		}
		c.Write(up2)
		if h.got.Len() > len(up1)+len(up2) {
			t.Fatalf("server got %d bytes from %d", h.got.Len(), len(up1)+len(up2))
		}
	})
}

func TestFilterSetsKeyboardLayout(t *testing.T) {
	layout := func(t *testing.T, stream []byte) uint32 {
		t.Helper()
		i := bytes.Index(stream, []byte{0x7F, 0x65})
		if i < 7 {
			t.Fatal("no Connect Initial reached the server")
		}
		ci, err := parseConnectInitial(stream[i-7 : i-7+int(binary.BigEndian.Uint16(stream[i-5:]))])
		if err != nil {
			t.Fatalf("Connect Initial after the rewrite: %v", err)
		}
		return binary.LittleEndian.Uint32(ci.blocks[ci.block(csCore)][keyboardLayoutAt:])
	}
	later := sendDataPDU(true, 1004, []byte("anything after the connect phase"))
	for _, tc := range []struct {
		name   string
		policy Policy
		want   uint32
	}{
		{"no policy, de-DE", Policy{Clipboard: config.TransferBidirectional, FileTransfer: config.TransferBidirectional, KeyboardLayout: 0x0407}, 0x0407},
		{"clipboard one-way, en-GB", Policy{Clipboard: config.TransferServerToClient, FileTransfer: config.TransferBidirectional, KeyboardLayout: 0x0809}, 0x0809},
		{"clipboard off, fr-FR", Policy{Clipboard: config.TransferDisabled, FileTransfer: config.TransferDisabled, KeyboardLayout: 0x040C}, 0x040C},
		{"layout left alone", Policy{Clipboard: config.TransferDisabled, FileTransfer: config.TransferDisabled}, 0x11111111},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, step := range []int{1, 5, 1 << 16} {
				up, _ := session(t, tc.policy, step,
					slices.Concat([]byte{0x30, 0x03, 0x02, 0x01, 0x06}, buildConnectInitial("rdpsnd", "cliprdr")), buildConnectResponse(ioChannel, 1004, 1005),
					later)
				if got := layout(t, up); got != tc.want {
					t.Fatalf("step %d: the server sees keyboard layout %#x, want %#x", step, got, tc.want)
				}
				if !bytes.HasSuffix(up, later) {
					t.Fatalf("step %d: what followed the connect phase changed", step)
				}
			}
		})
	}
}
