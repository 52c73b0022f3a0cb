package main

import (
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/canvas"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/dialog"
	"fyne.io/fyne/v2/layout"
	"fyne.io/fyne/v2/theme"
	"fyne.io/fyne/v2/widget"

	"portico/service/config"
)

// resourceRow is a resource as the admin API lists it.
type resourceRow struct {
	config.Resource
	HasPassword   bool `json:"hasPassword"`
	HasPrivateKey bool `json:"hasPrivateKey"`
}

// resourcesPage lists published resources with add / edit / remove and
// a connection test.
type resourcesPage struct {
	u       *UI
	rows    []resourceRow
	list    *widget.List
	sel     int
	testBtn *widget.Button
	// edit and remove act on the selected row (disabled without one).
	editBtn, removeBtn *widget.Button
	testOut            *widget.Label
	content            fyne.CanvasObject
}

func newResourcesPage(u *UI) *resourcesPage {
	p := &resourcesPage{u: u, sel: -1}
	p.list = widget.NewList(func() int { return len(p.rows) },
		func() fyne.CanvasObject { return widget.NewLabel("resource") },
		func(i widget.ListItemID, o fyne.CanvasObject) {
			r := p.rows[i]
			text := fmt.Sprintf("%s — %s %s:%d (%s)", r.Name, strings.ToUpper(string(r.Protocol)), r.Host, r.Port, r.Kind)
			if r.HostKey != "" {
				text += " — pinned " + pinName(r.Protocol) + " " + r.HostKey
			}
			o.(*widget.Label).SetText(text)
		})
	add := widget.NewButtonWithIcon("Add…", theme.ContentAddIcon(), func() { p.edit(nil) })
	add.Importance = widget.HighImportance
	edit := widget.NewButtonWithIcon("Edit…", theme.DocumentCreateIcon(), func() {
		if p.sel >= 0 && p.sel < len(p.rows) {
			p.edit(&p.rows[p.sel])
		}
	})
	remove := widget.NewButtonWithIcon("Remove", theme.DeleteIcon(), func() {
		if p.sel < 0 || p.sel >= len(p.rows) {
			return
		}
		r := p.rows[p.sel]
		p.u.withAffected("resource="+url.QueryEscape(r.ID), func(note string) {
			dialog.ShowConfirm("Remove resource", "Remove "+r.Name+"? Users will no longer see it."+note, func(ok bool) {
				if ok {
					p.u.call("DELETE", "/api/v1/resources/"+r.ID, nil, nil, func(err error) {
						if err != nil {
							p.u.showError("Not removed", err)
						}
						p.refresh()
					})
				}
			}, p.u.win)
		})
	})
	p.testBtn = widget.NewButtonWithIcon("Test connection", theme.SearchIcon(), p.testSelected)
	selectionActions(p.list, &p.sel, edit, remove, p.testBtn)
	p.editBtn, p.removeBtn = edit, remove
	p.testOut = wrapped("Select a resource and Test connection: the gateway dials its host and checks that an RDP, VNC or SSH server answers.")
	refresh := widget.NewButtonWithIcon("Refresh", theme.ViewRefreshIcon(), p.refresh)
	p.content = container.NewBorder(container.NewVBox(container.NewHBox(add, edit, remove, p.testBtn, refresh), p.testOut), nil, nil, nil, p.list)
	return p
}

// connectionTest is the admin API's answer to a connection test.
type connectionTest struct {
	Reachable bool   `json:"reachable"`
	Address   string `json:"address"`
	Result    string `json:"result"`
	Message   string `json:"message"`
}

// testSelected asks the gateway to test the selected (stored) resource.
func (p *resourcesPage) testSelected() {
	if p.sel < 0 || p.sel >= len(p.rows) {
		return
	}
	r := p.rows[p.sel]
	p.testOut.SetText("Testing " + r.Name + "…")
	p.testOut.Importance = widget.MediumImportance
	var out connectionTest
	p.u.call("POST", "/api/v1/resources/"+r.ID+"/test", nil, &out, func(err error) {
		showTest(p.testOut, r.Name, out, err)
	}, p.testBtn)
}

// showTest puts a connection test's outcome in l, red unless reachable.
func showTest(l *widget.Label, name string, out connectionTest, err error) {
	l.Importance = widget.DangerImportance
	switch {
	case err != nil:
		l.SetText("Test of " + name + " failed: " + err.Error())
	default:
		if out.Reachable {
			l.Importance = widget.SuccessImportance
		}
		l.SetText(fmt.Sprintf("%s (%s) — %s", name, out.Address, out.Message))
	}
	l.Refresh()
}

func (p *resourcesPage) refresh() {
	var rows []resourceRow
	p.u.call("GET", "/api/v1/resources", nil, &rows, func(err error) {
		p.u.loaded("resources", "the resources", err)
		if err != nil {
			return
		}
		p.rows = rows
		p.list.UnselectAll()
		p.list.Refresh()
	})
}

// resourceForm is the add/edit dialog's fields.
type resourceForm struct {
	name, desc, host, port, user, pass, users, groups, app *keyEntry
	key                                                    *keyEntry
	// domain is the RDP account's domain; appPath, appArgs and appDir
	// complete the RemoteApp program.
	domain, appPath, appArgs, appDir *keyEntry
	// credHelp says what the chosen credential mode does (and, for
	// stored and portal, that users will not be asked).
	credHelp                             *widget.Label
	proto, kind, icon, cred, clip, files *widget.Select
	// errs holds errors without a field of their own; fieldErrs shows the
	// others under their field, keyed by the API's field path.
	errs      *widget.Label
	fieldErrs map[string]*canvas.Text
	// clearKey forgets the pinned host key (after the host was reinstalled).
	clearKey *widget.Check
	testBtn  *widget.Button
	testOut  *widget.Label
	dlg      *formDialog
	// showProtocol shows the rows of one protocol (the Protocol choice
	// calls it).
	showProtocol func(proto string)
	grid         *fyne.Container
}

func (p *resourcesPage) edit(r *resourceRow) {
	f := &resourceForm{
		name: newKeyEntry(), desc: newKeyEntry(), host: newKeyEntry(), port: newKeyEntry(),
		user: newKeyEntry(), pass: newKeyPassword(), key: newKeyMultiLine(),
		users: newKeyEntry(), groups: newKeyEntry(), app: newKeyEntry(),
		domain: newKeyEntry(), appPath: newKeyEntry(), appArgs: newKeyEntry(), appDir: newKeyEntry(), credHelp: wrapped(""),
		proto: widget.NewSelect([]string{"rdp", "vnc", "ssh"}, nil), kind: widget.NewSelect([]string{"desktop", "application"}, nil),
		icon: widget.NewSelect(config.Icons, nil), cred: widget.NewSelect([]string{"stored", "ask", "portal"}, nil),
		clip: widget.NewSelect(labelsOf(config.Transfers, transferLabels), nil), files: widget.NewSelect(labelsOf(config.Transfers, transferLabels), nil),
		errs:      wrapped(""),
		fieldErrs: map[string]*canvas.Text{},
		clearKey:  widget.NewCheck("Forget the pinned host key (trust the host's key on next use)", nil),
		testOut:   wrapped(""),
	}
	f.errs.Importance = widget.DangerImportance
	cur := config.Resource{Protocol: config.ProtocolRDP, Kind: config.KindDesktop, Icon: "desktop", Clipboard: config.TransferBidirectional, FileTransfer: config.TransferBidirectional, Credentials: config.Credentials{Mode: config.CredStored}}
	if r != nil {
		cur = r.Resource
		f.pass.SetPlaceHolder(map[bool]string{true: "(unchanged)", false: ""}[r.HasPassword])
	}
	f.name.SetText(cur.Name)
	f.desc.SetText(cur.Description)
	f.host.SetText(cur.Host)
	if cur.Port > 0 {
		f.port.SetText(strconv.Itoa(cur.Port))
	}
	f.port.SetPlaceHolder("default for the protocol")
	f.user.SetText(cur.Credentials.Username)
	f.domain.SetText(cur.Credentials.Domain)
	f.domain.SetPlaceHolder("RDP: Windows domain, empty for a local account")
	f.app.SetPlaceHolder("alias, e.g. ||notepad")
	f.key.SetMinRowsVisible(3)
	f.users.SetText(strings.Join(cur.Users, ", "))
	f.groups.SetText(strings.Join(cur.Groups, ", "))
	if cur.RemoteApp != nil {
		f.app.SetText(cur.RemoteApp.Program)
		f.appPath.SetText(cur.RemoteApp.Path)
		f.appArgs.SetText(cur.RemoteApp.Args)
		f.appDir.SetText(cur.RemoteApp.WorkDir)
	}
	f.proto.SetSelected(string(cur.Protocol))
	f.kind.SetSelected(string(cur.Kind))
	f.icon.SetSelected(cur.Icon)
	f.cred.OnChanged = func(string) { f.credHelp.SetText(credentialHelp(f.proto.Selected, f.cred.Selected, f.user.Text)) }
	f.user.OnChanged = func(string) { f.cred.OnChanged(f.cred.Selected) }
	f.cred.SetSelected(string(cur.Credentials.Mode))
	f.clip.SetSelected(transferLabels[cur.Clipboard])
	f.files.SetSelected(transferLabels[cur.FileTransfer])
	// The rows are a form layout of their own (not widget.Form) so that
	// the rows of other protocols can be hidden in place: rebuilding a
	// form re-parents its widgets, and a Select tapped after that has no
	// canvas to open its menu on.
	var cells []fyne.CanvasObject
	type only struct {
		label, cell fyne.CanvasObject
		protos      []config.Protocol
	}
	var specific []only
	item := func(label, field string, w fyne.CanvasObject, protos ...config.Protocol) {
		e := errorText()
		f.fieldErrs[field] = e
		l := widget.NewLabelWithStyle(label, fyne.TextAlignTrailing, fyne.TextStyle{Bold: true})
		cell := container.NewVBox(w, e)
		cells = append(cells, l, cell)
		if len(protos) > 0 {
			specific = append(specific, only{l, cell, protos})
		}
	}
	item("Name", "name", f.name)
	item("Description", "description", f.desc)
	item("Protocol", "protocol", f.proto)
	item("Kind", "kind", f.kind)
	item("Icon", "icon", f.icon)
	item("Host", "host", f.host)
	item("Port", "port", f.port)
	item("Credentials", "credentials.mode", container.NewVBox(f.cred, f.credHelp))
	item("User name", "credentials.username", f.user, config.ProtocolRDP, config.ProtocolSSH)
	item("Domain", "credentials.domain", f.domain, config.ProtocolRDP)
	item("Password", "credentials.password", f.pass)
	item("SSH private key", "credentials.privateKey", f.key, config.ProtocolSSH)
	item("RemoteApp program", "remoteApp", f.app, config.ProtocolRDP)
	item("Program path", "remoteApp.path", f.appPath, config.ProtocolRDP)
	item("Arguments", "remoteApp.args", f.appArgs, config.ProtocolRDP)
	item("Working folder", "remoteApp.workDir", f.appDir, config.ProtocolRDP)
	item("Clipboard", "clipboard", f.clip)
	item("File transfer", "fileTransfer", f.files, config.ProtocolRDP, config.ProtocolSSH)
	item("Users", "users", f.users)
	item("Groups", "groups", container.NewVBox(f.groups, groupSuggestions(p.u, f.groups)))
	if cur.HostKey != "" {
		f.clearKey.Text = "Forget the pinned " + pinName(cur.Protocol) + " (trust what the host presents on next use)"
		cells = append(cells, widget.NewLabel("Pinned "+pinName(cur.Protocol)+" "+cur.HostKey), f.clearKey)
	}
	grid := container.New(layout.NewFormLayout(), cells...)
	// Only the fields the chosen protocol uses are shown; only RDP can ask
	// the user or take the portal sign-in.
	showProtocol := func(proto string) {
		p := config.Protocol(proto)
		for _, o := range specific {
			if slices.Contains(o.protos, p) {
				o.label.Show()
				o.cell.Show()
			} else {
				o.label.Hide()
				o.cell.Hide()
			}
		}
		modes := []string{"stored", "ask", "portal"}
		if p != config.ProtocolRDP {
			modes = []string{"stored"}
		}
		f.cred.SetOptions(modes)
		if !slices.Contains(modes, f.cred.Selected) {
			f.cred.SetSelected("stored")
		}
		f.credHelp.SetText(credentialHelp(proto, f.cred.Selected, f.user.Text))
		grid.Refresh()
	}
	showProtocol(f.proto.Selected)
	f.proto.OnChanged = showProtocol
	f.showProtocol, f.grid = showProtocol, grid
	title := "Add resource"
	if r != nil {
		title = "Edit " + r.Name
	}
	f.testBtn = widget.NewButtonWithIcon("Test connection", theme.SearchIcon(), func() { p.testForm(f, cur) })
	f.dlg = p.u.newFormDialog(title, "Save", container.NewBorder(nil, container.NewVBox(f.testOut, f.errs), nil, nil, container.NewVScroll(grid)),
		func() { p.save(r, f, cur) }, f.testBtn)
	f.dlg.Resize(fyne.NewSize(640, 720))
	f.dlg.Show()
	p.u.lastResourceForm = f
	p.u.lastResourceSave = f.dlg.primary
}

func splitList(s string) []string {
	out := []string{}
	for _, x := range strings.Split(s, ",") {
		if x = strings.TrimSpace(x); x != "" {
			out = append(out, x)
		}
	}
	return out
}

// body is the resource the fields describe, as the admin API takes it.
// A port that is not a number is reported as a field error.
func (f *resourceForm) body(cur config.Resource) (map[string]any, map[string]string) {
	body := map[string]any{
		"name": f.name.Text, "description": f.desc.Text, "protocol": f.proto.Selected, "kind": f.kind.Selected, "icon": f.icon.Selected,
		"host": strings.TrimSpace(f.host.Text), "clipboard": keyOf(transferLabels, f.clip.Selected), "fileTransfer": keyOf(transferLabels, f.files.Selected),
		"users": splitList(f.users.Text), "groups": splitList(f.groups.Text), "hostKey": cur.HostKey,
	}
	if f.clearKey.Checked {
		body["hostKey"] = ""
	}
	if s := strings.TrimSpace(f.port.Text); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil {
			return nil, map[string]string{"port": "enter a number from 1 to 65535, or leave it empty for the protocol's default"}
		}
		body["port"] = n
	}
	// Hidden rows (another protocol's fields) send nothing.
	proto := config.Protocol(f.proto.Selected)
	cred := map[string]any{"mode": f.cred.Selected}
	if proto != config.ProtocolVNC {
		cred["username"] = strings.TrimSpace(f.user.Text)
	}
	if proto == config.ProtocolRDP {
		cred["domain"] = strings.TrimSpace(f.domain.Text)
	}
	if f.pass.Text != "" {
		cred["password"] = f.pass.Text
	}
	if strings.TrimSpace(f.key.Text) != "" && proto == config.ProtocolSSH {
		cred["privateKey"] = f.key.Text
	}
	body["credentials"] = cred
	if a := strings.TrimSpace(f.app.Text); a != "" && proto == config.ProtocolRDP {
		body["remoteApp"] = map[string]string{"program": a, "path": strings.TrimSpace(f.appPath.Text),
			"args": strings.TrimSpace(f.appArgs.Text), "workDir": strings.TrimSpace(f.appDir.Text)}
	}
	return body, nil
}

// showErrors puts each error under its field ("users[1]" under users)
// and the rest, with msg, at the bottom.
func (f *resourceForm) showErrors(msg string, fields map[string]string) {
	rest := placeFieldErrors(f.fieldErrs, fields)
	f.errs.SetText(strings.TrimSpace(msg + "\n" + strings.Join(rest, "\n")))
}

// testForm tests what the dialog's fields say now, saved or not.
func (p *resourcesPage) testForm(f *resourceForm, cur config.Resource) {
	body, bad := f.body(cur)
	if bad != nil {
		f.showErrors("Fix the marked fields first.", bad)
		return
	}
	f.testOut.Importance = widget.MediumImportance
	f.testOut.SetText("Testing…")
	var out connectionTest
	p.u.call("POST", "/api/v1/resources/test", body, &out, func(err error) {
		if err != nil {
			if fields, msg := fieldErrors(err); len(fields) > 0 {
				f.showErrors(msg, fields)
				f.testOut.SetText("")
				return
			}
		}
		showTest(f.testOut, strings.TrimSpace(f.name.Text), out, err)
	}, f.testBtn)
}

func (p *resourcesPage) save(r *resourceRow, f *resourceForm, cur config.Resource) {
	body, bad := f.body(cur)
	if bad != nil {
		f.showErrors("Some fields are not valid: nothing was saved.", bad)
		return
	}
	method, path := "POST", "/api/v1/resources"
	if r != nil {
		method, path = "PUT", "/api/v1/resources/"+r.ID
	}
	p.u.call(method, path, body, nil, func(err error) {
		if err != nil {
			fields, msg := fieldErrors(err)
			f.showErrors(msg, fields)
			return
		}
		f.dlg.Hide()
		p.refresh()
	}, f.dlg.primary, f.testBtn)
}

// pinName says what a resource's pinned fingerprint is of: an SSH host key
// or an RDP host's TLS certificate.
func pinName(p config.Protocol) string {
	if p == config.ProtocolRDP {
		return "certificate"
	}
	return "host key"
}

// placeFieldErrors shows each API field error under its field's text
// ("users[1]" under users), clears the others, and returns the errors
// that have no field in the form, as "path: message".
func placeFieldErrors(under map[string]*canvas.Text, fields map[string]string) []string {
	for _, t := range under {
		t.Text = ""
		t.Hide()
	}
	var rest []string
	for path, m := range fields {
		field, _, _ := strings.Cut(path, "[")
		t, ok := under[field]
		if !ok {
			rest = append(rest, fieldLabel(path)+": "+m)
			continue
		}
		if t.Text != "" {
			m = t.Text + "; " + m
		}
		t.Text = m
		t.Show()
		t.Refresh()
	}
	return rest
}

// credentialHelp explains the chosen credential mode of a resource.
func credentialHelp(proto, mode, user string) string {
	if proto != string(config.ProtocolRDP) {
		return "The gateway signs in to the host with the user name and password (or key) stored here."
	}
	r := config.Resource{Protocol: config.ProtocolRDP, Credentials: config.Credentials{Mode: config.CredentialMode(mode), Username: strings.TrimSpace(user)}}
	help := r.RDPSignIn().Help()
	if r.GatewaySignsIn() {
		help += " Users will not be asked for a password."
	} else if mode == string(config.CredStored) {
		help = "Without a stored user name the page asks, as with \"ask\". " + help
	}
	return help
}
