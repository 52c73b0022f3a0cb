// Package sambadc provisions a throwaway Samba Active Directory domain
// controller for tests and benchmarks: domain OFFICE / office.test in a
// network namespace of its own (Samba listens on fixed ports) reached over
// a veth pair, with its own CA so LDAPS runs with that CA pinned. It needs
// root and the Debian packages samba, samba-ad-provision, samba-dsdb-modules
// and iproute2; it knows nothing of Portico beyond the directory settings.
package sambadc

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/go-ldap/ldap/v3"

	"portico/service/config"
)

// Passwords of the throwaway domain.
const (
	AdminPass = "Adm1n-Passw0rd!"
	AlicePass = "Al1ce-Passw0rd!"
)

// Domain is one provisioned Samba AD domain controller, in a network namespace of its own (Samba listens on
// fixed ports) reached over a veth pair: OFFICE / office.test with
//
//	alice  in Accounting, which is in Staff (nested)
//	bob    in no group (the group-change test adds him)
//	dave   disabled
//	erin   must change the password at the next sign-in
type Domain struct {
	dir, conf, ns, hostIf string
	// IP is the DC's address (in its namespace, reachable from the host).
	IP    string
	CAPEM string
	logs  *bytes.Buffer

	mu  sync.Mutex
	cmd *exec.Cmd
}

// Provision creates the namespace, the certificates, the domain and its
// users and groups, and starts the DC; Close undoes all of it.
func Provision() (*Domain, error) {
	dir, err := os.MkdirTemp("", "portico-samba-")
	if err != nil {
		return nil, err
	}
	n := os.Getpid() % 250
	d := &Domain{dir: dir, ns: fmt.Sprintf("portico-ad-%d", os.Getpid()), hostIf: fmt.Sprintf("pad%dh", os.Getpid()%100000),
		IP: fmt.Sprintf("10.234.%d.2", n), logs: &bytes.Buffer{}}
	peer := fmt.Sprintf("pad%dn", os.Getpid()%100000)
	steps := [][]string{
		{"ip", "netns", "add", d.ns},
		{"ip", "link", "add", d.hostIf, "type", "veth", "peer", "name", peer},
		{"ip", "link", "set", peer, "netns", d.ns},
		{"ip", "addr", "add", fmt.Sprintf("10.234.%d.1/30", n), "dev", d.hostIf},
		{"ip", "link", "set", d.hostIf, "up"},
		{"ip", "netns", "exec", d.ns, "ip", "addr", "add", d.IP + "/30", "dev", peer},
		{"ip", "netns", "exec", d.ns, "ip", "link", "set", peer, "up"},
		{"ip", "netns", "exec", d.ns, "ip", "link", "set", "lo", "up"},
	}
	for _, s := range steps {
		if out, err := exec.Command(s[0], s[1:]...).CombinedOutput(); err != nil {
			d.Close()
			return nil, fmt.Errorf("%s: %v: %s", strings.Join(s, " "), err, out)
		}
	}
	// Our own CA and server certificate (with the IP the tests dial as a
	// SAN): Samba's self-generated one names only the host name.
	ca, cert, key, err := TestCA(d.IP)
	if err != nil {
		d.Close()
		return nil, err
	}
	d.CAPEM = string(ca)
	tlsDir := filepath.Join(dir, "tls")
	os.MkdirAll(tlsDir, 0o700)
	for name, data := range map[string][]byte{"ca.pem": ca, "cert.pem": cert, "key.pem": key} {
		if err := os.WriteFile(filepath.Join(tlsDir, name), data, 0o600); err != nil {
			d.Close()
			return nil, err
		}
	}
	prov := exec.Command("samba-tool", "domain", "provision", "--targetdir="+filepath.Join(dir, "dc"), "--realm=OFFICE.TEST", "--domain=OFFICE",
		"--server-role=dc", "--dns-backend=NONE", "--adminpass="+AdminPass, "--use-rfc2307",
		"--option=interfaces="+d.IP, "--option=bind interfaces only=yes", "--option=tls enabled=yes",
		"--option=tls keyfile="+filepath.Join(tlsDir, "key.pem"), "--option=tls certfile="+filepath.Join(tlsDir, "cert.pem"),
		"--option=tls cafile="+filepath.Join(tlsDir, "ca.pem"))
	if out, err := prov.CombinedOutput(); err != nil {
		d.Close()
		return nil, fmt.Errorf("provision: %v: %s", err, out)
	}
	d.conf = filepath.Join(dir, "dc", "etc", "smb.conf")
	for _, c := range [][]string{
		{"user", "add", "alice", AlicePass, "--given-name=Alice", "--surname=Example"},
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
		if err := d.Tool(c...); err != nil {
			d.Close()
			return nil, err
		}
	}
	if err := d.Start(); err != nil {
		d.Close()
		return nil, err
	}
	return d, nil
}

// Tool runs samba-tool against the domain's database.
func (d *Domain) Tool(args ...string) error {
	out, err := exec.Command("samba-tool", append(args, "-s", d.conf)...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("samba-tool %s: %v: %s", strings.Join(args, " "), err, out)
	}
	return nil
}

// Start runs the DC in its namespace and waits until an LDAPS bind works.
func (d *Domain) Start() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	cmd := exec.Command("ip", "netns", "exec", d.ns, "samba", "-s", d.conf, "-i", "-M", "single", "--debug-stdout")
	cmd.Stdout, cmd.Stderr = d.logs, d.logs
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start samba: %w", err)
	}
	d.cmd = cmd
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM([]byte(d.CAPEM))
	deadline := time.Now().Add(120 * time.Second)
	var last error
	for time.Now().Before(deadline) {
		c, err := ldap.DialURL("ldaps://"+d.IP, ldap.DialWithTLSConfig(&tls.Config{RootCAs: pool, ServerName: d.IP}),
			ldap.DialWithDialer(&net.Dialer{Timeout: 2 * time.Second}))
		if err == nil {
			err = c.Bind(`OFFICE\Administrator`, AdminPass)
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

// Stop ends the DC (the directory-down test); Start brings it back.
func (d *Domain) Stop() {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.cmd != nil {
		d.cmd.Process.Kill()
		d.cmd.Wait()
		d.cmd = nil
	}
}

// Close stops the DC and removes its namespace, veth pair and files.
func (d *Domain) Close() {
	d.Stop()
	exec.Command("ip", "netns", "del", d.ns).Run() // takes the veth pair with it
	exec.Command("ip", "link", "del", d.hostIf).Run()
	os.RemoveAll(d.dir)
}

// Directory is the sign-in settings entry for this domain.
func (d *Domain) Directory() config.Directory {
	return config.Directory{ID: "office", Kind: config.KindActiveDirectory, Servers: []string{"ldaps://" + d.IP},
		CACertPEM: d.CAPEM, BindDN: `OFFICE\Administrator`, BindPassword: AdminPass, BaseDN: "DC=office,DC=test",
		NetBIOSName: "OFFICE", DNSName: "office.test", TimeoutSeconds: 5}
}

// TestCA makes a CA and a server certificate for ip, in PEM.
func TestCA(ip string) (caPEM, certPEM, keyPEM []byte, err error) {
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
