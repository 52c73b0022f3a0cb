package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// config is the harness's flags.
type config struct {
	rounds, rtts, idle, idlePeer int
	bytes                        int64
	out, rdpPkg                  string
	frames                       int            // RDP launches timed by BenchmarkRDPFirstFrame (target 6)
	framePkg                     string         // package with BenchmarkRDPFirstFrame
	portal                       portalConfig   // bench/portal.go
	sessions                     sessionsConfig // bench/sessions.go
	pprof                        string         // CPU profile of the relay child, "" for none
}

// idleResult is the footprint of many open, idle sessions.
type idleResult struct {
	sessions        int
	errors          int
	kbPerSession    float64
	goroutinesPer   float64 // -1 when the relay is not a Go process
	fdsLeft         int     // descriptors above baseline after closing them all
	openTime        time.Duration
	firstErr        error
	heapStackPerSes float64 // Go heap+stack bytes per session (Portico only)
}

func run(cfg config) error {
	ctx := context.Background()
	if cfg.portal.only == "portal" { // bench/portal.go
		return runPortalOnly(ctx, cfg)
	} else if cfg.portal.only != "" && cfg.portal.only != "relay" {
		return fmt.Errorf("-only %q: the phases that run alone are \"relay\", \"portal\", \"frame\" and \"sessions\"", cfg.portal.only)
	}
	relayOnly := cfg.portal.only == "relay"
	// The peers first: a run must not get far and then fail on guacd.
	var guacd string
	if !relayOnly {
		var err error
		if guacd, err = prepareGuacd(cfg.sessions); err != nil {
			return err
		}
	}
	if limit := raiseFDLimit(); cfg.idle > limit {
		fmt.Fprintf(os.Stderr, "bench: the descriptor limit allows %d idle sessions, not %d\n", limit, cfg.idle)
		cfg.idle = limit
	}
	dir, err := os.MkdirTemp("", "portico-bench-")
	if err != nil {
		return fmt.Errorf("temp dir: %w", err)
	}
	defer os.RemoveAll(dir)
	certFile, keyFile, err := writeCert(dir)
	if err != nil {
		return err
	}
	b, err := startBackends(certFile, keyFile)
	if err != nil {
		return err
	}
	defer b.close()

	wsfy := map[string]string{}
	for _, name := range []string{"source", "sink", "echo"} {
		target := map[string]string{"source": b.source, "sink": b.sink, "echo": b.echo}[name]
		cmd, addr, err := startWebsockify(ctx, certFile, keyFile, target)
		if err != nil {
			return err
		}
		defer stop(cmd)
		wsfy[name] = addr
	}
	relayCmd, relayAddr, err := startRelay(certFile, keyFile, b, cfg.pprof)
	if err != nil {
		return err
	}
	defer stop(relayCmd)

	raw := setup{name: "raw loopback TCP", raw: map[string]string{"source": b.source, "sink": b.sink, "echo": b.echo}}
	peer := setup{name: "websockify (Debian) wss", wss: func(be string) string { return "wss://" + wsfy[be] + "/" }}
	portico := setup{name: "Portico relay wss", wss: func(be string) string { return "wss://" + relayAddr + "/" + be }, pid: relayCmd.Process.Pid}
	// The RDCleanPath relay in the same process: download only, host TLS
	// decrypted by the relay, in every throughput round after the others.
	rdpSetup := setup{name: "RDCleanPath relay wss", wss: func(string) string { return "wss://" + relayAddr + "/rdp" }, pid: relayCmd.Process.Pid, rdcleanpath: true}
	var rdpRounds []sample
	// Each websockify instance is its own process tree; CPU is read from
	// the one serving the measured direction.
	peerFor := func(be string) setup {
		s := peer
		s.pid = websockifyPID(wsfy[be])
		return s
	}

	setups := []setup{raw, peer, portico}
	samples := make([][]sample, len(setups))
	// Round trips first, with no CPU placement; then throughput with the
	// relays and the harness on CPUs of their own (see splitCPUs); then
	// everything else, unsplit again. Setups are interleaved in every round.
	sms := make([][]sample, len(setups))
	for i := range sms {
		sms[i] = make([]sample, cfg.rounds)
	}
	for round := range cfg.rounds {
		for i, s := range setups {
			se := s
			if i == 1 {
				se = peerFor("echo")
			}
			sm := &sms[i][round]
			if sm.p50, sm.p99, err = roundTrips(se, cfg.rtts); err != nil {
				return fmt.Errorf("%s: %w", s.name, err)
			}
			fmt.Fprintf(os.Stderr, "round %d %-26s rtt p50 %v p99 %v\n", round+1, s.name, sm.p50, sm.p99)
		}
	}
	relayPIDs := []int{relayCmd.Process.Pid, websockifyPID(wsfy["source"]), websockifyPID(wsfy["sink"]), websockifyPID(wsfy["echo"])}
	// The runtime of a Go process adopts a new affinity mask within a
	// second; the pause lets both Go processes follow.
	split := func(on bool) error {
		if err := splitCPUs(on, relayPIDs...); err != nil {
			return err
		}
		time.Sleep(1200 * time.Millisecond)
		return nil
	}
	if err := split(true); err != nil {
		return err
	}
	for round := range cfg.rounds {
		for i, s := range setups {
			sd, su := s, s
			if i == 1 {
				sd, su = peerFor("source"), peerFor("sink")
			}
			sm := &sms[i][round]
			if sm.down, sm.cpuDown, err = download(sd, cfg.bytes); err != nil {
				return fmt.Errorf("%s: %w", s.name, err)
			}
			if sm.up, sm.cpuUp, err = upload(su, cfg.bytes); err != nil {
				return fmt.Errorf("%s: %w", s.name, err)
			}
			sm.hasCPU, sm.hasRTTs = s.wss != nil, true
			samples[i] = append(samples[i], *sm)
			fmt.Fprintf(os.Stderr, "round %d %-26s down %7.0f MB/s  up %7.0f MB/s  cpu %.2f/%.2f s/GB\n",
				round+1, s.name, sm.down, sm.up, sm.cpuDown, sm.cpuUp)
		}
		var rs sample
		if rs.down, rs.cpuDown, err = download(rdpSetup, cfg.bytes); err != nil {
			return fmt.Errorf("%s: %w", rdpSetup.name, err)
		}
		rdpRounds = append(rdpRounds, rs)
		fmt.Fprintf(os.Stderr, "round %d %-26s down %7.0f MB/s  cpu %.2f s/GB\n", round+1, rdpSetup.name, rs.down, rs.cpuDown)
	}
	if err := split(false); err != nil {
		return err
	}
	if relayOnly {
		// -only relay: the round trips and throughput rounds, for quick
		// iterations on the relay; the per-round lines above are the result.
		fmt.Fprintf(os.Stderr, "bench: -only relay does not write %s\n", cfg.out)
		fmt.Print(relayOnlySummary(samples))
		return nil
	}

	fmt.Fprintf(os.Stderr, "idle sessions: websockify %d, Portico %d\n", cfg.idlePeer, cfg.idle)
	peerIdle := idleSessions(peerFor("echo"), cfg.idlePeer, nil)
	porticoIdle := idleSessions(portico, cfg.idle, func() (relayStats, error) { return fetchStats(relayAddr) })

	fmt.Fprintln(os.Stderr, "RDCleanPath benchmark (go test)")
	rdpRaw, rdpWSS, rdpErr := rdpBench(cfg)

	fmt.Fprintln(os.Stderr, "portal under load (real gateway)") // bench/portal.go
	portal := portalPhase(ctx, cfg)

	ff := measureFirstFrame(cfg)

	sess := sessionsPhase(cfg.sessions, guacd)
	if err := sess.writeChart(cfg.sessions.chart); err != nil {
		return err
	}

	fmt.Fprintln(os.Stderr, "file transfer: RDP drive, SFTP, drive channel relay (go test)") // bench/files.go
	files, filesErr := fileBenches(cfg)

	table := render(cfg, setups, samples, peerIdle, porticoIdle, rdpRaw, rdpWSS, rdpErr, rdpRounds, portal, ff, sess) + renderFiles(files, filesErr)
	fmt.Print(table)
	if err := os.WriteFile(cfg.out, []byte(table), 0o644); err != nil {
		return fmt.Errorf("write %s: %w", cfg.out, err)
	}
	// The rest of the table is written, but a peer that could not run
	// fails the run.
	if sess.err != nil {
		return fmt.Errorf("RDP sessions through Portico and guacd: %w", sess.err)
	}
	return nil
}

// fdLimit is the descriptor limit the harness asks for: 10,000 sessions
// take two descriptors each in the relay and two in the harness (client
// and backend ends), far above Debian's default.
const fdLimit = 1 << 18

// fdReserve is what a process needs besides sessions: listeners, pipes,
// the Go runtime's own.
const fdReserve = 100

// raiseFDLimit lifts the descriptor limits for the thousands of idle
// sessions; the relay child inherits them. Raising the hard limit needs
// CAP_SYS_RESOURCE, so failing that the soft limit goes up to the hard
// one. It returns how many idle sessions fit: each takes two descriptors
// in the relay and two in this process (client and backend ends).
func raiseFDLimit() int {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		return 0
	}
	want := syscall.Rlimit{Cur: max(rl.Max, fdLimit), Max: max(rl.Max, fdLimit)}
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &want); err != nil {
		rl.Cur = rl.Max
		_ = syscall.Setrlimit(syscall.RLIMIT_NOFILE, &rl)
		fmt.Fprintf(os.Stderr, "bench: descriptor limit stays at %d: %v\n", rl.Max, err)
		want = rl
	}
	return int(want.Cur-fdReserve) / 2
}

// websockifyPID finds the websockify process listening on addr by its
// command line.
func websockifyPID(addr string) int {
	dirs, _ := os.ReadDir("/proc")
	for _, d := range dirs {
		pid, err := strconv.Atoi(d.Name())
		if err != nil {
			continue
		}
		cmdline, _ := os.ReadFile("/proc/" + d.Name() + "/cmdline")
		args := strings.Split(string(cmdline), "\x00")
		if len(args) > 1 && strings.Contains(args[0]+args[1], "websockify") && slices.Contains(args, addr) {
			if s, err := readStat(pid); err == nil && s.ppid == os.Getpid() {
				return pid
			}
		}
	}
	return 0
}

func fetchStats(addr string) (relayStats, error) {
	c := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}, Timeout: 30 * time.Second}
	defer c.CloseIdleConnections()
	resp, err := c.Get("https://" + addr + "/stats")
	if err != nil {
		return relayStats{}, fmt.Errorf("get stats: %w", err)
	}
	defer resp.Body.Close()
	var st relayStats
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		return relayStats{}, fmt.Errorf("decode stats: %w", err)
	}
	return st, nil
}

// maxIdleErrors ends the idle phase early: after that many failed
// sessions the rest would only wait out handshake timeouts.
const maxIdleErrors = 50

// idleSessions opens n sessions to the echo backend (one round trip each,
// so the backend socket is open), reads the relay's footprint, closes
// them and checks the descriptors return. stats, for a Go relay, reports
// goroutines and heap after a GC.
func idleSessions(s setup, n int, stats func() (relayStats, error)) idleResult {
	res := idleResult{sessions: n, goroutinesPer: -1}
	time.Sleep(500 * time.Millisecond) // let earlier sessions finish closing
	var st0 relayStats
	if stats != nil {
		st0, _ = stats()
	}
	fd0 := countFDs(s.pid)
	mem0 := memoryKB(s.pid, "Pss")

	conns := make([]conn, n)
	var mu sync.Mutex
	var wg sync.WaitGroup
	next := make(chan int)
	var failed atomic.Int64
	t0 := time.Now()
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, 1)
			for i := range next {
				if failed.Load() >= maxIdleErrors {
					continue // give up: the relay is out of something
				}
				c, err := s.dial("echo")
				if err == nil {
					if _, err = c.Write([]byte{'x'}); err == nil {
						_, err = io.ReadFull(c, buf)
					}
				}
				mu.Lock()
				if err != nil {
					failed.Add(1)
					res.errors++
					if res.firstErr == nil {
						res.firstErr = err
					}
				} else {
					conns[i] = c
				}
				mu.Unlock()
			}
		}()
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
	res.openTime = time.Since(t0)
	time.Sleep(time.Second) // idle

	open := n - res.errors
	if stats != nil {
		if st1, err := stats(); err == nil && open > 0 {
			res.goroutinesPer = float64(st1.Goroutines-st0.Goroutines) / float64(open)
			res.heapStackPerSes = float64(int64(st1.HeapInuse+st1.StackInuse)-int64(st0.HeapInuse+st0.StackInuse)) / float64(open)
		}
	}
	if open > 0 {
		res.kbPerSession = float64(memoryKB(s.pid, "Pss")-mem0) / float64(open)
	}
	for _, c := range conns {
		if c != nil {
			c.Close()
		}
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		res.fdsLeft = countFDs(s.pid) - fd0
		if res.fdsLeft <= 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	runtime.GC()
	return res
}

var benchLine = regexp.MustCompile(`^BenchmarkRDPDownload/(\S+?)(-\d+)?\s+\d+\s+[\d.]+ ns/op\s+([\d.]+) MB/s`)

// rdpBench runs the RDCleanPath benchmark beside the service code, which
// measures host→browser bytes through rdp.Accept and relay.Pipe over TLS
// against raw loopback TCP in the same process.
func rdpBench(cfg config) (raw, wss []float64, err error) {
	cmd := exec.Command("go", "test", "-run", "^$", "-bench", "BenchmarkRDPDownload", "-benchtime", "1s",
		"-count", strconv.Itoa(cfg.rounds), cfg.rdpPkg)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, nil, fmt.Errorf("rdp benchmark: %w", err)
	}
	if err := cmd.Start(); err != nil {
		return nil, nil, fmt.Errorf("rdp benchmark: %w", err)
	}
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		m := benchLine.FindStringSubmatch(sc.Text())
		if m == nil {
			continue
		}
		v, _ := strconv.ParseFloat(m[3], 64)
		if m[1] == "raw-tcp" {
			raw = append(raw, v)
		} else {
			wss = append(wss, v)
		}
	}
	if err := cmd.Wait(); err != nil {
		return raw, wss, fmt.Errorf("rdp benchmark: %w", err)
	}
	return raw, wss, nil
}
