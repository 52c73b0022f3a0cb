package config

import (
	"fmt"
	"regexp"
	"strings"
)

// Protocol is how the gateway talks to a resource's host.
type Protocol string

// Supported protocols.
const (
	ProtocolRDP Protocol = "rdp"
	ProtocolVNC Protocol = "vnc"
	ProtocolSSH Protocol = "ssh"
)

// DefaultPort returns the well-known port of the protocol.
func (p Protocol) DefaultPort() int {
	switch p {
	case ProtocolRDP:
		return 3389
	case ProtocolVNC:
		return 5900
	case ProtocolSSH:
		return 22
	}
	return 0
}

// Kind is what the user sees a resource as.
type Kind string

// Resource kinds.
const (
	KindDesktop     Kind = "desktop"
	KindApplication Kind = "application"
)

// CredentialMode says where the gateway gets the host credentials from.
type CredentialMode string

// Credential modes.
const (
	// CredStored uses the username/password/key stored with the resource.
	CredStored CredentialMode = "stored"
	// CredAsk asks the user each time (RDP: entered in the session page).
	CredAsk CredentialMode = "ask"
	// CredPortal uses the user's own portal sign-in credentials (RDP).
	CredPortal CredentialMode = "portal"
)

// Resource is a published desktop or application.
type Resource struct {
	// ID is a stable identifier, made by the gateway when empty on create.
	ID string `json:"id"`
	// Name is what users see.
	Name string `json:"name"`
	// Description is an optional line under the name.
	Description string `json:"description,omitempty"`
	// Icon is the name of a built-in icon (desktop, terminal, app, ...).
	Icon string `json:"icon,omitempty"`
	// Kind is desktop or application.
	Kind Kind `json:"kind"`
	// Protocol is rdp, vnc or ssh.
	Protocol Protocol `json:"protocol"`
	// Host is the backend's host name or IP, on the office network.
	Host string `json:"host"`
	// Port is the backend's TCP port.
	Port int `json:"port"`
	// Credentials say how the gateway signs in to the host.
	Credentials Credentials `json:"credentials"`
	// RemoteApp describes the program of an RDP application resource.
	RemoteApp *RemoteApp `json:"remoteApp,omitempty"`
	// Clipboard is the host level of the clipboard precedence.
	Clipboard Transfer `json:"clipboard"`
	// FileTransfer is the host level of the file-transfer precedence.
	FileTransfer Transfer `json:"fileTransfer"`
	// HostKey is the pinned SSH host key or RDP certificate fingerprint,
	// set on first use; empty means "trust on first use".
	HostKey string `json:"hostKey,omitempty"`
	// Users and Groups the resource is assigned to.
	Users  []string `json:"users"`
	Groups []string `json:"groups"`
}

// Credentials are the host credentials the gateway holds. Password and
// PrivateKey are write-only through the admin API and sealed at rest.
type Credentials struct {
	// Mode is stored, ask or portal.
	Mode CredentialMode `json:"mode"`
	// Username on the host.
	Username string `json:"username,omitempty"`
	// Password on the host (sealed in the store, never returned by the API).
	Password string `json:"password,omitempty"`
	// PrivateKey is an SSH private key in PEM (sealed, never returned).
	PrivateKey string `json:"privateKey,omitempty"`
}

// RemoteApp is an RDP RemoteApp program.
type RemoteApp struct {
	// Program is the RemoteApp alias or display name.
	Program string `json:"program"`
	// Path is the executable path on the host.
	Path string `json:"path,omitempty"`
	// Args are the command-line arguments.
	Args string `json:"args,omitempty"`
	// WorkDir is the working directory.
	WorkDir string `json:"workDir,omitempty"`
}

// Built-in icon names the portal can draw.
var Icons = []string{"desktop", "terminal", "app", "server", "files", "browser", "office", "chart"}

var idRE = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,62}$`)

// ValidID reports whether s can be used as an ID (lower-case letters,
// digits and '-', up to 63 characters).
func ValidID(s string) bool { return idRE.MatchString(s) }

// Normalize trims fields and fills defaults that need no guess.
func (r *Resource) Normalize() {
	r.Name = strings.TrimSpace(r.Name)
	r.Host = strings.TrimSpace(r.Host)
	if r.Port == 0 {
		r.Port = r.Protocol.DefaultPort()
	}
	if r.Kind == "" {
		r.Kind = KindDesktop
	}
	if r.Credentials.Mode == "" {
		r.Credentials.Mode = CredStored
	}
	if r.Clipboard == "" {
		r.Clipboard = TransferBidirectional
	}
	if r.FileTransfer == "" {
		r.FileTransfer = TransferBidirectional
	}
	if r.Icon == "" {
		r.Icon = "desktop"
		if r.Protocol == ProtocolSSH {
			r.Icon = "terminal"
		} else if r.Kind == KindApplication {
			r.Icon = "app"
		}
	}
	r.Users = normalizeNames(r.Users)
	r.Groups = normalizeNames(r.Groups)
}

func normalizeNames(in []string) []string {
	out := make([]string, 0, len(in))
	seen := map[string]bool{}
	for _, n := range in {
		n = strings.TrimSpace(n)
		k := strings.ToLower(n)
		if n == "" || seen[k] {
			continue
		}
		seen[k] = true
		out = append(out, n)
	}
	return out
}

// Validate checks a resource.
func (r Resource) Validate() error {
	var es FieldErrors
	if !ValidID(r.ID) {
		es.add("id", r.ID, "use 1 to 63 lower-case letters, digits and '-'")
	}
	if r.Name == "" || len(r.Name) > 100 {
		es.add("name", r.Name, "give the resource a name of 1 to 100 characters")
	}
	switch r.Kind {
	case KindDesktop, KindApplication:
	default:
		es.add("kind", r.Kind, "use desktop or application")
	}
	switch r.Protocol {
	case ProtocolRDP, ProtocolVNC, ProtocolSSH:
	default:
		es.add("protocol", r.Protocol, "use rdp, vnc or ssh")
	}
	if err := ValidateHostname(r.Host); err != nil {
		es.add("host", r.Host, "%v", err)
	}
	if r.Port < 1 || r.Port > 65535 {
		es.add("port", r.Port, "use a port from 1 to 65535 (%s default: %d)", r.Protocol, r.Protocol.DefaultPort())
	}
	if !contains(Icons, r.Icon) {
		es.add("icon", r.Icon, "use one of %s", strings.Join(Icons, ", "))
	}
	switch r.Credentials.Mode {
	case CredStored:
	case CredAsk, CredPortal:
		if r.Protocol != ProtocolRDP {
			es.add("credentials.mode", r.Credentials.Mode, "only RDP resources can ask the user or use the portal sign-in; use stored for %s", r.Protocol)
		}
	default:
		es.add("credentials.mode", r.Credentials.Mode, "use stored, ask or portal")
	}
	if r.Credentials.PrivateKey != "" && r.Protocol != ProtocolSSH {
		es.add("credentials.privateKey", "(key)", "a private key is only used by SSH resources")
	}
	if r.RemoteApp != nil {
		if r.Protocol != ProtocolRDP {
			es.add("remoteApp", r.RemoteApp.Program, "RemoteApp programs need protocol rdp")
		} else if strings.TrimSpace(r.RemoteApp.Program) == "" {
			es.add("remoteApp.program", "", "give the RemoteApp program alias, e.g. ||notepad")
		}
	}
	if !r.Clipboard.Valid() {
		es.add("clipboard", r.Clipboard, "use one of disabled, client-to-server, server-to-client, bidirectional")
	}
	if !r.FileTransfer.Valid() {
		es.add("fileTransfer", r.FileTransfer, "use one of disabled, client-to-server, server-to-client, bidirectional")
	}
	return es.errOrNil()
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// ClientPolicy is one rule of the client-policy level of the clipboard and
// file-transfer precedence. Rules are ordered; the first enabled rule that
// matches a session applies. Empty match lists match anything.
type ClientPolicy struct {
	// ID is a stable identifier.
	ID string `json:"id"`
	// Name is shown in explanations ("policy 'Contractors'").
	Name string `json:"name"`
	// Enabled rules take part in matching.
	Enabled bool `json:"enabled"`
	// Users the rule matches (user names, case-insensitive).
	Users []string `json:"users"`
	// Groups the rule matches.
	Groups []string `json:"groups"`
	// ClientOS the rule matches: windows, macos, linux, android, ios, chromeos, other.
	ClientOS []string `json:"clientOS"`
	// Networks the rule matches, as CIDRs, against the trusted client IP.
	Networks []string `json:"networks"`
	// Gateways is no longer a criterion: every gateway of a configuration
	// has the same ID (gateways behind a load balancer share one exported
	// configuration), so it could never tell them apart. The key is still
	// accepted empty, so that exports made before stay importable; a
	// non-empty list is refused with what to do.
	Gateways []string `json:"gateways,omitempty"`
	// Clipboard, when set, restricts clipboard at this level.
	Clipboard Transfer `json:"clipboard,omitempty"`
	// FileTransfer, when set, restricts file transfer at this level.
	FileTransfer Transfer `json:"fileTransfer,omitempty"`
}

// ClientOSes are the client OS names a policy can match.
var ClientOSes = []string{"windows", "macos", "linux", "android", "ios", "chromeos", "other"}

// Validate checks a client policy.
func (p ClientPolicy) Validate() error {
	var es FieldErrors
	if !ValidID(p.ID) {
		es.add("id", p.ID, "use 1 to 63 lower-case letters, digits and '-'")
	}
	if strings.TrimSpace(p.Name) == "" || len(p.Name) > 100 {
		es.add("name", p.Name, "give the policy a name of 1 to 100 characters")
	}
	for i, os := range p.ClientOS {
		if !contains(ClientOSes, os) {
			es.add(fmt.Sprintf("clientOS[%d]", i), os, "use one of %s", strings.Join(ClientOSes, ", "))
		}
	}
	for i, n := range p.Networks {
		if _, err := ParseCIDROrIP(n); err != nil {
			es.add(fmt.Sprintf("networks[%d]", i), n, "%v", err)
		}
	}
	if len(p.Gateways) > 0 {
		es.add("gateways", strings.Join(p.Gateways, ", "), "remove the gateway list: every gateway of a configuration has the same ID, so it cannot limit a rule (match client networks instead)")
	}
	if p.Clipboard != "" && !p.Clipboard.Valid() {
		es.add("clipboard", p.Clipboard, "leave empty (no restriction) or use one of disabled, client-to-server, server-to-client, bidirectional")
	}
	if p.FileTransfer != "" && !p.FileTransfer.Valid() {
		es.add("fileTransfer", p.FileTransfer, "leave empty (no restriction) or use one of disabled, client-to-server, server-to-client, bidirectional")
	}
	return es.errOrNil()
}
