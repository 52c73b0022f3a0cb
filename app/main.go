// Command portico-admin is Portico's admin GUI (Fyne). It talks to the local
// gateway only through the admin API (token and endpoint from the data
// directory) and never opens the store.
package main

import (
	"flag"
	"os"
	"path/filepath"
	"runtime"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/app"
)

func defaultDataDir() string {
	switch runtime.GOOS {
	case "windows":
		base := os.Getenv("ProgramData")
		if base == "" {
			base = `C:\ProgramData`
		}
		return filepath.Join(base, "Portico")
	case "darwin":
		return "/Library/Application Support/Portico"
	}
	return "/var/lib/portico"
}

func main() {
	dataDir := flag.String("data-dir", defaultDataDir(), "the gateway's data directory (admin token and endpoint)")
	gateway := flag.String("gateway-binary", "", "path of portico-gateway for service control (default: next to this program, then PATH)")
	flag.Parse()
	a := app.NewWithID("io.portico.admin")
	w := a.NewWindow("Portico administration")
	w.Resize(fyne.NewSize(1100, 760))
	u := NewUI(a, w, *dataDir, *gateway)
	u.Connect()
	w.ShowAndRun()
}
