package main

import (
	"fmt"
	"net/url"
	"strings"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/canvas"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/dialog"
	"fyne.io/fyne/v2/widget"
)

type userRow struct {
	Username    string   `json:"username"`
	Domain      string   `json:"domain"`
	DisplayName string   `json:"displayName"`
	Groups      []string `json:"groups"`
	Disabled    bool     `json:"disabled"`
	Admin       bool     `json:"admin"`
}

type groupRow struct {
	Name        string `json:"name"`
	Description string `json:"description"`
}

// usersPage manages local accounts and groups.
type usersPage struct {
	u      *UI
	users  []userRow
	groups []groupRow
	ulist  *widget.List
	glist  *widget.List
	usel   int
	gsel   int
	// editBtn, removeUser and removeGroup act on the selected row.
	editBtn, removeUser, removeGroup *widget.Button
	content                          fyne.CanvasObject
}

func newUsersPage(u *UI) *usersPage {
	p := &usersPage{u: u, usel: -1, gsel: -1}
	p.ulist = widget.NewList(func() int { return len(p.users) }, func() fyne.CanvasObject { return widget.NewLabel("user") },
		func(i widget.ListItemID, o fyne.CanvasObject) {
			x := p.users[i]
			state := ""
			if x.Disabled {
				state = " — disabled"
			}
			groups := ""
			if len(x.Groups) > 0 {
				groups = " — groups: " + strings.Join(x.Groups, ", ")
			}
			o.(*widget.Label).SetText(fmt.Sprintf("%s (%s)%s%s", x.Username, x.DisplayName, groups, state))
		})
	p.glist = widget.NewList(func() int { return len(p.groups) }, func() fyne.CanvasObject { return widget.NewLabel("group") },
		func(i widget.ListItemID, o fyne.CanvasObject) {
			o.(*widget.Label).SetText(p.groups[i].Name + "  " + p.groups[i].Description)
		})
	p.editBtn = widget.NewButton("Edit…", func() {
		if p.usel >= 0 && p.usel < len(p.users) {
			p.editUser(&p.users[p.usel])
		}
	})
	resetBtn := widget.NewButton("Reset password", p.resetPassword)
	p.removeUser = widget.NewButton("Remove", func() { p.remove("users", p.usel, func(i int) string { return p.users[i].Username }, len(p.users)) })
	p.removeGroup = widget.NewButton("Remove", func() { p.remove("groups", p.gsel, func(i int) string { return p.groups[i].Name }, len(p.groups)) })
	selectionActions(p.ulist, &p.usel, p.editBtn, resetBtn, p.removeUser)
	selectionActions(p.glist, &p.gsel, p.removeGroup)
	ubar := container.NewHBox(widget.NewButton("Add user…", func() { p.editUser(nil) }), p.editBtn, resetBtn, p.removeUser)
	gbar := container.NewHBox(widget.NewButton("Add group…", p.addGroup), p.removeGroup)
	p.content = container.NewHSplit(
		container.NewBorder(container.NewVBox(widget.NewLabelWithStyle("Users", fyne.TextAlignLeading, fyne.TextStyle{Bold: true}), ubar), nil, nil, nil, p.ulist),
		container.NewBorder(container.NewVBox(widget.NewLabelWithStyle("Groups", fyne.TextAlignLeading, fyne.TextStyle{Bold: true}), gbar), nil, nil, nil, p.glist),
	)
	return p
}

func (p *usersPage) refresh() {
	var us []userRow
	var gs []groupRow
	p.u.call("GET", "/api/v1/users", nil, &us, func(err error) {
		p.u.loaded("users", "the users", err)
		if err == nil {
			p.users = us
			p.ulist.UnselectAll()
			p.ulist.Refresh()
		}
	})
	p.u.call("GET", "/api/v1/groups", nil, &gs, func(err error) {
		p.u.loaded("groups", "the groups", err)
		if err == nil {
			p.groups = gs
			p.glist.UnselectAll()
			p.glist.Refresh()
		}
	})
}

func (p *usersPage) editUser(x *userRow) {
	name, domain, display, groups, pass := newKeyEntry(), newKeyEntry(), newKeyEntry(), newKeyEntry(), newKeyPassword()
	disabled := widget.NewCheck("Account disabled", nil)
	// Each field has its error line under it, keyed by the API's field
	// name, so a refusal is shown where it is fixed, all errors at once.
	under := map[string]*canvas.Text{}
	item := func(label, field string, w fyne.CanvasObject) *widget.FormItem {
		e := errorText()
		under[field] = e
		return widget.NewFormItem(label, container.NewVBox(w, e))
	}
	items := []*widget.FormItem{item("User name", "username", name), item("Domain", "domain", domain), item("Display name", "displayName", display),
		item("Groups (comma-separated)", "groups", groups)}
	if x == nil {
		items = append(items, item("Password", "password", pass))
	} else {
		name.SetText(x.Username)
		name.Disable()
		domain.SetText(x.Domain)
		display.SetText(x.DisplayName)
		groups.SetText(strings.Join(x.Groups, ", "))
		disabled.SetChecked(x.Disabled)
	}
	items = append(items, widget.NewFormItem("", disabled))
	errs := wrapped("")
	errs.Importance = widget.DangerImportance
	var d *formDialog
	d = p.u.newFormDialog(map[bool]string{true: "Add user", false: "Edit user"}[x == nil], "Save", container.NewVBox(widget.NewForm(items...), errs), func() {
		body := map[string]any{"username": name.Text, "domain": domain.Text, "displayName": display.Text, "groups": splitList(groups.Text), "disabled": disabled.Checked}
		method, path := "PUT", "/api/v1/users/"+name.Text
		if x == nil {
			method, path = "POST", "/api/v1/users"
			body["password"] = pass.Text
		}
		p.u.call(method, path, body, nil, func(err error) {
			if err != nil {
				fields, msg := fieldErrors(err)
				rest := placeFieldErrors(under, fields)
				errs.SetText(strings.TrimSpace("Not saved: " + msg + "\n" + strings.Join(rest, "\n")))
				return
			}
			d.Hide()
			p.refresh()
		}, d.primary)
	})
	d.Resize(fyne.NewSize(480, 0))
	d.Show()
	p.u.lastDialog = d
}

func (p *usersPage) resetPassword() {
	if p.usel < 0 || p.usel >= len(p.users) {
		return
	}
	name := p.users[p.usel].Username
	// A new password ends the user's sign-ins and live sessions: say so.
	p.u.withAffected("user="+url.QueryEscape(name), func(note string) {
		dialog.ShowConfirm("Reset password", "Give "+name+" a new generated password? Their portal sign-ins end."+note, func(ok bool) {
			if !ok {
				return
			}
			var out struct{ Password string }
			p.u.call("POST", "/api/v1/users/"+name+"/password", map[string]string{"password": ""}, &out, func(err error) {
				if err != nil {
					p.u.showError("Password not reset", err)
					return
				}
				dialog.ShowInformation("New password", fmt.Sprintf("The new password of %s is:\n\n%s\n\nIt is shown only now.", name, out.Password), p.u.win)
			})
		}, p.u.win)
	})
}

func (p *usersPage) addGroup() {
	name, desc := newKeyEntry(), newKeyEntry()
	errs := wrapped("")
	errs.Importance = widget.DangerImportance
	var d *formDialog
	d = p.u.newFormDialog("Add group", "Save", container.NewVBox(widget.NewForm(widget.NewFormItem("Name", name), widget.NewFormItem("Description", desc)), errs), func() {
		p.u.call("POST", "/api/v1/groups", map[string]string{"name": name.Text, "description": desc.Text}, nil, func(err error) {
			if err != nil {
				errs.SetText("Not added: " + apiErrorText(err))
				return
			}
			d.Hide()
			p.refresh()
		}, d.primary)
	})
	d.Resize(fyne.NewSize(420, 0))
	d.Show()
	p.u.lastDialog = d
}

func (p *usersPage) remove(kind string, sel int, name func(int) string, n int) {
	if sel < 0 || sel >= n {
		return
	}
	id := name(sel)
	confirm := func(note string) {
		dialog.ShowConfirm("Remove", "Remove "+id+"?"+note, func(ok bool) {
			if ok {
				p.u.call("DELETE", "/api/v1/"+kind+"/"+id, nil, nil, func(err error) {
					if err != nil {
						p.u.showError("Not removed", err)
					}
					p.refresh()
				})
			}
		}, p.u.win)
	}
	if kind != "users" {
		confirm("")
		return
	}
	// Removing a user ends their sign-ins and live sessions.
	p.u.withAffected("user="+url.QueryEscape(id), confirm)
}
