package admin

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"portico/service/config"
	"portico/service/directory"
	"portico/service/store"
)

// signInReply is GET/PUT settings/signin: the settings with every bind
// password left out (bindPasswordSet says which directories have one).
type signInReply struct {
	Settings config.SignIn `json:"settings"`
	// BindPasswordSet lists the directory IDs that have a stored bind password.
	BindPasswordSet []string `json:"bindPasswordSet"`
}

func redactSignIn(si config.SignIn) signInReply {
	out := signInReply{Settings: si, BindPasswordSet: []string{}}
	out.Settings.Directories = append([]config.Directory{}, si.Directories...)
	for i := range out.Settings.Directories {
		if out.Settings.Directories[i].BindPassword != "" {
			out.BindPasswordSet = append(out.BindPasswordSet, out.Settings.Directories[i].ID)
		}
		out.Settings.Directories[i].BindPassword = ""
	}
	if out.Settings.Directories == nil {
		out.Settings.Directories = []config.Directory{}
	}
	return out
}

func (a *api) getSignIn(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, redactSignIn(a.Live.Load().SignIn))
}

// putSignIn replaces the directories (in order) and the second-factor
// setting. A directory sent without bindPassword keeps the stored one of
// the same ID; a new one is sealed before it is stored.
func (a *api) putSignIn(w http.ResponseWriter, r *http.Request) {
	var in config.SignIn
	if err := decode(r, &in); err != nil {
		a.fail(w, r, err)
		return
	}
	for i := range in.Directories {
		d := &in.Directories[i]
		d.ID, d.NetBIOSName, d.DNSName = strings.TrimSpace(d.ID), strings.TrimSpace(d.NetBIOSName), strings.TrimSpace(d.DNSName)
		for j := range d.Servers {
			d.Servers[j] = strings.TrimSpace(d.Servers[j])
		}
	}
	if err := in.Validate(); err != nil {
		a.fail(w, r, err)
		return
	}
	err := a.apply(r, "changed the sign-in settings (directories, second factor)", func(t *store.Tx) error {
		old, err := t.SignIn()
		if err != nil {
			return err
		}
		var es config.FieldErrors
		for i := range in.Directories {
			d := &in.Directories[i]
			if d.BindPassword == "" {
				for _, o := range old.Directories {
					if strings.EqualFold(o.ID, d.ID) {
						d.BindPassword = o.BindPassword
					}
				}
				if d.BindPassword == "" {
					es = append(es, config.FieldError{Field: fmt.Sprintf("directories[%d].bindPassword", i), Message: "give the bind account's password"})
				}
				continue
			}
			if d.BindPassword, err = a.Secrets.Seal(d.BindPassword); err != nil {
				return fmt.Errorf("seal the bind password: %w", err)
			}
		}
		for i, g := range in.TOTP.Groups {
			if _, err := t.Group(g); err != nil && !directory.IsDirectoryGroup(in, g) {
				es = append(es, config.FieldError{Field: fmt.Sprintf("totp.groups[%d]", i), Value: g, Message: `no such group: a local group, or NETBIOS\Group of a directory`})
			}
		}
		if len(es) > 0 {
			return es
		}
		return t.PutSignIn(in)
	})
	if err != nil {
		a.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, redactSignIn(a.Live.Load().SignIn))
}

// testDirectory is the Directories page's Test button: the directory as
// edited (not necessarily saved), and optionally a user to look up.
func (a *api) testDirectory(w http.ResponseWriter, r *http.Request) {
	var in struct {
		Directory config.Directory `json:"directory"`
		User      string           `json:"user"`
	}
	if err := decode(r, &in); err != nil {
		a.fail(w, r, err)
		return
	}
	d := in.Directory
	pw := d.BindPassword
	if pw == "" {
		for _, o := range a.Live.Load().SignIn.Directories {
			if strings.EqualFold(o.ID, d.ID) && o.BindPassword != "" {
				var err error
				if pw, err = a.Secrets.Unseal(o.BindPassword); err != nil {
					a.fail(w, r, fmt.Errorf("open the stored bind password: %w", err))
					return
				}
			}
		}
		d.BindPassword = "stored"
	}
	if err := d.Validate(); err != nil {
		a.fail(w, r, err)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), time.Duration(d.Timeout()*len(d.Servers)+5)*time.Second)
	defer cancel()
	writeJSON(w, http.StatusOK, directory.Test(ctx, d, pw, strings.TrimSpace(in.User)))
}

// searchDirectoryGroups answers the GUI's group pickers as the admin types:
// GET directories/groups?q=prefix → {"groups": [...]} from every enabled
// directory, plus an error sentence when one could not be asked.
func (a *api) searchDirectoryGroups(w http.ResponseWriter, r *http.Request) {
	q := strings.TrimSpace(r.URL.Query().Get("q"))
	if len(q) > 64 {
		a.fail(w, r, config.FieldErrors{{Field: "q", Value: q, Message: "use at most 64 characters"}})
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 15*time.Second)
	defer cancel()
	groups, err := a.directory().SearchGroups(ctx, a.Live.Load().SignIn, q, 50)
	out := map[string]any{"groups": nonNil(groups)}
	if err != nil {
		out["error"] = err.Error()
	}
	writeJSON(w, http.StatusOK, out)
}

// directory returns the directory service the admin API asks (explain,
// pickers).
func (a *api) directory() *directory.Service { return a.Directory }

// newDirectory builds a directory service over the store and secrets, for
// an admin API started without the gateway's.
func newDirectory(st *store.Store, unseal func(string) (string, error)) *directory.Service {
	return &directory.Service{
		LocalUser: func(name string) (u directory.User, err error) {
			err = st.View(func(t *store.Tx) (err error) { u, err = t.User(name); return })
			return u, err
		},
		Unseal: unseal,
	}
}

// memberGroups resolves the groups of user for explain: a local user from
// the store, NETBIOS\user from its directory.
func (a *api) memberGroups(ctx context.Context, user string) ([]string, error) {
	si := a.Live.Load().SignIn
	if nb, name, ok := strings.Cut(user, `\`); ok {
		for _, d := range si.Directories {
			if strings.EqualFold(d.NetBIOSName, nb) {
				res := a.directory()
				acct, err := res.Lookup(ctx, si, d.ID, name)
				if err != nil {
					return nil, err
				}
				return acct.Groups, nil
			}
		}
		return nil, errors.New("no directory has that NetBIOS name")
	}
	var groups []string
	err := a.Store.View(func(t *store.Tx) error {
		u, err := t.User(user)
		groups = u.Groups
		return err
	})
	return groups, err
}

// secondFactorStatus answers GET users/{name}/second-factor: whether the
// user (local name or NETBIOS\user) has enrolled, since when, and how many
// recovery codes are left.
func (a *api) secondFactorStatus(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	out := map[string]any{"user": name, "enrolled": false}
	err := a.Store.View(func(t *store.Tx) error {
		e, err := t.MFA(name)
		if errors.Is(err, store.ErrNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		out["enrolled"], out["created"], out["recoveryCodesLeft"] = true, e.Created, len(e.Recovery)
		return nil
	})
	if err != nil {
		a.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, out)
}

// resetSecondFactor answers DELETE users/{name}/second-factor: the user's
// authenticator and recovery codes are forgotten and the next sign-in
// enrols again.
func (a *api) resetSecondFactor(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	err := a.apply(r, "reset the second factor of "+name, func(t *store.Tx) error {
		if err := t.DeleteMFA(name); err != nil {
			return notFound("second-factor enrolment of", name)
		}
		return nil
	})
	if err != nil {
		a.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"user": name, "enrolled": false})
}
