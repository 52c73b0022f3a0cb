package integration

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"portico/service/config"
)

// TestSSHClipboardFollowsPolicy: in the SSH terminal, paste reaches the host
// only when client-to-server is allowed, and copy yields the terminal's text
// only when server-to-client is; the page offers no clipboard panel (the
// terminal itself is the clipboard's place).
func TestSSHClipboardFollowsPolicy(t *testing.T) {
	ssh := startSSH(t)
	p := startPortico(t)
	p.seedUser(t)
	p.do(t, "POST", "/api/v1/resources", map[string]any{"id": "shell", "name": "Build server", "protocol": "ssh", "host": "127.0.0.1", "port": ssh.Port,
		"groups": []string{"staff"}, "credentials": map[string]any{"username": ssh.User, "password": ssh.Password}}, nil)
	ctx := browser(t)
	signIn(t, ctx, p)

	// paste dispatches a paste event carrying text to xterm's textarea, as
	// the browser does for Ctrl+Shift+V; copy selects the terminal and
	// returns what a copy event put on the clipboard.
	paste := func(text string) {
		t.Helper()
		js := fmt.Sprintf(`(() => { const dt = new DataTransfer(); dt.setData('text/plain', %q);
			document.querySelector('.xterm-helper-textarea').dispatchEvent(new ClipboardEvent('paste', {clipboardData: dt, bubbles: true, cancelable: true})); return true; })()`, text)
		run(t, ctx, 5*time.Second, chromedp.Evaluate(js, nil))
	}
	copyText := func() string {
		t.Helper()
		var got string
		run(t, ctx, 5*time.Second, chromedp.Evaluate(`(() => { window.__portico.term.selectAll(); const dt = new DataTransfer();
			document.querySelector('.xterm-helper-textarea').dispatchEvent(new ClipboardEvent('copy', {clipboardData: dt, bubbles: true, cancelable: true}));
			return dt.getData('text/plain'); })()`, &got))
		return got
	}
	hasPanel := func() bool {
		var ok bool
		run(t, ctx, 5*time.Second, chromedp.Evaluate(`!!document.getElementById('btn-clip') || !!document.getElementById('panel-clip')`, &ok))
		return ok
	}

	for _, tc := range []struct {
		set        config.Transfer
		paste, cpy bool
	}{
		{config.TransferBidirectional, true, true},
		{config.TransferServerToClient, false, true},
		{config.TransferClientToServer, true, false},
	} {
		p.editSite(t, func(s *config.PortalSettings) { s.Restrictions.Clipboard = tc.set })
		run(t, ctx, 20*time.Second, chromedp.Navigate(p.URL+"/userportal/"), chromedp.WaitVisible(`#home`, chromedp.ByID))
		open(t, ctx, "shell")
		if hasPanel() {
			t.Errorf("%s: the SSH page offers a clipboard panel", tc.set)
		}
		waitJS(t, ctx, 30*time.Second, `(() => { const b = window.__portico.term.buffer.active; for (let i = 0; i < b.length; i++) { if ((b.getLine(i)?.translateToString() || '').includes('$ ')) return true; } return false; })()`, "the shell prompt")
		marker := filepath.Join(ssh.Home, fmt.Sprintf("pasted-%d", time.Now().UnixNano()))
		// Bash takes a paste as text (bracketed paste), so Enter is typed
		// after it, as a person does.
		paste("echo pasted > " + marker)
		run(t, ctx, 5*time.Second, chromedp.Evaluate(`window.__portico.ws.send(new TextEncoder().encode('\r')); true`, nil))
		if tc.paste {
			defer func() {
				if t.Failed() {
					var buf string
					chromedp.Run(ctx, chromedp.Evaluate(`(() => { const b = window.__portico.term.buffer.active; let s = ''; for (let i = 0; i < b.length; i++) s += (b.getLine(i)?.translateToString() || '').trimEnd() + '\n'; return s.trim(); })()`, &buf))
					t.Logf("terminal:\n%s", buf)
				}
			}()
			waitFor(t, 30*time.Second, "the pasted command's file on the host", func() bool { _, err := os.Stat(marker); return err == nil })
		} else {
			// Typing a second command proves the terminal is live; the
			// pasted one must not have run before it.
			typed := marker + "-typed"
			run(t, ctx, 5*time.Second, chromedp.Evaluate(fmt.Sprintf(`window.__portico.ws.send(new TextEncoder().encode(%q)); true`, "echo typed > "+typed+"\r"), nil))
			waitFor(t, 30*time.Second, "the typed command's file on the host", func() bool { _, err := os.Stat(typed); return err == nil })
			if _, err := os.Stat(marker); err == nil {
				t.Errorf("%s: a paste reached the host", tc.set)
			}
		}
		got := copyText()
		if tc.cpy && got == "" {
			t.Errorf("%s: copy from the terminal gave nothing", tc.set)
		}
		if !tc.cpy && got != "" {
			t.Errorf("%s: copy from the terminal gave %q", tc.set, got)
		}
	}
}
