// Command portico-gateway is the Portico gateway: the User Portal, the
// session relays and the admin API in one process, run by the OS service
// manager (systemd, Windows SCM) or in the foreground.
//
//	portico-gateway run|install|uninstall|start|stop|status|version [flags]
//	portico-gateway config get|set|export|import ...
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"time"

	"github.com/kardianos/service"

	"portico/assets"
	"portico/portal"
	"portico/service/admin"
	"portico/service/gateway"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

const usage = `portico-gateway — the Portico secure gateway and User Portal

Usage:
  portico-gateway run        [flags]   run in the foreground (Ctrl+C stops)
  portico-gateway install    [flags]   install as a system service (flags are kept)
  portico-gateway uninstall            remove the system service (data is kept)
  portico-gateway start | stop         start or stop the installed service
  portico-gateway status               show whether the service is installed and running
  portico-gateway version              print the version
  portico-gateway config get WHAT      print settings as JSON; WHAT is one of
                                       status site gateway effective resources users
                                       groups policies certificate sessions audit
  portico-gateway config set WHAT FILE replace site|gateway|policies from a JSON file ("-" = stdin)
  portico-gateway config export [FILE] write the whole configuration as JSON
  portico-gateway config import FILE   replace the whole configuration (validated, all or nothing)

Flags:
`

func main() {
	os.Exit(runMain(os.Args[1:], os.Stdout, os.Stderr))
}

// flags are the options shared by the commands.
type flags struct {
	dataDir, httpsAddr, httpAddr, adminAddr, dnsAddr, adminPassword, logLevel string
	// keepAlive is the session keep-alive interval (portal.DefaultKeepAlive).
	keepAlive time.Duration
}

func newFlagSet(name string, f *flags, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&f.dataDir, "data-dir", admin.DefaultDataDir(), "where the store, keys, certificates and admin token live")
	fs.StringVar(&f.httpsAddr, "https-addr", "", "HTTPS listen address (default: stored setting, :443)")
	fs.StringVar(&f.httpAddr, "http-addr", "", "HTTP redirect listen address (default: stored setting, :80)")
	fs.StringVar(&f.adminAddr, "admin-addr", "", "admin API listen address, loopback only (default: stored setting, 127.0.0.1:9443)")
	fs.StringVar(&f.dnsAddr, "dns-addr", "", "native-client detection DNS responder address, UDP and TCP (default: stored setting detect.dnsListen, :8053)")
	fs.StringVar(&f.adminPassword, "admin-password", os.Getenv("PORTICO_ADMIN_PASSWORD"), "first-run admin password (default: generated and printed once)")
	fs.StringVar(&f.logLevel, "log-level", "info", "debug, info, warn or error")
	fs.DurationVar(&f.keepAlive, "keepalive", portal.DefaultKeepAlive, "how often live sessions ping the browser and probe SSH hosts; a peer silent for 2.5 intervals ends its session")
	fs.Usage = func() {
		fmt.Fprint(stderr, usage)
		fs.PrintDefaults()
	}
	return fs
}

func runMain(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		newFlagSet("", &flags{}, stderr).PrintDefaults()
		return 2
	}
	cmd, rest := args[0], args[1:]
	var f flags
	fs := newFlagSet(cmd, &f, stderr)
	switch cmd {
	case "version", "-version", "--version":
		fmt.Fprintf(stdout, "portico-gateway %s (%s, %s/%s)\n", version, runtime.Version(), runtime.GOOS, runtime.GOARCH)
		return 0
	case "help", "-h", "--help":
		fs.Usage()
		return 0
	case "config":
		return configCmd(rest, stdout, stderr)
	case "run", "install", "uninstall", "start", "stop", "status", "restart":
	default:
		fmt.Fprintf(stderr, "unknown command %q\n\n", cmd)
		fs.Usage()
		return 2
	}
	if err := fs.Parse(rest); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "unexpected arguments: %s\n", strings.Join(fs.Args(), " "))
		return 2
	}
	abs, err := filepath.Abs(f.dataDir)
	if err != nil {
		fmt.Fprintf(stderr, "data dir: %v\n", err)
		return 1
	}
	f.dataDir = abs
	p := &program{f: f, out: stdout, log: newLogger(stderr, f.logLevel)}
	svc, err := service.New(p, serviceConfig(f))
	if err != nil {
		fmt.Fprintf(stderr, "service manager: %v\n", err)
		return 1
	}
	if cmd == "run" && runtime.GOOS == "windows" && !service.Interactive() {
		p.log = eventLogger(svc, f.logLevel, p.log)
		if sink, err := svc.Logger(nil); err == nil {
			p.out = eventLogWriter{sink} // the first-run password and listen addresses
		}
	}
	if cmd == "install" {
		if unit := packagedUnit(); unit != "" {
			fmt.Fprintf(stderr, "install: the Portico package already installed the service (%s): use systemctl enable --now portico-gateway, or portico-gateway start\n", unit)
			return 1
		}
	}
	if cmd == "run" {
		if err := runForeground(svc, p); err != nil {
			fmt.Fprintf(stderr, "portico-gateway: %v\n", err)
			return 1
		}
		return 0
	}
	return control(svc, cmd, stdout, stderr)
}

// packagedUnit returns the path of the Debian package's systemd unit, or
// "" when there is none. An "install" on top would write a second,
// unhardened root unit to /etc/systemd/system that shadows it.
func packagedUnit() string {
	if runtime.GOOS != "linux" {
		return ""
	}
	for _, p := range []string{"/lib/systemd/system/portico-gateway.service", "/usr/lib/systemd/system/portico-gateway.service"} {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	return ""
}

func newLogger(w io.Writer, level string) *slog.Logger {
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: parseLevel(level)}))
}

// parseLevel reads --log-level; anything unknown means info.
func parseLevel(level string) slog.Level {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		l = slog.LevelInfo
	}
	return l
}

func serviceConfig(f flags) *service.Config {
	args := []string{"run", "--data-dir", f.dataDir}
	for _, kv := range [][2]string{{"--https-addr", f.httpsAddr}, {"--http-addr", f.httpAddr}, {"--admin-addr", f.adminAddr}, {"--dns-addr", f.dnsAddr}, {"--log-level", f.logLevel}} {
		if kv[1] != "" {
			args = append(args, kv[0], kv[1])
		}
	}
	return &service.Config{
		Name:        "portico-gateway",
		DisplayName: "Portico gateway",
		Description: "Portico secure gateway and User Portal for remote desktops and applications.",
		Arguments:   args,
		Option: service.KeyValue{
			"Restart":           "always",
			"SuccessExitStatus": "0",
			"LimitNOFILE":       65536,
			"OnFailure":         "restart",
		},
	}
}

// runForeground runs the gateway until SIGINT/SIGTERM (or the service
// manager's stop). Under an init system kardianos' Run does the same.
func runForeground(svc service.Service, p *program) error {
	if service.Interactive() {
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		defer stop()
		return p.run(ctx)
	}
	if err := svc.Run(); err != nil {
		return err
	}
	return p.err
}

func control(svc service.Service, cmd string, stdout, stderr io.Writer) int {
	if cmd == "status" {
		st, err := svc.Status()
		switch {
		case errors.Is(err, service.ErrNotInstalled):
			fmt.Fprintln(stdout, "not installed as a service: the service manager does not know portico-gateway (a gateway started with `portico-gateway run` runs in the foreground until it is stopped); `portico-gateway install` sets the service up")
			return 3
		case err != nil:
			fmt.Fprintf(stderr, "status: %v\n", err)
			return 1
		case st == service.StatusRunning:
			fmt.Fprintln(stdout, "running as a service")
			return 0
		case st == service.StatusStopped:
			fmt.Fprintln(stdout, "installed as a service, stopped: `portico-gateway start` starts it")
			return 3
		}
		fmt.Fprintln(stdout, "installed as a service, state unknown to the service manager")
		return 4
	}
	if err := service.Control(svc, cmd); err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", cmd, explainControl(err))
		return 1
	}
	fmt.Fprintf(stdout, "%s: done\n", cmd)
	return 0
}

func explainControl(err error) error {
	msg := err.Error()
	if strings.Contains(msg, "ermission") || strings.Contains(msg, "Access is denied") {
		return fmt.Errorf("%w (run as root / Administrator)", err)
	}
	return err
}

// program adapts the gateway to kardianos/service.
type program struct {
	f      flags
	out    io.Writer
	log    *slog.Logger
	cancel context.CancelFunc
	done   chan struct{}
	err    error
}

// Start is called by the service manager; it must not block.
func (p *program) Start(service.Service) error {
	ctx, cancel := context.WithCancel(context.Background())
	p.cancel, p.done = cancel, make(chan struct{})
	go func() {
		defer close(p.done)
		if err := p.run(ctx); err != nil {
			p.err = err
			p.log.Error("gateway stopped with an error", "err", err)
			os.Exit(1)
		}
	}()
	return nil
}

// Stop is called by the service manager; it waits for a graceful shutdown.
func (p *program) Stop(service.Service) error {
	if p.cancel != nil {
		p.cancel()
		<-p.done
	}
	return nil
}

func (p *program) run(ctx context.Context) error {
	g, err := gateway.New(gateway.Options{
		DataDir: p.f.dataDir, HTTPSAddr: p.f.httpsAddr, HTTPAddr: p.f.httpAddr, AdminAddr: p.f.adminAddr, DNSAddr: p.f.dnsAddr,
		AdminPassword: p.f.adminPassword, Version: version, Logger: p.log, Out: p.out, Service: !service.Interactive(),
		Portal: func(parts gateway.Parts) http.Handler { return newPortal(parts, p.f.keepAlive) },
	})
	if err != nil {
		return err
	}
	return g.Run(ctx)
}

// newPortal builds the User Portal from the gateway's parts and the
// embedded web assets.
func newPortal(parts gateway.Parts, keepAlive time.Duration) http.Handler {
	web := assets.New()
	if !web.VendorBuilt() {
		parts.Logger.Warn("the browser clients are not built into this binary: sessions cannot open in the browser (build with make build)")
	}
	return portal.New(portal.Deps{
		Live: parts.Live, Store: parts.Store, Secrets: parts.Secrets, Sessions: parts.Sessions, Logger: parts.Logger,
		Static: web, AssetURL: web.URL, VendorBuilt: web.VendorBuilt,
		Nonces: parts.Nonces, Fingerprint: func() string { return parts.Certs.Info().SHA256 }, DetectDNS: parts.DetectDNS,
		ClientDirs: clientDirs(parts.DataDir), Guard: parts.Guard, DriveDir: filepath.Join(parts.DataDir, "drives"), KeepAlive: keepAlive,
	})
}

// clientDirs are where the portal looks for portico-client builds to hand
// out: next to the gateway executable (make build puts both in bin/) and
// the data directory's clients folder (packaging installs them there).
func clientDirs(dataDir string) []string {
	dirs := []string{filepath.Join(dataDir, "clients")}
	if exe, err := os.Executable(); err == nil {
		if exe, err = filepath.EvalSymlinks(exe); err == nil {
			dirs = append([]string{filepath.Dir(exe)}, dirs...)
		}
	}
	return dirs
}
