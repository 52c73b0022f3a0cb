package store

import (
	"fmt"
	"io"
	"time"

	"portico/service/config"
	"portico/service/directory"
)

// DocumentFormat identifies a Portico configuration export.
const DocumentFormat = "portico-configuration"

// Document is the whole configuration as exported to JSON: everything an
// admin set up, but not runtime state (audit log, portal sessions).
// Credentials stay sealed with the data directory's secret key; to move them
// to another machine, copy secret.key with the export.
type Document struct {
	// Format is DocumentFormat.
	Format string `json:"format"`
	// Schema is the store schema version that wrote it.
	Schema int `json:"schema"`
	// Exported is when it was written.
	Exported time.Time `json:"exported"`
	// Site is the site default User Portal settings.
	Site config.PortalSettings `json:"site"`
	// Gateways are the gateway records.
	Gateways []config.Gateway `json:"gateways"`
	// Resources are the published resources.
	Resources []config.Resource `json:"resources"`
	// Users are the local accounts with password hashes.
	Users []directory.User `json:"users"`
	// Groups are the groups.
	Groups []directory.Group `json:"groups"`
	// Policies are the client policies in order.
	Policies []config.ClientPolicy `json:"policies"`
	// SignIn is the directories (bind passwords sealed) and the second-factor
	// setting; absent in exports from before directories.
	SignIn *config.SignIn `json:"signIn,omitempty"`
	// Certificate is the gateway's TLS certificate, if any.
	Certificate *Certificate `json:"certificate,omitempty"`
}

// Export reads the whole configuration in one consistent transaction.
func (s *Store) Export() (Document, error) {
	d := Document{Format: DocumentFormat, Schema: SchemaVersion(), Exported: time.Now().UTC()}
	err := s.View(func(t *Tx) error {
		var err error
		if d.Site, err = t.Site(); err != nil {
			return fmt.Errorf("site: %w", err)
		}
		if d.Gateways, err = t.Gateways(); err != nil {
			return err
		}
		if d.Resources, err = t.Resources(); err != nil {
			return err
		}
		if d.Users, err = t.Users(); err != nil {
			return err
		}
		for i := range d.Users {
			// A generation belongs to this store's sign-ins; an import
			// gives each account a new one.
			d.Users[i].Epoch = 0
		}
		if d.Groups, err = t.Groups(); err != nil {
			return err
		}
		if d.Policies, err = t.Policies(); err != nil {
			return err
		}
		si, err := t.SignIn()
		if err != nil {
			return err
		}
		d.SignIn = &si
		if c, err := t.Certificate(CertGateway); err == nil {
			d.Certificate = &c
		}
		return nil
	})
	return d, err
}

// ReadDocument strictly decodes an export.
func ReadDocument(r io.Reader) (Document, error) {
	var d Document
	if err := config.DecodeStrict(r, &d); err != nil {
		return d, fmt.Errorf("read configuration: %w", err)
	}
	return d, nil
}

// Validate checks a whole document, including references between its parts
// (resources and policies naming users and groups that exist). It returns
// every problem with its path.
func (d Document) Validate() error {
	var es config.FieldErrors
	add := func(field, value, msg string) {
		es = append(es, config.FieldError{Field: field, Value: value, Message: msg})
	}
	addAll := func(prefix string, err error) {
		if err == nil {
			return
		}
		if fes, ok := config.AsFieldErrors(err); ok {
			for _, fe := range fes {
				fe.Field = prefix + "." + fe.Field
				es = append(es, fe)
			}
			return
		}
		add(prefix, "", err.Error())
	}
	if d.Format != DocumentFormat {
		add("format", d.Format, "not a Portico configuration export (format must be "+DocumentFormat+")")
	}
	if d.Schema < 1 || d.Schema > SchemaVersion() {
		add("schema", fmt.Sprint(d.Schema), fmt.Sprintf("exports from schema 1 to %d can be imported", SchemaVersion()))
	}
	site := d.Site
	site.Normalize()
	addAll("site", site.Validate(nil))
	if len(d.Gateways) == 0 {
		add("gateways", "", "the export has no gateway record")
	}
	ids := map[string]bool{}
	for i, g := range d.Gateways {
		if ids[g.ID] {
			add(fmt.Sprintf("gateways[%d].id", i), g.ID, "duplicate gateway ID")
		}
		ids[g.ID] = true
		addAll(fmt.Sprintf("gateways[%d]", i), g.Validate(nil))
	}
	var si config.SignIn
	if d.SignIn != nil {
		si = *d.SignIn
		if err := si.Validate(); err != nil {
			addAll("signIn", err)
		}
	}
	users, groups := map[string]bool{}, map[string]bool{}
	for i, g := range d.Groups {
		if groups[directory.Key(g.Name)] {
			add(fmt.Sprintf("groups[%d].name", i), g.Name, "duplicate group")
		}
		groups[directory.Key(g.Name)] = true
		addAll(fmt.Sprintf("groups[%d]", i), g.Validate())
	}
	for i, u := range d.Users {
		if users[directory.Key(u.Username)] {
			add(fmt.Sprintf("users[%d].username", i), u.Username, "duplicate user")
		}
		users[directory.Key(u.Username)] = true
		addAll(fmt.Sprintf("users[%d]", i), u.Validate())
		for j, g := range u.Groups {
			if !groups[directory.Key(g)] {
				add(fmt.Sprintf("users[%d].groups[%d]", i, j), g, "no such group in the export")
			}
		}
	}
	rids := map[string]bool{}
	for i, r := range d.Resources {
		if rids[r.ID] {
			add(fmt.Sprintf("resources[%d].id", i), r.ID, "duplicate resource ID")
		}
		rids[r.ID] = true
		addAll(fmt.Sprintf("resources[%d]", i), r.Validate())
		checkRefs(&es, si, fmt.Sprintf("resources[%d]", i), r.Users, r.Groups, users, groups)
	}
	pids := map[string]bool{}
	for i, p := range d.Policies {
		if pids[p.ID] {
			add(fmt.Sprintf("policies[%d].id", i), p.ID, "duplicate policy ID")
		}
		pids[p.ID] = true
		addAll(fmt.Sprintf("policies[%d]", i), p.Validate())
		checkRefs(&es, si, fmt.Sprintf("policies[%d]", i), p.Users, p.Groups, users, groups)
	}
	if len(es) == 0 {
		return nil
	}
	return es
}

func checkRefs(es *config.FieldErrors, si config.SignIn, prefix string, us, gs []string, users, groups map[string]bool) {
	for j, u := range us {
		if !users[directory.Key(u)] && !directory.IsDirectoryGroup(si, u) {
			*es = append(*es, config.FieldError{Field: fmt.Sprintf("%s.users[%d]", prefix, j), Value: u, Message: "no such user in the export"})
		}
	}
	for j, g := range gs {
		if !groups[directory.Key(g)] && !directory.IsDirectoryGroup(si, g) {
			*es = append(*es, config.FieldError{Field: fmt.Sprintf("%s.groups[%d]", prefix, j), Value: g, Message: "no such group in the export"})
		}
	}
}

// Import validates d and then replaces the whole configuration with it in
// one transaction: either all of it is stored or nothing changes. Portal
// sessions and the audit log are kept (an import event is appended).
func (s *Store) Import(d Document, by string) error {
	if err := d.Validate(); err != nil {
		return fmt.Errorf("import refused, nothing was changed: %w", err)
	}
	return s.Update(func(t *Tx) error {
		for _, b := range [][]byte{bGateways, bResources, bUsers, bGroups, bPolicies} {
			if err := clearBucket(t.tx, b); err != nil {
				return err
			}
		}
		site := d.Site
		site.Normalize()
		if err := t.PutSite(site); err != nil {
			return err
		}
		for _, g := range d.Gateways {
			if err := t.PutGateway(g); err != nil {
				return err
			}
		}
		for _, r := range d.Resources {
			if err := t.PutResource(r); err != nil {
				return err
			}
		}
		for _, g := range d.Groups {
			if err := t.PutGroup(g); err != nil {
				return err
			}
		}
		for _, u := range d.Users {
			if err := t.PutUser(u); err != nil {
				return err
			}
		}
		if err := t.PutPolicies(d.Policies); err != nil {
			return err
		}
		if d.SignIn != nil {
			if err := t.PutSignIn(*d.SignIn); err != nil {
				return err
			}
		}
		if d.Certificate != nil {
			if err := t.PutCertificate(CertGateway, *d.Certificate); err != nil {
				return err
			}
		}
		return t.AppendAudit(Event{Type: "config.import", User: by, Detail: fmt.Sprintf("imported %d resources, %d users, %d groups, %d policies", len(d.Resources), len(d.Users), len(d.Groups), len(d.Policies))})
	})
}
