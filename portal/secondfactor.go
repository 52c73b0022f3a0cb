package portal

import (
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"html/template"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	qrcode "github.com/skip2/go-qrcode"

	"portico/service/directory"
	"portico/service/mfa"
	"portico/service/signin"
	"portico/service/store"
)

// secondFactorSuffix names the cookie of a sign-in waiting for its code.
const secondFactorSuffix = "_2fa"

// pendingLifetime is how long a right password waits for its code.
const pendingLifetime = 5 * time.Minute

// pendingSignIn is a sign-in whose password was right and that waits for
// its second factor. It lives in memory only: a restart asks for the
// password again.
type pendingSignIn struct {
	acct     directory.Account
	password string // for the RDP portal credential mode, kept until the session starts
	notice   string
	ip       string
	csrf     string
	expires  time.Time
	// secret is the key being enrolled (shown until the first code
	// confirms it); "" when the account is already enrolled.
	secret string
}

// pendingSignIns holds the sign-ins waiting for a code, by the hash of
// their cookie.
type pendingSignIns struct {
	mu sync.Mutex
	m  map[string]*pendingSignIn
}

func (ps *pendingSignIns) put(pe *pendingSignIn) string {
	v := randomToken()
	ps.mu.Lock()
	defer ps.mu.Unlock()
	if ps.m == nil {
		ps.m = map[string]*pendingSignIn{}
	}
	now := time.Now()
	for k, old := range ps.m {
		if now.After(old.expires) {
			delete(ps.m, k)
		}
	}
	ps.m[hashToken(v)] = pe
	return v
}

func (ps *pendingSignIns) get(v string) *pendingSignIn {
	if v == "" || len(v) > 128 {
		return nil
	}
	ps.mu.Lock()
	defer ps.mu.Unlock()
	pe := ps.m[hashToken(v)]
	if pe == nil || time.Now().After(pe.expires) {
		delete(ps.m, hashToken(v))
		return nil
	}
	return pe
}

func (ps *pendingSignIns) drop(v string) {
	ps.mu.Lock()
	delete(ps.m, hashToken(v))
	ps.mu.Unlock()
}

// beginSecondFactor parks a sign-in whose password was right and sends
// the browser to the code page.
func (p *Portal) beginSecondFactor(w http.ResponseWriter, r *http.Request, u directory.Account, password, notice, ip string) {
	v := p.pending.put(&pendingSignIn{acct: u, password: password, notice: notice, ip: ip, csrf: randomToken(), expires: time.Now().Add(pendingLifetime)})
	p.audit(store.Event{Type: "signin.2fa.required", User: u.Principal(), ClientIP: ip, Detail: "password right; waiting for the second factor"})
	http.SetCookie(w, p.cookie(r, cookieName(r)+secondFactorSuffix, v, int(pendingLifetime/time.Second)))
	http.Redirect(w, r, base(r)+"/2fa", http.StatusSeeOther)
}

// secondFactorView is the code page's data.
type secondFactorView struct {
	// Enrol is set while the account has no second factor yet.
	Enrol bool
	// QR is the otpauth URI as a PNG data URL (built here from our own
	// bytes, so it is marked safe for the src attribute); Key is the key
	// in text.
	QR  template.URL
	Key string
	// Account is the name the authenticator app shows.
	Account string
	// Recovery are the new recovery codes, shown once after enrolment.
	Recovery []string
}

func (p *Portal) pendingOf(r *http.Request) (*pendingSignIn, string) {
	c, err := r.Cookie(cookieName(r) + secondFactorSuffix)
	if err != nil {
		return nil, ""
	}
	return p.pending.get(c.Value), c.Value
}

// secondFactorPage shows the code form, or the enrolment (QR code, key in
// text) when the account has no second factor yet.
func (p *Portal) secondFactorPage(w http.ResponseWriter, r *http.Request) {
	pe, _ := p.pendingOf(r)
	if pe == nil {
		http.Redirect(w, r, base(r)+"/", http.StatusSeeOther)
		return
	}
	p.renderSecondFactor(w, r, pe, http.StatusOK, "")
}

func (p *Portal) renderSecondFactor(w http.ResponseWriter, r *http.Request, pe *pendingSignIn, code int, msg string) {
	v := secondFactorView{Account: pe.acct.Principal()}
	var enrolled bool
	p.Store.View(func(t *store.Tx) error { _, err := t.MFA(pe.acct.Principal()); enrolled = err == nil; return nil })
	if !enrolled {
		if pe.secret == "" {
			sec, err := mfa.NewSecret()
			if err != nil {
				p.errorPage(w, r, http.StatusInternalServerError, "Sign-in failed", "The gateway could not prepare your authenticator key. Please try again.", "")
				return
			}
			p.pending.mu.Lock()
			pe.secret = sec
			p.pending.mu.Unlock()
		}
		png, err := qrcode.Encode(mfa.URI(p.issuer(r), pe.acct.Principal(), pe.secret), qrcode.Medium, 240)
		if err != nil {
			p.errorPage(w, r, http.StatusInternalServerError, "Sign-in failed", "The gateway could not draw the QR code. Please try again.", "")
			return
		}
		v.Enrol, v.Key = true, spaced(pe.secret)
		v.QR = template.URL("data:image/png;base64," + base64.StdEncoding.EncodeToString(png))
	}
	p.render(w, r, code, "secondfactor.html", pageData{Title: "Two-step sign-in", CSRF: pe.csrf, Error: msg, Data: v})
}

func (p *Portal) issuer(r *http.Request) string {
	if is := snap(r).SignIn.TOTP.Issuer; is != "" {
		return is
	}
	return "Portico"
}

// spaced groups a key in fours, as people copy it.
func spaced(s string) string {
	var b strings.Builder
	for i, c := range s {
		if i > 0 && i%4 == 0 {
			b.WriteByte(' ')
		}
		b.WriteRune(c)
	}
	return b.String()
}

var errCodeWrong = errors.New("code not accepted")

// secondFactor checks a TOTP or recovery code through the sign-in guard
// (its own account key, so codes are throttled apart from passwords). A
// code is checked and its time step recorded in one store transaction, so
// the same code cannot sign in twice, even in parallel.
func (p *Portal) secondFactor(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 4<<10)
	pe, cookieValue := p.pendingOf(r)
	if pe == nil {
		p.signInPage(w, r, http.StatusForbidden, "Your sign-in expired. Sign in again.", "")
		return
	}
	if subtle.ConstantTimeCompare([]byte(r.PostFormValue("csrf")), []byte(pe.csrf)) != 1 {
		p.renderSecondFactor(w, r, pe, http.StatusForbidden, "The form expired. Enter the code again.")
		return
	}
	typed := strings.TrimSpace(r.PostFormValue("code"))
	user := pe.acct.Principal()
	ip := p.clientIP(r)
	p.pending.mu.Lock()
	secret := pe.secret
	p.pending.mu.Unlock()
	var recovery []string
	var how string
	ok, err := p.guard.Check(r.Context(), signin.Attempt{IP: ip, Account: "totp:" + strings.ToLower(user)}, func() bool {
		err := p.Store.Update(func(t *store.Tx) error {
			e, err := t.MFA(user)
			switch {
			case errors.Is(err, store.ErrNotFound) && secret != "":
				// Enrolment: the first code confirms the key.
				step, ok := mfa.Verify(secret, typed, time.Now(), 0)
				if !ok {
					return errCodeWrong
				}
				codes, hashes, err := mfa.NewRecoveryCodes()
				if err != nil {
					return err
				}
				sealed, err := p.Secrets.Seal(secret)
				if err != nil {
					return err
				}
				recovery, how = codes, "enrolled an authenticator"
				return t.PutMFA(user, mfa.Enrolment{Secret: sealed, Created: time.Now().UTC(), LastStep: step, Recovery: hashes})
			case err != nil:
				return err
			}
			if mfa.IsRecoveryCode(typed) {
				if !e.UseRecovery(typed) {
					return errCodeWrong
				}
				how = "recovery code"
				return t.PutMFA(user, e)
			}
			plain, err := p.Secrets.Unseal(e.Secret)
			if err != nil {
				return err
			}
			step, ok := mfa.Verify(plain, typed, time.Now(), e.LastStep)
			if !ok {
				return errCodeWrong
			}
			e.LastStep, how = step, "authenticator code"
			return t.PutMFA(user, e)
		})
		if err != nil && !errors.Is(err, errCodeWrong) {
			p.Logger.Error("second factor check", "user", user, "err", err)
		}
		return err == nil
	})
	if ref, refused := signin.IsRefusal(err); refused {
		p.auditRefusal(store.Event{Type: "signin.2fa." + ref.Reason, User: user, ClientIP: ip, Detail: ref.Error()})
		w.Header().Set("Retry-After", strconv.Itoa(ref.Seconds()))
		p.renderSecondFactor(w, r, pe, http.StatusTooManyRequests, "Too many wrong codes. Try again in "+strconv.Itoa(ref.Seconds())+" s.")
		return
	}
	if err != nil || !ok {
		p.audit(store.Event{Type: "signin.2fa.fail", User: user, ClientIP: ip, Detail: "wrong or reused code"})
		p.renderSecondFactor(w, r, pe, http.StatusUnauthorized, "That code is not right, or was already used. Enter the current code from your authenticator app, or a recovery code.")
		return
	}
	p.pending.drop(cookieValue)
	http.SetCookie(w, p.cookie(r, cookieName(r)+secondFactorSuffix, "", -1))
	p.audit(store.Event{Type: "signin.2fa.ok", User: user, ClientIP: ip, Detail: how})
	if !p.startSession(w, r, pe.acct, pe.password, pe.notice, pe.ip) {
		return
	}
	if recovery != nil {
		p.render(w, r, http.StatusOK, "secondfactor.html", pageData{Title: "Recovery codes", Data: secondFactorView{Account: user, Recovery: recovery}})
		return
	}
	http.Redirect(w, r, base(r)+"/", http.StatusSeeOther)
}
