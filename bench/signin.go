package main

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"strings"
	"time"

	"portico/internal/sambadc"
	"portico/service/admin"
	settings "portico/service/config"
)

// signInClients is how many clients sign in at once in the sign-in phase.
const signInClients = 16

// Directory account of the sign-in phase: bob of the throwaway Samba
// domain (alice is also a local account in the portal phase's seed, and a
// local account wins its name).
const (
	benchDirUser     = `OFFICE\bob`
	benchDirPassword = "B0b-Passw0rd!"
)

// signInLoads measures whole sign-ins (the form, then its POST, each
// with a fresh cookie jar as a new browser) for a local account and for a
// directory account of a real Samba AD DC over LDAPS, on the same gateway
// in the same run. The directory needs root (its network namespace); when
// it cannot run, its row says why.
func (g *portalGateway) signInLoads(ctx context.Context, data string, secs time.Duration, rounds int) []*endpointLoad {
	local := &endpointLoad{name: "sign-in, local account (argon2id)"}
	dir := &endpointLoad{name: "sign-in, directory account (Samba AD, LDAPS bind + groups)"}
	loads := []*endpointLoad{local, dir}
	dirOK := true
	dc, err := g.startDirectory(ctx, data)
	if err != nil {
		dir.firstErr, dirOK = err, false
	} else {
		defer dc.Close()
	}
	clients := make([]*portalClient, signInClients)
	tr := &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, MaxConnsPerHost: 1, MaxIdleConnsPerHost: 1}
	for i := range clients {
		clients[i] = &portalClient{http: &http.Client{Timeout: 60 * time.Second, Transport: tr.Clone()}}
	}
	defer func() {
		for _, c := range clients {
			c.http.CloseIdleConnections()
		}
	}()
	do := func(user, pass string) func(context.Context, *portalClient, int) error {
		return func(ctx context.Context, c *portalClient, _ int) error { return g.signInOnce(ctx, c, user, pass) }
	}
	for round := range max(1, rounds) {
		for _, x := range []struct {
			l          *endpointLoad
			user, pass string
			run        bool
		}{{local, benchUser, benchPassword, true}, {dir, benchDirUser, benchDirPassword, dirOK}} {
			if !x.run {
				continue
			}
			cpu0 := cpuSeconds(g.cmd.Process.Pid)
			s := loadEndpoint(ctx, clients, secs, do(x.user, x.pass), round)
			cpu := cpuSeconds(g.cmd.Process.Pid) - cpu0
			x.l.rates, x.l.p50, x.l.p99 = append(x.l.rates, s.rate), append(x.l.p50, s.p50), append(x.l.p99, s.p99)
			if s.ok > 0 {
				x.l.cpuPer = append(x.l.cpuPer, cpu/float64(s.ok)*1e6)
			}
			x.l.errs += s.errs
			if x.l.firstErr == nil {
				x.l.firstErr = s.firstErr
			}
			fmt.Fprintf(os.Stderr, "round %d %-58s %6.1f sign-ins/s  p50 %v  p99 %v  errors %d\n",
				round+1, x.l.name, s.rate, s.p50.Round(time.Millisecond), s.p99.Round(time.Millisecond), s.errs)
		}
	}
	return loads
}

// startDirectory provisions the Samba domain and points the gateway at it.
func (g *portalGateway) startDirectory(ctx context.Context, data string) (*sambadc.Domain, error) {
	if os.Geteuid() != 0 {
		return nil, fmt.Errorf("not measured: the Samba DC needs root for its network namespace")
	}
	fmt.Fprintf(os.Stderr, "sign-in: provisioning a Samba AD domain\n")
	dc, err := sambadc.Provision()
	if err != nil {
		return nil, fmt.Errorf("not measured: samba: %w", err)
	}
	api, err := admin.Dial(data)
	if err != nil {
		dc.Close()
		return nil, fmt.Errorf("admin API: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	d := dc.Directory()
	d.PoolSize = signInClients
	if err := api.Do(ctx, "PUT", "/api/v1/settings/signin", settings.SignIn{Directories: []settings.Directory{d}}, nil); err != nil {
		dc.Close()
		return nil, fmt.Errorf("configure the directory: %w", err)
	}
	return dc, nil
}

// signInOnce is one browser's sign-in: a fresh jar, the form, the POST; it
// succeeds only on the portal home page.
func (g *portalGateway) signInOnce(ctx context.Context, c *portalClient, user, pass string) error {
	jar, _ := cookiejar.New(nil)
	c.http.Jar = jar
	form, err := c.get(ctx, g.base+"/")
	if err != nil {
		return err
	}
	m := signInCSRF.FindStringSubmatch(form)
	if m == nil {
		return fmt.Errorf("no sign-in form")
	}
	req, err := http.NewRequestWithContext(ctx, "POST", g.base+"/signin",
		strings.NewReader(url.Values{"csrf": {m[1]}, "username": {user}, "password": {pass}}.Encode()))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := c.http.Do(req)
	if err != nil {
		return err
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !pageCSRF.Match(body) {
		return fmt.Errorf("sign-in as %s: status %d", user, resp.StatusCode)
	}
	return nil
}

// renderSignInTable is the sign-in comparison's table.
func renderSignInTable(b *strings.Builder, loads []*endpointLoad) {
	if len(loads) == 0 {
		return
	}
	fmt.Fprintf(b, "\n### Sign-ins: local account against directory account\n\n%d clients each sign in again and again as a new browser (the form, then its POST, fresh cookies), in a closed loop on the same gateway in the same run. Every sign-in passes the sign-in guard (a few checks at once, a short queue; more are refused with 429 and counted as errors). The directory is a real Samba AD DC over LDAPS in a network namespace on this machine.\n\n", signInClients)
	fmt.Fprintf(b, "| sign-in, %d concurrent clients | sign-ins/s | p50 | p99 | errors | gateway CPU per sign-in |\n|---|---|---|---|---|---|\n", signInClients)
	for _, e := range loads {
		if len(e.rates) == 0 {
			fmt.Fprintf(b, "| %s | — | — | — | %v | — |\n", e.name, e.firstErr)
			continue
		}
		errText := "0"
		if e.errs > 0 {
			errText = fmt.Sprintf("%d (first: %v)", e.errs, e.firstErr)
		}
		fmt.Fprintf(b, "| %s | %s | %v | %v | %s | %.0f µs |\n", e.name, spreadOf(e.rates), e.medP50(), e.medP99(), errText, spreadOf(e.cpuPer).med)
	}
}
