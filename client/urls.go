package main

import (
	"context"
	"fmt"
	"io"
	"net/url"
	"strings"
)

// runURL handles a portico:// URL the OS handed over (the browser opened
// it from the portal): its host names the action.
func runURL(ctx context.Context, u *url.URL, stdout, stderr io.Writer) int {
	switch strings.ToLower(u.Host) {
	case "detect":
		return runDetect(ctx, u, stdout, stderr)
	case "launch":
		return runLaunch(ctx, u, stdout, stderr)
	}
	fmt.Fprintf(stderr, "portico-client: unknown portico:// action %q: the portal sends portico://detect or portico://launch\n", u.Host)
	return 2
}
