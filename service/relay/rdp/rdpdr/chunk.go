package rdpdr

import (
	"encoding/binary"
	"fmt"
)

// Virtual channel chunking ([MS-RDPBCGR] 2.2.6.1): every chunk starts
// with CHANNEL_PDU_HEADER (the whole PDU's length, flags); the first
// chunk of a PDU has CHANNEL_FLAG_FIRST, the last CHANNEL_FLAG_LAST.

const (
	// ChunkSize is the largest chunk body sent, the default virtual
	// channel chunk size every server accepts.
	ChunkSize = 1600

	// MaxPDU caps a reassembled PDU from the host: a write request of
	// up to 1 MiB plus its headers. A larger one ends the session.
	MaxPDU = 1<<20 + 256

	flagFirst      = 0x1
	flagLast       = 0x2
	flagShowProto  = 0x10
	flagCompressed = 0x00200000
	chunkHeaderLen = 8
)

// Reassembler joins the chunks of one direction into whole PDUs.
type Reassembler struct {
	buf   []byte
	total int
	open  bool
}

// Add takes one chunk (header and body); it returns a whole PDU when the
// chunk completed one, else nil.
func (a *Reassembler) Add(chunk []byte) ([]byte, error) {
	if len(chunk) < chunkHeaderLen {
		return nil, fmt.Errorf("%w: channel chunk of %d bytes", ErrMalformed, len(chunk))
	}
	total := int(binary.LittleEndian.Uint32(chunk))
	flags := binary.LittleEndian.Uint32(chunk[4:])
	body := chunk[chunkHeaderLen:]
	if flags&flagCompressed != 0 {
		return nil, fmt.Errorf("%w: compressed channel data", ErrMalformed)
	}
	if total > MaxPDU || total < 0 {
		return nil, fmt.Errorf("%w: channel PDU of %d bytes (limit %d)", ErrMalformed, total, MaxPDU)
	}
	if flags&flagFirst != 0 {
		a.buf, a.total, a.open = a.buf[:0], total, true
	} else if !a.open {
		return nil, fmt.Errorf("%w: channel chunk without a first chunk", ErrMalformed)
	}
	if len(a.buf)+len(body) > a.total {
		return nil, fmt.Errorf("%w: channel chunks of more than the %d bytes announced", ErrMalformed, a.total)
	}
	if flags&flagFirst != 0 && flags&flagLast != 0 && len(body) == a.total {
		a.open = false
		return body, nil // the common case: no copy
	}
	a.buf = append(a.buf, body...)
	if flags&flagLast == 0 {
		return nil, nil
	}
	a.open = false
	if len(a.buf) != a.total {
		return nil, fmt.Errorf("%w: channel PDU of %d bytes announced, %d sent", ErrMalformed, a.total, len(a.buf))
	}
	return a.buf, nil
}

// Chunks splits pdu into channel chunks of at most ChunkSize body bytes,
// each with its CHANNEL_PDU_HEADER.
func Chunks(pdu []byte) [][]byte {
	var out [][]byte
	for off := 0; off == 0 || off < len(pdu); {
		n := min(ChunkSize, len(pdu)-off)
		var flags uint32
		if off == 0 {
			flags |= flagFirst
		}
		if off+n == len(pdu) {
			flags |= flagLast
		}
		c := make([]byte, chunkHeaderLen, chunkHeaderLen+n)
		binary.LittleEndian.PutUint32(c, uint32(len(pdu)))
		binary.LittleEndian.PutUint32(c[4:], flags)
		out = append(out, append(c, pdu[off:off+n]...))
		off += n
		if n == 0 {
			break
		}
	}
	return out
}
