//go:build !windows

package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// desktopFile is the name of the handler's desktop entry.
const desktopFile = "portico-client.desktop"

// schemeMIME is the MIME type desktops use for portico:// links.
const schemeMIME = "x-scheme-handler/portico"

// xdgDir returns $<env> or ~/<fallback>, as the XDG base directory
// specification says.
func xdgDir(env, fallback string) (string, error) {
	if d := os.Getenv(env); filepath.IsAbs(d) {
		return d, nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("find the home directory: %w", err)
	}
	return filepath.Join(home, fallback), nil
}

func applicationsDir() (string, error) {
	d, err := xdgDir("XDG_DATA_HOME", ".local/share")
	return filepath.Join(d, "applications"), err
}

// desktopEntry is the .desktop file that makes exe the handler.
func desktopEntry(exe string) string {
	return "[Desktop Entry]\n" +
		"Type=Application\n" +
		"Name=Portico client\n" +
		"Comment=Opens Portico sessions from the User Portal\n" +
		"Exec=" + execQuote(exe) + " %u\n" +
		"Terminal=false\n" +
		"NoDisplay=true\n" +
		"MimeType=" + schemeMIME + ";\n" +
		"Categories=Network;RemoteAccess;\n"
}

// execQuote writes a path as a desktop entry's Exec argument. A path
// without reserved characters goes in bare (simple parsers such as
// xdg-open's generic mode do not understand quotes); otherwise it is
// double-quoted with ", `, $ and \ backslash-escaped, and the value's own
// escaping doubles every backslash again. % is always doubled.
func execQuote(s string) string {
	if !strings.ContainsAny(s, " \t\n\"'\\><~|&;$*?#()`") {
		return strings.ReplaceAll(s, "%", "%%")
	}
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch r {
		case '"', '`', '$':
			b.WriteString(`\\`)
			b.WriteRune(r)
		case '\\':
			b.WriteString(`\\\\`)
		case '%':
			b.WriteString("%%")
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
	return b.String()
}

// register writes the desktop entry and makes it the default handler with
// xdg-mime (package xdg-utils) when that exists.
func register(exe string, out io.Writer) error {
	dir, err := applicationsDir()
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("create %s: %w", dir, err)
	}
	path := filepath.Join(dir, desktopFile)
	if err := os.WriteFile(path, []byte(desktopEntry(exe)), 0o644); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	fmt.Fprintln(out, "wrote", path)
	refreshMIMECache(dir)
	if _, err := exec.LookPath("xdg-mime"); err != nil {
		fmt.Fprintln(out, "xdg-mime not found (install xdg-utils): the desktop picks the handler from the MimeType line of", desktopFile)
		return nil
	}
	if b, err := exec.Command("xdg-mime", "default", desktopFile, schemeMIME).CombinedOutput(); err != nil {
		return fmt.Errorf("xdg-mime default %s %s: %v: %s", desktopFile, schemeMIME, err, strings.TrimSpace(string(b)))
	}
	fmt.Fprintln(out, "set", desktopFile, "as the default for", schemeMIME)
	return nil
}

// unregister removes the desktop entry and the default-handler line that
// xdg-mime wrote; other entries of mimeapps.list are kept.
func unregister(out io.Writer) error {
	dir, err := applicationsDir()
	if err != nil {
		return err
	}
	path := filepath.Join(dir, desktopFile)
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove %s: %w", path, err)
	}
	fmt.Fprintln(out, "removed", path)
	// register refreshed the MIME cache with our entry in it; xdg-mime
	// reads that cache, so refresh it again without the entry.
	refreshMIMECache(dir)
	cfg, err := xdgDir("XDG_CONFIG_HOME", ".config")
	if err != nil {
		return err
	}
	return dropMimeDefault(filepath.Join(cfg, "mimeapps.list"))
}

// dropMimeDefault removes portico-client from the portico:// line of a
// mimeapps.list.
func dropMimeDefault(path string) error {
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read %s: %w", path, err)
	}
	var b strings.Builder
	changed := false
	sc := bufio.NewScanner(strings.NewReader(string(data)))
	for sc.Scan() {
		line := sc.Text()
		if v, ok := strings.CutPrefix(line, schemeMIME+"="); ok {
			var keep []string
			for _, app := range strings.Split(v, ";") {
				if app != "" && app != desktopFile {
					keep = append(keep, app)
				}
			}
			changed = true
			if len(keep) == 0 {
				continue
			}
			line = schemeMIME + "=" + strings.Join(keep, ";") + ";"
		}
		b.WriteString(line + "\n")
	}
	if !changed {
		return nil
	}
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// refreshMIMECache rebuilds dir's mimeinfo.cache where desktop-file-utils
// is installed; without it desktops read the entries themselves.
func refreshMIMECache(dir string) {
	if _, err := exec.LookPath("update-desktop-database"); err == nil {
		exec.Command("update-desktop-database", dir).Run()
	}
}
