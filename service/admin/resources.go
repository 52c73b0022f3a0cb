package admin

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"

	"portico/service/config"
	"portico/service/directory"
	"portico/service/sessions"
	"portico/service/store"
)

// resourceOut is a resource as the API shows it: secrets replaced by flags.
type resourceOut struct {
	config.Resource
	HasPassword   bool `json:"hasPassword"`
	HasPrivateKey bool `json:"hasPrivateKey"`
}

func redact(r config.Resource) resourceOut {
	out := resourceOut{Resource: r, HasPassword: r.Credentials.Password != "", HasPrivateKey: r.Credentials.PrivateKey != ""}
	out.Credentials.Password, out.Credentials.PrivateKey = "", ""
	return out
}

// secretPresence records which secret fields a request body actually
// contained: absent = keep the stored value, "" = clear it, text = set it.
type secretPresence struct {
	Credentials struct {
		Password   *string `json:"password"`
		PrivateKey *string `json:"privateKey"`
	} `json:"credentials"`
}

// readResource decodes a resource body strictly and reports which secrets
// it named.
func readResource(r *http.Request) (config.Resource, secretPresence, error) {
	var res config.Resource
	var pres secretPresence
	body, err := io.ReadAll(io.LimitReader(r.Body, config.MaxDocumentSize))
	if err != nil {
		return res, pres, badRequest{fmt.Errorf("read body: %w", err)}
	}
	if err := config.DecodeStrict(bytes.NewReader(body), &res); err != nil {
		if _, ok := config.AsFieldErrors(err); ok {
			return res, pres, err
		}
		return res, pres, badRequest{err}
	}
	json.Unmarshal(body, &pres)
	return res, pres, nil
}

// sealResource seals the secrets in r. With old set, secrets absent from
// the request keep their stored (sealed) values.
func (a *api) sealResource(r *config.Resource, old *config.Resource, pres ...secretPresence) error {
	if old != nil && len(pres) > 0 {
		if pres[0].Credentials.Password == nil {
			r.Credentials.Password = old.Credentials.Password
		}
		if pres[0].Credentials.PrivateKey == nil {
			r.Credentials.PrivateKey = old.Credentials.PrivateKey
		}
	}
	var err error
	if r.Credentials.Password, err = a.Secrets.Seal(r.Credentials.Password); err != nil {
		return err
	}
	if r.Credentials.PrivateKey, err = a.Secrets.Seal(r.Credentials.PrivateKey); err != nil {
		return err
	}
	return nil
}

func (a *api) listResources(w http.ResponseWriter, r *http.Request) {
	rs := a.Live.Load().Resources
	out := make([]resourceOut, len(rs))
	for i, x := range rs {
		out[i] = redact(x)
	}
	writeJSON(w, http.StatusOK, out)
}

func (a *api) getResource(w http.ResponseWriter, r *http.Request) {
	res, ok := a.Live.Load().Resource(r.PathValue("id"))
	if !ok {
		a.fail(w, r, notFound("resource", r.PathValue("id")))
		return
	}
	writeJSON(w, http.StatusOK, redact(res))
}

func (a *api) createResource(w http.ResponseWriter, r *http.Request) {
	res, _, err := readResource(r)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	a.saveResource(w, r, res, true, secretPresence{})
}

func (a *api) putResource(w http.ResponseWriter, r *http.Request) {
	res, pres, err := readResource(r)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	if res.ID == "" {
		res.ID = r.PathValue("id")
	}
	if res.ID != r.PathValue("id") {
		a.fail(w, r, config.FieldErrors{{Field: "id", Value: res.ID, Message: "the ID in the body must match the URL (" + r.PathValue("id") + ")"}})
		return
	}
	a.saveResource(w, r, res, false, pres)
}

func (a *api) saveResource(w http.ResponseWriter, r *http.Request, res config.Resource, create bool, pres secretPresence) {
	if create && res.ID == "" {
		res.ID = newID(res.Name, func(id string) bool { _, ok := a.Live.Load().Resource(id); return ok })
	}
	res.Normalize()
	if err := res.Validate(); err != nil {
		a.fail(w, r, err)
		return
	}
	verb := "changed"
	if create {
		verb = "added"
	}
	err := a.apply(r, fmt.Sprintf("%s resource %s (%s %s:%d)", verb, res.ID, res.Protocol, res.Host, res.Port), func(t *store.Tx) error {
		old, err := t.Resource(res.ID)
		switch {
		case create && err == nil:
			return conflictError{fmt.Errorf("a resource with ID %q exists already", res.ID)}
		case !create && err != nil:
			return err
		}
		if err := checkMembers(t, "", res.Users, res.Groups); err != nil {
			return err
		}
		if create {
			return a.putSealed(t, &res, nil, pres)
		}
		return a.putSealed(t, &res, &old, pres)
	})
	if err != nil {
		a.fail(w, r, err)
		return
	}
	if !create {
		a.endUnassigned(res)
	}
	code := http.StatusOK
	if create {
		code = http.StatusCreated
	}
	writeJSON(w, code, redact(res))
}

func (a *api) putSealed(t *store.Tx, res, old *config.Resource, pres secretPresence) error {
	if err := a.sealResource(res, old, pres); err != nil {
		return err
	}
	return t.PutResource(*res)
}

func (a *api) deleteResource(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if err := a.apply(r, "removed resource "+id, func(t *store.Tx) error { return t.DeleteResource(id) }); err != nil {
		if err == store.ErrNotFound {
			err = notFound("resource", id)
		}
		a.fail(w, r, err)
		return
	}
	a.Sessions.DisconnectWhere(func(i sessions.Info) bool { return i.Resource == id }, sessions.ReasonAccessRemoved)
	w.WriteHeader(http.StatusNoContent)
}

// endUnassigned ends the live sessions on res of users it is no longer
// assigned to (directly or through a group).
func (a *api) endUnassigned(res config.Resource) {
	a.Sessions.DisconnectWhere(func(i sessions.Info) bool {
		if i.Resource != res.ID {
			return false
		}
		if containsFold(res.Users, i.User) {
			return false
		}
		var u directory.User
		if err := a.Store.View(func(t *store.Tx) (err error) { u, err = t.User(i.User); return }); err != nil {
			return true
		}
		for _, g := range res.Groups {
			if u.InGroup(g) {
				return false
			}
		}
		return true
	}, sessions.ReasonAccessRemoved)
}
