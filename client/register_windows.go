//go:build windows

package main

import (
	"errors"
	"fmt"
	"io"

	"golang.org/x/sys/windows/registry"
)

// classKey is the per-user URL protocol registration; HKCU needs no
// administrator rights and applies to this user only.
const classKey = `Software\Classes\portico`

// register writes HKCU\Software\Classes\portico with the URL Protocol
// marker and shell\open\command pointing at exe.
func register(exe string, out io.Writer) error {
	set := func(path string, values map[string]string) error {
		k, _, err := registry.CreateKey(registry.CURRENT_USER, path, registry.SET_VALUE)
		if err != nil {
			return fmt.Errorf(`create HKCU\%s: %w`, path, err)
		}
		defer k.Close()
		for name, v := range values {
			if err := k.SetStringValue(name, v); err != nil {
				return fmt.Errorf(`set HKCU\%s %q: %w`, path, name, err)
			}
		}
		return nil
	}
	if err := set(classKey, map[string]string{"": "URL:Portico", "URL Protocol": ""}); err != nil {
		return err
	}
	if err := set(classKey+`\DefaultIcon`, map[string]string{"": `"` + exe + `",0`}); err != nil {
		return err
	}
	if err := set(classKey+`\shell\open\command`, map[string]string{"": `"` + exe + `" "%1"`}); err != nil {
		return err
	}
	fmt.Fprintln(out, `wrote HKCU\`+classKey)
	return nil
}

// unregister deletes the keys, deepest first (DeleteKey needs them empty).
func unregister(out io.Writer) error {
	for _, p := range []string{`\shell\open\command`, `\shell\open`, `\shell`, `\DefaultIcon`, ``} {
		if err := registry.DeleteKey(registry.CURRENT_USER, classKey+p); err != nil && !errors.Is(err, registry.ErrNotExist) {
			return fmt.Errorf(`delete HKCU\%s: %w`, classKey+p, err)
		}
	}
	fmt.Fprintln(out, `removed HKCU\`+classKey)
	return nil
}
