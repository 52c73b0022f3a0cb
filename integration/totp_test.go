package integration

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"portico/service/config"
	"portico/service/mfa"
	"portico/service/store"
)

// totpPortico starts a gateway with alice (group staff) and TOTP required
// for staff.
func totpPortico(t *testing.T) *portico {
	t.Helper()
	p := startPortico(t)
	p.seedUser(t)
	p.do(t, "PUT", "/api/v1/settings/signin", config.SignIn{TOTP: config.TOTPSettings{Mode: config.TOTPGroups, Groups: []string{"staff"}}}, nil)
	return p
}

// fillAndSubmit sets form fields by id and submits the form after the
// evaluation returns (the navigation would swallow its answer).
func fillAndSubmit(t *testing.T, ctx context.Context, fields map[string]string) {
	t.Helper()
	js := "(() => {"
	for id, v := range fields {
		js += fmt.Sprintf("document.getElementById(%q).value = %q;", id, v)
	}
	js += "setTimeout(() => document.querySelector('form button[type=submit]').click(), 50); return true; })()"
	var ok bool
	run(t, ctx, 10*time.Second, chromedp.Evaluate(js, &ok))
}

// TestTOTPEnrolAndSignInBrowser: in headless Chromium alice signs in with
// her password, gets the enrolment page (QR code and key in text), confirms
// with a code the test computes from the key shown, sees ten recovery
// codes, reaches the portal; her next sign-in asks for a code (no QR) and
// a fresh code signs her in.
func TestTOTPEnrolAndSignInBrowser(t *testing.T) {
	p := totpPortico(t)
	ctx := browser(t)
	run(t, ctx, 30*time.Second, chromedp.Navigate(p.URL+"/userportal/"), chromedp.WaitVisible("#username", chromedp.ByID))
	fillAndSubmit(t, ctx, map[string]string{"username": `OFFICE\alice`, "password": "alice-password"})
	waitJS(t, ctx, 20*time.Second, `document.querySelector("#totp-key") && document.querySelector("#totp-qr").naturalWidth > 0`, "the enrolment page with its QR code")
	screenshot(t, ctx, "totp-enrolment")
	var key string
	run(t, ctx, 5*time.Second, chromedp.Text("#totp-key", &key, chromedp.ByID))
	key = strings.ReplaceAll(key, " ", "")
	code, err := mfa.Code(key, time.Now())
	if err != nil {
		t.Fatalf("the key shown (%q) is not a TOTP key: %v", key, err)
	}
	fillAndSubmit(t, ctx, map[string]string{"code": code})
	waitJS(t, ctx, 20*time.Second, `document.querySelectorAll('#recovery-codes li').length === 10`, "ten recovery codes")
	run(t, ctx, 20*time.Second, chromedp.Click("#continue", chromedp.ByID), chromedp.WaitVisible("#home", chromedp.ByID))

	// Next sign-in: a code, no enrolment.
	run(t, ctx, 30*time.Second, chromedp.Evaluate(`(() => { setTimeout(() => document.querySelector('form[action$="/signout"] button').click(), 50); return true; })()`, nil))
	waitJS(t, ctx, 20*time.Second, `document.querySelector('#username')`, "the sign-in page after signing out")
	fillAndSubmit(t, ctx, map[string]string{"username": `OFFICE\alice`, "password": "alice-password"})
	waitJS(t, ctx, 20*time.Second, `document.querySelector('#code') && !document.querySelector('#totp-qr')`, "the code page without enrolment")
	next, _ := mfa.Code(key, time.Now().Add(mfa.Step)) // the enrolment used this step's code
	fillAndSubmit(t, ctx, map[string]string{"code": next})
	waitJS(t, ctx, 20*time.Second, `document.querySelector('#home')`, "the portal after the code")
	var ev []store.Event
	p.do(t, "GET", "/api/v1/audit?type=signin.2fa.ok", nil, &ev)
	if len(ev) != 2 {
		t.Fatalf("audit has %d second-factor sign-ins, want 2: %+v", len(ev), ev)
	}
}

// totpForm is an HTTP sign-in parked at the code page.
type totpForm struct {
	c    *http.Client
	base string
	page string
}

func passwordStep(t *testing.T, p *portico) *totpForm {
	t.Helper()
	status, body, c := signInAttempt(t, p.URL, `OFFICE\alice`, "alice-password")
	if status != http.StatusOK || !strings.Contains(body, `name="code"`) {
		t.Fatalf("after the password: status %d, no code form:%s", status, pageError(body))
	}
	return &totpForm{c: c, base: p.URL, page: body}
}

func (f *totpForm) submit(t *testing.T, code string) (int, string) {
	t.Helper()
	m := regexp.MustCompile(`name="csrf" value="([^"]+)"`).FindStringSubmatch(f.page)
	if m == nil {
		t.Fatalf("no csrf on the code page:\n%s", f.page)
	}
	resp, err := f.c.PostForm(f.base+"/userportal/2fa", url.Values{"csrf": {m[1]}, "code": {code}})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if strings.Contains(string(b), `name="code"`) {
		f.page = string(b)
	}
	return resp.StatusCode, string(b)
}

// TestTOTPRecoveryReplayThrottle: a code signs in once and is refused
// when replayed in its time step; a recovery code works once; the admin's
// reset makes the next sign-in enrol again; wrong codes are throttled
// (429) and audited.
func TestTOTPRecoveryReplayThrottle(t *testing.T) {
	p := totpPortico(t)
	f := passwordStep(t, p)
	key := strings.ReplaceAll(regexp.MustCompile(`id="totp-key">([A-Z2-7 ]+)<`).FindStringSubmatch(f.page)[1], " ", "")
	code, _ := mfa.Code(key, time.Now())
	status, body := f.submit(t, code)
	codes := regexp.MustCompile(`<li><code>([A-Z0-9-]+)</code></li>`).FindAllStringSubmatch(body, -1)
	if status != http.StatusOK || len(codes) != 10 {
		t.Fatalf("enrolment: status %d, %d recovery codes", status, len(codes))
	}
	var st struct {
		Enrolled bool `json:"enrolled"`
		Left     int  `json:"recoveryCodesLeft"`
	}
	p.do(t, "GET", "/api/v1/users/alice/second-factor", nil, &st)
	if !st.Enrolled || st.Left != 10 {
		t.Fatalf("enrolment state %+v", st)
	}

	// Replay: the code of the next step works once.
	next, _ := mfa.Code(key, time.Now().Add(mfa.Step))
	f = passwordStep(t, p)
	if status, body := f.submit(t, next); status != http.StatusOK || !strings.Contains(body, `id="home"`) {
		t.Fatalf("a fresh code: status %d:%s", status, pageError(body))
	}
	f = passwordStep(t, p)
	if status, body := f.submit(t, next); status != http.StatusUnauthorized || !strings.Contains(body, "already used") {
		t.Fatalf("the same code again: status %d:%s", status, pageError(body))
	}

	// A recovery code works once.
	if status, body := f.submit(t, strings.ToLower(codes[0][1])); status != http.StatusOK || !strings.Contains(body, `id="home"`) {
		t.Fatalf("a recovery code: status %d:%s", status, pageError(body))
	}
	f = passwordStep(t, p)
	if status, _ := f.submit(t, codes[0][1]); status != http.StatusUnauthorized {
		t.Fatalf("a used recovery code: status %d", status)
	}
	p.do(t, "GET", "/api/v1/users/alice/second-factor", nil, &st)
	if st.Left != 9 {
		t.Fatalf("%d recovery codes left, want 9", st.Left)
	}

	// The admin resets: the next sign-in enrols again.
	p.do(t, "DELETE", "/api/v1/users/alice/second-factor", nil, nil)
	if f = passwordStep(t, p); !strings.Contains(f.page, `id="totp-qr"`) {
		t.Fatal("after the reset the sign-in does not enrol again")
	}

	// Throttling: wrong codes get 401 until the guard locks, then 429.
	var got429 bool
	for i := 0; i < 8 && !got429; i++ {
		status, _ := f.submit(t, "000000")
		got429 = status == http.StatusTooManyRequests
	}
	if !got429 {
		t.Fatal("eight wrong codes in a row were never throttled")
	}
	var ev []store.Event
	p.do(t, "GET", "/api/v1/audit?type=signin.2fa.fail", nil, &ev)
	if len(ev) < 3 {
		t.Fatalf("wrong codes not audited: %+v", ev)
	}
}
