package rdp

import (
	"bytes"
	"encoding/binary"
	"slices"
	"testing"
)

// Test builders for the PDUs of the Basic Settings Exchange, written from
// [MS-RDPBCGR] 4.1.3/4.1.4 (a client's Connect Initial and a server's
// Connect Response) with the lengths in their long forms, as clients use.

func tpkt(mcs []byte) []byte {
	b := []byte{3, 0, 0, 0, 2, 0xF0, 0x80}
	b = append(b, mcs...)
	binary.BigEndian.PutUint16(b[2:], uint16(len(b)))
	return b
}

func ber(tag []byte, long bool, v []byte) []byte {
	b := append([]byte{}, tag...)
	if long {
		b = append(b, 0x82, byte(len(v)>>8), byte(len(v)))
	} else {
		b = appendBERLen(b, len(v), 1)
	}
	return append(b, v...)
}

func domainParams(maxChannels byte) []byte {
	return ber([]byte{0x30}, false, []byte{2, 1, maxChannels, 2, 1, 2, 2, 1, 0, 2, 1, 1, 2, 1, 0, 2, 1, 1, 2, 2, 0xFF, 0xFF, 2, 1, 2})
}

func perLen2(n int) []byte { return []byte{0x80 | byte(n>>8), byte(n)} }

func udBlock(typ uint16, body []byte) []byte {
	b := binary.LittleEndian.AppendUint16(nil, typ)
	b = binary.LittleEndian.AppendUint16(b, uint16(4+len(body)))
	return append(b, body...)
}

func channelDef(name string, options uint32) []byte {
	var n [8]byte
	copy(n[:], name)
	return binary.LittleEndian.AppendUint32(n[:], options)
}

// buildConnectInitial builds a client MCS Connect Initial requesting
// channels (name → options), with a core and a security block around them.
func buildConnectInitial(channels ...string) []byte {
	core := udBlock(0xC001, bytes.Repeat([]byte{0x11}, 212))
	sec := udBlock(0xC002, make([]byte, 8))
	netb := binary.LittleEndian.AppendUint32(nil, uint32(len(channels)))
	for _, c := range channels {
		netb = append(netb, channelDef(c, 0xC0800000)...)
	}
	blocks := slices.Concat(core, sec, udBlock(csNet, netb))
	ccr := slices.Concat([]byte{0x00, 0x08, 0x00, 0x10, 0x00, 0x01, 0xC0, 0x00}, []byte("Duca"), perLen2(len(blocks)), blocks)
	gcc := slices.Concat(t124Identifier, perLen2(len(ccr)), ccr)
	body := slices.Concat([]byte{4, 1, 1, 4, 1, 1, 1, 1, 0xFF}, domainParams(34), domainParams(1), domainParams(0xFF), ber([]byte{4}, true, gcc))
	return tpkt(ber([]byte{0x7F, 0x65}, true, body))
}

// buildConnectResponse builds a server MCS Connect Response assigning ids
// to the client's channels.
func buildConnectResponse(io uint16, ids ...uint16) []byte {
	core := udBlock(0x0C01, []byte{4, 0, 8, 0, 0, 0, 0, 0})
	sec := udBlock(scSecurity, make([]byte, 8))
	netb := binary.LittleEndian.AppendUint16(nil, io)
	netb = binary.LittleEndian.AppendUint16(netb, uint16(len(ids)))
	for _, id := range ids {
		netb = binary.LittleEndian.AppendUint16(netb, id)
	}
	if len(ids)%2 == 1 {
		netb = append(netb, 0, 0)
	}
	blocks := slices.Concat(core, sec, udBlock(scNet, netb))
	ccr := slices.Concat([]byte{0x14, 0x76, 0x0A, 0x01, 0x01, 0x00, 0x01, 0xC0, 0x00}, []byte("McDn"), perLen2(len(blocks)), blocks)
	gcc := slices.Concat(t124Identifier, perLen2(len(ccr)), ccr)
	body := slices.Concat([]byte{0x0A, 1, 0, 2, 1, 0}, domainParams(34), ber([]byte{4}, false, gcc))
	return tpkt(ber([]byte{0x7F, 0x66}, false, body))
}

func TestConnectInitialRemoveChannel(t *testing.T) {
	for _, tc := range []struct {
		name     string
		channels []string
		wantLeft []string
		wantAt   []int
	}{
		{"only clipboard", []string{"cliprdr"}, nil, []int{0}},
		{"first of three", []string{"cliprdr", "rdpsnd", "drdynvc"}, []string{"rdpsnd", "drdynvc"}, []int{0}},
		{"middle", []string{"rdpdr", "CLIPRDR", "drdynvc"}, []string{"rdpdr", "drdynvc"}, []int{1}},
		{"absent", []string{"rdpsnd"}, []string{"rdpsnd"}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := buildConnectInitial(tc.channels...)
			ci, err := parseConnectInitial(rec)
			if err != nil {
				t.Fatal(err)
			}
			if got := ci.channels(); !slices.Equal(got, tc.channels) {
				t.Fatalf("channels %q, want %q", got, tc.channels)
			}
			at := ci.removeChannel("cliprdr")
			if !slices.Equal(at, tc.wantAt) {
				t.Fatalf("removed at %v, want %v", at, tc.wantAt)
			}
			out := ci.marshal()
			// Every length still frames the PDU: it parses again, and
			// it is exactly as long as the channels taken out.
			again, err := parseConnectInitial(out)
			if err != nil {
				t.Fatalf("rewritten Connect Initial does not parse: %v", err)
			}
			if got := again.channels(); !slices.Equal(got, tc.wantLeft) {
				t.Fatalf("channels after removal %q, want %q", got, tc.wantLeft)
			}
			if len(out) != len(rec)-channelDefs*len(tc.wantAt) {
				t.Fatalf("rewritten PDU is %d bytes, want %d", len(out), len(rec)-channelDefs*len(tc.wantAt))
			}
			if bytes.Contains(bytes.ToLower(out), []byte("cliprdr")) {
				t.Fatal("cliprdr still in the rewritten PDU")
			}
			if len(tc.wantAt) == 0 && !bytes.Equal(out, rec) {
				t.Fatal("nothing removed, yet the PDU changed")
			}
		})
	}
}

func TestConnectInitialForbidCompression(t *testing.T) {
	ci, err := parseConnectInitial(buildConnectInitial("rdpsnd", "cliprdr"))
	if err != nil {
		t.Fatal(err)
	}
	ci.forbidCompression("cliprdr")
	again, err := parseConnectInitial(ci.marshal())
	if err != nil {
		t.Fatal(err)
	}
	defs := again.blocks[again.net][8:]
	if o := binary.LittleEndian.Uint32(defs[8:]); o != 0xC0800000 {
		t.Fatalf("rdpsnd options changed to %#x", o)
	}
	if o := binary.LittleEndian.Uint32(defs[channelDefs+8:]); o != 0xC0000000 {
		t.Fatalf("cliprdr options %#x, want compression cleared", o)
	}
}

func TestConnectResponseInsertChannel(t *testing.T) {
	for _, n := range []int{1, 2, 3, 60} { // 60 channels push the lengths past one-byte forms
		ids := make([]uint16, n)
		for i := range ids {
			ids[i] = uint16(1004 + i)
		}
		rec := buildConnectResponse(1003, ids...)
		cr, err := parseConnectResponse(rec)
		if err != nil {
			t.Fatal(err)
		}
		if cr.ioChannel() != 1003 || !slices.Equal(cr.channelIDs(), ids) {
			t.Fatalf("io %d ids %v", cr.ioChannel(), cr.channelIDs())
		}
		want := slices.Insert(slices.Clone(ids), 0, 0xFFFF)
		cr.setChannelIDs(want)
		again, err := parseConnectResponse(cr.marshal())
		if err != nil {
			t.Fatalf("%d channels: rewritten Connect Response does not parse: %v", n, err)
		}
		if !slices.Equal(again.channelIDs(), want) || again.ioChannel() != 1003 {
			t.Fatalf("%d channels: ids after insert %v, want %v", n, again.channelIDs(), want)
		}
		if again.encrypted() {
			t.Fatal("TLS response reads as encrypted")
		}
	}
}

func TestConnectPDURejectsBadLengths(t *testing.T) {
	good := buildConnectInitial("cliprdr")
	for name, mutate := range map[string]func([]byte){
		"TPKT length":       func(b []byte) { b[3]-- },
		"not connect":       func(b []byte) { b[8] = 0x67 },
		"channel count":     func(b []byte) { i := bytes.Index(b, []byte("cliprdr")); b[i-4] = 2 },
		"t124 identifier":   func(b []byte) { i := bytes.Index(b, t124Identifier); b[i+3] = 0 },
		"missing Duca":      func(b []byte) { i := bytes.Index(b, []byte("Duca")); b[i] = 'X' },
		"user data overrun": func(b []byte) { i := bytes.Index(b, []byte("Duca")); b[i+5]++ },
	} {
		b := slices.Clone(good)
		mutate(b)
		if _, err := parseConnectInitial(b); err == nil {
			t.Errorf("%s: corrupted Connect Initial parsed", name)
		}
	}
}

func FuzzConnectInitial(f *testing.F) {
	f.Add(buildConnectInitial("cliprdr", "rdpsnd"))
	f.Add(buildConnectInitial())
	f.Add(buildConnectInitial("rdpdr", "cliprdr", "drdynvc"))
	f.Fuzz(func(t *testing.T, b []byte) {
		ci, err := parseConnectInitial(b)
		if err != nil {
			return
		}
		before := ci.channels()
		ci.forbidCompression(cliprdrName)
		removed := ci.removeChannel(cliprdrName)
		again, err := parseConnectInitial(ci.marshal())
		if err != nil {
			t.Fatalf("rewrite of a valid Connect Initial does not parse: %v", err)
		}
		if len(again.channels()) != len(before)-len(removed) || channelIndex(again.channels(), cliprdrName) >= 0 {
			t.Fatalf("channels %q → %q, removed %v", before, again.channels(), removed)
		}
	})
}

func FuzzConnectResponse(f *testing.F) {
	f.Add(buildConnectResponse(1003, 1004, 1005))
	f.Add(buildConnectResponse(1003))
	f.Fuzz(func(t *testing.T, b []byte) {
		cr, err := parseConnectResponse(b)
		if err != nil {
			return
		}
		ids := append(cr.channelIDs(), unusedChannel(cr.ioChannel(), cr.channelIDs()))
		cr.setChannelIDs(ids)
		again, err := parseConnectResponse(cr.marshal())
		if err != nil {
			t.Fatalf("rewrite of a valid Connect Response does not parse: %v", err)
		}
		if !slices.Equal(again.channelIDs(), ids) {
			t.Fatalf("ids %v, want %v", again.channelIDs(), ids)
		}
	})
}
