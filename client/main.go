// Command portico-client is the native client helper end users install: it
// is registered as the portico:// URL handler, answers the portal's
// detection probes and tunnels a launched session to the gateway for the
// platform's own viewer (mstsc, xfreerdp, a VNC viewer, ssh).
//
// It is pure Go (CGO_ENABLED=0) so one small binary runs on Linux and
// Windows without an installer's help.
package main

import (
	"context"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/signal"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

const usage = `portico-client — opens Portico sessions in this computer's own remote-desktop, VNC or SSH program

Usage:
  portico-client register    make portico-client this user's handler for portico:// links
  portico-client unregister  undo register
  portico-client 'portico://detect?...'
                             answer the portal's detection (HTTP and DNS probes)
  portico-client 'portico://launch?...'
                             open a session the portal launched
  portico-client version     print the version
  portico-client 'portico://launch?...'
                             open a session the portal launched (the
                             viewer can be overridden with PORTICO_VIEWER)
`

func main() {
	os.Exit(runMain(os.Args[1:], os.Stdout, os.Stderr))
}

// runMain is main without the process exit, so tests can drive it.
func runMain(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	if u, err := url.Parse(args[0]); err == nil && u.Scheme == "portico" {
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
		defer stop()
		return runURL(ctx, u, stdout, stderr)
	}
	switch args[0] {
	case "register":
		return runRegister(stdout, stderr)
	case "unregister":
		return runUnregister(stdout, stderr)
	case "version":
		fmt.Fprintln(stdout, "portico-client", version)
		return 0
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	}
	fmt.Fprintf(stderr, "portico-client: unknown command %q\n\n%s", args[0], usage)
	return 2
}
