package main

import (
	"fmt"
	"strconv"
	"strings"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/dialog"
	"fyne.io/fyne/v2/widget"

	"portico/service/config"
)

// resourceRow is a resource as the admin API lists it.
type resourceRow struct {
	config.Resource
	HasPassword   bool `json:"hasPassword"`
	HasPrivateKey bool `json:"hasPrivateKey"`
}

// resourcesPage lists published resources with add / edit / remove.
type resourcesPage struct {
	u       *UI
	rows    []resourceRow
	list    *widget.List
	sel     int
	content fyne.CanvasObject
}

func newResourcesPage(u *UI) *resourcesPage {
	p := &resourcesPage{u: u, sel: -1}
	p.list = widget.NewList(func() int { return len(p.rows) },
		func() fyne.CanvasObject { return widget.NewLabel("resource") },
		func(i widget.ListItemID, o fyne.CanvasObject) {
			r := p.rows[i]
			text := fmt.Sprintf("%s — %s %s:%d (%s)", r.Name, strings.ToUpper(string(r.Protocol)), r.Host, r.Port, r.Kind)
			if r.HostKey != "" {
				text += " — pinned host key " + r.HostKey
			}
			o.(*widget.Label).SetText(text)
		})
	p.list.OnSelected = func(i widget.ListItemID) { p.sel = i }
	add := widget.NewButton("Add…", func() { p.edit(nil) })
	add.Importance = widget.HighImportance
	edit := widget.NewButton("Edit…", func() {
		if p.sel >= 0 && p.sel < len(p.rows) {
			p.edit(&p.rows[p.sel])
		}
	})
	remove := widget.NewButton("Remove", func() {
		if p.sel < 0 || p.sel >= len(p.rows) {
			return
		}
		r := p.rows[p.sel]
		dialog.ShowConfirm("Remove resource", "Remove "+r.Name+"? Users will no longer see it.", func(ok bool) {
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
	p.content = container.NewBorder(container.NewHBox(add, edit, remove, widget.NewButton("Refresh", p.refresh)), nil, nil, nil, p.list)
	return p
}

func (p *resourcesPage) refresh() {
	var rows []resourceRow
	p.u.call("GET", "/api/v1/resources", nil, &rows, func(err error) {
		if err != nil {
			p.u.showError("Could not load resources", err)
			return
		}
		p.rows = rows
		p.list.Refresh()
	})
}

// resourceForm is the add/edit dialog's fields.
type resourceForm struct {
	name, desc, host, port, user, pass, users, groups, app *widget.Entry
	key                                                    *widget.Entry
	proto, kind, icon, cred, clip, files                   *widget.Select
	errs                                                   *widget.Label
	// clearKey forgets the pinned host key (after the host was reinstalled).
	clearKey *widget.Check
}

func (p *resourcesPage) edit(r *resourceRow) {
	f := &resourceForm{
		name: widget.NewEntry(), desc: widget.NewEntry(), host: widget.NewEntry(), port: widget.NewEntry(),
		user: widget.NewEntry(), pass: widget.NewPasswordEntry(), key: widget.NewMultiLineEntry(),
		users: widget.NewEntry(), groups: widget.NewEntry(), app: widget.NewEntry(),
		proto: widget.NewSelect([]string{"rdp", "vnc", "ssh"}, nil), kind: widget.NewSelect([]string{"desktop", "application"}, nil),
		icon: widget.NewSelect(config.Icons, nil), cred: widget.NewSelect([]string{"stored", "ask", "portal"}, nil),
		clip: widget.NewSelect(labelsOf(config.Transfers, transferLabels), nil), files: widget.NewSelect(labelsOf(config.Transfers, transferLabels), nil),
		errs:     widget.NewLabel(""),
		clearKey: widget.NewCheck("Forget the pinned host key (trust the host's key on next use)", nil),
	}
	f.errs.Wrapping = fyne.TextWrapWord
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
	f.users.SetText(strings.Join(cur.Users, ", "))
	f.groups.SetText(strings.Join(cur.Groups, ", "))
	if cur.RemoteApp != nil {
		f.app.SetText(cur.RemoteApp.Program)
	}
	f.proto.SetSelected(string(cur.Protocol))
	f.kind.SetSelected(string(cur.Kind))
	f.icon.SetSelected(cur.Icon)
	f.cred.SetSelected(string(cur.Credentials.Mode))
	f.clip.SetSelected(transferLabels[cur.Clipboard])
	f.files.SetSelected(transferLabels[cur.FileTransfer])
	items := []*widget.FormItem{
		widget.NewFormItem("Name", f.name), widget.NewFormItem("Description", f.desc),
		widget.NewFormItem("Protocol", f.proto), widget.NewFormItem("Kind", f.kind), widget.NewFormItem("Icon", f.icon),
		widget.NewFormItem("Host", f.host), widget.NewFormItem("Port", f.port),
		widget.NewFormItem("Credentials", f.cred), widget.NewFormItem("User name", f.user), widget.NewFormItem("Password", f.pass),
		widget.NewFormItem("SSH private key", f.key), widget.NewFormItem("RemoteApp program", f.app),
		widget.NewFormItem("Clipboard", f.clip), widget.NewFormItem("File transfer", f.files),
		widget.NewFormItem("Users", f.users), widget.NewFormItem("Groups", f.groups),
	}
	if cur.HostKey != "" {
		items = append(items, widget.NewFormItem("Host key "+cur.HostKey, f.clearKey))
	}
	title := "Add resource"
	if r != nil {
		title = "Edit " + r.Name
	}
	var d dialog.Dialog
	save := widget.NewButton("Save", nil)
	save.Importance = widget.HighImportance
	save.OnTapped = func() { p.save(r, f, cur, d) }
	form := widget.NewForm(items...)
	d = dialog.NewCustomWithoutButtons(title, container.NewBorder(nil, container.NewVBox(f.errs, container.NewHBox(save, widget.NewButton("Cancel", func() { d.Hide() }))), nil, nil, container.NewVScroll(form)), p.u.win)
	d.Resize(fyne.NewSize(620, 700))
	d.Show()
	p.u.lastResourceForm = f
	p.u.lastResourceSave = save
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

func (p *resourcesPage) save(r *resourceRow, f *resourceForm, cur config.Resource, d dialog.Dialog) {
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
			f.errs.SetText("port: enter a number from 1 to 65535")
			return
		}
		body["port"] = n
	}
	cred := map[string]any{"mode": f.cred.Selected, "username": strings.TrimSpace(f.user.Text)}
	if f.pass.Text != "" {
		cred["password"] = f.pass.Text
	}
	if strings.TrimSpace(f.key.Text) != "" {
		cred["privateKey"] = f.key.Text
	}
	body["credentials"] = cred
	if a := strings.TrimSpace(f.app.Text); a != "" {
		body["remoteApp"] = map[string]string{"program": a}
	}
	method, path := "POST", "/api/v1/resources"
	if r != nil {
		method, path = "PUT", "/api/v1/resources/"+r.ID
	}
	p.u.call(method, path, body, nil, func(err error) {
		if err != nil {
			fields, msg := fieldErrors(err)
			var lines []string
			for k, v := range fields {
				lines = append(lines, k+": "+v)
			}
			f.errs.SetText(strings.TrimSpace(msg + "\n" + strings.Join(lines, "\n")))
			return
		}
		d.Hide()
		p.refresh()
	})
}
