package portal

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"portico/service/config"
	"portico/service/directory"
	"portico/service/signin"
	"portico/service/store"
)

// Session lifetimes. Idle: a forgotten browser signs out by itself;
// absolute: even an active one signs in again each working day.
const (
	IdleTimeout     = 30 * time.Minute
	AbsoluteTimeout = 12 * time.Hour
	// touchEvery limits how often activity is written to the store.
	touchEvery = time.Minute
)

// Session is a signed-in portal user. It is kept in memory and in the store
// (keyed by the hash of the cookie value), so it survives a restart.
type Session struct {
	// User is the account's user name.
	User string `json:"user"`
	// Domain is the account's domain.
	Domain string `json:"domain,omitempty"`
	// DisplayName is shown in the page header.
	DisplayName string `json:"displayName,omitempty"`
	// Groups at sign-in.
	Groups []string `json:"groups"`
	// CSRF is the token every state-changing request must echo.
	CSRF string `json:"csrf"`
	// Created and LastSeen drive the absolute and idle timeouts.
	Created  time.Time `json:"created"`
	LastSeen time.Time `json:"lastSeen"`
	// ClientIP at sign-in, and ReportedIP from the IP detection service.
	ClientIP   string `json:"clientIP"`
	ReportedIP string `json:"reportedIP,omitempty"`
	// Notice is shown once on the next page (e.g. login-format hint).
	Notice string `json:"notice,omitempty"`
	// Native is the native-client detection result of this sign-in
	// ("", "detected", "not-detected"), remembered until sign-out.
	Native string `json:"native,omitempty"`
	// Epoch is the account's credential generation at sign-in
	// (directory.User.Epoch); the sign-in ends when the account's differs.
	Epoch int64 `json:"epoch,omitempty"`
	// Source is "" for a local account, else the directory (AD/LDAP) the
	// account signed in from; User is then NETBIOS\user. Directory
	// accounts have no local record, so the epoch check does not apply to
	// them: a launch re-checks the directory instead.
	Source string `json:"source,omitempty"`
	// Login is the account name without domain (sAMAccountName for Active
	// Directory), DN its distinguished name: what a launch re-checks.
	Login string `json:"login,omitempty"`
	DN    string `json:"dn,omitempty"`

	id string // hash of the cookie value; not stored in the record
}

// ID returns the session's store key (the hash of its cookie value).
func (s *Session) ID() string { return s.id }

func randomToken() string {
	var b [32]byte
	rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

func hashToken(v string) string {
	sum := sha256.Sum256([]byte(v))
	return hex.EncodeToString(sum[:])
}

// SessionStore keeps portal sessions in memory, backed by the store.
type SessionStore struct {
	st  *store.Store
	now func() time.Time
	// epochs returns the live accounts' credential generations
	// (config.Snapshot.UserEpochs); nil checks none.
	epochs func() map[string]int64
	mu     sync.Mutex
	m      map[string]*Session
	// secrets holds each live sign-in's password, sealed in memory,
	// for RDP resources that sign in with the portal sign-in.
	secrets *signInSecrets
	// revokedSince reports whether a user's identity changed at or after a
	// sign-in's creation (sessions.Registry.RevokedSince); such a sign-in
	// is over. Nil revokes nothing.
	revokedSince func(user string, created time.Time) bool
}

// NewSessionStore returns a session store over st. epochs returns the
// current snapshot's UserEpochs: a session whose account is missing there
// (deleted) or has another epoch (password changed, account disabled and
// enabled again, re-created) is ended when it is next used.
func NewSessionStore(st *store.Store, epochs func() map[string]int64) *SessionStore {
	return &SessionStore{st: st, now: time.Now, epochs: epochs, m: map[string]*Session{}, secrets: newSignInSecrets()}
}

// revoked reports whether s's account has left the epoch it signed in under.
func (ss *SessionStore) revoked(s *Session) bool {
	if ss.epochs == nil || s.Source != "" {
		return false
	}
	e, ok := ss.epochs()[strings.ToLower(s.User)]
	return !ok || e != s.Epoch
}

// Create starts a session and returns the cookie value.
func (ss *SessionStore) Create(s Session) (string, *Session, error) {
	value := randomToken()
	now := ss.now()
	s.id, s.CSRF, s.Created, s.LastSeen = hashToken(value), randomToken(), now, now
	if err := ss.st.PutSession(s.id, &s); err != nil {
		return "", nil, fmt.Errorf("store portal session: %w", err)
	}
	ss.mu.Lock()
	ss.m[s.id] = &s
	ss.mu.Unlock()
	return value, &s, nil
}

// Get returns the live session for a cookie value, refreshing its idle
// timer; nil when there is none or it timed out.
func (ss *SessionStore) Get(value string) *Session {
	if value == "" || len(value) > 128 {
		return nil
	}
	return ss.ByID(hashToken(value))
}

// ByID is Get by store key, for native launches: their ticket names the
// portal session it was issued to, and that session must still be live.
func (ss *SessionStore) ByID(id string) *Session {
	if id == "" {
		return nil
	}
	ss.mu.Lock()
	s, ok := ss.m[id]
	ss.mu.Unlock()
	if !ok {
		var rec Session
		if err := ss.st.Session(id, &rec); err != nil {
			return nil
		}
		rec.id = id
		s = &rec
		ss.mu.Lock()
		ss.m[id] = s
		ss.mu.Unlock()
	}
	now := ss.now()
	ss.mu.Lock()
	expired := now.Sub(s.LastSeen) > IdleTimeout || now.Sub(s.Created) > AbsoluteTimeout || ss.revoked(s) ||
		(ss.revokedSince != nil && ss.revokedSince(s.User, s.Created))
	persist := !expired && now.Sub(s.LastSeen) > touchEvery
	if !expired {
		s.LastSeen = now
	}
	snapshot := *s
	ss.mu.Unlock()
	if expired {
		ss.Delete(id)
		return nil
	}
	if persist {
		ss.st.PutSession(id, &snapshot)
	}
	return s
}

// Sweep ends the sign-ins that timed out or whose account's epoch moved
// on, in memory and in the store, and returns how many records it removed.
// The gateway runs it every minute, so that expired sign-ins do not pile
// up in the store of a gateway nobody signs out of.
func (ss *SessionStore) Sweep() int {
	now := ss.now()
	ss.mu.Lock()
	for id, s := range ss.m {
		if now.Sub(s.LastSeen) > IdleTimeout || now.Sub(s.Created) > AbsoluteTimeout || ss.revoked(s) {
			delete(ss.m, id)
		}
	}
	ss.mu.Unlock()
	n, _ := ss.st.DeleteSessionsWhere(func(id string, raw []byte) bool {
		var s Session
		if json.Unmarshal(raw, &s) != nil {
			return true
		}
		ss.mu.Lock()
		if live, ok := ss.m[id]; ok {
			s.LastSeen = live.LastSeen // activity not yet written
		}
		ss.mu.Unlock()
		return now.Sub(s.LastSeen) > IdleTimeout || now.Sub(s.Created) > AbsoluteTimeout || ss.revoked(&s)
	})
	return n
}

// Limit ends the oldest sign-ins of user beyond max (the per-user limit of
// concurrent sign-ins), returning how many it ended.
func (ss *SessionStore) Limit(user string, max int) int {
	type rec struct {
		id      string
		created time.Time
	}
	var mine []rec
	ss.st.DeleteSessionsWhere(func(id string, raw []byte) bool {
		var s Session
		if json.Unmarshal(raw, &s) == nil && strings.EqualFold(s.User, user) {
			mine = append(mine, rec{id, s.Created})
		}
		return false
	})
	if len(mine) <= max {
		return 0
	}
	sort.Slice(mine, func(i, j int) bool { return mine[i].created.Before(mine[j].created) })
	for _, r := range mine[:len(mine)-max] {
		ss.Delete(r.id)
	}
	return len(mine) - max
}

// Update writes changed fields of s (e.g. ReportedIP, Notice).
func (ss *SessionStore) Update(s *Session, fn func(*Session)) error {
	ss.mu.Lock()
	fn(s)
	snapshot := *s
	ss.mu.Unlock()
	return ss.st.PutSession(s.id, &snapshot)
}

// KeepPassword keeps the sign-in password of session id sealed in memory
// until the session ends; it is never written to the store.
func (ss *SessionStore) KeepPassword(id, password string) { ss.secrets.put(id, password) }

// SignInPassword returns the password kept for a live session.
func (ss *SessionStore) SignInPassword(id string) (string, bool) { return ss.secrets.open(id) }

// Delete ends a session by ID.
func (ss *SessionStore) Delete(id string) {
	ss.mu.Lock()
	delete(ss.m, id)
	ss.mu.Unlock()
	ss.secrets.drop(id)
	ss.st.DeleteSession(id)
}

// DeleteUser ends every session of a user (account disabled or removed).
func (ss *SessionStore) DeleteUser(user string) {
	ss.mu.Lock()
	for id, s := range ss.m {
		if strings.EqualFold(s.User, user) {
			delete(ss.m, id)
			ss.secrets.drop(id)
		}
	}
	ss.mu.Unlock()
	// The record holds the name JSON-encoded: NETBIOS\user of a directory
	// account has its backslash escaped there.
	enc, _ := json.Marshal(strings.ToLower(user))
	needle := `"user":` + string(enc)
	ss.st.DeleteSessionsWhere(func(_ string, raw []byte) bool {
		return strings.Contains(strings.ToLower(string(raw)), needle)
	})
}

// deviceSuffix names the device cookie (after the session cookie's name):
// proof that this browser signed in as an account before (see
// signin.Devices), so failures from elsewhere do not lock it out.
const deviceSuffix = "_Device"

// localAccountKey is the guard's key of a local account.
func localAccountKey(username string) string { return "local:" + strings.ToLower(username) }

// checkCredentials checks a typed name and password through the guard:
// local accounts and directory binds alike (creds.Authenticate runs as
// the guard's verify, so a directory bind is reserved, slotted and
// throttled exactly like a local hash). Every failure of a local or
// unknown name costs one hash (directory.Service uses a dummy hash when
// there is nothing to check). A refusal by the guard is a
// *signin.Refusal; any other error is a *directory.Error saying why.
func (p *Portal) checkCredentials(r *http.Request, ip string, si config.SignIn, login directory.Login, password string) (directory.Account, error) {
	acct := localAccountKey(login.Username)
	device := ""
	if c, err := r.Cookie(cookieName(r) + deviceSuffix); err == nil {
		device = p.devices.Verify(c.Value, acct)
	}
	ctx, cancel := context.WithTimeout(r.Context(), 65*time.Second)
	defer cancel()
	var a directory.Account
	var authErr error
	_, err := p.guard.Check(ctx, signin.Attempt{IP: ip, Account: acct, Device: device}, func() bool {
		a, authErr = p.creds.Authenticate(ctx, si, login, password)
		return authErr == nil
	})
	if err != nil {
		return directory.Account{}, err
	}
	return a, authErr
}

// refuseSignIn answers a sign-in the guard did not check: 429 with
// Retry-After, at once, and one aggregated audit record per address and
// reason a minute (an outsider must not be able to flush the log).
func (p *Portal) refuseSignIn(w http.ResponseWriter, r *http.Request, ip, user string, ref *signin.Refusal, typed string) {
	detail := "too many failed sign-ins from this address or for this account"
	if ref.Reason == "busy" {
		detail = "the gateway was checking as many sign-ins as it can"
	}
	p.auditRefusal(store.Event{Type: "signin." + ref.Reason, User: user, ClientIP: ip, Detail: detail})
	w.Header().Set("Retry-After", strconv.Itoa(ref.Seconds()))
	msg := fmt.Sprintf("Too many failed sign-ins. Try again in %d s.", ref.Seconds())
	if ref.Reason == "busy" {
		msg = fmt.Sprintf("The gateway is busy signing others in. Try again in %d s.", ref.Seconds())
	}
	p.signInPage(w, r, http.StatusTooManyRequests, msg, typed)
}

// credentials is the one place the portal asks who a user is: the sign-in
// check of a typed name and password, and the re-check of a signed-in
// account at launch. directory.Service implements it (local accounts,
// then the directories in order).
type credentials interface {
	Authenticate(ctx context.Context, si config.SignIn, l directory.Login, password string) (directory.Account, error)
	Refresh(ctx context.Context, si config.SignIn, a directory.Account) (directory.Account, error)
}

var _ credentials = (*directory.Service)(nil)

// RDPAccount is the account an RDP host is signed in to with the user's
// portal sign-in (credential mode portal): for a directory account its
// sAMAccountName and NetBIOS domain (User is NETBIOS\user there), for a
// local account its name and domain.
func (s *Session) RDPAccount() (user, domain string) {
	if s.Source != "" && s.Login != "" {
		return s.Login, s.Domain
	}
	return s.User, s.Domain
}

// accountOf is the account a session was signed in as.
func accountOf(s *Session) directory.Account {
	a := directory.Account{Source: s.Source, Username: s.Login, Domain: s.Domain, DN: s.DN, DisplayName: s.DisplayName, Groups: s.Groups}
	if a.Username == "" {
		a.Username = s.User
	}
	return a
}

// account re-reads the signed-in user's account. It runs on every launch
// (not on page views): an account disabled or removed since sign-in ends
// all its portal sessions here, and group changes take effect for the
// next launch (a directory account's groups are cached for the
// directory's group cache time; a directory that cannot be reached keeps
// the groups of the sign-in).
func (p *Portal) account(s *Session) (directory.Account, bool) {
	ctx, cancel := context.WithTimeout(context.Background(), 65*time.Second)
	defer cancel()
	a, err := p.creds.Refresh(ctx, p.Live.Load().SignIn, accountOf(s))
	if f := directory.FailureOf(err); err != nil && f != directory.FailUnreachable {
		p.sessions.DeleteUser(s.User)
		return a, false
	} else if err != nil {
		p.Logger.Warn("directory unreachable at launch: keeping the groups of the sign-in", "user", s.User, "err", err)
	}
	if strings.Join(a.Groups, "\x00") != strings.Join(s.Groups, "\x00") {
		p.sessions.Update(s, func(s *Session) { s.Groups = a.Groups })
	}
	return a, true
}
