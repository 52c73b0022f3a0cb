// Package directory owns who may sign in to the portal: local user accounts
// and groups (their validation and argon2id password hashing), how sign-in
// names in either login format map to one account, and the Active
// Directory and LDAP directories asked after the local accounts (binds,
// searches, groups, a small connection pool per directory, failover). It
// does not store anything: the store persists the local records and the
// sign-in settings (service/config), and the portal asks Service.
package directory

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"unicode/utf8"

	"golang.org/x/crypto/argon2"
)

// User is a local account.
type User struct {
	// Username is the account name without domain; unique case-insensitively.
	Username string `json:"username"`
	// Domain is the sign-in domain (e.g. OFFICE); empty = the default domain.
	Domain string `json:"domain,omitempty"`
	// DisplayName is shown in the portal.
	DisplayName string `json:"displayName,omitempty"`
	// Groups the user belongs to.
	Groups []string `json:"groups"`
	// Disabled accounts cannot sign in; their portal sessions end.
	Disabled bool `json:"disabled"`
	// Admin marks the first-run administrator account.
	Admin bool `json:"admin,omitempty"`
	// PasswordHash is an argon2id PHC string; never returned by the API.
	PasswordHash string `json:"passwordHash,omitempty"`
	// Epoch is the account's credential generation, set by the store: it
	// changes when the account is created, its password changes or it is
	// enabled again, and never goes back. A portal sign-in made under another
	// epoch is refused, so re-enabling an account does not revive an old
	// cookie.
	Epoch int64 `json:"epoch,omitempty"`
}

// Group is a named set of users that resources and policies can target.
type Group struct {
	// Name is unique case-insensitively.
	Name string `json:"name"`
	// Description is free text for the admin.
	Description string `json:"description,omitempty"`
}

var nameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)

// Key is the store key of a user or group name: names are case-insensitive.
func Key(name string) string { return strings.ToLower(strings.TrimSpace(name)) }

// Validate checks a user record (not its password).
func (u User) Validate() error {
	var problems []string
	if !nameRE.MatchString(u.Username) {
		problems = append(problems, fmt.Sprintf("username: %q: use 1 to 64 letters, digits, '.', '_' or '-', starting with a letter or digit", u.Username))
	}
	if u.Domain != "" && !nameRE.MatchString(u.Domain) {
		problems = append(problems, fmt.Sprintf("domain: %q: use letters, digits, '.', '_' or '-'", u.Domain))
	}
	if len(u.DisplayName) > 100 {
		problems = append(problems, "displayName: use at most 100 characters")
	}
	for i, g := range u.Groups {
		if !nameRE.MatchString(g) {
			problems = append(problems, fmt.Sprintf("groups[%d]: %q is not a valid group name", i, g))
		}
	}
	if len(problems) > 0 {
		return errors.New(strings.Join(problems, "; "))
	}
	return nil
}

// Validate checks a group record.
func (g Group) Validate() error {
	if !nameRE.MatchString(g.Name) {
		return fmt.Errorf("name: %q: use 1 to 64 letters, digits, '.', '_' or '-'", g.Name)
	}
	if len(g.Description) > 200 {
		return errors.New("description: use at most 200 characters")
	}
	return nil
}

// InGroup reports whether the user is a member of group (case-insensitive).
func (u User) InGroup(group string) bool {
	for _, g := range u.Groups {
		if strings.EqualFold(g, group) {
			return true
		}
	}
	return false
}

// Login is a parsed sign-in name.
type Login struct {
	// Username part.
	Username string
	// Domain part, "" when none was typed.
	Domain string
	// Format is how it was typed: "plain", "upn" (user@domain) or "downlevel" (DOMAIN\user).
	Format string
}

// ParseLogin splits a sign-in name typed as user, user@domain or
// DOMAIN\user. It refuses control characters (NUL included) and names
// longer than 256 bytes; what it returns is still untrusted text that the
// LDAP filter builder escapes.
func ParseLogin(s string) (Login, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return Login{}, errors.New("enter your user name")
	}
	if len(s) > 256 {
		return Login{}, errors.New("that user name is too long")
	}
	for _, r := range s {
		if r < 0x20 || r == 0x7f || r == utf8.RuneError {
			return Login{}, errors.New("that user name contains characters a user name cannot have")
		}
	}
	if i := strings.IndexByte(s, '\\'); i >= 0 {
		d, u := s[:i], s[i+1:]
		if d == "" || u == "" || strings.ContainsAny(u, `\@`) {
			return Login{}, fmt.Errorf("%q is not DOMAIN\\user", s)
		}
		return Login{Username: u, Domain: d, Format: "downlevel"}, nil
	}
	if i := strings.LastIndexByte(s, '@'); i >= 0 {
		u, d := s[:i], s[i+1:]
		if d == "" || u == "" || strings.ContainsAny(u, `@`) {
			return Login{}, fmt.Errorf("%q is not user@domain", s)
		}
		return Login{Username: u, Domain: d, Format: "upn"}, nil
	}
	return Login{Username: s, Format: "plain"}, nil
}

// MatchesDomain reports whether a typed domain fits the account's domain.
// The account's Domain may be a NetBIOS name (OFFICE) or a DNS name
// (office.example.com); either way both forms sign in: OFFICE\alice and
// alice@office.example.com reach the account, matched by the first label
// when one side is a NetBIOS name and in full when both are DNS names.
func (u User) MatchesDomain(typed string) bool {
	return DomainMatches(u.Domain, typed)
}

// DomainMatches is MatchesDomain for any account domain.
func DomainMatches(account, typed string) bool {
	if typed == "" || account == "" {
		return typed == "" || strings.EqualFold(typed, account)
	}
	if strings.EqualFold(typed, account) {
		return true
	}
	if strings.Contains(typed, ".") && strings.Contains(account, ".") {
		return false
	}
	a, _, _ := strings.Cut(account, ".")
	t, _, _ := strings.Cut(typed, ".")
	return strings.EqualFold(a, t)
}

// DownlevelDomain is the form of a local account's domain shown in
// DOMAIN\user: the first label, upper-case.
func DownlevelDomain(domain string) string {
	first, _, _ := strings.Cut(domain, ".")
	return strings.ToUpper(first)
}

// argon2id parameters: OWASP's recommended minimum (19 MiB, 2 passes), which
// keeps a sign-in under ~50 ms on a small box while making offline guessing
// expensive.
const (
	argonTime    = 2
	argonMemory  = 19 * 1024
	argonThreads = 1
	argonKeyLen  = 32
	saltLen      = 16
	// MinPasswordLength is the shortest password an admin may set.
	MinPasswordLength = 8
)

// HashPassword returns an argon2id PHC string for password.
func HashPassword(password string) (string, error) {
	if len(password) < MinPasswordLength {
		return "", fmt.Errorf("password: use at least %d characters", MinPasswordLength)
	}
	salt := make([]byte, saltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", fmt.Errorf("hash password: %w", err)
	}
	key := argon2.IDKey([]byte(password), salt, argonTime, argonMemory, argonThreads, argonKeyLen)
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, argonMemory, argonTime, argonThreads,
		base64.RawStdEncoding.EncodeToString(salt), base64.RawStdEncoding.EncodeToString(key)), nil
}

// CheckPassword reports whether password matches the PHC hash, in constant
// time for a given hash.
func CheckPassword(hash, password string) bool {
	parts := strings.Split(hash, "$")
	if len(parts) != 6 || parts[1] != "argon2id" {
		return false
	}
	var m, t uint32
	var p uint8
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &m, &t, &p); err != nil || m == 0 || t == 0 || p == 0 || m > 1<<21 || t > 16 {
		return false
	}
	salt, err1 := base64.RawStdEncoding.DecodeString(parts[4])
	want, err2 := base64.RawStdEncoding.DecodeString(parts[5])
	if err1 != nil || err2 != nil || len(want) == 0 || len(want) > 64 {
		return false
	}
	got := argon2.IDKey([]byte(password), salt, t, m, p, uint32(len(want)))
	return subtle.ConstantTimeCompare(got, want) == 1
}

// GeneratePassword returns a random password of 20 characters from an
// alphabet without look-alikes, for first-run and reset.
func GeneratePassword() (string, error) {
	const alphabet = "abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789"
	b := make([]byte, 20)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("generate password: %w", err)
	}
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return string(b), nil
}
