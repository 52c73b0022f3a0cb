package integration

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"portico/internal/testbrowser"
)

// BenchmarkRDPSessions runs the same RDP session — one freerdp-shadow host
// on an Xvfb display with a moving workload (a terminal printing lines
// continuously and a window dragged about) — through two gateways, for
// 1, 4 and 16 concurrent sessions, interleaved:
//
//   - Portico: the real web client (IronRDP wasm) in headless Chromium
//     tabs, RDCleanPath over wss through the gateway process;
//   - Apache Guacamole's guacd (the benchmark's peer, built by the bench
//     harness and named by PORTICO_BENCH_GUACD): a lean Guacamole-protocol
//     client (guac_client_test.go) per session.
//
// For each it reads the gateway's CPU (Portico's gateway process; guacd's
// process tree, one child per connection) and proportional memory from
// /proc, and the bytes and frames the clients got. It writes the figures
// as JSON to PORTICO_BENCH_SESSIONS_OUT for the harness to print.
//
// A frame on the Portico side is one JavaScript task in which IronRDP drew
// on the session canvas (its putImageData calls of one update batch); on
// the guacd side one sync instruction, which ends guacd's frame.
func BenchmarkRDPSessions(b *testing.B) {
	guacd := os.Getenv("PORTICO_BENCH_GUACD")
	if guacd == "" {
		b.Fatal("PORTICO_BENCH_GUACD names no guacd executable: run this benchmark from `make bench` (go run ./bench), which builds guacd")
	}
	counts := []int{1, 4, 16}
	if s := os.Getenv("PORTICO_BENCH_SESSIONS"); s != "" {
		counts = counts[:0]
		for f := range strings.SplitSeq(s, ",") {
			n, err := strconv.Atoi(strings.TrimSpace(f))
			if err != nil || n < 1 {
				b.Fatalf("PORTICO_BENCH_SESSIONS %q: want counts like 1,4,16", s)
			}
			counts = append(counts, n)
		}
	}
	window := 10 * time.Second
	if s := os.Getenv("PORTICO_BENCH_SESSION_SECS"); s != "" {
		secs, err := strconv.Atoi(s)
		if err != nil || secs < 1 {
			b.Fatalf("PORTICO_BENCH_SESSION_SECS %q", s)
		}
		window = time.Duration(secs) * time.Second
	}
	rounds := 1
	if s := os.Getenv("PORTICO_BENCH_SESSION_ROUNDS"); s != "" {
		if r, err := strconv.Atoi(s); err == nil && r > 0 {
			rounds = r
		}
	}

	srv, p := rdpOffice(b)
	startWorkload(b, srv.Display)
	g := startGuacd(b, guacd)
	ctx := testbrowser.StartUnthrottled(b, gatewaySPKI(b, p))
	signIn(b, ctx, p)
	tabs := benchTabs(b, ctx, slices.Max(counts))

	var results []sessionsResult
	for b.Loop() {
		for round := range rounds {
			for _, n := range counts {
				for _, system := range []string{"portico", "guacd"} {
					var r sessionsResult
					if system == "portico" {
						r = porticoSessions(b, tabs, p, n, window)
					} else {
						r = guacdSessions(b, g, srv, n, window)
					}
					r.Round = round + 1
					fmt.Fprintf(os.Stderr, "%s %2d sessions: cpu %.1f%% of a core per session, %.1f MB per session, %.0f KB/s and %.1f fps per session\n",
						system, n, 100*r.CPUPerSession, r.MemPerSessionMB, r.BytesPerSec/1e3, r.FPS)
					results = append(results, r)
				}
			}
		}
	}
	if out := os.Getenv("PORTICO_BENCH_SESSIONS_OUT"); out != "" {
		js, _ := json.MarshalIndent(results, "", "  ")
		if err := os.WriteFile(out, js, 0o644); err != nil {
			b.Fatalf("write %s: %v", out, err)
		}
	}
}

// sessionsResult is one system at one session count, per session where it
// says so. CPUPerSession is in cores (CPU-seconds per second).
type sessionsResult struct {
	System          string
	Sessions        int
	Round           int
	Seconds         float64
	CPUPerSession   float64
	MemPerSessionMB float64
	BytesPerSec     float64 // to one client
	FPS             float64 // per client, mean over the clients
	MinFPS          float64 // the slowest client's
	// HostCPU is the RDP host's (freerdp-shadow-cli) CPU and ClientCPU the
	// clients' (Portico: Chromium's process tree; guacd: this test
	// process, which runs the Go clients), in cores: on a small machine
	// they share its cores with the gateway and bound the frame rate.
	HostCPU, ClientCPU float64
	// EndedEarly counts guacd attempts measured again because a session
	// ended early (0 for Portico, whose sessions must not end).
	EndedEarly int
}

// workloadPerl prints numbered lines of text as fast as a busy terminal
// scrolls (about 200 lines a second), bounded so it does not take a core.
const workloadPerl = `$|=1; for ($i = 0; ; $i++) { printf("%08d %s\n", $i, "portico benchmark workload " x 3); select(undef, undef, undef, 0.005); }`

// startWorkload starts the moving picture both systems are measured on: a
// terminal printing continuously and a second window dragged around the
// screen in steps of 8 pixels twenty times a second.
func startWorkload(b *testing.B, display string) {
	b.Helper()
	need(b, "xterm", "xterm")
	need(b, "xdotool", "xdotool")
	need(b, "perl", "perl-base")
	env := append(os.Environ(), "DISPLAY="+display)
	start := func(name string, args ...string) *exec.Cmd {
		cmd := exec.Command(name, args...)
		cmd.Env = env
		cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
		if err := cmd.Start(); err != nil {
			b.Fatalf("start %s: %v", name, err)
		}
		b.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
		return cmd
	}
	start("xterm", "-geometry", "120x40+0+0", "-e", "perl", "-e", workloadPerl)
	start("xterm", "-geometry", "40x12+300+200", "-title", "portico-bench-drag", "-bg", "navy", "-fg", "white", "-e", "top", "-d", "1")
	var id string
	waitFor(b, 20*time.Second, "the dragged window", func() bool {
		cmd := exec.Command("xdotool", "search", "--name", "portico-bench-drag")
		cmd.Env = env
		out, _ := cmd.Output()
		id = strings.TrimSpace(strings.SplitN(string(out), "\n", 2)[0])
		return id != ""
	})
	// One xdotool run moves the window along a rectangle for 10 seconds
	// (200 steps with sleeps between); the loop runs it again.
	var args []string
	for i := range 200 {
		x, y := 100+8*(i%50), 100+8*((i/50)%4)*10
		args = append(args, "windowmove", id, strconv.Itoa(x), strconv.Itoa(y), "sleep", "0.05")
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ctx.Err() == nil {
			cmd := exec.CommandContext(ctx, "xdotool", args...)
			cmd.Env = env
			if err := cmd.Run(); err != nil && ctx.Err() == nil {
				time.Sleep(time.Second)
			}
		}
	}()
	b.Cleanup(func() { cancel(); <-done })
}

// guacdServer is guacd listening on loopback.
type guacdServer struct {
	Addr string
	PID  int
	Logs *syncBuffer
}

// tail is the last n bytes of the buffer.
func (b *syncBuffer) tail(n int) string {
	s := b.String()
	return s[max(0, len(s)-n):]
}

// startGuacd starts guacd in the foreground on a free loopback port; its
// protocol libraries are in the lib folder beside its sbin.
func startGuacd(b *testing.B, exe string) guacdServer {
	b.Helper()
	if _, err := os.Stat(exe); err != nil {
		b.Fatalf("guacd %s: %v", exe, err)
	}
	lib := filepath.Join(filepath.Dir(filepath.Dir(exe)), "lib")
	port := freePort(b)
	cmd := exec.Command(exe, "-f", "-b", "127.0.0.1", "-l", strconv.Itoa(port), "-L", "info")
	cmd.Env = append(os.Environ(), "LD_LIBRARY_PATH="+lib, "HOME="+b.TempDir())
	logs := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = logs, logs
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		b.Fatalf("start guacd: %v", err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	b.Cleanup(func() {
		// guacd's per-connection children die with it (they are in its
		// process group only when started from a shell), so end the tree.
		for _, pid := range procTree(cmd.Process.Pid)[1:] {
			syscall.Kill(pid, syscall.SIGKILL)
		}
		cmd.Process.Kill()
		<-exited
		if b.Failed() {
			b.Logf("guacd log:\n%s", logs.String())
		}
	})
	addr := "127.0.0.1:" + strconv.Itoa(port)
	waitFor(b, 20*time.Second, "guacd to listen", func() bool {
		select {
		case <-exited:
			b.Fatalf("guacd exited: %s", logs.String())
		default:
		}
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
		}
		return err == nil
	})
	return guacdServer{Addr: addr, PID: cmd.Process.Pid, Logs: logs}
}

// sessionProbe is added to every document of a Portico session tab: it
// answers the credential prompt at once, counts what the RDP WebSocket
// receives, and counts frames — JavaScript tasks in which IronRDP drew on
// the session canvas.
const sessionProbe = `(() => {
  const probe = window.__bench = { frames: 0, bytes: 0, first: 0 };
  if (!location.pathname.includes('/session/')) return;
  const WS = window.WebSocket;
  window.WebSocket = class extends WS {
    constructor(...args) {
      super(...args);
      this.addEventListener('message', (e) => { probe.bytes += e.data.byteLength ?? e.data.size ?? e.data.length ?? 0; });
    }
  };
  const ctx2d = CanvasRenderingContext2D.prototype;
  const put = ctx2d.putImageData;
  let inTask = false;
  ctx2d.putImageData = function (...args) {
    put.apply(this, args);
    if (inTask || !this.canvas.closest('#screen')) return;
    inTask = true;
    probe.frames++;
    if (!probe.first) probe.first = performance.now();
    setTimeout(() => { inTask = false; }, 0);
  };
  const fill = () => {
    const box = document.getElementById('rdp-login');
    if (!box || box.hidden) { setTimeout(fill, 50); return; }
    document.getElementById('rdp-pass').value = 'test';
    document.getElementById('rdp-form').requestSubmit();
  };
  setTimeout(fill, 50);
})()`

// benchCounters is what a tab's probe has counted so far.
type benchCounters struct{ Frames, Bytes float64 }

// benchTab is a browser tab with the session probe installed.
type benchTab struct {
	ctx    context.Context
	cancel context.CancelFunc
}

// benchTabs returns n tabs of the browser: the signed-in first tab and new
// ones beside it (they share its cookies), each with the probe.
func benchTabs(b *testing.B, ctx context.Context, n int) []benchTab {
	b.Helper()
	tabs := make([]benchTab, n)
	for i := range tabs {
		tctx, cancel := ctx, context.CancelFunc(func() {})
		if i > 0 {
			tctx, cancel = chromedp.NewContext(ctx)
			// The context of a tab's first Run is the tab's lifetime: run's
			// deadline would close it.
			if err := chromedp.Run(tctx); err != nil {
				b.Fatalf("open tab %d: %v", i+1, err)
			}
		}
		tabs[i] = benchTab{tctx, cancel}
		run(b, tctx, 30*time.Second, chromedp.ActionFunc(func(ctx context.Context) error {
			_, err := page.AddScriptToEvaluateOnNewDocument(sessionProbe).Do(ctx)
			return err
		}))
	}
	b.Cleanup(func() {
		for _, t := range tabs {
			t.cancel()
		}
	})
	return tabs
}

// pollJS waits until expr is truthy in the tab, each evaluation with a
// deadline of its own (a page busy compiling wasm answers late).
func pollJS(b *testing.B, ctx context.Context, d time.Duration, expr, what string) {
	b.Helper()
	deadline := time.Now().Add(d)
	var last error
	for time.Now().Before(deadline) {
		ectx, cancel := context.WithTimeout(ctx, 20*time.Second)
		var ok bool
		last = chromedp.Run(ectx, chromedp.Evaluate(`!!(`+expr+`)`, &ok))
		cancel()
		if last == nil && ok {
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
	ectx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	var loc, body string
	chromedp.Run(ectx, chromedp.Location(&loc), chromedp.Evaluate(`document.body.innerText.slice(0, 300)`, &body))
	b.Fatalf("timed out waiting for %s (at %s, last error %v): %s", what, loc, last, strings.TrimSpace(body))
}

// porticoSessions opens n RDP sessions in the first n tabs, measures them
// over window once all draw, and ends them.
func porticoSessions(b *testing.B, tabs []benchTab, p *portico, n int, window time.Duration) sessionsResult {
	b.Helper()
	tabs = tabs[:n]
	mem0 := procPSSKB(p.PID)
	const sel = `button.open[data-id="office"]`
	for _, t := range tabs {
		run(b, t.ctx, 30*time.Second, chromedp.Navigate(p.URL+"/userportal/"), chromedp.WaitVisible(sel, chromedp.ByQuery),
			chromedp.Evaluate(fmt.Sprintf(`document.querySelector(%q).click(); true`, sel), nil))
	}
	defer func() {
		// Leaving the page closes its WebSocket, which ends the session on
		// the gateway.
		for _, t := range tabs {
			ectx, cancel := context.WithTimeout(t.ctx, 30*time.Second)
			chromedp.Run(ectx, chromedp.Navigate("about:blank"))
			cancel()
		}
		waitFor(b, 180*time.Second, "the gateway to end the sessions", func() bool {
			var sessions []map[string]any
			p.do(b, "GET", "/api/v1/sessions", nil, &sessions)
			return len(sessions) == 0
		})
	}()
	for i, t := range tabs {
		pollJS(b, t.ctx, 120*time.Second, `window.__bench?.first > 0`, fmt.Sprintf("Portico session %d of %d drawing", i+1, n))
	}
	time.Sleep(2 * time.Second) // past the first full-screen updates
	read := func() []benchCounters {
		out := make([]benchCounters, n)
		for i, t := range tabs {
			run(b, t.ctx, 30*time.Second, chromedp.Evaluate(`({Frames: __bench.frames, Bytes: __bench.bytes})`, &out[i]))
		}
		return out
	}
	host, browser := childNamed("freerdp-shadow"), childNamed("chromium")
	c0, cpu0, t0 := read(), procCPUSeconds(p.PID), time.Now()
	h0, b0 := procCPUSeconds(host), procCPUSeconds(browser)
	time.Sleep(window)
	c1, cpu1, t1 := read(), procCPUSeconds(p.PID), time.Now()
	h1, b1 := procCPUSeconds(host), procCPUSeconds(browser)
	mem1 := procPSSKB(p.PID)
	frames, bytes := make([]float64, n), 0.0
	for i := range c0 {
		frames[i] = c1[i].Frames - c0[i].Frames
		bytes += c1[i].Bytes - c0[i].Bytes
	}
	r := summarize("portico", n, t1.Sub(t0), cpu1-cpu0, mem1-mem0, bytes, frames)
	r.HostCPU, r.ClientCPU = (h1-h0)/r.Seconds, (b1-b0)/r.Seconds
	return r
}

// guacdSessions opens n sessions through guacd, measures them over window
// once all have had a frame, and ends them.
//
// guacd 1.6.0's connection process sometimes aborts on an assertion of its
// own (GUAC_ASSERT in guac_display_remove_layer) while the screen changes;
// a measurement in which a session ended early is repeated, up to three
// attempts, and the result counts the ended attempts.
func guacdSessions(b *testing.B, g guacdServer, srv rdpServer, n int, window time.Duration) sessionsResult {
	b.Helper()
	var failures []string
	for range 3 {
		r, err := guacdAttempt(b, g, srv, n, window)
		if err == nil {
			r.EndedEarly = len(failures)
			return r
		}
		fmt.Fprintf(os.Stderr, "guacd %d sessions: %v; measuring again\n", n, err)
		failures = append(failures, err.Error())
	}
	b.Fatalf("guacd %d sessions: three attempts ended early:\n%s\nguacd log:\n%s", n, strings.Join(failures, "\n"), g.Logs.tail(3000))
	return sessionsResult{}
}

// guacdAttempt is one measurement of n guacd sessions; an error says a
// session ended before the measurement did.
func guacdAttempt(b *testing.B, g guacdServer, srv rdpServer, n int, window time.Duration) (sessionsResult, error) {
	b.Helper()
	mem0 := procPSSKB(g.PID)
	sessions := make([]*guacSession, 0, n)
	defer func() {
		for _, s := range sessions {
			s.close()
		}
		waitFor(b, 60*time.Second, "guacd to end its connection processes", func() bool { return len(procTree(g.PID)) == 1 })
	}()
	for i := range n {
		s, err := guacRDP(g.Addr, srv, "test", "test", 1024, 768)
		if err != nil {
			b.Fatalf("guacd session %d of %d: %v", i+1, n, err)
		}
		sessions = append(sessions, s)
	}
	for i, s := range sessions {
		select {
		case <-s.firstFrame:
		case <-s.done:
			return sessionsResult{}, fmt.Errorf("session %d of %d ended before its first frame: %v (guacd: %s)", i+1, n, s.err, lastLine(g.Logs.tail(600)))
		case <-time.After(120 * time.Second):
			b.Fatalf("guacd session %d of %d: no frame in 2 minutes", i+1, n)
		}
	}
	time.Sleep(2 * time.Second)
	read := func() []benchCounters {
		out := make([]benchCounters, n)
		for i, s := range sessions {
			out[i] = benchCounters{float64(s.frames.Load()), float64(s.bytes.Load())}
		}
		return out
	}
	host := childNamed("freerdp-shadow")
	c0, cpu0, t0 := read(), procCPUSeconds(g.PID), time.Now()
	h0, s0 := procCPUSeconds(host), ownCPUSeconds()
	time.Sleep(window)
	c1, cpu1, t1 := read(), procCPUSeconds(g.PID), time.Now()
	h1, s1 := procCPUSeconds(host), ownCPUSeconds()
	mem1 := procPSSKB(g.PID)
	for i, s := range sessions {
		select {
		case <-s.done:
			return sessionsResult{}, fmt.Errorf("session %d of %d ended during the measurement: %v (guacd: %s)", i+1, n, s.err, lastLine(g.Logs.tail(600)))
		default:
		}
	}
	frames, bytes := make([]float64, n), 0.0
	for i := range c0 {
		frames[i] = c1[i].Frames - c0[i].Frames
		bytes += c1[i].Bytes - c0[i].Bytes
	}
	r := summarize("guacd", n, t1.Sub(t0), cpu1-cpu0, mem1-mem0, bytes, frames)
	r.HostCPU, r.ClientCPU = (h1-h0)/r.Seconds, (s1-s0)/r.Seconds
	return r, nil
}

// lastLine is the last line of guacd's log that says something went wrong,
// else its last line.
func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		if strings.Contains(lines[i], "GUAC_ASSERT") || strings.Contains(lines[i], "ERROR") {
			return strings.TrimSpace(lines[i])
		}
	}
	return strings.TrimSpace(lines[len(lines)-1])
}

// childNamed is the first child of this process whose command name starts
// with prefix (0 when there is none).
func childNamed(prefix string) int {
	dirs, _ := filepath.Glob("/proc/[0-9]*")
	for _, d := range dirs {
		pid, err := strconv.Atoi(filepath.Base(d))
		if err != nil {
			continue
		}
		comm, _ := os.ReadFile(d + "/comm")
		if st, err := procStat(pid); err == nil && st[1] == os.Getpid() && strings.HasPrefix(string(comm), prefix) {
			return pid
		}
	}
	return 0
}

// ownCPUSeconds is this process's own user+system CPU time, without its
// children (the host, guacd, the browser).
func ownCPUSeconds() float64 {
	st, err := procStat(os.Getpid())
	if err != nil {
		return 0
	}
	return float64(st[11]+st[12]) / 100
}

func summarize(system string, n int, d time.Duration, cpu float64, memKB int64, bytes float64, frames []float64) sessionsResult {
	secs := d.Seconds()
	r := sessionsResult{System: system, Sessions: n, Seconds: secs, CPUPerSession: cpu / secs / float64(n),
		MemPerSessionMB: float64(memKB) / 1024 / float64(n), BytesPerSec: bytes / secs / float64(n), MinFPS: -1}
	for _, f := range frames {
		r.FPS += f / secs / float64(n)
		if r.MinFPS < 0 || f/secs < r.MinFPS {
			r.MinFPS = f / secs
		}
	}
	return r
}

// procTree is pid and its living descendants.
func procTree(pid int) []int {
	parent := map[int]int{}
	dirs, _ := filepath.Glob("/proc/[0-9]*")
	for _, d := range dirs {
		p, err := strconv.Atoi(filepath.Base(d))
		if err != nil {
			continue
		}
		if st, err := procStat(p); err == nil {
			parent[p] = st[1]
		}
	}
	out := []int{pid}
	for i := 0; i < len(out); i++ {
		for p, pp := range parent {
			if pp == out[i] {
				out = append(out, p)
			}
		}
	}
	return out
}

// procStat returns fields of /proc/<pid>/stat after the command name as
// numbers where they are: [state, ppid, ..., utime (12), stime (13), ...].
func procStat(pid int) ([]int, error) {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return nil, fmt.Errorf("read stat of %d: %w", pid, err)
	}
	i := bytes.LastIndexByte(raw, ')')
	if i < 0 {
		return nil, fmt.Errorf("stat of %d: no command name", pid)
	}
	f := strings.Fields(string(raw[i+1:]))
	if len(f) < 15 {
		return nil, fmt.Errorf("stat of %d: %d fields", pid, len(f))
	}
	out := make([]int, len(f))
	for k, v := range f {
		out[k], _ = strconv.Atoi(v)
	}
	return out, nil
}

// procCPUSeconds is the user+system CPU time of pid and its living
// descendants (USER_HZ is 100).
func procCPUSeconds(pid int) float64 {
	if pid == 0 {
		return 0
	}
	var ticks int
	for _, p := range procTree(pid) {
		if st, err := procStat(p); err == nil {
			ticks += st[11] + st[12]
		}
	}
	return float64(ticks) / 100
}

// procPSSKB is the proportional set size of pid and its descendants.
func procPSSKB(pid int) int64 {
	var kb int64
	for _, p := range procTree(pid) {
		f, err := os.Open(fmt.Sprintf("/proc/%d/smaps_rollup", p))
		if err != nil {
			continue
		}
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if v, ok := strings.CutPrefix(sc.Text(), "Pss:"); ok {
				n, _ := strconv.ParseInt(strings.Fields(v)[0], 10, 64)
				kb += n
			}
		}
		f.Close()
	}
	return kb
}
