// Package store is Portico's persistence: one bbolt file in the data
// directory, opened by the gateway process alone. It owns the bucket layout,
// the schema version and its migrations, typed reads and writes (each write
// one transaction, fsynced before it returns), and export/import of the
// whole configuration.
//
// It does not validate settings beyond what import needs (service/config
// and service/directory do), and nothing on a hot path should read it: the
// running gateway works from config.Snapshot.
package store

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"

	"portico/service/config"
)

// Bucket names.
var (
	bMeta      = []byte("meta")
	bSettings  = []byte("settings")
	bGateways  = []byte("gateways")
	bResources = []byte("resources")
	bUsers     = []byte("users")
	bGroups    = []byte("groups")
	bPolicies  = []byte("policies")
	bAudit     = []byte("audit")
	bCerts     = []byte("certificates")
	bSessions  = []byte("sessions")
	bPrefs     = []byte("preferences")
)

// Keys in fixed buckets.
var (
	kSchema   = []byte("schema")
	kSite     = []byte("site")
	kOrder    = []byte("order")
	kFirstRun = []byte("firstRun")
)

// FileName is the bbolt file's name inside the data directory.
const FileName = "portico.db"

// ErrNotFound is returned when a record does not exist.
var ErrNotFound = errors.New("not found")

// Store is the open bbolt file.
type Store struct {
	db      *bolt.DB
	pidPath string
	// applyMu keeps Apply's commit and publication in one order.
	applyMu sync.Mutex
	// audit coalesces concurrent AppendAudit calls into group commits.
	audit auditQueue
}

// Options tune Open.
type Options struct {
	// LockTimeout is how long to wait for another process to release the
	// file before giving up (default 2 s).
	LockTimeout time.Duration
}

// Open opens (creating if needed) the store in dataDir and runs pending
// migrations. If another process holds the file, the error names its PID.
func Open(dataDir string, opt Options) (*Store, error) {
	if opt.LockTimeout == 0 {
		opt.LockTimeout = 2 * time.Second
	}
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return nil, fmt.Errorf("create data dir %s: %w", dataDir, err)
	}
	path := filepath.Join(dataDir, FileName)
	pidPath := path + ".pid"
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: opt.LockTimeout})
	if errors.Is(err, bolterrors.ErrTimeout) {
		holder := "another process"
		if b, rerr := os.ReadFile(pidPath); rerr == nil {
			holder = "PID " + strings.TrimSpace(string(b))
		}
		return nil, fmt.Errorf("open store %s: already in use by %s (is the Portico service running? stop it, or use the admin API)", path, holder)
	}
	if err != nil {
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}
	if err := os.WriteFile(pidPath, []byte(strconv.Itoa(os.Getpid())+"\n"), 0o600); err != nil {
		db.Close()
		return nil, fmt.Errorf("write %s: %w", pidPath, err)
	}
	s := &Store{db: db, pidPath: pidPath}
	if err := s.migrate(); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// Close closes the file and removes the PID note.
func (s *Store) Close() error {
	os.Remove(s.pidPath)
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("close store: %w", err)
	}
	return nil
}

// Path returns the bbolt file's path.
func (s *Store) Path() string { return s.db.Path() }

// Tx is a read or write transaction with typed accessors. All changes made
// through one Tx commit together or not at all.
type Tx struct {
	tx *bolt.Tx
}

// View runs fn in a read-only transaction.
func (s *Store) View(fn func(*Tx) error) error {
	return s.db.View(func(tx *bolt.Tx) error { return fn(&Tx{tx: tx}) })
}

// Update runs fn in a read-write transaction; it is committed and fsynced
// before Update returns nil, so an acknowledged write survives a crash.
func (s *Store) Update(fn func(*Tx) error) error {
	return s.db.Update(func(tx *bolt.Tx) error { return fn(&Tx{tx: tx}) })
}

func (t *Tx) get(bucket, key []byte, v any) error {
	b := t.tx.Bucket(bucket)
	if b == nil {
		return fmt.Errorf("bucket %s missing", bucket)
	}
	data := b.Get(key)
	if data == nil {
		return ErrNotFound
	}
	if err := json.Unmarshal(data, v); err != nil {
		return fmt.Errorf("decode %s/%s: %w", bucket, key, err)
	}
	return nil
}

func (t *Tx) put(bucket, key []byte, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode %s/%s: %w", bucket, key, err)
	}
	if err := t.tx.Bucket(bucket).Put(key, data); err != nil {
		return fmt.Errorf("write %s/%s: %w", bucket, key, err)
	}
	return nil
}

func (t *Tx) del(bucket, key []byte) error {
	b := t.tx.Bucket(bucket)
	if b.Get(key) == nil {
		return ErrNotFound
	}
	return b.Delete(key)
}

// each decodes every value of a bucket in key order.
func each[T any](t *Tx, bucket []byte, fn func(T) error) error {
	return t.tx.Bucket(bucket).ForEach(func(k, v []byte) error {
		var x T
		if err := json.Unmarshal(v, &x); err != nil {
			return fmt.Errorf("decode %s/%s: %w", bucket, k, err)
		}
		return fn(x)
	})
}

func all[T any](t *Tx, bucket []byte) ([]T, error) {
	out := []T{}
	err := each(t, bucket, func(x T) error { out = append(out, x); return nil })
	return out, err
}

func clearBucket(tx *bolt.Tx, name []byte) error {
	if err := tx.DeleteBucket(name); err != nil && !errors.Is(err, bolterrors.ErrBucketNotFound) {
		return fmt.Errorf("clear %s: %w", name, err)
	}
	if _, err := tx.CreateBucket(name); err != nil {
		return fmt.Errorf("recreate %s: %w", name, err)
	}
	return nil
}

// Apply runs fn in a write transaction, reads the resulting configuration
// snapshot for gatewayID in that same transaction, and after the commit
// publishes it to live. This is the one path by which a change reaches the
// running gateway; concurrent Applies publish in commit order.
func (s *Store) Apply(live *config.Live, gatewayID string, fn func(*Tx) error) error {
	s.applyMu.Lock()
	defer s.applyMu.Unlock()
	var snap *config.Snapshot
	err := s.Update(func(t *Tx) error {
		if err := fn(t); err != nil {
			return err
		}
		var err error
		snap, err = t.Snapshot(gatewayID)
		return err
	})
	if err != nil {
		return err
	}
	live.Publish(snap)
	return nil
}
