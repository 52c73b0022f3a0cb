package installer

import (
	"archive/zip"
	"bytes"
	"context"
	"io"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

func TestWindowsZip(t *testing.T) {
	need(t, "x86_64-w64-mingw32-gcc", "gcc-mingw-w64-x86-64")
	need(t, "zip", "zip")
	need(t, "file", "file")
	need(t, "makensis", "nsis")
	ctx, cancel := context.WithTimeout(context.Background(), buildTimeout)
	defer cancel()
	version := "0.9.0-wintest"
	dist := t.TempDir()
	out := run(t, ctx, repoRoot(t), []string{"VERSION=" + version, "DIST=" + dist, "NSIS_COMPRESSOR=zlib"}, "installer/build-windows.sh")
	zipPath := filepath.Join(dist, "portico-"+version+"-windows-amd64.zip")
	if !strings.Contains(out, filepath.Base(zipPath)) {
		t.Errorf("build-windows.sh printed %q, want the zip's name %s", out, filepath.Base(zipPath))
	}
	zr, err := zip.OpenReader(zipPath)
	if err != nil {
		t.Fatal(err)
	}
	defer zr.Close()

	// file(1) names each program's kind: the GUI without a console, the
	// service and the client as console programs.
	want := map[string]string{
		"portico-gateway.exe": "PE32+ executable (console) x86-64",
		"portico-client.exe":  "PE32+ executable (console) x86-64",
		"portico-admin.exe":   "PE32+ executable (GUI) x86-64",
		"install.ps1":         "",
		"uninstall.ps1":       "",
		"README.txt":          "",
	}
	var names []string
	x := t.TempDir()
	for _, f := range zr.File {
		if f.FileInfo().IsDir() {
			continue
		}
		dir, name := path.Split(f.Name)
		if dir != "portico-"+version+"-windows-amd64/" {
			t.Errorf("%s is not in the zip's one top folder", f.Name)
		}
		names = append(names, name)
		rc, err := f.Open()
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(x, name)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		if kind := want[name]; kind != "" {
			if got := run(t, ctx, "", nil, "file", "-b", p); !strings.HasPrefix(got, kind) {
				t.Errorf("file %s: %q, want %q", name, got, kind)
			}
			// The gateway and client carry the build's version.
			if name != "portico-admin.exe" && !bytes.Contains(b, []byte(version)) {
				t.Errorf("%s does not contain its version %s", name, version)
			}
		}
		if strings.HasSuffix(name, ".ps1") || strings.HasSuffix(name, ".txt") {
			if bytes.Count(b, []byte("\n")) != bytes.Count(b, []byte("\r\n")) {
				t.Errorf("%s has bare LF line ends; Windows tools want CRLF", name)
			}
		}
	}
	sort.Strings(names)
	var wantNames []string
	for n := range want {
		wantNames = append(wantNames, n)
	}
	sort.Strings(wantNames)
	if strings.Join(names, " ") != strings.Join(wantNames, " ") {
		t.Errorf("zip holds %v, want %v", names, wantNames)
	}

	// install.ps1 installs through the gateway's own service commands into
	// the data directory the GUI looks in, locks that directory down and
	// registers the URL handler; uninstall.ps1 undoes it.
	install := readFile(t, filepath.Join(x, "install.ps1"))
	for _, w := range []string{"#Requires -RunAsAdministrator", `@('install', '--data-dir', $DataDir)`, `@('start')`,
		`Join-Path $env:ProgramData 'Portico'`, "SetAccessRuleProtection($true, $false)", "'S-1-5-18', 'S-1-5-32-544'",
		"portico-client.exe') register", "Join-Path $env:ProgramFiles 'Portico'"} {
		if !strings.Contains(install, w) {
			t.Errorf("install.ps1 lacks %q", w)
		}
	}
	uninstall := readFile(t, filepath.Join(x, "uninstall.ps1"))
	for _, w := range []string{"& $gateway uninstall", "& $client unregister", "if ($Purge)"} {
		if !strings.Contains(uninstall, w) {
			t.Errorf("uninstall.ps1 lacks %q", w)
		}
	}

	// setup.exe is the NSIS wrapper that runs the same install.ps1.
	setup := strings.TrimSuffix(zipPath, ".zip") + "-setup.exe"
	if got := run(t, ctx, "", nil, "file", "-b", setup); !strings.Contains(got, "Nullsoft Installer self-extracting archive") {
		t.Errorf("file %s: %q, want an NSIS installer", filepath.Base(setup), got)
	}

	// The Windows builds of the pure-Go programs pass go vet.
	run(t, ctx, repoRoot(t), []string{"GOOS=windows", "GOARCH=amd64", "CGO_ENABLED=0"}, "go", "vet", "./service/...", "./client/...")
}
