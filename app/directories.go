package main

import (
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/canvas"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/dialog"
	"fyne.io/fyne/v2/widget"

	"portico/service/config"
	"portico/service/directory"
)

// directoriesPage edits how users sign in: the directories in order and
// the second factor, applied together with PUT settings/signin.
type directoriesPage struct {
	u *UI
	// draft is the settings being edited; pwSet names the directories
	// with a stored bind password.
	draft config.SignIn
	pwSet map[string]bool
	list  *widget.List
	sel   int

	totpMode   *widget.Select
	totpGroups *keyEntry
	totpIssuer *keyEntry
	status     *widget.Label
	content    fyne.CanvasObject

	// lastForm is the open directory dialog (tests).
	lastForm *directoryForm
}

var totpModeLabels = map[config.TOTPMode]string{config.TOTPOff: "Off", config.TOTPGroups: "For the listed groups", config.TOTPEveryone: "For everyone"}

func newDirectoriesPage(u *UI) *directoriesPage {
	p := &directoriesPage{u: u, sel: -1, pwSet: map[string]bool{}}
	p.list = widget.NewList(func() int { return len(p.draft.Directories) }, func() fyne.CanvasObject { return widget.NewLabel("directory") },
		func(i widget.ListItemID, o fyne.CanvasObject) {
			d := p.draft.Directories[i]
			state := ""
			if d.Disabled {
				state = " — disabled"
			}
			o.(*widget.Label).SetText(fmt.Sprintf("%d. %s (%s) — %s\\ · %s — %s%s", i+1, d.ID, d.Kind, d.NetBIOSName, d.DNSName, strings.Join(d.Servers, ", "), state))
		})
	p.list.OnSelected = func(i widget.ListItemID) { p.sel = i }
	move := func(delta int) {
		i, j := p.sel, p.sel+delta
		if i < 0 || j < 0 || j >= len(p.draft.Directories) {
			return
		}
		ds := p.draft.Directories
		ds[i], ds[j] = ds[j], ds[i]
		p.list.Refresh()
		p.list.Select(j)
		p.status.SetText("Order changed: Apply to use it.")
	}
	bar := container.NewHBox(
		widget.NewButton("Add directory…", func() { p.edit(-1) }),
		widget.NewButton("Edit…", func() {
			if p.sel >= 0 && p.sel < len(p.draft.Directories) {
				p.edit(p.sel)
			}
		}),
		widget.NewButton("Move up", func() { move(-1) }),
		widget.NewButton("Move down", func() { move(1) }),
		widget.NewButton("Remove", func() {
			if p.sel < 0 || p.sel >= len(p.draft.Directories) {
				return
			}
			p.draft.Directories = append(p.draft.Directories[:p.sel], p.draft.Directories[p.sel+1:]...)
			p.sel = -1
			p.list.UnselectAll()
			p.list.Refresh()
			p.status.SetText("Removed: Apply to store it.")
		}),
	)
	labels := []string{totpModeLabels[config.TOTPOff], totpModeLabels[config.TOTPGroups], totpModeLabels[config.TOTPEveryone]}
	p.totpMode = widget.NewSelect(labels, nil)
	p.totpGroups, p.totpIssuer = newKeyEntry(), newKeyEntry()
	p.totpGroups.SetPlaceHolder(`staff, OFFICE\Accounting`)
	p.totpIssuer.SetPlaceHolder("Portico")
	groupHits := groupSuggestions(u, p.totpGroups)
	resetUser := newKeyEntry()
	resetUser.SetPlaceHolder(`alice or OFFICE\alice`)
	reset := widget.NewButton("Reset second factor", func() {
		name := strings.TrimSpace(resetUser.Text)
		if name == "" {
			return
		}
		dialog.ShowConfirm("Reset second factor", "Forget the authenticator and recovery codes of "+name+"? The next sign-in enrols again.", func(ok bool) {
			if !ok {
				return
			}
			p.u.call("DELETE", "/api/v1/users/"+url.PathEscape(name)+"/second-factor", nil, nil, func(err error) {
				if err != nil {
					p.u.showError("Not reset", err)
					return
				}
				p.status.SetText("The second factor of " + name + " was reset.")
			})
		}, p.u.win)
	})
	p.status = wrapped("")
	apply := widget.NewButton("Apply", p.apply)
	apply.Importance = widget.HighImportance
	totp := widget.NewForm(
		widget.NewFormItem("Two-step sign-in (TOTP)", p.totpMode),
		widget.NewFormItem("Groups that need it", container.NewVBox(p.totpGroups, groupHits)),
		widget.NewFormItem("Name in the authenticator app", p.totpIssuer),
		widget.NewFormItem("Reset a user's second factor", container.NewBorder(nil, nil, nil, reset, resetUser)),
	)
	head := container.NewVBox(
		widget.NewLabelWithStyle("Directories (asked in this order, after the local accounts)", fyne.TextAlignLeading, fyne.TextStyle{Bold: true}), bar)
	foot := container.NewVBox(widget.NewSeparator(), widget.NewLabelWithStyle("Second factor", fyne.TextAlignLeading, fyne.TextStyle{Bold: true}),
		totp, container.NewHBox(apply), p.status)
	p.content = container.NewBorder(head, foot, nil, nil, p.list)
	return p
}

type signInReply struct {
	Settings        config.SignIn `json:"settings"`
	BindPasswordSet []string      `json:"bindPasswordSet"`
}

func (p *directoriesPage) refresh() {
	var out signInReply
	p.u.call("GET", "/api/v1/settings/signin", nil, &out, func(err error) {
		p.u.loaded("signin", "the sign-in settings", err)
		if err == nil {
			p.show(out)
		}
	})
}

func (p *directoriesPage) show(out signInReply) {
	p.draft = out.Settings
	p.pwSet = map[string]bool{}
	for _, id := range out.BindPasswordSet {
		p.pwSet[strings.ToLower(id)] = true
	}
	mode := p.draft.TOTP.Mode
	if mode == "" {
		mode = config.TOTPOff
	}
	p.totpMode.SetSelected(totpModeLabels[mode])
	p.totpGroups.SetText(strings.Join(p.draft.TOTP.Groups, ", "))
	p.totpIssuer.SetText(p.draft.TOTP.Issuer)
	p.list.Refresh()
}

func (p *directoriesPage) apply() {
	si := p.draft
	for m, l := range totpModeLabels {
		if l == p.totpMode.Selected {
			si.TOTP.Mode = m
		}
	}
	si.TOTP.Groups, si.TOTP.Issuer = splitList(p.totpGroups.Text), strings.TrimSpace(p.totpIssuer.Text)
	var out signInReply
	p.u.call("PUT", "/api/v1/settings/signin", si, &out, func(err error) {
		if err != nil {
			p.status.SetText("Not applied: " + apiErrorText(err))
			return
		}
		p.show(out)
		p.status.SetText("Applied: sign-ins use these settings now.")
	})
}

// directoryForm is the dialog of one directory.
type directoryForm struct {
	dlg                                        *formDialog
	id, servers, bindDN, bindPW, baseDN        *keyEntry
	filter, loginAttr, groupBase, netbios, dns *keyEntry
	timeout, pool, cache, ca, testUser         *keyEntry
	kind                                       *widget.Select
	startTLS, insecure, disabled               *widget.Check
	fieldErrs                                  map[string]*canvas.Text
	other                                      *widget.Label
	testOut                                    *widget.Label
	testBtn                                    *widget.Button
}

func (p *directoriesPage) edit(i int) {
	var cur config.Directory
	if i >= 0 {
		cur = p.draft.Directories[i]
	} else {
		cur = config.Directory{Kind: config.KindActiveDirectory}
	}
	f := &directoryForm{id: newKeyEntry(), servers: newKeyEntry(), bindDN: newKeyEntry(), bindPW: newKeyPassword(), baseDN: newKeyEntry(),
		filter: newKeyEntry(), loginAttr: newKeyEntry(), groupBase: newKeyEntry(), netbios: newKeyEntry(), dns: newKeyEntry(),
		timeout: newKeyEntry(), pool: newKeyEntry(), cache: newKeyEntry(), ca: newKeyMultiLine(), testUser: newKeyEntry(),
		kind: widget.NewSelect([]string{string(config.KindActiveDirectory), string(config.KindLDAP)}, nil), fieldErrs: map[string]*canvas.Text{},
		startTLS: widget.NewCheck("StartTLS on ldap:// servers", nil), disabled: widget.NewCheck("Disabled (kept, not asked)", nil),
		insecure: widget.NewCheck("Insecure: allow plain ldap:// without TLS (passwords cross the network in clear text)", nil),
		other:    wrapped(""), testOut: wrapped("")}
	f.other.Importance = widget.DangerImportance
	f.insecure.OnChanged = func(on bool) {
		if on {
			f.other.SetText("Warning: with plain LDAP anyone on the network path can read users' passwords.")
		}
	}
	f.id.SetText(cur.ID)
	f.servers.SetText(strings.Join(cur.Servers, ", "))
	f.servers.SetPlaceHolder("ldaps://dc1.office.example, ldaps://dc2.office.example")
	f.bindDN.SetText(cur.BindDN)
	f.bindDN.SetPlaceHolder(`OFFICE\portal-svc or cn=portal,dc=office,dc=example`)
	if p.pwSet[strings.ToLower(cur.ID)] {
		f.bindPW.SetPlaceHolder("stored — leave empty to keep it")
	}
	f.bindPW.SetText(cur.BindPassword)
	f.baseDN.SetText(cur.BaseDN)
	f.baseDN.SetPlaceHolder("DC=office,DC=example")
	f.filter.SetText(cur.UserFilter)
	f.filter.SetPlaceHolder("default for the kind")
	f.loginAttr.SetText(cur.LoginAttribute)
	f.loginAttr.SetPlaceHolder("sAMAccountName (AD) / uid (LDAP)")
	f.groupBase.SetText(cur.GroupBase)
	f.groupBase.SetPlaceHolder("the base DN")
	f.netbios.SetText(cur.NetBIOSName)
	f.netbios.SetPlaceHolder("OFFICE")
	f.dns.SetText(cur.DNSName)
	f.dns.SetPlaceHolder("office.example")
	for _, x := range []struct {
		e *keyEntry
		v int
		d int
	}{{f.timeout, cur.TimeoutSeconds, config.DefaultDirectoryTimeout}, {f.pool, cur.PoolSize, config.DefaultDirectoryPool}, {f.cache, cur.GroupCacheSeconds, config.DefaultGroupCache}} {
		if x.v != 0 {
			x.e.SetText(strconv.Itoa(x.v))
		}
		x.e.SetPlaceHolder(strconv.Itoa(x.d))
	}
	f.ca.SetText(cur.CACertPEM)
	f.ca.SetPlaceHolder("empty: trust the system's CAs; or paste the domain's CA certificate (PEM)")
	f.ca.SetMinRowsVisible(3)
	f.kind.SetSelected(string(cur.Kind))
	f.startTLS.SetChecked(cur.StartTLS)
	f.insecure.SetChecked(cur.Insecure)
	f.disabled.SetChecked(cur.Disabled)
	f.testUser.SetPlaceHolder("a user name to look up (optional)")
	item := func(label, field string, w fyne.CanvasObject) *widget.FormItem {
		e := errorText()
		f.fieldErrs[field] = e
		return widget.NewFormItem(label, container.NewVBox(w, e))
	}
	form := widget.NewForm(
		item("ID", "id", f.id), item("Kind", "kind", f.kind), item("Servers (in order)", "servers", f.servers),
		item("", "startTLS", f.startTLS), item("", "insecure", f.insecure),
		item("Pinned CA certificate", "caCertPEM", f.ca),
		item("Bind account", "bindDN", f.bindDN), item("Bind password", "bindPassword", f.bindPW),
		item("Base DN", "baseDN", f.baseDN), item("User filter", "userFilter", f.filter), item("Login attribute", "loginAttribute", f.loginAttr),
		item("Group base", "groupBase", f.groupBase),
		item("NetBIOS name (DOMAIN\\user)", "netbiosName", f.netbios), item("DNS name (user@domain)", "dnsName", f.dns),
		item("Timeout (s)", "timeoutSeconds", f.timeout), item("Connections kept", "poolSize", f.pool), item("Group cache (s)", "groupCacheSeconds", f.cache),
		item("", "disabled", f.disabled),
	)
	// Inline validation: the gateway's own rules, as the admin types.
	for _, e := range []*keyEntry{f.id, f.servers, f.bindDN, f.baseDN, f.filter, f.loginAttr, f.groupBase, f.netbios, f.dns, f.timeout, f.pool, f.cache} {
		e.OnChanged = func(string) { f.validate(cur) }
	}
	f.testBtn = widget.NewButton("Test", func() { p.test(f, cur) })
	test := container.NewBorder(nil, nil, nil, f.testBtn, f.testUser)
	title := "Edit directory"
	if i < 0 {
		title = "Add directory"
	}
	f.dlg = p.u.newFormDialog(title, "Keep", container.NewVScroll(container.NewVBox(form, f.other, widget.NewSeparator(), test, f.testOut)), func() {
		d, ok := f.validate(cur)
		if !ok {
			return
		}
		if i < 0 {
			p.draft.Directories = append(p.draft.Directories, d)
		} else {
			p.draft.Directories[i] = d
		}
		f.dlg.Hide()
		p.list.Refresh()
		p.status.SetText("Changed: Apply to store and use it.")
	})
	f.dlg.Resize(fyne.NewSize(720, 640))
	f.dlg.Show()
	p.u.lastDialog = f.dlg
	p.lastForm = f
}

// read is the directory the fields describe; bad lists fields that are
// not even numbers.
func (f *directoryForm) read(cur config.Directory) (config.Directory, map[string]string) {
	d := cur
	bad := map[string]string{}
	d.ID, d.Kind = strings.TrimSpace(f.id.Text), config.DirectoryKind(f.kind.Selected)
	d.Servers = splitList(f.servers.Text)
	d.StartTLS, d.Insecure, d.Disabled = f.startTLS.Checked, f.insecure.Checked, f.disabled.Checked
	d.CACertPEM = strings.TrimSpace(f.ca.Text)
	d.BindDN, d.BindPassword = strings.TrimSpace(f.bindDN.Text), f.bindPW.Text
	d.BaseDN, d.UserFilter = strings.TrimSpace(f.baseDN.Text), strings.TrimSpace(f.filter.Text)
	d.LoginAttribute, d.GroupBase = strings.TrimSpace(f.loginAttr.Text), strings.TrimSpace(f.groupBase.Text)
	d.NetBIOSName, d.DNSName = strings.TrimSpace(f.netbios.Text), strings.TrimSpace(f.dns.Text)
	for _, x := range []struct {
		field string
		e     *keyEntry
		dst   *int
	}{{"timeoutSeconds", f.timeout, &d.TimeoutSeconds}, {"poolSize", f.pool, &d.PoolSize}, {"groupCacheSeconds", f.cache, &d.GroupCacheSeconds}} {
		*x.dst = 0
		if t := strings.TrimSpace(x.e.Text); t != "" {
			n, err := strconv.Atoi(t)
			if err != nil {
				bad[x.field] = "enter a whole number"
			}
			*x.dst = n
		}
	}
	return d, bad
}

// validate checks the fields with service/config's rules and marks each
// problem under its field.
func (f *directoryForm) validate(cur config.Directory) (config.Directory, bool) {
	d, es := f.read(cur)
	check := d
	if check.BindPassword == "" {
		check.BindPassword = "stored" // the gateway keeps the stored one
	}
	if fes, ok := config.AsFieldErrors(check.Validate()); ok {
		for _, fe := range fes {
			es[fe.Field] = fe.Message
		}
	}
	rest := placeFieldErrors(f.fieldErrs, es)
	if !f.insecure.Checked {
		f.other.SetText(strings.Join(rest, "\n"))
	}
	return d, len(es) == 0
}

// test asks the gateway to bind and look up the test user, and shows
// each stage.
func (p *directoriesPage) test(f *directoryForm, cur config.Directory) {
	d, ok := f.validate(cur)
	if !ok {
		f.testOut.SetText("Fix the marked fields first.")
		return
	}
	f.testOut.Importance = widget.MediumImportance
	f.testOut.SetText("Testing…")
	var out directory.TestResult
	p.u.call("POST", "/api/v1/directories/test", map[string]any{"directory": d, "user": strings.TrimSpace(f.testUser.Text)}, &out, func(err error) {
		if err != nil {
			f.testOut.Importance = widget.DangerImportance
			f.testOut.SetText("Test failed: " + apiErrorText(err))
			return
		}
		f.testOut.Importance = map[bool]widget.Importance{true: widget.SuccessImportance, false: widget.DangerImportance}[out.OK]
		f.testOut.SetText(describeTest(out))
	}, f.testBtn)
}

// describeTest is a Test result as lines for the dialog.
func describeTest(out directory.TestResult) string {
	var lines []string
	for _, s := range out.Steps {
		mark := "✗"
		if s.OK {
			mark = "✓"
		}
		lines = append(lines, fmt.Sprintf("%s %s %s: %s", mark, strings.ToUpper(string(s.Stage)), s.Server, s.Detail))
	}
	if a := out.Account; a != nil {
		lines = append(lines, fmt.Sprintf("Account: %s (%s), %s", a.Principal(), a.DisplayName, a.DN))
		if out.SID != "" {
			lines = append(lines, "SID: "+out.SID)
		}
		lines = append(lines, "Groups: "+strings.Join(a.Groups, ", "))
	}
	return strings.Join(lines, "\n")
}

// groupSuggestions shows, under a comma-separated groups entry, the
// directory groups that start with the name being typed (searched in the
// directories as the admin types, a quarter second after the last key).
func groupSuggestions(u *UI, k *keyEntry) *widget.Label {
	e := &k.Entry
	hits := wrapped("")
	hits.TextStyle = fyne.TextStyle{Italic: true}
	var timer *time.Timer
	prev := e.OnChanged
	e.OnChanged = func(text string) {
		if prev != nil {
			prev(text)
		}
		parts := strings.Split(text, ",")
		last := strings.TrimSpace(parts[len(parts)-1])
		if timer != nil {
			timer.Stop()
		}
		// Only what the admin types searches: not text the page sets.
		typing := false
		if c := fyne.CurrentApp().Driver().CanvasForObject(k); c != nil {
			typing = c.Focused() == fyne.Focusable(k)
		}
		if len(last) < 2 || !typing {
			hits.SetText("")
			return
		}
		timer = time.AfterFunc(250*time.Millisecond, func() {
			fyne.Do(func() {
				var out struct {
					Groups []string `json:"groups"`
					Error  string   `json:"error"`
				}
				u.call("GET", "/api/v1/directories/groups?q="+url.QueryEscape(last), nil, &out, func(err error) {
					switch {
					case err != nil:
						hits.SetText("")
					case len(out.Groups) > 0:
						hits.SetText("Directory groups: " + strings.Join(out.Groups, ", "))
					case out.Error != "":
						hits.SetText("The directory could not be searched: " + out.Error)
					default:
						hits.SetText("")
					}
				})
			})
		})
	}
	return hits
}
