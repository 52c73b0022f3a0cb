package integration

import (
	"bufio"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"sync"
	"testing"
	"time"

	"portico/service/admin"
	"portico/service/signin"
)

// loadGateway is the real gateway binary running as a child process, so
// that its memory can be measured on its own.
type loadGateway struct {
	cmd       *exec.Cmd
	portalURL string // https://127.0.0.1:port/userportal/
	adminPW   string
	api       *admin.Client
}

func startLoadGateway(t *testing.T) *loadGateway {
	t.Helper()
	data := t.TempDir()
	cmd, stdout := runGatewayBinary(t, data)
	g := &loadGateway{cmd: cmd}
	sc := bufio.NewScanner(stdout)
	pwRE, urlRE := regexp.MustCompile(`password: (\S{20})`), regexp.MustCompile(`User Portal at (https://\S+)`)
	kill := time.AfterFunc(60*time.Second, func() { cmd.Process.Kill() })
	for sc.Scan() {
		if m := pwRE.FindStringSubmatch(sc.Text()); m != nil {
			g.adminPW = m[1]
		}
		if m := urlRE.FindStringSubmatch(sc.Text()); m != nil {
			g.portalURL = m[1]
			break
		}
	}
	kill.Stop()
	go io.Copy(io.Discard, stdout)
	if g.adminPW == "" || g.portalURL == "" {
		t.Fatal("gateway did not print its first-run password and portal URL")
	}
	var err error
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		if g.api, err = admin.Dial(data); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("admin API: %v", err)
		}
	}
	return g
}

func (g *loadGateway) stats(t *testing.T) signin.Stats {
	t.Helper()
	var st admin.Status
	if err := g.api.Do(context.Background(), "GET", "/api/v1/status", nil, &st); err != nil {
		t.Fatalf("status: %v", err)
	}
	if st.SignIn == nil {
		t.Fatal("status has no sign-in counters")
	}
	return *st.SignIn
}

// peakRSS is the gateway's high-water resident memory (VmHWM).
func (g *loadGateway) peakRSS(t *testing.T) int64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", g.cmd.Process.Pid))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`VmHWM:\s+(\d+) kB`).FindSubmatch(b)
	if m == nil {
		t.Fatalf("no VmHWM in /proc status")
	}
	kb, _ := strconv.ParseInt(string(m[1]), 10, 64)
	return kb << 10
}

// browser is one client with its own cookie jar and connection, from a
// given loopback source address.
type loadBrowser struct {
	c    *http.Client
	base string
}

func newLoadBrowser(base, srcIP string) *loadBrowser {
	jar, _ := cookiejar.New(nil)
	d := &net.Dialer{Timeout: 30 * time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP(srcIP)}}
	tr := &http.Transport{DialContext: d.DialContext, TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, MaxIdleConnsPerHost: 1}
	return &loadBrowser{base: base, c: &http.Client{Jar: jar, Timeout: 120 * time.Second, Transport: tr,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

var loadCSRF = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// form fetches the sign-in page (keeping the connection open) and returns
// its CSRF token.
func (b *loadBrowser) form() (string, error) {
	resp, err := b.c.Get(b.base)
	if err != nil {
		return "", err
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	m := loadCSRF.FindSubmatch(body)
	if m == nil {
		return "", fmt.Errorf("no sign-in form (%d)", resp.StatusCode)
	}
	return string(m[1]), nil
}

func (b *loadBrowser) post(csrf, user, pw string) (*http.Response, error) {
	resp, err := b.c.PostForm(b.base+"signin", url.Values{"csrf": {csrf}, "username": {user}, "password": {pw}})
	if err != nil {
		return nil, err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp, nil
}

func (b *loadBrowser) signIn(user, pw string) (int, error) {
	csrf, err := b.form()
	if err != nil {
		return 0, err
	}
	resp, err := b.post(csrf, user, pw)
	if err != nil {
		return 0, err
	}
	return resp.StatusCode, nil
}

// forget drops the session cookie (the browser signed out), keeping the
// device cookie.
func (b *loadBrowser) forget() {
	u, _ := url.Parse(b.base)
	var keep []*http.Cookie
	for _, c := range b.c.Jar.(*cookiejar.Jar).Cookies(u) {
		if c.Name == "_SessionId" {
			keep = append(keep, &http.Cookie{Name: c.Name, Path: u.Path, MaxAge: -1})
		}
	}
	b.c.Jar.SetCookies(u, keep)
}

// flood sends one wrong sign-in from each browser at the same moment: every
// browser first loads the form on its own connection, then all post
// together. It returns the answers' status codes and whether each 429
// carried Retry-After.
func floodSignIns(t *testing.T, bs []*loadBrowser, user func(i int) string, during func()) (codes map[int]int, noRetryAfter int) {
	t.Helper()
	csrfs := make([]string, len(bs))
	for i, b := range bs {
		var err error
		if csrfs[i], err = b.form(); err != nil {
			t.Fatalf("form %d: %v", i, err)
		}
	}
	codes = map[int]int{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i, b := range bs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			resp, err := b.post(csrfs[i], user(i), "wrong-password")
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				codes[-1]++
				return
			}
			codes[resp.StatusCode]++
			if resp.StatusCode == http.StatusTooManyRequests && resp.Header.Get("Retry-After") == "" {
				noRetryAfter++
			}
		}()
	}
	close(start)
	during()
	wg.Wait()
	return codes, noRetryAfter
}

// TestSigninUnderLoadBoundsHashesAndMemory starts the real gateway and
// sends 200 concurrent wrong sign-ins from one address, then 200 from 50
// addresses at one account, then 200 from 50 addresses at 200 names:
// at most the allowed number of password hashes run (counted by the
// gateway's guard), the rest are answered 429 with Retry-After, the
// gateway's peak memory stays under 300 MB, and a browser that signed in
// before signs in during each flood.
func TestSigninUnderLoadBoundsHashesAndMemory(t *testing.T) {
	g := startLoadGateway(t)
	known := newLoadBrowser(g.portalURL, "127.0.0.1")
	if code, err := known.signIn("admin", g.adminPW); err != nil || code != http.StatusSeeOther {
		t.Fatalf("first sign-in: %d %v", code, err)
	}
	knownSignsIn := func() {
		known.forget()
		if code, err := known.signIn("admin", g.adminPW); err != nil || code != http.StatusSeeOther {
			t.Errorf("a browser that signed in before could not sign in during the flood: %d %v", code, err)
		}
	}

	t.Run("one address", func(t *testing.T) {
		bs := make([]*loadBrowser, 200)
		for i := range bs {
			bs[i] = newLoadBrowser(g.portalURL, "127.0.0.2")
		}
		before := g.stats(t)
		codes, noRA := floodSignIns(t, bs, func(int) string { return "admin" }, knownSignsIn)
		after := g.stats(t)
		// The flood's hashes plus the known browser's one.
		if n := after.Checks - before.Checks; n > signin.FreeAttempts+1 {
			t.Fatalf("%d password checks for 200 wrong sign-ins from one address, want at most %d", n, signin.FreeAttempts+1)
		}
		if codes[http.StatusUnauthorized] > signin.FreeAttempts || codes[http.StatusTooManyRequests] < 200-signin.FreeAttempts || noRA > 0 {
			t.Fatalf("answers %v (%d 429s without Retry-After)", codes, noRA)
		}
	})

	t.Run("fifty addresses one account", func(t *testing.T) {
		// A fresh account, so that the first flood's lock-out does not
		// decide this one.
		if err := g.api.Do(context.Background(), "POST", "/api/v1/users", map[string]any{"username": "carol", "password": "carol-password-1"}, nil); err != nil {
			t.Fatal(err)
		}
		bs := make([]*loadBrowser, 200)
		for i := range bs {
			bs[i] = newLoadBrowser(g.portalURL, fmt.Sprintf("127.0.0.%d", 10+i%50))
		}
		before := g.stats(t)
		codes, noRA := floodSignIns(t, bs, func(int) string { return "carol" }, knownSignsIn)
		after := g.stats(t)
		if n := after.Checks - before.Checks; n > signin.FreeAttempts+1 {
			t.Fatalf("%d password checks for 200 wrong sign-ins at one account, want at most %d", n, signin.FreeAttempts+1)
		}
		if codes[http.StatusTooManyRequests] < 200-signin.FreeAttempts || noRA > 0 {
			t.Fatalf("answers %v (%d 429s without Retry-After)", codes, noRA)
		}
	})

	t.Run("fifty addresses many names", func(t *testing.T) {
		bs := make([]*loadBrowser, 200)
		for i := range bs {
			bs[i] = newLoadBrowser(g.portalURL, fmt.Sprintf("127.0.1.%d", 10+i%50))
		}
		before := g.stats(t)
		codes, noRA := floodSignIns(t, bs, func(i int) string { return "nobody" + strconv.Itoa(i) }, knownSignsIn)
		after := g.stats(t)
		// Here only the gateway-wide limit stands between the flood and
		// the hashes: never more in flight than its slots.
		if after.PeakInFlight > int64(after.Limit+after.Reserved) {
			t.Fatalf("%d hashes in flight at once, the limit is %d+%d", after.PeakInFlight, after.Limit, after.Reserved)
		}
		if codes[http.StatusTooManyRequests] == 0 || after.Busy == before.Busy || noRA > 0 {
			t.Fatalf("nothing refused as busy: answers %v, stats %+v", codes, after)
		}
		if codes[http.StatusUnauthorized]+codes[http.StatusTooManyRequests] != 200 {
			t.Fatalf("answers %v", codes)
		}
		t.Logf("answers %v, %d checks", codes, after.Checks-before.Checks)
	})

	if rss := g.peakRSS(t); rss > 300<<20 {
		t.Fatalf("gateway peak RSS %d MB, want under 300 MB", rss>>20)
	} else {
		t.Logf("gateway peak RSS %d MB", rss>>20)
	}
}
