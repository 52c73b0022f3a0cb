package portal

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/websocket"

	"portico/service/relay"
	"portico/service/sessions"
	"portico/service/store"
)

// DefaultKeepAlive is how often the gateway pings a browser's WebSocket
// and probes an SSH host. A peer that misses pings for 2.5 intervals is
// dead, so 20 s frees a vanished browser's session and host connection
// within 50 s (the product promises 60 s).
const DefaultKeepAlive = 20 * time.Second

// endError is an error that knows the Reason it ends a session with.
type endError struct {
	reason sessions.Reason
	err    error
}

func (e *endError) Error() string { return e.err.Error() }
func (e *endError) Unwrap() error { return e.err }

// ending marks err as ending the session for reason.
func ending(reason sessions.Reason, err error) error {
	if err == nil {
		return nil
	}
	return &endError{reason: reason, err: err}
}

// reasonOf is the Reason an error carries, or def.
func reasonOf(err error, def sessions.Reason) sessions.Reason {
	var e *endError
	if errors.As(err, &e) {
		return e.reason
	}
	return def
}

// client is the user's side of a session as the runner drives it: a
// browser WebSocket or a native tunnel.
type client interface {
	// end tells the client why the session ends, if it can, and closes it.
	end(reason sessions.Reason)
}

// wsClient is a browser session's WebSocket: the close frame carries the
// reason's code and name, so the page can tell a sign-out from a network
// drop.
type wsClient struct {
	ws   *websocket.Conn
	once sync.Once
}

func (c *wsClient) end(reason sessions.Reason) {
	c.once.Do(func() { closeWS(c.ws, reason.Code(), string(reason)) })
}

// tunnelClient is a native client's tunnel; it cannot be told why.
type tunnelClient struct{ c io.Closer }

func (c tunnelClient) end(sessions.Reason) { c.c.Close() }

// ended remembers why recent sessions ended, by the page's connection ID,
// so a session page whose client library hides the WebSocket close frame
// (noVNC, IronRDP) can ask. Entries live for endedTTL.
type ended struct {
	mu sync.Mutex
	m  map[string]endedEntry
}

type endedEntry struct {
	reason sessions.Reason
	at     time.Time
}

const (
	endedTTL = 10 * time.Minute
	// endedMax bounds the map whatever the pages send.
	endedMax = 10000
)

func newEnded() *ended { return &ended{m: map[string]endedEntry{}} }

// validPageID accepts the IDs the page makes (crypto.randomUUID).
func validPageID(id string) bool {
	if len(id) < 16 || len(id) > 64 {
		return false
	}
	for _, c := range id {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

// record keeps the first reason given for page.
func (e *ended) record(page string, reason sessions.Reason) {
	if !validPageID(page) {
		return
	}
	now := time.Now()
	e.mu.Lock()
	defer e.mu.Unlock()
	if _, ok := e.m[page]; ok {
		return
	}
	if len(e.m) >= endedMax {
		for k, v := range e.m {
			if now.Sub(v.at) > endedTTL || len(e.m) >= endedMax {
				delete(e.m, k)
			}
		}
	}
	e.m[page] = endedEntry{reason: reason, at: now}
}

// get returns the reason recorded for page, if any.
func (e *ended) get(page string) (sessions.Reason, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	v, ok := e.m[page]
	if !ok || time.Since(v.at) > endedTTL {
		return "", false
	}
	return v.reason, true
}

// keepAlive is the ping interval in use.
func (p *Portal) keepAlive() time.Duration {
	if p.KeepAlive > 0 {
		return p.KeepAlive
	}
	return DefaultKeepAlive
}

// serveFunc moves one session's bytes until it ends; the Session is the
// meter every part of it reports bytes and refusals to. ctx ends when the
// session is ended from outside (sign-out, admin, identity change), with
// the Reason as its cause.
type serveFunc func(ctx context.Context, m *sessions.Session) error

// runSession is the one session runner every protocol uses, browser and
// native alike: it registers the live session, audits its start, runs
// serve, and when it ends — by itself or ended from outside — records
// why for the page, tells the client, unregisters and audits the end with
// the byte and refusal counts.
func (p *Portal) runSession(o *opened, page string, c client, serve serveFunc) error {
	ctx, cancel := context.WithCancelCause(context.Background())
	defer cancel(nil)
	t := o.ticket
	end := func(reason sessions.Reason) {
		// Recorded before the client is closed: the page asks right after.
		p.ended.record(page, reason)
		cancel(ending(reason, errors.New("session ended: "+string(reason))))
		c.end(reason)
	}
	sess, remove := p.Sessions.Add(sessions.Info{User: t.User, Resource: o.res.ID, Protocol: string(o.res.Protocol), Via: o.via,
		ClientIP: t.ClientIP, ReportedIP: t.ReportedIP, PortalSignIn: t.PortalSession}, end)
	kind := string(o.res.Protocol)
	if o.via != "" {
		kind = "native " + kind + " (" + o.via + ")"
	}
	p.audit(store.Event{Type: "session.start", User: t.User, ClientIP: t.ClientIP, ReportedIP: t.ReportedIP, Resource: o.res.ID,
		Detail: fmt.Sprintf("%s session %s; %s", kind, sess.ID(), strings.Join(o.decision.Explanation, "; "))})

	defer p.watchSignIn(t.PortalSession, end)()
	err := serve(ctx, sess)
	reason := reasonOf(context.Cause(ctx), "")
	if reason == "" {
		reason = reasonOf(err, sessions.ReasonHostEnded)
	}
	end(reason)
	remove()
	detail := fmt.Sprintf("session %s ended (%s): %d bytes up, %d bytes down, %d transfers refused", sess.ID(), reason,
		sess.Up().Load(), sess.Down().Load(), sess.Refused())
	if err != nil && !errors.Is(err, context.Canceled) {
		detail += ": " + err.Error()
	}
	p.audit(store.Event{Type: "session.end", User: t.User, ClientIP: t.ClientIP, Resource: o.res.ID, Detail: detail})
	return err
}

// browserStream upgrades to the session's WebSocket with keep-alive
// pings: a browser that vanishes without closing (a laptop lid shut)
// misses them and its session ends within 2.5 intervals.
func (p *Portal) keepWS(ctx context.Context, ws *websocket.Conn) {
	relay.KeepAlive(ctx, ws, p.keepAlive())
}

// hostSide classifies how the host side of a relay ended: it counts the
// bytes into the session's meter and remembers the host's own read
// error (not the one closing it causes), so the runner can tell "the
// host ended the session" and "the host stopped answering" from "the
// browser went away".
type hostSide struct {
	countingConn
	mu  sync.Mutex
	err error
}

func newHostSide(c net.Conn, m *sessions.Session) *hostSide {
	return &hostSide{countingConn: countingConn{Conn: c, up: m.Up(), down: m.Down()}}
}

func (h *hostSide) Read(b []byte) (int, error) {
	n, err := h.countingConn.Read(b)
	if err != nil && !errors.Is(err, net.ErrClosed) {
		h.mu.Lock()
		if h.err == nil {
			h.err = err
		}
		h.mu.Unlock()
	}
	return n, err
}

// reason is why the relay ended, given the relay's result: the host's
// own end first, then the browser's.
func (h *hostSide) reason(relayErr error) error {
	h.mu.Lock()
	herr := h.err
	h.mu.Unlock()
	switch {
	case herr != nil && (errors.Is(herr, os.ErrDeadlineExceeded) || isTimeout(herr)):
		return ending(sessions.ReasonHostSilent, fmt.Errorf("host stopped answering: %w", herr))
	case herr != nil:
		return ending(sessions.ReasonHostEnded, fmt.Errorf("host ended the connection: %w", herr))
	case relayErr != nil:
		return ending(sessions.ReasonNetwork, relayErr)
	}
	return ending(sessions.ReasonNetwork, errors.New("the browser closed the connection"))
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// signInCheck is how often a live session looks at its portal sign-in.
const signInCheck = time.Minute

// watchSignIn ends the session with ReasonSignInExpired when the portal
// sign-in it was opened from ends (expired, or removed elsewhere). A live
// session is the user's activity, so each look also keeps the sign-in's
// idle timer from running out while the user works in the session. The
// look runs from a timer, not a goroutine of its own. The returned
// function stops watching.
func (p *Portal) watchSignIn(id string, end func(sessions.Reason)) func() {
	if id == "" {
		return func() {}
	}
	var mu sync.Mutex
	stopped := false
	var t *time.Timer
	mu.Lock()
	t = time.AfterFunc(signInCheck, func() {
		if p.sessions.ByID(id) == nil {
			end(sessions.ReasonSignInExpired)
			return
		}
		mu.Lock()
		if !stopped {
			t.Reset(signInCheck)
		}
		mu.Unlock()
	})
	mu.Unlock()
	return func() {
		mu.Lock()
		stopped = true
		t.Stop()
		mu.Unlock()
	}
}
