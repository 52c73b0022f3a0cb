package directory

import (
	"strings"

	"github.com/go-ldap/ldap/v3"

	"portico/service/config"
)

// UserFilter builds the search filter that finds the account a sign-in
// name means in directory d: the admin's user filter AND the login
// attribute (for Active Directory sAMAccountName, or userPrincipalName when
// a DNS domain was typed). Every typed value goes through
// ldap.EscapeFilter, so '*', '(', ')', '\' and NUL match themselves and
// never change the filter's shape.
func UserFilter(d config.Directory, l Login) string {
	user := ldap.EscapeFilter(l.Username)
	var match string
	if d.Kind == config.KindActiveDirectory && d.LoginAttribute == "" {
		sam := "(sAMAccountName=" + user + ")"
		upn := "(userPrincipalName=" + user + "@" + ldap.EscapeFilter(strings.ToLower(d.DNSName)) + ")"
		if l.Format == "upn" {
			// A UPN suffix may differ from the DNS name (alternative UPN
			// suffixes): ask for the typed UPN as well.
			upn = "(|" + upn + "(userPrincipalName=" + user + "@" + ldap.EscapeFilter(l.Domain) + "))"
		}
		match = "(|" + sam + upn + ")"
	} else {
		match = "(" + d.Login() + "=" + user + ")"
	}
	return "(&" + d.Filter() + match + ")"
}

// groupFilter finds the groups an account belongs to.
func groupFilter(d config.Directory, dn, uid string) string {
	if d.Kind == config.KindActiveDirectory {
		// LDAP_MATCHING_RULE_IN_CHAIN: nested groups in one search.
		return "(member:1.2.840.113556.1.4.1941:=" + ldap.EscapeFilter(dn) + ")"
	}
	f := "(|(member=" + ldap.EscapeFilter(dn) + ")(uniqueMember=" + ldap.EscapeFilter(dn) + ")"
	if uid != "" {
		f += "(memberUid=" + ldap.EscapeFilter(uid) + ")"
	}
	f += ")"
	return "(&(|(objectClass=groupOfNames)(objectClass=groupOfUniqueNames)(objectClass=posixGroup)(objectClass=group))" + f + ")"
}

// GroupSearchFilter finds groups whose name starts with prefix, for the
// admin GUI's pickers.
func GroupSearchFilter(d config.Directory, prefix string) string {
	p := ldap.EscapeFilter(prefix)
	if d.Kind == config.KindActiveDirectory {
		return "(&(objectClass=group)(|(cn=" + p + "*)(sAMAccountName=" + p + "*)))"
	}
	return "(&(|(objectClass=groupOfNames)(objectClass=groupOfUniqueNames)(objectClass=posixGroup))(cn=" + p + "*))"
}

// sidFilterValue escapes a binary SID byte by byte for an objectSid filter.
func sidFilterValue(sid []byte) string {
	const hex = "0123456789abcdef"
	var b strings.Builder
	for _, c := range sid {
		b.WriteByte('\\')
		b.WriteByte(hex[c>>4])
		b.WriteByte(hex[c&15])
	}
	return b.String()
}

// primaryGroupSID replaces the last sub-authority (the RID) of a user's
// objectSid with the primaryGroupID, giving the primary group's SID (AD
// does not list the primary group in member/memberOf).
func primaryGroupSID(userSID []byte, rid uint32) []byte {
	if len(userSID) < 12 || int(userSID[1])*4+8 != len(userSID) || userSID[1] == 0 {
		return nil
	}
	out := append([]byte(nil), userSID...)
	n := len(out)
	out[n-4], out[n-3], out[n-2], out[n-1] = byte(rid), byte(rid>>8), byte(rid>>16), byte(rid>>24)
	return out
}
