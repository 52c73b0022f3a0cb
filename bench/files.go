package main

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
)

// The file-transfer rows: a 64 MiB file through an RDP session's drive
// next to the same file over SFTP, and the RDP relay with the drive
// channel against the plain copy, all from go benchmarks beside the code
// (rdpdr.BenchmarkDriveTransfer, sshrelay.BenchmarkSFTPTransfer,
// rdp.BenchmarkRDPDriveRelay) in one run.

var fileBenchLine = regexp.MustCompile(`^(Benchmark\w+/\S+?)(-\d+)?\s+\d+\s+[\d.]+ ns/op\s+([\d.]+) MB/s`)

// fileBenches runs the benchmarks cfg.rounds times each and returns
// MB/s by benchmark name: the 64 MiB transfers once per round, the relay
// for a second per round.
func fileBenches(cfg config) (map[string][]float64, error) {
	res := map[string][]float64{}
	for _, run := range []struct {
		pattern, benchtime string
		pkgs               []string
	}{
		{"BenchmarkDriveTransfer|BenchmarkSFTPTransfer", "1x", []string{"./service/relay/rdp/rdpdr/", "./service/relay/ssh/"}},
		{"BenchmarkRDPDriveRelay", "1s", []string{cfg.rdpPkg}},
	} {
		args := append([]string{"test", "-run", "^$", "-bench", run.pattern, "-benchtime", run.benchtime, "-count", strconv.Itoa(cfg.rounds)}, run.pkgs...)
		cmd := exec.Command("go", args...)
		cmd.Stderr = os.Stderr
		out, err := cmd.StdoutPipe()
		if err != nil {
			return res, fmt.Errorf("file benchmarks: %w", err)
		}
		if err := cmd.Start(); err != nil {
			return res, fmt.Errorf("file benchmarks: %w", err)
		}
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if m := fileBenchLine.FindStringSubmatch(sc.Text()); m != nil {
				v, _ := strconv.ParseFloat(m[3], 64)
				res[m[1]] = append(res[m[1]], v)
			}
		}
		if err := cmd.Wait(); err != nil {
			return res, fmt.Errorf("file benchmarks %s: %w", run.pattern, err)
		}
	}
	return res, nil
}

// renderFiles is the markdown section for fileBenches' results.
func renderFiles(res map[string][]float64, err error) string {
	var b strings.Builder
	b.WriteString("\n## File transfer: RDP drive and SFTP (MB/s, median [min–max])\n\n")
	b.WriteString("| what | MB/s |\n|---|---|\n")
	rows := []struct{ key, label string }{
		{"BenchmarkDriveTransfer/upload-64MiB", "64 MiB upload into the RDP drive, read back by the host through rdpdr (gateway side, 1,600-byte chunks, no TLS)"},
		{"BenchmarkSFTPTransfer/upload-64MiB", "64 MiB upload over SFTP to a real sshd on loopback"},
		{"BenchmarkDriveTransfer/download-64MiB", "64 MiB written by the host through rdpdr, downloaded from the drive"},
		{"BenchmarkSFTPTransfer/download-64MiB", "64 MiB download over SFTP from a real sshd on loopback"},
		{"BenchmarkRDPDriveRelay/plain", "RDP relay through the channel filter, no drive (plain copy)"},
		{"BenchmarkRDPDriveRelay/drive", "RDP relay through the channel filter with the drive channel (framed)"},
	}
	for _, r := range rows {
		fmt.Fprintf(&b, "| %s | %s |\n", r.label, spreadOf(res[r.key]))
	}
	if err != nil {
		fmt.Fprintf(&b, "\nThe file benchmarks failed: %v\n", err)
	}
	return b.String()
}
