package policy

import (
	"net"
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
