package config

import (
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"net/url"
	"regexp"
	"strings"

	"github.com/go-ldap/ldap/v3"
)

// DirectoryKind says how the portal talks to a directory.
type DirectoryKind string

// Directory kinds. Local accounts are not a kind here: they always exist
// and are asked before any directory.
const (
	// KindActiveDirectory is Microsoft Active Directory (or Samba AD):
	// sAMAccountName/userPrincipalName, userAccountControl, nested groups
	// through the in-chain matching rule, the primary group.
	KindActiveDirectory DirectoryKind = "active-directory"
	// KindLDAP is a generic LDAPv3 directory (OpenLDAP and the like):
	// users by a login attribute, groups by member/uniqueMember/memberUid.
	KindLDAP DirectoryKind = "ldap"
)

// SignIn holds how portal users sign in: the directories asked after the
// local accounts, in order, and the second factor.
type SignIn struct {
	// Directories are tried in this order after the local accounts.
	Directories []Directory `json:"directories"`
	// TOTP is the two-factor sign-in setting.
	TOTP TOTPSettings `json:"totp"`
}

// TOTPMode says who must give a time-based one-time code after the password.
type TOTPMode string

// TOTP modes.
const (
	TOTPOff      TOTPMode = "off"
	TOTPGroups   TOTPMode = "groups"
	TOTPEveryone TOTPMode = "everyone"
)

// TOTPSettings is the two-factor sign-in setting.
type TOTPSettings struct {
	// Mode is off, groups (members of Groups only) or everyone. Empty means off.
	Mode TOTPMode `json:"mode"`
	// Groups must give a code when Mode is groups: local group names or
	// directory groups as NETBIOS\Group.
	Groups []string `json:"groups,omitempty"`
	// Issuer is the name authenticator apps show; empty = "Portico".
	Issuer string `json:"issuer,omitempty"`
}

// Required reports whether a user in groups must give a code.
func (t TOTPSettings) Required(groups []string) bool {
	switch t.Mode {
	case TOTPEveryone:
		return true
	case TOTPGroups:
		for _, g := range groups {
			for _, want := range t.Groups {
				if strings.EqualFold(g, want) {
					return true
				}
			}
		}
	}
	return false
}

// Directory is one Active Directory domain or LDAP directory the portal
// signs users in against.
type Directory struct {
	// ID names the directory in the API and in audit records; letters,
	// digits and '-', unique.
	ID string `json:"id"`
	// Kind is active-directory or ldap.
	Kind DirectoryKind `json:"kind"`
	// Disabled directories are kept but not asked.
	Disabled bool `json:"disabled,omitempty"`
	// Servers are ldaps://host[:port] or ldap://host[:port] URLs, tried in
	// order: the next one when a server cannot be reached.
	Servers []string `json:"servers"`
	// StartTLS upgrades ldap:// connections with StartTLS (ignored for ldaps://).
	StartTLS bool `json:"startTLS,omitempty"`
	// Insecure allows ldap:// without StartTLS: passwords then cross the
	// network in clear text. Only for a lab.
	Insecure bool `json:"insecure,omitempty"`
	// CACertPEM pins the CA that signed the servers' certificates; empty
	// trusts the system roots.
	CACertPEM string `json:"caCertPEM,omitempty"`
	// BindDN is the service account the portal searches with, as a DN or
	// (Active Directory) DOMAIN\user or user@domain.
	BindDN string `json:"bindDN"`
	// BindPassword is the service account's password, sealed at rest;
	// never returned by the API.
	BindPassword string `json:"bindPassword,omitempty"`
	// BaseDN is where user accounts are searched.
	BaseDN string `json:"baseDN"`
	// UserFilter narrows the user search, e.g. (objectClass=person); empty
	// takes the kind's default.
	UserFilter string `json:"userFilter,omitempty"`
	// LoginAttribute is the attribute holding the sign-in name for kind
	// ldap (default uid); Active Directory uses sAMAccountName and
	// userPrincipalName.
	LoginAttribute string `json:"loginAttribute,omitempty"`
	// GroupBase is where groups are searched; empty = BaseDN.
	GroupBase string `json:"groupBase,omitempty"`
	// NetBIOSName is the pre-Windows 2000 domain name (OFFICE): it
	// prefixes the directory's groups (OFFICE\Accounting) and users.
	NetBIOSName string `json:"netbiosName"`
	// DNSName is the DNS domain name (office.example): user@office.example.
	DNSName string `json:"dnsName"`
	// TimeoutSeconds bounds a whole sign-in against this directory
	// (default 5, 1 to 60).
	TimeoutSeconds int `json:"timeoutSeconds,omitempty"`
	// PoolSize is how many connections to keep open (default 4, 1 to 32).
	PoolSize int `json:"poolSize,omitempty"`
	// GroupCacheSeconds is how long groups found at sign-in are reused when a
	// session is re-checked at launch (default 60, 0 to 3600).
	GroupCacheSeconds int `json:"groupCacheSeconds,omitempty"`
}

// Directory defaults.
const (
	DefaultDirectoryTimeout = 5
	DefaultDirectoryPool    = 4
	DefaultGroupCache       = 60
)

// Timeout returns TimeoutSeconds with its default.
func (d Directory) Timeout() int {
	if d.TimeoutSeconds == 0 {
		return DefaultDirectoryTimeout
	}
	return d.TimeoutSeconds
}

// Pool returns PoolSize with its default.
func (d Directory) Pool() int {
	if d.PoolSize == 0 {
		return DefaultDirectoryPool
	}
	return d.PoolSize
}

// Filter returns UserFilter with the kind's default.
func (d Directory) Filter() string {
	if d.UserFilter != "" {
		return d.UserFilter
	}
	if d.Kind == KindActiveDirectory {
		return "(&(objectCategory=person)(objectClass=user))"
	}
	return "(objectClass=person)"
}

// Login returns LoginAttribute with its default.
func (d Directory) Login() string {
	if d.LoginAttribute != "" {
		return d.LoginAttribute
	}
	if d.Kind == KindActiveDirectory {
		return "sAMAccountName"
	}
	return "uid"
}

// GroupCache returns GroupCacheSeconds with its default.
func (d Directory) GroupCache() int {
	if d.GroupCacheSeconds == 0 {
		return DefaultGroupCache
	}
	return d.GroupCacheSeconds
}

// Groups returns GroupBase or BaseDN.
func (d Directory) Groups() string {
	if d.GroupBase != "" {
		return d.GroupBase
	}
	return d.BaseDN
}

var (
	dirIDRE   = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9-]{0,31}$`)
	netbiosRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9-]{0,14}$`)
	dnsRE     = regexp.MustCompile(`^(?i)[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)+$`)
	attrRE    = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9-]{0,63}$`)
)

// Validate checks the sign-in settings and returns every problem.
func (s SignIn) Validate() error {
	var es FieldErrors
	ids, netbios := map[string]bool{}, map[string]bool{}
	for i, d := range s.Directories {
		p := fmt.Sprintf("directories[%d].", i)
		es = append(es, d.validate(p)...)
		if k := strings.ToLower(d.ID); ids[k] {
			es.add(p+"id", d.ID, "another directory has this ID")
		} else {
			ids[k] = true
		}
		if k := strings.ToLower(d.NetBIOSName); k != "" && netbios[k] {
			es.add(p+"netbiosName", d.NetBIOSName, "another directory has this NetBIOS name")
		} else {
			netbios[k] = true
		}
	}
	switch s.TOTP.Mode {
	case "", TOTPOff, TOTPEveryone:
	case TOTPGroups:
		if len(s.TOTP.Groups) == 0 {
			es.add("totp.groups", "", "list at least one group, or choose off or everyone")
		}
	default:
		es.add("totp.mode", s.TOTP.Mode, "use off, groups or everyone")
	}
	if len(s.TOTP.Issuer) > 40 {
		es.add("totp.issuer", s.TOTP.Issuer, "use at most 40 characters")
	}
	if len(es) > 0 {
		return es
	}
	return nil
}

// Validate checks one directory on its own.
func (d Directory) Validate() error {
	if es := d.validate(""); len(es) > 0 {
		return es
	}
	return nil
}

func (d Directory) validate(p string) FieldErrors {
	var es FieldErrors
	if !dirIDRE.MatchString(d.ID) {
		es.add(p+"id", d.ID, "use 1 to 32 letters, digits or '-'")
	}
	if d.Kind != KindActiveDirectory && d.Kind != KindLDAP {
		es.add(p+"kind", d.Kind, "use active-directory or ldap")
	}
	if len(d.Servers) == 0 {
		es.add(p+"servers", "", "give at least one server URL, e.g. ldaps://dc1.office.example")
	}
	for i, s := range d.Servers {
		u, err := url.Parse(s)
		f := fmt.Sprintf("%sservers[%d]", p, i)
		switch {
		case err != nil || u.Host == "" || u.Hostname() == "" || (u.Path != "" && u.Path != "/") || u.User != nil || u.RawQuery != "":
			es.add(f, s, "use ldaps://host[:port] or ldap://host[:port]")
		case u.Scheme == "ldaps":
		case u.Scheme == "ldap":
			if !d.StartTLS && !d.Insecure {
				es.add(f, s, "plain LDAP sends passwords in clear text: use ldaps://, turn on StartTLS, or tick insecure")
			}
		default:
			es.add(f, s, "use ldaps://host[:port] or ldap://host[:port]")
		}
	}
	if d.CACertPEM != "" {
		rest := []byte(d.CACertPEM)
		n := 0
		for {
			var b *pem.Block
			b, rest = pem.Decode(rest)
			if b == nil {
				break
			}
			if b.Type != "CERTIFICATE" {
				continue
			}
			if _, err := x509.ParseCertificate(b.Bytes); err != nil {
				es.add(p+"caCertPEM", "", "a certificate in it cannot be read: %v", err)
				break
			}
			n++
		}
		if n == 0 {
			es.add(p+"caCertPEM", "", "paste the CA certificate in PEM form (-----BEGIN CERTIFICATE-----)")
		}
	}
	if strings.TrimSpace(d.BindDN) == "" {
		es.add(p+"bindDN", "", "give the service account the portal searches with")
	} else if strings.ContainsAny(d.BindDN, "=") {
		if _, err := ldap.ParseDN(d.BindDN); err != nil {
			es.add(p+"bindDN", d.BindDN, "not a valid DN: %v", err)
		}
	} else if d.Kind == KindLDAP {
		es.add(p+"bindDN", d.BindDN, "give the bind account as a DN, e.g. cn=portal,dc=office,dc=example")
	}
	for _, f := range []struct{ name, v string }{{"baseDN", d.BaseDN}, {"groupBase", d.GroupBase}} {
		if f.v == "" && f.name == "groupBase" {
			continue
		}
		if dn, err := ldap.ParseDN(f.v); err != nil || len(dn.RDNs) == 0 {
			es.add(p+f.name, f.v, "not a valid DN, e.g. dc=office,dc=example")
		}
	}
	if d.UserFilter != "" {
		if _, err := ldap.CompileFilter(d.UserFilter); err != nil {
			es.add(p+"userFilter", d.UserFilter, "not a valid LDAP filter (it needs parentheses, e.g. (objectClass=person))")
		}
	}
	if d.LoginAttribute != "" && !attrRE.MatchString(d.LoginAttribute) {
		es.add(p+"loginAttribute", d.LoginAttribute, "not an attribute name")
	}
	if !netbiosRE.MatchString(d.NetBIOSName) {
		es.add(p+"netbiosName", d.NetBIOSName, "use 1 to 15 letters, digits or '-' (the pre-Windows 2000 domain name, e.g. OFFICE)")
	}
	if !dnsRE.MatchString(d.DNSName) {
		es.add(p+"dnsName", d.DNSName, "use the DNS domain name, e.g. office.example")
	}
	if d.TimeoutSeconds < 0 || d.TimeoutSeconds > 60 {
		es.add(p+"timeoutSeconds", d.TimeoutSeconds, "use 1 to 60 seconds (0 = %d)", DefaultDirectoryTimeout)
	}
	if d.PoolSize < 0 || d.PoolSize > 32 {
		es.add(p+"poolSize", d.PoolSize, "use 1 to 32 (0 = %d)", DefaultDirectoryPool)
	}
	if d.GroupCacheSeconds < 0 || d.GroupCacheSeconds > 3600 {
		es.add(p+"groupCacheSeconds", d.GroupCacheSeconds, "use 1 to 3600 seconds (0 = %d)", DefaultGroupCache)
	}
	return es
}
