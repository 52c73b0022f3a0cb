package portal

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"path"
	"regexp"
	"strconv"
	"strings"
	"sync"

	"portico/service/relay/rdp/rdpdr"
	sshrelay "portico/service/relay/ssh"
	"portico/service/sessions"
	"portico/service/store"
)

// The session page's file panel, one API for every protocol that has
// file transfer: SSH sessions reach the host's files through SFTP, RDP
// sessions the gateway's drive of the session (rdpdr.Drive). The store
// behind a session enforces the directions; the handlers here answer,
// count and audit.

// MaxUpload caps one uploaded file.
const MaxUpload = 2 << 30

// errDirection is what every file store's direction refusal matches.
func errDirection(err error) bool {
	return errors.Is(err, sshrelay.ErrDirectionNotAllowed) || errors.Is(err, rdpdr.ErrDirectionNotAllowed)
}

// fileStore is one session's files as the panel sees them.
type fileStore interface {
	List(dir string) ([]fileEntry, error)
	Upload(ctx context.Context, dir, name string, r io.Reader, max int64) (int64, error)
	Download(ctx context.Context, name string) (io.ReadCloser, int64, error)
	// Offers lists files the host made for the user since offer after.
	Offers(after int) ([]rdpdr.Offer, int)
}

// sftpFiles is an SSH session's home folder.
type sftpFiles struct{ *sshrelay.Files }

func (f sftpFiles) List(dir string) ([]fileEntry, error) {
	list, err := f.Files.List(dir)
	return entries(list, err, func(e sshrelay.Entry) fileEntry { return fileEntry{Name: e.Name, Size: e.Size, Dir: e.IsDir} })
}

// entries converts a store's listing into what the page sees.
func entries[T any](list []T, err error, conv func(T) fileEntry) ([]fileEntry, error) {
	if err != nil {
		return nil, err
	}
	out := make([]fileEntry, 0, len(list))
	for _, e := range list {
		out = append(out, conv(e))
	}
	return out, nil
}

func (sftpFiles) Offers(int) ([]rdpdr.Offer, int) { return nil, 0 }

// driveFiles is an RDP session's Portico drive.
type driveFiles struct{ *rdpdr.Drive }

func (f driveFiles) List(dir string) ([]fileEntry, error) {
	list, err := f.Drive.List(dir)
	return entries(list, err, func(e rdpdr.Entry) fileEntry { return fileEntry{Name: e.Name, Size: e.Size, Dir: e.IsDir} })
}

// fileSession ties a live session's files to the portal user.
type fileSession struct {
	user, portalSession string
	resource            string
	clientIP            string
	files               fileStore // nil: file transfer off or unavailable
	sess                *sessions.Session
}

func newFileSession(o *opened, sess *sessions.Session) *fileSession {
	return &fileSession{user: o.ticket.User, portalSession: o.ticket.PortalSession, resource: o.res.ID, clientIP: o.ticket.ClientIP, sess: sess}
}

// fileSessions maps live sessions to their files, by portal session and
// ID, so the page's file panel works only while its session lives and
// only for the portal session that opened it.
type fileSessions struct {
	mu sync.Mutex
	m  map[string]*fileSession
}

func newFileSessions() *fileSessions { return &fileSessions{m: map[string]*fileSession{}} }

func (f *fileSessions) put(portalSession, id string, fs *fileSession) func() {
	k := portalSession + "/" + id
	f.mu.Lock()
	f.m[k] = fs
	f.mu.Unlock()
	return func() {
		f.mu.Lock()
		if f.m[k] == fs {
			delete(f.m, k)
		}
		f.mu.Unlock()
	}
}

func (f *fileSessions) get(id string, s *Session) (*fileSession, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fs, ok := f.m[s.ID()+"/"+id]
	return fs, ok
}

// pageIDPattern is what an RDP page may name its file panel with: it
// picks a random ID, sends it with the relay request and uses it for the
// file API (the RDP stream has no room to tell it the session's ID).
var pageIDPattern = regexp.MustCompile(`^[A-Za-z0-9_-]{16,64}$`)

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
		fs.sess.Refuse()
		p.audit(store.Event{Type: "file.refused", User: s.User, ClientIP: fs.clientIP, Resource: fs.resource, Detail: r.Method + " " + r.URL.Path + ": file transfer is not available in this session"})
		writeJSONError(w, http.StatusForbidden, "File transfer is not allowed (or not available) for this session.")
		return nil, nil
	}
	return s, fs
}

// refused answers and audits a refused transfer.
func (p *Portal) fileRefused(w http.ResponseWriter, s *Session, fs *fileSession, what, name string, err error) {
	code, msg := http.StatusBadGateway, what+" failed: "+err.Error()
	switch {
	case errDirection(err):
		code, msg = http.StatusForbidden, what+" refused: file transfer in this direction is not allowed for this session."
		fs.sess.Refuse()
	case errors.Is(err, rdpdr.ErrQuota):
		code, msg = http.StatusRequestEntityTooLarge, what+" refused: the file does not fit in this session's drive. Delete files there or upload a smaller one."
	case errors.Is(err, rdpdr.ErrBadName):
		code, msg = http.StatusBadRequest, what+" refused: that file name cannot be used."
	}
	p.audit(store.Event{Type: "file.refused", User: s.User, ClientIP: fs.clientIP, Resource: fs.resource, Detail: fmt.Sprintf("%s %q: %v", strings.ToLower(what), name, err)})
	writeJSONError(w, code, msg)
}

func (p *Portal) filesList(w http.ResponseWriter, r *http.Request) {
	s, fs := p.fileSession(w, r)
	if fs == nil {
		return
	}
	dir := r.URL.Query().Get("dir")
	if dir == "" {
		dir = "."
	}
	list, err := fs.files.List(dir)
	if err != nil {
		if errDirection(err) {
			p.fileRefused(w, s, fs, "Listing", dir, err)
			return
		}
		writeJSONError(w, http.StatusBadGateway, "Cannot list the files: "+err.Error())
		return
	}
	writeJSON(w, http.StatusOK, list)
}

// filesOffers lists the files the host put in the drive's Download folder
// since the page's last look (after), so the page offers them at once.
func (p *Portal) filesOffers(w http.ResponseWriter, r *http.Request) {
	_, fs := p.fileSession(w, r)
	if fs == nil {
		return
	}
	after, _ := strconv.Atoi(r.URL.Query().Get("after"))
	offers, next := fs.files.Offers(after)
	if offers == nil {
		offers = []rdpdr.Offer{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"offers": offers, "next": next})
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
	if dir == "" {
		dir = "."
	}
	n, err := fs.files.Upload(r.Context(), dir, name, http.MaxBytesReader(w, r.Body, MaxUpload), MaxUpload)
	if err != nil {
		p.fileRefused(w, s, fs, "Upload", name, err)
		return
	}
	fs.sess.FilesUp().Add(n)
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
		p.fileRefused(w, s, fs, "Download", name, err)
		return
	}
	defer rc.Close()
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Content-Length", strconv.FormatInt(size, 10))
	w.Header().Set("Content-Disposition", `attachment; filename="`+strings.NewReplacer(`"`, "", "\\", "", "\r", "", "\n", "").Replace(path.Base(name))+`"`)
	n, err := io.Copy(w, rc)
	fs.sess.FilesDown().Add(n)
	detail := fmt.Sprintf("%s (%d bytes)", name, n)
	if err != nil {
		detail += ": interrupted: " + err.Error()
	}
	p.audit(store.Event{Type: "file.download", User: s.User, ClientIP: fs.clientIP, Resource: fs.resource, Detail: detail})
}
