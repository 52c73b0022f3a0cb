package main

import (
	"fmt"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"
)

// minRounds is the fewest interleaved rounds a target is judged on.
const minRounds = 5

// spread is a median with its range.
type spread struct{ med, lo, hi float64 }

func spreadOf(v []float64) spread {
	if len(v) == 0 {
		return spread{}
	}
	s := slices.Clone(v)
	slices.Sort(s)
	return spread{med: s[len(s)/2], lo: s[0], hi: s[len(s)-1]}
}

func (s spread) String() string { return fmt.Sprintf("%.0f [%.0f–%.0f]", s.med, s.lo, s.hi) }

func pick[T any](ss []sample, f func(sample) T) []T {
	out := make([]T, len(ss))
	for i, s := range ss {
		out[i] = f(s)
	}
	return out
}

func durMed(ss []sample, f func(sample) time.Duration) time.Duration {
	d := pick(ss, f)
	slices.Sort(d)
	return d[len(d)/2]
}

func verdict(ok bool) string {
	if ok {
		return "PASS"
	}
	return "MISS"
}

// render builds the markdown report: the table of setups, then each
// target with its measured ratio and verdict.
func render(cfg config, setups []setup, samples [][]sample, peerIdle, porticoIdle idleResult, rdpRaw, rdpWSS []float64, rdpErr error, rdpRounds []sample, portal portalResult, ff firstFrameResult, sess sessionsResult) string {
	var b strings.Builder
	fmt.Fprintf(&b, "# Relay benchmark results\n\n")
	fmt.Fprintf(&b, "Produced by `make bench` on %s, %d cores (%s), %s; %d rounds of %d MiB per direction and %d 64-byte round trips, interleaved raw → websockify → Portico. Medians with [min–max]. CPU is the relay process's own (websockify: its process tree), read from /proc, per 10^9 bytes. Round trips are measured first, with no CPU placement. For throughput each relay runs on CPU 1 and the harness (one lean WebSocket client for every setup, and the TCP backends) on CPU 0, so the client cannot take the relay's core; on 2 cores it otherwise limits both relays alike.\n\n",
		time.Now().UTC().Format("2006-01-02 15:04 UTC"), runtime.NumCPU(), runtime.GOOS+"/"+runtime.GOARCH, runtime.Version(), cfg.rounds, cfg.bytes>>20, cfg.rtts)
	fmt.Fprintf(&b, "| setup | MB/s down | MB/s up | CPU-s/GB down/up | RTT p50 / p99 | memory per idle session | goroutines per session |\n")
	fmt.Fprintf(&b, "|---|---|---|---|---|---|---|\n")
	for i, s := range setups {
		ss := samples[i]
		cpu, mem, gor := "–", "–", "–"
		if s.wss != nil {
			cpu = fmt.Sprintf("%.2f / %.2f", spreadOf(pick(ss, func(x sample) float64 { return x.cpuDown })).med,
				spreadOf(pick(ss, func(x sample) float64 { return x.cpuUp })).med)
		}
		switch i {
		case 1:
			mem = fmt.Sprintf("%.0f KB (PSS, %d sessions)", peerIdle.kbPerSession, peerIdle.sessions)
			gor = "1 process"
		case 2:
			mem = fmt.Sprintf("%.1f KB (PSS, %d sessions; Go heap+stack %.1f KB)", porticoIdle.kbPerSession, porticoIdle.sessions, porticoIdle.heapStackPerSes/1024)
			gor = fmt.Sprintf("%.2f", porticoIdle.goroutinesPer)
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %v / %v | %s | %s |\n", s.name,
			spreadOf(pick(ss, func(x sample) float64 { return x.down })),
			spreadOf(pick(ss, func(x sample) float64 { return x.up })),
			cpu,
			durMed(ss, func(x sample) time.Duration { return x.p50 }).Round(time.Microsecond),
			durMed(ss, func(x sample) time.Duration { return x.p99 }).Round(time.Microsecond),
			mem, gor)
	}
	if rdpErr != nil {
		fmt.Fprintf(&b, "| RDCleanPath relay | error: %v | | | | | |\n", rdpErr)
	} else {
		fmt.Fprintf(&b, "| raw loopback TCP (rdp benchmark) | %s | | | | | |\n", spreadOf(rdpRaw))
		fmt.Fprintf(&b, "| RDCleanPath relay wss (host TLS → Accept → Pipe) | %s | | | | | |\n", spreadOf(rdpWSS))
	}
	rdpCPU := spreadOf(pick(rdpRounds, func(x sample) float64 { return x.cpuDown }))
	fmt.Fprintf(&b, "| RDCleanPath relay wss, relay process (harness rounds) | %s | | %.2f [%.2f–%.2f] / – | | | |\n",
		spreadOf(pick(rdpRounds, func(x sample) float64 { return x.down })), rdpCPU.med, rdpCPU.lo, rdpCPU.hi)

	peer, por := samples[1], samples[2]
	// Every target is judged on the median of its per-round value (the
	// setups run interleaved, so round i of each shares the machine's
	// state); the range over rounds is its spread.
	perRound := func(f func(i int) float64) spread {
		v := make([]float64, min(len(por), len(peer)))
		for i := range v {
			v[i] = f(i)
		}
		return spreadOf(v)
	}
	down := perRound(func(i int) float64 { return por[i].down / peer[i].down })
	up := perRound(func(i int) float64 { return por[i].up / peer[i].up })
	cpuDown := perRound(func(i int) float64 { return por[i].cpuDown })
	p99Ratio := perRound(func(i int) float64 { return float64(por[i].p99) / float64(por[i].p50) })
	p50 := durMed(por, func(x sample) time.Duration { return x.p50 })
	peerP50 := durMed(peer, func(x sample) time.Duration { return x.p50 })
	p50Ratio := perRound(func(i int) float64 { return float64(por[i].p50) / float64(peer[i].p50) })
	// Fewer than minRounds rounds judge nothing: one good round is not a
	// target that holds.
	judge := func(ok bool) string {
		if cfg.rounds < minRounds {
			return fmt.Sprintf("UNJUDGED (%d rounds, need %d)", cfg.rounds, minRounds)
		}
		return verdict(ok)
	}
	f2 := func(s spread) string { return fmt.Sprintf("%.2f [%.2f–%.2f]", s.med, s.lo, s.hi) }

	fmt.Fprintf(&b, "\n## Targets (Portico relay against websockify, same run)\n\n")
	fmt.Fprintf(&b, "Each target is judged on the median over %d interleaved rounds of its per-round value (ratios: Portico's round i over websockify's round i); [min–max] over the rounds is the spread.\n\n", cfg.rounds)
	fmt.Fprintf(&b, "| # | target | measured | verdict |\n|---|---|---|---|\n")
	fmt.Fprintf(&b, "| 1 | wss download ≥ 1.5× websockify | %s× | %s |\n", f2(down), judge(down.med >= 1.5))
	fmt.Fprintf(&b, "| 1 | relay CPU ≤ 0.9 s/GB downloading | %s s/GB | %s |\n", f2(cpuDown), judge(cpuDown.med <= 0.9))
	fmt.Fprintf(&b, "| 2 | wss upload ≥ 1.7× websockify | %s× | %s |\n", f2(up), judge(up.med >= 1.7))
	fmt.Fprintf(&b, "| 2 | zero allocations per uploaded message | asserted by `TestUploadAllocs` (service/relay), not by this harness | see `go test` |\n")
	fmt.Fprintf(&b, "| 3 | RTT p50 ≤ 0.75× websockify | %s× (%v vs %v) | %s |\n", f2(p50Ratio), p50.Round(time.Microsecond), peerP50.Round(time.Microsecond), judge(p50Ratio.med <= 0.75))
	fmt.Fprintf(&b, "| 3 | RTT p99 ≤ 2.5× p50 | %s× | %s |\n", f2(p99Ratio), judge(p99Ratio.med <= 2.5))
	cpuUp := perRound(func(i int) float64 { return por[i].cpuUp })
	fmt.Fprintf(&b, "| 1–2 next bar | wss ≥ 2× websockify both ways at ≤ 0.6 CPU-s/GB | down %.2f×, up %.2f×, CPU %.2f / %.2f s/GB | %s |\n",
		down.med, up.med, cpuDown.med, cpuUp.med, judge(down.med >= 2 && up.med >= 2 && cpuDown.med <= 0.6 && cpuUp.med <= 0.6))
	rdpCPUt := spreadOf(pick(rdpRounds, func(x sample) float64 { return x.cpuDown }))
	fmt.Fprintf(&b, "| 8 | RDCleanPath relay: CPU per GB downloading (host TLS decrypted, wss out; no numeric target, must not regress when the drive channel is injected) | %s s/GB at %s MB/s | REPORTED |\n",
		f2(rdpCPUt), spreadOf(pick(rdpRounds, func(x sample) float64 { return x.down })))
	fmt.Fprintf(&b, "| 4 | ≤ 40 KB per idle session | %.1f KB | %s |\n", porticoIdle.kbPerSession, verdict(porticoIdle.kbPerSession <= 40))
	fmt.Fprintf(&b, "| 4 | ≤ 2 goroutines per session | %.2f | %s |\n", porticoIdle.goroutinesPer, verdict(porticoIdle.goroutinesPer >= 0 && porticoIdle.goroutinesPer <= 2))
	errText := ""
	if porticoIdle.firstErr != nil {
		errText = fmt.Sprintf(", first: %v", porticoIdle.firstErr)
	}
	fmt.Fprintf(&b, "| 4 | %d concurrent idle sessions without errors | %d errors%s (opened in %v; %d descriptors left after closing) | %s |\n",
		porticoIdle.sessions, porticoIdle.errors, errText, porticoIdle.openTime.Round(time.Millisecond), max(porticoIdle.fdsLeft, 0),
		verdict(porticoIdle.errors == 0 && porticoIdle.sessions >= 10000))
	renderPortalTargets(&b, portal) // bench/portal.go
	b.WriteString(ff.targetRows())
	b.WriteString(sess.targetRows())
	if porticoIdle.sessions < 10000 {
		fmt.Fprintf(&b, "\nFewer than 10,000 idle sessions: this machine's hard RLIMIT_NOFILE (which the harness cannot raise without CAP_SYS_RESOURCE) allows only %d with two descriptors each in the relay.\n", porticoIdle.sessions)
	}
	fmt.Fprintf(&b, "\nReference run on this class of machine (2 cores): raw TCP ~2.8 GB/s; websockify-wss ~670 MB/s down / ~370 MB/s up at ~1.4 CPU-s/GB. Absolute numbers vary with the machine's load; the ratios are what the targets judge.\n")
	renderPortalTable(&b, portal) // bench/portal.go
	b.WriteString(ff.section())
	b.WriteString(sess.section(chartLink(cfg.out, cfg.sessions.chart)))
	return b.String()
}

// chartLink is the chart's path relative to the markdown file.
func chartLink(out, chart string) string {
	rel, err := filepath.Rel(filepath.Dir(out), chart)
	if err != nil {
		return chart
	}
	return rel
}

// relayOnlySummary is what `-only relay` prints: Portico's per-round
// ratios to websockify (samples[1]) and its CPU and RTT tail, as medians
// with their spread, the way the targets judge them.
func relayOnlySummary(samples [][]sample) string {
	peer, p := samples[1], samples[2]
	var down, up, tail []float64
	for i := range p {
		down = append(down, p[i].down/peer[i].down)
		up = append(up, p[i].up/peer[i].up)
		tail = append(tail, float64(p[i].p99)/float64(p[i].p50))
	}
	f := func(s spread) string { return fmt.Sprintf("%.2f [%.2f–%.2f]", s.med, s.lo, s.hi) }
	return fmt.Sprintf("Portico/websockify down %s×, up %s×; CPU-s/GB down %s, up %s; RTT p99/p50 %s; p50 %v\n",
		f(spreadOf(down)), f(spreadOf(up)),
		f(spreadOf(pick(p, func(x sample) float64 { return x.cpuDown }))),
		f(spreadOf(pick(p, func(x sample) float64 { return x.cpuUp }))),
		f(spreadOf(tail)), durMed(p, func(x sample) time.Duration { return x.p50 }))
}
