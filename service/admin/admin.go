// Package admin is the gateway's admin API: JSON over HTTPS on a loopback
// address, authenticated with the bearer token from the data directory. It
// is the only way the GUI and the CLI read or change configuration. Every
// change is decoded strictly, normalized and validated by service/config or
// service/directory, written in one store transaction and published live
// through store.Apply; a refused change stores nothing.
//
// Routes (all under /api/v1):
//
//	GET  status                      version, uptime, listeners, sessions
//	GET  settings/site               site default User Portal settings
//	PUT  settings/site
//	GET  settings/gateway            this gateway's record (mode, inherit, own portal set)
//	PUT  settings/gateway
//	GET  settings/effective          the resolved User Portal settings
//	GET  resources                   POST resources; GET|PUT|DELETE resources/{id}
//	POST resources/{id}/test         the gateway dials the host and reports {"reachable","result","detail","message"}
//	POST resources/test              the same for an unsaved resource body (protocol, host, port)
//	GET  users                       POST users; GET|PUT|DELETE users/{name}
//	POST users/{name}/password       set a new password ({"password": ""} generates one)
//	GET  groups                      POST groups; PUT|DELETE groups/{name}
//	GET  policies                    PUT policies (the whole ordered list)
//	POST policies/explain            {"user","resource","clientOS","clientIP"} → effective directions and why
//	GET  certificate                 POST certificate/import; POST certificate/self-signed
//	GET  sessions                    DELETE sessions/{id}
//	GET  audit?user=&type=&since=&limit=
//	POST ip-detection/test           the gateway calls {"url"} and reports {"ok","ip"|"error"}
//	GET  export                      POST import
//
// Errors are JSON: {"error": "...", "fields": [{"field", "value", "message"}]}.
package admin

import (
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"portico/service/config"
	"portico/service/secret"
	"portico/service/sessions"
	"portico/service/store"
	"portico/service/tlscert"
)

// Listener is a bound listener, as shown in status.
type Listener struct {
	// Name is https, http-redirect, admin, dns, tunnel.
	Name string `json:"name"`
	// Addr is the bound address.
	Addr string `json:"addr"`
}

// Status is the answer of GET /api/v1/status.
type Status struct {
	// Version is the gateway build version.
	Version string `json:"version"`
	// Started is when the gateway process started.
	Started time.Time `json:"started"`
	// UptimeSeconds is seconds since Started.
	UptimeSeconds int64 `json:"uptimeSeconds"`
	// Mode is normal or forwarding.
	Mode config.Mode `json:"mode"`
	// PortalAvailable and PortalReason come from the effective settings.
	PortalAvailable bool   `json:"portalAvailable"`
	PortalReason    string `json:"portalReason,omitempty"`
	// Listeners are the bound addresses.
	Listeners []Listener `json:"listeners"`
	// Sessions is the number of live remote sessions.
	Sessions int `json:"sessions"`
	// Schema is the store schema version.
	Schema int `json:"schema"`
	// DataDir is where the gateway keeps its data.
	DataDir string `json:"dataDir"`
	// Service is true when the OS service manager runs the gateway, false
	// when it runs in the foreground (portico-gateway run, make run).
	Service bool `json:"service"`
	// ConfigVersion increases with each published change.
	ConfigVersion uint64 `json:"configVersion"`
}

// Certificates is what the admin API needs of the TLS certificate manager.
type Certificates interface {
	Info() tlscert.Info
	Import(certPEM, keyPEM []byte) error
	GenerateSelfSigned(hosts []string) error
	// Reload re-reads the stored certificate (after an import).
	Reload() error
}

// Deps are the parts of the gateway the admin API works with.
type Deps struct {
	Store     *store.Store
	Live      *config.Live
	GatewayID string
	Token     string
	Certs     Certificates
	Secrets   *secret.Box
	Sessions  *sessions.Registry
	// Status reports the process-level facts (version, listeners, ...).
	Status func() Status
	// UsedPorts maps ports the gateway listens on to their purpose.
	UsedPorts func() map[int]string
	Logger    *slog.Logger
}

type api struct {
	Deps
	mux *http.ServeMux
}

// New returns the admin API handler.
func New(d Deps) http.Handler {
	if d.Logger == nil {
		d.Logger = slog.Default()
	}
	a := &api{Deps: d, mux: http.NewServeMux()}
	a.routes()
	return a
}

func (a *api) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if ip := net.ParseIP(host); err != nil || ip == nil || !ip.IsLoopback() {
		writeError(w, http.StatusForbidden, errors.New("the admin API answers only on this machine (loopback)"))
		return
	}
	tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok || subtle.ConstantTimeCompare([]byte(tok), []byte(a.Token)) != 1 {
		w.Header().Set("WWW-Authenticate", `Bearer realm="portico-admin"`)
		writeError(w, http.StatusUnauthorized, errors.New("missing or wrong admin token: send Authorization: Bearer <contents of admin.token in the data directory>"))
		return
	}
	a.mux.ServeHTTP(w, r)
}

// apiError is the JSON error body.
type apiError struct {
	Error  string             `json:"error"`
	Fields config.FieldErrors `json:"fields,omitempty"`
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}

func writeError(w http.ResponseWriter, code int, err error) {
	body := apiError{Error: err.Error()}
	if fes, ok := config.AsFieldErrors(err); ok {
		body.Fields = fes
		body.Error = "some fields are not valid: nothing was changed"
	}
	writeJSON(w, code, body)
}

// errorCode maps store/validation errors to HTTP status codes.
func errorCode(err error) int {
	var fes config.FieldErrors
	var fe config.FieldError
	var ce conflictError
	var br badRequest
	switch {
	case errors.Is(err, store.ErrNotFound):
		return http.StatusNotFound
	case errors.As(err, &fes), errors.As(err, &fe), errors.As(err, &br):
		return http.StatusBadRequest
	case errors.As(err, &ce):
		return http.StatusConflict
	}
	return http.StatusInternalServerError
}

type badRequest struct{ error }

type conflictError struct{ error }

func (a *api) fail(w http.ResponseWriter, r *http.Request, err error) {
	code := errorCode(err)
	if code == http.StatusInternalServerError {
		a.Logger.Error("admin API request failed", "method", r.Method, "path", r.URL.Path, "err", err)
	}
	writeError(w, code, err)
}

func decode(r *http.Request, v any) error {
	if err := config.DecodeStrict(r.Body, v); err != nil {
		if _, ok := config.AsFieldErrors(err); ok {
			return err
		}
		return badRequest{err}
	}
	return nil
}

// apply writes through store.Apply and records an audit event in the same
// transaction.
func (a *api) apply(r *http.Request, detail string, fn func(*store.Tx) error) error {
	return a.Store.Apply(a.Live, a.GatewayID, func(t *store.Tx) error {
		if err := fn(t); err != nil {
			return err
		}
		return t.AppendAudit(store.Event{Type: "config.change", User: "admin", ClientIP: clientIP(r), Detail: detail})
	})
}

func clientIP(r *http.Request) string {
	h, _, _ := net.SplitHostPort(r.RemoteAddr)
	return h
}

func notFound(what, name string) error {
	return fmt.Errorf("%s %q: %w", what, name, store.ErrNotFound)
}
