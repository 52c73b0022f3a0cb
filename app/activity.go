package main

import (
	"fmt"
	"net/url"
	"strings"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/widget"

	"portico/service/sessions"
	"portico/service/store"
)

// activityPage shows live sessions (with disconnect) and the audit log.
type activityPage struct {
	u        *UI
	sessions []sessions.Info
	events   []store.Event
	slist    *widget.List
	elist    *widget.List
	ssel     int
	fUser    *keyEntry
	fType    *keyEntry
	filter   *widget.Button
	sTitle   *widget.Label
	content  fyne.CanvasObject
}

func newActivityPage(u *UI) *activityPage {
	p := &activityPage{u: u, ssel: -1}
	p.slist = widget.NewList(func() int { return len(p.sessions) }, func() fyne.CanvasObject { return widget.NewLabel("session") },
		func(i widget.ListItemID, o fyne.CanvasObject) {
			s := p.sessions[i]
			o.(*widget.Label).SetText(sessionLine(s))
		})
	p.slist.OnSelected = func(i widget.ListItemID) { p.ssel = i }
	// Monospace keeps the audit log's columns aligned.
	p.elist = widget.NewList(func() int { return len(p.events) }, func() fyne.CanvasObject {
		return widget.NewLabelWithStyle("event", fyne.TextAlignLeading, fyne.TextStyle{Monospace: true})
	},
		func(i widget.ListItemID, o fyne.CanvasObject) {
			e := p.events[i]
			o.(*widget.Label).SetText(eventLine(e))
		})
	p.fUser, p.fType = newKeyEntry(), newKeyEntry()
	p.fUser.OnSubmitted = func(string) { p.refresh() }
	p.fType.OnSubmitted = func(string) { p.refresh() }
	p.fUser.SetPlaceHolder("user")
	p.fType.SetPlaceHolder("event, e.g. signin. or session.start")
	var disconnect *widget.Button
	disconnect = widget.NewButton("Disconnect", func() {
		if p.ssel >= 0 && p.ssel < len(p.sessions) {
			p.u.call("DELETE", "/api/v1/sessions/"+p.sessions[p.ssel].ID, nil, nil, func(err error) {
				if err != nil {
					p.u.showError("Not disconnected", err)
				}
				p.refresh()
			}, disconnect)
		}
	})
	p.filter = widget.NewButton("Filter", p.refresh)
	p.sTitle = widget.NewLabelWithStyle("Live sessions", fyne.TextAlignLeading, fyne.TextStyle{Bold: true})
	filter := container.NewGridWithColumns(3, p.fUser, p.fType, p.filter)
	p.content = container.NewVSplit(
		container.NewBorder(container.NewHBox(p.sTitle, disconnect, widget.NewButton("Refresh", p.refresh)), nil, nil, nil, p.slist),
		container.NewBorder(container.NewVBox(widget.NewLabelWithStyle("Audit log", fyne.TextAlignLeading, fyne.TextStyle{Bold: true}), filter), nil, nil, nil, p.elist),
	)
	go p.autoRefresh()
	return p
}

// autoRefresh keeps the lists current while the window is open.
func (p *activityPage) autoRefresh() {
	for range time.Tick(10 * time.Second) {
		fyne.Do(func() {
			if p.u.api != nil && p.u.tabs.SelectedIndex() == 6 {
				p.refresh()
			}
		})
	}
}

func (p *activityPage) refresh() {
	var ss []sessions.Info
	var ev []store.Event
	p.u.call("GET", "/api/v1/sessions", nil, &ss, func(err error) {
		p.u.loaded("sessions", "the live sessions", err)
		if err == nil {
			p.sessions = ss
			p.sTitle.SetText(fmt.Sprintf("Live sessions (%d)", len(ss)))
			p.slist.Refresh()
		}
	})
	q := url.Values{}
	if s := strings.TrimSpace(p.fUser.Text); s != "" {
		q.Set("user", s)
	}
	if s := strings.TrimSpace(p.fType.Text); s != "" {
		q.Set("type", s)
	}
	q.Set("limit", "500")
	p.u.call("GET", "/api/v1/audit?"+q.Encode(), nil, &ev, func(err error) {
		p.u.loaded("audit", "the audit log", err)
		if err == nil {
			p.events = ev
			p.elist.Refresh()
		}
	}, p.filter)
}

// eventLine is one audit record as the log shows it. An aggregated
// refusal says so: how many, from where, and the minute it covers.
func eventLine(e store.Event) string {
	line := fmt.Sprintf("%s  %-16s %-10s %s %s", e.Time.Local().Format("2006-01-02 15:04:05"), e.Type, e.User, e.Resource, e.Detail)
	if e.Count > 0 {
		until := "now (still counting)"
		if !e.Until.IsZero() {
			until = e.Until.Local().Format("15:04:05")
		}
		line = fmt.Sprintf("%s  %-16s ×%d from %s, aggregated until %s: %s", e.Time.Local().Format("2006-01-02 15:04:05"), e.Type, e.Count, e.ClientIP, until, e.Detail)
	}
	return line
}

// sessionLine is one live session in the list: who, what, since when,
// the stream's bytes, and the files moved each way and refused.
func sessionLine(s sessions.Info) string {
	line := fmt.Sprintf("%s → %s (%s) from %s since %s — %d B up, %d B down", s.User, s.Resource, s.Protocol, s.ClientIP,
		s.Started.Local().Format("15:04:05"), s.BytesUp, s.BytesDown)
	if s.FilesUp > 0 || s.FilesDown > 0 || s.Refused > 0 {
		line += fmt.Sprintf("; files %d B up, %d B down, %d refused", s.FilesUp, s.FilesDown, s.Refused)
	}
	return line
}

// withAffected asks the gateway how many live sessions an action would
// close (query: user=NAME or resource=ID) and passes the sentence to put
// in its confirmation ("" when none would).
func (u *UI) withAffected(query string, then func(note string)) {
	var out struct{ Count int }
	u.call("GET", "/api/v1/sessions/affected?"+query, nil, &out, func(err error) {
		switch {
		case err != nil:
			then("")
		case out.Count == 1:
			then("\n\n1 live session will close.")
		case out.Count > 1:
			then(fmt.Sprintf("\n\n%d live sessions will close.", out.Count))
		default:
			then("")
		}
	})
}
