package portal

import (
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"regexp"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"portico/service/config"
	"portico/service/directory"
	"portico/service/sessions"
	"portico/service/signin"
	"portico/service/store"
)

// valueAttr hides what the page echoes of the request (the typed name,
// the fresh CSRF token) so that two answers can be compared as pages.
var valueAttr = regexp.MustCompile(`value="[^"]*"`)

// TestSigninTimingEveryFailureCostsOneHash: an unknown user, an existing
// name in a wrong domain, a wrong password and a disabled account with a
// wrong password each run exactly one password hash (counted through the
// portal's hash function) and get the same status and page; as a coarse
// check their median times are within 25% of each other.
func TestSigninTimingEveryFailureCostsOneHash(t *testing.T) {
	var hashes atomic.Int64
	// Enough free attempts that 120 failures from one address are all
	// checked: this test is about equal work, the throttle has its own.
	e := newEnv(t, func(d *Deps) { d.Guard = signin.NewGuard(signin.Options{FreeAttempts: 1000}) })
	real := e.p.checkPassword
	e.p.checkPassword = func(phc, pw string) bool { hashes.Add(1); return real(phc, pw) }

	kinds := []struct{ name, user string }{
		{"unknown user", "nobody%d"},
		{"wrong domain", "alice@elsewhere"},
		{"wrong password", "alice"},
		{"disabled account", "bob"},
	}
	const tries = 30
	// measure runs 30 tries of each kind, checking work and answer every
	// time, and returns the median times.
	measure := func() []time.Duration {
		times := make([][]time.Duration, len(kinds))
		var firstStatus int
		var firstPage string
		c := e.client()
		hashes.Store(0)
		for i := 0; i < tries; i++ {
			// Interleaved in a new order each round, so that load and garbage
			// collection hit every kind alike.
			for _, k := range rand.Perm(len(kinds)) {
				kind := kinds[k]
				user := kind.user
				if k == 0 {
					user = fmt.Sprintf(user, i)
				}
				_, page := e.get(c, "/userportal/")
				m := csrfRE.FindStringSubmatch(page)
				if m == nil {
					t.Fatal("no csrf field")
				}
				before := hashes.Load()
				start := time.Now()
				resp, err := c.PostForm(e.srv.URL+"/userportal/signin", url.Values{"csrf": {m[1]}, "username": {user}, "password": {"not-the-password"}})
				if err != nil {
					t.Fatal(err)
				}
				body := readAll(resp)
				times[k] = append(times[k], time.Since(start))
				if n := hashes.Load() - before; n != 1 {
					t.Fatalf("%s: %d password hashes, want exactly 1", kind.name, n)
				}
				got := valueAttr.ReplaceAllString(body, `value=""`)
				if firstPage == "" {
					firstStatus, firstPage = resp.StatusCode, got
					if firstStatus != http.StatusUnauthorized {
						t.Fatalf("%s: status %d, want 401", kind.name, firstStatus)
					}
				} else if resp.StatusCode != firstStatus || got != firstPage {
					t.Fatalf("%s answers differently: %d vs %d\n%s\n---\n%s", kind.name, resp.StatusCode, firstStatus, got, firstPage)
				}
			}
		}
		medians := make([]time.Duration, len(kinds))
		for k := range kinds {
			sort.Slice(times[k], func(i, j int) bool { return times[k][i] < times[k][j] })
			medians[k] = times[k][tries/2]
		}
		return medians
	}
	// The machine may be busy with other work: a run whose medians differ
	// by more is measured again, up to three runs. A real difference (a
	// skipped hash is 50 ms against 2 ms) fails every run.
	var medians []time.Duration
	for run := 0; run < 3; run++ {
		medians = measure()
		lo, hi := medians[0], medians[0]
		for _, m := range medians {
			lo, hi = min(lo, m), max(hi, m)
		}
		t.Logf("run %d: medians %v", run+1, medians)
		if float64(hi)/float64(lo) <= 1.25 {
			return
		}
	}
	t.Fatalf("medians differ by more than 25%% in three runs: %v (kinds %v)", medians, kinds)
}

func readAll(resp *http.Response) string {
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// TestSigninDeviceCookieSurvivesLockout: failures from elsewhere lock the
// account for unknown browsers, the right password included, but a
// browser holding the device cookie of an earlier sign-in gets in.
func TestSigninDeviceCookieSurvivesLockout(t *testing.T) {
	e := newEnv(t)
	known := e.client()
	if resp, _ := e.signIn(known, "alice", "alice-password"); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("first sign-in: %d", resp.StatusCode)
	}
	u, _ := url.Parse(e.srv.URL + "/userportal/")
	hasDevice := false
	for _, ck := range known.Jar.Cookies(u) {
		hasDevice = hasDevice || ck.Name == "_SessionId"+deviceSuffix
	}
	if !hasDevice {
		t.Fatal("no device cookie after a successful sign-in")
	}
	// The browser's session ended (signed out, expired); its device
	// cookie stays.
	known.Jar.SetCookies(u, []*http.Cookie{{Name: "_SessionId", Value: "", Path: "/userportal/", MaxAge: -1}})
	attacker := e.client()
	for i := 0; i < signin.FreeAttempts; i++ {
		e.signIn(attacker, "alice", "guess")
	}
	if resp, _ := e.signIn(e.client(), "alice", "alice-password"); resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("unknown browser on an attacked account: %d", resp.StatusCode)
	}
	if resp, body := e.signIn(known, "alice", "alice-password"); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("known device locked out by someone else's failures: %d\n%s", resp.StatusCode, regexp.MustCompile(`(?s)class="error"[^<]*<`).FindString(body)+body[:0])
	}
}

// TestAuditFloodOfRefusalsKeepsSecurityEvents floods throttled sign-ins
// for sixty aggregation windows (the store's minute, shortened for the
// test) from one address and from thousands, and checks that refusals
// were aggregated (one record per source and reason a window, with a
// count), that their records were pruned to their own limit, and that no
// security event written before the flood was pruned.
func TestAuditFloodOfRefusalsKeepsSecurityEvents(t *testing.T) {
	const window = 100 * time.Millisecond
	e := newEnvWithStore(t, store.Options{RefusalWindow: window, MaxAuditEvents: 1000, MaxRefusalRecords: 300})
	err := e.st.Apply(e.live, config.DefaultGatewayID, func(tx *store.Tx) error {
		g, err := tx.Gateway(config.DefaultGatewayID)
		if err != nil {
			return err
		}
		g.TrustedProxies = []string{"127.0.0.1/32"}
		return tx.PutGateway(g)
	})
	if err != nil {
		t.Fatal(err)
	}
	// Security events before the flood: sign-ins of alice.
	const before = 20
	for i := 0; i < before; i++ {
		c := e.client()
		if resp, _ := e.signIn(c, "alice", "alice-password"); resp.StatusCode != http.StatusSeeOther {
			t.Fatalf("sign-in %d: %d", i, resp.StatusCode)
		}
	}
	// Lock alice for unknown devices, then flood.
	for i := 0; i < signin.FreeAttempts; i++ {
		e.signIn(e.client(), "alice", "guess")
	}
	var sent, fromOne atomic.Int64
	stop := time.Now().Add(60 * window)
	var wg sync.WaitGroup
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := e.client()
			_, page := e.get(c, "/userportal/")
			for n := 0; time.Now().Before(stop); n++ {
				m := csrfRE.FindStringSubmatch(page)
				if m == nil {
					t.Error("no csrf field in the refusal page")
					return
				}
				src := fmt.Sprintf("10.%d.%d.%d", w, (n>>8)&255, n&255)
				if n%2 == 0 {
					src = "192.0.2.1"
					fromOne.Add(1)
				}
				req, _ := http.NewRequest("POST", e.srv.URL+"/userportal/signin", strings.NewReader(url.Values{"csrf": {m[1]}, "username": {"alice"}, "password": {"guess"}}.Encode()))
				req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
				req.Header.Set("X-Forwarded-For", src)
				resp, err := c.Do(req)
				if err != nil {
					t.Error(err)
					return
				}
				page = readAll(resp)
				switch resp.StatusCode {
				case http.StatusTooManyRequests:
					sent.Add(1)
				case http.StatusUnauthorized:
					// Once per lock-out (5 s, then 10 s) one attempt is checked.
				default:
					t.Errorf("flood answer %d, want 429", resp.StatusCode)
					return
				}
			}
		}()
	}
	wg.Wait()
	if err := e.st.FlushRefusals(); err != nil {
		t.Fatal(err)
	}
	ok, err := e.st.Audit(store.AuditFilter{Type: "signin.ok", Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	if len(ok) != before {
		t.Fatalf("%d of the %d sign-ins before the flood are left in the audit log", len(ok), before)
	}
	refused, _ := e.st.Audit(store.AuditFilter{Type: "signin.throttled", Limit: 100000})
	var counted, one int
	perWindow := map[string]int{}
	for _, r := range refused {
		if r.Count < 1 || r.Until.IsZero() {
			t.Fatalf("refusal record not aggregated: %+v", r)
		}
		counted += r.Count
		if r.ClientIP == "192.0.2.1" {
			one += r.Count
			perWindow[r.Until.String()]++
		}
	}
	if len(refused) > 300 {
		t.Fatalf("%d refusal records kept, the limit is 300", len(refused))
	}
	if int64(counted) >= sent.Load() {
		t.Fatalf("refusal records were not pruned: %d counted of %d sent", counted, sent.Load())
	}
	for w, n := range perWindow {
		if n != 1 {
			t.Fatalf("%d records for one address in the window ending %s, want 1", n, w)
		}
	}
	// How many of the single address's windows survive depends on how
	// many one-off addresses the flood got through meanwhile (they fill
	// the refusal limit and push older windows out), so only their
	// presence is asked for, not a number of windows.
	if one == 0 || len(perWindow) < 1 {
		t.Fatalf("the single address's refusals: %d in %d windows", one, len(perWindow))
	}
	t.Logf("%d refusals sent (%d from one address), %d records kept counting %d", sent.Load(), fromOne.Load(), len(refused), counted)
}

// TestSigninEpochEndsOldCookies: a password change, a delete and a
// disable followed by enable each end the sign-ins made before; a change
// of the display name does not.
func TestSigninEpochEndsOldCookies(t *testing.T) {
	e := newEnv(t)
	change := func(fn func(tx *store.Tx) error) {
		t.Helper()
		if err := e.st.Apply(e.live, config.DefaultGatewayID, fn); err != nil {
			t.Fatal(err)
		}
	}
	signedIn := func(c *http.Client) bool {
		r, _ := e.get(c, "/userportal/api/resources")
		return r.StatusCode == http.StatusOK
	}
	user := func(fn func(*directory.User)) func(tx *store.Tx) error {
		return func(tx *store.Tx) error {
			u, err := tx.User("alice")
			if err != nil {
				return err
			}
			fn(&u)
			return tx.PutUser(u)
		}
	}
	c := e.client()
	e.signIn(c, "alice", "alice-password")
	change(user(func(u *directory.User) { u.DisplayName = "Alice B." }))
	if !signedIn(c) {
		t.Fatal("an unrelated change ended the sign-in")
	}
	change(user(func(u *directory.User) { u.Disabled = true }))
	change(user(func(u *directory.User) { u.Disabled = false }))
	if signedIn(c) {
		t.Fatal("re-enabling the account revived the old cookie")
	}
	c = e.client()
	e.signIn(c, "alice", "alice-password")
	hash, _ := directory.HashPassword("alice-password") // same password, new hash
	change(user(func(u *directory.User) { u.PasswordHash = hash }))
	if signedIn(c) {
		t.Fatal("the old cookie works after a password reset")
	}
	c = e.client()
	e.signIn(c, "alice", "alice-password")
	change(func(tx *store.Tx) error {
		u, _ := tx.User("alice")
		if err := tx.DeleteUser("alice"); err != nil {
			return err
		}
		return tx.PutUser(u) // re-created with the same name and password
	})
	if signedIn(c) {
		t.Fatal("a deleted and re-created account revived the old cookie")
	}
}

// TestSigninLimitAndSweep: a sign-in beyond the per-user limit ends the
// oldest one; Sweep removes expired sign-ins from memory and the store.
func TestSigninLimitAndSweep(t *testing.T) {
	e := newEnv(t)
	if err := e.st.Apply(e.live, config.DefaultGatewayID, func(tx *store.Tx) error {
		g, _ := tx.Gateway(config.DefaultGatewayID)
		g.Security.MaxSignInsPerUser = 2
		return tx.PutGateway(g)
	}); err != nil {
		t.Fatal(err)
	}
	var cs []*http.Client
	for i := 0; i < 3; i++ {
		c := e.client()
		e.signIn(c, "alice", "alice-password")
		cs = append(cs, c)
		time.Sleep(10 * time.Millisecond) // distinct creation times
	}
	alive := func(c *http.Client) bool {
		r, _ := e.get(c, "/userportal/api/resources")
		return r.StatusCode == http.StatusOK
	}
	if alive(cs[0]) || !alive(cs[1]) || !alive(cs[2]) {
		t.Fatalf("after 3 sign-ins with a limit of 2: %v %v %v", alive(cs[0]), alive(cs[1]), alive(cs[2]))
	}
	later := time.Now().Add(AbsoluteTimeout + time.Minute)
	e.p.sessions.now = func() time.Time { return later }
	if n := e.p.SweepSignIns(); n != 2 {
		t.Fatalf("swept %d sign-ins, want 2", n)
	}
	left := 0
	e.st.DeleteSessionsWhere(func(string, []byte) bool { left++; return false })
	if left != 0 {
		t.Fatalf("%d expired sign-ins left in the store", left)
	}
}

// TestSessionsPerUserLimit: with the user's live sessions at the limit, a
// further launch is refused with a message saying why; closing one lets
// the next launch through.
func TestSessionsPerUserLimit(t *testing.T) {
	e := newEnv(t)
	if err := e.st.Apply(e.live, config.DefaultGatewayID, func(tx *store.Tx) error {
		g, _ := tx.Gateway(config.DefaultGatewayID)
		g.Security.MaxSessionsPerUser = 2
		return tx.PutGateway(g)
	}); err != nil {
		t.Fatal(err)
	}
	c := e.client()
	e.signIn(c, "alice", "alice-password")
	_, home := e.get(c, "/userportal/")
	csrf := regexp.MustCompile(`data-csrf="([^"]+)"`).FindStringSubmatch(home)[1]
	launch := func() (int, string) {
		req, _ := http.NewRequest("POST", e.srv.URL+"/userportal/api/launch/ws1", nil)
		req.Header.Set("X-CSRF-Token", csrf)
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		return resp.StatusCode, readAll(resp)
	}
	var ends []func()
	for i := 0; i < 2; i++ {
		_, end := e.p.Sessions.Add(sessions.Info{User: "alice", Resource: "ws1", Protocol: "vnc"}, func(sessions.Reason) {})
		ends = append(ends, end)
	}
	if code, body := launch(); code != http.StatusTooManyRequests || !strings.Contains(body, "2 sessions open") {
		t.Fatalf("launch at the limit: %d %s", code, body)
	}
	ends[0]()
	if code, body := launch(); code != http.StatusOK {
		t.Fatalf("launch below the limit: %d %s", code, body)
	}
}
