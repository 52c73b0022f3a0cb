package policy

import (
	"net"
	"os"
	"strings"
	"testing"

	"portico/service/config"
)

// TestPrecedenceTable checks all 4×4×4 combinations of host, portal and
// policy settings: the effective set allows a direction exactly when all
// three levels allow it.
func TestPrecedenceTable(t *testing.T) {
	for _, host := range config.Transfers {
		for _, portal := range config.Transfers {
			for _, pol := range config.Transfers {
				res := config.Resource{Clipboard: host, FileTransfer: host}
				ps := config.DefaultPortal()
				ps.Restrictions.Clipboard, ps.Restrictions.FileTransfer = portal, portal
				policies := []config.ClientPolicy{{ID: "p", Name: "P", Enabled: true, Clipboard: pol, FileTransfer: pol}}
				d := Decide(res, ps, policies, Client{User: "u"})
				for _, got := range []config.Transfer{d.Clipboard, d.FileTransfer} {
					if got.ClientToServer() != (host.ClientToServer() && portal.ClientToServer() && pol.ClientToServer()) ||
						got.ServerToClient() != (host.ServerToClient() && portal.ServerToClient() && pol.ServerToClient()) {
						t.Fatalf("host %s portal %s policy %s → %s", host, portal, pol, got)
					}
				}
			}
		}
	}
}

func TestUnsetPolicyLevelDoesNotRestrict(t *testing.T) {
	res := config.Resource{Clipboard: config.TransferBidirectional, FileTransfer: config.TransferBidirectional}
	d := Decide(res, config.DefaultPortal(), []config.ClientPolicy{{Name: "Only files", Enabled: true, FileTransfer: config.TransferClientToServer}}, Client{})
	if d.Clipboard != config.TransferBidirectional || d.FileTransfer != config.TransferClientToServer || d.Policy != "Only files" {
		t.Fatalf("%+v", d)
	}
	if !strings.Contains(d.Explanation[1], "file transfer = client-to-server because host allows bidirectional, portal allows bidirectional, policy 'Only files' allows client-to-server") {
		t.Fatalf("explanation: %q", d.Explanation[1])
	}
}

func TestMatchFirstWinsAndCriteria(t *testing.T) {
	ps := []config.ClientPolicy{
		{Name: "disabled", Enabled: false},
		{Name: "contractors", Enabled: true, Groups: []string{"Contractors"}},
		{Name: "office lan", Enabled: true, Networks: []string{"10.1.0.0/16"}, ClientOS: []string{"windows"}},
		{Name: "alice", Enabled: true, Users: []string{"alice"}},
		{Name: "catch-all", Enabled: true},
	}
	cases := []struct {
		c    Client
		want string
	}{
		{Client{User: "bob", Groups: []string{"contractors"}}, "contractors"},
		{Client{User: "bob", IP: net.ParseIP("10.1.2.3"), OS: "windows"}, "office lan"},
		{Client{User: "bob", IP: net.ParseIP("10.1.2.3"), OS: "linux"}, "catch-all"},
		{Client{User: "ALICE", IP: net.ParseIP("10.2.0.1")}, "alice"},
		{Client{User: "carol"}, "catch-all"},
	}
	for _, tc := range cases {
		p, ok := Match(ps, tc.c)
		if !ok || p.Name != tc.want {
			t.Errorf("%+v matched %q, want %q", tc.c, p.Name, tc.want)
		}
	}
	if _, ok := Match(ps[:3], Client{User: "x"}); ok {
		t.Error("matched with no applicable policy")
	}
}

func TestClientOS(t *testing.T) {
	for ua, want := range map[string]string{
		"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/120": "windows",
		"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 HeadlessChrome/156":   "linux",
		"Mozilla/5.0 (Macintosh; Intel Mac OS X 14_0)":                            "macos",
		"Mozilla/5.0 (Linux; Android 14; Pixel 8)":                                "android",
		"Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X)":                  "ios",
		"portico-client/1.0 (windows)":                                            "windows",
		"curl/8.0":                                                                "other",
	} {
		if got := ClientOS(ua); got != want {
			t.Errorf("%q → %s, want %s", ua, got, want)
		}
	}
}

// TestEnforcementTableInREADME keeps the README's enforcement table equal to
// Rules, the one table explain and the GUI also show.
func TestEnforcementTableInREADME(t *testing.T) {
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	const start, end = "<!-- enforcement table: service/policy.MarkdownTable -->\n", "<!-- end of enforcement table -->"
	s := string(b)
	i, j := strings.Index(s, start), strings.Index(s, end)
	if i < 0 || j < i {
		t.Fatalf("README.md has no enforcement table between %q and %q", start, end)
	}
	if got, want := s[i+len(start):j], MarkdownTable(); got != want {
		t.Fatalf("README's enforcement table differs from policy.Rules; replace it with:\n%s", want)
	}
}

// TestDecideVNCHasNoFileTransfer: explain must not answer "bidirectional"
// for a channel the protocol does not have.
func TestDecideVNCHasNoFileTransfer(t *testing.T) {
	all := config.TransferBidirectional
	res := config.Resource{Protocol: config.ProtocolVNC, Clipboard: all, FileTransfer: all}
	var portal config.PortalSettings
	portal.Restrictions.Clipboard, portal.Restrictions.FileTransfer = all, all
	d := Decide(res, portal, nil, Client{})
	if d.FileTransfer != config.TransferDisabled || !strings.Contains(d.Explanation[1], "VNC has no file transfer") {
		t.Fatalf("VNC file transfer = %s (%q), want disabled because RFB has none", d.FileTransfer, d.Explanation[1])
	}
	if d.Clipboard != all {
		t.Fatalf("VNC clipboard = %s, want bidirectional", d.Clipboard)
	}
	joined := strings.Join(d.Enforcement, "\n")
	for _, want := range []string{"clipboard by browser: bidirectional, enforced on the wire", "file transfer by browser: not available"} {
		if !strings.Contains(joined, want) {
			t.Errorf("enforcement %q lacks %q", joined, want)
		}
	}
	res.Protocol = config.ProtocolSSH
	d = Decide(res, portal, nil, Client{})
	joined = strings.Join(d.Enforcement, "\n")
	if d.FileTransfer != all || !strings.Contains(joined, "clipboard by browser: bidirectional, enforced in the page only") || !strings.Contains(joined, "clipboard by native client: bidirectional, advisory") {
		t.Errorf("SSH: files %s, enforcement %q", d.FileTransfer, joined)
	}
}
