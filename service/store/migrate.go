package store

import (
	"encoding/binary"
	"fmt"

	bolt "go.etcd.io/bbolt"

	"portico/service/config"
)

// migration moves the schema from version i to i+1 (its index in
// migrations). Each runs in its own transaction together with the version
// bump, so a crash mid-migration leaves the old version intact.
type migration struct {
	name string
	up   func(tx *bolt.Tx) error
}

// migrations is append-only: never edit a released step, add a new one.
var migrations = []migration{
	{"create buckets and site defaults", func(tx *bolt.Tx) error {
		for _, b := range [][]byte{bSettings, bGateways, bResources, bUsers, bGroups, bPolicies, bAudit, bCerts, bSessions} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		t := &Tx{tx: tx}
		if err := t.PutSite(config.DefaultPortal()); err != nil {
			return err
		}
		return t.PutGateway(config.DefaultGateway())
	}},
	{"per-user preferences", func(tx *bolt.Tx) error {
		_, err := tx.CreateBucketIfNotExists(bPrefs)
		return err
	}},
	{"second-factor enrolments", func(tx *bolt.Tx) error {
		_, err := tx.CreateBucketIfNotExists(bMFA)
		return err
	}},
}

// SchemaVersion is the version this build writes.
func SchemaVersion() int { return len(migrations) }

func (s *Store) migrate() error {
	if err := s.db.Update(func(tx *bolt.Tx) error {
		_, err := tx.CreateBucketIfNotExists(bMeta)
		return err
	}); err != nil {
		return fmt.Errorf("create meta bucket: %w", err)
	}
	for {
		var v int
		if err := s.db.View(func(tx *bolt.Tx) error { v = readVersion(tx); return nil }); err != nil {
			return err
		}
		if v > len(migrations) {
			return fmt.Errorf("store schema version %d is newer than this build understands (%d): upgrade Portico", v, len(migrations))
		}
		if v == len(migrations) {
			return nil
		}
		m := migrations[v]
		err := s.db.Update(func(tx *bolt.Tx) error {
			if err := m.up(tx); err != nil {
				return err
			}
			return tx.Bucket(bMeta).Put(kSchema, binary.BigEndian.AppendUint32(nil, uint32(v+1)))
		})
		if err != nil {
			return fmt.Errorf("migrate store to version %d (%s): %w", v+1, m.name, err)
		}
	}
}

func readVersion(tx *bolt.Tx) int {
	b := tx.Bucket(bMeta).Get(kSchema)
	if len(b) != 4 {
		return 0
	}
	return int(binary.BigEndian.Uint32(b))
}

// Schema returns the stored schema version.
func (s *Store) Schema() int {
	var v int
	s.db.View(func(tx *bolt.Tx) error { v = readVersion(tx); return nil })
	return v
}
