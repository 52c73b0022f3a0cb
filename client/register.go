package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// executable is this program's resolved path, which the URL handler
// registration points at.
func executable() (string, error) {
	exe, err := os.Executable()
	if err != nil {
		return "", fmt.Errorf("find this program's path: %w", err)
	}
	if exe, err = filepath.EvalSymlinks(exe); err != nil {
		return "", fmt.Errorf("resolve this program's path: %w", err)
	}
	return exe, nil
}

// runRegister registers this program as the current user's portico:// URL
// handler (no administrator rights needed).
func runRegister(stdout, stderr io.Writer) int {
	exe, err := executable()
	if err == nil {
		err = register(exe, stdout)
	}
	if err != nil {
		fmt.Fprintf(stderr, "portico-client register: %v\n", err)
		return 1
	}
	fmt.Fprintln(stdout, "portico:// links now open", exe)
	return 0
}

// runUnregister removes the registration.
func runUnregister(stdout, stderr io.Writer) int {
	if err := unregister(stdout); err != nil {
		fmt.Fprintf(stderr, "portico-client unregister: %v\n", err)
		return 1
	}
	fmt.Fprintln(stdout, "portico:// links are no longer handled by portico-client")
	return 0
}
