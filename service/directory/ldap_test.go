package directory

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	ber "github.com/go-asn1-ber/asn1-ber"
	"github.com/go-ldap/ldap/v3"

	"portico/service/config"
)

func adDir() config.Directory {
	return config.Directory{ID: "office", Kind: config.KindActiveDirectory, Servers: []string{"ldaps://dc1.office.example"},
		BindDN: `OFFICE\portal`, BindPassword: "x", BaseDN: "dc=office,dc=example", NetBIOSName: "OFFICE", DNSName: "office.example"}
}

// TestDirectoryFilterEscapes proves that what a user types never changes
// the shape of the search filter: the compiled filter has the same
// structure as for a harmless name, and the typed text comes back as the
// literal value.
func TestDirectoryFilterEscapes(t *testing.T) {
	for _, kind := range []config.DirectoryKind{config.KindActiveDirectory, config.KindLDAP} {
		d := adDir()
		d.Kind = kind
		for _, name := range []string{"*", "alice)(uid=*", "a*)(|(objectClass=*", "nul\x00byte", `back\slash`, "alice"} {
			f := UserFilter(d, Login{Username: name, Format: "plain"})
			pf, err := ldap.CompileFilter(f)
			if err != nil {
				t.Fatalf("%s: filter %q for %q does not compile: %v", kind, f, name, err)
			}
			want, _ := ldap.CompileFilter(UserFilter(d, Login{Username: "x", Format: "plain"}))
			if filterShape(pf) != filterShape(want) {
				t.Fatalf("%s: typed %q changed the filter shape:\n%s\n%s", kind, name, filterShape(pf), filterShape(want))
			}
			dec, _ := ldap.DecompileFilter(pf)
			if strings.Contains(dec, "=*)") {
				t.Fatalf("%s: typed %q produced a presence filter: %s", kind, name, dec)
			}
		}
	}
}

// filterShape is a compiled filter's tree of operators and attribute
// names, without the asserted values.
func filterShape(p *ber.Packet) string {
	if p.Tag == ldap.FilterEqualityMatch && len(p.Children) == 2 {
		return fmt.Sprintf("=(%v)", p.Children[0].Value)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%d(", p.Tag)
	for _, c := range p.Children {
		b.WriteString(filterShape(c))
	}
	b.WriteString(")")
	return b.String()
}

func TestDirectoryBindFailure(t *testing.T) {
	mk := func(code uint16, msg string) error { return ldap.NewError(code, errors.New(msg)) }
	cases := map[string]Failure{
		"80090308: LdapErr: DSID-0C09042F, comment: AcceptSecurityContext error, data 52e, v4563": FailWrongPassword,
		"80090308: LdapErr: DSID-0C09042F, comment: AcceptSecurityContext error, data 533, v4563": FailDisabled,
		"... data 775, v4563": FailLocked,
		"... data 532, v4563": FailPasswordExpired,
		"... data 773, v4563": FailMustChange,
		"... data 701, v4563": FailAccountExpired,
		"Invalid credentials": FailWrongPassword,
	}
	for msg, want := range cases {
		if got := bindFailure(mk(ldap.LDAPResultInvalidCredentials, msg)); got != want {
			t.Errorf("%q: %v, want %v", msg, got, want)
		}
	}
	if bindFailure(mk(ldap.LDAPResultOperationsError, "data 533")) != FailWrongPassword {
		t.Error("a non-credentials error mapped to a state")
	}
}

func TestDirectoryPrimaryGroupSID(t *testing.T) {
	// S-1-5-21-1-2-3-1104 → RID 513 (Domain Users).
	sid := []byte{1, 5, 0, 0, 0, 0, 0, 5, 21, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0, 0x50, 4, 0, 0}
	if got := sidString(sid); got != "S-1-5-21-1-2-3-1104" {
		t.Fatalf("sid %s", got)
	}
	if got := sidString(primaryGroupSID(sid, 513)); got != "S-1-5-21-1-2-3-513" {
		t.Fatalf("primary group sid %s", got)
	}
	if primaryGroupSID(sid[:10], 513) != nil || primaryGroupSID(nil, 1) != nil {
		t.Fatal("short SID accepted")
	}
	if sidFilterValue([]byte{0, 0xab}) != `\00\ab` {
		t.Fatal("sid filter escape")
	}
}

func TestDirectoryDomainForms(t *testing.T) {
	cases := []struct {
		account, typed string
		ok             bool
	}{
		{"OFFICE", "OFFICE", true}, {"OFFICE", "office", true}, {"OFFICE", "office.example.com", true},
		{"office.example.com", "OFFICE", true}, {"office.example.com", "office.example.com", true},
		{"office.example.com", "office.evil.com", false}, {"OFFICE", "OTHER", false}, {"", "", true}, {"OFFICE", "", true},
		{"", "OFFICE", false},
	}
	for _, c := range cases {
		if got := DomainMatches(c.account, c.typed); got != c.ok {
			t.Errorf("DomainMatches(%q, %q) = %v", c.account, c.typed, got)
		}
	}
	if DownlevelDomain("office.example.com") != "OFFICE" {
		t.Fatal("downlevel form")
	}
}

func TestDirectorySettingsValidate(t *testing.T) {
	good := adDir()
	if err := (config.SignIn{Directories: []config.Directory{good}}).Validate(); err != nil {
		t.Fatalf("good settings refused: %v", err)
	}
	bad := func(field string, fn func(*config.Directory)) {
		t.Helper()
		d := adDir()
		fn(&d)
		err := config.SignIn{Directories: []config.Directory{d}}.Validate()
		if err == nil || !strings.Contains(err.Error(), field) {
			t.Errorf("%s: want a field error, got %v", field, err)
		}
	}
	bad("servers[0]", func(d *config.Directory) { d.Servers = []string{"ldap://dc1"} })
	bad("servers[0]", func(d *config.Directory) { d.Servers = []string{"http://dc1"} })
	bad("servers", func(d *config.Directory) { d.Servers = nil })
	bad("baseDN", func(d *config.Directory) { d.BaseDN = "not a dn" })
	bad("userFilter", func(d *config.Directory) { d.UserFilter = "objectClass=person" })
	bad("netbiosName", func(d *config.Directory) { d.NetBIOSName = "TOO-LONG-NETBIOS-NAME" })
	bad("dnsName", func(d *config.Directory) { d.DNSName = "office" })
	bad("caCertPEM", func(d *config.Directory) { d.CACertPEM = "junk" })
	bad("kind", func(d *config.Directory) { d.Kind = "nis" })
	bad("timeoutSeconds", func(d *config.Directory) { d.TimeoutSeconds = 600 })
	d := adDir()
	d.Servers, d.Insecure = []string{"ldap://dc1"}, true
	if err := d.Validate(); err != nil {
		t.Fatalf("insecure ldap:// with the box ticked refused: %v", err)
	}
	d.Insecure, d.StartTLS = false, true
	if err := d.Validate(); err != nil {
		t.Fatalf("ldap:// with StartTLS refused: %v", err)
	}
	if err := (config.SignIn{TOTP: config.TOTPSettings{Mode: config.TOTPGroups}}).Validate(); err == nil {
		t.Fatal("TOTP for groups without groups accepted")
	}
}

// TestDirectoryUnreachable: a directory server that accepts TCP and never
// answers makes the sign-in fail within the directory's timeout with
// FailUnreachable naming the server, and a local account still signs in.
func TestDirectoryUnreachable(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			defer c.Close() // hold it open, say nothing
		}
	}()
	d := adDir()
	d.Servers = []string{"ldaps://" + ln.Addr().String()}
	d.TimeoutSeconds = 1
	hash, _ := HashPassword("local-password")
	svc := &Service{LocalUser: func(name string) (User, error) {
		if name == "admin" {
			return User{Username: "admin", PasswordHash: hash}, nil
		}
		return User{}, errors.New("not found")
	}}
	si := config.SignIn{Directories: []config.Directory{d}}
	start := time.Now()
	_, err = svc.Authenticate(context.Background(), si, Login{Username: "alice", Domain: "OFFICE", Format: "downlevel"}, "pw")
	var e *Error
	if !errors.As(err, &e) || e.Failure != FailUnreachable || !strings.Contains(e.Server, ln.Addr().String()) {
		t.Fatalf("want unreachable naming the server, got %v", err)
	}
	if time.Since(start) > 30*time.Second {
		t.Fatalf("took %v: the timeout did not bound it", time.Since(start))
	}
	if FailureOf(err).Message() != "The directory cannot be reached; try again or ask your administrator." {
		t.Fatalf("message %q", FailureOf(err).Message())
	}
	a, err := svc.Authenticate(context.Background(), si, Login{Username: "admin", Format: "plain"}, "local-password")
	if err != nil || a.Source != "" || a.Principal() != "admin" {
		t.Fatalf("local admin while the directory is down: %+v %v", a, err)
	}
	if _, err := svc.Authenticate(context.Background(), si, Login{Username: "admin", Format: "plain"}, "wrong"); FailureOf(err) != FailWrongPassword {
		t.Fatalf("wrong local password: %v", err)
	}
}
