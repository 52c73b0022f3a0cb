package directory

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/go-ldap/ldap/v3"

	"portico/service/config"
)

// Account is who signed in: a local account or a directory account.
type Account struct {
	// Source is "" for a local account, else the directory's ID.
	Source string `json:"source,omitempty"`
	// Username is the account name without domain (sAMAccountName, uid or
	// the local user name).
	Username string `json:"username"`
	// Domain is the NetBIOS name of a directory account, or a local
	// account's domain.
	Domain string `json:"domain,omitempty"`
	// DNSDomain is a directory account's DNS domain name.
	DNSDomain string `json:"dnsDomain,omitempty"`
	// DisplayName is shown in the portal.
	DisplayName string `json:"displayName,omitempty"`
	// DN is a directory account's distinguished name.
	DN string `json:"dn,omitempty"`
	// Groups are local group names or NETBIOS\Group for directory groups.
	Groups []string `json:"groups"`
	// Epoch is a local account's credential generation (User.Epoch): the
	// portal sign-in made with it ends when the account's changes.
	Epoch int64 `json:"epoch,omitempty"`
}

// Principal is the name assignments, policies, preferences and audit use:
// the local user name, or NETBIOS\user for a directory account (so a
// directory user never collides with a local one of the same name).
func (a Account) Principal() string {
	if a.Source == "" {
		return a.Username
	}
	return a.Domain + `\` + a.Username
}

// Failure is why a sign-in was refused.
type Failure int

// Failures. Each has its own message for the user (Message).
const (
	_ Failure = iota
	// FailWrongPassword: wrong password, or a name several accounts share.
	FailWrongPassword
	// FailNoAccount: no such account in this directory (the next one is asked).
	FailNoAccount
	FailDisabled
	FailLocked
	FailPasswordExpired
	FailMustChange
	FailAccountExpired
	// FailUnreachable: the directory could not be reached, or refused the
	// bind account.
	FailUnreachable
	// FailAmbiguous: a plain user name exists in more than one directory.
	FailAmbiguous
)

// Message is what the sign-in page says for f.
func (f Failure) Message() string {
	switch f {
	case FailDisabled:
		return "Your account is disabled. Ask your administrator to enable it."
	case FailLocked:
		return "Your account is locked after too many wrong passwords. Wait, or ask your administrator to unlock it."
	case FailPasswordExpired:
		return "Your password has expired. Change it on a computer of your domain, or ask your administrator to reset it."
	case FailMustChange:
		return "You must change your password before you can sign in. Change it on a computer of your domain, or ask your administrator."
	case FailAccountExpired:
		return "Your account has expired. Ask your administrator to extend it."
	case FailUnreachable:
		return "The directory cannot be reached; try again or ask your administrator."
	case FailAmbiguous:
		return `That user name exists in more than one domain: sign in as DOMAIN\user.`
	}
	return "Wrong user name or password. Check both and try again."
}

// String is the failure for the audit.
func (f Failure) String() string {
	return map[Failure]string{FailWrongPassword: "wrong user name or password", FailNoAccount: "no such account",
		FailDisabled: "account disabled", FailLocked: "account locked", FailPasswordExpired: "password expired",
		FailMustChange: "password must be changed", FailAccountExpired: "account expired",
		FailUnreachable: "directory unreachable", FailAmbiguous: "name in more than one directory"}[f]
}

// Error is a refused sign-in, with what the audit needs: which directory
// and which server.
type Error struct {
	Failure   Failure
	Directory string
	Server    string
	Err       error
}

func (e *Error) Error() string {
	s := e.Failure.String()
	if e.Directory != "" {
		s += " (directory " + e.Directory
		if e.Server != "" {
			s += ", server " + e.Server
		}
		s += ")"
	}
	if e.Err != nil && e.Failure != FailWrongPassword && e.Failure != FailNoAccount {
		s += ": " + e.Err.Error()
	}
	return s
}

func (e *Error) Unwrap() error { return e.Err }

// FailureOf returns the Failure in err (FailWrongPassword when none).
func FailureOf(err error) Failure {
	var e *Error
	if errors.As(err, &e) {
		if e.Failure == FailNoAccount {
			return FailWrongPassword
		}
		return e.Failure
	}
	return FailWrongPassword
}

// dummyHash is checked against when no account exists, so the answer takes
// as long as a real check.
const dummyHash = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0c2FsdA$4kNyYWsDBWRAzG6bw0X9cGaFg8fZ8ZrnYOqZcZz2ELA"

// Service answers "who is this?" for the portal: local accounts first (a
// local account wins its name, so the break-glass admin signs in while a
// directory is down), then each enabled directory in order. It keeps one
// connection pool per directory and rebuilds them when the settings change.
type Service struct {
	// LocalUser reads a local account by name (store.ErrNotFound-like error
	// when there is none).
	LocalUser func(name string) (User, error)
	// Unseal opens sealed bind passwords.
	Unseal func(string) (string, error)
	// CheckPassword checks a local password hash; nil is the package's
	// CheckPassword (the portal's tests count hashes through it).
	CheckPassword func(phc, password string) bool

	mu   sync.Mutex
	key  string
	dirs []*ldapDir
}

// dirsFor returns the live connectors for the settings, rebuilding them
// (and closing the old pools) when the directories changed.
func (s *Service) dirsFor(si config.SignIn) ([]*ldapDir, error) {
	raw, _ := json.Marshal(si.Directories)
	key := string(raw)
	s.mu.Lock()
	defer s.mu.Unlock()
	if key == s.key && s.dirs != nil {
		return s.dirs, nil
	}
	var dirs []*ldapDir
	for _, d := range si.Directories {
		if d.Disabled {
			continue
		}
		pw, err := s.unseal(d.BindPassword)
		if err != nil {
			return nil, fmt.Errorf("directory %s: open the bind password: %w", d.ID, err)
		}
		ld, err := newLDAPDir(d, pw)
		if err != nil {
			return nil, err
		}
		dirs = append(dirs, ld)
	}
	for _, old := range s.dirs {
		old.close()
	}
	s.key, s.dirs = key, dirs
	return dirs, nil
}

func (s *Service) check(phc, password string) bool {
	if s.CheckPassword != nil {
		return s.CheckPassword(phc, password)
	}
	return CheckPassword(phc, password)
}

func (s *Service) unseal(v string) (string, error) {
	if v == "" || s.Unseal == nil {
		return v, nil
	}
	return s.Unseal(v)
}

// Close closes every directory connection.
func (s *Service) Close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, d := range s.dirs {
		d.close()
	}
	s.dirs, s.key = nil, ""
}

// Authenticate checks a typed sign-in name and password. A refusal is an
// *Error whose Failure says what to tell the user.
func (s *Service) Authenticate(ctx context.Context, si config.SignIn, l Login, password string) (Account, error) {
	if s.LocalUser != nil {
		if u, err := s.LocalUser(l.Username); err == nil && u.MatchesDomain(l.Domain) {
			hash := u.PasswordHash
			if hash == "" {
				hash = dummyHash
			}
			if !s.check(hash, password) || u.PasswordHash == "" {
				return Account{}, &Error{Failure: FailWrongPassword}
			}
			if u.Disabled {
				return Account{}, &Error{Failure: FailDisabled}
			}
			return Account{Username: u.Username, Domain: u.Domain, DisplayName: u.DisplayName, Groups: append([]string{}, u.Groups...), Epoch: u.Epoch}, nil
		}
	}
	dirs, err := s.dirsFor(si)
	if err != nil {
		return Account{}, &Error{Failure: FailUnreachable, Err: err}
	}
	var candidates []*ldapDir
	for _, d := range dirs {
		if l.Domain == "" || DomainMatches(d.cfg.NetBIOSName, l.Domain) || DomainMatches(d.cfg.DNSName, l.Domain) ||
			(l.Format == "upn" && d.cfg.Kind == config.KindActiveDirectory) {
			candidates = append(candidates, d)
		}
	}
	if len(candidates) == 0 {
		s.check(dummyHash, password)
		return Account{}, &Error{Failure: FailWrongPassword}
	}
	if l.Domain == "" && len(candidates) > 1 {
		return s.authenticatePlain(ctx, candidates, l, password)
	}
	var unreachable *Error
	for _, d := range candidates {
		a, err := s.authenticateIn(ctx, d, l, password)
		if err == nil {
			return a, nil
		}
		var e *Error
		if errors.As(err, &e) && e.Failure == FailUnreachable {
			if unreachable == nil {
				unreachable = e
			}
			continue
		}
		if errors.As(err, &e) && e.Failure == FailNoAccount {
			continue
		}
		return Account{}, err
	}
	if unreachable != nil {
		return Account{}, unreachable
	}
	return Account{}, &Error{Failure: FailWrongPassword}
}

func (s *Service) authenticateIn(ctx context.Context, d *ldapDir, l Login, password string) (Account, error) {
	ctx, cancel := context.WithTimeout(ctx, time.Duration(d.cfg.Timeout())*time.Second)
	defer cancel()
	return d.authenticate(ctx, l, password)
}

// authenticatePlain handles a name typed without a domain when several
// directories could hold it: it signs in only where exactly one directory
// has the account.
func (s *Service) authenticatePlain(ctx context.Context, dirs []*ldapDir, l Login, password string) (Account, error) {
	var found []*ldapDir
	var unreachable *Error
	for _, d := range dirs {
		cctx, cancel := context.WithTimeout(ctx, time.Duration(d.cfg.Timeout())*time.Second)
		_, server, err := d.find(cctx, l)
		cancel()
		switch {
		case err == nil:
			found = append(found, d)
		case errors.Is(err, errNoAccount):
		case errors.Is(err, errAmbiguous):
			found = append(found, d, d)
		default:
			if unreachable == nil {
				unreachable = &Error{Failure: FailUnreachable, Directory: d.cfg.ID, Server: orServer(serverOf(err), server), Err: err}
			}
		}
	}
	switch {
	case len(found) > 1:
		return Account{}, &Error{Failure: FailAmbiguous}
	case len(found) == 1:
		return s.authenticateIn(ctx, found[0], l, password)
	case unreachable != nil:
		return Account{}, unreachable
	}
	return Account{}, &Error{Failure: FailWrongPassword}
}

func orServer(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// Refresh re-reads a signed-in account at launch: a local account from the
// store, a directory account from the directory (its groups cached for the
// directory's group cache time). A removed or disabled account returns an
// error with FailNoAccount or FailDisabled; an unreachable directory
// returns the account unchanged and a FailUnreachable error.
func (s *Service) Refresh(ctx context.Context, si config.SignIn, a Account) (Account, error) {
	if a.Source == "" {
		u, err := s.LocalUser(a.Username)
		if err != nil {
			return Account{}, &Error{Failure: FailNoAccount, Err: err}
		}
		if u.Disabled {
			return Account{}, &Error{Failure: FailDisabled}
		}
		a.Groups, a.DisplayName = append([]string{}, u.Groups...), u.DisplayName
		return a, nil
	}
	dirs, err := s.dirsFor(si)
	if err != nil {
		return a, &Error{Failure: FailUnreachable, Err: err}
	}
	for _, d := range dirs {
		if strings.EqualFold(d.cfg.ID, a.Source) {
			ctx, cancel := context.WithTimeout(ctx, time.Duration(d.cfg.Timeout())*time.Second)
			defer cancel()
			return d.refresh(ctx, a)
		}
	}
	return Account{}, &Error{Failure: FailNoAccount, Directory: a.Source, Err: errors.New("the directory was removed or disabled")}
}

// Lookup finds an account of directory dirID by name, with its groups,
// without a password (for the admin's explain).
func (s *Service) Lookup(ctx context.Context, si config.SignIn, dirID, name string) (Account, error) {
	dirs, err := s.dirsFor(si)
	if err != nil {
		return Account{}, err
	}
	for _, d := range dirs {
		if strings.EqualFold(d.cfg.ID, dirID) {
			ctx, cancel := context.WithTimeout(ctx, time.Duration(d.cfg.Timeout())*time.Second)
			defer cancel()
			entry, _, err := d.find(ctx, Login{Username: name, Format: "plain"})
			if err != nil {
				return Account{}, err
			}
			return d.account(ctx, entry)
		}
	}
	return Account{}, fmt.Errorf("directory %s is disabled or removed", dirID)
}

// SearchGroups lists groups of the enabled directories whose name starts
// with prefix (NETBIOS\Group), for the admin GUI's pickers.
func (s *Service) SearchGroups(ctx context.Context, si config.SignIn, prefix string, limit int) ([]string, error) {
	dirs, err := s.dirsFor(si)
	if err != nil {
		return nil, err
	}
	if nb, rest, ok := strings.Cut(prefix, `\`); ok {
		prefix = rest
		var only []*ldapDir
		for _, d := range dirs {
			if strings.EqualFold(d.cfg.NetBIOSName, nb) {
				only = append(only, d)
			}
		}
		dirs = only
	}
	var out []string
	var errs []error
	for _, d := range dirs {
		cctx, cancel := context.WithTimeout(ctx, time.Duration(d.cfg.Timeout())*time.Second)
		gs, err := d.searchGroups(cctx, prefix, limit)
		cancel()
		if err != nil {
			errs = append(errs, fmt.Errorf("directory %s: %w", d.cfg.ID, err))
		}
		out = append(out, gs...)
	}
	return out, errors.Join(errs...)
}

// IsDirectoryGroup reports whether name is NETBIOS\Group for one of the
// configured directories.
func IsDirectoryGroup(si config.SignIn, name string) bool {
	nb, g, ok := strings.Cut(name, `\`)
	if !ok || strings.TrimSpace(g) == "" || len(g) > 256 {
		return false
	}
	for _, d := range si.Directories {
		if strings.EqualFold(d.NetBIOSName, nb) {
			return true
		}
	}
	return false
}

// Step is one stage of a directory Test.
type Step struct {
	// Stage is dns, tcp, tls, bind, search or groups.
	Stage Stage `json:"stage"`
	// Server is the server URL the step ran against.
	Server string `json:"server,omitempty"`
	// OK is whether it passed.
	OK bool `json:"ok"`
	// Detail says what happened.
	Detail string `json:"detail"`
}

// TestResult is what the Directories page's Test button shows.
type TestResult struct {
	// OK is true when every step passed.
	OK bool `json:"ok"`
	// Steps in order; the last failed one is the problem.
	Steps []Step `json:"steps"`
	// Account is the user found (with its groups), when a user was given.
	Account *Account `json:"account,omitempty"`
	// SID is the account's objectSid (Active Directory).
	SID string `json:"sid,omitempty"`
}

// Test connects to every server of d in turn, binds with the bind account
// (bindPW is the plain password) and, when user is given, looks it up and
// resolves its groups. It reports each stage, so the admin sees whether
// DNS, TCP, TLS, the bind or the search failed.
func Test(ctx context.Context, d config.Directory, bindPW, user string) TestResult {
	var res TestResult
	ld, err := newLDAPDir(d, bindPW)
	if err != nil {
		res.Steps = append(res.Steps, Step{Stage: StageTLS, Detail: err.Error()})
		return res
	}
	defer ld.close()
	timeout := time.Duration(d.Timeout()) * time.Second
	var bound *ldap.Conn
	var server string
	for _, s := range d.Servers {
		cctx, cancel := context.WithTimeout(ctx, timeout)
		c, err := ld.dialServer(cctx, s)
		cancel()
		if err != nil {
			var se *stageError
			errors.As(err, &se)
			res.Steps = append(res.Steps, Step{Stage: se.stage, Server: s, Detail: describe(se.stage, se.err)})
			continue
		}
		res.Steps = append(res.Steps, Step{Stage: StageTLS, Server: s, OK: true, Detail: map[bool]string{true: "connected", false: "connected without TLS (insecure)"}[strings.HasPrefix(s, "ldaps") || d.StartTLS]})
		if err := c.Bind(d.BindDN, bindPW); err != nil {
			c.Close()
			res.Steps = append(res.Steps, Step{Stage: StageBind, Server: s, Detail: describe(StageBind, err)})
			continue
		}
		res.Steps = append(res.Steps, Step{Stage: StageBind, Server: s, OK: true, Detail: "bound as " + d.BindDN})
		bound, server = c, s
		break
	}
	if bound == nil {
		return res
	}
	ld.search.put(&pooledConn{Conn: bound, server: server})
	if user == "" {
		res.OK = true
		return res
	}
	l, err := ParseLogin(user)
	if err != nil {
		res.Steps = append(res.Steps, Step{Stage: StageSearch, Server: server, Detail: err.Error()})
		return res
	}
	cctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	entry, _, err := ld.find(cctx, l)
	if err != nil {
		res.Steps = append(res.Steps, Step{Stage: StageSearch, Server: server, Detail: describe(StageSearch, err)})
		return res
	}
	res.Steps = append(res.Steps, Step{Stage: StageSearch, Server: server, OK: true, Detail: "found " + entry.DN})
	a, err := ld.account(cctx, entry)
	if err != nil {
		res.Steps = append(res.Steps, Step{Stage: StageGroups, Server: server, Detail: describe(StageGroups, err)})
		return res
	}
	res.Steps = append(res.Steps, Step{Stage: StageGroups, Server: server, OK: true, Detail: fmt.Sprintf("%d groups", len(a.Groups))})
	if f := adStatus(d, entry); f != 0 {
		res.Steps = append(res.Steps, Step{Stage: StageSearch, Server: server, OK: true, Detail: "note: " + f.String()})
	}
	res.Account, res.SID, res.OK = &a, sidString(entry.GetRawAttributeValue("objectSid")), true
	return res
}

// describe turns a stage's error into a sentence for the admin.
func describe(stage Stage, err error) string {
	switch {
	case errors.Is(err, errNoAccount):
		return "no account matches that user name under the base DN with the user filter"
	case errors.Is(err, errAmbiguous):
		return "more than one account matches that user name: narrow the user filter"
	}
	switch stage {
	case StageDNS:
		return "the server name does not resolve: " + err.Error()
	case StageTCP:
		return "no connection to the server: " + err.Error()
	case StageTLS:
		return "TLS failed (check the server certificate and the pinned CA): " + err.Error()
	case StageBind:
		if ldap.IsErrorWithCode(err, ldap.LDAPResultInvalidCredentials) {
			return "the bind account or its password was refused: " + err.Error()
		}
		if ldap.IsErrorWithCode(err, ldap.LDAPResultStrongAuthRequired) || ldap.IsErrorWithCode(err, ldap.LDAPResultConfidentialityRequired) {
			return "the server requires TLS for binds: use ldaps:// or StartTLS"
		}
		return "bind failed: " + err.Error()
	}
	return string(stage) + " failed: " + err.Error()
}
