package main

import (
	"context"
	"strings"
	"testing"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/test"
	"fyne.io/fyne/v2/widget"

	"portico/service/config"
)

// press sends a key to whatever has the keyboard focus, or to the window
// when nothing has, as the desktop driver does.
func press(w fyne.Window, key fyne.KeyName) {
	ev := &fyne.KeyEvent{Name: key}
	if f := w.Canvas().Focused(); f != nil {
		f.TypedKey(ev)
	} else if h := w.Canvas().OnTypedKey(); h != nil {
		h(ev)
	}
}

// tapButton taps the button labelled text in the topmost dialog.
func tapButton(t *testing.T, w fyne.Window, text string) {
	t.Helper()
	top := w.Canvas().Overlays().Top()
	if top == nil {
		t.Fatalf("no dialog open to press %q in", text)
	}
	for _, o := range test.LaidOutObjects(top) {
		if b, ok := o.(*widget.Button); ok && b.Text == text {
			test.Tap(b)
			return
		}
	}
	t.Fatalf("no %q button in the open dialog", text)
}

func TestPolicyRulesEditor(t *testing.T) {
	u, c := newTestUI(t)
	ctx := context.Background()
	c.Do(ctx, "POST", "/api/v1/groups", map[string]string{"name": "contractors"}, nil)
	c.Do(ctx, "POST", "/api/v1/users", map[string]any{"username": "bob", "groups": []string{"contractors"}, "password": "bob-password"}, nil)
	c.Do(ctx, "POST", "/api/v1/resources", map[string]any{"id": "pc", "name": "PC", "protocol": "vnc", "host": "127.0.0.1", "groups": []string{"contractors"}}, nil)
	p := u.policies
	stored := func() []config.ClientPolicy { return get[[]config.ClientPolicy](t, c, "/api/v1/policies") }

	// A rule typed with the keyboard: Tab walks the fields in order, Enter saves.
	test.Tap(p.add)
	f := p.lastRule
	canvas := u.win.Canvas()
	if canvas.Focused() != f.name {
		t.Fatalf("the dialog opens with the name field focused, not %T", canvas.Focused())
	}
	test.Type(f.name, "Contractors")
	for _, want := range []fyne.Focusable{f.id, f.enabled, f.users, f.groups} {
		test.FocusNext(canvas)
		if canvas.Focused() != want {
			t.Fatalf("Tab went to %T %p, want %T %p", canvas.Focused(), canvas.Focused(), want, want)
		}
	}
	test.Type(f.groups, "contractors")
	f.files.SetSelected(transferLabels[config.TransferClientToServer])
	press(u.win, fyne.KeyReturn)
	if canvas.Overlays().Top() != nil || len(p.draft) != 1 || p.draft[0].ID != "contractors" || p.draft[0].FileTransfer != config.TransferClientToServer || p.draft[0].Clipboard != "" {
		t.Fatalf("Enter did not add the rule: draft %+v", p.draft)
	}
	if p.apply.Disabled() || len(stored()) != 0 {
		t.Fatal("an edit must stay in the draft until Apply")
	}

	// A bad network is shown at its field and the dialog stays open; Escape cancels.
	test.Tap(p.add)
	f = p.lastRule
	test.Type(f.name, "Office")
	test.Type(f.networks, "10.0.0.0/33")
	test.Tap(f.dlg.primary)
	if e := f.errs["networks"]; !e.Visible() || e.Text == "" || canvas.Overlays().Top() == nil {
		t.Fatalf("bad CIDR not shown at its field: %q", e.Text)
	}
	f.networks.SetText("10.0.0.0/8")
	f.clip.SetSelected(transferLabels[config.TransferDisabled])
	test.Tap(f.dlg.primary)
	if len(p.draft) != 2 {
		t.Fatalf("second rule not added: %+v", p.draft)
	}
	test.Tap(p.add)
	canvas.Focus(p.lastRule.networks)
	press(u.win, fyne.KeyEscape)
	if canvas.Overlays().Top() != nil || len(p.draft) != 2 {
		t.Fatal("Escape must close the dialog and add nothing")
	}

	// Reorder and apply: the gateway stores the new order and explains with it.
	p.list.Select(1)
	test.Tap(p.up)
	test.Tap(p.apply)
	u.Wait()
	got := stored()
	if len(got) != 2 || got[0].ID != "office" || got[1].ID != "contractors" || got[0].Networks[0] != "10.0.0.0/8" || !strings.Contains(p.msg.Text, "saved") {
		t.Fatalf("stored policies %+v (%s)", got, p.msg.Text)
	}
	typeInto(p.exUser, "bob")
	p.refresh()
	u.Wait()
	p.exRes.SetSelected("PC")
	test.Tap(p.exBtn)
	u.Wait()
	if want := "policy 'Contractors' allows client-to-server"; !strings.Contains(p.exOut.Text, want) {
		t.Fatalf("explanation %q lacks %q", p.exOut.Text, want)
	}

	// Edit an existing rule: its ID stays, the change is applied.
	p.list.Select(1)
	test.Tap(p.edit)
	f = p.lastRule
	if !f.id.Disabled() || f.name.Text != "Contractors" {
		t.Fatalf("edit dialog shows %q, id editable=%v", f.name.Text, !f.id.Disabled())
	}
	f.os.SetSelected([]string{"windows", "linux"})
	test.Tap(f.dlg.primary)
	test.Tap(p.apply)
	u.Wait()
	if got = stored(); strings.Join(got[1].ClientOS, ",") != "windows,linux" {
		t.Fatalf("edited rule stored as %+v", got[1])
	}

	// The gateway refuses an unknown group: shown at the rule and, in its
	// dialog, at the field; nothing is stored.
	test.Tap(p.add)
	f = p.lastRule
	test.Type(f.name, "Ghosts")
	test.Type(f.groups, "ghosts")
	test.Tap(f.dlg.primary)
	test.Tap(p.apply)
	u.Wait()
	if e := p.ruleErrs[2]["groups[0]"]; !strings.Contains(e, "no such group") || !strings.Contains(p.msg.Text, "Not saved") || !strings.Contains(p.msg.Text, "rule 3") {
		t.Fatalf("API refusal not shown: %v %q", p.ruleErrs, p.msg.Text)
	}
	if len(stored()) != 2 {
		t.Fatal("a refused list was stored")
	}
	test.Tap(p.edit) // rule 3 is selected
	if e := p.lastRule.errs["groups"]; !e.Visible() || !strings.Contains(e.Text, "no such group") {
		t.Fatalf("API field error not at the field in the dialog: %q", e.Text)
	}
	press(u.win, fyne.KeyEscape)

	// Remove, then Revert brings the applied list back.
	p.list.Select(0)
	test.Tap(p.remove)
	tapButton(t, u.win, "Yes")
	if len(p.draft) != 2 || p.draft[0].ID != "contractors" {
		t.Fatalf("remove: draft %+v", p.draft)
	}
	test.Tap(p.revert)
	if len(p.draft) != 2 || p.draft[0].ID != "office" || !p.apply.Disabled() {
		t.Fatalf("revert: draft %+v", p.draft)
	}
}
