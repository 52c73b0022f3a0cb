//go:build unix

// The SFTP tests run a real sshd and check file ownership, both Unix-only.

package sshrelay

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"portico/service/config"
)

// testDir makes a fresh directory in testUser's home, owned by the user,
// and removes it at the end. It returns its name relative to the home.
func (h *testHost) testDir(t testing.TB) string {
	t.Helper()
	name := fmt.Sprintf("portico-test-%d", time.Now().UnixNano())
	abs := filepath.Join(h.home, name)
	if err := os.Mkdir(abs, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(abs) })
	// The SFTP server runs as testUser, so it must own the directory.
	uid, gid := ownerOf(t, h.home)
	if err := os.Chown(abs, uid, gid); err != nil {
		t.Fatal(err)
	}
	return name
}

func randomBytes(t *testing.T, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

// dirNames lists a directory on disk, so tests see the host's view rather
// than the code under test's.
func dirNames(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	return names
}

func openFiles(t testing.TB, c *Client, policy config.Transfer) *Files {
	t.Helper()
	f, err := c.Files(policy)
	if err != nil {
		t.Fatalf("Files(%s): %v", policy, err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

func TestFilesRoundTrip(t *testing.T) {
	h := startSSHD(t)
	c := h.dial(t)
	f := openFiles(t, c, config.TransferBidirectional)
	dir := h.testDir(t)
	ctx := context.Background()

	data := randomBytes(t, 300<<10)
	n, err := f.Upload(ctx, dir, "report ü.bin", bytes.NewReader(data), 1<<20)
	if err != nil {
		t.Fatalf("Upload: %v", err)
	}
	if n != int64(len(data)) {
		t.Errorf("Upload wrote %d bytes, want %d", n, len(data))
	}
	onDisk, err := os.ReadFile(filepath.Join(h.home, dir, "report ü.bin"))
	if err != nil {
		t.Fatalf("uploaded file not on host: %v", err)
	}
	if !bytes.Equal(onDisk, data) {
		t.Fatalf("file on host differs from upload (%d vs %d bytes)", len(onDisk), len(data))
	}
	if got := dirNames(t, filepath.Join(h.home, dir)); len(got) != 1 {
		t.Errorf("directory holds %q, want only the uploaded file (no temp left)", got)
	}

	// Uploading again replaces the file.
	data2 := []byte("second version\n")
	if _, err := f.Upload(ctx, dir, "report ü.bin", bytes.NewReader(data2), 1<<20); err != nil {
		t.Fatalf("second Upload: %v", err)
	}
	if onDisk, _ := os.ReadFile(filepath.Join(h.home, dir, "report ü.bin")); !bytes.Equal(onDisk, data2) {
		t.Errorf("after re-upload host has %q, want %q", onDisk, data2)
	}

	// A file written directly on the host downloads byte-exact.
	want := randomBytes(t, 200<<10)
	if err := os.WriteFile(filepath.Join(h.home, dir, "from-host.bin"), want, 0o644); err != nil {
		t.Fatal(err)
	}
	rc, size, err := f.Download(ctx, dir+"/from-host.bin")
	if err != nil {
		t.Fatalf("Download: %v", err)
	}
	got, err := io.ReadAll(rc)
	rc.Close()
	if err != nil {
		t.Fatalf("read download: %v", err)
	}
	if size != int64(len(want)) || !bytes.Equal(got, want) {
		t.Fatalf("download: size %d, %d bytes, equal=%v; want %d bytes", size, len(got), bytes.Equal(got, want), len(want))
	}

	// List shows both files with their sizes, relative to the home.
	entries, err := f.List(dir)
	if err != nil {
		t.Fatalf("List: %v", err)
	}
	sizes := map[string]int64{}
	for _, e := range entries {
		sizes[e.Name] = e.Size
	}
	wantSizes := map[string]int64{"report ü.bin": int64(len(data2)), "from-host.bin": int64(len(want))}
	if fmt.Sprint(sizes) != fmt.Sprint(wantSizes) {
		t.Errorf("List = %v, want %v", sizes, wantSizes)
	}
	home, err := f.List("")
	if err != nil {
		t.Fatalf("List home: %v", err)
	}
	found := false
	for _, e := range home {
		found = found || (e.Name == dir && e.IsDir)
	}
	if !found {
		t.Errorf("List(\"\") does not show %s as a directory: home is not the base", dir)
	}

	// A directory is not downloadable.
	if _, _, err := f.Download(ctx, dir); err == nil {
		t.Error("Download of a directory succeeded")
	}
}

func TestFilesDirection(t *testing.T) {
	h := startSSHD(t)
	c := h.dial(t)
	dir := h.testDir(t)
	hostDir := filepath.Join(h.home, dir)
	if err := os.WriteFile(filepath.Join(hostDir, "secret.txt"), []byte("s3cret"), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()

	up := openFiles(t, c, config.TransferClientToServer)
	if _, _, err := up.Download(ctx, dir+"/secret.txt"); !errors.Is(err, ErrDirectionNotAllowed) {
		t.Errorf("download with client-to-server: %v, want ErrDirectionNotAllowed", err)
	}
	if _, err := up.Upload(ctx, dir, "allowed.txt", strings.NewReader("ok"), 100); err != nil {
		t.Errorf("upload with client-to-server: %v", err)
	}

	down := openFiles(t, c, config.TransferServerToClient)
	if _, err := down.Upload(ctx, dir, "refused.txt", strings.NewReader("no"), 100); !errors.Is(err, ErrDirectionNotAllowed) {
		t.Errorf("upload with server-to-client: %v, want ErrDirectionNotAllowed", err)
	}
	rc, _, err := down.Download(ctx, dir+"/secret.txt")
	if err != nil {
		t.Errorf("download with server-to-client: %v", err)
	} else {
		rc.Close()
	}

	for _, p := range []config.Transfer{config.TransferDisabled, "bogus"} {
		if _, err := c.Files(p); !errors.Is(err, ErrDirectionNotAllowed) {
			t.Errorf("Files(%q): %v, want ErrDirectionNotAllowed", p, err)
		}
	}

	got := dirNames(t, hostDir)
	if fmt.Sprint(got) != "[allowed.txt secret.txt]" {
		t.Errorf("host directory holds %q, want only allowed.txt and secret.txt", got)
	}
}

// failingReader yields some data, then an error, like a browser upload
// that breaks off.
type failingReader struct{ sent bool }

func (r *failingReader) Read(p []byte) (int, error) {
	if r.sent {
		return 0, errors.New("connection reset")
	}
	r.sent = true
	return copy(p, "partial data"), nil
}

func TestFilesUploadLeavesNothingOnFailure(t *testing.T) {
	h := startSSHD(t)
	c := h.dial(t)
	f := openFiles(t, c, config.TransferBidirectional)
	dir := h.testDir(t)
	hostDir := filepath.Join(h.home, dir)
	ctx := context.Background()

	if _, err := f.Upload(ctx, dir, "broken.bin", &failingReader{}, 1<<20); err == nil {
		t.Error("upload from a failing reader succeeded")
	}
	if _, err := f.Upload(ctx, dir, "big.bin", bytes.NewReader(make([]byte, 1001)), 1000); !errors.Is(err, ErrTooLarge) {
		t.Errorf("oversized upload: %v, want ErrTooLarge", err)
	}
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := f.Upload(cancelled, dir, "cancelled.bin", strings.NewReader("x"), 10); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled upload: %v, want context.Canceled", err)
	}
	if got := dirNames(t, hostDir); len(got) != 0 {
		t.Errorf("failed uploads left %q on the host", got)
	}

	// Exactly max bytes is fine.
	if n, err := f.Upload(ctx, dir, "exact.bin", bytes.NewReader(make([]byte, 1000)), 1000); err != nil || n != 1000 {
		t.Errorf("upload of exactly max bytes: n=%d err=%v", n, err)
	}
}

func TestFilesBadNames(t *testing.T) {
	h := startSSHD(t)
	c := h.dial(t)
	f := openFiles(t, c, config.TransferBidirectional)
	dir := h.testDir(t)
	for _, name := range []string{"", ".", "..", "a/b", "../escape", "/etc/passwd", "nul\x00byte"} {
		if _, err := f.Upload(context.Background(), dir, name, strings.NewReader("x"), 10); !errors.Is(err, ErrBadName) {
			t.Errorf("Upload name %q: %v, want ErrBadName", name, err)
		}
	}
	if got := dirNames(t, filepath.Join(h.home, dir)); len(got) != 0 {
		t.Errorf("bad names left %q on the host", got)
	}
	if got := dirNames(t, h.home); slices.Contains(got, "escape") {
		t.Error("an upload escaped into the home directory")
	}
}

func TestCheckName(t *testing.T) {
	tests := []struct {
		name string
		ok   bool
	}{
		{"report.pdf", true},
		{"grüße ✓.txt", true},
		{".hidden", true},
		{"...", true},
		{"", false},
		{".", false},
		{"..", false},
		{"a/b", false},
		{"/", false},
		{"x\x00", false},
	}
	for _, tt := range tests {
		err := checkName(tt.name)
		if (err == nil) != tt.ok {
			t.Errorf("checkName(%q) = %v, want ok=%v", tt.name, err, tt.ok)
		}
	}
}

// ownerOf returns the numeric owner of a file on this machine.
func ownerOf(t testing.TB, p string) (uid, gid int) {
	t.Helper()
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		t.Fatalf("no owner information for %s", p)
	}
	return int(st.Uid), int(st.Gid)
}

func TestCheckPathConfinesToHome(t *testing.T) {
	for p, ok := range map[string]bool{
		"": true, ".": true, "docs": true, "docs/a.txt": true, "./docs": true,
		"../etc": false, "docs/../../x": false, "docs/..": false, "/etc/passwd": false,
		"a\x00b": false, "a\nb": false, "a\rb": false,
	} {
		if _, err := checkPath(p); (err == nil) != ok || (err != nil && !errors.Is(err, ErrBadName)) {
			t.Errorf("checkPath(%q): %v, want ok=%v", p, err, ok)
		}
	}
}

func FuzzCheckPath(f *testing.F) {
	f.Add("docs/a.txt")
	f.Add("../x")
	f.Add("a\x00")
	f.Fuzz(func(t *testing.T, p string) {
		c, err := checkPath(p)
		if err == nil && (strings.HasPrefix(c, "/") || c == ".." || strings.HasPrefix(c, "../") || strings.ContainsAny(c, "\x00\r\n")) {
			t.Fatalf("checkPath(%q) = %q", p, c)
		}
	})
}

// TestFilesDownloadConfinedLikeUpload: download refuses what upload
// refuses (parent paths, absolute paths, links out of the home folder,
// NUL/CR/LF), and the session still works afterwards.
func TestFilesDownloadConfinedLikeUpload(t *testing.T) {
	h := startSSHD(t)
	c := h.dial(t)
	f := openFiles(t, c, config.TransferBidirectional)
	dir := h.testDir(t)
	if err := os.Symlink("/etc", filepath.Join(h.home, dir, "out")); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, p := range []string{"../../etc/passwd", "/etc/passwd", dir + "/out/passwd", "a\x00b", "a\nb"} {
		if _, _, err := f.Download(ctx, p); !errors.Is(err, ErrBadName) {
			t.Errorf("Download(%q): %v, want ErrBadName", p, err)
		}
		if _, err := f.List(p); !errors.Is(err, ErrBadName) {
			t.Errorf("List(%q): %v, want ErrBadName", p, err)
		}
	}
	if _, err := f.Upload(ctx, dir+"/out", "x", strings.NewReader("x"), 10); !errors.Is(err, ErrBadName) {
		t.Errorf("Upload through a link: %v, want ErrBadName", err)
	}
	if _, err := f.Upload(ctx, dir, "cr\rlf\n", strings.NewReader("x"), 10); !errors.Is(err, ErrBadName) {
		t.Errorf("Upload name with CR/LF: %v, want ErrBadName", err)
	}
	if _, err := f.Upload(ctx, dir, "fine.txt", strings.NewReader("ok"), 10); err != nil {
		t.Fatalf("the session broke after refused names: %v", err)
	}
}
