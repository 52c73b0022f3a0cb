package integration

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"portico/service/config"
)

// The gateway's drive in an xrdp session: xrdp-chansrv mounts what the
// gateway announces under the session's ~/thinclient_drives/Portico
// (FUSE), so the host side of each test is plain file system access.

// driveSession starts xrdp with drive redirection and the gateway with
// file transfer set to ft, and opens the desktop in the browser.
func driveSession(t *testing.T, ft config.Transfer) (*portico, xrdpServer, context.Context) {
	t.Helper()
	srv := startXRDPWith(t, true)
	p := startPortico(t)
	p.seedUser(t)
	addXRDP(t, p, srv)
	p.editSite(t, func(s *config.PortalSettings) { s.Restrictions.FileTransfer = ft })
	ctx := openXRDP(t, p, srv, nil)
	t.Cleanup(func() {
		if t.Failed() {
			var st string
			c, cancel := context.WithTimeout(ctx, 3*time.Second)
			defer cancel()
			chromedp.Run(c, chromedp.Evaluate(`document.body.dataset.state + ' | ' + (document.getElementById('file-status')?.textContent || '') + ' ' + (document.getElementById('file-error')?.textContent || '') + ' | ' + (document.getElementById('overlay-msg')?.textContent || '')`, &st))
			t.Logf("page at failure: %s", st)
			logs, _ := filepath.Glob(filepath.Join(srv.Home, ".local/share/xrdp/*chansrv*"))
			for _, l := range logs {
				b, _ := os.ReadFile(l)
				t.Logf("%s:\n%s", l, tail(string(b), 4000))
			}
		}
	})
	return p, srv, ctx
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

// hostDrive is the Portico drive as the host's session user sees it.
func hostDrive(t *testing.T, srv xrdpServer) string {
	t.Helper()
	d := filepath.Join(srv.Home, "thinclient_drives", "Portico")
	waitFor(t, 60*time.Second, "the Portico drive mounted on the host", func() bool {
		_, err := os.Stat(filepath.Join(d, "Download"))
		return err == nil
	})
	return d
}

// waitHostFile waits until the host reads want at path.
func waitHostFile(t *testing.T, path string, want []byte) {
	t.Helper()
	var last string
	deadline := time.Now().Add(30 * time.Second)
	for {
		// xrdp-chansrv learns of new files by listing the folder (as a
		// file manager does); a bare open of an unlisted name fails.
		os.ReadDir(filepath.Dir(path))
		b, err := os.ReadFile(path)
		if err == nil && sha(b) == sha(want) {
			return
		}
		last = fmt.Sprintf("%d bytes, %v", len(b), err)
		if time.Now().After(deadline) {
			ls, _ := exec.Command("ls", "-la", filepath.Dir(path)).CombinedOutput()
			t.Fatalf("the host never read %s as uploaded (last: %s); the folder holds:\n%s", filepath.Base(path), last, ls)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func sha(b []byte) string { s := sha256.Sum256(b); return hex.EncodeToString(s[:]) }

func randomFile(t *testing.T, name string, n int) (string, []byte) {
	t.Helper()
	b := make([]byte, n)
	rand.Read(b)
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return p, b
}

// uploadFromPage picks path in the Files panel's file input, as a user.
func uploadFromPage(t *testing.T, ctx context.Context, path string) {
	t.Helper()
	run(t, ctx, 20*time.Second, chromedp.Evaluate(`document.getElementById('btn-files').click(); true`, nil),
		chromedp.SetUploadFiles(`#file-up`, []string{path}, chromedp.ByID))
}

// pageFetch runs fetch(url) in the page and returns the status and the
// SHA-256 of the body.
func pageFetch(t *testing.T, ctx context.Context, method, url string) (int, string) {
	t.Helper()
	var res string
	awaitJS(t, ctx, fmt.Sprintf(`(async () => { const csrf = document.getElementById('session').dataset.csrf;
		const r = await fetch(%q, {method: %q, headers: {'X-CSRF-Token': csrf}, body: %q === 'POST' ? new Uint8Array([1, 2, 3]) : undefined});
		const d = await crypto.subtle.digest('SHA-256', await r.arrayBuffer());
		return r.status + ' ' + [...new Uint8Array(d)].map(b => b.toString(16).padStart(2, '0')).join(''); })()`, url, method, method), &res)
	var code int
	var sum string
	fmt.Sscanf(res, "%d %s", &code, &sum)
	return code, sum
}

// filesAPI is the page's file API base for its session.
func filesAPI(t *testing.T, ctx context.Context) string {
	t.Helper()
	var base string
	awaitJS(t, ctx, `(async () => { const m = await import(document.querySelector('script[type=module]').src);
		return document.getElementById('session').dataset.base + '/api/files/' + m.ui.pageID; })()`, &base)
	return base
}

// hostWrite writes b into the drive as the host's user would (cp), and
// reports whether the host's write succeeded.
func hostWrite(t *testing.T, drive, name string, b []byte) error {
	t.Helper()
	src := filepath.Join(t.TempDir(), "src-"+name)
	os.WriteFile(src, b, 0o600)
	out, err := exec.Command("cp", src, filepath.Join(drive, "Download", name)).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%v: %s", err, out)
	}
	return nil
}

// gatewayDrives lists every file in the gateway's session drive folders.
func gatewayDrives(p *portico) []string {
	var out []string
	filepath.Walk(filepath.Join(p.Data, "drives"), func(path string, info os.FileInfo, err error) error {
		if err == nil && info.Mode().IsRegular() {
			out = append(out, path)
		}
		return nil
	})
	return out
}

func auditHas(t *testing.T, p *portico, typ, detail string) bool {
	for _, e := range auditEvents(t, p, typ) {
		if d, _ := e["detail"].(string); strings.Contains(d, detail) {
			return true
		}
	}
	return false
}

func TestRDPDriveBidirectional(t *testing.T) {
	p, srv, ctx := driveSession(t, config.TransferBidirectional)
	drive := hostDrive(t, srv)
	screenshot(t, ctx, "rdp-drive-connected")

	// Upload from the page: the host reads the same bytes.
	up, want := randomFile(t, "from-browser.bin", 300<<10)
	uploadFromPage(t, ctx, up)
	waitJS(t, ctx, 60*time.Second, `(document.getElementById('file-status')?.textContent || '').includes('Uploaded 1 file')`, "the upload finished")
	waitHostFile(t, filepath.Join(drive, "from-browser.bin"), want)

	// The host saves a file in Download: the page offers it at once and
	// it downloads with the same bytes.
	_, hostData := randomFile(t, "x", 200<<10)
	if err := hostWrite(t, drive, "from-host.bin", hostData); err != nil {
		t.Fatalf("host write into the drive: %v", err)
	}
	waitJS(t, ctx, 30*time.Second, `document.querySelector('#file-offers a') !== null`, "the page offering the host's file")
	screenshot(t, ctx, "rdp-files-panel")
	var href string
	run(t, ctx, 5*time.Second, chromedp.Evaluate(`document.querySelector('#file-offers a').href`, &href))
	code, sum := pageFetch(t, ctx, "GET", href)
	if code != 200 || sum != sha(hostData) {
		t.Fatalf("download of the host's file: %d %s, want 200 %s", code, sum, sha(hostData))
	}
	if !auditHas(t, p, "file.upload", "from-browser.bin (307200 bytes)") || !auditHas(t, p, "file.download", "from-host.bin (204800 bytes)") {
		t.Errorf("transfers not audited: %v %v", auditEvents(t, p, "file.upload"), auditEvents(t, p, "file.download"))
	}
	var live []map[string]any
	p.do(t, "GET", "/api/v1/sessions", nil, &live)
	if len(live) != 1 || live[0]["filesUp"].(float64) != 300<<10 || live[0]["filesDown"].(float64) != 200<<10 {
		t.Errorf("sessions registry: %v", live)
	}
}

func TestRDPDriveClientToServerOnly(t *testing.T) {
	p, srv, ctx := driveSession(t, config.TransferClientToServer)
	drive := hostDrive(t, srv)
	up, want := randomFile(t, "allowed-up.bin", 100<<10)
	uploadFromPage(t, ctx, up)
	waitHostFile(t, filepath.Join(drive, "allowed-up.bin"), want)
	before := gatewayDrives(p)

	// The host cannot write into the drive: nothing lands on the gateway
	// and nothing is offered.
	if err := hostWrite(t, drive, "blocked.bin", []byte("must not leave the host")); err == nil {
		t.Errorf("the host's write into a client-to-server drive succeeded")
	}
	time.Sleep(3 * time.Second)
	if after := gatewayDrives(p); len(after) != len(before) {
		t.Errorf("the gateway's drive holds %v after the host's refused write, before %v", after, before)
	}
	var offers string
	run(t, ctx, 5*time.Second, chromedp.Evaluate(`(document.body.dataset.offers || '') + '|' + (document.getElementById('file-offers') === null) + '|' + document.getElementById('file-list').hidden + '|' + document.querySelectorAll('#panel-files a').length`, &offers))
	if offers != "|true|true|0" {
		t.Errorf("the page offers downloads (offers|no offer box|list hidden|links): %q", offers)
	}
	// The API refuses the download and the listing, and audits them.
	api := filesAPI(t, ctx)
	if code, _ := pageFetch(t, ctx, "GET", api+"/download?name=allowed-up.bin"); code != 403 {
		t.Errorf("download with client-to-server only: %d, want 403", code)
	}
	if code, _ := pageFetch(t, ctx, "GET", api); code != 403 {
		t.Errorf("listing with client-to-server only: %d, want 403", code)
	}
	if !auditHas(t, p, "file.refused", "download") {
		t.Errorf("the refused download was not audited: %v", auditEvents(t, p, "file.refused"))
	}
	if !auditHas(t, p, "file.refused", "the host's") {
		t.Errorf("the host's refused write was not audited: %v", auditEvents(t, p, "file.refused"))
	}
}

func TestRDPDriveServerToClientOnly(t *testing.T) {
	p, srv, ctx := driveSession(t, config.TransferServerToClient)
	drive := hostDrive(t, srv)
	// The page offers no upload, and the API refuses one (audited).
	var noInput bool
	run(t, ctx, 5*time.Second, chromedp.Evaluate(`document.getElementById('file-up') === null`, &noInput))
	if !noInput {
		t.Errorf("the page offers an upload with server-to-client only")
	}
	api := filesAPI(t, ctx)
	if code, _ := pageFetch(t, ctx, "POST", api+"?name=blocked-up.bin"); code != 403 {
		t.Errorf("upload with server-to-client only: %d, want 403", code)
	}
	if !auditHas(t, p, "file.refused", "blocked-up.bin") {
		t.Errorf("the refused upload was not audited: %v", auditEvents(t, p, "file.refused"))
	}
	time.Sleep(2 * time.Second)
	if _, err := os.Stat(filepath.Join(drive, "blocked-up.bin")); err == nil {
		t.Errorf("the refused upload reached the host")
	}
	// Downloads work.
	_, hostData := randomFile(t, "x", 64<<10)
	if err := hostWrite(t, drive, "report.bin", hostData); err != nil {
		t.Fatalf("host write: %v", err)
	}
	waitJS(t, ctx, 30*time.Second, `document.querySelector('#file-offers a') !== null`, "the page offering the host's file")
	var href string
	run(t, ctx, 5*time.Second, chromedp.Evaluate(`document.querySelector('#file-offers a').href`, &href))
	if code, sum := pageFetch(t, ctx, "GET", href); code != 200 || sum != sha(hostData) {
		t.Fatalf("download: %d %s, want 200 %s", code, sum, sha(hostData))
	}
}

func TestRDPDriveDisabledHasNoDrive(t *testing.T) {
	p, srv, ctx := driveSession(t, config.TransferDisabled)
	waitFor(t, 20*time.Second, "xrdp's VNC backend connected", func() bool { return strings.Contains(srv.log(), "VNC connection complete, connected ok") })
	time.Sleep(3 * time.Second)
	if strings.Contains(srv.log(), "name rdpdr") {
		t.Errorf("xrdp saw an rdpdr channel although file transfer is disabled")
	}
	// chansrv keeps its own .clipboard folder there; drives are the rest.
	entries, _ := os.ReadDir(filepath.Join(srv.Home, "thinclient_drives"))
	for _, e := range entries {
		if !strings.HasPrefix(e.Name(), ".") {
			t.Errorf("the host has a drive %q", e.Name())
		}
	}
	if len(gatewayDrives(p)) > 0 {
		t.Errorf("the gateway made a drive folder: %v", gatewayDrives(p))
	}
	var noButton bool
	run(t, ctx, 5*time.Second, chromedp.Evaluate(`document.getElementById('btn-files') === null`, &noButton))
	if !noButton {
		t.Errorf("the page shows a Files button with file transfer disabled")
	}
}
