package main

import (
	"fmt"
	"strconv"
	"strings"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/canvas"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/dialog"
	"fyne.io/fyne/v2/widget"

	"portico/service/config"
)

// Labels of the choices, as the admin reads them.
var (
	launchLabels = map[config.LaunchMethod]string{
		config.LaunchBrowser:            "Browser only",
		config.LaunchNative:             "Native client only",
		config.LaunchNativeWithFallback: "Native client, fall back to browser",
	}
	transferLabels = map[config.Transfer]string{
		config.TransferDisabled:       "Disabled",
		config.TransferClientToServer: "Client to server only",
		config.TransferServerToClient: "Server to client only",
		config.TransferBidirectional:  "Bidirectional",
	}
	detectLabels = map[config.DetectionMode]string{
		config.DetectAutomatic: "Automatically on sign-in",
		config.DetectOnPrompt:  "Manually, on user prompt",
	}
)

func labelsOf[K comparable](order []K, m map[K]string) []string {
	out := make([]string, len(order))
	for i, k := range order {
		out[i] = m[k]
	}
	return out
}

func keyOf[K comparable](m map[K]string, label string) K {
	for k, v := range m {
		if v == label {
			return k
		}
	}
	var zero K
	return zero
}

var launchOrder = []config.LaunchMethod{config.LaunchBrowser, config.LaunchNative, config.LaunchNativeWithFallback}
var detectOrder = []config.DetectionMode{config.DetectAutomatic, config.DetectOnPrompt}

// portalForm edits one User Portal settings set, in the order of the
// README's User Portal settings: Client, Network Load Balancer access, Web,
// Restrictions.
type portalForm struct {
	u       *UI
	enabled *widget.Check
	// Client
	launch       *widget.Select
	allowSelect  *widget.Check
	newTab       *widget.Check
	detection    *widget.RadioGroup
	detectTO     *widget.Entry
	detectBtn    *widget.Button
	ipDetect     *widget.Check
	ipURL        *widget.Entry
	ipTestResult *widget.Label
	ipBtn        *widget.Button
	ipTest       *widget.Button
	// NLB
	altHostOn *widget.Check
	altHost   *widget.Entry
	altPortOn *widget.Check
	altPort   *widget.Entry
	altPortDf *widget.Button
	// Web
	path   *widget.Entry
	cookie *widget.Entry
	// Restrictions
	pre2000   *widget.Check
	embed     *widget.Check
	embedWarn *widget.Label
	embedFrom *keyEntry
	files     *widget.Select
	clip      *widget.Select
	cors      *widget.Check
	origins   *keyEntry
	corsCache *widget.Entry

	errs    map[string]*canvas.Text
	notices *widget.Label
	// last is what was loaded, for Revert.
	last     config.PortalSettings
	readOnly bool
	content  fyne.CanvasObject
}

func newPortalForm(u *UI) *portalForm {
	f := &portalForm{u: u, errs: map[string]*canvas.Text{}}
	f.enabled = widget.NewCheck("Enable User Portal", nil)
	f.launch = widget.NewSelect(labelsOf(launchOrder, launchLabels), func(string) { f.updateDependent() })
	f.allowSelect = widget.NewCheck("Allow users to select a launch method", nil)
	f.newTab = widget.NewCheck("Allow opening applications in a new tab", nil)
	f.detection = widget.NewRadioGroup(labelsOf(detectOrder, detectLabels), nil)
	f.detectTO = widget.NewEntry()
	f.detectBtn = widget.NewButton("Configure client detection…", f.showDetectionDialog)
	f.ipDetect = widget.NewCheck("Use a client IP detection service", func(bool) { f.updateDependent() })
	f.ipURL = widget.NewEntry()
	f.ipURL.SetPlaceHolder("https://api.ipify.org?format=json")
	f.ipTestResult = widget.NewLabel("")
	f.ipTestResult.Wrapping = fyne.TextWrapWord
	f.ipBtn = widget.NewButton("Configure…", f.showIPDialog)
	f.ipTest = widget.NewButton("Test", f.testIPDetection)
	f.altHostOn = widget.NewCheck("Use alternate hostname", func(bool) { f.updateDependent() })
	f.altHost = widget.NewEntry()
	f.altPortOn = widget.NewCheck("Use alternate port", func(bool) { f.updateDependent() })
	f.altPort = widget.NewEntry()
	f.altPortDf = widget.NewButton("Default", func() { f.altPort.SetText(strconv.Itoa(config.DefaultAlternatePort)) })
	f.path = widget.NewEntry()
	f.cookie = widget.NewEntry()
	f.pre2000 = widget.NewCheck(`Use pre-Windows 2000 login format (DOMAIN\user)`, nil)
	f.embed = widget.NewCheck("Allow embedding of the User Portal into other web pages", func(bool) { f.updateDependent() })
	f.embedWarn = widget.NewLabel("Warning: other sites could frame the portal (clickjacking risk). Allow it only for pages you trust.")
	f.embedWarn.Wrapping = fyne.TextWrapWord
	f.embedWarn.Importance = widget.WarningImportance
	f.embedFrom = newKeyMultiLine()
	f.embedFrom.SetPlaceHolder("Only these sites may embed it (one origin per line; empty = any)")
	f.embedFrom.SetMinRowsVisible(2)
	f.files = widget.NewSelect(labelsOf(config.Transfers, transferLabels), nil)
	f.clip = widget.NewSelect(labelsOf(config.Transfers, transferLabels), nil)
	f.cors = widget.NewCheck("Allow cross-origin resource sharing (CORS)", func(bool) { f.updateDependent() })
	f.origins = newKeyMultiLine()
	f.origins.SetPlaceHolder("One origin per line, e.g. https://intranet.example.com")
	f.origins.SetMinRowsVisible(3)
	f.corsCache = widget.NewEntry()
	f.notices = widget.NewLabel("")
	f.notices.Wrapping = fyne.TextWrapWord
	f.notices.Importance = widget.WarningImportance
	f.notices.Hide()

	row := func(field string, obj fyne.CanvasObject) fyne.CanvasObject {
		e := errorText()
		f.errs[field] = e
		return container.NewVBox(obj, e)
	}
	labeled := func(label, field string, obj fyne.CanvasObject) fyne.CanvasObject {
		return row(field, container.NewBorder(nil, nil, widget.NewLabel(label), nil, obj))
	}
	multiTenant := widget.NewLabel("An alternate hostname or port is not suitable for multi-tenant setups: every tenant sharing this gateway gets the same value.")
	multiTenant.Wrapping = fyne.TextWrapWord
	multiTenant.Importance = widget.LowImportance
	f.content = container.NewVBox(
		row("enabled", f.enabled),
		widget.NewCard("Client", "How users open resources", container.NewVBox(
			labeled("Launch sessions using", "client.launchMethod", f.launch),
			row("client.allowUserSelect", f.allowSelect),
			row("client.openInNewTab", f.newTab),
			row("client.detectionTimeoutSeconds", f.detectBtn),
			row("client.ipDetection.url", container.NewHBox(f.ipDetect, f.ipBtn)),
		)),
		widget.NewCard("Network Load Balancer access", "Used by native clients; browser sessions keep the main HTTPS port", container.NewVBox(
			row("nlb.alternateHost", container.NewBorder(nil, nil, f.altHostOn, nil, f.altHost)),
			row("nlb.alternatePort", container.NewBorder(nil, nil, f.altPortOn, f.altPortDf, f.altPort)),
			multiTenant,
		)),
		widget.NewCard("Web", "", container.NewVBox(
			labeled("User Portal URL path", "web.path", f.path),
			labeled("Web cookie", "web.cookieName", f.cookie),
		)),
		widget.NewCard("Restrictions", "", container.NewVBox(
			row("restrictions.preWindows2000Login", f.pre2000),
			row("restrictions.allowEmbedding", f.embed),
			f.embedWarn,
			row("restrictions.embeddingOrigins", f.embedFrom),
			labeled("File transfer", "restrictions.fileTransfer", f.files),
			labeled("Clipboard redirection", "restrictions.clipboard", f.clip),
			row("restrictions.cors.enabled", f.cors),
			row("restrictions.cors.origins", f.origins),
			labeled("Browser cache time (seconds)", "restrictions.cors.cacheSeconds", f.corsCache),
		)),
		f.notices,
	)
	return f
}

// set shows p in the widgets.
func (f *portalForm) set(p config.PortalSettings) {
	f.last = p
	f.enabled.SetChecked(p.Enabled)
	f.launch.SetSelected(launchLabels[p.Client.LaunchMethod])
	f.allowSelect.SetChecked(p.Client.AllowUserSelect)
	f.newTab.SetChecked(p.Client.OpenInNewTab)
	f.detection.SetSelected(detectLabels[p.Client.Detection])
	f.detectTO.SetText(strconv.Itoa(p.Client.DetectionTimeoutSeconds))
	f.ipDetect.SetChecked(p.Client.IPDetection.Enabled)
	f.ipURL.SetText(p.Client.IPDetection.URL)
	f.altHostOn.SetChecked(p.NLB.AlternateHostEnabled)
	f.altHost.SetText(p.NLB.AlternateHost)
	f.altPortOn.SetChecked(p.NLB.AlternatePortEnabled)
	f.altPort.SetText(strconv.Itoa(p.NLB.AlternatePort))
	f.path.SetText(p.Web.Path)
	f.cookie.SetText(p.Web.CookieName)
	f.pre2000.SetChecked(p.Restrictions.PreWindows2000Login)
	f.embed.SetChecked(p.Restrictions.AllowEmbedding)
	f.embedFrom.SetText(strings.Join(p.Restrictions.EmbeddingOrigins, "\n"))
	f.files.SetSelected(transferLabels[p.Restrictions.FileTransfer])
	f.clip.SetSelected(transferLabels[p.Restrictions.Clipboard])
	f.cors.SetChecked(p.Restrictions.CORS.Enabled)
	f.origins.SetText(strings.Join(p.Restrictions.CORS.Origins, "\n"))
	f.corsCache.SetText(strconv.Itoa(p.Restrictions.CORS.CacheSeconds))
	f.clearErrors()
	f.updateDependent()
}

// get reads the widgets. Numbers that do not parse are reported as field
// errors here, before anything is sent.
func (f *portalForm) get() (config.PortalSettings, map[string]string) {
	p := f.last
	bad := map[string]string{}
	num := func(field string, e *widget.Entry) int {
		n, err := strconv.Atoi(strings.TrimSpace(e.Text))
		if err != nil {
			bad[field] = "enter a whole number"
		}
		return n
	}
	p.Enabled = f.enabled.Checked
	p.Client.LaunchMethod = keyOf(launchLabels, f.launch.Selected)
	p.Client.AllowUserSelect = f.allowSelect.Checked
	p.Client.OpenInNewTab = f.newTab.Checked
	p.Client.Detection = keyOf(detectLabels, f.detection.Selected)
	p.Client.DetectionTimeoutSeconds = num("client.detectionTimeoutSeconds", f.detectTO)
	p.Client.IPDetection = config.IPDetection{Enabled: f.ipDetect.Checked, URL: strings.TrimSpace(f.ipURL.Text)}
	p.NLB = config.NLBSettings{AlternateHostEnabled: f.altHostOn.Checked, AlternateHost: strings.TrimSpace(f.altHost.Text),
		AlternatePortEnabled: f.altPortOn.Checked, AlternatePort: num("nlb.alternatePort", f.altPort)}
	p.Web = config.WebSettings{Path: strings.TrimSpace(f.path.Text), CookieName: strings.TrimSpace(f.cookie.Text)}
	origins := lines(f.origins.Text)
	p.Restrictions.PreWindows2000Login = f.pre2000.Checked
	p.Restrictions.AllowEmbedding = f.embed.Checked
	p.Restrictions.EmbeddingOrigins = lines(f.embedFrom.Text)
	p.Restrictions.FileTransfer = keyOf(transferLabels, f.files.Selected)
	p.Restrictions.Clipboard = keyOf(transferLabels, f.clip.Selected)
	p.Restrictions.CORS = config.CORS{Enabled: f.cors.Checked, Origins: origins, CacheSeconds: num("restrictions.cors.cacheSeconds", f.corsCache)}
	return p, bad
}

// lines splits a multi-line entry into its non-empty trimmed lines.
func lines(text string) []string {
	out := []string{}
	for _, line := range strings.Split(text, "\n") {
		if s := strings.TrimSpace(line); s != "" {
			out = append(out, s)
		}
	}
	return out
}

// updateDependent enables the options that depend on others: "select a
// launch method" only with native-with-fallback, detection
// only in the native modes, the alternate fields only when turned on.
func (f *portalForm) updateDependent() {
	ro := f.readOnly
	method := keyOf(launchLabels, f.launch.Selected)
	enable := func(w fyne.Disableable, on bool) {
		if on && !ro {
			w.Enable()
		} else {
			w.Disable()
		}
	}
	if method != config.LaunchNativeWithFallback && f.allowSelect.Checked && !ro {
		f.allowSelect.SetChecked(false)
	}
	enable(f.allowSelect, method == config.LaunchNativeWithFallback)
	enable(f.detectBtn, method != config.LaunchBrowser)
	enable(f.ipBtn, f.ipDetect.Checked)
	enable(f.altHost, f.altHostOn.Checked)
	enable(f.altPort, f.altPortOn.Checked)
	enable(f.altPortDf, f.altPortOn.Checked)
	enable(f.origins, f.cors.Checked)
	enable(f.embedFrom, f.embed.Checked)
	enable(f.corsCache, f.cors.Checked)
	for _, w := range []fyne.Disableable{f.enabled, f.launch, f.newTab, f.ipDetect, f.altHostOn, f.altPortOn, f.path, f.cookie, f.pre2000, f.embed, f.files, f.clip, f.cors, f.detection, f.detectTO, f.ipURL} {
		enable(w, true)
	}
	if f.embed.Checked {
		f.embedWarn.Show()
	} else {
		f.embedWarn.Hide()
	}
}

func (f *portalForm) setReadOnly(ro bool) {
	f.readOnly = ro
	f.updateDependent()
}

func (f *portalForm) clearErrors() {
	for _, e := range f.errs {
		e.Text = ""
		e.Hide()
	}
	f.notices.Hide()
}

// showErrors puts each API field error next to its field; errors for
// fields without a place of their own are returned as text.
func (f *portalForm) showErrors(fields map[string]string, prefix string) string {
	var rest []string
	for field, msg := range fields {
		field = strings.TrimPrefix(field, prefix)
		if e, ok := f.errs[field]; ok {
			e.Text = msg
			e.Show()
			e.Refresh()
			continue
		}
		rest = append(rest, field+": "+msg)
	}
	return strings.Join(rest, "\n")
}

func (f *portalForm) showNotices(ns []config.Notice) {
	if len(ns) == 0 {
		f.notices.Hide()
		return
	}
	var lines []string
	for _, n := range ns {
		lines = append(lines, n.Message)
	}
	f.notices.SetText(strings.Join(lines, "\n"))
	f.notices.Show()
}

func (f *portalForm) showDetectionDialog() {
	d := dialog.NewCustom("Client detection", "Close", container.NewVBox(
		widget.NewLabel("Detect the native client:"), f.detection,
		widget.NewLabel("Client detection timeout (seconds):"), f.detectTO,
		f.errs["client.detectionTimeoutSeconds"],
	), f.u.win)
	d.Resize(fyne.NewSize(420, 300))
	d.Show()
}

func (f *portalForm) showIPDialog() {
	d := dialog.NewCustom("Client IP detection service", "Close", container.NewVBox(
		widget.NewLabel("URL of the service (JSON {\"ip\": …} or plain text):"), f.ipURL,
		f.errs["client.ipDetection.url"],
		f.ipTest, f.ipTestResult,
	), f.u.win)
	d.Resize(fyne.NewSize(520, 280))
	d.Show()
}

// testIPDetection asks the gateway to call the URL and shows what it got.
func (f *portalForm) testIPDetection() {
	f.ipTestResult.SetText("Testing…")
	f.ipTestResult.Importance = widget.MediumImportance
	var out struct {
		OK    bool   `json:"ok"`
		IP    string `json:"ip"`
		Error string `json:"error"`
	}
	f.u.call("POST", "/api/v1/ip-detection/test", map[string]string{"url": strings.TrimSpace(f.ipURL.Text)}, &out, func(err error) {
		switch {
		case err != nil:
			f.ipTestResult.SetText("Test failed: " + err.Error())
		case out.OK:
			f.ipTestResult.SetText("The service reported " + out.IP + " (the gateway's public address).")
		default:
			f.ipTestResult.SetText("Test failed: " + out.Error)
		}
		if err != nil || !out.OK {
			f.ipTestResult.Importance = widget.DangerImportance
			f.ipTestResult.Refresh()
		}
	}, f.ipTest)
}

// portalPage shows the site defaults and this gateway's set side by side.
type portalPage struct {
	u        *UI
	site     *portalForm
	gw       *portalForm
	inherit  *widget.Check
	gateway  config.Gateway
	loaded   bool
	message  *widget.Label
	content  fyne.CanvasObject
	subtabs  *container.AppTabs
	siteSave *widget.Button
	gwSave   *widget.Button
}

func newPortalPage(u *UI) *portalPage {
	p := &portalPage{u: u, site: newPortalForm(u), gw: newPortalForm(u)}
	p.inherit = widget.NewCheck("Inherit default settings", func(on bool) {
		if !p.loaded {
			return
		}
		if on {
			p.gw.set(p.site.last)
		} else {
			p.gw.set(p.gateway.Portal)
		}
		p.gw.setReadOnly(on)
	})
	p.message = widget.NewLabel("")
	p.message.Wrapping = fyne.TextWrapWord
	p.siteSave = widget.NewButton("Apply", p.applySite)
	p.siteSave.Importance = widget.HighImportance
	p.gwSave = widget.NewButton("Apply", p.applyGateway)
	p.gwSave.Importance = widget.HighImportance
	siteButtons := container.NewHBox(p.siteSave, widget.NewButton("Revert", func() { p.site.set(p.site.last) }))
	gwButtons := container.NewHBox(p.gwSave, widget.NewButton("Revert", func() { p.refresh() }))
	p.subtabs = container.NewAppTabs(
		container.NewTabItem("Site defaults", container.NewBorder(nil, siteButtons, nil, nil, container.NewVScroll(p.site.content))),
		container.NewTabItem("This gateway", container.NewBorder(p.inherit, gwButtons, nil, nil, container.NewVScroll(p.gw.content))),
	)
	p.subtabs.OnSelected = func(*container.TabItem) { u.win.Canvas().Unfocus() } // see UI's tabs
	p.content = container.NewBorder(nil, p.message, nil, nil, p.subtabs)
	return p
}

func (p *portalPage) refresh() {
	var site struct{ Settings config.PortalSettings }
	var gw struct{ Settings config.Gateway }
	p.u.call("GET", "/api/v1/settings/site", nil, &site, func(err error) {
		if err != nil {
			p.message.SetText("Could not load the site defaults: " + err.Error())
			return
		}
		p.site.set(site.Settings)
		p.u.call("GET", "/api/v1/settings/gateway", nil, &gw, func(err error) {
			if err != nil {
				p.message.SetText("Could not load the gateway settings: " + err.Error())
				return
			}
			p.gateway = gw.Settings
			p.loaded = false
			p.inherit.SetChecked(gw.Settings.InheritPortal)
			p.loaded = true
			if gw.Settings.InheritPortal {
				p.gw.set(site.Settings)
			} else {
				p.gw.set(gw.Settings.Portal)
			}
			p.gw.setReadOnly(gw.Settings.InheritPortal)
		})
	})
}

func (p *portalPage) applySite() {
	s, bad := p.site.get()
	p.site.clearErrors()
	if len(bad) > 0 {
		p.site.showErrors(bad, "")
		p.message.SetText("Some fields are not valid: nothing was changed.")
		return
	}
	var reply struct {
		Settings config.PortalSettings
		Notices  []config.Notice
	}
	p.u.call("PUT", "/api/v1/settings/site", s, &reply, func(err error) {
		if err != nil {
			fields, msg := fieldErrors(err)
			if rest := p.site.showErrors(fields, ""); rest != "" {
				msg += "\n" + rest
			}
			p.message.SetText(msg)
			return
		}
		p.site.set(reply.Settings)
		p.site.showNotices(reply.Notices)
		p.message.SetText("Site defaults saved and in effect.")
		if p.inherit.Checked {
			p.gw.set(reply.Settings)
			p.gw.setReadOnly(true)
		}
	}, p.siteSave)
}

func (p *portalPage) applyGateway() {
	g := p.gateway
	g.InheritPortal = p.inherit.Checked
	if !g.InheritPortal {
		s, bad := p.gw.get()
		p.gw.clearErrors()
		if len(bad) > 0 {
			p.gw.showErrors(bad, "")
			p.message.SetText("Some fields are not valid: nothing was changed.")
			return
		}
		g.Portal = s
	}
	var reply struct {
		Settings config.Gateway
		Notices  []config.Notice
	}
	p.u.call("PUT", "/api/v1/settings/gateway", g, &reply, func(err error) {
		if err != nil {
			fields, msg := fieldErrors(err)
			if rest := p.gw.showErrors(fields, "portal."); rest != "" {
				msg += "\n" + rest
			}
			p.message.SetText(msg)
			return
		}
		p.gateway = reply.Settings
		p.gw.showNotices(reply.Notices)
		p.message.SetText(fmt.Sprintf("Gateway settings saved (%s).", map[bool]string{true: "inheriting the site defaults", false: "own settings"}[reply.Settings.InheritPortal]))
	}, p.gwSave)
}
