package rdpdr

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"portico/service/config"
)

// DownloadDir is the drive folder whose new files the page offers to the
// user as soon as the host has written them.
const DownloadDir = "Download"

var (
	// ErrDirectionNotAllowed: the session's file-transfer set does not
	// allow this direction.
	ErrDirectionNotAllowed = errors.New("file transfer in this direction is not allowed")
	// ErrQuota: the file would not fit in the session's quota or on the
	// gateway's disk.
	ErrQuota = errors.New("not enough room in this session's drive")
	// ErrBadName: a file name the drive does not accept.
	ErrBadName = errors.New("invalid file name")
)

// Drive is one session's folder on the gateway, served to the host as
// the Portico drive and to the page as the session's files. Every access
// goes through an os.Root, so no name, ".." or link reaches outside it.
// Make it with NewDrive; Close removes the folder.
type Drive struct {
	dir   string   // the session's folder: drive/ and tmp/ below it
	top   *os.Root // dir
	root  *os.Root // dir/drive: what the host sees
	quota int64
	// upload: the user may put files in (client-to-server); download:
	// the host may write and the user fetch (server-to-client).
	upload, download bool

	used atomic.Int64 // bytes in the drive and in unfinished uploads
	seq  atomic.Int64 // names temporary upload files

	mu      sync.Mutex
	offered []Offer // host-written files in Download, newest last
	// Meter counts what crossed and what was refused; set before use.
	Meter Meter
}

// Meter receives the drive's transfers: bytes each way and refusals.
// Nil fields are skipped.
type Meter struct {
	// Up counts bytes the host read of what the user put in;
	// Down counts bytes the host wrote into the drive.
	Up, Down *atomic.Int64
	// Refused is called once for each host operation the direction set
	// refused (what, with the name).
	Refused func(what string)
}

// Offer is a file the host wrote into the Download folder.
type Offer struct {
	Name string    `json:"name"` // path in the drive, with forward slashes
	Size int64     `json:"size"`
	When time.Time `json:"when"`
}

// Entry is a file or folder in the drive, as the page lists it.
type Entry struct {
	Name  string
	Size  int64
	IsDir bool
}

// NewDrive creates the session's folder dir (which must not exist) with
// the drive and its Download folder, for the file-transfer set t (which
// must not be disabled) and a quota in bytes.
func NewDrive(dir string, t config.Transfer, quota int64) (*Drive, error) {
	if !t.ClientToServer() && !t.ServerToClient() {
		return nil, fmt.Errorf("drive for %q: %w", t, ErrDirectionNotAllowed)
	}
	if err := os.MkdirAll(filepath.Dir(dir), 0o700); err != nil {
		return nil, fmt.Errorf("drive folder: %w", err)
	}
	if err := os.Mkdir(dir, 0o700); err != nil {
		return nil, fmt.Errorf("drive folder: %w", err)
	}
	d := &Drive{dir: dir, quota: quota, upload: t.ClientToServer(), download: t.ServerToClient()}
	fail := func(err error) (*Drive, error) {
		d.Close()
		return nil, fmt.Errorf("drive folder: %w", err)
	}
	var err error
	if d.top, err = os.OpenRoot(dir); err != nil {
		return fail(err)
	}
	for _, sub := range []string{"drive", "tmp", "drive/" + DownloadDir} {
		if err := d.top.Mkdir(sub, 0o700); err != nil {
			return fail(err)
		}
	}
	if d.root, err = d.top.OpenRoot("drive"); err != nil {
		return fail(err)
	}
	return d, nil
}

// Close removes the folder and everything in it.
func (d *Drive) Close() error {
	if d.root != nil {
		d.root.Close()
	}
	if d.top != nil {
		d.top.Close()
	}
	if err := os.RemoveAll(d.dir); err != nil {
		return fmt.Errorf("remove drive folder: %w", err)
	}
	return nil
}

// CanUpload and CanDownload say which directions the session allows.
func (d *Drive) CanUpload() bool   { return d.upload }
func (d *Drive) CanDownload() bool { return d.download }

// Used is the bytes the drive holds; Quota its limit.
func (d *Drive) Used() int64  { return d.used.Load() }
func (d *Drive) Quota() int64 { return d.quota }

// reserve claims n more bytes of the quota (and of the disk).
func (d *Drive) reserve(n int64) bool {
	if n <= 0 {
		d.used.Add(n)
		return true
	}
	for {
		u := d.used.Load()
		if u+n > d.quota || n > freeSpace(d.dir) {
			return false
		}
		if d.used.CompareAndSwap(u, u+n) {
			return true
		}
	}
}

// pageName checks a name or path from the page ("Download/a.txt") and
// returns it as a clean relative path.
func pageName(p string) (string, error) {
	p = strings.Trim(strings.ReplaceAll(p, `\`, "/"), "/")
	if p == "" || p == "." {
		return ".", nil
	}
	var parts []string
	for _, c := range strings.Split(p, "/") {
		if _, err := splitPath(c, false); err != nil || c == "" || strings.ContainsRune(c, 0) {
			return "", fmt.Errorf("%w: %q", ErrBadName, p)
		}
		parts = append(parts, c)
	}
	return path.Join(parts...), nil
}

// List lists the folder dir of the drive ("." is the top). What the host
// wrote is shown only when server-to-client is allowed.
func (d *Drive) List(dir string) ([]Entry, error) {
	if !d.download {
		return nil, fmt.Errorf("list files: %w", ErrDirectionNotAllowed)
	}
	rel, err := pageName(dir)
	if err != nil {
		return nil, err
	}
	f, err := d.root.Open(rel)
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", rel, hideDir(err))
	}
	defer f.Close()
	infos, err := f.Readdir(-1)
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", rel, hideDir(err))
	}
	out := make([]Entry, 0, len(infos))
	for _, fi := range infos {
		if !fi.Mode().IsRegular() && !fi.IsDir() {
			continue
		}
		out = append(out, Entry{Name: fi.Name(), Size: fi.Size(), IsDir: fi.IsDir()})
	}
	sort.Slice(out, func(a, b int) bool { return out[a].Name < out[b].Name })
	return out, nil
}

// Upload stores what r yields (at most max bytes) as dir/name in the
// drive. It writes to a temporary file outside the drive and moves it in
// only when it is whole, so the host never sees half a file and a
// failure (quota, disk, a broken upload) leaves nothing behind.
func (d *Drive) Upload(ctx context.Context, dir, name string, r io.Reader, max int64) (int64, error) {
	if !d.upload {
		return 0, fmt.Errorf("upload %q: %w", name, ErrDirectionNotAllowed)
	}
	if strings.ContainsAny(name, `/\`) {
		return 0, fmt.Errorf("%w: %q", ErrBadName, name)
	}
	rel, err := pageName(path.Join(dir, name))
	if err != nil || rel == "." {
		return 0, fmt.Errorf("%w: %q", ErrBadName, name)
	}
	tmp := fmt.Sprintf("tmp/upload-%d", d.seq.Add(1))
	f, err := d.top.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return 0, fmt.Errorf("upload %q: %w", name, hideDir(err))
	}
	var n int64
	done := false
	defer func() {
		if !done {
			f.Close()
			d.top.Remove(tmp)
			d.used.Add(-n)
		}
	}()
	buf := make([]byte, 256<<10)
	for {
		if err := ctx.Err(); err != nil {
			return 0, fmt.Errorf("upload %q: %w", name, err)
		}
		k, rerr := r.Read(buf)
		if k > 0 {
			if n+int64(k) > max {
				return 0, fmt.Errorf("upload %q: larger than %d bytes: %w", name, max, ErrQuota)
			}
			if !d.reserve(int64(k)) {
				return 0, fmt.Errorf("upload %q: %w (%d MiB)", name, ErrQuota, d.quota>>20)
			}
			n += int64(k)
			if _, err := f.Write(buf[:k]); err != nil {
				return 0, fmt.Errorf("upload %q: %w", name, hideDir(err))
			}
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			return 0, fmt.Errorf("upload %q: %w", name, rerr)
		}
	}
	if err := f.Close(); err != nil {
		return 0, fmt.Errorf("upload %q: %w", name, hideDir(err))
	}
	// A file it replaces gives its room back.
	old, statErr := d.root.Lstat(rel)
	if statErr == nil && !old.Mode().IsRegular() {
		return 0, fmt.Errorf("upload %q: a folder of that name exists: %w", name, ErrBadName)
	}
	if err := d.top.Rename(tmp, "drive/"+rel); err != nil {
		return 0, fmt.Errorf("upload %q: %w", name, hideDir(err))
	}
	done = true
	if statErr == nil {
		d.used.Add(-old.Size())
	}
	return n, nil
}

// Download opens the drive file name for the page.
func (d *Drive) Download(ctx context.Context, name string) (io.ReadCloser, int64, error) {
	if !d.download {
		return nil, 0, fmt.Errorf("download %q: %w", name, ErrDirectionNotAllowed)
	}
	rel, err := pageName(name)
	if err != nil || rel == "." {
		return nil, 0, fmt.Errorf("%w: %q", ErrBadName, name)
	}
	f, err := d.root.Open(rel)
	if err != nil {
		return nil, 0, fmt.Errorf("download %q: %w", name, hideDir(err))
	}
	fi, err := f.Stat()
	if err != nil || !fi.Mode().IsRegular() {
		f.Close()
		return nil, 0, fmt.Errorf("download %q: not a file", name)
	}
	return f, fi.Size(), nil
}

// Offers returns the host-written files in Download since the offer
// numbered after (0: all), and the number of the newest.
func (d *Drive) Offers(after int) ([]Offer, int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if !d.download || after >= len(d.offered) || after < 0 {
		return nil, len(d.offered)
	}
	return append([]Offer(nil), d.offered[after:]...), len(d.offered)
}

// offer records a file the host finished writing, if it is in Download.
func (d *Drive) offer(rel string) {
	if !d.download {
		return
	}
	top, _, _ := strings.Cut(rel, "/")
	if !strings.EqualFold(top, DownloadDir) || !strings.Contains(rel, "/") {
		return
	}
	fi, err := d.root.Stat(rel)
	if err != nil || !fi.Mode().IsRegular() {
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if len(d.offered) >= 10000 {
		return
	}
	d.offered = append(d.offered, Offer{Name: rel, Size: fi.Size(), When: time.Now().UTC()})
}

// hideDir keeps the gateway's folder out of errors shown to users.
func hideDir(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	var le *os.LinkError
	if errors.As(err, &le) {
		return le.Err
	}
	return err
}
