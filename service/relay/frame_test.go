package relay

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"testing"

	"github.com/gorilla/websocket"
)

// clientFrame encodes one masked frame as a browser sends it.
func clientFrame(fin bool, op byte, payload []byte, key [4]byte) []byte {
	b0 := op
	if fin {
		b0 |= 0x80
	}
	var out []byte
	switch n := len(payload); {
	case n <= 125:
		out = []byte{b0, 0x80 | byte(n)}
	case n <= 0xffff:
		out = []byte{b0, 0x80 | 126, 0, 0}
		binary.BigEndian.PutUint16(out[2:], uint16(n))
	default:
		out = make([]byte, 10)
		out[0], out[1] = b0, 0x80|127
		binary.BigEndian.PutUint64(out[2:], uint64(n))
	}
	out = append(out, key[:]...)
	start := len(out)
	out = append(out, payload...)
	mask(key, 0, out[start:])
	return out
}

// controlLog records control frames seen by a frameReader.
type controlLog struct{ ops []byte }

func (l *controlLog) handle(op byte, payload []byte) error {
	l.ops = append(l.ops, op)
	if op != opClose {
		return nil
	}
	code, text, err := parseClose(payload)
	if err != nil {
		return err
	}
	return &websocket.CloseError{Code: code, Text: text}
}

func newTestReader(wire []byte, log *controlLog) *frameReader {
	return &frameReader{src: bytes.NewReader(wire), limit: 1000, control: log.handle}
}

func TestMaskMatchesDefinition(t *testing.T) {
	key := [4]byte{0x12, 0x34, 0x56, 0x78}
	for _, size := range []int{0, 1, 7, 8, 15, 16, 17, 31, 32, 33, 63, 100, 1021, 65536 + 5} {
		for pos := range 4 {
			data := make([]byte, size)
			for i := range data {
				data[i] = byte(i * 7)
			}
			got := bytes.Clone(data)
			end := mask(key, pos, got)
			for i := range data {
				if got[i] != data[i]^key[(pos+i)%4] {
					t.Fatalf("size %d pos %d: byte %d wrong", size, pos, i)
				}
			}
			if end != (pos+size)%4 {
				t.Fatalf("size %d pos %d: end position %d", size, pos, end)
			}
		}
	}
}

// BenchmarkMask unmasks a 64 KiB browser message.
func BenchmarkMask(b *testing.B) {
	key := [4]byte{0x12, 0x34, 0x56, 0x78}
	data := make([]byte, BufferSize)
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		mask(key, 1, data)
	}
}

// TestFrameReaderStream: fragmented and whole messages of both kinds, with
// control frames between fragments, read as one stream of payload bytes.
func TestFrameReaderStream(t *testing.T) {
	key := [4]byte{1, 2, 3, 4}
	var wire []byte
	wire = append(wire, clientFrame(true, opBinary, []byte("hello "), key)...)
	wire = append(wire, clientFrame(false, opText, []byte("wor"), key)...)
	wire = append(wire, clientFrame(true, opPing, []byte("p"), key)...)
	wire = append(wire, clientFrame(false, opContinuation, nil, key)...)
	wire = append(wire, clientFrame(true, opContinuation, []byte("ld"), key)...)
	wire = append(wire, clientFrame(true, opBinary, nil, key)...)
	big := bytes.Repeat([]byte("x"), 700) // longer than the 256-byte buffer
	wire = append(wire, clientFrame(true, opBinary, big, key)...)
	wire = append(wire, clientFrame(true, opPong, nil, key)...)
	wire = append(wire, clientFrame(true, opClose, []byte{0x03, 0xe8, 'b', 'y', 'e'}, key)...)

	var log controlLog
	r := newTestReader(wire, &log)
	got, err := io.ReadAll(r)
	var ce *websocket.CloseError
	if !errors.As(err, &ce) || ce.Code != websocket.CloseNormalClosure || ce.Text != "bye" {
		t.Fatalf("end: %v", err)
	}
	want := append([]byte("hello world"), big...)
	if !bytes.Equal(got, want) {
		t.Fatalf("got %q", got)
	}
	if string(log.ops) != string([]byte{opPing, opPong, opClose}) {
		t.Fatalf("control frames seen: %v", log.ops)
	}
}

// TestFrameReaderCoalesces: buffered small messages come back in one Read.
func TestFrameReaderCoalesces(t *testing.T) {
	var wire []byte
	for i := range 10 {
		wire = append(wire, clientFrame(true, opBinary, []byte{byte('0' + i)}, [4]byte{9, 8, 7, byte(i)})...)
	}
	r := &frameReader{src: bytes.NewReader(wire), limit: 10, control: (&controlLog{}).handle}
	p := make([]byte, 100)
	n, err := r.Read(p)
	if err != nil || string(p[:n]) != "0123456789" {
		t.Fatalf("one read gave %q, %v", p[:n], err)
	}
}

func TestFrameReaderRejects(t *testing.T) {
	key := [4]byte{5, 6, 7, 8}
	unmasked := clientFrame(true, opBinary, []byte("abc"), key)
	unmasked[1] &^= 0x80
	long := make([]byte, 10)
	long[0], long[1] = 0x82, 0x80|127
	binary.BigEndian.PutUint64(long[2:], 1<<63)
	long = append(long, key[:]...)
	cases := []struct {
		name string
		wire []byte
		code int
	}{
		{"unmasked", unmasked, websocket.CloseProtocolError},
		{"reserved bits", append([]byte{0xC2}, clientFrame(true, opBinary, nil, key)[1:]...), websocket.CloseProtocolError},
		{"unknown opcode", clientFrame(true, 0x3, nil, key), websocket.CloseProtocolError},
		{"fragmented ping", clientFrame(false, opPing, nil, key), websocket.CloseProtocolError},
		{"long ping", clientFrame(true, opPing, make([]byte, 126), key), websocket.CloseProtocolError},
		{"continuation first", clientFrame(true, opContinuation, []byte("a"), key), websocket.CloseProtocolError},
		{"message inside message", append(clientFrame(false, opBinary, []byte("a"), key), clientFrame(true, opBinary, []byte("b"), key)...), websocket.CloseProtocolError},
		{"length overflow", long, websocket.CloseProtocolError},
		{"too big", clientFrame(true, opBinary, make([]byte, 1001), key), websocket.CloseMessageTooBig},
		{"too big in fragments", append(clientFrame(false, opBinary, make([]byte, 600), key), clientFrame(true, opContinuation, make([]byte, 600), key)...), websocket.CloseMessageTooBig},
		{"one-byte close", clientFrame(true, opClose, []byte{3}, key), websocket.CloseProtocolError},
		{"reserved close code", clientFrame(true, opClose, []byte{0x03, 0xee}, key), websocket.CloseProtocolError},
		{"close reason not UTF-8", clientFrame(true, opClose, []byte{0x03, 0xe8, 0xff}, key), websocket.CloseInvalidFramePayloadData},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := io.ReadAll(newTestReader(tc.wire, &controlLog{}))
			var pe *protocolError
			if !errors.As(err, &pe) {
				t.Fatalf("got %v, want a protocol error", err)
			}
			if pe.code != tc.code {
				t.Fatalf("close code %d, want %d", pe.code, tc.code)
			}
		})
	}
}

func TestFrameReaderTruncated(t *testing.T) {
	whole := clientFrame(true, opBinary, []byte("abcdef"), [4]byte{1, 1, 1, 1})
	for cut := 0; cut < len(whole); cut++ {
		_, err := io.ReadAll(newTestReader(whole[:cut], &controlLog{}))
		var ce *websocket.CloseError
		if !errors.As(err, &ce) || ce.Code != websocket.CloseAbnormalClosure {
			t.Fatalf("cut at %d: got %v, want abnormal closure", cut, err)
		}
	}
}

// FuzzFrameReader: any bytes from the network end in data or an error,
// never a panic or a hang, and never yield more payload than was sent.
func FuzzFrameReader(f *testing.F) {
	key := [4]byte{0xa, 0xb, 0xc, 0xd}
	f.Add(clientFrame(true, opBinary, []byte("hi"), key))
	f.Add(append(clientFrame(false, opText, []byte("a"), key), clientFrame(true, opContinuation, []byte("b"), key)...))
	f.Add(clientFrame(true, opPing, []byte("ping"), key))
	f.Add(clientFrame(true, opClose, []byte{0x03, 0xe8}, key))
	f.Add(clientFrame(true, opBinary, make([]byte, 200), key))
	f.Add([]byte{0x82, 0xff, 0, 0, 0, 0, 0, 0, 0, 1, 1, 2, 3, 4})
	f.Fuzz(func(t *testing.T, wire []byte) {
		r := &frameReader{
			src:     bytes.NewReader(wire),
			limit:   1 << 10,
			control: (&controlLog{}).handle,
		}
		p := make([]byte, 1+len(wire)%40)
		total := 0
		for {
			n, err := r.Read(p)
			total += n
			if total > len(wire) {
				t.Fatalf("read %d payload bytes from %d wire bytes", total, len(wire))
			}
			if err != nil {
				if _, again := r.Read(p); again == nil {
					t.Fatal("error was not permanent")
				}
				return
			}
			if n == 0 {
				t.Fatal("Read returned 0 bytes and no error")
			}
		}
	})
}
