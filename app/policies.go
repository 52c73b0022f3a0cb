package main

import (
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/canvas"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/dialog"
	"fyne.io/fyne/v2/theme"
	"fyne.io/fyne/v2/widget"

	"portico/service/config"
	"portico/service/policy"
)

// notSet is the choice that leaves a direction set to the other levels.
const notSet = "Not set (no limit at this level)"

// policiesPage edits the ordered client policies. Changes (add, edit,
// remove, reorder) go to a draft; Apply sends the whole list, as the
// gateway stores it, and Revert drops the draft.
type policiesPage struct {
	u     *UI
	saved []config.ClientPolicy
	draft []config.ClientPolicy
	// ruleErrs are the admin API's field errors of the last Apply, by rule
	// index and field path inside the rule ("networks[0]").
	ruleErrs map[int]map[string]string
	list     *widget.List
	sel      int
	msg      *widget.Label

	add, edit, remove, up, down, apply, revert *widget.Button

	exUser, exIP *keyEntry
	// exRes picks the resource by name; exResIDs maps its choices to IDs.
	exRes    *widget.Select
	exResIDs map[string]string
	exOS     *widget.Select
	exOut    *widget.Label
	exBtn    *widget.Button
	content  fyne.CanvasObject

	// lastRule is the open rule dialog (tests fill it like a person).
	lastRule *ruleForm
}

func newPoliciesPage(u *UI) *policiesPage {
	p := &policiesPage{u: u, sel: -1}
	p.msg = wrapped("Rules are checked in order; the first enabled rule that matches a session limits its clipboard and file transfer. Empty match lists match anything.")
	p.list = widget.NewList(func() int { return len(p.draft) },
		func() fyne.CanvasObject {
			l := widget.NewLabel("rule")
			l.Truncation = fyne.TextTruncateEllipsis
			return l
		},
		func(i widget.ListItemID, o fyne.CanvasObject) {
			l := o.(*widget.Label)
			text := fmt.Sprintf("%d. %s", i+1, ruleSummary(p.draft[i]))
			l.Importance = widget.MediumImportance
			if es := p.ruleErrs[i]; len(es) > 0 {
				text += "  —  fix: " + joinErrors(es)
				l.Importance = widget.DangerImportance
			}
			l.SetText(text)
		})
	p.list.OnSelected = func(i widget.ListItemID) { p.sel = i; p.updateButtons() }
	p.list.OnUnselected = func(widget.ListItemID) { p.sel = -1; p.updateButtons() }
	p.add = widget.NewButtonWithIcon("Add rule…", theme.ContentAddIcon(), func() { p.editRule(-1) })
	p.edit = widget.NewButtonWithIcon("Edit…", theme.DocumentCreateIcon(), func() { p.editRule(p.sel) })
	p.remove = widget.NewButtonWithIcon("Remove", theme.DeleteIcon(), p.removeRule)
	p.up = widget.NewButtonWithIcon("Move up", theme.MoveUpIcon(), func() { p.move(-1) })
	p.down = widget.NewButtonWithIcon("Move down", theme.MoveDownIcon(), func() { p.move(1) })
	p.apply = widget.NewButton("Apply", p.save)
	p.apply.Importance = widget.HighImportance
	p.revert = widget.NewButton("Revert", func() { p.show(p.saved, "Changes dropped; the applied rules are shown.") })

	p.exUser, p.exIP = newKeyEntry(), newKeyEntry()
	p.exUser.SetPlaceHolder("user")
	p.exRes = widget.NewSelect(nil, nil)
	p.exRes.PlaceHolder = "(choose a resource)"
	p.exIP.SetPlaceHolder("client IP (optional)")
	p.exOS = widget.NewSelect(config.ClientOSes, nil)
	p.exOS.SetSelected("windows")
	p.exOut = wrapped("")
	p.exBtn = widget.NewButton("Explain", p.explain)
	for _, e := range []*keyEntry{p.exUser, p.exIP} {
		e.OnSubmitted = func(string) { p.explain() }
	}
	explainBox := widget.NewCard("Explain a decision", "What may the clipboard and file transfer do for this user, resource and client under the applied rules — and why?",
		container.NewVBox(container.NewGridWithColumns(4, p.exUser, p.exRes, p.exOS, p.exIP), container.NewHBox(p.exBtn), p.exOut,
			widget.NewAccordion(widget.NewAccordionItem("How each protocol enforces these settings", wrapped(enforcementText())))))
	bar := container.NewHBox(p.add, p.edit, p.remove, p.up, p.down, widget.NewSeparator(), p.apply, p.revert)
	p.content = container.NewBorder(container.NewVBox(p.msg, bar), explainBox, nil, nil, p.list)
	p.updateButtons()
	return p
}

// ruleSummary is one line saying what a rule matches and what it sets.
func ruleSummary(r config.ClientPolicy) string {
	var match []string
	for _, m := range []struct {
		what string
		list []string
	}{{"users", r.Users}, {"groups", r.Groups}, {"client OS", r.ClientOS}, {"networks", r.Networks}} {
		if len(m.list) > 0 {
			match = append(match, m.what+" "+strings.Join(m.list, ", "))
		}
	}
	if len(match) == 0 {
		match = []string{"every session"}
	}
	set := func(t config.Transfer) string {
		if t == "" {
			return "not set"
		}
		return strings.ToLower(transferLabels[t])
	}
	state := ""
	if !r.Enabled {
		state = " (disabled)"
	}
	return fmt.Sprintf("%s%s: %s → clipboard %s, file transfer %s", r.Name, state, strings.Join(match, "; "), set(r.Clipboard), set(r.FileTransfer))
}

func joinErrors(m map[string]string) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	out := make([]string, len(keys))
	for i, k := range keys {
		out[i] = fieldLabel(k) + ": " + m[k]
	}
	return strings.Join(out, "; ")
}

func (p *policiesPage) dirty() bool {
	return fmt.Sprintf("%+v", p.draft) != fmt.Sprintf("%+v", p.saved)
}

// updateButtons enables what makes sense for the selection and the draft.
func (p *policiesPage) updateButtons() {
	on := func(b *widget.Button, ok bool) {
		if ok {
			b.Enable()
		} else {
			b.Disable()
		}
	}
	has := p.sel >= 0 && p.sel < len(p.draft)
	on(p.edit, has)
	on(p.remove, has)
	on(p.up, has && p.sel > 0)
	on(p.down, has && p.sel < len(p.draft)-1)
	on(p.apply, p.dirty())
	on(p.revert, p.dirty())
}

// show replaces the draft with rules and says msg.
func (p *policiesPage) show(rules []config.ClientPolicy, msg string) {
	p.draft = slices.Clone(rules)
	p.ruleErrs = nil
	p.list.UnselectAll()
	p.sel = -1
	p.list.Refresh()
	p.msg.SetText(msg)
	p.updateButtons()
}

func (p *policiesPage) changed() {
	p.list.Refresh()
	p.msg.SetText("Unsaved changes: Apply puts them in effect, Revert drops them.")
	p.updateButtons()
}

// enforcementText is the enforcement table (service/policy.Rules, the one
// the README shows), a line per protocol, route and feature.
func enforcementText() string {
	var b strings.Builder
	for _, r := range policy.Rules() {
		dirs := string(r.ClientToServer)
		if r.ClientToServer != r.ServerToClient {
			dirs = fmt.Sprintf("client → host %s, host → client %s", r.ClientToServer, r.ServerToClient)
		}
		fmt.Fprintf(&b, "%s, %s, %s: %s (%s)\n", strings.ToUpper(string(r.Protocol)), r.Route, r.Feature, dirs, r.How)
	}
	return strings.TrimSpace(b.String())
}

// loadResources offers the resources by name in Explain.
func (p *policiesPage) loadResources() {
	var rs []config.Resource
	p.u.call("GET", "/api/v1/resources", nil, &rs, func(err error) {
		if err != nil {
			return // the Resources tab reports it
		}
		names := map[string]int{}
		for _, r := range rs {
			names[r.Name]++
		}
		ids := map[string]string{}
		var opts []string
		for _, r := range rs {
			label := r.Name
			if names[r.Name] > 1 || label == "" {
				label = fmt.Sprintf("%s (%s)", r.Name, r.ID)
			}
			ids[label] = r.ID
			opts = append(opts, label)
		}
		slices.Sort(opts)
		sel := p.exRes.Selected
		p.exResIDs = ids
		p.exRes.SetOptions(opts)
		if _, ok := ids[sel]; ok {
			p.exRes.SetSelected(sel)
		} else {
			p.exRes.ClearSelected()
		}
	})
}

func (p *policiesPage) refresh() {
	p.loadResources()
	var ps []config.ClientPolicy
	p.u.call("GET", "/api/v1/policies", nil, &ps, func(err error) {
		p.u.loaded("policies", "the client policies", err)
		if err != nil {
			return
		}
		p.saved = ps
		p.show(ps, fmt.Sprintf("%d rules in effect, checked in order; the first enabled rule that matches a session limits its clipboard and file transfer.", len(ps)))
	})
}

func (p *policiesPage) move(by int) {
	i, j := p.sel, p.sel+by
	if i < 0 || j < 0 || j >= len(p.draft) {
		return
	}
	p.draft[i], p.draft[j] = p.draft[j], p.draft[i]
	p.ruleErrs = nil
	p.changed()
	p.list.Select(j)
}

func (p *policiesPage) removeRule() {
	i := p.sel
	if i < 0 || i >= len(p.draft) {
		return
	}
	dialog.ShowConfirm("Remove rule", "Remove rule "+strconv.Itoa(i+1)+" ("+p.draft[i].Name+") from the draft? Apply puts the change in effect.", func(ok bool) {
		if !ok {
			return
		}
		p.draft = slices.Delete(p.draft, i, i+1)
		p.ruleErrs = nil
		p.list.UnselectAll()
		p.sel = -1
		p.changed()
	}, p.u.win)
}

// save sends the whole ordered list; field errors come back as
// "[index].field" and are shown at the rule and, in its dialog, at the field.
func (p *policiesPage) save() {
	var reply []config.ClientPolicy
	p.u.call("PUT", "/api/v1/policies", p.draft, &reply, func(err error) {
		if err != nil {
			fields, msg := fieldErrors(err)
			p.ruleErrs = map[int]map[string]string{}
			first := -1
			var rest []string
			for path, m := range fields {
				i, field, ok := splitRulePath(path)
				if !ok {
					rest = append(rest, path+": "+m)
					continue
				}
				if p.ruleErrs[i] == nil {
					p.ruleErrs[i] = map[string]string{}
				}
				p.ruleErrs[i][field] = m
				if first < 0 || i < first {
					first = i
				}
			}
			text := "Not saved, nothing changed: " + msg
			if first >= 0 {
				text += fmt.Sprintf(". Fix rule %d (%s): %s — Edit… shows each error at its field.", first+1, p.draft[first].Name, joinErrors(p.ruleErrs[first]))
				p.list.Select(first)
			}
			if len(rest) > 0 {
				text += "\n" + strings.Join(rest, "\n")
			}
			p.list.Refresh()
			p.msg.SetText(text)
			return
		}
		p.saved = reply
		p.show(reply, fmt.Sprintf("Policies saved and in effect (%d rules).", len(reply)))
	}, p.add, p.edit, p.remove, p.up, p.down, p.apply, p.revert)
}

var rulePathRE = regexp.MustCompile(`^\[(\d+)\]\.?(.*)$`)

// splitRulePath splits "[2].networks[0]" into 2 and "networks[0]".
func splitRulePath(path string) (int, string, bool) {
	m := rulePathRE.FindStringSubmatch(path)
	if m == nil {
		return 0, "", false
	}
	i, err := strconv.Atoi(m[1])
	return i, m[2], err == nil
}

func (p *policiesPage) explain() {
	var d struct {
		Clipboard    string   `json:"clipboard"`
		FileTransfer string   `json:"fileTransfer"`
		Explanation  []string `json:"explanation"`
		Enforcement  []string `json:"enforcement"`
	}
	body := map[string]string{"user": strings.TrimSpace(p.exUser.Text), "resource": p.exResIDs[p.exRes.Selected], "clientOS": p.exOS.Selected, "clientIP": strings.TrimSpace(p.exIP.Text)}
	p.u.call("POST", "/api/v1/policies/explain", body, &d, func(err error) {
		if err != nil {
			p.exOut.SetText("Cannot explain: " + err.Error())
			return
		}
		p.exOut.SetText(strings.Join(append(d.Explanation, d.Enforcement...), "\n"))
	}, p.exBtn)
}

// ruleForm is the rule dialog's fields.
type ruleForm struct {
	name, id, users, groups, networks *keyEntry
	enabled                           *widget.Check
	os                                *widget.CheckGroup
	clip, files                       *widget.Select
	// errs shows an error under each field, keyed by the API's field name.
	errs  map[string]*canvas.Text
	other *widget.Label
	dlg   *formDialog
}

func transferChoices() []string {
	return append([]string{notSet}, labelsOf(config.Transfers, transferLabels)...)
}

func transferChoice(t config.Transfer) string {
	if t == "" {
		return notSet
	}
	return transferLabels[t]
}

func transferOfChoice(s string) config.Transfer {
	if s == notSet {
		return ""
	}
	return keyOf(transferLabels, s)
}

// editRule opens the rule dialog for rule i, or a new rule for i < 0.
func (p *policiesPage) editRule(i int) {
	cur := config.ClientPolicy{Enabled: true}
	if i >= 0 {
		if i >= len(p.draft) {
			return
		}
		cur = p.draft[i]
	}
	f := &ruleForm{name: newKeyEntry(), id: newKeyEntry(), users: newKeyEntry(), groups: newKeyEntry(), networks: newKeyEntry(),
		enabled: widget.NewCheck("Enabled (disabled rules are skipped)", nil), os: widget.NewCheckGroup(config.ClientOSes, nil),
		clip: widget.NewSelect(transferChoices(), nil), files: widget.NewSelect(transferChoices(), nil),
		errs: map[string]*canvas.Text{}, other: wrapped("")}
	f.other.Importance = widget.DangerImportance
	f.os.Horizontal = true
	f.name.SetText(cur.Name)
	f.id.SetText(cur.ID)
	f.id.SetPlaceHolder("made from the name")
	if i >= 0 {
		f.id.Disable() // explanations and the audit log refer to it
	}
	f.enabled.SetChecked(cur.Enabled)
	f.users.SetText(strings.Join(cur.Users, ", "))
	f.users.SetPlaceHolder("any user (or: alice, bob)")
	f.groups.SetText(strings.Join(cur.Groups, ", "))
	f.groups.SetPlaceHolder("any group (or: contractors)")
	f.os.SetSelected(cur.ClientOS)
	f.networks.SetText(strings.Join(cur.Networks, ", "))
	f.networks.SetPlaceHolder("any network (or: 10.0.0.0/8, 192.0.2.7)")
	f.clip.SetSelected(transferChoice(cur.Clipboard))
	f.files.SetSelected(transferChoice(cur.FileTransfer))
	item := func(label, field string, w fyne.CanvasObject) *widget.FormItem {
		e := errorText()
		f.errs[field] = e
		return widget.NewFormItem(label, container.NewVBox(w, e))
	}
	form := widget.NewForm(
		item("Name", "name", f.name), item("ID", "id", f.id), widget.NewFormItem("", f.enabled),
		item("Users", "users", f.users), item("Groups", "groups", f.groups),
		item("Client OS", "clientOS", f.os), item("Client networks", "networks", f.networks),
		item("Clipboard", "clipboard", f.clip), item("File transfer", "fileTransfer", f.files),
	)
	hint := wrapped("The rule matches a session when every non-empty list matches (empty = any). It limits the directions it sets; \"" + notSet + "\" leaves them to the resource and the User Portal.")
	hint.Importance = widget.LowImportance
	title := "Add rule"
	if i >= 0 {
		title = fmt.Sprintf("Edit rule %d", i+1)
	}
	f.dlg = p.u.newFormDialog(title, "OK", container.NewBorder(hint, f.other, nil, nil, container.NewVScroll(form)), func() { p.commitRule(i, f) })
	f.dlg.Resize(fyne.NewSize(680, 640))
	f.dlg.Show()
	f.showErrors(p.ruleErrs[i])
	p.lastRule = f
}

// read builds the rule from the fields.
func (f *ruleForm) read(base config.ClientPolicy) config.ClientPolicy {
	r := base
	r.Name = strings.TrimSpace(f.name.Text)
	r.ID = strings.TrimSpace(f.id.Text)
	r.Enabled = f.enabled.Checked
	r.Users, r.Groups = splitList(f.users.Text), splitList(f.groups.Text)
	r.ClientOS = slices.Clone(f.os.Selected)
	if r.ClientOS == nil {
		r.ClientOS = []string{}
	}
	r.Networks = splitList(f.networks.Text)
	r.Clipboard, r.FileTransfer = transferOfChoice(f.clip.Selected), transferOfChoice(f.files.Selected)
	return r
}

// showErrors puts each error at its field ("networks[1]" at networks).
func (f *ruleForm) showErrors(es map[string]string) {
	rest := placeFieldErrors(f.errs, es)
	f.other.SetText(strings.Join(rest, "\n"))
}

// commitRule checks the rule with the gateway's own validation (service/
// config) and puts it in the draft; user and group names are checked by
// the gateway on Apply.
func (p *policiesPage) commitRule(i int, f *ruleForm) {
	var base config.ClientPolicy
	if i >= 0 {
		base = p.draft[i]
	}
	r := f.read(base)
	if i < 0 && r.ID == "" {
		r.ID = p.newRuleID(r.Name)
	}
	es := map[string]string{}
	if fes, ok := config.AsFieldErrors(r.Validate()); ok {
		for _, fe := range fes {
			es[fe.Field] = fe.Message
		}
	}
	for j, o := range p.draft {
		if j != i && o.ID == r.ID {
			es["id"] = "another rule has this ID"
		}
	}
	if len(es) > 0 {
		f.showErrors(es)
		return
	}
	if i < 0 {
		p.draft = append(p.draft, r)
		i = len(p.draft) - 1
	} else {
		p.draft[i] = r
	}
	delete(p.ruleErrs, i)
	f.dlg.Hide()
	p.changed()
	p.list.Select(i)
}

var nonID = regexp.MustCompile(`[^a-z0-9]+`)

// newRuleID makes an unused ID from a rule's name.
func (p *policiesPage) newRuleID(name string) string {
	base := strings.Trim(nonID.ReplaceAllString(strings.ToLower(name), "-"), "-")
	if len(base) > 56 {
		base = strings.Trim(base[:56], "-")
	}
	if base == "" {
		base = "rule"
	}
	id := base
	for n := 2; slices.ContainsFunc(p.draft, func(r config.ClientPolicy) bool { return r.ID == id }); n++ {
		id = base + "-" + strconv.Itoa(n)
	}
	return id
}
