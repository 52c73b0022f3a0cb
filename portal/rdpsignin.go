package portal

import (
	"fmt"
	"strings"

	"portico/service/config"
	"portico/service/relay/rdp"
	"portico/service/relay/rdp/nla"
)

// rdpSignIn is the one place where the account the gateway signs in to an
// RDP host with is put together, for one session: the resource's stored
// account (unsealed here) or the user's own portal sign-in (its password
// kept sealed in memory by the session store). The relay zeroes it once
// the Client Info PDU is written. It returns nil for "ask" (NLA runs in
// the page) and says in how which credentials were used, for the audit.
func (p *Portal) rdpSignIn(s *Session, res config.Resource) (in *rdp.SignIn, how string, err error) {
	switch res.RDPSignIn() {
	case config.CredStored:
		pw, err := p.Secrets.Unseal(res.Credentials.Password)
		if err != nil {
			return nil, "", fmt.Errorf("unseal the stored RDP password of %s: %w", res.ID, err)
		}
		return &rdp.SignIn{Creds: nla.Credentials{User: res.Credentials.Username, Domain: res.Credentials.Domain, Password: pw}},
			"stored credentials of " + qualified(res.Credentials.Domain, res.Credentials.Username), nil
	case config.CredPortal:
		pw, ok := p.sessions.SignInPassword(s.ID())
		// A directory account signs in to Windows as its own account name
		// in its NetBIOS domain, not as the portal's NETBIOS\user.
		user, domain := s.RDPAccount()
		how = "portal sign-in of " + qualified(domain, user)
		if !ok {
			how += " (no password kept: signed in before the gateway restarted)"
		}
		return &rdp.SignIn{Creds: nla.Credentials{User: user, Domain: domain, Password: pw}}, how, nil
	}
	return nil, "", nil
}

func qualified(domain, user string) string {
	if domain == "" {
		return user
	}
	return domain + `\` + user
}

// rdpInitialProgram is the program a RemoteApp resource starts when it
// opens in the browser, as the Client Info PDU's alternate shell: the
// executable path (or the alias without its "||") and its arguments.
func rdpInitialProgram(res config.Resource) (shell, dir string) {
	ra := res.RemoteApp
	if ra == nil || ra.Program == "" || res.Protocol != config.ProtocolRDP {
		return "", ""
	}
	exe := ra.Path
	if exe == "" {
		exe = strings.TrimPrefix(ra.Program, "||")
	}
	if strings.ContainsRune(exe, ' ') && !strings.HasPrefix(exe, `"`) {
		exe = `"` + exe + `"`
	}
	if ra.Args != "" {
		exe += " " + ra.Args
	}
	return exe, ra.WorkDir
}
