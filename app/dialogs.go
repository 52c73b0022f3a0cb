package main

import (
	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/dialog"
	"fyne.io/fyne/v2/theme"
	"fyne.io/fyne/v2/widget"
)

// keyEntry is a text field that cooperates with the keyboard-driven
// dialogs: Escape closes the dialog it is in (a plain Entry keeps Escape
// to itself) and Tab always moves to the next field, also out of a
// multi-line field, whose lists and PEM blocks never need a tab character.
type keyEntry struct {
	widget.Entry
	escape func()
}

func newKeyEntry() *keyEntry {
	e := &keyEntry{}
	e.Wrapping = fyne.TextWrap(fyne.TextTruncateClip)
	e.ExtendBaseWidget(e)
	return e
}

func newKeyMultiLine() *keyEntry {
	e := newKeyEntry()
	e.MultiLine = true
	return e
}

// newKeyPassword hides what is typed, with a button to show it.
func newKeyPassword() *keyEntry {
	e := newKeyEntry()
	e.Password = true
	var reveal *widget.Button
	reveal = widget.NewButtonWithIcon("", theme.VisibilityOffIcon(), func() {
		e.Password = !e.Password
		reveal.SetIcon(map[bool]fyne.Resource{true: theme.VisibilityOffIcon(), false: theme.VisibilityIcon()}[e.Password])
		e.Refresh()
	})
	reveal.Importance = widget.LowImportance
	e.ActionItem = reveal
	return e
}

// TypedKey closes the dialog on Escape and otherwise types as an Entry.
func (e *keyEntry) TypedKey(k *fyne.KeyEvent) {
	if k.Name == fyne.KeyEscape && e.escape != nil {
		e.escape()
		return
	}
	e.Entry.TypedKey(k)
}

// AcceptsTab is false so that Tab moves focus (see keyEntry).
func (e *keyEntry) AcceptsTab() bool { return false }

// formDialog is a modal dialog with a primary button and Cancel that the
// keyboard drives: Tab walks the fields in the order they are laid out,
// Enter in a one-line field (or with nothing focused) presses the primary
// button, Escape cancels. submit decides whether and when to Hide, so a
// refused change can keep the dialog open with its errors.
type formDialog struct {
	d       *dialog.CustomDialog
	win     fyne.Window
	primary *widget.Button
	cancel  *widget.Button
	first   fyne.Focusable
	// content is what the dialog shows (tests look inside it).
	content fyne.CanvasObject
	// prevKey is the window's key handler while the dialog is open.
	prevKey func(*fyne.KeyEvent)
}

func (u *UI) newFormDialog(title, primary string, content fyne.CanvasObject, submit func(), extra ...fyne.CanvasObject) *formDialog {
	f := &formDialog{win: u.win, content: content}
	f.primary = widget.NewButtonWithIcon(primary, theme.ConfirmIcon(), submit)
	f.primary.Importance = widget.HighImportance
	f.cancel = widget.NewButtonWithIcon("Cancel", theme.CancelIcon(), f.Hide)
	f.d = dialog.NewCustomWithoutButtons(title, content, u.win)
	f.d.SetButtons(append(append([]fyne.CanvasObject{}, extra...), f.cancel, f.primary))
	walk(content, func(o fyne.CanvasObject) {
		e, ok := o.(*keyEntry)
		if !ok {
			return
		}
		if f.first == nil {
			f.first = e
		}
		e.escape = f.Hide
		if !e.MultiLine && e.OnSubmitted == nil {
			e.OnSubmitted = func(string) { f.submit() }
		}
	})
	f.d.SetOnClosed(func() { f.win.Canvas().SetOnTypedKey(f.prevKey) })
	return f
}

// submit presses the primary button unless it is disabled (a call runs).
func (f *formDialog) submit() {
	if !f.primary.Disabled() && f.primary.OnTapped != nil {
		f.primary.OnTapped()
	}
}

// Show opens the dialog with the first text field focused.
func (f *formDialog) Show() {
	c := f.win.Canvas()
	f.prevKey = c.OnTypedKey()
	c.SetOnTypedKey(func(k *fyne.KeyEvent) {
		switch k.Name {
		case fyne.KeyEscape:
			f.Hide()
		case fyne.KeyReturn, fyne.KeyEnter:
			f.submit()
		}
	})
	f.d.Show()
	if f.first != nil {
		c.Focus(f.first)
	}
}

// Hide closes the dialog (its OnClosed restores the window's key handler).
func (f *formDialog) Hide() { f.d.Hide() }

// Resize sets the dialog's size.
func (f *formDialog) Resize(s fyne.Size) { f.d.Resize(s) }

// walk calls fn for o and every object inside the containers and widgets
// the dialogs are built from.
func walk(o fyne.CanvasObject, fn func(fyne.CanvasObject)) {
	fn(o)
	switch x := o.(type) {
	case *fyne.Container:
		for _, c := range x.Objects {
			walk(c, fn)
		}
	case *widget.Form:
		for _, it := range x.Items {
			walk(it.Widget, fn)
		}
	case *container.Scroll:
		walk(x.Content, fn)
	case *widget.Card:
		if x.Content != nil {
			walk(x.Content, fn)
		}
	}
}
