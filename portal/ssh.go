package portal

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/gorilla/websocket"

	"portico/service/config"
	"portico/service/relay"
	sshrelay "portico/service/relay/ssh"
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
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var once sync.Once
	sess, end := p.register(o, func(reason string) { once.Do(func() { closeWS(ws, websocket.CloseGoingAway, reason); cancel() }) })
	dctx, dcancel := context.WithTimeout(ctx, 15*time.Second)
	client, err := sshrelay.Dial(dctx, net.JoinHostPort(o.res.Host, strconv.Itoa(o.res.Port)), cred, p.hostKeyPolicy(o.res))
	dcancel()
	if err != nil {
		ws.WriteJSON(map[string]string{"type": "error", "message": err.Error()})
		closeWS(ws, websocket.CloseTryAgainLater, err.Error())
		end(err)
		return
	}
	defer client.Close()
	// The session's file panel is registered even when file transfer is
	// off, so its requests get "not allowed" rather than "session ended".
	fsess := newFileSession(o, sess)
	if files, err := client.Files(o.decision.FileTransfer); err == nil {
		fsess.files = sftpFiles{files}
		defer files.Close()
	} else if !errors.Is(err, sshrelay.ErrDirectionNotAllowed) {
		p.Logger.Warn("SFTP unavailable", "resource", o.res.ID, "err", err)
	}
	defer p.relays.files.put(o.ticket.PortalSession, sess.ID(), fsess)()
	ws.WriteJSON(map[string]string{"type": "session", "id": sess.ID()})
	err = client.Terminal(ctx, &countingMessages{MessageConn: ws, up: sess.Up(), down: sess.Down()}, cols, rows)
	if err != nil && !errors.Is(err, context.Canceled) {
		closeWS(ws, websocket.CloseNormalClosure, err.Error())
	} else {
		closeWS(ws, websocket.CloseNormalClosure, "session ended")
	}
	end(err)
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
