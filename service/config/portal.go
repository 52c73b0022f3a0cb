package config

import (
	"fmt"
	"net"
	"net/url"
	"regexp"
	"strings"
)

// LaunchMethod is how the portal opens a published resource.
type LaunchMethod string

// The three launch methods an admin chooses from (Client, launch method).
const (
	// LaunchBrowser uses only the HTML5 client in the page.
	LaunchBrowser LaunchMethod = "browser"
	// LaunchNative uses only the native client (portico-client).
	LaunchNative LaunchMethod = "native"
	// LaunchNativeWithFallback tries the native client first and offers the
	// browser when it cannot be used.
	LaunchNativeWithFallback LaunchMethod = "native-with-fallback"
)

// DetectionMode is when the portal tries to detect the native client.
type DetectionMode string

// Detection modes.
const (
	// DetectAutomatic detects right after sign-in.
	DetectAutomatic DetectionMode = "automatic"
	// DetectOnPrompt asks the user first.
	DetectOnPrompt DetectionMode = "on-prompt"
)

// Defaults and limits of the User Portal settings. They are constants so the
// GUI's "Default" buttons and the validation agree.
const (
	DefaultPortalPath         = "/userportal"
	DefaultCookieName         = "_SessionId"
	DefaultDetectionTimeout   = 20
	MinDetectionTimeout       = 1
	MaxDetectionTimeout       = 300
	DefaultAlternatePort      = 4443
	DefaultCORSCacheSeconds   = 600
	MaxCORSCacheSeconds       = 86400
	maxOrigins                = 100
	maxHostnameLength         = 253
	maxPathLength             = 128
	maxCookieNameLength       = 64
	maxIPDetectionURLLength   = 2048
	multiTenantWarningMessage = "an alternate hostname or port is not suitable for multi-tenant setups: every tenant sharing this gateway gets the same value"
)

// PortalSettings is one full User Portal settings set. The site defaults hold
// one; each gateway holds its own, used when it does not inherit.
type PortalSettings struct {
	// Enabled turns the User Portal on. When off, the portal and its APIs
	// answer with a clear "portal disabled" page; running sessions may finish.
	Enabled bool `json:"enabled"`
	// Client holds the launch and detection settings.
	Client ClientSettings `json:"client"`
	// NLB holds the Network Load Balancer access settings used by native clients.
	NLB NLBSettings `json:"nlb"`
	// Web holds the portal URL path and the session cookie name.
	Web WebSettings `json:"web"`
	// Restrictions holds what users may do in the portal and in sessions.
	Restrictions Restrictions `json:"restrictions"`
}

// ClientSettings is the "Client" section of the User Portal settings.
type ClientSettings struct {
	// LaunchMethod is browser, native or native-with-fallback.
	LaunchMethod LaunchMethod `json:"launchMethod"`
	// AllowUserSelect lets users pick browser or native per launch; only
	// valid with native-with-fallback.
	AllowUserSelect bool `json:"allowUserSelect"`
	// OpenInNewTab lets sessions open in a new browser tab.
	OpenInNewTab bool `json:"openInNewTab"`
	// Detection is when native-client detection runs (native modes only).
	Detection DetectionMode `json:"detection"`
	// DetectionTimeoutSeconds is how long the portal waits for a probe.
	DetectionTimeoutSeconds int `json:"detectionTimeoutSeconds"`
	// IPDetection is the optional client IP detection service.
	IPDetection IPDetection `json:"ipDetection"`
}

// IPDetection is the client IP detection service: a URL the web client calls
// to learn its public IP and report it to the gateway.
type IPDetection struct {
	// Enabled turns the service on.
	Enabled bool `json:"enabled"`
	// URL is an absolute http(s) URL answering JSON {"ip": "..."} or plain text.
	URL string `json:"url"`
}

// NLBSettings is the "Network Load Balancer access" section.
type NLBSettings struct {
	// AlternateHostEnabled makes native clients use AlternateHost.
	AlternateHostEnabled bool `json:"alternateHostEnabled"`
	// AlternateHost is the host name native clients connect to.
	AlternateHost string `json:"alternateHost"`
	// AlternatePortEnabled makes native clients use AlternatePort.
	AlternatePortEnabled bool `json:"alternatePortEnabled"`
	// AlternatePort is the TCP port native clients connect to (default
	// DefaultAlternatePort). Web-client sessions keep the main HTTPS port.
	AlternatePort int `json:"alternatePort"`
}

// WebSettings is the "Web" section.
type WebSettings struct {
	// Path is the User Portal URL path, e.g. "/userportal"; "/" redirects there.
	Path string `json:"path"`
	// CookieName is the portal session cookie's name (e.g. "AWSALB" for a
	// load balancer's sticky sessions).
	CookieName string `json:"cookieName"`
}

// Restrictions is the "Restrictions" section.
type Restrictions struct {
	// PreWindows2000Login makes sign-in use DOMAIN\user instead of user@domain.
	PreWindows2000Login bool `json:"preWindows2000Login"`
	// AllowEmbedding lets other web pages frame the portal.
	AllowEmbedding bool `json:"allowEmbedding"`
	// EmbeddingOrigins optionally limits which origins may frame the portal
	// when AllowEmbedding is on; empty means any.
	EmbeddingOrigins []string `json:"embeddingOrigins"`
	// FileTransfer is the portal level of the file-transfer precedence.
	FileTransfer Transfer `json:"fileTransfer"`
	// Clipboard is the portal level of the clipboard precedence.
	Clipboard Transfer `json:"clipboard"`
	// CORS is cross-origin resource sharing for the portal's APIs.
	CORS CORS `json:"cors"`
}

// CORS is the cross-origin resource sharing setting.
type CORS struct {
	// Enabled turns CORS on; it turns itself off when Origins is empty.
	Enabled bool `json:"enabled"`
	// Origins lists the allowed origins (scheme://host[:port]).
	Origins []string `json:"origins"`
	// CacheSeconds is the preflight cache time (Access-Control-Max-Age).
	CacheSeconds int `json:"cacheSeconds"`
}

// DefaultPortal returns the settings a new site starts with: portal on,
// browser launch, clipboard and file transfer in both directions.
func DefaultPortal() PortalSettings {
	return PortalSettings{
		Enabled: true,
		Client: ClientSettings{
			LaunchMethod:            LaunchBrowser,
			OpenInNewTab:            true,
			Detection:               DetectAutomatic,
			DetectionTimeoutSeconds: DefaultDetectionTimeout,
		},
		NLB: NLBSettings{AlternatePort: DefaultAlternatePort},
		Web: WebSettings{Path: DefaultPortalPath, CookieName: DefaultCookieName},
		Restrictions: Restrictions{
			EmbeddingOrigins: []string{},
			FileTransfer:     TransferBidirectional,
			Clipboard:        TransferBidirectional,
			CORS:             CORS{Origins: []string{}, CacheSeconds: DefaultCORSCacheSeconds},
		},
	}
}

// Notice is something the gateway changed or wants the admin to know about a
// saved settings set, without refusing it.
type Notice struct {
	// Field is the JSON path the notice is about.
	Field string `json:"field"`
	// Message is the text for the admin.
	Message string `json:"message"`
}

// Normalize fixes what can be fixed without guessing (trims spaces, turns
// CORS off when it has no origins) and returns notices describing what it
// changed or what the admin should know. It never rejects anything:
// Validate does that.
func (p *PortalSettings) Normalize() []Notice {
	var notes []Notice
	p.NLB.AlternateHost = strings.TrimSpace(p.NLB.AlternateHost)
	p.Web.Path = strings.TrimSpace(p.Web.Path)
	if p.Web.Path != "/" && strings.HasSuffix(p.Web.Path, "/") {
		p.Web.Path = strings.TrimRight(p.Web.Path, "/")
	}
	p.Web.CookieName = strings.TrimSpace(p.Web.CookieName)
	p.Client.IPDetection.URL = strings.TrimSpace(p.Client.IPDetection.URL)
	p.Restrictions.CORS.Origins = normalizeOrigins(p.Restrictions.CORS.Origins)
	p.Restrictions.EmbeddingOrigins = normalizeOrigins(p.Restrictions.EmbeddingOrigins)
	if p.Restrictions.CORS.Enabled && len(p.Restrictions.CORS.Origins) == 0 {
		p.Restrictions.CORS.Enabled = false
		notes = append(notes, Notice{Field: "restrictions.cors.enabled", Message: "CORS was turned off because no allowed origins were given: add at least one origin to enable it"})
	}
	if p.NLB.AlternateHostEnabled || p.NLB.AlternatePortEnabled {
		notes = append(notes, Notice{Field: "nlb", Message: multiTenantWarningMessage})
	}
	return notes
}

func normalizeOrigins(in []string) []string {
	out := make([]string, 0, len(in))
	seen := map[string]bool{}
	for _, o := range in {
		o = strings.TrimRight(strings.TrimSpace(o), "/")
		if o == "" || seen[strings.ToLower(o)] {
			continue
		}
		seen[strings.ToLower(o)] = true
		out = append(out, o)
	}
	return out
}

// cookieNameRE is RFC 6265's cookie-name token (RFC 7230 tchar).
var cookieNameRE = regexp.MustCompile(`^[!#$%&'*+\-.^_` + "`" + `|~0-9A-Za-z]+$`)

// portalPathRE allows URL paths made of safe segments.
var portalPathRE = regexp.MustCompile(`^(/[A-Za-z0-9._~-]+)+$`)

// hostnameRE is one DNS label; host names are checked label by label.
var hostnameLabelRE = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$`)

// Validate checks every field of a settings set. usedPorts maps the ports the
// gateway already uses (HTTPS, HTTP, admin, DNS) to their purpose, so the
// alternate port cannot collide with them; it may be nil.
func (p PortalSettings) Validate(usedPorts map[int]string) error {
	var es FieldErrors
	c := p.Client
	switch c.LaunchMethod {
	case LaunchBrowser, LaunchNative, LaunchNativeWithFallback:
	default:
		es.add("client.launchMethod", c.LaunchMethod, "use one of browser, native, native-with-fallback")
	}
	if c.AllowUserSelect && c.LaunchMethod != LaunchNativeWithFallback {
		es.add("client.allowUserSelect", c.AllowUserSelect, "letting users select a launch method needs launch method native-with-fallback (both methods allowed); turn it off or change the launch method")
	}
	switch c.Detection {
	case DetectAutomatic, DetectOnPrompt:
	default:
		es.add("client.detection", c.Detection, "use automatic or on-prompt")
	}
	if c.DetectionTimeoutSeconds < MinDetectionTimeout || c.DetectionTimeoutSeconds > MaxDetectionTimeout {
		es.add("client.detectionTimeoutSeconds", c.DetectionTimeoutSeconds, "use a number of seconds from %d to %d", MinDetectionTimeout, MaxDetectionTimeout)
	}
	if c.IPDetection.Enabled || c.IPDetection.URL != "" {
		if err := ValidateHTTPURL(c.IPDetection.URL); err != nil {
			es.add("client.ipDetection.url", c.IPDetection.URL, "%v", err)
		}
	}

	n := p.NLB
	if n.AlternateHostEnabled || n.AlternateHost != "" {
		if err := ValidateHostname(n.AlternateHost); err != nil {
			es.add("nlb.alternateHost", n.AlternateHost, "%v", err)
		}
	}
	if n.AlternatePort < 1 || n.AlternatePort > 65535 {
		es.add("nlb.alternatePort", n.AlternatePort, "use a port from 1 to 65535 (default %d)", DefaultAlternatePort)
	} else if n.AlternatePortEnabled {
		if purpose, ok := usedPorts[n.AlternatePort]; ok {
			es.add("nlb.alternatePort", n.AlternatePort, "port %d is already used by the %s; choose another port (default %d)", n.AlternatePort, purpose, DefaultAlternatePort)
		}
	}

	w := p.Web
	switch {
	case w.Path == "" || w.Path == "/":
		es.add("web.path", w.Path, "give the User Portal its own path such as %s (\"/\" redirects to it)", DefaultPortalPath)
	case len(w.Path) > maxPathLength:
		es.add("web.path", w.Path, "use at most %d characters", maxPathLength)
	case !portalPathRE.MatchString(w.Path):
		es.add("web.path", w.Path, "use a path starting with / made of letters, digits and . _ ~ - (e.g. %s)", DefaultPortalPath)
	case isReservedPath(w.Path):
		es.add("web.path", w.Path, "this path is reserved by the gateway; choose another (e.g. %s)", DefaultPortalPath)
	}
	if w.CookieName == "" || len(w.CookieName) > maxCookieNameLength || !cookieNameRE.MatchString(w.CookieName) {
		es.add("web.cookieName", w.CookieName, "use 1 to %d letters, digits or !#$%%&'*+-.^_`|~ (no spaces, =, ; or quotes), e.g. %s or AWSALB", maxCookieNameLength, DefaultCookieName)
	}

	r := p.Restrictions
	if !r.FileTransfer.Valid() {
		es.add("restrictions.fileTransfer", r.FileTransfer, "use one of disabled, client-to-server, server-to-client, bidirectional")
	}
	if !r.Clipboard.Valid() {
		es.add("restrictions.clipboard", r.Clipboard, "use one of disabled, client-to-server, server-to-client, bidirectional")
	}
	checkOrigins(&es, "restrictions.cors.origins", r.CORS.Origins)
	checkOrigins(&es, "restrictions.embeddingOrigins", r.EmbeddingOrigins)
	if r.CORS.CacheSeconds < 0 || r.CORS.CacheSeconds > MaxCORSCacheSeconds {
		es.add("restrictions.cors.cacheSeconds", r.CORS.CacheSeconds, "use 0 to %d seconds (browsers cap it at 7200 or 86400)", MaxCORSCacheSeconds)
	}
	if r.CORS.Enabled && len(r.CORS.Origins) == 0 {
		es.add("restrictions.cors.origins", "", "CORS needs at least one allowed origin")
	}
	return es.errOrNil()
}

func isReservedPath(p string) bool {
	lp := strings.ToLower(p)
	for _, r := range []string{"/api", "/static", "/relay", "/detect", "/client", "/healthz"} {
		if lp == r || strings.HasPrefix(lp, r+"/") {
			return true
		}
	}
	return false
}

func checkOrigins(es *FieldErrors, field string, origins []string) {
	if len(origins) > maxOrigins {
		es.add(field, len(origins), "list at most %d origins", maxOrigins)
		return
	}
	for i, o := range origins {
		if err := ValidateOrigin(o); err != nil {
			es.add(fmt.Sprintf("%s[%d]", field, i), o, "%v", err)
		}
	}
}

// ValidateOrigin checks a web origin: scheme://host[:port] with no path.
func ValidateOrigin(o string) error {
	u, err := url.Parse(o)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return fmt.Errorf("an origin is scheme://host[:port], e.g. https://intranet.example.com")
	}
	if u.Path != "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return fmt.Errorf("an origin has no path, query or user part: use %s://%s", u.Scheme, u.Host)
	}
	if err := ValidateHostname(u.Hostname()); err != nil {
		return err
	}
	if p := u.Port(); p != "" {
		var n int
		if _, err := fmt.Sscanf(p, "%d", &n); err != nil || n < 1 || n > 65535 {
			return fmt.Errorf("port %q is not 1-65535", p)
		}
	}
	return nil
}

// ValidateHostname accepts a DNS host name or an IP address.
func ValidateHostname(h string) error {
	if h == "" {
		return fmt.Errorf("give a host name such as gateway.example.com")
	}
	if net.ParseIP(strings.Trim(h, "[]")) != nil {
		return nil
	}
	if len(h) > maxHostnameLength {
		return fmt.Errorf("a host name has at most %d characters", maxHostnameLength)
	}
	for _, label := range strings.Split(strings.TrimSuffix(h, "."), ".") {
		if !hostnameLabelRE.MatchString(label) {
			return fmt.Errorf("%q is not a valid host name: use letters, digits, - and dots", h)
		}
	}
	return nil
}

// ValidateHTTPURL accepts absolute http or https URLs with a host.
func ValidateHTTPURL(s string) error {
	if s == "" {
		return fmt.Errorf("give the service URL, e.g. https://api.ipify.org?format=json")
	}
	if len(s) > maxIPDetectionURLLength {
		return fmt.Errorf("use at most %d characters", maxIPDetectionURLLength)
	}
	u, err := url.Parse(s)
	if err != nil {
		return fmt.Errorf("not a URL: %v", err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return fmt.Errorf("use an absolute http:// or https:// URL")
	}
	if u.Host == "" {
		return fmt.Errorf("the URL has no host")
	}
	if u.User != nil {
		return fmt.Errorf("do not put credentials in the URL")
	}
	return ValidateHostname(u.Hostname())
}
