package main

import (
	"context"
	"errors"
	"fmt"
	"image/color"
	"sort"
	"strings"
	"sync"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/canvas"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/dialog"
	"fyne.io/fyne/v2/theme"
	"fyne.io/fyne/v2/widget"

	"portico/service/admin"
)

// API is what the GUI needs of the admin API (admin.Client implements it).
type API interface {
	Do(ctx context.Context, method, path string, body, out any) error
}

// UI is the admin GUI: one window with a tab per area.
type UI struct {
	app     fyne.App
	win     fyne.Window
	dataDir string
	gwBin   string
	api     API

	// pending counts network calls in flight (tests wait on it).
	pending sync.WaitGroup
	// busyMu guards slow, the number of calls running longer than
	// busyDelay; while it is above zero the busy bar shows.
	busyMu sync.Mutex
	// doneMu runs done callbacks one at a time. fyne.Do already does on
	// the desktop driver; Fyne's test driver runs them on the calling
	// goroutine, so without it two calls ending together would race.
	doneMu sync.Mutex
	slow   int
	busy   *widget.ProgressBarInfinite
	// loadErrs are the failed loads the banner shows, by what was loaded;
	// a later successful load of the same thing removes its line.
	loadErrs map[string]string

	status    *statusPage
	portal    *portalPage
	resources *resourcesPage
	users     *usersPage
	policies  *policiesPage
	activity  *activityPage
	banner    *widget.Label
	tabs      *container.AppTabs

	// lastResourceForm and lastResourceSave are the open resource dialog's
	// fields, so tests can fill and submit it like a person.
	lastResourceForm *resourceForm
	lastResourceSave *widget.Button
	// lastDialog is the last keyboard-driven dialog opened (tests).
	lastDialog *formDialog
}

// NewUI builds the window's content; Connect (or SetAPI) attaches it to a gateway.
func NewUI(a fyne.App, w fyne.Window, dataDir, gwBin string) *UI {
	u := &UI{app: a, win: w, dataDir: dataDir, gwBin: gwBin, loadErrs: map[string]string{}}
	u.banner = widget.NewLabel("")
	u.banner.Wrapping = fyne.TextWrapWord
	u.banner.Importance = widget.DangerImportance
	u.banner.Hide()
	u.busy = widget.NewProgressBarInfinite()
	u.busy.Hide()
	u.status = newStatusPage(u)
	u.portal = newPortalPage(u)
	u.resources = newResourcesPage(u)
	u.users = newUsersPage(u)
	u.policies = newPoliciesPage(u)
	u.activity = newActivityPage(u)
	u.tabs = container.NewAppTabs(
		container.NewTabItemWithIcon("Gateway", theme.ComputerIcon(), u.status.content),
		container.NewTabItemWithIcon("User Portal", theme.SettingsIcon(), u.portal.content),
		container.NewTabItemWithIcon("Resources", theme.StorageIcon(), u.resources.content),
		container.NewTabItemWithIcon("Users & groups", theme.AccountIcon(), u.users.content),
		container.NewTabItemWithIcon("Client policies", theme.ListIcon(), u.policies.content),
		container.NewTabItemWithIcon("Sessions & audit", theme.HistoryIcon(), u.activity.content),
	)
	u.tabs.OnSelected = func(*container.TabItem) {
		// A widget on the tab just left must not keep the keyboard focus:
		// Fyne forgets the canvas of objects hidden for a while, and a
		// Select that then gets Space or an arrow key opens its menu with
		// no canvas (the nil-pointer panic in NewPopUpMenu seen after the
		// launch method was changed and the admin moved on).
		u.win.Canvas().Unfocus()
		u.refreshCurrent()
	}
	w.SetContent(container.NewBorder(container.NewVBox(u.busy, u.banner), nil, nil, nil, u.tabs))
	// Escape closes the topmost of Fyne's own dialogs (confirmations,
	// messages), which ignore it; formDialog handles its own keys.
	w.Canvas().SetOnTypedKey(func(k *fyne.KeyEvent) {
		if top := w.Canvas().Overlays().Top(); k.Name == fyne.KeyEscape && top != nil {
			top.Hide()
		}
	})
	return u
}

// Connect finds the local gateway through the data directory.
func (u *UI) Connect() {
	c, err := admin.Dial(u.dataDir)
	u.loaded("connect", "", err)
	if err != nil {
		return
	}
	u.SetAPI(c)
}

// SetAPI attaches the GUI to an admin API and loads every page.
func (u *UI) SetAPI(api API) {
	u.api = api
	u.status.refresh()
	u.portal.refresh()
	u.resources.refresh()
	u.users.refresh()
	u.policies.refresh()
	u.activity.refresh()
}

func (u *UI) refreshCurrent() {
	if u.api == nil {
		return
	}
	switch u.tabs.SelectedIndex() {
	case 0:
		u.status.refresh()
	case 2:
		u.resources.refresh()
	case 3:
		u.users.refresh()
	case 4:
		u.policies.loadResources() // not the rules: that would drop a draft
	case 5:
		u.activity.refresh()
	}
}

// loaded records the outcome of loading what (shown as "Could not load
// <what>: …" in the banner, or the error alone when what is empty) and
// updates the banner, so a failed load is always on screen.
func (u *UI) loaded(key, what string, err error) {
	if err == nil {
		delete(u.loadErrs, key)
	} else if what == "" {
		u.loadErrs[key] = err.Error()
	} else {
		u.loadErrs[key] = "Could not load " + what + ": " + err.Error()
	}
	if len(u.loadErrs) == 0 {
		u.banner.Hide()
		return
	}
	keys := make([]string, 0, len(u.loadErrs))
	for k := range u.loadErrs {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	lines := make([]string, len(keys))
	for i, k := range keys {
		lines[i] = u.loadErrs[k]
	}
	u.banner.SetText(strings.Join(lines, "\n"))
	u.banner.Show()
}

// busyDelay is how long a call runs before the busy bar shows; quicker
// calls would only make it flicker.
const busyDelay = 200 * time.Millisecond

// call runs an admin API request off the UI thread and then done on it
// (fyne.Do). The widgets in lock (the buttons that started it, the form
// it sends) are disabled until it ends, so nothing is sent twice, and the
// busy bar shows while it takes longer than busyDelay. done must put any
// error on screen.
func (u *UI) call(method, path string, body, out any, done func(err error), lock ...fyne.Disableable) {
	if u.api == nil {
		done(errors.New("not connected to a gateway: " + u.loadErrs["connect"]))
		return
	}
	var relock []fyne.Disableable
	for _, w := range lock {
		if !w.Disabled() {
			w.Disable()
			relock = append(relock, w)
		}
	}
	const running, slow, finished = 0, 1, 2
	state := running
	timer := time.AfterFunc(busyDelay, func() {
		fyne.Do(func() {
			u.busyMu.Lock()
			if state == running {
				state = slow
				u.slow++
			}
			u.busyMu.Unlock()
			u.showBusy()
		})
	})
	u.pending.Add(1)
	go func() {
		defer u.pending.Done()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		err := u.api.Do(ctx, method, path, body, out)
		fyne.DoAndWait(func() {
			u.doneMu.Lock()
			defer u.doneMu.Unlock()
			timer.Stop()
			u.busyMu.Lock()
			if state == slow {
				u.slow--
			}
			state = finished
			u.busyMu.Unlock()
			u.showBusy()
			for _, w := range relock {
				w.Enable()
			}
			done(err)
		})
	}()
}

func (u *UI) showBusy() {
	u.busyMu.Lock()
	on := u.slow > 0
	u.busyMu.Unlock()
	if on {
		u.busy.Show()
	} else {
		u.busy.Hide()
	}
}

// Wait blocks until every call started so far has finished (for tests).
func (u *UI) Wait() { u.pending.Wait() }

// showError puts an error in a dialog (and never only in a log).
func (u *UI) showError(what string, err error) {
	dialog.ShowError(fmt.Errorf("%s: %w", what, err), u.win)
}

// errorText is a red label shown next to a field when the API rejects it.
func errorText() *canvas.Text {
	t := canvas.NewText("", color.NRGBA{R: 0xd0, G: 0x30, B: 0x30, A: 0xff})
	t.TextSize = theme.CaptionTextSize()
	t.Hide()
	return t
}

// apiErrorText is an admin API refusal in one text: the message and each
// field's problem.
func apiErrorText(err error) string {
	fields, msg := fieldErrors(err)
	keys := make([]string, 0, len(fields))
	for k := range fields {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		msg += "\n" + fieldLabel(k) + ": " + fields[k]
	}
	return msg
}

// fieldLabel is an API field path as an admin reads it: list positions
// are left out ("groups[1]" is "groups"), since the message names the
// item itself (see fieldErrors).
func fieldLabel(path string) string {
	var b strings.Builder
	skip := false
	for _, r := range path {
		switch {
		case r == '[':
			skip = true
		case r == ']':
			skip = false
		case !skip:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// fieldErrors extracts the field-level errors of an admin API refusal.
func fieldErrors(err error) (map[string]string, string) {
	var ae *admin.APIError
	if !errors.As(err, &ae) {
		return nil, err.Error()
	}
	m := map[string]string{}
	for _, f := range ae.Fields {
		// An item of a list is named by its value, not its position: the
		// admin typed "contractrs", not "groups[1]".
		if strings.Contains(f.Field, "[") && f.Value != "" {
			m[f.Field] = fmt.Sprintf("%q: %s", f.Value, f.Message)
			continue
		}
		m[f.Field] = f.Message
	}
	return m, ae.Message
}

// selectionActions keeps the buttons that act on a list's selected row
// enabled only while a row is selected, and *sel on that row (-1 for
// none): an Edit or Remove with nothing selected would do nothing.
func selectionActions(l *widget.List, sel *int, btns ...*widget.Button) {
	set := func(i int) {
		*sel = i
		for _, b := range btns {
			if i >= 0 {
				b.Enable()
			} else {
				b.Disable()
			}
		}
	}
	l.OnSelected = func(i widget.ListItemID) { set(i) }
	l.OnUnselected = func(widget.ListItemID) { set(-1) }
	set(-1)
}
