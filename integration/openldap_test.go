package integration

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"portico/service/config"
	"portico/service/store"
)

// startSlapd runs OpenLDAP on a free loopback port with StartTLS (our own
// CA) and a small tree: carol in group devs, dan in no group.
func startSlapd(t *testing.T) (url, caPEM string) {
	t.Helper()
	need(t, "slapd", "slapd")
	need(t, "slapadd", "slapd")
	dir := t.TempDir()
	ca, cert, key, err := testCA("127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	for name, data := range map[string][]byte{"ca.pem": ca, "cert.pem": cert, "key.pem": key} {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	os.MkdirAll(filepath.Join(dir, "db"), 0o700)
	conf := fmt.Sprintf(`include /etc/ldap/schema/core.schema
include /etc/ldap/schema/cosine.schema
include /etc/ldap/schema/inetorgperson.schema
include /etc/ldap/schema/nis.schema
modulepath /usr/lib/ldap
moduleload back_mdb
pidfile %[1]s/slapd.pid
TLSCACertificateFile %[1]s/ca.pem
TLSCertificateFile %[1]s/cert.pem
TLSCertificateKeyFile %[1]s/key.pem
database mdb
maxsize 10485760
suffix "dc=lab,dc=test"
rootdn "cn=admin,dc=lab,dc=test"
rootpw Adm1n-Lab-Pass
directory %[1]s/db
access to * by * read
`, dir)
	ldif := `dn: dc=lab,dc=test
objectClass: dcObject
objectClass: organization
o: Lab
dc: lab

dn: ou=people,dc=lab,dc=test
objectClass: organizationalUnit
ou: people

dn: ou=groups,dc=lab,dc=test
objectClass: organizationalUnit
ou: groups

dn: uid=carol,ou=people,dc=lab,dc=test
objectClass: inetOrgPerson
uid: carol
cn: Carol Lab
sn: Lab
userPassword: C4rol-Passw0rd!

dn: uid=dan,ou=people,dc=lab,dc=test
objectClass: inetOrgPerson
uid: dan
cn: Dan Lab
sn: Lab
userPassword: D4n-Passw0rd!

dn: cn=devs,ou=groups,dc=lab,dc=test
objectClass: groupOfNames
cn: devs
member: uid=carol,ou=people,dc=lab,dc=test
`
	confPath, ldifPath := filepath.Join(dir, "slapd.conf"), filepath.Join(dir, "data.ldif")
	os.WriteFile(confPath, []byte(conf), 0o600)
	os.WriteFile(ldifPath, []byte(ldif), 0o600)
	if out, err := exec.Command("slapadd", "-f", confPath, "-l", ldifPath).CombinedOutput(); err != nil {
		t.Fatalf("slapadd: %v: %s", err, out)
	}
	port := freePort(t)
	logs := &bytes.Buffer{}
	cmd := exec.Command("slapd", "-f", confPath, "-h", "ldap://127.0.0.1:"+strconv.Itoa(port)+"/", "-d", "0")
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		if t.Failed() {
			t.Logf("slapd log:\n%s", logs.String())
		}
	})
	deadline := time.Now().Add(30 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(port), 200*time.Millisecond)
		if err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("slapd did not listen: %s", logs.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	return "ldap://127.0.0.1:" + strconv.Itoa(port), string(ca)
}

// TestDirectoryOpenLDAP: an OpenLDAP directory as kind ldap over
// StartTLS with its CA pinned: LAB\carol signs in through the real portal
// and sees the resource of LAB\devs (groupOfNames); dan, in no group, does
// not; a wrong password gets the wrong-password message.
func TestDirectoryOpenLDAP(t *testing.T) {
	url, ca := startSlapd(t)
	p := startPortico(t)
	p.do(t, "PUT", "/api/v1/settings/signin", config.SignIn{Directories: []config.Directory{{
		ID: "lab", Kind: config.KindLDAP, Servers: []string{url}, StartTLS: true, CACertPEM: ca,
		BindDN: "cn=admin,dc=lab,dc=test", BindPassword: "Adm1n-Lab-Pass", BaseDN: "ou=people,dc=lab,dc=test",
		GroupBase: "ou=groups,dc=lab,dc=test", NetBIOSName: "LAB", DNSName: "lab.test"}}}, nil)
	p.do(t, "POST", "/api/v1/resources", map[string]any{"id": "build", "name": "Build server", "protocol": "ssh", "host": "127.0.0.1", "port": 2299,
		"groups": []string{`LAB\devs`}}, nil)
	status, body, _ := signInAttempt(t, p.URL, `LAB\carol`, "C4rol-Passw0rd!")
	if !signedIn(status, body) || !strings.Contains(body, "Build server") {
		var ev []store.Event
		p.do(t, "GET", "/api/v1/audit?type=signin.fail", nil, &ev)
		t.Fatalf("LAB\\carol: status %d:%s (audit: %+v)", status, pageError(body), ev)
	}
	status, body, _ = signInAttempt(t, p.URL, "dan@lab.test", "D4n-Passw0rd!")
	if !signedIn(status, body) || strings.Contains(body, "Build server") {
		t.Fatalf("dan@lab.test: status %d, or sees the devs resource:%s", status, pageError(body))
	}
	status, body, _ = signInAttempt(t, p.URL, `LAB\carol`, "wrong-password")
	if signedIn(status, body) || !strings.Contains(body, "Wrong user name or password") {
		t.Fatalf("wrong password: status %d:%s", status, pageError(body))
	}
}
