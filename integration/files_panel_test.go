package integration

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// TestFilesPanelInTheBrowser uses the session page's Files panel as a user
// does, against a real sshd: the listing is sorted (folders first, numbers
// in order), sizes are readable, folders open, an upload through the file
// input moves the progress bar and lands in the open folder, and a refused
// upload shows its error in the panel, not in an alert box.
func TestFilesPanelInTheBrowser(t *testing.T) {
	ssh := startSSH(t)
	top := fmt.Sprintf("panel-%d", time.Now().UnixNano())
	root := filepath.Join(ssh.Home, top)
	mk := func(rel string, size int) {
		p := filepath.Join(root, rel)
		if size < 0 {
			if err := os.MkdirAll(p, 0o777); err != nil {
				t.Fatal(err)
			}
			os.Chmod(p, 0o777) // the SFTP user, not this process, writes here
			return
		}
		if err := os.WriteFile(p, bytes.Repeat([]byte("x"), size), 0o666); err != nil {
			t.Fatal(err)
		}
	}
	mk("", -1)
	mk("folder10", -1)
	mk("folder2", -1)
	mk("locked", -1)
	os.Chmod(filepath.Join(root, "locked"), 0o555) // owned by this process: the SSH user cannot write
	mk("b.txt", 1536)
	mk("a10.txt", 10)
	mk("a2.txt", 1)
	mk("folder2/inner.txt", 3*1024*1024)
	t.Cleanup(func() { os.Chmod(filepath.Join(root, "locked"), 0o755); os.RemoveAll(root) })

	p := startPortico(t)
	p.seedUser(t)
	p.do(t, "POST", "/api/v1/resources", map[string]any{"id": "shell", "name": "Build server", "protocol": "ssh", "host": "127.0.0.1", "port": ssh.Port,
		"groups": []string{"staff"}, "credentials": map[string]any{"username": ssh.User, "password": ssh.Password}}, nil)
	ctx := browser(t)
	signIn(t, ctx, p)
	open(t, ctx, "shell")
	// alert() must never be the way the panel reports anything.
	run(t, ctx, 5*time.Second, chromedp.Evaluate(`window.__alerts = []; window.alert = (m) => window.__alerts.push(String(m)); true`, nil))
	waitJS(t, ctx, 10*time.Second, `window.__portico.sid`, "the session id")

	entries := func() []string {
		var out []string
		run(t, ctx, 5*time.Second, chromedp.Evaluate(`[...document.querySelectorAll('#file-list li')].map(li => li.innerText.replace(/\s+/g, ' ').trim())`, &out))
		return out
	}
	clickEntry := func(text string) {
		t.Helper()
		js := fmt.Sprintf(`(() => { const b = [...document.querySelectorAll('#file-list li button')].find(b => b.textContent === %q); if (!b) return false; b.click(); return true; })()`, text)
		var ok bool
		run(t, ctx, 5*time.Second, chromedp.Evaluate(js, &ok))
		if !ok {
			t.Fatalf("no folder %q in the panel: %q", text, entries())
		}
	}

	run(t, ctx, 5*time.Second, chromedp.Click(`#btn-files`, chromedp.ByID))
	waitJS(t, ctx, 10*time.Second, fmt.Sprintf(`[...document.querySelectorAll('#file-list li button')].some(b => b.textContent === %q)`, top+"/"), "the test folder in the home listing")
	clickEntry(top + "/")
	waitJS(t, ctx, 10*time.Second, `document.getElementById('file-path').innerText.includes(`+fmt.Sprintf("%q", top)+`)`, "the open folder in the panel's path")
	want := []string{".. (up one folder)", "folder2/", "folder10/", "locked/", "a2.txt 1 byte", "a10.txt 10 bytes", "b.txt 1.5 KB"}
	waitJS(t, ctx, 10*time.Second, `document.querySelectorAll('#file-list li').length === 7`, "seven rows in the test folder")
	if got := entries(); strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("listing\n got %q\nwant %q", got, want)
	}
	var href string
	run(t, ctx, 5*time.Second, chromedp.Evaluate(`document.querySelector('#file-list a[download="b.txt"]')?.getAttribute('href') || ''`, &href))
	if !strings.Contains(href, "name="+top+"%2Fb.txt") {
		t.Errorf("download link of b.txt is %q, want the path inside the open folder", href)
	}
	screenshot(t, ctx, "ssh-files-panel")

	// A folder opens, with its own sizes.
	clickEntry("folder2/")
	waitJS(t, ctx, 10*time.Second, `[...document.querySelectorAll('#file-list li')].some(li => li.innerText.includes('inner.txt'))`, "folder2's file")
	if got := entries(); len(got) != 2 || got[1] != "inner.txt 3.0 MB" {
		t.Fatalf("folder2 lists %q, want the way up and inner.txt 3.0 MB", got)
	}

	// An upload through the file input lands in the open folder; the
	// progress bar's value is recorded as the panel sets it.
	upload := filepath.Join(t.TempDir(), "big.bin")
	data := bytes.Repeat([]byte("0123456789abcdef"), 2<<20) // 32 MiB
	if err := os.WriteFile(upload, data, 0o644); err != nil {
		t.Fatal(err)
	}
	run(t, ctx, 5*time.Second, chromedp.Evaluate(`(() => { const bar = document.getElementById('file-progress'); window.__progress = [];
		const d = Object.getOwnPropertyDescriptor(HTMLProgressElement.prototype, 'value');
		Object.defineProperty(bar, 'value', { get() { return d.get.call(this); }, set(v) { window.__progress.push(v); d.set.call(this, v); } });
		return true; })()`, nil))
	run(t, ctx, 10*time.Second, chromedp.SetUploadFiles(`#file-up`, []string{upload}, chromedp.ByID))
	waitJS(t, ctx, 120*time.Second, `document.getElementById('file-status').textContent.startsWith('Uploaded 1 file')`, "the upload's confirmation in the panel")
	got, err := os.ReadFile(filepath.Join(root, "folder2", "big.bin"))
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("uploaded file in folder2: %d bytes, %v", len(got), err)
	}
	var progress []float64
	run(t, ctx, 5*time.Second, chromedp.Evaluate(`window.__progress`, &progress))
	moved := 0
	for i, v := range progress {
		if i > 0 && v < progress[i-1] {
			t.Fatalf("progress went backwards: %v", progress)
		}
		if v > 0 && v < float64(len(data)) {
			moved++
		}
	}
	if moved == 0 || progress[len(progress)-1] != float64(len(data)) {
		t.Fatalf("progress bar values %v: want some between 0 and %d, ending full", progress, len(data))
	}
	waitJS(t, ctx, 10*time.Second, `[...document.querySelectorAll('#file-list li')].some(li => li.innerText.includes('big.bin'))`, "the uploaded file in the listing")

	// A refused upload says why inside the panel.
	clickEntry(".. (up one folder)")
	waitJS(t, ctx, 10*time.Second, `[...document.querySelectorAll('#file-list li button')].some(b => b.textContent === 'locked/')`, "the test folder again")
	clickEntry("locked/")
	waitJS(t, ctx, 10*time.Second, `document.getElementById('file-path').innerText.includes('locked')`, "the locked folder open")
	small := filepath.Join(t.TempDir(), "small.txt")
	os.WriteFile(small, []byte("hello"), 0o644)
	run(t, ctx, 10*time.Second, chromedp.SetUploadFiles(`#file-up`, []string{small}, chromedp.ByID))
	waitJS(t, ctx, 30*time.Second, `!document.getElementById('file-error').hidden && document.getElementById('file-error').textContent.length > 0`, "the upload error in the panel")
	var alerts []string
	run(t, ctx, 5*time.Second, chromedp.Evaluate(`window.__alerts`, &alerts))
	if len(alerts) > 0 {
		t.Fatalf("the page used alert(): %q", alerts)
	}
	if _, err := os.Stat(filepath.Join(root, "locked", "small.txt")); err == nil {
		t.Fatal("the upload into the read-only folder arrived")
	}
}
