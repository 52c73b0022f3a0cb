//go:build !windows

package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func TestExecQuote(t *testing.T) {
	for in, want := range map[string]string{
		"/usr/bin/portico-client":            `/usr/bin/portico-client`,
		"/opt/100%/portico-client":           `/opt/100%%/portico-client`,
		"/home/a b/portico-client":           `"/home/a b/portico-client"`,
		`/opt/$x/"q"/100%/back\slash/` + "`": `"/opt/\\$x/\\"q\\"/100%%/back\\\\slash/\\` + "`\"",
	} {
		if got := execQuote(in); got != want {
			t.Errorf("execQuote(%q) = %s, want %s", in, got, want)
		}
	}
}

// TestRegisterUnregister registers under a temporary home and asks
// xdg-mime, as a desktop would, which program opens portico:// links.
func TestRegisterUnregister(t *testing.T) {
	if _, err := exec.LookPath("xdg-mime"); err != nil {
		t.Fatalf("xdg-mime not found: install the Debian package xdg-utils")
	}
	home := t.TempDir()
	t.Setenv("HOME", home)
	t.Setenv("XDG_DATA_HOME", filepath.Join(home, "data"))
	t.Setenv("XDG_CONFIG_HOME", filepath.Join(home, "config"))
	t.Setenv("XDG_DATA_DIRS", filepath.Join(home, "none"))
	t.Setenv("XDG_CONFIG_DIRS", filepath.Join(home, "none"))
	t.Setenv("XDG_CURRENT_DESKTOP", "")
	t.Setenv("DE", "")

	var out, errb bytes.Buffer
	if code := runMain([]string{"register"}, &out, &errb); code != 0 {
		t.Fatalf("register: %d %s%s", code, out.String(), errb.String())
	}
	exe, _ := executable()
	entry, err := os.ReadFile(filepath.Join(home, "data", "applications", desktopFile))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"\nExec=" + execQuote(exe) + " %u\n", "\nMimeType=x-scheme-handler/portico;\n", "\nType=Application\n"} {
		if !strings.Contains(string(entry), want) {
			t.Fatalf("desktop entry lacks %q:\n%s", want, entry)
		}
	}
	q, err := exec.Command("xdg-mime", "query", "default", schemeMIME).Output()
	if got := strings.TrimSpace(string(q)); err != nil || got != desktopFile {
		t.Fatalf("xdg-mime query default %s = %q (%v), want %s", schemeMIME, got, err, desktopFile)
	}

	// Another handler's line for another scheme survives unregister.
	mimeapps := filepath.Join(home, "config", "mimeapps.list")
	data, _ := os.ReadFile(mimeapps)
	os.WriteFile(mimeapps, append(data, []byte("x-scheme-handler/other=other.desktop;\n")...), 0o644)
	out.Reset()
	if code := runMain([]string{"unregister"}, &out, &errb); code != 0 {
		t.Fatalf("unregister: %d %s", code, errb.String())
	}
	if _, err := os.Stat(filepath.Join(home, "data", "applications", desktopFile)); !os.IsNotExist(err) {
		t.Fatalf("desktop entry still there: %v", err)
	}
	q, _ = exec.Command("xdg-mime", "query", "default", schemeMIME).Output()
	if got := strings.TrimSpace(string(q)); got != "" {
		t.Fatalf("after unregister xdg-mime still names %q", got)
	}
	if data, _ := os.ReadFile(mimeapps); !strings.Contains(string(data), "x-scheme-handler/other=other.desktop;") {
		t.Fatalf("unregister removed another handler:\n%s", data)
	}
}
