package main

import (
	"context"
	"fmt"
	"io"
	"net/url"
)

// runLaunch is a placeholder until the launch command (tunnel + viewer) is
// merged; that work replaces this file with launch.go.
func runLaunch(ctx context.Context, u *url.URL, stdout, stderr io.Writer) int {
	fmt.Fprintln(stderr, "launch: not built yet")
	return 2
}
