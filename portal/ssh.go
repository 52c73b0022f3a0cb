package portal

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/gorilla/websocket"

	"portico/service/config"
	"portico/service/relay"
	sshrelay "portico/service/relay/ssh"
	"portico/service/sessions"
	"portico/service/store"
)

func timeNowPlus() time.Time { return time.Now().Add(2 * time.Second) }

// upgrader accepts WebSocket upgrades; the origin was already checked in
// admit, which also knows the CORS origins.
func (p *Portal) upgrader(r *http.Request) *websocket.Upgrader {
	return relay.NewUpgrader(func(origin string) bool { return sameOrigin(r, origin) })
}

// relaySSH serves the xterm.js terminal: the gateway is the SSH client.
func (p *Portal) relaySSH(w http.ResponseWriter, r *http.Request) {
	o, ok := p.admit(w, r, config.ProtocolSSH)
	if !ok {
		return
	}
	cred, err := p.sshCredentials(o.res)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	cols, _ := strconv.Atoi(r.URL.Query().Get("cols"))
	rows, _ := strconv.Atoi(r.URL.Query().Get("rows"))
	if cols < 1 || cols > 1000 {
		cols = 80
	}
	if rows < 1 || rows > 1000 {
		rows = 24
	}
	ws, err := p.upgrader(r).Upgrade(w, r, nil)
	if err != nil {
		return
	}
	p.runSession(o, pageID(r), &wsClient{ws: ws}, func(ctx context.Context, m *sessions.Session) error {
		dctx, dcancel := context.WithTimeout(ctx, 15*time.Second)
		client, err := sshrelay.Dial(dctx, net.JoinHostPort(o.res.Host, strconv.Itoa(o.res.Port)), cred, p.hostKeyPolicy(o.res))
		dcancel()
		if err != nil {
			return sshDialError(err)
		}
		defer client.Close()
		// The host is probed as the browser is pinged: either one that
		// stops answering ends the session with its own reason.
		ctx, stop := context.WithCancelCause(ctx)
		defer stop(nil)
		go func() {
			if err := client.KeepAlive(ctx, p.keepAlive()); err != nil {
				stop(ending(sessions.ReasonHostSilent, err))
			}
		}()
		p.keepWS(ctx, ws)
		// The session's file panel is registered even when file transfer is
		// off, so its requests get "not allowed" rather than "session ended".
		fsess := newFileSession(o, m)
		if files, err := client.Files(o.decision.FileTransfer); err == nil {
			fsess.files = sftpFiles{files}
			defer files.Close()
		} else if !errors.Is(err, sshrelay.ErrDirectionNotAllowed) {
			p.Logger.Warn("SFTP unavailable", "resource", o.res.ID, "err", err)
		}
		defer p.relays.files.put(o.ticket.PortalSession, m.ID(), fsess)()
		ws.WriteJSON(map[string]string{"type": "session", "id": m.ID()})
		err = client.Terminal(ctx, &countingMessages{MessageConn: ws, up: m.Up(), down: m.Down()}, cols, rows)
		if cause := context.Cause(ctx); cause != nil && reasonOf(cause, "") != "" {
			return cause
		}
		if err == nil {
			// The shell exited (the page got its status) or the browser
			// closed the session.
			return ending(sessions.ReasonHostEnded, errors.New("the remote shell exited or the browser closed the session"))
		}
		if errors.Is(err, sshrelay.ErrBrowserLost) {
			return ending(sessions.ReasonNetwork, err)
		}
		return ending(sessions.ReasonHostEnded, err)
	})
}

// sshDialError gives a failed SSH connection its Reason.
func sshDialError(err error) error {
	switch {
	case errors.Is(err, sshrelay.ErrUnreachable):
		return ending(sessions.ReasonHostUnreachable, err)
	case errors.Is(err, sshrelay.ErrAuthFailed):
		return ending(sessions.ReasonCredentials, err)
	case errors.Is(err, sshrelay.ErrHostKeyChanged):
		return ending(sessions.ReasonHostIdentity, err)
	}
	return ending(sessions.ReasonHostUnreachable, err)
}

// countingMessages counts terminal bytes through a MessageConn.
type countingMessages struct {
	sshrelay.MessageConn
	up, down interface{ Add(int64) int64 }
}

// SetReadDeadline lets the terminal stop its reader when it returns.
func (c *countingMessages) SetReadDeadline(t time.Time) error {
	if d, ok := c.MessageConn.(interface{ SetReadDeadline(time.Time) error }); ok {
		return d.SetReadDeadline(t)
	}
	return nil
}

func (c *countingMessages) ReadMessage() (int, []byte, error) {
	t, b, err := c.MessageConn.ReadMessage()
	c.up.Add(int64(len(b)))
	return t, b, err
}

func (c *countingMessages) WriteMessage(t int, b []byte) error {
	c.down.Add(int64(len(b)))
	return c.MessageConn.WriteMessage(t, b)
}

func (p *Portal) sshCredentials(res config.Resource) (sshrelay.Credentials, error) {
	pw, err := p.Secrets.Unseal(res.Credentials.Password)
	if err != nil {
		return sshrelay.Credentials{}, fmt.Errorf("the gateway cannot read this resource's stored password; ask the administrator to set it again")
	}
	key, err := p.Secrets.Unseal(res.Credentials.PrivateKey)
	if err != nil {
		return sshrelay.Credentials{}, fmt.Errorf("the gateway cannot read this resource's stored key; ask the administrator to set it again")
	}
	return sshrelay.Credentials{User: res.Credentials.Username, Password: pw, PrivateKeyPEM: []byte(key)}, nil
}

// hostKeyPolicy pins the host key on first use by storing it with the
// resource (the admin sees it), and refuses a changed key.
func (p *Portal) hostKeyPolicy(res config.Resource) sshrelay.HostKeyPolicy {
	return sshrelay.HostKeyPolicy{Pinned: res.HostKey, OnFirstUse: func(fp string) error {
		return p.pinOnFirstUse(res.ID, "SSH host key", fp)
	}}
}

// pinOnFirstUse stores fp as the resource's pinned host key or certificate
// fingerprint and audits it. It fails if another connection pinned a
// different one meanwhile.
func (p *Portal) pinOnFirstUse(resID, what, fp string) error {
	return p.Store.Apply(p.Live, config.DefaultGatewayID, func(t *store.Tx) error {
		cur, err := t.Resource(resID)
		if err != nil {
			return err
		}
		if cur.HostKey != "" && cur.HostKey != fp {
			return fmt.Errorf("%s changed while connecting", what)
		}
		cur.HostKey = fp
		if err := t.PutResource(cur); err != nil {
			return err
		}
		return t.AppendAudit(store.Event{Type: "hostkey.pinned", Resource: resID, Detail: "pinned " + what + " " + fp + " on first use"})
	})
}
