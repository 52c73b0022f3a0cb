package main

// The portal load phase: the real portico-gateway, built from ./service and
// run with its own data directory, answering many signed-in clients at once
// on the two requests a portal page makes over and over — listing the
// user's resources and asking for a launch ticket. Sign-in is measured by
// no one here: its argon2id cost is deliberate.

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"portico/service/admin"
)

// portalConfig is the portal phase's flags.
type portalConfig struct {
	only    string        // "portal", "frame" or "files": run that phase alone
	clients int           // concurrent signed-in clients
	secs    time.Duration // load per endpoint per round
}

func (c *portalConfig) register(fs *flag.FlagSet) {
	fs.StringVar(&c.only, "only", "", `run one phase alone and print it without writing -out: "relay" (targets 1–3: round trips and throughput only), "portal" (target 5), "frame" (target 6: RDP time to first frame, web client size), "sessions" (target 7: RDP sessions, Portico vs guacd) or "files" (RDP drive and SFTP file transfer, drive channel relay)`)
	fs.IntVar(&c.clients, "portal-clients", 64, "concurrent signed-in portal clients")
	fs.DurationVar(&c.secs, "portal-time", 3*time.Second, "load per portal endpoint per round")
}

// Portal targets (issue 8, target 5).
const (
	portalMinRate = 5000
	portalMaxP99  = 20 * time.Millisecond
)

// benchUser is the portal user every client signs in as; each client has
// its own sign-in (session, cookie, CSRF token), as 64 browsers would.
const (
	benchUser     = `OFFICE\alice`
	benchPassword = "alice-password-for-bench"
)

// benchResources are the resources alice is assigned: one per protocol,
// pointing at loopback ports nobody needs to answer on, since neither
// listing nor issuing a ticket dials the host.
var benchResources = []struct {
	id, name, protocol string
	port               int
}{
	{"desk", "Design desk (VNC)", "vnc", 5900},
	{"shell", "Build shell (SSH)", "ssh", 22},
	{"office", "Office desktop (RDP)", "rdp", 3389},
}

// endpointLoad is one portal endpoint's rounds.
type endpointLoad struct {
	name     string // as shown in the table
	rates    []float64
	p50, p99 []time.Duration
	cpuPer   []float64 // gateway CPU-µs per request
	errs     int
	firstErr error
}

// portalResult is the phase's outcome; err set means it could not run.
type portalResult struct {
	clients   int
	secs      time.Duration
	rounds    int
	dataFS    string
	endpoints []*endpointLoad
	// signins compares sign-ins of a local and a directory account
	// (bench/signin.go).
	signins []*endpointLoad
	err     error
}

// portalGateway is a running gateway with alice and her resources.
type portalGateway struct {
	cmd  *exec.Cmd
	base string // https://127.0.0.1:PORT/userportal
	logs *bytes.Buffer
}

// portalClient is one signed-in browser: its own cookie jar, CSRF token and
// keep-alive HTTPS connection.
type portalClient struct {
	http *http.Client
	csrf string
}

// runPortalOnly is `-only portal`: the phase alone, printed, results.md
// untouched (it holds the whole harness's table).
func runPortalOnly(ctx context.Context, cfg config) error {
	res := portalPhase(ctx, cfg)
	if res.err != nil {
		return res.err
	}
	var b strings.Builder
	renderPortalTable(&b, res)
	fmt.Fprintf(&b, "\n| # | target | measured | verdict |\n|---|---|---|---|\n")
	renderPortalTargets(&b, res)
	fmt.Print(b.String())
	fmt.Fprintf(os.Stderr, "bench: -only portal does not write %s\n", cfg.out)
	return nil
}

// portalPhase builds and starts the gateway, signs the clients in and loads
// each endpoint for cfg.rounds rounds, interleaved.
func portalPhase(ctx context.Context, cfg config) portalResult {
	pc := cfg.portal
	res := portalResult{clients: pc.clients, secs: pc.secs, rounds: cfg.rounds}
	dir, err := os.MkdirTemp("", "portico-bench-portal-")
	if err != nil {
		res.err = fmt.Errorf("temp dir: %w", err)
		return res
	}
	defer os.RemoveAll(dir)
	res.dataFS = fsType(dir)
	g, err := startPortalGateway(ctx, dir)
	if err != nil {
		res.err = err
		return res
	}
	defer g.stop()
	fmt.Fprintf(os.Stderr, "portal: signing in %d clients\n", pc.clients)
	clients, err := g.signIn(ctx, pc.clients)
	if err != nil {
		res.err = err
		return res
	}
	defer func() {
		for _, c := range clients {
			c.http.CloseIdleConnections()
		}
	}()

	endpoints := []struct {
		load *endpointLoad
		do   func(context.Context, *portalClient, int) error
	}{
		{&endpointLoad{name: "resource list, GET /api/resources"}, g.listResources},
		{&endpointLoad{name: "portal page with the list, GET /"}, g.homePage},
		{&endpointLoad{name: "launch ticket, POST /api/launch/{id}"}, g.launch},
	}
	for _, e := range endpoints { // warm up: connections, caches, the Go runtime
		loadEndpoint(ctx, clients, pc.secs/3, e.do, 0)
	}
	for round := range cfg.rounds {
		for _, e := range endpoints {
			cpu0 := cpuSeconds(g.cmd.Process.Pid)
			s := loadEndpoint(ctx, clients, pc.secs, e.do, round)
			cpu := cpuSeconds(g.cmd.Process.Pid) - cpu0
			l := e.load
			l.rates = append(l.rates, s.rate)
			l.p50 = append(l.p50, s.p50)
			l.p99 = append(l.p99, s.p99)
			if s.ok > 0 {
				l.cpuPer = append(l.cpuPer, cpu/float64(s.ok)*1e6)
			}
			l.errs += s.errs
			if l.firstErr == nil {
				l.firstErr = s.firstErr
			}
			fmt.Fprintf(os.Stderr, "round %d portal %-40s %7.0f req/s  p50 %v  p99 %v  errors %d\n",
				round+1, l.name, s.rate, s.p50.Round(10*time.Microsecond), s.p99.Round(10*time.Microsecond), s.errs)
		}
	}
	for _, e := range endpoints {
		res.endpoints = append(res.endpoints, e.load)
	}
	res.signins = g.signInLoads(ctx, filepath.Join(dir, "data"), pc.secs, cfg.rounds)
	return res
}

// loadSample is one endpoint's load for one round.
type loadSample struct {
	ok, errs int
	rate     float64
	p50, p99 time.Duration
	firstErr error
}

// loadEndpoint runs every client in a closed loop (next request when the
// last one is answered) for d. Failed requests count as errors and not as
// latencies; the rate is of answered requests only.
func loadEndpoint(ctx context.Context, clients []*portalClient, d time.Duration, do func(context.Context, *portalClient, int) error, round int) loadSample {
	ctx, cancel := context.WithTimeout(ctx, d+30*time.Second) // against a hung gateway
	defer cancel()
	var (
		mu  sync.Mutex
		all []time.Duration
		out loadSample
		wg  sync.WaitGroup
	)
	start := time.Now()
	end := start.Add(d)
	for i, c := range clients {
		wg.Go(func() {
			lat := make([]time.Duration, 0, 4096)
			var errs int
			var first error
			for n := i + round; time.Now().Before(end) && ctx.Err() == nil; n++ {
				t0 := time.Now()
				if err := do(ctx, c, n); err != nil {
					errs++
					if first == nil {
						first = err
					}
					continue
				}
				lat = append(lat, time.Since(t0))
			}
			mu.Lock()
			all = append(all, lat...)
			out.errs += errs
			if out.firstErr == nil {
				out.firstErr = first
			}
			mu.Unlock()
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	slices.Sort(all)
	out.ok = len(all)
	out.rate = float64(len(all)) / elapsed.Seconds()
	if len(all) > 0 {
		out.p50 = all[len(all)/2]
		out.p99 = all[min(len(all)-1, len(all)*99/100)]
	}
	return out
}

// startPortalGateway builds the gateway into dir and starts it on fresh
// loopback ports, then adds alice and her resources through the admin API.
func startPortalGateway(ctx context.Context, dir string) (*portalGateway, error) {
	bin := filepath.Join(dir, "portico-gateway")
	build := exec.CommandContext(ctx, "go", "build", "-o", bin, "./service")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("build the gateway (go build ./service, from the repository root): %w\n%s", err, out)
	}
	data := filepath.Join(dir, "data")
	var ports [3]int
	for i := range ports {
		p, err := freePort()
		if err != nil {
			return nil, err
		}
		ports[i] = p
	}
	addr := func(p int) string { return "127.0.0.1:" + strconv.Itoa(p) }
	cmd := exec.Command(bin, "run", "--data-dir", data, "--https-addr", addr(ports[0]),
		"--http-addr", addr(ports[1]), "--admin-addr", addr(ports[2]), "--dns-addr", "127.0.0.1:0", "--log-level", "warn")
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	g := &portalGateway{cmd: cmd, logs: &bytes.Buffer{}}
	cmd.Stderr = g.logs // read only after the process is gone
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, fmt.Errorf("gateway stdout: %w", err)
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start the gateway: %w", err)
	}
	started := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if m := portalURL.FindStringSubmatch(sc.Text()); m != nil {
				started <- m[1]
				break
			}
		}
		close(started)
		_, _ = io.Copy(io.Discard, out)
	}()
	select {
	case u, ok := <-started:
		if !ok {
			g.stop()
			return nil, fmt.Errorf("the gateway did not start:\n%s", g.logs)
		}
		g.base = strings.TrimSuffix(u, "/")
	case <-time.After(60 * time.Second):
		g.stop()
		return nil, fmt.Errorf("the gateway did not start within a minute:\n%s", g.logs)
	}
	if err := g.seed(ctx, data); err != nil {
		g.stop()
		return nil, err
	}
	return g, nil
}

var portalURL = regexp.MustCompile(`User Portal at (https://\S+)`)

func (g *portalGateway) stop() { stop(g.cmd) }

// seed adds group staff, alice in it, and one resource per protocol.
func (g *portalGateway) seed(ctx context.Context, data string) error {
	api, err := admin.Dial(data)
	if err != nil {
		return fmt.Errorf("admin API: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	calls := []struct {
		path string
		body any
	}{
		{"/api/v1/groups", map[string]string{"name": "staff"}},
		{"/api/v1/users", map[string]any{"username": "alice", "domain": "OFFICE", "groups": []string{"staff"}, "password": benchPassword}},
	}
	for _, r := range benchResources {
		calls = append(calls, struct {
			path string
			body any
		}{"/api/v1/resources", map[string]any{"id": r.id, "name": r.name, "protocol": r.protocol, "host": "127.0.0.1", "port": r.port, "groups": []string{"staff"}}})
	}
	for _, c := range calls {
		if err := api.Do(ctx, "POST", c.path, c.body, nil); err != nil {
			return fmt.Errorf("admin API POST %s: %w", c.path, err)
		}
	}
	return nil
}

var (
	signInCSRF = regexp.MustCompile(`name="csrf" value="([^"]+)"`)
	pageCSRF   = regexp.MustCompile(`data-csrf="([^"]+)"`)
)

// signIn signs n clients in as the page does (sign-in form with its
// pre-auth CSRF token, then the home page's token for API calls), a few at
// a time since each sign-in hashes the password.
func (g *portalGateway) signIn(ctx context.Context, n int) ([]*portalClient, error) {
	clients := make([]*portalClient, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	sem := make(chan struct{}, 4)
	for i := range clients {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			clients[i], errs[i] = g.signInOne(ctx)
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return clients, nil
}

func (g *portalGateway) signInOne(ctx context.Context) (*portalClient, error) {
	jar, err := cookiejar.New(nil)
	if err != nil {
		return nil, fmt.Errorf("cookie jar: %w", err)
	}
	c := &portalClient{http: &http.Client{Jar: jar, Timeout: 30 * time.Second, Transport: &http.Transport{
		// The gateway's certificate is its own self-signed one. One
		// keep-alive connection per client, as one browser tab.
		TLSClientConfig:     &tls.Config{InsecureSkipVerify: true},
		MaxConnsPerHost:     1,
		MaxIdleConnsPerHost: 1,
	}}}
	form, err := c.get(ctx, g.base+"/")
	if err != nil {
		return nil, err
	}
	m := signInCSRF.FindStringSubmatch(form)
	if m == nil {
		return nil, fmt.Errorf("the sign-in page at %s/ has no CSRF field", g.base)
	}
	req, err := http.NewRequestWithContext(ctx, "POST", g.base+"/signin",
		strings.NewReader(url.Values{"csrf": {m[1]}, "username": {benchUser}, "password": {benchPassword}}.Encode()))
	if err != nil {
		return nil, fmt.Errorf("sign in: %w", err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("sign in: %w", err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	home, err := c.get(ctx, g.base+"/")
	if err != nil {
		return nil, err
	}
	if m = pageCSRF.FindStringSubmatch(home); m == nil {
		return nil, fmt.Errorf("sign-in as %s failed: the portal home page has no CSRF token", benchUser)
	}
	c.csrf = m[1]
	return c, nil
}

// get fetches a page and fails on any status but 200.
func (c *portalClient) get(ctx context.Context, u string) (string, error) {
	req, err := http.NewRequestWithContext(ctx, "GET", u, nil)
	if err != nil {
		return "", fmt.Errorf("GET %s: %w", u, err)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return "", fmt.Errorf("GET %s: %w", u, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", fmt.Errorf("GET %s: %w", u, err)
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("GET %s: %s", u, resp.Status)
	}
	return string(b), nil
}

// listResources is the JSON resource list; it must hold all of alice's.
func (g *portalGateway) listResources(ctx context.Context, c *portalClient, _ int) error {
	req, err := http.NewRequestWithContext(ctx, "GET", g.base+"/api/resources", nil)
	if err != nil {
		return fmt.Errorf("list resources: %w", err)
	}
	req.Header.Set("Accept", "application/json")
	var list []struct{ ID string }
	if err := c.doJSON(req, &list); err != nil {
		return fmt.Errorf("list resources: %w", err)
	}
	if len(list) != len(benchResources) {
		return fmt.Errorf("list resources: %d resources, want %d", len(list), len(benchResources))
	}
	return nil
}

// homePage is the portal page, which renders the resource list itself.
func (g *portalGateway) homePage(ctx context.Context, c *portalClient, _ int) error {
	page, err := c.get(ctx, g.base+"/")
	if err != nil {
		return err
	}
	for _, r := range benchResources {
		if !strings.Contains(page, r.name) {
			return fmt.Errorf("the portal page lacks resource %q", r.name)
		}
	}
	return nil
}

// launch asks for a ticket exactly as portal.js does when a user opens a
// resource, cycling through the resources.
func (g *portalGateway) launch(ctx context.Context, c *portalClient, n int) error {
	id := benchResources[n%len(benchResources)].id
	req, err := http.NewRequestWithContext(ctx, "POST", g.base+"/api/launch/"+url.PathEscape(id), nil)
	if err != nil {
		return fmt.Errorf("launch %s: %w", id, err)
	}
	req.Header.Set("X-CSRF-Token", c.csrf)
	req.Header.Set("Accept", "application/json")
	var reply struct{ URL, Action string }
	if err := c.doJSON(req, &reply); err != nil {
		return fmt.Errorf("launch %s: %w", id, err)
	}
	if reply.Action != "browser" || !strings.Contains(reply.URL, "/session/"+id+"#ticket=") {
		return fmt.Errorf("launch %s: reply %+v has no browser ticket", id, reply)
	}
	return nil
}

// doJSON sends req and decodes a 200 answer into out.
func (c *portalClient) doJSON(req *http.Request, out any) error {
	resp, err := c.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return fmt.Errorf("read answer: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %s", resp.Status, bytes.TrimSpace(body))
	}
	if err := json.Unmarshal(body, out); err != nil {
		return fmt.Errorf("decode answer: %w", err)
	}
	return nil
}

// fsType names the file system of dir: durable writes cost what its
// fsync costs, and on tmpfs they cost nothing, which would flatter them.
func fsType(dir string) string {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return "unknown"
	}
	switch st.Type {
	case 0x01021994:
		return "tmpfs (fsync is free there: durable writes look cheaper than on a disk)"
	case 0xEF53:
		return "ext4"
	case 0x58465342:
		return "xfs"
	case 0x9123683E:
		return "btrfs"
	case 0x794C7630:
		return "overlayfs"
	}
	return fmt.Sprintf("file system 0x%x", st.Type)
}

// renderPortalTable is the portal phase's table: medians over the rounds
// with [min–max] for the rate.
func renderPortalTable(b *strings.Builder, r portalResult) {
	fmt.Fprintf(b, "\n## Portal under load (real gateway)\n\n")
	if r.err != nil {
		fmt.Fprintf(b, "The portal phase could not run: %v\n", r.err)
		return
	}
	fmt.Fprintf(b, "portico-gateway built from `./service`, data directory on %s. %d clients each signed in once as the same user (own session cookie, CSRF token and one keep-alive HTTPS connection), in a closed loop (next request when the last is answered) for %v per endpoint per round, %d rounds interleaved; the load generator shares the machine's cores with the gateway. Sign-in is measured on its own below. Medians over rounds, [min–max] for req/s; errors are summed. Gateway CPU is its process's user+system time per answered request. The portal page renders the resource list into GET / itself (its script does not call /api/resources, the JSON list), so both are measured; a launch is the page's POST with its CSRF header, cycling through one VNC, SSH and RDP resource.\n\n",
		r.dataFS, r.clients, r.secs, r.rounds)
	fmt.Fprintf(b, "| portal endpoint, %d concurrent clients | req/s | p50 | p99 | errors | gateway CPU per request |\n|---|---|---|---|---|---|\n", r.clients)
	for _, e := range r.endpoints {
		errText := "0"
		if e.errs > 0 {
			errText = fmt.Sprintf("%d (first: %v)", e.errs, e.firstErr)
		}
		fmt.Fprintf(b, "| %s | %s | %v | %v | %s | %.0f µs |\n", e.name, spreadOf(e.rates), e.medP50(), e.medP99(), errText, spreadOf(e.cpuPer).med)
	}
	renderSignInTable(b, r.signins) // bench/signin.go
}

// renderPortalTargets writes the target-5 rows of the targets table.
func renderPortalTargets(b *strings.Builder, r portalResult) {
	if r.err != nil {
		fmt.Fprintf(b, "| 5 | portal resource list / launch ticket ≥ 5,000 req/s, p99 < 20 ms | not measured: %v | MISS |\n", r.err)
		return
	}
	for _, e := range r.endpoints {
		rate, p99 := spreadOf(e.rates).med, e.medP99()
		fmt.Fprintf(b, "| 5 | %s: ≥ %d req/s and p99 < %v and 0 errors, %d clients | %.0f req/s, p99 %v, %d errors | %s |\n",
			e.name, portalMinRate, portalMaxP99, r.clients, rate, p99, e.errs, verdict(rate >= portalMinRate && p99 < portalMaxP99 && e.errs == 0))
	}
}

func (e *endpointLoad) medP50() time.Duration { return medDur(e.p50).Round(10 * time.Microsecond) }
func (e *endpointLoad) medP99() time.Duration { return medDur(e.p99).Round(10 * time.Microsecond) }

func medDur(d []time.Duration) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	return s[len(s)/2]
}
