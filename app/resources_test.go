package main

import (
	"context"
	"io"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/test"
	"fyne.io/fyne/v2/widget"

	"portico/internal/testserver"
)

// rfbServer is a loopback listener that greets like a VNC server.
func rfbServer(t *testing.T) (host, port string) {
	t.Helper()
	addr := testserver.Serve(t, func(c net.Conn) {
		c.Write([]byte("RFB 003.008\n"))
		io.Copy(io.Discard, c)
	})
	host, port, _ = net.SplitHostPort(addr)
	return host, port
}

func TestResourceConnectionTestButtons(t *testing.T) {
	u, c := newTestUI(t)
	host, port := rfbServer(t)
	_, closed, _ := net.SplitHostPort(freePort(t))
	for id, p := range map[string]string{"desk": port, "gone": closed} {
		n, _ := strconv.Atoi(p)
		body := map[string]any{"id": id, "name": strings.ToUpper(id[:1]) + id[1:], "protocol": "vnc", "host": host, "port": n}
		if err := c.Do(context.Background(), "POST", "/api/v1/resources", body, nil); err != nil {
			t.Fatal(err)
		}
	}
	p := u.resources
	p.refresh()
	u.Wait()
	if !p.testBtn.Disabled() || !p.editBtn.Disabled() || !p.removeBtn.Disabled() {
		t.Fatal("Test connection, Edit and Remove must wait for a selection")
	}
	p.list.Select(0)
	if p.editBtn.Disabled() || p.removeBtn.Disabled() {
		t.Fatal("Edit and Remove stay disabled with a row selected")
	}
	p.list.UnselectAll()
	if !p.editBtn.Disabled() {
		t.Fatal("Edit enabled again after the selection was cleared")
	}
	for i, want := range map[int]string{0: "Desk (" + host + ":" + port + ") — reachable: RFB 003.008", 1: "refused: nothing listens on that port"} {
		p.list.Select(i)
		test.Tap(p.testBtn)
		u.Wait()
		if !strings.Contains(p.testOut.Text, want) {
			t.Fatalf("row %d: result %q, want %q", i, p.testOut.Text, want)
		}
		if reachable := i == 0; (p.testOut.Importance == widget.SuccessImportance) != reachable {
			t.Fatalf("row %d: importance %v", i, p.testOut.Importance)
		}
	}

	// In the dialog, the test uses the fields as typed, before Save.
	p.list.Select(1)
	p.edit(&p.rows[1])
	f := u.lastResourceForm
	typeInto(f.port, port)
	test.Tap(f.testBtn)
	u.Wait()
	if !strings.Contains(f.testOut.Text, "reachable: RFB 003.008") {
		t.Fatalf("dialog test: %q", f.testOut.Text)
	}
	typeInto(f.host, "bad host!")
	test.Tap(f.testBtn)
	u.Wait()
	if e := f.fieldErrs["host"]; !e.Visible() || e.Text == "" {
		t.Fatalf("bad host not shown at its field: %q / %q", e.Text, f.errs.Text)
	}
	if r := get[resourceRow](t, c, "/api/v1/resources/gone"); strconv.Itoa(r.Port) != closed {
		t.Fatalf("testing must not save: port %v", r.Port)
	}
}

// gatedAPI holds every call until the test opens the gate, so the test
// can look at the window while a call is in flight.
type gatedAPI struct {
	API
	gate chan struct{}
}

func (g gatedAPI) Do(ctx context.Context, method, path string, body, out any) error {
	select {
	case <-g.gate:
	case <-ctx.Done():
		return ctx.Err()
	}
	return g.API.Do(ctx, method, path, body, out)
}

func TestSlowCallLocksButtonsAndShowsBusy(t *testing.T) {
	u, c := newTestUI(t)
	gate := make(chan struct{})
	u.api = gatedAPI{API: c, gate: gate}
	p := u.policies
	test.Tap(p.exBtn)
	if !p.exBtn.Disabled() {
		t.Fatal("the button that started a call must be disabled while it runs")
	}
	deadline := time.Now().Add(10 * time.Second)
	for !u.busy.Visible() && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if !u.busy.Visible() {
		t.Fatal("a slow call must show the busy bar")
	}
	close(gate)
	u.Wait()
	if p.exBtn.Disabled() || u.busy.Visible() {
		t.Fatalf("after the call: button disabled=%v busy=%v", p.exBtn.Disabled(), u.busy.Visible())
	}
	if !strings.Contains(p.exOut.Text, "Cannot explain") {
		t.Fatalf("the refusal (no user given) must be on screen: %q", p.exOut.Text)
	}
}

// TestResourceDialogShowsTheProtocolsFields: the dialog offers only what
// the chosen protocol uses (no SSH key or RemoteApp for VNC; ask/portal
// sign-in for RDP only), follows a change of protocol in place, and the
// Protocol choice still opens its menu after the rows changed (the old
// form rebuild left a Select with no canvas).
func TestResourceDialogShowsTheProtocolsFields(t *testing.T) {
	u, _ := newTestUI(t)
	p := u.resources
	p.edit(nil)
	f := u.lastResourceForm
	shown := func(w fyne.CanvasObject) bool {
		// A row is hidden by hiding the box around the widget and its error.
		var box *fyne.Container
		walk(f.grid, func(o fyne.CanvasObject) {
			if c, ok := o.(*fyne.Container); ok && len(c.Objects) == 2 && c.Objects[0] == w {
				box = c
			}
		})
		if box == nil {
			t.Fatalf("no row holds %T", w)
		}
		return box.Visible()
	}
	check := func(proto string, key, app, user, files bool, modes int) {
		t.Helper()
		f.proto.SetSelected(proto)
		if shown(f.key) != key || shown(f.app) != app || shown(f.user) != user || shown(f.files) != files || len(f.cred.Options) != modes {
			t.Fatalf("%s: key %v app %v user %v files %v modes %v", proto, shown(f.key), shown(f.app), shown(f.user), shown(f.files), f.cred.Options)
		}
	}
	check("rdp", false, true, true, true, 3)
	f.cred.SetSelected("ask")
	check("vnc", false, false, false, false, 1)
	if f.cred.Selected != "stored" {
		t.Fatalf("VNC kept credential mode %q", f.cred.Selected)
	}
	check("ssh", true, false, true, true, 1)
	// The Protocol choice opens its menu on the dialog's canvas.
	test.Tap(f.proto)
	if u.win.Canvas().Overlays().Top() == nil {
		t.Fatal("no menu after tapping Protocol")
	}
}
