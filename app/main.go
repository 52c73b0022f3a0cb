// Command portico-admin is Portico's admin GUI (Fyne). It talks to the local
// gateway only through the admin API (token and endpoint from the data
// directory) and never opens the store.
package main

import (
	_ "embed"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/app"

	"portico/service/admin"
)

//go:embed icon.png
var iconPNG []byte

func main() {
	dataDir := flag.String("data-dir", admin.DefaultDataDir(), "the gateway's data directory (admin token and endpoint)")
	gateway := flag.String("gateway-binary", "", "path of portico-gateway for service control (default: next to this program, then PATH)")
	shots := flag.String("screenshot-dir", "", "take a PNG of each page into this directory and exit (documentation, checks)")
	flag.Parse()
	a := app.NewWithID("io.portico.admin")
	a.SetIcon(fyne.NewStaticResource("icon.png", iconPNG))
	w := a.NewWindow("Portico administration")
	w.Resize(fyne.NewSize(1100, 760))
	u := NewUI(a, w, *dataDir, *gateway)
	u.Connect()
	if *shots != "" {
		go screenshots(u, *shots)
	}
	w.ShowAndRun()
}

// screenshots renders every tab of the real window and saves it.
func screenshots(u *UI, dir string) {
	os.MkdirAll(dir, 0o755)
	names := []string{"gateway", "user-portal", "resources", "users", "directories", "policies", "activity"}
	time.Sleep(2 * time.Second)
	u.Wait()
	for i, name := range names {
		fyne.DoAndWait(func() { u.tabs.SelectIndex(i) })
		time.Sleep(1500 * time.Millisecond)
		u.Wait()
		// What the X server shows, not the GL buffer (black without a GPU).
		file := filepath.Join(dir, "gui-"+name+".png")
		if out, err := exec.Command("import", "-window", "root", file).CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "screenshot %s: %v %s (install imagemagick)\n", name, err, out)
		}
	}
	fyne.Do(u.app.Quit)
}
