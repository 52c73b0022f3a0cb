package installer

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestGUIBundle(t *testing.T) {
	need(t, "xz", "xz-utils")
	need(t, "tar", "tar")
	ctx, cancel := context.WithTimeout(context.Background(), buildTimeout)
	defer cancel()
	root := repoRoot(t)
	toml := readFile(t, filepath.Join(root, "FyneApp.toml"))
	dist := t.TempDir()
	run(t, ctx, root, []string{"VERSION=1.2.3", "DIST=" + dist}, "installer/build-gui.sh")
	if readFile(t, filepath.Join(root, "FyneApp.toml")) != toml {
		t.Error("packaging changed FyneApp.toml in the source tree")
	}
	bundle := filepath.Join(dist, "portico-admin-1.2.3-linux-amd64.tar.xz")
	x := t.TempDir()
	run(t, ctx, "", nil, "tar", "-xJf", bundle, "-C", x)
	top := filepath.Join(x, "portico-admin")
	for _, f := range []string{"Makefile", "usr/local/bin/portico-admin", "usr/local/share/pixmaps/io.portico.admin.png", "usr/local/share/applications/io.portico.admin.desktop"} {
		if _, err := os.Stat(filepath.Join(top, f)); err != nil {
			t.Errorf("the bundle lacks %s: %v", f, err)
		}
	}
	if libs := neededLibs(t, filepath.Join(top, "usr/local/bin/portico-admin")); !strings.Contains(strings.Join(libs, " "), "libGL.so") {
		t.Errorf("the bundled portico-admin links %v: not the Fyne (OpenGL) GUI", libs)
	}
	need(t, "desktop-file-validate", "desktop-file-utils")
	// Errors fail (hints about FyneApp.toml's categories do not).
	run(t, ctx, "", nil, "desktop-file-validate", filepath.Join(top, "usr/local/share/applications/io.portico.admin.desktop"))
	desktop := readFile(t, filepath.Join(top, "usr/local/share/applications/io.portico.admin.desktop"))
	for _, w := range []string{"Name=Portico Admin", "Exec=portico-admin", "Icon=io.portico.admin", "Categories=Network;System;"} {
		if !strings.Contains(desktop, w+"\n") {
			t.Errorf("desktop entry lacks %q:\n%s", w, desktop)
		}
	}
}
