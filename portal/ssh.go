package portal

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"path"
	"strconv"
	"strings"
	"sync"
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
func (p *Portal) upgrader() *websocket.Upgrader {
	return relay.NewUpgrader(func(string) bool { return true })
}

// MaxUpload caps one uploaded file.
const MaxUpload = 2 << 30

// fileSession ties an SSH session's SFTP handle to the portal user.
type fileSession struct {
	user, portalSession string
	resource            string
	clientIP            string
	files               *sshrelay.Files
	meter               *sessions.Session // the live session, which counts refusals
}

// fileSessions maps live SSH session IDs to their SFTP handles, so the
// page's file panel works only while its session lives and only for its
// own user.
type fileSessions struct {
	mu sync.Mutex
	m  map[string]*fileSession
}

func newFileSessions() *fileSessions { return &fileSessions{m: map[string]*fileSession{}} }

func (f *fileSessions) put(id string, fs *fileSession) func() {
	f.mu.Lock()
	f.m[id] = fs
	f.mu.Unlock()
	return func() {
		f.mu.Lock()
		delete(f.m, id)
		f.mu.Unlock()
	}
}

func (f *fileSessions) get(id string, s *Session) (*fileSession, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fs, ok := f.m[id]
	if !ok || fs.portalSession != s.ID() {
		return nil, false
	}
	return fs, true
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
	ws, err := p.upgrader().Upgrade(w, r, nil)
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
		fsess := &fileSession{user: o.ticket.User, portalSession: o.ticket.PortalSession, resource: o.res.ID, clientIP: o.ticket.ClientIP, meter: m}
		if files, err := client.Files(o.decision.FileTransfer); err == nil {
			fsess.files = files
			defer files.Close()
		} else if !errors.Is(err, sshrelay.ErrDirectionNotAllowed) {
			p.Logger.Warn("SFTP unavailable", "resource", o.res.ID, "err", err)
		}
		defer p.relays.files.put(m.ID(), fsess)()
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

// fileEntry is a file as the page sees it.
type fileEntry struct {
	Name string `json:"name"`
	Size int64  `json:"size"`
	Dir  bool   `json:"dir"`
}

func (p *Portal) fileSession(w http.ResponseWriter, r *http.Request) (*Session, *fileSession) {
	s := p.requireSession(w, r)
	if s == nil {
		return nil, nil
	}
	fs, ok := p.relays.files.get(r.PathValue("sid"), s)
	if !ok {
		writeJSONError(w, http.StatusNotFound, "This session has ended: reconnect to transfer files.")
		return nil, nil
	}
	if fs.files == nil {
		fs.meter.Refuse()
		p.audit(store.Event{Type: "file.refused", User: s.User, ClientIP: fs.clientIP, Resource: fs.resource, Detail: r.Method + " " + r.URL.Path + ": file transfer is not available in this session"})
		writeJSONError(w, http.StatusForbidden, "File transfer is not allowed (or not available) for this session.")
		return nil, nil
	}
	return s, fs
}

func (p *Portal) filesList(w http.ResponseWriter, r *http.Request) {
	_, fs := p.fileSession(w, r)
	if fs == nil {
		return
	}
	// dir is relative to the home folder; the SFTP server decides what
	// the account may read, as it does for the same user's shell.
	list, err := fs.files.List(r.URL.Query().Get("dir"))
	if err != nil {
		writeJSONError(w, http.StatusBadGateway, "Cannot list files on the host: "+err.Error())
		return
	}
	out := make([]fileEntry, 0, len(list))
	for _, e := range list {
		out = append(out, fileEntry{Name: e.Name, Size: e.Size, Dir: e.IsDir})
	}
	writeJSON(w, http.StatusOK, out)
}

func (p *Portal) filesUpload(w http.ResponseWriter, r *http.Request) {
	s, fs := p.fileSession(w, r)
	if fs == nil {
		return
	}
	if !checkCSRF(r, s.CSRF) {
		writeJSONError(w, http.StatusForbidden, "This request did not come from the session page.")
		return
	}
	name := r.URL.Query().Get("name")
	dir := r.URL.Query().Get("dir")
	n, err := fs.files.Upload(r.Context(), dir, name, http.MaxBytesReader(w, r.Body, MaxUpload), MaxUpload)
	if err != nil {
		code := http.StatusBadGateway
		if errors.Is(err, sshrelay.ErrDirectionNotAllowed) {
			code = http.StatusForbidden
			fs.meter.Refuse()
		}
		p.audit(store.Event{Type: "file.refused", User: s.User, ClientIP: fs.clientIP, Resource: fs.resource, Detail: "upload " + name + ": " + err.Error()})
		writeJSONError(w, code, "Upload refused: "+err.Error())
		return
	}
	p.audit(store.Event{Type: "file.upload", User: s.User, ClientIP: fs.clientIP, Resource: fs.resource, Detail: fmt.Sprintf("%s (%d bytes)", name, n)})
	writeJSON(w, http.StatusOK, map[string]any{"name": name, "size": n})
}

func (p *Portal) filesDownload(w http.ResponseWriter, r *http.Request) {
	s, fs := p.fileSession(w, r)
	if fs == nil {
		return
	}
	name := r.URL.Query().Get("name")
	rc, size, err := fs.files.Download(r.Context(), name)
	if err != nil {
		code := http.StatusBadGateway
		if errors.Is(err, sshrelay.ErrDirectionNotAllowed) {
			code = http.StatusForbidden
			fs.meter.Refuse()
		}
		p.audit(store.Event{Type: "file.refused", User: s.User, ClientIP: fs.clientIP, Resource: fs.resource, Detail: "download " + name + ": " + err.Error()})
		writeJSONError(w, code, "Download refused: "+err.Error())
		return
	}
	defer rc.Close()
	p.audit(store.Event{Type: "file.download", User: s.User, ClientIP: fs.clientIP, Resource: fs.resource, Detail: fmt.Sprintf("%s (%d bytes)", name, size)})
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Content-Length", strconv.FormatInt(size, 10))
	w.Header().Set("Content-Disposition", `attachment; filename="`+strings.NewReplacer(`"`, "", "\\", "", "\r", "", "\n", "").Replace(path.Base(name))+`"`)
	io.Copy(w, rc)
}
