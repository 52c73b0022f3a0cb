//go:build unix

package sshrelay

import (
	"bytes"
	"context"
	"io"
	"path"
	"testing"

	"portico/service/config"
)

// benchFileSize is the file both file-transfer benchmarks move, so the
// SFTP rows sit next to the RDP drive's (rdpdr.BenchmarkDriveTransfer).
const benchFileSize = 64 << 20

// BenchmarkSFTPTransfer uploads and downloads a 64 MiB file through the
// gateway's SFTP client against a real sshd on loopback: the path an SSH
// session's file panel takes. `make bench` runs it.
func BenchmarkSFTPTransfer(b *testing.B) {
	h := startSSHD(b)
	c := h.dial(b)
	defer c.Close()
	f := openFiles(b, c, config.TransferBidirectional)
	dir := h.testDir(b)
	data := bytes.Repeat([]byte("0123456789abcdef"), benchFileSize/16)
	b.Run("upload-64MiB", func(b *testing.B) {
		b.SetBytes(benchFileSize)
		for i := 0; i < b.N; i++ {
			if _, err := f.Upload(context.Background(), dir, "bench.bin", bytes.NewReader(data), benchFileSize); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("download-64MiB", func(b *testing.B) {
		b.SetBytes(benchFileSize)
		for i := 0; i < b.N; i++ {
			rc, _, err := f.Download(context.Background(), path.Join(dir, "bench.bin"))
			if err != nil {
				b.Fatal(err)
			}
			if n, err := io.Copy(io.Discard, rc); err != nil || n != benchFileSize {
				b.Fatalf("download: %d bytes, %v", n, err)
			}
			rc.Close()
		}
	})
}
