// Package portal is the end-user web portal: sign-in, the list of published
// resources, launch tickets, the session pages and the relay endpoints the
// pages connect to, under the User Portal URL path from the effective
// settings. It applies the portal's security headers, cookies, CSRF checks
// and throttling. It takes every setting from the live config snapshot and
// every clipboard/file-transfer decision from service/policy; it never
// writes configuration.
package portal

import (
	"context"
	"crypto/rand"
	"embed"
	"html/template"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"portico/service/config"
	"portico/service/detect"
	"portico/service/directory"
	sshrelay "portico/service/relay/ssh"
	"portico/service/secret"
	"portico/service/sessions"
	"portico/service/signin"
	"portico/service/store"
)

//go:embed templates/*.html
var templateFS embed.FS

// Deps are what the portal needs from the gateway.
type Deps struct {
	// Live is the configuration snapshot publisher.
	Live *config.Live
	// Store persists portal sessions, preferences and the audit log.
	Store *store.Store
	// Secrets opens the sealed host credentials.
	Secrets *secret.Box
	// Sessions is the live remote-session registry.
	Sessions *sessions.Registry
	// Static serves /static/ (the embedded web assets).
	Static http.Handler
	// AssetURL maps a logical asset path to its content-hashed URL.
	AssetURL func(string) string
	// VendorBuilt reports whether the npm-built browser clients are present.
	VendorBuilt func() bool
	// Dial opens backend connections; nil uses a net.Dialer.
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
	// Logger receives structured logs.
	Logger *slog.Logger
	// Nonces are the native-client detection nonces; nil turns detection off.
	Nonces *detect.Nonces
	// Fingerprint returns the SHA-256 of the gateway's TLS leaf (any hex
	// form), which native clients pin.
	Fingerprint func() string
	// DetectDNS returns the detection DNS responder's bound address, ""
	// when it is not running.
	DetectDNS func() string
	// ClientDirs are searched for portico-client builds to hand out.
	ClientDirs []string
	// Directory checks sign-ins (local accounts, then the directories);
	// nil builds one over Store and Secrets.
	Directory *directory.Service
	// Guard bounds credential checks; nil makes one sized to the machine.
	Guard *signin.Guard
	// DriveDir holds the folders of the RDP sessions' Portico drives (one
	// per session, removed when it ends; folders a stopped gateway left are
	// removed at start); empty: a temporary folder of this process.
	DriveDir string
	// DriveQuota caps one session's drive in bytes; 0: DefaultDriveQuota.
	DriveQuota int64
	// KeepAlive is how often browser WebSockets are pinged and SSH hosts
	// probed; zero is DefaultKeepAlive.
	KeepAlive time.Duration
}

// DefaultDriveQuota is the size of an RDP session's drive unless Deps
// says otherwise.
const DefaultDriveQuota = 1 << 30

// Portal is the portal's http.Handler.
type Portal struct {
	Deps
	tickets  *Tickets
	sessions *SessionStore
	creds    credentials
	pending  pendingSignIns
	guard    *signin.Guard
	devices  signin.Devices
	// checkPassword is directory.CheckPassword; tests count hashes with it.
	checkPassword func(phc, password string) bool
	tpl           *template.Template
	mux           *http.ServeMux
	relays        relayState
	lists         listCache // rendered resource lists (pages.go)
	// ended keeps why recent sessions ended, for their pages to ask.
	ended *ended
	pages sync.Pool // *bytes.Buffer a page is rendered into (render)
}

// New builds the portal.
func New(d Deps) *Portal {
	if d.Logger == nil {
		d.Logger = slog.Default()
	}
	if d.Dial == nil {
		dialer := &net.Dialer{Timeout: 10 * time.Second, KeepAliveConfig: sshrelay.TCPKeepAlive}
		d.Dial = dialer.DialContext
	}
	if d.AssetURL == nil {
		d.AssetURL = func(p string) string { return "/static/" + p }
	}
	if d.DriveQuota <= 0 {
		d.DriveQuota = DefaultDriveQuota
	}
	if d.DriveDir == "" {
		// A folder of this process's own (made with the first drive):
		// nothing else's drives are in it.
		d.DriveDir = filepath.Join(os.TempDir(), "portico-drives-"+strconv.Itoa(os.Getpid()))
	} else {
		removeStaleDrives(d.DriveDir, d.Logger)
	}
	if d.VendorBuilt == nil {
		d.VendorBuilt = func() bool { return true }
	}
	p := &Portal{
		Deps:          d,
		tickets:       NewTickets(),
		sessions:      NewSessionStore(d.Store, func() map[string]int64 { return d.Live.Load().UserEpochs }),
		guard:         d.Guard,
		checkPassword: directory.CheckPassword,
		mux:           http.NewServeMux(),
		ended:         newEnded(),
	}
	if d.Sessions != nil {
		// An identity change (disabled, removed, password reset, groups
		// changed) ends the user's portal sign-ins at once; the registry
		// ends their live sessions.
		d.Sessions.OnRevoke(p.sessions.DeleteUser)
		p.sessions.revokedSince = d.Sessions.RevokedSince
	}
	if p.guard == nil {
		p.guard = signin.NewGuard(signin.Options{})
	}
	if d.Secrets != nil {
		p.devices.MAC = d.Secrets.MAC
	} else {
		// Without the gateway's key, device cookies last for this process.
		key := make([]byte, 32)
		rand.Read(key)
		box, _ := secret.New(key)
		p.devices.MAC = box.MAC
	}
	if p.Directory == nil {
		p.Directory = &directory.Service{
			LocalUser: func(name string) (u directory.User, err error) {
				err = d.Store.View(func(t *store.Tx) (err error) { u, err = t.User(name); return })
				return u, err
			},
			// Through p, so tests that count hashes see every local check.
			CheckPassword: func(phc, password string) bool { return p.checkPassword(phc, password) },
		}
		if d.Secrets != nil {
			p.Directory.Unseal = d.Secrets.Unseal
		}
	}
	p.creds = p.Directory
	p.tpl = template.Must(template.New("").Funcs(template.FuncMap{
		"asset": func(s string) string { return d.AssetURL(s) },
	}).ParseFS(templateFS, "templates/*.html"))
	p.routes()
	return p
}

func (p *Portal) routes() {
	m := p.mux
	m.HandleFunc("GET /{$}", p.home)
	m.HandleFunc("POST /signin", p.signIn)
	m.HandleFunc("POST /signout", p.signOut)
	m.HandleFunc("GET /2fa", p.secondFactorPage)
	m.HandleFunc("POST /2fa", p.secondFactor)
	m.HandleFunc("GET /api/resources", p.apiResources)
	m.HandleFunc("POST /api/launch/{id}", p.apiLaunch)
	m.HandleFunc("POST /api/launch/{id}/rdp-file", p.apiRDPFile)
	m.HandleFunc("POST /api/client-ip", p.apiClientIP)
	m.HandleFunc("GET /session/{id}", p.sessionPage)
	m.HandleFunc("POST /api/launch-method", p.apiLaunchMethod)
	m.HandleFunc("GET /api/launch/native/{watch}", p.apiNativeWatch)
	m.HandleFunc("POST /api/detect", p.apiDetectStart)
	m.HandleFunc("GET /api/detect/{nonce}", p.apiDetectStatus)
	if p.Nonces != nil {
		m.Handle("POST /api/detect/probe", detect.ProbeHandler(p.Nonces))
	}
	m.HandleFunc("GET /client/{name}", p.clientDownload)
	m.HandleFunc("GET /api/live-sessions", p.apiLiveSessions)
	m.HandleFunc("GET /api/session-end/{page}", p.apiSessionEnd)
	p.relayRoutes(m)
	m.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		p.errorPage(w, r, http.StatusNotFound, "Page not found", "There is nothing at this address.", "")
	})
}

// ctxKey keys request-scoped values.
type ctxKey int

const (
	keyBase ctxKey = iota
	keySnap
	keyNonce
)

// base returns the portal path the request was routed under.
func base(r *http.Request) string { s, _ := r.Context().Value(keyBase).(string); return s }

// snap returns the snapshot the request is served with (one per request,
// so a concurrent change never mixes two configurations in one answer).
func snap(r *http.Request) *config.Snapshot {
	s, _ := r.Context().Value(keySnap).(*config.Snapshot)
	return s
}

func nonce(r *http.Request) string { s, _ := r.Context().Value(keyNonce).(string); return s }

// ServeHTTP routes a request under the configured portal path.
func (p *Portal) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s := p.Live.Load()
	if strings.HasPrefix(r.URL.Path, "/static/") {
		p.Static.ServeHTTP(w, r)
		return
	}
	path := s.Effective.Portal.Web.Path
	if r.URL.Path == path {
		http.Redirect(w, r, path+"/", http.StatusFound)
		return
	}
	rel, ok := strings.CutPrefix(r.URL.Path, path)
	if !ok || !strings.HasPrefix(rel, "/") {
		p.securityHeaders(w, r, s, "")
		http.NotFound(w, r)
		return
	}
	n := randomToken()[:22]
	ctx := context.WithValue(r.Context(), keyBase, path)
	ctx = context.WithValue(ctx, keySnap, s)
	ctx = context.WithValue(ctx, keyNonce, n)
	r2 := r.Clone(ctx)
	r2.URL.Path = rel
	r2.URL.RawPath = ""
	p.securityHeaders(w, r, s, n)
	if p.cors(w, r2, s) {
		return
	}
	p.mux.ServeHTTP(w, r2)
}

// securityHeaders sets the headers every portal answer carries. Framing
// follows "Allow embedding": refused by default (clickjacking), allowed —
// optionally only for listed origins — when the admin turns it on.
func (p *Portal) securityHeaders(w http.ResponseWriter, r *http.Request, s *config.Snapshot, nonce string) {
	h := w.Header()
	rs := s.Effective.Portal.Restrictions
	frame := "'none'"
	if rs.AllowEmbedding {
		frame = "*"
		if len(rs.EmbeddingOrigins) > 0 {
			frame = strings.Join(rs.EmbeddingOrigins, " ")
		}
	} else {
		h.Set("X-Frame-Options", "DENY")
	}
	script := "'self' 'wasm-unsafe-eval'"
	if nonce != "" {
		script += " 'nonce-" + nonce + "'"
	}
	h.Set("Content-Security-Policy", "default-src 'self'; script-src "+script+"; style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; connect-src 'self' "+wsOrigin(r)+" https: ; frame-ancestors "+frame+"; base-uri 'none'; form-action 'self'; object-src 'none'")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Permissions-Policy", "clipboard-read=(self), clipboard-write=(self), camera=(), microphone=(), geolocation=()")
	h.Set("Cross-Origin-Opener-Policy", "same-origin")
}

// wsOrigin is the page's own origin with the wss scheme: older browsers
// do not let 'self' cover WebSocket URLs.
func wsOrigin(r *http.Request) string {
	return "wss://" + r.Host
}

// cors answers CORS for the portal's API paths according to the
// Restrictions settings; it returns true when it fully answered (preflight).
func (p *Portal) cors(w http.ResponseWriter, r *http.Request, s *config.Snapshot) bool {
	origin := r.Header.Get("Origin")
	c := s.Effective.Portal.Restrictions.CORS
	if origin == "" || !c.Enabled || !strings.HasPrefix(r.URL.Path, "/api/") {
		return false
	}
	allowed := false
	for _, o := range c.Origins {
		if strings.EqualFold(o, origin) {
			allowed = true
			break
		}
	}
	w.Header().Add("Vary", "Origin")
	if !allowed {
		return false
	}
	h := w.Header()
	h.Set("Access-Control-Allow-Origin", origin)
	h.Set("Access-Control-Allow-Credentials", "true")
	if r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != "" {
		h.Set("Access-Control-Allow-Methods", "GET, POST")
		h.Set("Access-Control-Allow-Headers", "Content-Type, X-CSRF-Token")
		h.Set("Access-Control-Max-Age", strconv.Itoa(c.CacheSeconds))
		w.WriteHeader(http.StatusNoContent)
		return true
	}
	return false
}

// clientIP is the trusted client IP of a request.
func (p *Portal) clientIP(r *http.Request) string {
	ip := ClientIP(r, snap(r).Gateway.TrustedProxies)
	if ip == nil {
		return ""
	}
	return ip.String()
}

// SweepSignIns ends expired and revoked portal sign-ins; the gateway
// calls it every minute.
func (p *Portal) SweepSignIns() int { return p.sessions.Sweep() }

// userSessions counts the user's live remote sessions.
func (p *Portal) userSessions(user string) int {
	n := 0
	for _, s := range p.Sessions.List() {
		if strings.EqualFold(s.User, user) {
			n++
		}
	}
	return n
}

// auditRefusal records a refusal an outsider can cause at will (a wrong,
// throttled or busy sign-in, a bad ticket): the store aggregates these
// per source and reason a minute, so they can neither flood the log nor
// push security events out of it.
func (p *Portal) auditRefusal(e store.Event) {
	p.Store.AppendRefusal(e)
}

func (p *Portal) audit(e store.Event) {
	if err := p.Store.AppendAudit(e); err != nil {
		p.Logger.Error("audit write failed", "err", err, "event", e.Type)
	}
}
