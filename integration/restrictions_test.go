package integration

import (
	"fmt"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"portico/service/config"
)

// otherOrigin serves one page on another loopback origin (another port).
func otherOrigin(t *testing.T, body string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		fmt.Fprint(w, body)
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return "http://" + ln.Addr().String()
}

func TestCORSDecidedByTheBrowser(t *testing.T) {
	p := startPortico(t)
	js := `<!doctype html><script>
window.probe = () => fetch('` + p.URL + `/userportal/api/resources', {credentials: 'include', headers: {'X-CSRF-Token': 'x'}})
  .then(r => 'status ' + r.status, e => 'blocked');
</script>`
	outer := otherOrigin(t, js)
	ctx := browser(t)
	probe := func() string {
		var res string
		run(t, ctx, 20*time.Second, chromedp.Navigate(outer+"/"))
		awaitJS(t, ctx, `window.probe()`, &res)
		return res
	}
	if got := probe(); got != "blocked" {
		t.Fatalf("CORS off: cross-origin read allowed (%s)", got)
	}
	p.editSite(t, func(s *config.PortalSettings) {
		s.Restrictions.CORS = config.CORS{Enabled: true, Origins: []string{outer}, CacheSeconds: 60}
	})
	// The portal answers 401 (not signed in), and the browser lets the page read it.
	if got := probe(); got != "status 401" {
		t.Fatalf("CORS on for %s: %s", outer, got)
	}
	p.editSite(t, func(s *config.PortalSettings) {
		s.Restrictions.CORS = config.CORS{Enabled: true, Origins: []string{"https://someone-else.example.com"}, CacheSeconds: 60}
	})
	if got := probe(); got != "blocked" {
		t.Fatalf("CORS for another origin only: %s", got)
	}
}
