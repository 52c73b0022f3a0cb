package gateway

import (
	"fmt"
	"html/template"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"portico/service/admin"
	"portico/service/config"
)

// hsts tells browsers to use HTTPS only for this host for a year. No
// includeSubDomains: an office gateway must not decide for sibling hosts.
func hsts(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Strict-Transport-Security", "max-age=31536000")
		next.ServeHTTP(w, r)
	})
}

// redirectHandler answers every plain-HTTP request with a permanent redirect
// to the same host and path over HTTPS; it serves nothing else.
func redirectHandler(httpsPort func() int) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host := r.Host
		if h, _, err := net.SplitHostPort(host); err == nil {
			host = h
		}
		if host == "" || strings.ContainsAny(host, "/\\@ ") {
			http.Error(w, "use HTTPS", http.StatusBadRequest)
			return
		}
		if strings.Contains(host, ":") {
			host = "[" + host + "]"
		}
		if port := httpsPort(); port != 443 {
			host += ":" + strconv.Itoa(port)
		}
		w.Header().Set("Connection", "close")
		http.Redirect(w, r, "https://"+host+r.URL.RequestURI(), http.StatusMovedPermanently)
	})
}

// mainHandler routes the HTTPS port: health, the "/" redirect to the
// configured portal path, the unavailable answer, then the portal.
func (g *Gateway) mainHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/healthz" {
			w.Header().Set("Content-Type", "text/plain")
			fmt.Fprintln(w, "ok")
			return
		}
		eff := g.live.Load().Effective
		if !eff.PortalAvailable {
			unavailable(w, r)
			return
		}
		if r.URL.Path == "/" {
			http.Redirect(w, r, eff.Portal.Web.Path+"/", http.StatusFound)
			return
		}
		if g.portal == nil {
			http.NotFound(w, r)
			return
		}
		g.portal.ServeHTTP(w, r)
	})
}

var unavailablePage = template.Must(template.New("u").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>User Portal unavailable</title>
<style>body{font:16px/1.5 system-ui,sans-serif;margin:0;display:grid;place-items:center;min-height:100vh;background:#f4f5f7;color:#1d2733}
main{max-width:32rem;padding:2rem;background:#fff;border-radius:12px;box-shadow:0 2px 12px #0001}h1{font-size:1.3rem;margin-top:0}</style>
</head><body><main><h1>The User Portal is not available</h1><p>Your desktops and applications cannot be opened from here at the moment.</p>
<p>Sessions you already have open keep running. Please try again later, or ask your IT helpdesk if you need it now.</p></main></body></html>`))

// unavailable answers 503 with a page (or JSON for API clients) written
// for users: the reason ("disabled in the site defaults", "Forwarding
// mode") is for the admin, who sees it in the GUI's status and the log.
func unavailable(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Retry-After", "60")
	w.Header().Set("Cache-Control", "no-store")
	if strings.Contains(r.Header.Get("Accept"), "application/json") || strings.Contains(r.URL.Path, "/api/") {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusServiceUnavailable)
		fmt.Fprintf(w, "{\"error\":%q}\n", "The User Portal is not available at the moment. Please try again later.")
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(http.StatusServiceUnavailable)
	unavailablePage.Execute(w, nil)
}

// adminDeps gives the admin API the gateway's parts.
func (g *Gateway) adminDeps() admin.Deps {
	return admin.Deps{
		Store:     g.store,
		Live:      g.live,
		GatewayID: config.DefaultGatewayID,
		Token:     g.token,
		Certs:     g.certs,
		Secrets:   g.box,
		Sessions:  g.sessions,
		Logger:    g.log,
		Status: func() admin.Status {
			return admin.Status{Version: g.opt.Version, Started: g.started.UTC().Truncate(time.Second), Listeners: g.Listeners(), DataDir: g.opt.DataDir, Service: g.opt.Service}
		},
		UsedPorts: g.usedPorts,
	}
}

// usedPorts lists the ports this gateway listens on, so the alternate port
// cannot be set to one of them.
func (g *Gateway) usedPorts() map[int]string {
	out := map[int]string{}
	names := map[string]string{"https": "HTTPS listener", "http-redirect": "HTTP redirect listener", "admin": "admin API", "dns": "detection DNS responder"}
	for _, l := range g.Listeners() {
		name, ok := names[l.Name]
		if !ok {
			continue
		}
		if _, p, err := net.SplitHostPort(l.Addr); err == nil {
			if n, err := strconv.Atoi(p); err == nil {
				out[n] = name
			}
		}
	}
	return out
}
