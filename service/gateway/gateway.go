// Package gateway assembles the running Portico gateway: it opens the store,
// performs first-run set-up (admin account, admin token, certificates),
// publishes the configuration snapshot, and owns the listeners: HTTPS
// (portal, relays; or raw forwarding in Forwarding mode; native tunnels by
// ALPN), the alternate port for native clients (following the live NLB
// settings), the HTTP redirector and the loopback admin API. It decides nothing about settings
// (service/config does) and serves no page itself beyond the redirect and
// the "portal unavailable" answer.
package gateway

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"time"

	"portico/service/admin"
	"portico/service/config"
	"portico/service/detect"
	"portico/service/directory"
	"portico/service/secret"
	"portico/service/sessions"
	"portico/service/signin"
	"portico/service/store"
	"portico/service/tlscert"
)

// Options configure a Gateway. Empty listen addresses fall back to the
// stored ones (flags win over the store).
type Options struct {
	// DataDir holds the store, keys, certificates and the admin token.
	DataDir string
	// HTTPSAddr, HTTPAddr and AdminAddr override the stored listen addresses.
	HTTPSAddr, HTTPAddr, AdminAddr string
	// DNSAddr overrides the stored detection DNS address (detect.dnsListen).
	DNSAddr string
	// AdminPassword is the first-run admin password; "" generates one.
	AdminPassword string
	// Version is the build version shown in status.
	Version string
	// Service is true when the OS service manager runs this gateway
	// (systemd, Windows SCM); false for `portico-gateway run` in a terminal.
	Service bool
	// Logger receives structured logs.
	Logger *slog.Logger
	// Out receives the one-time first-run message (credentials, URL).
	Out io.Writer
	// Portal builds the handler for everything on the HTTPS port that the
	// gateway itself does not serve (the User Portal, its APIs, relays and
	// static files) from the gateway's parts. Nil serves only the gateway's
	// own answers (tests of the gateway alone).
	Portal func(Parts) http.Handler
	// Timeouts bound what a slow or silent client can hold on every
	// listener; zero fields take the defaults.
	Timeouts Timeouts
}

// Timeouts are the connection deadlines of the gateway's HTTP listeners
// (portal, redirect, admin API).
type Timeouts struct {
	// Header is how long a client may take to send a request's headers
	// (HTTP/1.1), and an HTTP/2 connection its first header block, from
	// the TLS handshake on (default 10 s).
	Header time.Duration
	// Body is how long a request's body may take to arrive once its
	// headers are read (default 30 s); WebSocket and native tunnel
	// connections clear it when they take the connection over.
	Body time.Duration
	// Idle closes a connection (HTTP/1.1 keep-alive, or HTTP/2 without a
	// request in progress, an unfinished header block included) after
	// this long without a request (default 60 s).
	Idle time.Duration
	// MaxBody caps a request body on the HTTPS port (default 1 MiB; the
	// portal's forms set smaller caps of their own).
	MaxBody int64
}

// Default timeouts.
const (
	DefaultHeaderTimeout = 10 * time.Second
	DefaultBodyTimeout   = 30 * time.Second
	DefaultIdleTimeout   = 60 * time.Second
	DefaultMaxBody       = 1 << 20
	// adminMaxBody allows a whole configuration import.
	adminMaxBody = 32 << 20
)

func (t Timeouts) withDefaults() Timeouts {
	if t.Header <= 0 {
		t.Header = DefaultHeaderTimeout
	}
	if t.Body <= 0 {
		t.Body = DefaultBodyTimeout
	}
	if t.Idle <= 0 {
		t.Idle = DefaultIdleTimeout
	}
	if t.MaxBody <= 0 {
		t.MaxBody = DefaultMaxBody
	}
	return t
}

// server is an http.Server with the deadlines of to. ReadTimeout is the
// header deadline: net/http arms it at the TLS handshake, HTTP/2 keeps it
// until the first header block is complete, so a client that never
// finishes one is closed then; bounded then stretches it for the body.
func (to Timeouts) server(h http.Handler, maxBody int64, tlsCfg *tls.Config, errLog *log.Logger) *http.Server {
	return &http.Server{Handler: bounded(h, to.Body, maxBody), TLSConfig: tlsCfg, ReadHeaderTimeout: to.Header, ReadTimeout: to.Header,
		IdleTimeout: to.Idle, ErrorLog: errLog}
}

// bounded gives a request's body its own read deadline and a size cap.
// A file upload into a session (POST …/api/files/…, which the portal
// checks for a sign-in and CSRF before it reads a byte) may be far larger
// and take far longer than a form: it gets uploadMaxBody, and its deadline
// moves on by body for every progressStep bytes that arrive, so a client
// that sends steadily can upload gigabytes while one that trickles is
// still cut off.
func bounded(next http.Handler, body time.Duration, maxBody int64) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Body != nil && r.Body != http.NoBody {
			// Errors mean the connection cannot set deadlines (a test
			// recorder); the server-wide ReadTimeout still holds then.
			rc := http.NewResponseController(w)
			rc.SetReadDeadline(time.Now().Add(body))
			if r.Method == http.MethodPost && strings.Contains(r.URL.Path, "/api/files/") {
				r.Body = http.MaxBytesReader(w, &progressBody{ReadCloser: r.Body, rc: rc, step: body}, uploadMaxBody)
			} else {
				r.Body = http.MaxBytesReader(w, r.Body, maxBody)
			}
		}
		next.ServeHTTP(w, r)
	})
}

// uploadMaxBody caps a file upload into a session (the portal's own
// per-file cap is the same).
const uploadMaxBody = 2 << 30

// progressStep is how many bytes of an upload move its read deadline on.
const progressStep = 64 << 10

// progressBody extends the read deadline of an upload while it moves.
type progressBody struct {
	io.ReadCloser
	rc   *http.ResponseController
	step time.Duration
	got  int64 // bytes since the deadline last moved
}

func (b *progressBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if b.got += int64(n); b.got >= progressStep {
		b.got = 0
		b.rc.SetReadDeadline(time.Now().Add(b.step))
	}
	return n, err
}

// Parts are the running gateway's pieces a portal is built from.
type Parts struct {
	Live     *config.Live
	Store    *store.Store
	Secrets  *secret.Box
	Sessions *sessions.Registry
	Logger   *slog.Logger
	// Certs is the gateway's TLS certificate (native clients pin its leaf).
	Certs *tlscert.Manager
	// Nonces are the native-client detection nonces.
	Nonces *detect.Nonces
	// DetectDNS returns the detection DNS responder's bound address, ""
	// when it is not running.
	DetectDNS func() string
	// DataDir is the gateway's data directory (client builds may live in
	// its clients folder).
	DataDir string
	// Guard is the gate every sign-in credential check goes through; its
	// counters are in the admin API's status.
	Guard *signin.Guard
}

// Files in the data directory besides the store.
const (
	// TokenFile holds the admin API bearer token (0600).
	TokenFile = "admin.token"
	// EndpointFile tells local admin clients where the admin API is and
	// which certificate it presents (not secret).
	EndpointFile = "admin-endpoint.json"
)

// Gateway is a running (or ready to run) gateway.
type Gateway struct {
	opt      Options
	log      *slog.Logger
	store    *store.Store
	live     *config.Live
	certs    *tlscert.Manager
	adminTLS *tlscert.Manager
	box      *secret.Box
	sessions *sessions.Registry
	nonces   *detect.Nonces
	guard    *signin.Guard
	token    string
	started  time.Time

	mu        sync.Mutex
	listeners []admin.Listener
	servers   []*http.Server
	disp      *dispatcher
	// disps are every dispatcher the HTTPS listener had (it can move
	// live); their forwarded connections end at shutdown.
	disps    []*dispatcher
	stopOnce sync.Once
	// stopNative ends the alternate-port listener and native tunnels.
	stopNative context.CancelFunc
	// stopDNS ends the detection DNS responder.
	stopDNS func()
	portal  http.Handler
}

// New opens the data directory and prepares everything short of listening.
func New(opt Options) (*Gateway, error) {
	if opt.Logger == nil {
		opt.Logger = slog.Default()
	}
	if opt.Out == nil {
		opt.Out = io.Discard
	}
	if err := os.MkdirAll(opt.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("create data dir: %w", err)
	}
	st, err := store.Open(opt.DataDir, store.Options{})
	if err != nil {
		return nil, err
	}
	g := &Gateway{opt: opt, log: opt.Logger, store: st, sessions: sessions.NewRegistry(), nonces: detect.NewNonces(0), guard: signin.NewGuard(signin.Options{}), started: time.Now()}
	if err := g.init(); err != nil {
		st.Close()
		return nil, err
	}
	return g, nil
}

func (g *Gateway) init() error {
	var err error
	if g.box, err = secret.Open(g.opt.DataDir); err != nil {
		return err
	}
	if err := g.firstRun(); err != nil {
		return err
	}
	if g.token, err = loadOrCreateToken(filepath.Join(g.opt.DataDir, TokenFile)); err != nil {
		return err
	}
	var snap *config.Snapshot
	if err := g.store.View(func(t *store.Tx) error {
		snap, err = t.Snapshot(config.DefaultGatewayID)
		return err
	}); err != nil {
		return fmt.Errorf("load configuration: %w", err)
	}
	g.live = config.NewLive(snap)
	if g.certs, err = tlscert.Open(certStorage{g.store, store.CertGateway}, snap.Gateway.PublicHosts); err != nil {
		return fmt.Errorf("gateway certificate: %w", err)
	}
	if g.adminTLS, err = tlscert.Open(certStorage{g.store, store.CertAdmin}, []string{"127.0.0.1", "::1", "localhost"}); err != nil {
		return fmt.Errorf("admin API certificate: %w", err)
	}
	if g.opt.Portal != nil {
		g.portal = g.opt.Portal(Parts{Live: g.live, Store: g.store, Secrets: g.box, Sessions: g.sessions, Logger: g.log, Certs: g.certs, Nonces: g.nonces,
			DetectDNS: func() string { return g.listener("dns") }, DataDir: g.opt.DataDir, Guard: g.guard})
	}
	return nil
}

// firstRun creates the administrator account once, printing its password.
func (g *Gateway) firstRun() error {
	return g.store.Update(func(t *store.Tx) error {
		if t.FirstRunDone() {
			return nil
		}
		pw := g.opt.AdminPassword
		if pw == "" {
			var err error
			if pw, err = directory.GeneratePassword(); err != nil {
				return err
			}
		}
		hash, err := directory.HashPassword(pw)
		if err != nil {
			return fmt.Errorf("first-run admin password: %w", err)
		}
		if err := t.PutUser(directory.User{Username: "admin", DisplayName: "Administrator", Groups: []string{}, Admin: true, PasswordHash: hash}); err != nil {
			return err
		}
		if err := t.AppendAudit(store.Event{Type: "firstrun", User: "admin", Detail: "created the administrator account"}); err != nil {
			return err
		}
		// The paths are this gateway's own (./data under make run,
		// /var/lib/portico in the package), so the lines can be copied.
		token := filepath.Join(g.opt.DataDir, TokenFile)
		adminAddr := g.opt.AdminAddr // a first run has no stored address yet
		if adminAddr == "" {
			adminAddr = config.DefaultAdminAddr
		}
		// A gateway run by root (the package's service) has a token only
		// root can read; one run by a user (make run) has the user's own.
		sudo := ""
		if os.Geteuid() == 0 {
			sudo = "sudo "
		}
		fmt.Fprintf(g.opt.Out, "\nFirst run: sign in to the User Portal as\n  user:     admin\n  password: %s\n(shown once; change it in the admin GUI)\n"+
			"Admin GUI:  %sportico-admin --data-dir %s\n"+
			"Admin API:  token in %s, e.g. curl -k -H \"Authorization: Bearer $(%scat %s)\" https://%s/api/v1/users\n\n",
			pw, sudo, g.opt.DataDir, token, sudo, token, adminAddr)
		return t.MarkFirstRunDone()
	})
}

// certStorage keeps a certificate in the store's certificates bucket, so
// it lives in the one bbolt file and travels with exports.
type certStorage struct {
	st   *store.Store
	name string
}

func (c certStorage) Load() ([]byte, []byte, error) {
	var cert store.Certificate
	err := c.st.View(func(t *store.Tx) (err error) { cert, err = t.Certificate(c.name); return })
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil, tlscert.ErrNotStored
	}
	return cert.CertPEM, cert.KeyPEM, err
}

func (c certStorage) Save(certPEM, keyPEM []byte) error {
	return c.st.Update(func(t *store.Tx) error {
		return t.PutCertificate(c.name, store.Certificate{CertPEM: certPEM, KeyPEM: keyPEM})
	})
}

func loadOrCreateToken(path string) (string, error) {
	if b, err := os.ReadFile(path); err == nil {
		tok := string(trimSpace(b))
		if len(tok) < 32 {
			return "", fmt.Errorf("%s is damaged: delete it and restart to make a new token", path)
		}
		return tok, nil
	} else if !errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("read admin token: %w", err)
	}
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("generate admin token: %w", err)
	}
	tok := hex.EncodeToString(b)
	if err := writeFileAtomic(path, []byte(tok+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("write admin token: %w", err)
	}
	return tok, nil
}

func trimSpace(b []byte) []byte {
	for len(b) > 0 && (b[len(b)-1] == '\n' || b[len(b)-1] == '\r' || b[len(b)-1] == ' ') {
		b = b[:len(b)-1]
	}
	return b
}

// writeFileAtomic writes via a temp file and rename so a crash never leaves
// a half-written file.
func writeFileAtomic(path string, data []byte, mode os.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".tmp-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Chmod(mode); err != nil && runtime.GOOS != "windows" {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// Live returns the configuration publisher.
func (g *Gateway) Live() *config.Live { return g.live }

// Store returns the store (for the portal's sign-in and sessions).
func (g *Gateway) Store() *store.Store { return g.store }

// Certificates returns the gateway's TLS certificate manager.
func (g *Gateway) Certificates() *tlscert.Manager { return g.certs }

// listenAddrs resolves flags over stored values.
func (g *Gateway) listenAddrs() (https, httpAddr, adminAddr string) {
	l := g.live.Load().Gateway.Listen
	pick := func(flag, stored, def string) string {
		if flag != "" {
			return flag
		}
		if stored != "" {
			return stored
		}
		return def
	}
	return pick(g.opt.HTTPSAddr, l.HTTPS, config.DefaultHTTPSAddr),
		pick(g.opt.HTTPAddr, l.HTTP, config.DefaultHTTPAddr),
		pick(g.opt.AdminAddr, l.Admin, config.DefaultAdminAddr)
}

// Start binds every listener and starts serving. It returns once the
// listeners are bound, so callers (and tests) can read Listeners().
func (g *Gateway) Start(ctx context.Context) error {
	httpsAddr, httpAddr, adminAddr := g.listenAddrs()
	if err := config.ValidateLoopbackAddr(adminAddr); err != nil {
		return fmt.Errorf("admin address %s: %w", adminAddr, err)
	}
	httpsLn, err := net.Listen("tcp", httpsAddr)
	if err != nil {
		return fmt.Errorf("listen HTTPS on %s: %w", httpsAddr, err)
	}
	httpLn, err := net.Listen("tcp", httpAddr)
	if err != nil {
		httpsLn.Close()
		return fmt.Errorf("listen HTTP on %s: %w", httpAddr, err)
	}
	adminLn, err := net.Listen("tcp", adminAddr)
	if err != nil {
		httpsLn.Close()
		httpLn.Close()
		return fmt.Errorf("listen admin API on %s: %w", adminAddr, err)
	}

	g.disp = newDispatcher(httpsLn, g.live, g.log)
	g.disps = []*dispatcher{g.disp}
	errLog := slog.NewLogLogger(g.log.Handler(), slog.LevelDebug)

	to := g.opt.Timeouts.withDefaults()
	main := to.server(hsts(g.mainHandler()), to.MaxBody, g.certs.TLSConfig(), errLog)
	// The redirect reads the HTTPS port as it is now: the listener can move.
	redirect := to.server(redirectHandler(g.httpsPort, func() []string { return g.live.Load().Gateway.PublicHosts }), 1<<10, nil, errLog)
	adminCfg := g.adminTLS.TLSConfig()
	adminSrv := to.server(admin.New(g.adminDeps()), adminMaxBody, adminCfg, errLog)

	nativeCtx, stopNative := context.WithCancel(context.Background())
	tun := g.tunnelServer()
	withTunnelALPN(nativeCtx, main, tun)
	httpsHost, _, _ := net.SplitHostPort(httpsLn.Addr().String())
	alt := &alternateListener{host: httpsHost, srv: tun, log: g.log, report: func(addr string) { g.setListener("alternate", addr) }}

	g.mu.Lock()
	g.stopNative = stopNative
	g.servers = []*http.Server{main, redirect, adminSrv}
	g.listeners = []admin.Listener{
		{Name: "https", Addr: httpsLn.Addr().String()},
		{Name: "http-redirect", Addr: httpLn.Addr().String()},
		{Name: "admin", Addr: adminLn.Addr().String()},
	}
	g.mu.Unlock()

	alt.start(nativeCtx, g.live)
	go g.housekeep(nativeCtx)
	stopDNS := (&detectDNS{g: g, resp: detect.NewResponder(g.nonces, func() string { return g.live.Load().Gateway.DetectZone() }, g.log)}).start()
	g.mu.Lock()
	g.stopDNS = stopDNS
	g.mu.Unlock()
	if err := g.writeEndpoint(adminLn.Addr().String()); err != nil {
		g.log.Warn("could not write admin endpoint file", "err", err)
	}
	disp := g.disp // g.disp changes when the HTTPS address moves
	go disp.serve()
	go serveLogged(g.log, "https", func() error { return main.ServeTLS(disp, "", "") })
	go serveLogged(g.log, "http", func() error { return redirect.Serve(httpLn) })
	go serveLogged(g.log, "admin", func() error { return adminSrv.Serve(tls.NewListener(adminLn, adminCfg)) })
	g.followListenAddrs(nativeCtx, httpsLn, httpLn, adminLn, main, redirect, adminSrv, adminCfg)
	fmt.Fprintf(g.opt.Out, "Portico gateway %s: User Portal at https://%s%s/ (admin API on %s)\n", g.opt.Version, displayAddr(httpsLn.Addr()), g.live.Load().Effective.Portal.Web.Path, adminLn.Addr())
	g.log.Info("gateway listening", "https", httpsLn.Addr().String(), "http", httpLn.Addr().String(), "admin", adminLn.Addr().String(), "mode", g.live.Load().Gateway.Mode)
	return nil
}

// displayAddr turns a listen address into one a person can open.
func displayAddr(a net.Addr) string {
	t := a.(*net.TCPAddr)
	host := t.IP.String()
	if t.IP.IsUnspecified() {
		host = "localhost"
	}
	return net.JoinHostPort(host, fmt.Sprint(t.Port))
}

func serveLogged(log *slog.Logger, name string, serve func() error) {
	if err := serve(); err != nil && !errors.Is(err, http.ErrServerClosed) && !errors.Is(err, net.ErrClosed) {
		log.Error("listener stopped", "listener", name, "err", err)
	}
}

func (g *Gateway) writeEndpoint(addr string) error {
	info := g.adminTLS.Info()
	data, _ := json.MarshalIndent(map[string]string{"url": "https://" + addr, "certSHA256": info.SHA256}, "", "  ")
	return writeFileAtomic(filepath.Join(g.opt.DataDir, EndpointFile), append(data, '\n'), 0o644)
}

// Listeners returns the bound addresses.
func (g *Gateway) Listeners() []admin.Listener {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]admin.Listener(nil), g.listeners...)
}

// Token returns the admin API token.
func (g *Gateway) Token() string { return g.token }

// Shutdown stops accepting, lets in-flight requests finish (until ctx
// ends), ends live sessions, and closes the store.
func (g *Gateway) Shutdown(ctx context.Context) error {
	var err error
	g.stopOnce.Do(func() {
		g.mu.Lock()
		servers := g.servers
		if g.stopNative != nil {
			g.stopNative()
		}
		stopDNS := g.stopDNS
		g.mu.Unlock()
		if stopDNS != nil {
			stopDNS()
		}
		g.mu.Lock()
		disps := g.disps
		g.mu.Unlock()
		for _, d := range disps {
			d.Close()
		}
		var wg sync.WaitGroup
		for _, s := range servers {
			wg.Add(1)
			go func(s *http.Server) {
				defer wg.Done()
				if e := s.Shutdown(ctx); e != nil {
					s.Close()
				}
			}(s)
		}
		wg.Wait()
		g.sessions.DisconnectWhere(func(sessions.Info) bool { return true }, sessions.ReasonShutdown)
		for _, d := range disps {
			d.closeForwarded()
		}
		err = g.store.Close()
		g.log.Info("gateway stopped")
	})
	return err
}

// Run starts the gateway and serves until ctx is cancelled, then shuts
// down gracefully (in-flight requests get up to 15 s).
func (g *Gateway) Run(ctx context.Context) error {
	if err := g.Start(ctx); err != nil {
		g.store.Close()
		return err
	}
	<-ctx.Done()
	sctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	return g.Shutdown(sctx)
}
