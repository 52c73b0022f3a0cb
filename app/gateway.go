package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/theme"
	"fyne.io/fyne/v2/widget"

	"portico/service/admin"
	"portico/service/config"
	"portico/service/tlscert"
)

// statusPage shows the gateway's state, service control, mode and certificate.
type statusPage struct {
	u        *UI
	status   *widget.Label
	mode     *widget.Select
	upstream *widget.Entry
	https    *widget.Entry
	http     *widget.Entry
	admin    *widget.Entry
	hosts    *widget.Entry
	proxies  *widget.Entry
	dns      *widget.Entry
	zone     *widget.Entry
	gateway  config.Gateway
	cert     *widget.Label
	svcOut   *widget.Label
	svcBtns  []fyne.Disableable
	// svcByCmd are the service buttons by command (install, start, ...).
	svcByCmd map[string]*widget.Button
	apply    *widget.Button
	content  fyne.CanvasObject
}

func newStatusPage(u *UI) *statusPage {
	p := &statusPage{u: u}
	p.status = widget.NewLabel("Connecting…")
	p.status.Wrapping = fyne.TextWrapWord
	p.mode = widget.NewSelect([]string{"Normal", "Forwarding"}, func(s string) {
		if s == "Forwarding" {
			p.upstream.Enable()
		} else {
			p.upstream.Disable()
		}
	})
	p.upstream = widget.NewEntry()
	p.upstream.SetPlaceHolder("upstream-gateway.example.com:443")
	p.https, p.http, p.admin = widget.NewEntry(), widget.NewEntry(), widget.NewEntry()
	p.hosts, p.proxies = widget.NewEntry(), widget.NewEntry()
	p.hosts.SetPlaceHolder("gateway.example.com, 203.0.113.7 (names in the self-signed certificate)")
	p.proxies.SetPlaceHolder("10.0.0.0/8 (load balancers whose X-Forwarded-For is believed)")
	p.dns, p.zone = widget.NewEntry(), widget.NewEntry()
	p.dns.SetPlaceHolder(config.DefaultDNSAddr + " (empty: default; off: HTTP probe only)")
	p.zone.SetPlaceHolder("detect.gateway.example.com (empty: derived from the public host name)")
	p.cert = widget.NewLabel("")
	p.cert.Wrapping = fyne.TextWrapWord
	p.svcOut = widget.NewLabel("")
	p.svcOut.Wrapping = fyne.TextWrapWord
	svc := func(cmd string) *widget.Button {
		b := widget.NewButton(strings.ToUpper(cmd[:1])+cmd[1:], func() { p.service(cmd) })
		p.svcBtns = append(p.svcBtns, b)
		if p.svcByCmd == nil {
			p.svcByCmd = map[string]*widget.Button{}
		}
		p.svcByCmd[cmd] = b
		return b
	}
	p.apply = widget.NewButton("Apply", p.applyMode)
	p.apply.Importance = widget.HighImportance
	p.content = container.NewVScroll(container.NewVBox(
		widget.NewCard("Status", "", container.NewVBox(p.status, container.NewHBox(widget.NewButtonWithIcon("Refresh", theme.ViewRefreshIcon(), p.refresh)))),
		widget.NewCard("Service", "The operating system's service manager runs the gateway.", container.NewVBox(
			container.NewHBox(svc("install"), svc("start"), svc("stop"), svc("uninstall")), p.svcOut)),
		widget.NewCard("Mode and network", "", container.NewVBox(
			wrapped("Normal serves the User Portal; Forwarding passes client connections to an upstream gateway. Listen addresses apply live: the gateway binds the new address first and then leaves the old one (a bad address leaves it where it was, see the log); an address given on the command line wins and is not moved."),
			container.NewBorder(nil, nil, widget.NewLabel("Mode"), nil, p.mode),
			container.NewBorder(nil, nil, widget.NewLabel("Upstream"), nil, p.upstream),
			container.NewBorder(nil, nil, widget.NewLabel("HTTPS listen"), nil, p.https),
			container.NewBorder(nil, nil, widget.NewLabel("HTTP redirect listen"), nil, p.http),
			container.NewBorder(nil, nil, widget.NewLabel("Admin API listen"), nil, p.admin),
			container.NewBorder(nil, nil, widget.NewLabel("Public host names"), nil, p.hosts),
			container.NewBorder(nil, nil, widget.NewLabel("Trusted proxies"), nil, p.proxies),
			wrapped("Native-client detection: the gateway answers DNS probes for <nonce>.<zone> on this UDP/TCP address; changes apply live. Port 53 needs the bind capability the Linux package grants."),
			container.NewBorder(nil, nil, widget.NewLabel("Detection DNS listen"), nil, p.dns),
			container.NewBorder(nil, nil, widget.NewLabel("Detection zone"), nil, p.zone),
			p.apply)),
		widget.NewCard("TLS certificate", "", container.NewVBox(p.cert, container.NewHBox(
			widget.NewButton("Generate self-signed…", p.generate), widget.NewButton("Import PEM…", p.importPEM)))),
	))
	return p
}

func (p *statusPage) refresh() {
	var st admin.Status
	var gw struct{ Settings config.Gateway }
	var ci tlscert.Info
	p.u.call("GET", "/api/v1/status", nil, &st, func(err error) {
		if err != nil {
			p.status.SetText("The gateway does not answer: " + err.Error() + "\nStart the service (button below) or run portico-gateway run.")
			return
		}
		var ls []string
		for _, l := range st.Listeners {
			ls = append(ls, l.Name+" "+l.Addr)
		}
		portal := "available"
		if !st.PortalAvailable {
			portal = "not available: " + st.PortalReason
		}
		how := "as a service"
		if !st.Service {
			how = "in the foreground (portico-gateway run), not as a service"
		}
		p.status.SetText(fmt.Sprintf("Running %s, version %s, up %s\nMode: %s — User Portal %s\nListening: %s\nLive sessions: %d\nData: %s",
			how, st.Version, (time.Duration(st.UptimeSeconds) * time.Second).String(), st.Mode, portal, strings.Join(ls, ", "), st.Sessions, st.DataDir))
		p.showService(st.Service)
	})
	p.u.call("GET", "/api/v1/settings/gateway", nil, &gw, func(err error) {
		p.u.loaded("gateway", "the gateway settings", err)
		if err == nil {
			p.gateway = gw.Settings
			p.mode.SetSelected(map[config.Mode]string{config.ModeNormal: "Normal", config.ModeForwarding: "Forwarding"}[gw.Settings.Mode])
			p.upstream.SetText(gw.Settings.Upstream)
			p.https.SetText(gw.Settings.Listen.HTTPS)
			p.http.SetText(gw.Settings.Listen.HTTP)
			p.admin.SetText(gw.Settings.Listen.Admin)
			p.hosts.SetText(strings.Join(gw.Settings.PublicHosts, ", "))
			p.proxies.SetText(strings.Join(gw.Settings.TrustedProxies, ", "))
			p.dns.SetText(gw.Settings.Detect.DNSListen)
			p.zone.SetText(gw.Settings.Detect.Zone)
		}
	})
	p.u.call("GET", "/api/v1/certificate", nil, &ci, func(err error) {
		p.u.loaded("certificate", "the certificate", err)
		if err == nil {
			p.cert.SetText(certText(ci))
		}
	})
}

// showService sets the service buttons for how the gateway runs: a
// foreground gateway is not installed as a service, so Start, Stop and
// Uninstall would act on nothing; Install stays.
func (p *statusPage) showService(service bool) {
	for _, cmd := range []string{"start", "stop", "uninstall"} {
		if service {
			p.svcByCmd[cmd].Enable()
		} else {
			p.svcByCmd[cmd].Disable()
		}
	}
	if !service {
		p.svcOut.SetText("Not installed as a service: this gateway runs in the foreground (portico-gateway run, make run) and stops with its terminal. Install sets it up as a service of the operating system.")
	} else if strings.HasPrefix(p.svcOut.Text, "Not installed as a service") {
		p.svcOut.SetText("")
	}
}

func certText(ci tlscert.Info) string {
	kind := "issued by " + ci.Issuer
	if ci.SelfSigned {
		kind = "self-signed"
	}
	names := append(append([]string{}, ci.DNSNames...), ci.IPAddresses...)
	return fmt.Sprintf("%s (%s)\nNames: %s\nValid %s to %s\nSHA-256: %s", ci.Subject, kind, strings.Join(names, ", "),
		ci.NotBefore.Format("2006-01-02"), ci.NotAfter.Format("2006-01-02"), ci.SHA256)
}

func (p *statusPage) applyMode() {
	g := p.gateway
	g.Mode = config.ModeNormal
	if p.mode.Selected == "Forwarding" {
		g.Mode = config.ModeForwarding
	}
	g.Upstream = strings.TrimSpace(p.upstream.Text)
	g.Listen = config.Listen{HTTPS: strings.TrimSpace(p.https.Text), HTTP: strings.TrimSpace(p.http.Text), Admin: strings.TrimSpace(p.admin.Text)}
	g.PublicHosts = splitList(p.hosts.Text)
	g.TrustedProxies = splitList(p.proxies.Text)
	g.Detect = config.Detect{DNSListen: strings.TrimSpace(p.dns.Text), Zone: strings.TrimSpace(p.zone.Text)}
	p.u.call("PUT", "/api/v1/settings/gateway", g, nil, func(err error) {
		if err != nil {
			p.u.showError("Gateway settings not changed", err)
			return
		}
		p.refresh()
	}, p.apply)
}

func (p *statusPage) generate() {
	hosts := newKeyEntry()
	hosts.SetPlaceHolder("gateway.example.com, 192.168.1.10 (empty: this machine's names)")
	var d *formDialog
	d = p.u.newFormDialog("Generate a self-signed certificate", "Generate", widget.NewForm(widget.NewFormItem("Host names", hosts)), func() {
		var ci tlscert.Info
		p.u.call("POST", "/api/v1/certificate/self-signed", map[string]any{"hosts": splitList(hosts.Text)}, &ci, func(err error) {
			if err != nil {
				p.u.showError("Certificate not generated", err)
				return
			}
			d.Hide()
			p.cert.SetText(certText(ci))
		}, d.primary)
	})
	d.Resize(fyne.NewSize(560, 0))
	d.Show()
	p.u.lastDialog = d
}

func (p *statusPage) importPEM() {
	cert := newKeyMultiLine()
	cert.SetPlaceHolder("-----BEGIN CERTIFICATE-----\n(server certificate first, then its issuers)")
	cert.SetMinRowsVisible(6)
	key := newKeyMultiLine()
	key.SetPlaceHolder("-----BEGIN PRIVATE KEY-----")
	key.SetMinRowsVisible(4)
	var d *formDialog
	d = p.u.newFormDialog("Import a certificate", "Import", widget.NewForm(
		widget.NewFormItem("Certificate chain (PEM)", cert), widget.NewFormItem("Private key (PEM)", key),
	), func() {
		var ci tlscert.Info
		p.u.call("POST", "/api/v1/certificate/import", map[string]string{"certPEM": cert.Text, "keyPEM": key.Text}, &ci, func(err error) {
			if err != nil {
				p.u.showError("Certificate not imported", err)
				return
			}
			d.Hide()
			p.cert.SetText(certText(ci))
		}, d.primary)
	})
	d.Resize(fyne.NewSize(640, 520))
	d.Show()
	p.u.lastDialog = d
}

// service runs "portico-gateway <cmd>"; installing and starting services
// needs administrator rights, which the message says how to get.
func (p *statusPage) service(cmd string) {
	bin := p.u.gwBin
	if bin == "" {
		if exe, err := os.Executable(); err == nil {
			cand := filepath.Join(filepath.Dir(exe), "portico-gateway")
			if _, err := os.Stat(cand); err == nil {
				bin = cand
			}
		}
	}
	if bin == "" {
		if path, err := exec.LookPath("portico-gateway"); err == nil {
			bin = path
		}
	}
	if bin == "" {
		p.svcOut.SetText("portico-gateway was not found next to this program or on the PATH.")
		return
	}
	p.svcOut.SetText("Running " + cmd + "…")
	for _, b := range p.svcBtns {
		b.Disable()
	}
	go func() {
		out, err := exec.Command(bin, cmd, "--data-dir", p.u.dataDir).CombinedOutput()
		fyne.Do(func() {
			text := strings.TrimSpace(string(out))
			if err != nil && (strings.Contains(text, "ermission") || strings.Contains(text, "root")) {
				text += "\nRun the admin program as root / Administrator, or run: sudo " + bin + " " + cmd
			}
			p.svcOut.SetText(text)
			for _, b := range p.svcBtns {
				b.Enable()
			}
			p.refresh()
		})
	}()
}

// wrapped is a label that wraps instead of widening the window.
func wrapped(text string) *widget.Label {
	l := widget.NewLabel(text)
	l.Wrapping = fyne.TextWrapWord
	return l
}
