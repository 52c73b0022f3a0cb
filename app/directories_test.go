package main

import (
	"net"
	"strings"
	"testing"

	"fyne.io/fyne/v2/test"

	"portico/service/config"
)

// TestDirectoriesPage: the Directories page marks bad fields as they are
// typed and keeps nothing; a good directory is applied with its order and
// the second-factor setting; Test with no server listening names the TCP
// stage; the bind password never comes back from the gateway.
func TestDirectoriesPage(t *testing.T) {
	u, c := newTestUI(t)
	p := u.dirs
	p.refresh()
	u.Wait()
	_, closed, _ := net.SplitHostPort(freePort(t))

	p.edit(-1)
	f := p.lastForm
	typeInto(f.id, "office")
	typeInto(f.servers, "ldap://127.0.0.1:"+closed)
	typeInto(f.baseDN, "not a dn")
	for _, field := range []string{"servers", "baseDN", "netbiosName"} {
		if e := f.fieldErrs[field]; !e.Visible() || e.Text == "" {
			t.Fatalf("%s: no inline error (%q)", field, e.Text)
		}
	}
	test.Tap(f.dlg.primary)
	if len(p.draft.Directories) != 0 {
		t.Fatal("an invalid directory went into the draft")
	}
	f.insecure.SetChecked(true)
	typeInto(f.baseDN, "DC=office,DC=test")
	typeInto(f.netbios, "OFFICE")
	typeInto(f.dns, "office.test")
	typeInto(f.bindDN, `OFFICE\Administrator`)
	typeInto(f.bindPW, "secret-pass")
	typeInto(f.timeout, "2")
	test.Tap(f.testBtn)
	u.Wait()
	if !strings.Contains(f.testOut.Text, "TCP") || !strings.Contains(f.testOut.Text, "no connection") {
		t.Fatalf("Test against a closed port: %q", f.testOut.Text)
	}
	test.Tap(f.dlg.primary)
	if len(p.draft.Directories) != 1 {
		t.Fatalf("draft %+v", p.draft)
	}
	p.totpMode.SetSelected(totpModeLabels[config.TOTPEveryone])
	p.apply()
	u.Wait()
	var out struct {
		Settings        config.SignIn `json:"settings"`
		BindPasswordSet []string      `json:"bindPasswordSet"`
	}
	if err := c.Do(t.Context(), "GET", "/api/v1/settings/signin", nil, &out); err != nil {
		t.Fatal(err)
	}
	if len(out.Settings.Directories) != 1 || out.Settings.Directories[0].NetBIOSName != "OFFICE" || out.Settings.TOTP.Mode != config.TOTPEveryone {
		t.Fatalf("stored %+v (status %q)", out.Settings, p.status.Text)
	}
	if out.Settings.Directories[0].BindPassword != "" || len(out.BindPasswordSet) != 1 {
		t.Fatalf("bind password: %q, set %v", out.Settings.Directories[0].BindPassword, out.BindPasswordSet)
	}
}
