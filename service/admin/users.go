package admin

import (
	"errors"
	"fmt"
	"net/http"
	"strings"

	"portico/service/config"
	"portico/service/directory"
	"portico/service/sessions"
	"portico/service/store"
)

// newID makes a readable ID from a name ("Office PC 1" → "office-pc-1"),
// adding a number while taken reports a clash.
func newID(name string, taken func(string) bool) string {
	var b strings.Builder
	dash := false
	for _, c := range strings.ToLower(name) {
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9':
			b.WriteRune(c)
			dash = false
		case !dash && b.Len() > 0:
			b.WriteByte('-')
			dash = true
		}
	}
	base := strings.Trim(b.String(), "-")
	if len(base) > 50 {
		base = strings.Trim(base[:50], "-")
	}
	if base == "" {
		base = "resource"
	}
	id := base
	for i := 2; taken(id); i++ {
		id = fmt.Sprintf("%s-%d", base, i)
	}
	return id
}

// userIn is a user as the API accepts it: a password instead of a hash.
type userIn struct {
	Username    string   `json:"username"`
	Domain      string   `json:"domain"`
	DisplayName string   `json:"displayName"`
	Groups      []string `json:"groups"`
	Disabled    bool     `json:"disabled"`
	// Password is required on create; on update it is ignored (use the
	// password route).
	Password string `json:"password,omitempty"`
}

// userOut is a user as the API shows it.
type userOut struct {
	Username    string   `json:"username"`
	Domain      string   `json:"domain"`
	DisplayName string   `json:"displayName"`
	Groups      []string `json:"groups"`
	Disabled    bool     `json:"disabled"`
	Admin       bool     `json:"admin"`
}

func showUser(u directory.User) userOut {
	g := u.Groups
	if g == nil {
		g = []string{}
	}
	return userOut{Username: u.Username, Domain: u.Domain, DisplayName: u.DisplayName, Groups: g, Disabled: u.Disabled, Admin: u.Admin}
}

func (a *api) listUsers(w http.ResponseWriter, r *http.Request) {
	var out []userOut
	err := a.Store.View(func(t *store.Tx) error {
		us, err := t.Users()
		for _, u := range us {
			out = append(out, showUser(u))
		}
		return err
	})
	if err != nil {
		a.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, nonNil(out))
}

func (a *api) getUser(w http.ResponseWriter, r *http.Request) {
	var u directory.User
	err := a.Store.View(func(t *store.Tx) (err error) { u, err = t.User(r.PathValue("name")); return })
	if err != nil {
		if errors.Is(err, store.ErrNotFound) {
			err = notFound("user", r.PathValue("name"))
		}
		a.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, showUser(u))
}

func validateUser(u directory.User) error {
	if err := u.Validate(); err != nil {
		var es config.FieldErrors
		for _, p := range strings.Split(err.Error(), "; ") {
			field, msg, _ := strings.Cut(p, ": ")
			es = append(es, config.FieldError{Field: field, Message: msg})
		}
		return es
	}
	return nil
}

func (a *api) createUser(w http.ResponseWriter, r *http.Request) {
	var in userIn
	if err := decode(r, &in); err != nil {
		a.fail(w, r, err)
		return
	}
	u := directory.User{Username: strings.TrimSpace(in.Username), Domain: strings.TrimSpace(in.Domain), DisplayName: strings.TrimSpace(in.DisplayName), Groups: nonNil(in.Groups), Disabled: in.Disabled}
	if err := validateUser(u); err != nil {
		a.fail(w, r, err)
		return
	}
	hash, err := directory.HashPassword(in.Password)
	if err != nil {
		a.fail(w, r, config.FieldErrors{{Field: "password", Message: strings.TrimPrefix(err.Error(), "password: ")}})
		return
	}
	u.PasswordHash = hash
	err = a.apply(r, "added user "+u.Username, func(t *store.Tx) error {
		if _, err := t.User(u.Username); err == nil {
			return conflictError{fmt.Errorf("a user named %q exists already", u.Username)}
		}
		if err := checkMembers(t, "", nil, u.Groups); err != nil {
			return err
		}
		return t.PutUser(u)
	})
	if err != nil {
		a.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, showUser(u))
}

func (a *api) putUser(w http.ResponseWriter, r *http.Request) {
	var in userIn
	if err := decode(r, &in); err != nil {
		a.fail(w, r, err)
		return
	}
	name := r.PathValue("name")
	if in.Username != "" && directory.Key(in.Username) != directory.Key(name) {
		a.fail(w, r, config.FieldErrors{{Field: "username", Value: in.Username, Message: "user names cannot be changed; add a new user instead"}})
		return
	}
	var u, old directory.User
	err := a.apply(r, "changed user "+name, func(t *store.Tx) error {
		var err error
		old, err = t.User(name)
		if err != nil {
			return notFound("user", name)
		}
		u = old
		u.Domain, u.DisplayName, u.Groups, u.Disabled = strings.TrimSpace(in.Domain), strings.TrimSpace(in.DisplayName), nonNil(in.Groups), in.Disabled
		if err := validateUser(u); err != nil {
			return err
		}
		if err := checkMembers(t, "", nil, u.Groups); err != nil {
			return err
		}
		return t.PutUser(u)
	})
	if err != nil {
		a.fail(w, r, err)
		return
	}
	// Disabling an account or changing its groups ends its portal
	// sign-ins and live sessions at once (groups decide what it may open).
	if u.Disabled || !sameGroups(old.Groups, u.Groups) {
		a.Sessions.Revoke(u.Username, sessions.ReasonAccountChanged)
	}
	writeJSON(w, http.StatusOK, showUser(u))
}

func (a *api) deleteUser(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	err := a.apply(r, "removed user "+name, func(t *store.Tx) error {
		u, err := t.User(name)
		if err != nil {
			return notFound("user", name)
		}
		if u.Admin {
			return conflictError{errors.New("the administrator account cannot be removed; disable it instead")}
		}
		if refs := references(t, func(users, _ []string) bool { return containsFold(users, name) }); len(refs) > 0 {
			return conflictError{fmt.Errorf("user %q is still assigned to %s: remove those assignments first", name, strings.Join(refs, ", "))}
		}
		if err := t.DeleteMFA(name); err != nil && !errors.Is(err, store.ErrNotFound) {
			return err
		}
		return t.DeleteUser(name)
	})
	if err != nil {
		a.fail(w, r, err)
		return
	}
	a.Sessions.Revoke(name, sessions.ReasonAccountChanged)
	w.WriteHeader(http.StatusNoContent)
}

// sameGroups reports whether two group lists name the same groups.
func sameGroups(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for _, g := range a {
		if !containsFold(b, g) {
			return false
		}
	}
	return true
}

// references lists resources and policies whose user/group lists match.
func references(t *store.Tx, match func(users, groups []string) bool) []string {
	var refs []string
	rs, _ := t.Resources()
	for _, r := range rs {
		if match(r.Users, r.Groups) {
			refs = append(refs, "resource "+r.ID)
		}
	}
	ps, _ := t.Policies()
	for _, p := range ps {
		if match(p.Users, p.Groups) {
			refs = append(refs, "policy "+p.ID)
		}
	}
	return refs
}

func containsFold(list []string, s string) bool {
	for _, x := range list {
		if strings.EqualFold(x, s) {
			return true
		}
	}
	return false
}

func (a *api) setPassword(w http.ResponseWriter, r *http.Request) {
	var in struct {
		Password string `json:"password"`
	}
	if err := decode(r, &in); err != nil {
		a.fail(w, r, err)
		return
	}
	generated := in.Password == ""
	if generated {
		var err error
		if in.Password, err = directory.GeneratePassword(); err != nil {
			a.fail(w, r, err)
			return
		}
	}
	hash, err := directory.HashPassword(in.Password)
	if err != nil {
		a.fail(w, r, config.FieldErrors{{Field: "password", Message: strings.TrimPrefix(err.Error(), "password: ")}})
		return
	}
	name := r.PathValue("name")
	err = a.apply(r, "set a new password for user "+name, func(t *store.Tx) error {
		u, err := t.User(name)
		if err != nil {
			return notFound("user", name)
		}
		u.PasswordHash = hash
		return t.PutUser(u)
	})
	if err != nil {
		a.fail(w, r, err)
		return
	}
	// A new password ends the sign-ins made with the old one.
	a.Sessions.Revoke(name, sessions.ReasonAccountChanged)
	out := map[string]any{"ok": true}
	if generated {
		out["password"] = in.Password
	}
	writeJSON(w, http.StatusOK, out)
}

func (a *api) listGroups(w http.ResponseWriter, r *http.Request) {
	var gs []directory.Group
	err := a.Store.View(func(t *store.Tx) (err error) { gs, err = t.Groups(); return })
	if err != nil {
		a.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, nonNil(gs))
}

func groupErr(err error) error {
	field, msg, _ := strings.Cut(err.Error(), ": ")
	return config.FieldErrors{{Field: field, Message: msg}}
}

func (a *api) createGroup(w http.ResponseWriter, r *http.Request) {
	var g directory.Group
	if err := decode(r, &g); err != nil {
		a.fail(w, r, err)
		return
	}
	g.Name = strings.TrimSpace(g.Name)
	if err := g.Validate(); err != nil {
		a.fail(w, r, groupErr(err))
		return
	}
	err := a.apply(r, "added group "+g.Name, func(t *store.Tx) error {
		if _, err := t.Group(g.Name); err == nil {
			return conflictError{fmt.Errorf("a group named %q exists already", g.Name)}
		}
		return t.PutGroup(g)
	})
	if err != nil {
		a.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, g)
}

func (a *api) putGroup(w http.ResponseWriter, r *http.Request) {
	var g directory.Group
	if err := decode(r, &g); err != nil {
		a.fail(w, r, err)
		return
	}
	name := r.PathValue("name")
	if g.Name == "" {
		g.Name = name
	}
	if directory.Key(g.Name) != directory.Key(name) {
		a.fail(w, r, config.FieldErrors{{Field: "name", Value: g.Name, Message: "group names cannot be changed; add a new group instead"}})
		return
	}
	if err := g.Validate(); err != nil {
		a.fail(w, r, groupErr(err))
		return
	}
	err := a.apply(r, "changed group "+name, func(t *store.Tx) error {
		if _, err := t.Group(name); err != nil {
			return notFound("group", name)
		}
		return t.PutGroup(g)
	})
	if err != nil {
		a.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, g)
}

func (a *api) deleteGroup(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	err := a.apply(r, "removed group "+name, func(t *store.Tx) error {
		if _, err := t.Group(name); err != nil {
			return notFound("group", name)
		}
		refs := references(t, func(_, groups []string) bool { return containsFold(groups, name) })
		us, _ := t.Users()
		for _, u := range us {
			if u.InGroup(name) {
				refs = append(refs, "user "+u.Username)
			}
		}
		if len(refs) > 0 {
			return conflictError{fmt.Errorf("group %q is still used by %s: remove those first", name, strings.Join(refs, ", "))}
		}
		return t.DeleteGroup(name)
	})
	if err != nil {
		a.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
