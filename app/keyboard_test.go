package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/test"
	"fyne.io/fyne/v2/widget"

	"portico/service/admin"
)

func TestUserDialogByKeyboard(t *testing.T) {
	u, c := newTestUI(t)
	cv := u.win.Canvas()
	add := func(name, password string) *formDialog {
		u.users.editUser(nil)
		d := u.lastDialog
		test.Type(cv.Focused(), name) // the user name field has the focus
		for range 4 {                 // domain, display name, groups, password
			test.FocusNext(cv)
		}
		test.Type(cv.Focused(), password)
		press(u.win, fyne.KeyReturn)
		u.Wait()
		return d
	}
	add("carol", "carol-password-1")
	if cv.Overlays().Top() != nil {
		t.Fatal("Enter did not save and close the dialog")
	}
	if us := get[[]userRow](t, c, "/api/v1/users"); !strings.Contains(func() string {
		var names []string
		for _, x := range us {
			names = append(names, x.Username)
		}
		return strings.Join(names, ",")
	}(), "carol") {
		t.Fatalf("carol not stored: %+v", us)
	}
	// A refusal (the name exists) stays in the open dialog, in words.
	add("carol", "carol-password-2")
	if cv.Overlays().Top() == nil {
		t.Fatal("a refused user must keep the dialog open")
	}
	if !strings.Contains(visibleText(cv.Overlays().Top()), "Not saved: ") {
		t.Fatalf("the refusal is not shown in the dialog: %q", visibleText(cv.Overlays().Top()))
	}
	press(u.win, fyne.KeyEscape)
	if cv.Overlays().Top() != nil {
		t.Fatal("Escape did not close the dialog")
	}
	// Escape also closes Fyne's own confirmation dialogs.
	u.users.usel = 0
	u.users.remove("users", 0, func(int) string { return "carol" }, 1)
	cv.Unfocus()
	press(u.win, fyne.KeyEscape)
	if cv.Overlays().Top() != nil {
		t.Fatal("Escape did not close the confirmation")
	}
}

// visibleText is the text of every visible label in o.
func visibleText(o fyne.CanvasObject) string {
	var b strings.Builder
	for _, x := range test.LaidOutObjects(o) {
		if l, ok := x.(*widget.Label); ok && l.Visible() {
			b.WriteString(l.Text + "\n")
		}
	}
	return b.String()
}

func TestLoadErrorsStayOnScreen(t *testing.T) {
	u, c := newTestUI(t)
	if u.banner.Visible() {
		t.Fatalf("banner shown while connected: %q", u.banner.Text)
	}
	// The same gateway with a wrong token: every page's load fails, and says why.
	bad := t.TempDir()
	ep, err := os.ReadFile(filepath.Join(u.dataDir, "admin-endpoint.json"))
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(bad, "admin-endpoint.json"), ep, 0o600)
	os.WriteFile(filepath.Join(bad, "admin.token"), []byte("wrong"), 0o600)
	wrong, err := admin.Dial(bad)
	if err != nil {
		t.Fatal(err)
	}
	u.SetAPI(wrong)
	u.Wait()
	for _, want := range []string{"Could not load the resources", "Could not load the client policies", "wrong admin token"} {
		if !u.banner.Visible() || !strings.Contains(u.banner.Text, want) {
			t.Fatalf("banner %q lacks %q", u.banner.Text, want)
		}
	}
	u.SetAPI(c)
	u.Wait()
	if u.banner.Visible() {
		t.Fatalf("banner still shown after loading again: %q", u.banner.Text)
	}
	// No gateway at all: the window says what to do.
	a := test.NewApp()
	defer a.Quit()
	nu := NewUI(a, a.NewWindow("none"), t.TempDir(), "")
	nu.Connect()
	if !nu.banner.Visible() || !strings.Contains(nu.banner.Text, "install and start the Portico service") {
		t.Fatalf("no-gateway banner %q", nu.banner.Text)
	}
}
