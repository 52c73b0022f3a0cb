// Command bench is the relay performance harness run by `make bench`. It
// starts every peer itself on 127.0.0.1 — loopback TCP source, sink and
// echo servers; websockify (Debian's) over wss in front of them; Portico's
// relay core (relay.NewUpgrader, NewStream, Pipe over real TLS) in a child
// process of its own so its CPU and memory can be read from /proc — and
// measures them in interleaved rounds against raw loopback TCP. It prints
// one table with PASS/MISS per target and writes it to bench/results.md.
//
// It owns only measurement: it must not change the relay it measures, and
// it sends traffic to 127.0.0.1 only.
package main

import (
	"flag"
	"fmt"
	"log/slog"
	"os"
)

func main() {
	var cfg config
	flag.IntVar(&cfg.rounds, "rounds", 5, "rounds of every throughput and latency measurement")
	flag.Int64Var(&cfg.bytes, "mb", 256, "MiB moved per throughput measurement")
	flag.IntVar(&cfg.rtts, "rtts", 2000, "64-byte round trips per latency measurement")
	flag.IntVar(&cfg.idle, "idle", 10000, "idle wss sessions opened through Portico's relay")
	flag.IntVar(&cfg.idlePeer, "idle-websockify", 200, "idle wss sessions opened through websockify (it forks a process per session)")
	flag.StringVar(&cfg.out, "out", "bench/results.md", "markdown file the table is written to")
	flag.StringVar(&cfg.rdpPkg, "rdp-pkg", "./service/relay/rdp/", "package with BenchmarkRDPDownload (RDCleanPath vs raw TCP)")
	flag.IntVar(&cfg.frames, "frames", 20, "RDP launches timed in headless Chromium for the time to first frame")
	flag.StringVar(&cfg.framePkg, "frame-pkg", "./integration/", "package with BenchmarkRDPFirstFrame (RDP time to first frame)")
	cfg.portal.register(flag.CommandLine) // bench/portal.go
	flag.StringVar(&cfg.sessions.counts, "sessions", "1,4,16", "concurrent RDP sessions measured through Portico and guacd")
	flag.IntVar(&cfg.sessions.secs, "session-secs", 10, "seconds each session count is measured for, per system")
	flag.IntVar(&cfg.sessions.rounds, "session-rounds", 1, "interleaved rounds of the Portico/guacd session comparison")
	flag.StringVar(&cfg.sessions.guacdSrc, "guacd-src", "", "guacamole-server-1.6.0.tar.gz (default: ../shared/peers or ../../shared/peers)")
	flag.StringVar(&cfg.sessions.guacdOut, "guacd-build", "bench/out/guacd", "folder guacd is built into once (ignored by git)")
	flag.StringVar(&cfg.sessions.chart, "chart", "bench/sessions.svg", "SVG chart of CPU per session and fps against sessions")
	flag.StringVar(&cfg.sessions.sessPkg, "sessions-pkg", "./integration/", "package with BenchmarkRDPSessions (Portico vs guacd)")
	flag.StringVar(&cfg.pprof, "pprof", "", "write a CPU profile of the relay process (bench/serve.go) over the whole run to this file")
	cfg.sessions.fpsTarget = 10
	serve := flag.Bool("serve-relay", false, "internal: run Portico's relay server (the harness starts it)")
	flag.Parse()
	cfg.bytes <<= 20

	if *serve {
		if err := serveRelay(flag.Args(), cfg.pprof); err != nil {
			slog.Error("relay server", "err", err)
			os.Exit(1)
		}
		return
	}
	if cfg.portal.only == "sessions" {
		if err := runSessionsOnly(cfg); err != nil {
			fmt.Fprintln(os.Stderr, "bench:", err)
			os.Exit(1)
		}
		return
	}
	if cfg.portal.only == "frame" {
		ff := measureFirstFrame(cfg)
		fmt.Print("| # | target | measured | verdict |\n|---|---|---|---|\n" + ff.targetRows() + ff.section())
		return
	}
	if cfg.portal.only == "files" { // bench/files.go
		res, err := fileBenches(cfg)
		fmt.Print(renderFiles(res, err))
		return
	}
	if err := run(cfg); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}
