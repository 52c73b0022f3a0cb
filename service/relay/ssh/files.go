package sshrelay

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"strings"
	"time"

	"github.com/pkg/sftp"

	"portico/service/config"
)

// Errors of the file-transfer API.
var (
	// ErrDirectionNotAllowed means the resource's transfer policy forbids
	// the requested direction; nothing was done on the host.
	ErrDirectionNotAllowed = errors.New("file transfer in this direction is not allowed")
	// ErrBadName means a file name is empty, ".", "..", or contains '/'
	// or NUL.
	ErrBadName = errors.New("invalid file name")
	// ErrTooLarge means an upload exceeded its size limit; nothing was
	// left on the host.
	ErrTooLarge = errors.New("upload exceeds the size limit")
)

// Files is an SFTP session on a Client with a fixed transfer policy.
// Relative paths are resolved against the SFTP server's working
// directory, which is the user's home.
type Files struct {
	sftp   *sftp.Client
	policy config.Transfer
}

// Entry describes one directory entry.
type Entry struct {
	Name    string
	Size    int64
	Mode    fs.FileMode
	ModTime time.Time
	IsDir   bool
}

// Files opens an SFTP session that enforces policy. A policy allowing
// neither direction is refused with ErrDirectionNotAllowed before anything
// is opened on the host.
func (c *Client) Files(policy config.Transfer) (*Files, error) {
	if !policy.ClientToServer() && !policy.ServerToClient() {
		return nil, fmt.Errorf("open file transfer with policy %q: %w", policy, ErrDirectionNotAllowed)
	}
	sc, err := sftp.NewClient(c.conn)
	if err != nil {
		return nil, fmt.Errorf("start sftp subsystem: %w", err)
	}
	return &Files{sftp: sc, policy: policy}, nil
}

// Close ends the SFTP session; the SSH connection stays open.
func (f *Files) Close() error {
	return f.sftp.Close()
}

// List returns the entries of dir ("" or "." is the home directory).
// Listing is allowed in either direction, since choosing an upload target
// needs it as much as choosing a download.
func (f *Files) List(dir string) ([]Entry, error) {
	dir, err := f.confine(dir)
	if err != nil {
		return nil, err
	}
	infos, err := f.sftp.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("list %q: %w", dir, err)
	}
	entries := make([]Entry, 0, len(infos))
	for _, fi := range infos {
		entries = append(entries, Entry{
			Name:    fi.Name(),
			Size:    fi.Size(),
			Mode:    fi.Mode(),
			ModTime: fi.ModTime(),
			IsDir:   fi.IsDir(),
		})
	}
	return entries, nil
}

// Upload stores r as dir/name on the host and returns the bytes written.
// It needs a policy that allows client-to-server. The data goes to a
// hidden temporary name first and is renamed into place only when
// complete, so a failed, cancelled or oversized (more than max bytes)
// upload never leaves a partial file under name. An existing file of that
// name is replaced.
func (f *Files) Upload(ctx context.Context, dir, name string, r io.Reader, max int64) (int64, error) {
	if !f.policy.ClientToServer() {
		return 0, fmt.Errorf("upload %q: %w", name, ErrDirectionNotAllowed)
	}
	if err := checkName(name); err != nil {
		return 0, err
	}
	if max <= 0 {
		return 0, fmt.Errorf("upload %q: size limit %d must be positive", name, max)
	}
	dir, err := f.confine(dir)
	if err != nil {
		return 0, err
	}
	target := path.Join(dir, name)
	tmp, err := tempName(dir, name)
	if err != nil {
		return 0, err
	}

	file, err := f.sftp.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL)
	if err != nil {
		return 0, fmt.Errorf("upload %q: create %s: %w", name, tmp, err)
	}
	n, err := file.ReadFrom(io.LimitReader(ctxReader{ctx, r}, max+1))
	closeErr := file.Close()
	switch {
	case err != nil:
		err = fmt.Errorf("upload %q: write: %w", name, err)
	case n > max:
		err = fmt.Errorf("upload %q: %w (%d bytes)", name, ErrTooLarge, max)
	case closeErr != nil:
		err = fmt.Errorf("upload %q: close: %w", name, closeErr)
	default:
		err = f.rename(tmp, target)
	}
	if err != nil {
		if rmErr := f.sftp.Remove(tmp); rmErr != nil && !errors.Is(rmErr, fs.ErrNotExist) {
			err = errors.Join(err, fmt.Errorf("remove partial upload %s: %w", tmp, rmErr))
		}
		return 0, err
	}
	return n, nil
}

// rename moves tmp over target atomically when the host supports the
// OpenSSH posix-rename extension; plain SFTP rename refuses to replace.
func (f *Files) rename(tmp, target string) error {
	if _, ok := f.sftp.HasExtension("posix-rename@openssh.com"); ok {
		if err := f.sftp.PosixRename(tmp, target); err != nil {
			return fmt.Errorf("upload: rename into %s: %w", target, err)
		}
		return nil
	}
	if err := f.sftp.Rename(tmp, target); err != nil {
		return fmt.Errorf("upload: rename into %s: %w", target, err)
	}
	return nil
}

// Download opens the regular file at p for reading and returns it with
// its size. It needs a policy that allows server-to-client. Reads fail
// once ctx ends; the caller must Close the reader.
func (f *Files) Download(ctx context.Context, p string) (io.ReadCloser, int64, error) {
	if !f.policy.ServerToClient() {
		return nil, 0, fmt.Errorf("download %q: %w", p, ErrDirectionNotAllowed)
	}
	p, err := f.confine(p)
	if err != nil {
		return nil, 0, err
	}
	file, err := f.sftp.Open(p)
	if err != nil {
		return nil, 0, fmt.Errorf("download %q: %w", p, err)
	}
	fi, err := file.Stat()
	if err != nil {
		file.Close()
		return nil, 0, fmt.Errorf("download %q: stat: %w", p, err)
	}
	if !fi.Mode().IsRegular() {
		file.Close()
		return nil, 0, fmt.Errorf("download %q: not a regular file", p)
	}
	return ctxReadCloser{ctxReader{ctx, file}, file}, fi.Size(), nil
}

// checkName accepts a single path element: uploads must not be able to
// climb out of, or into sub-folders of, the chosen directory.
func checkName(name string) error {
	if strings.ContainsAny(name, "\x00\r\n") {
		return fmt.Errorf("%w: %q: names must not contain NUL, CR or LF characters", ErrBadName, name)
	}
	if name == "" || name == "." || name == ".." || strings.Contains(name, "/") {
		return fmt.Errorf("%w: %q", ErrBadName, name)
	}
	return nil
}

// checkPath is the text half of the one path check of List, Upload and
// Download: a path relative to the home folder, without "..", NUL, CR
// or LF. It returns the cleaned path ("." for the home folder). Refusing
// before anything is sent keeps the SFTP session usable.
func checkPath(p string) (string, error) {
	if strings.ContainsAny(p, "\x00\r\n") {
		return "", fmt.Errorf("%w: %q: names must not contain NUL, CR or LF characters", ErrBadName, p)
	}
	if path.IsAbs(p) || strings.HasPrefix(p, "\\") {
		return "", fmt.Errorf("%w: %q: use a path inside your home folder", ErrBadName, p)
	}
	for _, el := range strings.Split(p, "/") {
		if el == ".." {
			return "", fmt.Errorf("%w: %q: \"..\" is not allowed; use a path inside your home folder", ErrBadName, p)
		}
	}
	return cleanPath(p), nil
}

// confine is the one path check for both directions: checkPath, then no
// element of the path may be a symbolic link (a link can point anywhere
// on the host, so following one would leave the home folder).
func (f *Files) confine(p string) (string, error) {
	c, err := checkPath(p)
	if err != nil || c == "." {
		return c, err
	}
	walked := ""
	for _, el := range strings.Split(c, "/") {
		walked = path.Join(walked, el)
		fi, err := f.sftp.Lstat(walked)
		if err != nil {
			return c, nil // missing: the operation itself reports it
		}
		if fi.Mode()&fs.ModeSymlink != 0 {
			return "", fmt.Errorf("%w: %q: links are not followed", ErrBadName, p)
		}
	}
	return c, nil
}

// cleanPath normalises a user-supplied path. Relative paths stay relative
// so the SFTP server resolves them against the home directory.
func cleanPath(p string) string {
	if p == "" {
		return "."
	}
	return path.Clean(p)
}

// tempName picks an unguessable hidden name beside the target so the final
// rename stays on one file system.
func tempName(dir, name string) (string, error) {
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("upload temp name: %w", err)
	}
	base := "." + name
	// Keep the temporary name within the usual 255-byte limit.
	if len(base) > 200 {
		base = base[:200]
	}
	return path.Join(dir, base+".portico-"+hex.EncodeToString(b[:])+".part"), nil
}

// ctxReader fails reads once ctx ends, so a transfer stops between chunks.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

type ctxReadCloser struct {
	ctxReader
	io.Closer
}
