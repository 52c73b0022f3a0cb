package store

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"portico/service/config"
	"portico/service/directory"
)

func openT(t *testing.T, dir string) *Store {
	t.Helper()
	s, err := Open(dir, Options{LockTimeout: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestOpenSeedsDefaultsAndReopens(t *testing.T) {
	dir := t.TempDir()
	s := openT(t, dir)
	if s.Schema() != SchemaVersion() {
		t.Fatalf("schema %d, want %d", s.Schema(), SchemaVersion())
	}
	err := s.Update(func(tx *Tx) error {
		site, err := tx.Site()
		if err != nil {
			return err
		}
		if site.Web.CookieName != config.DefaultCookieName {
			return fmt.Errorf("site defaults not seeded: %+v", site)
		}
		site.Web.CookieName = "AWSALB"
		return tx.PutSite(site)
	})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	s2 := openT(t, dir)
	s2.View(func(tx *Tx) error {
		site, _ := tx.Site()
		if site.Web.CookieName != "AWSALB" {
			t.Errorf("edit lost across reopen: %q", site.Web.CookieName)
		}
		return nil
	})
}

func TestSecondOpenNamesHolder(t *testing.T) {
	dir := t.TempDir()
	openT(t, dir)
	_, err := Open(dir, Options{LockTimeout: 100 * time.Millisecond})
	if err == nil || !strings.Contains(err.Error(), "already in use by PID "+strconv.Itoa(os.Getpid())) {
		t.Fatalf("got %v", err)
	}
}

func TestMigrationFromVersion1(t *testing.T) {
	dir := t.TempDir()
	s := openT(t, dir)
	// Roll the file back to what schema 1 wrote.
	err := s.db.Update(func(tx *bolt.Tx) error {
		if err := tx.DeleteBucket(bPrefs); err != nil {
			return err
		}
		return tx.Bucket(bMeta).Put(kSchema, binary.BigEndian.AppendUint32(nil, 1))
	})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	s2 := openT(t, dir)
	if s2.Schema() != SchemaVersion() {
		t.Fatalf("not migrated: %d", s2.Schema())
	}
	if err := s2.Update(func(tx *Tx) error { return tx.PutPreference("alice", "launch", "native") }); err != nil {
		t.Fatalf("migrated bucket unusable: %v", err)
	}
}

func TestNewerSchemaRefused(t *testing.T) {
	dir := t.TempDir()
	s := openT(t, dir)
	s.db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(bMeta).Put(kSchema, binary.BigEndian.AppendUint32(nil, 999))
	})
	s.Close()
	_, err := Open(dir, Options{})
	if err == nil || !strings.Contains(err.Error(), "newer than this build") {
		t.Fatalf("got %v", err)
	}
}

func sampleDocument(t *testing.T, s *Store) Document {
	t.Helper()
	hash, _ := directory.HashPassword("password123")
	err := s.Update(func(tx *Tx) error {
		tx.PutGroup(directory.Group{Name: "staff"})
		tx.PutUser(directory.User{Username: "alice", Domain: "OFFICE", Groups: []string{"staff"}, PasswordHash: hash})
		r := config.Resource{ID: "ws1", Name: "Workstation", Protocol: config.ProtocolVNC, Host: "127.0.0.1", Groups: []string{"staff"}}
		r.Normalize()
		tx.PutResource(r)
		return tx.PutPolicies([]config.ClientPolicy{{ID: "contractors", Name: "Contractors", Enabled: true, Groups: []string{"staff"}, FileTransfer: config.TransferClientToServer}})
	})
	if err != nil {
		t.Fatal(err)
	}
	d, err := s.Export()
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func TestExportImportRoundTrip(t *testing.T) {
	src := openT(t, t.TempDir())
	d := sampleDocument(t, src)
	var buf bytes.Buffer
	json.NewEncoder(&buf).Encode(d)

	dst := openT(t, t.TempDir())
	d2, err := ReadDocument(&buf)
	if err != nil {
		t.Fatal(err)
	}
	if err := dst.Import(d2, "test"); err != nil {
		t.Fatal(err)
	}
	back, _ := dst.Export()
	back.Exported, d.Exported = time.Time{}, time.Time{}
	a, _ := json.Marshal(d)
	b, _ := json.Marshal(back)
	if !bytes.Equal(a, b) {
		t.Fatalf("round trip differs:\n%s\n%s", a, b)
	}
	ev, _ := dst.Audit(AuditFilter{Type: "config.import"})
	if len(ev) != 1 {
		t.Fatalf("import not audited: %+v", ev)
	}
}

func TestBadImportChangesNothing(t *testing.T) {
	s := openT(t, t.TempDir())
	good := sampleDocument(t, s)
	before, _ := s.Export()

	tests := map[string]func(d *Document){
		"wrong format":         func(d *Document) { d.Format = "something-else" },
		"unknown group ref":    func(d *Document) { d.Resources[0].Groups = []string{"nobody"} },
		"bad resource port":    func(d *Document) { d.Resources[0].Port = 0 },
		"duplicate user":       func(d *Document) { d.Users = append(d.Users, d.Users[0]) },
		"bad site cookie name": func(d *Document) { d.Site.Web.CookieName = "bad cookie" },
		"no gateway":           func(d *Document) { d.Gateways = nil },
	}
	for name, edit := range tests {
		t.Run(name, func(t *testing.T) {
			var d Document
			raw, _ := json.Marshal(good)
			json.Unmarshal(raw, &d)
			d.Users = append(d.Users, directory.User{Username: "newcomer"})
			edit(&d)
			err := s.Import(d, "test")
			if err == nil || !strings.Contains(err.Error(), "nothing was changed") {
				t.Fatalf("got %v", err)
			}
			after, _ := s.Export()
			after.Exported, before.Exported = time.Time{}, time.Time{}
			a, _ := json.Marshal(before)
			b, _ := json.Marshal(after)
			if !bytes.Equal(a, b) {
				t.Fatal("store changed by a refused import")
			}
		})
	}
	if _, err := ReadDocument(strings.NewReader(`{"format":"portico-configuration","surprise":1}`)); err == nil {
		t.Fatal("unknown field in import accepted")
	}
}

func TestAuditFilter(t *testing.T) {
	s := openT(t, t.TempDir())
	for i, typ := range []string{"signin.ok", "signin.fail", "session.start", "signin.ok"} {
		user := "alice"
		if i%2 == 1 {
			user = "bob"
		}
		if err := s.AppendAudit(Event{Type: typ, User: user}); err != nil {
			t.Fatal(err)
		}
	}
	all, _ := s.Audit(AuditFilter{})
	if len(all) != 4 || all[0].Seq != 4 {
		t.Fatalf("want newest first, got %+v", all)
	}
	signins, _ := s.Audit(AuditFilter{Type: "signin."})
	if len(signins) != 3 {
		t.Fatalf("prefix filter: %d", len(signins))
	}
	bob, _ := s.Audit(AuditFilter{User: "BOB"})
	if len(bob) != 2 {
		t.Fatalf("user filter: %d", len(bob))
	}
}

func TestSessionsDeleteWhere(t *testing.T) {
	s := openT(t, t.TempDir())
	for i := 0; i < 10; i++ {
		s.PutSession(fmt.Sprintf("s%02d", i), map[string]int{"n": i})
	}
	n, err := s.DeleteSessionsWhere(func(id string, raw []byte) bool { return id[2]%2 == 0 })
	if err != nil || n != 5 {
		t.Fatalf("deleted %d, %v", n, err)
	}
	var v map[string]int
	if err := s.Session("s01", &v); err != nil || v["n"] != 1 {
		t.Fatalf("kept session lost: %v", err)
	}
	if err := s.Session("s02", &v); !errors.Is(err, ErrNotFound) {
		t.Fatalf("deleted session still there: %v", err)
	}
}

// TestKillDuringWrites runs a child process that writes users as fast as it
// can and prints each name after Update returned; the parent kills it with
// SIGKILL and checks that every acknowledged write is in the reopened file.
func TestKillDuringWrites(t *testing.T) {
	if dir := os.Getenv("PORTICO_STORE_WRITER"); dir != "" {
		s, err := Open(dir, Options{})
		if err != nil {
			fmt.Println("error", err)
			os.Exit(1)
		}
		for i := 0; i < 100000; i++ {
			name := fmt.Sprintf("user%06d", i)
			if err := s.Update(func(tx *Tx) error {
				return tx.PutUser(directory.User{Username: name, DisplayName: strings.Repeat("x", 2000)})
			}); err != nil {
				fmt.Println("error", err)
				os.Exit(1)
			}
			fmt.Println("ack", name)
		}
		os.Exit(0)
	}
	dir, acked := killWriterAfter(t, "TestKillDuringWrites", "PORTICO_STORE_WRITER", 150)
	s := openT(t, dir)
	s.View(func(tx *Tx) error {
		for _, name := range acked {
			if _, err := tx.User(name); err != nil {
				t.Errorf("acknowledged write %s lost: %v", name, err)
			}
		}
		return nil
	})
}

// killWriterAfter runs test again in a child process with envVar naming a
// fresh data directory; the child writes and prints "ack <name>" after
// each write returns, and is killed (SIGKILL) after acks of them. It
// returns the directory and every name acknowledged before the kill.
func killWriterAfter(t *testing.T, test, envVar string, acks int) (string, []string) {
	t.Helper()
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^"+test+"$")
	cmd.Env = append(os.Environ(), envVar+"="+dir)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	hung := time.AfterFunc(2*time.Minute, func() { cmd.Process.Kill() }) // against a hang only
	defer hung.Stop()
	var acked []string
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "error") {
			cmd.Process.Kill()
			cmd.Wait()
			t.Fatal(line)
		}
		if name, ok := strings.CutPrefix(line, "ack "); ok {
			acked = append(acked, name)
			if len(acked) == acks {
				cmd.Process.Signal(syscall.SIGKILL)
			}
		}
	}
	cmd.Wait()
	if len(acked) < acks {
		t.Fatalf("writer acknowledged only %d writes", len(acked))
	}
	return dir, acked
}

// FuzzImport feeds arbitrary bytes to the import reader and validator; an
// import that is refused must leave the store unchanged.
func FuzzImport(f *testing.F) {
	f.Add([]byte(`{"format":"portico-configuration","schema":1,"gateways":[]}`))
	f.Add([]byte(`{}`))
	f.Add([]byte(`{"format":"portico-configuration","schema":2,"site":{"web":{"path":"/x","cookieName":"a"}}}`))
	s, err := Open(f.TempDir(), Options{})
	if err != nil {
		f.Fatal(err)
	}
	defer s.Close()
	before, _ := s.Export()
	f.Fuzz(func(t *testing.T, data []byte) {
		d, err := ReadDocument(bytes.NewReader(data))
		if err != nil {
			return
		}
		if err := s.Import(d, "fuzz"); err == nil {
			// A valid import may change things; restore for the next input.
			if err := s.Import(before, "fuzz"); err != nil {
				t.Fatalf("restore: %v", err)
			}
			return
		}
		after, _ := s.Export()
		if len(after.Users) != len(before.Users) || len(after.Gateways) != len(before.Gateways) {
			t.Fatal("refused import changed the store")
		}
	})
}
