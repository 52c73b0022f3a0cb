package directory

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/go-ldap/ldap/v3"

	"portico/service/config"
)

// Stage names the step of talking to a directory that failed, so the
// admin's Test button and the audit can say exactly what went wrong.
type Stage string

// Stages, in the order a connection goes through them.
const (
	StageDNS    Stage = "dns"
	StageTCP    Stage = "tcp"
	StageTLS    Stage = "tls"
	StageBind   Stage = "bind"
	StageSearch Stage = "search"
	StageGroups Stage = "groups"
)

// stageError is a failure at one stage against one server.
type stageError struct {
	stage  Stage
	server string
	err    error
}

func (e *stageError) Error() string { return fmt.Sprintf("%s %s: %v", e.stage, e.server, e.err) }
func (e *stageError) Unwrap() error { return e.err }

// downFor is how long a server that could not be reached is skipped while
// another one of the same directory answers.
const downFor = 30 * time.Second

// ldapDir is one configured directory: its settings, the unsealed bind
// password, and two small pools — connections bound as the service account
// (searches) and connections used for users' binds (they end up bound as
// whoever signed in last, so they never search).
type ldapDir struct {
	cfg    config.Directory
	bindPW string
	roots  *x509.CertPool // nil = system roots

	search, binds *pool

	mu    sync.Mutex
	down  map[string]time.Time // server URL → skipped until
	cache map[string]cachedAccount
	now   func() time.Time
}

type cachedAccount struct {
	acct    Account
	expires time.Time
}

func newLDAPDir(cfg config.Directory, bindPW string) (*ldapDir, error) {
	d := &ldapDir{cfg: cfg, bindPW: bindPW, down: map[string]time.Time{}, cache: map[string]cachedAccount{}, now: time.Now}
	if cfg.CACertPEM != "" {
		d.roots = x509.NewCertPool()
		if !d.roots.AppendCertsFromPEM([]byte(cfg.CACertPEM)) {
			return nil, fmt.Errorf("directory %s: the pinned CA certificate cannot be read", cfg.ID)
		}
	}
	d.search = &pool{ch: make(chan *pooledConn, cfg.Pool())}
	d.binds = &pool{ch: make(chan *pooledConn, cfg.Pool())}
	return d, nil
}

func (d *ldapDir) close() {
	d.search.close()
	d.binds.close()
}

// pooledConn is an open LDAP connection and the server it reached.
type pooledConn struct {
	*ldap.Conn
	server string
}

// pool keeps up to cap(ch) idle connections; more may be open while busy.
type pool struct{ ch chan *pooledConn }

func (p *pool) get() *pooledConn {
	for {
		select {
		case c := <-p.ch:
			if c.IsClosing() {
				continue
			}
			return c
		default:
			return nil
		}
	}
}

func (p *pool) put(c *pooledConn) {
	if c.IsClosing() {
		return
	}
	select {
	case p.ch <- c:
	default:
		c.Close()
	}
}

func (p *pool) close() {
	for {
		select {
		case c := <-p.ch:
			c.Close()
		default:
			return
		}
	}
}

// tlsConfig is the client TLS configuration for one server.
func (d *ldapDir) tlsConfig(host string) *tls.Config {
	return &tls.Config{ServerName: host, RootCAs: d.roots, MinVersion: tls.VersionTLS12}
}

// dialServer opens one connection to server, stage by stage, within ctx.
func (d *ldapDir) dialServer(ctx context.Context, server string) (*ldap.Conn, error) {
	u, err := url.Parse(server)
	if err != nil {
		return nil, &stageError{StageDNS, server, err}
	}
	host, port := u.Hostname(), u.Port()
	if port == "" {
		port = map[bool]string{true: "636", false: "389"}[u.Scheme == "ldaps"]
	}
	addrs := []string{host}
	if net.ParseIP(host) == nil {
		addrs, err = net.DefaultResolver.LookupHost(ctx, host)
		if err != nil {
			return nil, &stageError{StageDNS, server, err}
		}
	}
	var raw net.Conn
	var dialer net.Dialer
	for _, a := range addrs {
		if raw, err = dialer.DialContext(ctx, "tcp", net.JoinHostPort(a, port)); err == nil {
			break
		}
	}
	if err != nil {
		return nil, &stageError{StageTCP, server, err}
	}
	if dl, ok := ctx.Deadline(); ok {
		raw.SetDeadline(dl)
	}
	var c *ldap.Conn
	switch {
	case u.Scheme == "ldaps":
		tc := tls.Client(raw, d.tlsConfig(host))
		if err := tc.HandshakeContext(ctx); err != nil {
			raw.Close()
			return nil, &stageError{StageTLS, server, err}
		}
		c = ldap.NewConn(tc, true)
		c.Start()
	default:
		c = ldap.NewConn(raw, false)
		c.Start()
		if d.cfg.StartTLS {
			if err := c.StartTLS(d.tlsConfig(host)); err != nil {
				c.Close()
				return nil, &stageError{StageTLS, server, err}
			}
		}
	}
	raw.SetDeadline(time.Time{})
	c.SetTimeout(time.Duration(d.cfg.Timeout()) * time.Second)
	return c, nil
}

// dial opens a connection to the first server that answers, skipping
// servers that recently failed (unless all did), and binds it as the
// service account when asService is set.
func (d *ldapDir) dial(ctx context.Context, asService bool) (*pooledConn, error) {
	now := d.now()
	var up, down []string
	d.mu.Lock()
	for _, s := range d.cfg.Servers {
		if now.Before(d.down[s]) {
			down = append(down, s)
		} else {
			up = append(up, s)
		}
	}
	d.mu.Unlock()
	var last error
	for _, s := range append(up, down...) {
		if ctx.Err() != nil {
			break
		}
		c, err := d.dialServer(ctx, s)
		if err == nil && asService {
			if err = c.Bind(d.cfg.BindDN, d.bindPW); err != nil {
				c.Close()
				err = &stageError{StageBind, s, fmt.Errorf("the bind account was refused: %w", err)}
			}
		}
		if err == nil {
			d.mu.Lock()
			delete(d.down, s)
			d.mu.Unlock()
			return &pooledConn{Conn: c, server: s}, nil
		}
		d.mu.Lock()
		d.down[s] = now.Add(downFor)
		d.mu.Unlock()
		last = err
	}
	if last == nil {
		last = &stageError{StageTCP, strings.Join(d.cfg.Servers, ", "), fmt.Errorf("no answer within %d s", d.cfg.Timeout())}
	}
	return nil, last
}

// withConn runs fn on a pooled connection, once more on a fresh one when
// the first failed at the network level (a pooled connection the server
// closed while idle).
func (d *ldapDir) withConn(ctx context.Context, p *pool, asService bool, fn func(*pooledConn) error) error {
	for attempt := 0; ; attempt++ {
		c := p.get()
		if c == nil {
			var err error
			if c, err = d.dial(ctx, asService); err != nil {
				return err
			}
		}
		err := fn(c)
		if err != nil && isNetworkError(err) && attempt == 0 {
			c.Close()
			continue
		}
		if err != nil && isNetworkError(err) {
			c.Close()
			return &stageError{StageSearch, c.server, err}
		}
		p.put(c)
		return err
	}
}

func isNetworkError(err error) bool {
	var le *ldap.Error
	if errors.As(err, &le) {
		return le.ResultCode == ldap.ErrorNetwork || le.ResultCode == ldap.LDAPResultBusy || le.ResultCode == ldap.LDAPResultUnavailable || le.ResultCode == ldap.LDAPResultTimeLimitExceeded
	}
	var ne net.Error
	return errors.As(err, &ne)
}

var userAttrs = []string{"sAMAccountName", "userPrincipalName", "displayName", "cn", "uid", "userAccountControl",
	"lockoutTime", "pwdLastSet", "msDS-User-Account-Control-Computed", "primaryGroupID", "objectSid"}

// find returns the one account l names, or errNoAccount.
func (d *ldapDir) find(ctx context.Context, l Login) (*ldap.Entry, string, error) {
	var entry *ldap.Entry
	var server string
	err := d.withConn(ctx, d.search, true, func(c *pooledConn) error {
		server = c.server
		res, err := c.Search(ldap.NewSearchRequest(d.cfg.BaseDN, ldap.ScopeWholeSubtree, ldap.NeverDerefAliases, 2,
			d.cfg.Timeout(), false, UserFilter(d.cfg, l), userAttrs, nil))
		if err != nil {
			if ldap.IsErrorWithCode(err, ldap.LDAPResultSizeLimitExceeded) {
				return errAmbiguous
			}
			if ldap.IsErrorWithCode(err, ldap.LDAPResultNoSuchObject) {
				return errNoAccount
			}
			return err
		}
		switch len(res.Entries) {
		case 0:
			return errNoAccount
		case 1:
			entry = res.Entries[0]
			return nil
		default:
			return errAmbiguous
		}
	})
	if err != nil && !errors.Is(err, errNoAccount) && !errors.Is(err, errAmbiguous) {
		var se *stageError
		if !errors.As(err, &se) {
			err = &stageError{StageSearch, server, err}
		}
	}
	return entry, server, err
}

var (
	errNoAccount = errors.New("no such account")
	errAmbiguous = errors.New("the name matches more than one account")
)

// adData finds Active Directory's sub-code in a bind error ("... data 533, ...").
var adData = regexp.MustCompile(`data ([0-9a-fA-F]{3,8})`)

// bindFailure maps a refused user bind to a sign-in failure.
func bindFailure(err error) Failure {
	if !ldap.IsErrorWithCode(err, ldap.LDAPResultInvalidCredentials) {
		return FailWrongPassword
	}
	m := adData.FindStringSubmatch(err.Error())
	if m == nil {
		return FailWrongPassword
	}
	switch strings.ToLower(m[1]) {
	case "533":
		return FailDisabled
	case "775":
		return FailLocked
	case "532":
		return FailPasswordExpired
	case "773":
		return FailMustChange
	case "701":
		return FailAccountExpired
	}
	return FailWrongPassword
}

// authenticate checks password for the account l names.
func (d *ldapDir) authenticate(ctx context.Context, l Login, password string) (Account, error) {
	fail := func(f Failure, server string, err error) (Account, error) {
		return Account{}, &Error{Failure: f, Directory: d.cfg.ID, Server: server, Err: err}
	}
	entry, server, err := d.find(ctx, l)
	switch {
	case errors.Is(err, errNoAccount):
		return fail(FailNoAccount, server, err)
	case errors.Is(err, errAmbiguous):
		return fail(FailWrongPassword, server, err)
	case err != nil:
		return fail(FailUnreachable, serverOf(err), err)
	}
	if password == "" {
		// An empty password is an unauthenticated bind, which succeeds.
		return fail(FailWrongPassword, server, errors.New("empty password"))
	}
	var bindErr error
	err = d.withConn(ctx, d.binds, false, func(c *pooledConn) error {
		server = c.server
		bindErr = c.Bind(entry.DN, password)
		if bindErr != nil && isNetworkError(bindErr) {
			return bindErr
		}
		return nil
	})
	if err != nil {
		return fail(FailUnreachable, serverOf(err), err)
	}
	if bindErr != nil {
		return fail(bindFailure(bindErr), server, bindErr)
	}
	if f := adStatus(d.cfg, entry); f != 0 {
		return fail(f, server, errors.New("account state"))
	}
	a, err := d.account(ctx, entry)
	if err != nil {
		return fail(FailUnreachable, serverOf(err), err)
	}
	d.remember(a)
	return a, nil
}

func serverOf(err error) string {
	var se *stageError
	if errors.As(err, &se) {
		return se.server
	}
	return ""
}

// adStatus reads an Active Directory account's state after a successful
// bind (a directory may accept the bind and still mark the account).
func adStatus(cfg config.Directory, e *ldap.Entry) Failure {
	if cfg.Kind != config.KindActiveDirectory {
		return 0
	}
	uac, _ := strconv.ParseInt(e.GetAttributeValue("userAccountControl"), 10, 64)
	computed, _ := strconv.ParseInt(e.GetAttributeValue("msDS-User-Account-Control-Computed"), 10, 64)
	lockout, _ := strconv.ParseInt(e.GetAttributeValue("lockoutTime"), 10, 64)
	switch {
	case uac&0x2 != 0:
		return FailDisabled
	case lockout > 0 && computed&0x10 != 0:
		return FailLocked
	case computed&0x800000 != 0:
		return FailPasswordExpired
	case e.GetAttributeValue("pwdLastSet") == "0":
		return FailMustChange
	}
	return 0
}

// account builds the Account for an entry, resolving its groups now.
func (d *ldapDir) account(ctx context.Context, e *ldap.Entry) (Account, error) {
	name := e.GetAttributeValue("sAMAccountName")
	if name == "" {
		name = e.GetAttributeValue(d.cfg.Login())
	}
	if name == "" {
		name = e.GetAttributeValue("uid")
	}
	display := e.GetAttributeValue("displayName")
	if display == "" {
		display = e.GetAttributeValue("cn")
	}
	groups, err := d.groups(ctx, e, name)
	if err != nil {
		return Account{}, err
	}
	return Account{Source: d.cfg.ID, Username: name, Domain: strings.ToUpper(d.cfg.NetBIOSName), DNSDomain: strings.ToLower(d.cfg.DNSName),
		DisplayName: display, DN: e.DN, Groups: groups}, nil
}

// groups resolves the groups of an account: nested ones through the
// in-chain rule on Active Directory, plus its primary group.
func (d *ldapDir) groups(ctx context.Context, e *ldap.Entry, uid string) ([]string, error) {
	var names []string
	seen := map[string]bool{}
	add := func(g *ldap.Entry) {
		n := g.GetAttributeValue("sAMAccountName")
		if n == "" {
			n = g.GetAttributeValue("cn")
		}
		if n == "" || seen[strings.ToLower(n)] {
			return
		}
		seen[strings.ToLower(n)] = true
		names = append(names, QualifiedGroup(d.cfg.NetBIOSName, n))
	}
	err := d.withConn(ctx, d.search, true, func(c *pooledConn) error {
		res, err := c.Search(ldap.NewSearchRequest(d.cfg.Groups(), ldap.ScopeWholeSubtree, ldap.NeverDerefAliases, 1000,
			d.cfg.Timeout(), false, groupFilter(d.cfg, e.DN, uid), []string{"cn", "sAMAccountName"}, nil))
		if err != nil && !ldap.IsErrorWithCode(err, ldap.LDAPResultNoSuchObject) {
			return err
		}
		if res != nil {
			for _, g := range res.Entries {
				add(g)
			}
		}
		if d.cfg.Kind != config.KindActiveDirectory {
			return nil
		}
		rid, _ := strconv.ParseUint(e.GetAttributeValue("primaryGroupID"), 10, 32)
		sid := primaryGroupSID(e.GetRawAttributeValue("objectSid"), uint32(rid))
		if rid == 0 || sid == nil {
			return nil
		}
		res, err = c.Search(ldap.NewSearchRequest(d.cfg.BaseDN, ldap.ScopeWholeSubtree, ldap.NeverDerefAliases, 1,
			d.cfg.Timeout(), false, "(objectSid="+sidFilterValue(sid)+")", []string{"cn", "sAMAccountName"}, nil))
		if err != nil && !ldap.IsErrorWithCode(err, ldap.LDAPResultNoSuchObject) {
			return err
		}
		if res != nil {
			for _, g := range res.Entries {
				add(g)
			}
		}
		return nil
	})
	if err != nil {
		var se *stageError
		if !errors.As(err, &se) {
			err = &stageError{StageGroups, "", err}
		}
		return nil, err
	}
	return names, nil
}

func (d *ldapDir) remember(a Account) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if len(d.cache) > 10000 {
		clear(d.cache)
	}
	d.cache[strings.ToLower(a.DN)] = cachedAccount{acct: a, expires: d.now().Add(time.Duration(d.cfg.GroupCache()) * time.Second)}
}

// refresh re-reads a signed-in account (at launch): from the cache while
// it is fresh, else from the directory. A directory that cannot be reached
// keeps the account as it was at sign-in.
func (d *ldapDir) refresh(ctx context.Context, a Account) (Account, error) {
	d.mu.Lock()
	c, ok := d.cache[strings.ToLower(a.DN)]
	d.mu.Unlock()
	if ok && d.now().Before(c.expires) {
		return c.acct, nil
	}
	var entry *ldap.Entry
	err := d.withConn(ctx, d.search, true, func(c *pooledConn) error {
		res, err := c.Search(ldap.NewSearchRequest(a.DN, ldap.ScopeBaseObject, ldap.NeverDerefAliases, 1,
			d.cfg.Timeout(), false, "(objectClass=*)", userAttrs, nil))
		if ldap.IsErrorWithCode(err, ldap.LDAPResultNoSuchObject) {
			return errNoAccount
		}
		if err != nil {
			return err
		}
		if len(res.Entries) == 1 {
			entry = res.Entries[0]
		} else {
			return errNoAccount
		}
		return nil
	})
	switch {
	case errors.Is(err, errNoAccount):
		return Account{}, &Error{Failure: FailNoAccount, Directory: d.cfg.ID, Err: err}
	case err != nil:
		return a, &Error{Failure: FailUnreachable, Directory: d.cfg.ID, Server: serverOf(err), Err: err}
	}
	if f := adStatus(d.cfg, entry); f == FailDisabled {
		return Account{}, &Error{Failure: f, Directory: d.cfg.ID, Err: errors.New("account disabled")}
	}
	fresh, err := d.account(ctx, entry)
	if err != nil {
		return a, &Error{Failure: FailUnreachable, Directory: d.cfg.ID, Server: serverOf(err), Err: err}
	}
	d.remember(fresh)
	return fresh, nil
}

// searchGroups lists up to limit groups whose name starts with prefix.
func (d *ldapDir) searchGroups(ctx context.Context, prefix string, limit int) ([]string, error) {
	var out []string
	err := d.withConn(ctx, d.search, true, func(c *pooledConn) error {
		res, err := c.Search(ldap.NewSearchRequest(d.cfg.Groups(), ldap.ScopeWholeSubtree, ldap.NeverDerefAliases, limit,
			d.cfg.Timeout(), false, GroupSearchFilter(d.cfg, prefix), []string{"cn", "sAMAccountName"}, nil))
		if err != nil && !ldap.IsErrorWithCode(err, ldap.LDAPResultSizeLimitExceeded) {
			return err
		}
		if res != nil {
			for _, g := range res.Entries {
				n := g.GetAttributeValue("sAMAccountName")
				if n == "" {
					n = g.GetAttributeValue("cn")
				}
				out = append(out, QualifiedGroup(d.cfg.NetBIOSName, n))
			}
		}
		return nil
	})
	return out, err
}

// QualifiedGroup is how a directory group is named in Portico's
// assignments, policies and audit: NETBIOS\Group, so it never collides
// with a local group of the same name.
func QualifiedGroup(netbios, name string) string {
	return strings.ToUpper(netbios) + `\` + name
}

// sidString formats a binary SID (S-1-5-21-...), for the Test output.
func sidString(b []byte) string {
	if len(b) < 8 || int(b[1])*4+8 != len(b) {
		return ""
	}
	auth := uint64(0)
	for _, c := range b[2:8] {
		auth = auth<<8 | uint64(c)
	}
	s := fmt.Sprintf("S-%d-%d", b[0], auth)
	for i := 0; i < int(b[1]); i++ {
		s += "-" + strconv.FormatUint(uint64(binary.LittleEndian.Uint32(b[8+4*i:])), 10)
	}
	return s
}
