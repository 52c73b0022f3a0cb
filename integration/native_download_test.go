package integration

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"portico/service/config"
)

// TestNativeDownloadOfferedAtOnce: with "native" as the only launch method
// and no client on this computer, the page offers the download and the
// install steps for each OS as soon as detection ends, before any click.
func TestNativeDownloadOfferedAtOnce(t *testing.T) {
	p := startPortico(t)
	p.seedUser(t)
	clients := filepath.Join(p.Data, "clients")
	os.MkdirAll(clients, 0o755)
	for _, n := range []string{"portico-client", "portico-client.exe"} {
		if err := os.WriteFile(filepath.Join(clients, n), []byte("build of "+n), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	const timeout = 3
	p.editSite(t, func(s *config.PortalSettings) {
		s.Client.LaunchMethod, s.Client.Detection, s.Client.DetectionTimeoutSeconds = config.LaunchNative, config.DetectAutomatic, timeout
	})
	p.do(t, "POST", "/api/v1/resources", map[string]any{"id": "build", "name": "Build server", "protocol": "ssh", "host": "127.0.0.1", "port": 22, "users": []string{"alice"}}, nil)
	ctx := browser(t)
	signIn(t, ctx, p)
	waitJS(t, ctx, time.Duration(timeout+20)*time.Second, `!document.getElementById('native-download').hidden`, "the download offered after detection, without a click")
	var steps []string
	run(t, ctx, 5*time.Second, chromedp.Evaluate(`[...document.querySelectorAll('#install-steps li')].map(li => li.dataset.os + ': ' + li.innerText.replace(/\s+/g, ' '))`, &steps))
	joined := strings.Join(steps, "\n")
	if len(steps) != 2 || !strings.Contains(joined, "Linux: Download portico-client for Linux") || !strings.Contains(joined, "chmod +x ~/Downloads/portico-client && ~/Downloads/portico-client register") ||
		!strings.Contains(joined, "Windows: Download portico-client.exe for Windows") || !strings.Contains(joined, "portico-client.exe register") {
		t.Fatalf("install steps:\n%s", joined)
	}
	// This computer (Linux) comes first.
	if !strings.HasPrefix(steps[0], "Linux:") {
		t.Errorf("the first install step is %q, want this computer's OS", steps[0])
	}
	screenshot(t, ctx, "portal-native-download")
	var body string
	awaitJS(t, ctx, `(async () => { const a = document.querySelector('#install-steps a.download'); return await (await fetch(a.href)).text(); })()`, &body)
	if body != "build of portico-client" {
		t.Errorf("the download serves %q", body)
	}
}
