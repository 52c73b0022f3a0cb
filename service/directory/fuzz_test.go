package directory

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/go-ldap/ldap/v3"

	"portico/service/config"
)

// FuzzParseLogin: any input parses or is refused; a parsed name has no
// control characters and round-trips through its format.
func FuzzParseLogin(f *testing.F) {
	for _, s := range []string{"alice", `OFFICE\alice`, "alice@office.example", `\`, "@", "a@b@c", "nul\x00", "*)(uid=*", `a\b\c`, " alice "} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		l, err := ParseLogin(s)
		if err != nil {
			return
		}
		if l.Username == "" || !utf8.ValidString(l.Username) {
			t.Fatalf("%q parsed to empty or invalid user %q", s, l.Username)
		}
		for _, r := range l.Username + l.Domain {
			if r < 0x20 || r == 0x7f {
				t.Fatalf("%q: control character kept", s)
			}
		}
		var back string
		switch l.Format {
		case "plain":
			back = l.Username
		case "upn":
			back = l.Username + "@" + l.Domain
		case "downlevel":
			back = l.Domain + `\` + l.Username
		default:
			t.Fatalf("format %q", l.Format)
		}
		if back != strings.TrimSpace(s) {
			t.Fatalf("%q does not round-trip: %q", s, back)
		}
	})
}

// FuzzUserFilter: whatever the user name, the filter compiles and has the
// same operator structure as for a plain name.
func FuzzUserFilter(f *testing.F) {
	for _, s := range []string{"alice", "*", ")(", "a)(|(cn=*", "\x00", `\2a`, "(&)"} {
		f.Add(s, false)
	}
	f.Fuzz(func(t *testing.T, name string, upn bool) {
		for _, kind := range []config.DirectoryKind{config.KindActiveDirectory, config.KindLDAP} {
			d := adDir()
			d.Kind = kind
			l := Login{Username: name, Format: "plain"}
			if upn {
				l = Login{Username: name, Domain: "office.example", Format: "upn"}
			}
			for _, f := range []string{groupFilter(d, "uid="+name+",dc=x", name), GroupSearchFilter(d, name)} {
				if _, err := ldap.CompileFilter(f); err != nil {
					t.Fatalf("group filter %q for %q: %v", f, name, err)
				}
			}
			got, err := ldap.CompileFilter(UserFilter(d, l))
			if err != nil {
				t.Fatalf("%q: %v", name, err)
			}
			l.Username = "x"
			want, _ := ldap.CompileFilter(UserFilter(d, l))
			if filterShape(got) != filterShape(want) {
				t.Fatalf("%q changed the filter's shape", name)
			}
		}
	})
}
