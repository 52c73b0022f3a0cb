package admin

import (
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"portico/service/config"
	"portico/service/directory"
	"portico/service/ipdetect"
	"portico/service/policy"
	"portico/service/sessions"
	"portico/service/store"
)

func (a *api) routes() {
	m := a.mux
	m.HandleFunc("GET /api/v1/status", a.status)
	m.HandleFunc("GET /api/v1/settings/site", a.getSite)
	m.HandleFunc("PUT /api/v1/settings/site", a.putSite)
	m.HandleFunc("GET /api/v1/settings/gateway", a.getGateway)
	m.HandleFunc("PUT /api/v1/settings/gateway", a.putGateway)
	m.HandleFunc("GET /api/v1/settings/effective", a.getEffective)
	m.HandleFunc("GET /api/v1/resources", a.listResources)
	m.HandleFunc("POST /api/v1/resources", a.createResource)
	m.HandleFunc("GET /api/v1/resources/{id}", a.getResource)
	m.HandleFunc("PUT /api/v1/resources/{id}", a.putResource)
	m.HandleFunc("DELETE /api/v1/resources/{id}", a.deleteResource)
	m.HandleFunc("POST /api/v1/resources/{id}/test", a.testResource)
	m.HandleFunc("POST /api/v1/resources/test", a.testUnsaved)
	m.HandleFunc("GET /api/v1/users", a.listUsers)
	m.HandleFunc("POST /api/v1/users", a.createUser)
	m.HandleFunc("GET /api/v1/users/{name}", a.getUser)
	m.HandleFunc("PUT /api/v1/users/{name}", a.putUser)
	m.HandleFunc("DELETE /api/v1/users/{name}", a.deleteUser)
	m.HandleFunc("POST /api/v1/users/{name}/password", a.setPassword)
	m.HandleFunc("GET /api/v1/users/{name}/second-factor", a.secondFactorStatus)
	m.HandleFunc("DELETE /api/v1/users/{name}/second-factor", a.resetSecondFactor)
	m.HandleFunc("GET /api/v1/groups", a.listGroups)
	m.HandleFunc("POST /api/v1/groups", a.createGroup)
	m.HandleFunc("PUT /api/v1/groups/{name}", a.putGroup)
	m.HandleFunc("DELETE /api/v1/groups/{name}", a.deleteGroup)
	m.HandleFunc("GET /api/v1/policies", a.getPolicies)
	m.HandleFunc("PUT /api/v1/policies", a.putPolicies)
	m.HandleFunc("POST /api/v1/policies/explain", a.explain)
	m.HandleFunc("GET /api/v1/certificate", a.getCertificate)
	m.HandleFunc("POST /api/v1/certificate/import", a.importCertificate)
	m.HandleFunc("POST /api/v1/certificate/self-signed", a.selfSigned)
	m.HandleFunc("GET /api/v1/sessions", a.listSessions)
	m.HandleFunc("GET /api/v1/sessions/affected", a.affectedSessions)
	m.HandleFunc("DELETE /api/v1/sessions/{id}", a.disconnect)
	m.HandleFunc("GET /api/v1/audit", a.audit)
	m.HandleFunc("POST /api/v1/ip-detection/test", a.testIPDetection)
	m.HandleFunc("GET /api/v1/settings/signin", a.getSignIn)
	m.HandleFunc("PUT /api/v1/settings/signin", a.putSignIn)
	m.HandleFunc("POST /api/v1/directories/test", a.testDirectory)
	m.HandleFunc("GET /api/v1/directories/groups", a.searchDirectoryGroups)
	m.HandleFunc("GET /api/v1/export", a.export)
	m.HandleFunc("POST /api/v1/import", a.importConfig)
	m.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, fmt.Errorf("no admin API route %s %s", r.Method, r.URL.Path))
	})
}

func (a *api) status(w http.ResponseWriter, r *http.Request) {
	s := a.Status()
	snap := a.Live.Load()
	s.UptimeSeconds = int64(time.Since(s.Started).Seconds())
	s.Mode = snap.Gateway.Mode
	s.PortalAvailable, s.PortalReason = snap.Effective.PortalAvailable, snap.Effective.Reason
	s.Sessions = a.Sessions.Count()
	s.Schema = a.Store.Schema()
	s.ConfigVersion = snap.Version
	writeJSON(w, http.StatusOK, s)
}

// settingsReply is the answer to a settings read or change.
type settingsReply[T any] struct {
	Settings T               `json:"settings"`
	Notices  []config.Notice `json:"notices"`
}

func (a *api) getSite(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, settingsReply[config.PortalSettings]{Settings: a.Live.Load().Site, Notices: []config.Notice{}})
}

func (a *api) putSite(w http.ResponseWriter, r *http.Request) {
	var p config.PortalSettings
	if err := decode(r, &p); err != nil {
		a.fail(w, r, err)
		return
	}
	notes := p.Normalize()
	used := map[int]string{}
	if a.Live.Load().Gateway.InheritPortal {
		used = a.UsedPorts()
	}
	if err := p.Validate(used); err != nil {
		a.fail(w, r, err)
		return
	}
	if err := a.apply(r, "changed the site default User Portal settings", func(t *store.Tx) error { return t.PutSite(p) }); err != nil {
		a.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, settingsReply[config.PortalSettings]{Settings: p, Notices: nonNil(notes)})
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

func (a *api) getGateway(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, settingsReply[config.Gateway]{Settings: a.Live.Load().Gateway, Notices: []config.Notice{}})
}

func (a *api) putGateway(w http.ResponseWriter, r *http.Request) {
	var g config.Gateway
	if err := decode(r, &g); err != nil {
		a.fail(w, r, err)
		return
	}
	if g.ID == "" {
		g.ID = a.GatewayID
	}
	if g.ID != a.GatewayID {
		a.fail(w, r, config.FieldErrors{{Field: "id", Value: g.ID, Message: "this gateway's ID is " + a.GatewayID}})
		return
	}
	notes := g.Normalize()
	// The effective portal set's alternate port must not collide either,
	// whichever set is in force.
	if err := g.Validate(a.UsedPorts()); err != nil {
		a.fail(w, r, err)
		return
	}
	if g.InheritPortal {
		if err := a.Live.Load().Site.Validate(a.UsedPorts()); err != nil {
			fes, _ := config.AsFieldErrors(err)
			for i := range fes {
				fes[i].Field = "inheritPortal (site defaults: " + fes[i].Field + ")"
			}
			a.fail(w, r, fes)
			return
		}
	}
	if err := a.apply(r, fmt.Sprintf("changed gateway %s settings (mode %s, inherit %v)", g.ID, g.Mode, g.InheritPortal), func(t *store.Tx) error { return t.PutGateway(g) }); err != nil {
		a.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, settingsReply[config.Gateway]{Settings: g, Notices: nonNil(notes)})
}

func (a *api) getEffective(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, a.Live.Load().Effective)
}

func (a *api) getPolicies(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, nonNil(a.Live.Load().Policies))
}

func (a *api) putPolicies(w http.ResponseWriter, r *http.Request) {
	var ps []config.ClientPolicy
	if err := decode(r, &ps); err != nil {
		a.fail(w, r, err)
		return
	}
	var es config.FieldErrors
	ids := map[string]bool{}
	for i, p := range ps {
		if ids[p.ID] {
			es = append(es, config.FieldError{Field: fmt.Sprintf("[%d].id", i), Value: p.ID, Message: "two policies have this ID"})
		}
		ids[p.ID] = true
		if err := p.Validate(); err != nil {
			fes, _ := config.AsFieldErrors(err)
			for _, fe := range fes {
				fe.Field = fmt.Sprintf("[%d].%s", i, fe.Field)
				es = append(es, fe)
			}
		}
	}
	if len(es) > 0 {
		a.fail(w, r, es)
		return
	}
	err := a.apply(r, fmt.Sprintf("replaced the client policies (%d rules)", len(ps)), func(t *store.Tx) error {
		for i, p := range ps {
			if err := checkMembers(t, fmt.Sprintf("[%d]", i), p.Users, p.Groups); err != nil {
				return err
			}
		}
		return t.PutPolicies(ps)
	})
	if err != nil {
		a.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, nonNil(ps))
}

// checkMembers refuses references to users or groups that do not exist.
func checkMembers(t *store.Tx, prefix string, users, groups []string) error {
	var es config.FieldErrors
	si, err := t.SignIn()
	if err != nil {
		return err
	}
	// path is "groups[1]" for a top-level list, "[2].groups[1]" inside one.
	path := func(list string, i int) string {
		if prefix == "" {
			return fmt.Sprintf("%s[%d]", list, i)
		}
		return fmt.Sprintf("%s.%s[%d]", prefix, list, i)
	}
	for i, u := range users {
		if directory.IsDirectoryGroup(si, u) {
			// NETBIOS\user of a directory: the directory, not the store, knows it.
			continue
		}
		if _, err := t.User(u); err != nil {
			es = append(es, config.FieldError{Field: path("users", i), Value: u, Message: "no such user: add the user first"})
		}
	}
	for i, g := range groups {
		if directory.IsDirectoryGroup(si, g) {
			continue
		}
		if _, err := t.Group(g); err != nil {
			es = append(es, config.FieldError{Field: path("groups", i), Value: g, Message: "no such group: add the group first"})
		}
	}
	if len(es) > 0 {
		return es
	}
	return nil
}

func (a *api) getCertificate(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, a.Certs.Info())
}

func (a *api) importCertificate(w http.ResponseWriter, r *http.Request) {
	var in struct {
		CertPEM string `json:"certPEM"`
		KeyPEM  string `json:"keyPEM"`
	}
	if err := decode(r, &in); err != nil {
		a.fail(w, r, err)
		return
	}
	if err := a.Certs.Import([]byte(in.CertPEM), []byte(in.KeyPEM)); err != nil {
		writeError(w, http.StatusBadRequest, fmt.Errorf("certificate not imported, the current one stays in use: %w", err))
		return
	}
	info := a.Certs.Info()
	a.Store.AppendAudit(store.Event{Type: "config.change", User: "admin", ClientIP: clientIP(r), Detail: "imported TLS certificate " + info.Subject + " " + info.SHA256})
	writeJSON(w, http.StatusOK, info)
}

func (a *api) selfSigned(w http.ResponseWriter, r *http.Request) {
	var in struct {
		Hosts []string `json:"hosts"`
	}
	if err := decode(r, &in); err != nil {
		a.fail(w, r, err)
		return
	}
	var es config.FieldErrors
	for i, h := range in.Hosts {
		if err := config.ValidateHostname(h); err != nil {
			es = append(es, config.FieldError{Field: fmt.Sprintf("hosts[%d]", i), Value: h, Message: err.Error()})
		}
	}
	if len(es) > 0 {
		a.fail(w, r, es)
		return
	}
	if err := a.Certs.GenerateSelfSigned(in.Hosts); err != nil {
		a.fail(w, r, err)
		return
	}
	info := a.Certs.Info()
	a.Store.AppendAudit(store.Event{Type: "config.change", User: "admin", ClientIP: clientIP(r), Detail: "generated a self-signed TLS certificate " + info.SHA256})
	writeJSON(w, http.StatusOK, info)
}

func (a *api) listSessions(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, a.Sessions.List())
}

// Affected is how many live sessions an action would close: the GUI's
// confirmations say it before the admin disables or removes a user or
// removes a resource.
type Affected struct {
	// Count is the number of live sessions that would close.
	Count int `json:"count"`
}

// affectedSessions answers ?user=NAME (the user's sessions: disable,
// remove, new password, groups changed) or ?resource=ID (the resource's
// sessions: remove it).
func (a *api) affectedSessions(w http.ResponseWriter, r *http.Request) {
	user, res := r.URL.Query().Get("user"), r.URL.Query().Get("resource")
	if (user == "") == (res == "") {
		a.fail(w, r, config.FieldErrors{{Field: "user", Message: "give either user or resource"}})
		return
	}
	n := a.Sessions.CountWhere(func(i sessions.Info) bool {
		return (user != "" && strings.EqualFold(i.User, user)) || (res != "" && i.Resource == res)
	})
	writeJSON(w, http.StatusOK, Affected{Count: n})
}

func (a *api) disconnect(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if !a.Sessions.Disconnect(id, sessions.ReasonAdmin) {
		a.fail(w, r, notFound("session", id))
		return
	}
	a.Store.AppendAudit(store.Event{Type: "session.disconnect", User: "admin", ClientIP: clientIP(r), Detail: "disconnected session " + id})
	w.WriteHeader(http.StatusNoContent)
}

func (a *api) audit(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	f := store.AuditFilter{User: q.Get("user"), Type: q.Get("type")}
	var es config.FieldErrors
	for _, p := range []struct {
		name string
		dst  *time.Time
	}{{"since", &f.Since}, {"until", &f.Until}} {
		if v := q.Get(p.name); v != "" {
			t, err := time.Parse(time.RFC3339, v)
			if err != nil {
				es = append(es, config.FieldError{Field: p.name, Value: v, Message: "use RFC 3339 time, e.g. 2026-01-02T15:04:05Z"})
			}
			*p.dst = t
		}
	}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 10000 {
			es = append(es, config.FieldError{Field: "limit", Value: v, Message: "use 1 to 10000"})
		}
		f.Limit = n
	}
	if len(es) > 0 {
		a.fail(w, r, es)
		return
	}
	ev, err := a.Store.Audit(f)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, ev)
}

func (a *api) export(w http.ResponseWriter, r *http.Request) {
	d, err := a.Store.Export()
	if err != nil {
		a.fail(w, r, err)
		return
	}
	w.Header().Set("Content-Disposition", `attachment; filename="portico-config.json"`)
	writeJSON(w, http.StatusOK, d)
}

func (a *api) importConfig(w http.ResponseWriter, r *http.Request) {
	d, err := store.ReadDocument(r.Body)
	if err != nil {
		if _, ok := config.AsFieldErrors(err); !ok {
			err = badRequest{err}
		}
		a.fail(w, r, err)
		return
	}
	if err := d.Validate(); err != nil {
		a.fail(w, r, err)
		return
	}
	for i := range d.Resources {
		if err := a.sealResource(&d.Resources[i], nil); err != nil {
			a.fail(w, r, err)
			return
		}
	}
	if err := a.Store.Import(d, "admin"); err != nil {
		a.fail(w, r, err)
		return
	}
	if d.Certificate != nil {
		if err := a.Certs.Reload(); err != nil {
			a.Logger.Error("imported certificate not usable, keeping the previous one", "err", err)
		}
	}
	// Publish what was imported.
	if err := a.Store.Apply(a.Live, a.GatewayID, func(*store.Tx) error { return nil }); err != nil {
		a.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"imported": true, "resources": len(d.Resources), "users": len(d.Users), "groups": len(d.Groups), "policies": len(d.Policies)})
}

// testIPDetection makes the gateway call a client IP detection URL itself
// and report the address it got back, or why it failed.
func (a *api) testIPDetection(w http.ResponseWriter, r *http.Request) {
	var in struct {
		URL string `json:"url"`
	}
	if err := decode(r, &in); err != nil {
		a.fail(w, r, err)
		return
	}
	ip, err := ipdetect.Check(r.Context(), in.URL, nil)
	if err != nil {
		writeJSON(w, http.StatusOK, map[string]any{"ok": false, "error": err.Error()})
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"ok": true, "ip": ip})
}

// explainIn names the session to explain.
type explainIn struct {
	User     string `json:"user"`
	Resource string `json:"resource"`
	ClientOS string `json:"clientOS"`
	ClientIP string `json:"clientIP"`
}

// explain answers "for user X on resource Y from client Z, what may the
// clipboard and file transfer do, and why" with the same policy.Decide the
// relays use.
func (a *api) explain(w http.ResponseWriter, r *http.Request) {
	var in explainIn
	if err := decode(r, &in); err != nil {
		a.fail(w, r, err)
		return
	}
	snap := a.Live.Load()
	var es config.FieldErrors
	res, ok := snap.Resource(in.Resource)
	if !ok {
		es = append(es, config.FieldError{Field: "resource", Value: in.Resource, Message: "no such resource"})
	}
	groups, err := a.memberGroups(r.Context(), in.User)
	if err != nil {
		msg := "no such user"
		if strings.Contains(in.User, `\`) {
			msg = "not found in the directory: " + err.Error()
		}
		es = append(es, config.FieldError{Field: "user", Value: in.User, Message: msg})
	}
	ip := net.ParseIP(in.ClientIP)
	if in.ClientIP != "" && ip == nil {
		es = append(es, config.FieldError{Field: "clientIP", Value: in.ClientIP, Message: "not an IP address"})
	}
	if len(es) > 0 {
		a.fail(w, r, es)
		return
	}
	os := in.ClientOS
	if os == "" {
		os = "other"
	}
	d := policy.Decide(res, snap.Effective.Portal, snap.Policies, policy.Client{User: in.User, Groups: groups, OS: os, IP: ip})
	writeJSON(w, http.StatusOK, d)
}
