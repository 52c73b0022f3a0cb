package store

import (
	"errors"
	"fmt"
	"time"

	"portico/service/config"
	"portico/service/directory"
	"portico/service/mfa"
)

// Site returns the site default User Portal settings.
func (t *Tx) Site() (config.PortalSettings, error) {
	var p config.PortalSettings
	err := t.get(bSettings, kSite, &p)
	return p, err
}

// PutSite replaces the site defaults.
func (t *Tx) PutSite(p config.PortalSettings) error { return t.put(bSettings, kSite, p) }

// SignIn returns the directories and second-factor settings (zero when
// never set: local accounts only, no second factor).
func (t *Tx) SignIn() (config.SignIn, error) {
	var s config.SignIn
	err := t.get(bSettings, kSignIn, &s)
	if errors.Is(err, ErrNotFound) {
		return config.SignIn{}, nil
	}
	return s, err
}

// PutSignIn replaces the sign-in settings.
func (t *Tx) PutSignIn(s config.SignIn) error { return t.put(bSettings, kSignIn, s) }

// Gateway returns a gateway record by ID.
func (t *Tx) Gateway(id string) (config.Gateway, error) {
	var g config.Gateway
	err := t.get(bGateways, []byte(id), &g)
	return g, err
}

// PutGateway writes a gateway record.
func (t *Tx) PutGateway(g config.Gateway) error { return t.put(bGateways, []byte(g.ID), g) }

// Gateways returns all gateway records.
func (t *Tx) Gateways() ([]config.Gateway, error) { return all[config.Gateway](t, bGateways) }

// Resource returns one resource.
func (t *Tx) Resource(id string) (config.Resource, error) {
	var r config.Resource
	err := t.get(bResources, []byte(id), &r)
	return r, err
}

// Resources returns all resources, ordered by ID.
func (t *Tx) Resources() ([]config.Resource, error) { return all[config.Resource](t, bResources) }

// PutResource creates or replaces a resource.
func (t *Tx) PutResource(r config.Resource) error { return t.put(bResources, []byte(r.ID), r) }

// DeleteResource removes a resource.
func (t *Tx) DeleteResource(id string) error { return t.del(bResources, []byte(id)) }

// User returns a user by name (case-insensitive).
func (t *Tx) User(name string) (directory.User, error) {
	var u directory.User
	err := t.get(bUsers, []byte(directory.Key(name)), &u)
	return u, err
}

// Users returns all users, ordered by name.
func (t *Tx) Users() ([]directory.User, error) { return all[directory.User](t, bUsers) }

// PutUser creates or replaces a user.
//
// It keeps the credential generation (directory.User.Epoch): a new account,
// a changed password hash and a re-enabled account each get a new epoch,
// which ends every portal sign-in made under the old one; any other change
// keeps it. (While an account is disabled its sign-ins are refused by the
// Disabled flag and told why; re-enabling must not bring them back.)
// Callers that must end sign-ins for another reason call BumpUserEpoch.
func (t *Tx) PutUser(u directory.User) error {
	old, err := t.User(u.Username)
	switch {
	case err != nil, old.Epoch == 0, old.PasswordHash != u.PasswordHash, old.Disabled && !u.Disabled:
		u.Epoch = nextEpoch(old.Epoch)
	default:
		u.Epoch = old.Epoch
	}
	return t.put(bUsers, []byte(directory.Key(u.Username)), u)
}

// BumpUserEpoch gives a user a new credential generation, ending every
// portal sign-in of theirs at the next request.
func (t *Tx) BumpUserEpoch(name string) error {
	u, err := t.User(name)
	if err != nil {
		return err
	}
	u.Epoch = nextEpoch(u.Epoch)
	return t.put(bUsers, []byte(directory.Key(u.Username)), u)
}

// nextEpoch is after old and after any epoch a deleted account of the same
// name may have had (it is the clock in nanoseconds), so a re-created
// account does not revive an old cookie either.
func nextEpoch(old int64) int64 { return max(old+1, time.Now().UnixNano()) }

// DeleteUser removes a user.
func (t *Tx) DeleteUser(name string) error { return t.del(bUsers, []byte(directory.Key(name))) }

// Group returns a group by name.
func (t *Tx) Group(name string) (directory.Group, error) {
	var g directory.Group
	err := t.get(bGroups, []byte(directory.Key(name)), &g)
	return g, err
}

// Groups returns all groups.
func (t *Tx) Groups() ([]directory.Group, error) { return all[directory.Group](t, bGroups) }

// PutGroup creates or replaces a group.
func (t *Tx) PutGroup(g directory.Group) error {
	return t.put(bGroups, []byte(directory.Key(g.Name)), g)
}

// DeleteGroup removes a group.
func (t *Tx) DeleteGroup(name string) error { return t.del(bGroups, []byte(directory.Key(name))) }

// Policies returns the client policies in their order.
func (t *Tx) Policies() ([]config.ClientPolicy, error) {
	var ps []config.ClientPolicy
	err := t.get(bPolicies, kOrder, &ps)
	if errors.Is(err, ErrNotFound) {
		return []config.ClientPolicy{}, nil
	}
	return ps, err
}

// PutPolicies replaces the ordered list of client policies. The list is one
// record so that reordering is atomic.
func (t *Tx) PutPolicies(ps []config.ClientPolicy) error {
	if ps == nil {
		ps = []config.ClientPolicy{}
	}
	return t.put(bPolicies, kOrder, ps)
}

// Certificate is the gateway's TLS certificate chain and key in PEM.
type Certificate struct {
	// CertPEM is the chain, leaf first.
	CertPEM []byte `json:"certPEM"`
	// KeyPEM is the private key.
	KeyPEM []byte `json:"keyPEM"`
}

// Certificate names in the certificates bucket.
const (
	// CertGateway is the portal's HTTPS certificate (exported and imported).
	CertGateway = "gateway"
	// CertAdmin is the admin API's own certificate (this node only).
	CertAdmin = "admin"
)

// Certificate returns a stored certificate by name.
func (t *Tx) Certificate(name string) (Certificate, error) {
	var c Certificate
	err := t.get(bCerts, []byte(name), &c)
	return c, err
}

// PutCertificate stores a certificate under name.
func (t *Tx) PutCertificate(name string, c Certificate) error { return t.put(bCerts, []byte(name), c) }

// Preference returns a per-user preference value (e.g. the chosen launch
// method); "" when unset.
func (t *Tx) Preference(user, name string) string {
	var v string
	if err := t.get(bPrefs, []byte(directory.Key(user)+"\x00"+name), &v); err != nil {
		return ""
	}
	return v
}

// PutPreference stores a per-user preference.
func (t *Tx) PutPreference(user, name, value string) error {
	return t.put(bPrefs, []byte(directory.Key(user)+"\x00"+name), value)
}

// FirstRunDone reports whether first-run initialisation has completed.
func (t *Tx) FirstRunDone() bool {
	return t.tx.Bucket(bMeta).Get(kFirstRun) != nil
}

// MarkFirstRunDone records that first-run initialisation completed.
func (t *Tx) MarkFirstRunDone() error {
	if err := t.tx.Bucket(bMeta).Put(kFirstRun, []byte("1")); err != nil {
		return fmt.Errorf("mark first run: %w", err)
	}
	return nil
}

// Snapshot reads everything the running gateway works from, for the given
// gateway, in this transaction, so the result is consistent with the
// change just made in it.
func (t *Tx) Snapshot(gatewayID string) (*config.Snapshot, error) {
	site, err := t.Site()
	if err != nil {
		return nil, fmt.Errorf("read site defaults: %w", err)
	}
	g, err := t.Gateway(gatewayID)
	if err != nil {
		return nil, fmt.Errorf("read gateway %s: %w", gatewayID, err)
	}
	rs, err := t.Resources()
	if err != nil {
		return nil, fmt.Errorf("read resources: %w", err)
	}
	ps, err := t.Policies()
	if err != nil {
		return nil, fmt.Errorf("read policies: %w", err)
	}
	users, err := t.Users()
	if err != nil {
		return nil, fmt.Errorf("read users: %w", err)
	}
	epochs := make(map[string]int64, len(users))
	for _, u := range users {
		epochs[directory.Key(u.Username)] = u.Epoch
	}
	si, err := t.SignIn()
	if err != nil {
		return nil, fmt.Errorf("read sign-in settings: %w", err)
	}
	return &config.Snapshot{Site: site, Gateway: g, Effective: config.Resolve(site, g), Resources: rs, Policies: ps, UserEpochs: epochs, SignIn: si}, nil
}

// MFA returns a user's second-factor enrolment (user is the principal:
// the local name or NETBIOS\user); ErrNotFound when not enrolled.
func (t *Tx) MFA(user string) (mfa.Enrolment, error) {
	var e mfa.Enrolment
	err := t.get(bMFA, []byte(directory.Key(user)), &e)
	return e, err
}

// PutMFA writes a user's enrolment.
func (t *Tx) PutMFA(user string, e mfa.Enrolment) error {
	return t.put(bMFA, []byte(directory.Key(user)), e)
}

// DeleteMFA removes a user's enrolment (the admin's reset): the next
// sign-in enrols again.
func (t *Tx) DeleteMFA(user string) error { return t.del(bMFA, []byte(directory.Key(user))) }
