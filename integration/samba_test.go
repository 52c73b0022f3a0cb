package integration

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-ldap/ldap/v3"

	"portico/service/config"
)

// Passwords of the throwaway test domain.
const (
	sambaAdminPass = "Adm1n-Passw0rd!"
	alicePass      = "Al1ce-Passw0rd!"
)

// sambaDomain is one provisioned Samba AD domain controller for the
// TestDirectory tests, in a network namespace of its own (Samba listens on
// fixed ports) reached over a veth pair: OFFICE / office.test with
//
//	alice  in Accounting, which is in Staff (nested)
//	bob    in no group (the group-change test adds him)
//	dave   disabled
//	erin   must change the password at the next sign-in
type sambaDomain struct {
	dir, conf, ns, hostIf, ip string
	caPEM                     string
	logs                      *bytes.Buffer

	mu  sync.Mutex
	cmd *exec.Cmd
}

// sharedSamba is provisioned once per test binary (provisioning takes
// seconds) and torn down by TestMain.
var sharedSamba struct {
	once sync.Once
	d    *sambaDomain
	err  error
}

// TestMain tears the shared Samba domain down after the tests.
func TestMain(m *testing.M) {
	code := m.Run()
	if d := sharedSamba.d; d != nil {
		d.close()
	}
	os.Exit(code)
}

// samba returns the shared domain controller, provisioning and starting
// it on first use.
func samba(t *testing.T) *sambaDomain {
	t.Helper()
	for _, p := range [][2]string{{"samba", "samba"}, {"samba-tool", "samba"}, {"ip", "iproute2"}} {
		need(t, p[0], p[1])
	}
	if os.Geteuid() != 0 {
		if os.Getenv("CI") != "" {
			t.Fatal("the Samba tests need root (network namespaces); CI runs as root")
		}
		t.Skip("the Samba tests need root to create a network namespace")
	}
	sharedSamba.once.Do(func() { sharedSamba.d, sharedSamba.err = provisionSamba() })
	if sharedSamba.err != nil {
		t.Fatalf("samba: %v", sharedSamba.err)
	}
	return sharedSamba.d
}

func provisionSamba() (*sambaDomain, error) {
	dir, err := os.MkdirTemp("", "portico-samba-")
	if err != nil {
		return nil, err
	}
	n := os.Getpid() % 250
	d := &sambaDomain{dir: dir, ns: fmt.Sprintf("portico-ad-%d", os.Getpid()), hostIf: fmt.Sprintf("pad%dh", os.Getpid()%100000),
		ip: fmt.Sprintf("10.234.%d.2", n), logs: &bytes.Buffer{}}
	peer := fmt.Sprintf("pad%dn", os.Getpid()%100000)
	steps := [][]string{
		{"ip", "netns", "add", d.ns},
		{"ip", "link", "add", d.hostIf, "type", "veth", "peer", "name", peer},
		{"ip", "link", "set", peer, "netns", d.ns},
		{"ip", "addr", "add", fmt.Sprintf("10.234.%d.1/30", n), "dev", d.hostIf},
		{"ip", "link", "set", d.hostIf, "up"},
		{"ip", "netns", "exec", d.ns, "ip", "addr", "add", d.ip + "/30", "dev", peer},
		{"ip", "netns", "exec", d.ns, "ip", "link", "set", peer, "up"},
		{"ip", "netns", "exec", d.ns, "ip", "link", "set", "lo", "up"},
	}
	for _, s := range steps {
		if out, err := exec.Command(s[0], s[1:]...).CombinedOutput(); err != nil {
			d.close()
			return nil, fmt.Errorf("%s: %v: %s", strings.Join(s, " "), err, out)
		}
	}
	// Our own CA and server certificate (with the IP the tests dial as a
	// SAN): Samba's self-generated one names only the host name.
	ca, cert, key, err := testCA(d.ip)
	if err != nil {
		d.close()
		return nil, err
	}
	d.caPEM = string(ca)
	tlsDir := filepath.Join(dir, "tls")
	os.MkdirAll(tlsDir, 0o700)
	for name, data := range map[string][]byte{"ca.pem": ca, "cert.pem": cert, "key.pem": key} {
		if err := os.WriteFile(filepath.Join(tlsDir, name), data, 0o600); err != nil {
			d.close()
			return nil, err
		}
	}
	prov := exec.Command("samba-tool", "domain", "provision", "--targetdir="+filepath.Join(dir, "dc"), "--realm=OFFICE.TEST", "--domain=OFFICE",
		"--server-role=dc", "--dns-backend=NONE", "--adminpass="+sambaAdminPass, "--use-rfc2307",
		"--option=interfaces="+d.ip, "--option=bind interfaces only=yes", "--option=tls enabled=yes",
		"--option=tls keyfile="+filepath.Join(tlsDir, "key.pem"), "--option=tls certfile="+filepath.Join(tlsDir, "cert.pem"),
		"--option=tls cafile="+filepath.Join(tlsDir, "ca.pem"))
	if out, err := prov.CombinedOutput(); err != nil {
		d.close()
		return nil, fmt.Errorf("provision: %v: %s", err, out)
	}
	d.conf = filepath.Join(dir, "dc", "etc", "smb.conf")
	for _, c := range [][]string{
		{"user", "add", "alice", alicePass, "--given-name=Alice", "--surname=Example"},
		{"user", "add", "bob", "B0b-Passw0rd!"},
		{"user", "add", "dave", "D4ve-Passw0rd!"},
		{"user", "disable", "dave"},
		{"user", "add", "erin", "Er1n-Passw0rd!", "--must-change-at-next-login"},
		{"group", "add", "Accounting"},
		{"group", "add", "Staff"},
		{"group", "add", "Other"},
		{"group", "addmembers", "Staff", "Accounting"},
		{"group", "addmembers", "Accounting", "alice"},
	} {
		if err := d.tool(c...); err != nil {
			d.close()
			return nil, err
		}
	}
	if err := d.start(); err != nil {
		d.close()
		return nil, err
	}
	return d, nil
}

// tool runs samba-tool against the domain's database.
func (d *sambaDomain) tool(args ...string) error {
	out, err := exec.Command("samba-tool", append(args, "-s", d.conf)...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("samba-tool %s: %v: %s", strings.Join(args, " "), err, out)
	}
	return nil
}

// start runs the DC in its namespace and waits until an LDAPS bind works.
func (d *sambaDomain) start() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	cmd := exec.Command("ip", "netns", "exec", d.ns, "samba", "-s", d.conf, "-i", "-M", "single", "--debug-stdout")
	cmd.Stdout, cmd.Stderr = d.logs, d.logs
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start samba: %w", err)
	}
	d.cmd = cmd
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM([]byte(d.caPEM))
	deadline := time.Now().Add(120 * time.Second)
	var last error
	for time.Now().Before(deadline) {
		c, err := ldap.DialURL("ldaps://"+d.ip, ldap.DialWithTLSConfig(&tls.Config{RootCAs: pool, ServerName: d.ip}),
			ldap.DialWithDialer(&net.Dialer{Timeout: 2 * time.Second}))
		if err == nil {
			err = c.Bind(`OFFICE\Administrator`, sambaAdminPass)
			c.Close()
			if err == nil {
				return nil
			}
		}
		last = err
		time.Sleep(300 * time.Millisecond)
	}
	return fmt.Errorf("samba did not answer LDAPS binds within 120 s: %v\n%s", last, d.logs.String())
}

// stop ends the DC (the directory-down test); start brings it back.
func (d *sambaDomain) stop() {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.cmd != nil {
		d.cmd.Process.Kill()
		d.cmd.Wait()
		d.cmd = nil
	}
}

func (d *sambaDomain) close() {
	d.stop()
	exec.Command("ip", "netns", "del", d.ns).Run() // takes the veth pair with it
	exec.Command("ip", "link", "del", d.hostIf).Run()
	os.RemoveAll(d.dir)
}

// directory is the sign-in settings entry for this domain.
func (d *sambaDomain) directory() config.Directory {
	return config.Directory{ID: "office", Kind: config.KindActiveDirectory, Servers: []string{"ldaps://" + d.ip},
		CACertPEM: d.caPEM, BindDN: `OFFICE\Administrator`, BindPassword: sambaAdminPass, BaseDN: "DC=office,DC=test",
		NetBIOSName: "OFFICE", DNSName: "office.test", TimeoutSeconds: 5}
}

// testCA makes a CA and a server certificate for ip, in PEM.
func testCA(ip string) (caPEM, certPEM, keyPEM []byte, err error) {
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, nil, err
	}
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "OFFICE test CA"}, NotBefore: time.Now().Add(-time.Hour),
		NotAfter: time.Now().Add(24 * time.Hour), IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return nil, nil, nil, err
	}
	caCert, _ := x509.ParseCertificate(caDER)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, nil, err
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "dc1.office.test"}, NotBefore: time.Now().Add(-time.Hour),
		NotAfter: time.Now().Add(24 * time.Hour), IPAddresses: []net.IP{net.ParseIP(ip)}, DNSNames: []string{"dc1.office.test"},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &key.PublicKey, caKey)
	if err != nil {
		return nil, nil, nil, err
	}
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, nil, nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), nil
}

// signInAttempt posts the portal's sign-in form as a browser would and
// returns the final status and page, and the client (holding the session
// cookie when it worked).
func signInAttempt(t *testing.T, base, user, password string) (int, string, *http.Client) {
	t.Helper()
	c := portalClient()
	resp, err := c.Get(base + "/userportal/")
	if err != nil {
		t.Fatalf("sign-in page: %v", err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	m := regexp.MustCompile(`name="csrf" value="([^"]+)"`).FindSubmatch(page)
	if m == nil {
		t.Fatalf("no sign-in form:\n%s", page)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "POST", base+"/userportal/signin",
		strings.NewReader(url.Values{"csrf": {string(m[1])}, "username": {user}, "password": {password}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err = c.Do(req)
	if err != nil {
		t.Fatalf("sign in as %s: %v", user, err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp.StatusCode, string(body), c
}

// signedIn reports whether a sign-in page result is the signed-in home page.
func signedIn(status int, body string) bool {
	return status == http.StatusOK && strings.Contains(body, `data-csrf="`) && !strings.Contains(body, `name="password"`)
}
