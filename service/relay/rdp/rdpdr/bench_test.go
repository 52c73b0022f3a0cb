package rdpdr

import (
	"bytes"
	"context"
	"encoding/binary"
	"io"
	"log/slog"
	"path/filepath"
	"testing"

	"portico/service/config"
)

// benchFileSize matches the SFTP benchmark's file (sshrelay).
const benchFileSize = 64 << 20

// BenchmarkDriveTransfer moves a 64 MiB file through a session's drive
// on the gateway: upload is the page's upload plus the host reading it
// back through read IRPs of 128 KiB (what xrdp's FUSE asks for); download
// is the host writing it through write IRPs of 128 KiB plus the page's
// download. Every PDU is chunked at 1,600 bytes and reassembled as on the
// wire; TLS and the network are not in it, so compare it with the SFTP
// rows for the gateway's own cost. `make bench` runs it.
func BenchmarkDriveTransfer(b *testing.B) {
	data := bytes.Repeat([]byte("0123456789abcdef"), benchFileSize/16)
	const step = 128 << 10
	open := func(b *testing.B) *host {
		d, err := NewDrive(filepath.Join(b.TempDir(), "s"), config.TransferBidirectional, 4*benchFileSize)
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { d.Close() })
		return &host{d: d, c: NewClient(d, "BENCH", slog.New(slog.DiscardHandler))}
	}
	// roundTrip sends one IRP in 1,600-byte chunks and reassembles the
	// completion from the client's chunks.
	roundTrip := func(b *testing.B, h *host, p []byte) []byte {
		var asm Reassembler
		var out []byte
		for _, c := range Chunks(p) {
			replies, err := h.c.HandleChunk(c)
			if err != nil {
				b.Fatal(err)
			}
			for _, r := range replies {
				if pdu, err := asm.Add(r); err != nil {
					b.Fatal(err)
				} else if pdu != nil {
					out = pdu
				}
			}
		}
		return out
	}
	b.Run("upload-64MiB", func(b *testing.B) {
		h := open(b)
		b.SetBytes(benchFileSize)
		for i := 0; i < b.N; i++ {
			if _, err := h.d.Upload(context.Background(), ".", "bench.bin", bytes.NewReader(data), benchFileSize); err != nil {
				b.Fatal(err)
			}
			r := roundTrip(b, h, h.irp(0, irpCreate, 0, createBody(`/bench.bin`, 0x1, dispOpen, 0)))
			id := binary.LittleEndian.Uint32(r[16:])
			for off := 0; off < benchFileSize; off += step {
				r := roundTrip(b, h, h.irp(id, irpRead, 0, rwBody(step, uint64(off), nil)))
				if binary.LittleEndian.Uint32(r[16:]) != step {
					b.Fatalf("short read at %d", off)
				}
			}
			roundTrip(b, h, h.irp(id, irpClose, 0, make([]byte, 32)))
		}
	})
	b.Run("download-64MiB", func(b *testing.B) {
		h := open(b)
		b.SetBytes(benchFileSize)
		for i := 0; i < b.N; i++ {
			r := roundTrip(b, h, h.irp(0, irpCreate, 0, createBody(`/Download/bench.bin`, accessGenericW, dispOverwriteIf, 0)))
			id := binary.LittleEndian.Uint32(r[16:])
			for off := 0; off < benchFileSize; off += step {
				roundTrip(b, h, h.irp(id, irpWrite, 0, rwBody(step, uint64(off), data[off:off+step])))
			}
			roundTrip(b, h, h.irp(id, irpClose, 0, make([]byte, 32)))
			rc, _, err := h.d.Download(context.Background(), "Download/bench.bin")
			if err != nil {
				b.Fatal(err)
			}
			if n, err := io.Copy(io.Discard, rc); err != nil || n != benchFileSize {
				b.Fatalf("download: %d %v", n, err)
			}
			rc.Close()
		}
	})
}
