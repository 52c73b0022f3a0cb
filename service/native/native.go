// Package native is the contract between the gateway and the native client
// helper (portico-client): the portico://launch URL the portal hands to the
// helper, and the first frame and answer of the TLS tunnel the helper opens
// to the gateway. It is shared by both binaries, so it holds only formats
// and parsers (standard library only) and must not touch tickets, settings,
// sockets or processes.
package native

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
	"unicode"
)

// ALPN is the TLS application protocol a client offers to reach the tunnel
// on the gateway's main HTTPS port (browsers never offer it).
const ALPN = "portico-tunnel/1"

// Launch URL parts.
const (
	Scheme     = "portico"
	LaunchHost = "launch"
)

// Protocols a launch can open.
const (
	ProtoRDP = "rdp"
	ProtoVNC = "vnc"
	ProtoSSH = "ssh"
)

// maxField caps the free-text fields of a launch URL (resource and user
// names), which the helper puts on a viewer's command line.
const maxField = 256

// LaunchURL is a portico://launch?... URL: everything the helper needs to
// open one session through the gateway.
type LaunchURL struct {
	// Gateway is the host:port the tunnel connects to (the alternate
	// host/port when enabled, else the portal's own).
	Gateway string
	// Fingerprint is the SHA-256 of the gateway's TLS leaf certificate, 64
	// lower-case hex digits; the helper pins it instead of trusting roots.
	Fingerprint string
	// Ticket is the single-use launch ticket.
	Ticket string
	// Proto is rdp, vnc or ssh.
	Proto string
	// Name is the resource's display name.
	Name string
	// User prefills the viewer's user name (may be empty).
	User string
	// App, when set, is the RemoteApp program of an RDP application
	// resource (alias like ||notepad, or a path); AppArgs and AppDir are
	// its arguments and working directory.
	App, AppArgs, AppDir string
}

// Fingerprint returns the pinning form of a DER certificate's SHA-256.
func Fingerprint(der []byte) string {
	sum := sha256.Sum256(der)
	return hex.EncodeToString(sum[:])
}

// NormalizeFingerprint accepts a SHA-256 fingerprint as plain or
// colon-separated hex in either case (the form browsers and the admin API
// show) and returns the 64-digit lower-case form.
func NormalizeFingerprint(fp string) (string, error) {
	s := strings.ToLower(strings.ReplaceAll(strings.TrimSpace(fp), ":", ""))
	if len(s) != 2*sha256.Size {
		return "", fmt.Errorf("certificate fingerprint %q: want the SHA-256 as 64 hex digits", fp)
	}
	if _, err := hex.DecodeString(s); err != nil {
		return "", fmt.Errorf("certificate fingerprint %q: not hex", fp)
	}
	return s, nil
}

// String formats the URL. Field order is fixed so the same launch gives the
// same URL.
func (l LaunchURL) String() string {
	q := url.Values{}
	q.Set("gw", l.Gateway)
	q.Set("fp", l.Fingerprint)
	q.Set("t", l.Ticket)
	q.Set("proto", l.Proto)
	q.Set("name", l.Name)
	if l.User != "" {
		q.Set("user", l.User)
	}
	for k, v := range map[string]string{"app": l.App, "appargs": l.AppArgs, "appdir": l.AppDir} {
		if v != "" {
			q.Set(k, v)
		}
	}
	return (&url.URL{Scheme: Scheme, Host: LaunchHost, RawQuery: q.Encode()}).String()
}

// ParseLaunchURL parses and checks a launch URL. It is network input (any
// web page can open a portico:// link), so every field is checked and an
// error names the field to fix.
func ParseLaunchURL(s string) (LaunchURL, error) {
	u, err := url.Parse(s)
	if err != nil {
		return LaunchURL{}, fmt.Errorf("launch URL: %w", err)
	}
	if !strings.EqualFold(u.Scheme, Scheme) || !strings.EqualFold(u.Host, LaunchHost) || (u.Path != "" && u.Path != "/") {
		return LaunchURL{}, fmt.Errorf("launch URL %q: want %s://%s?gw=…", s, Scheme, LaunchHost)
	}
	q, err := url.ParseQuery(u.RawQuery)
	if err != nil {
		return LaunchURL{}, fmt.Errorf("launch URL query: %w", err)
	}
	l := LaunchURL{Gateway: q.Get("gw"), Ticket: q.Get("t"), Proto: q.Get("proto"), Name: q.Get("name"), User: q.Get("user"),
		App: q.Get("app"), AppArgs: q.Get("appargs"), AppDir: q.Get("appdir")}
	if err := checkGateway(l.Gateway); err != nil {
		return LaunchURL{}, err
	}
	if l.Fingerprint, err = NormalizeFingerprint(q.Get("fp")); err != nil {
		return LaunchURL{}, fmt.Errorf("launch URL fp: %w", err)
	}
	if err := CheckTicket(l.Ticket); err != nil {
		return LaunchURL{}, fmt.Errorf("launch URL t: %w", err)
	}
	switch l.Proto {
	case ProtoRDP, ProtoVNC, ProtoSSH:
	default:
		return LaunchURL{}, fmt.Errorf("launch URL proto %q: want rdp, vnc or ssh", l.Proto)
	}
	if err := checkText("name", l.Name); err != nil {
		return LaunchURL{}, err
	}
	if err := checkText("user", l.User); err != nil {
		return LaunchURL{}, err
	}
	for _, f := range []struct{ name, v string }{{"app", l.App}, {"appargs", l.AppArgs}, {"appdir", l.AppDir}} {
		if err := checkText(f.name, f.v); err != nil {
			return LaunchURL{}, err
		}
	}
	if (l.AppArgs != "" || l.AppDir != "") && l.App == "" {
		return LaunchURL{}, fmt.Errorf("launch URL: appargs and appdir need app")
	}
	if l.App != "" && l.Proto != ProtoRDP {
		return LaunchURL{}, fmt.Errorf("launch URL app: only RDP launches open a RemoteApp program")
	}
	// A leading dash would read as an option to ssh or a viewer.
	if strings.HasPrefix(l.User, "-") || strings.ContainsAny(l.User, " @") {
		return LaunchURL{}, fmt.Errorf("launch URL user %q: must not start with '-' or contain spaces or '@'", l.User)
	}
	return l, nil
}

func checkGateway(gw string) error {
	host, port, err := net.SplitHostPort(gw)
	if err != nil || host == "" {
		return fmt.Errorf("launch URL gw %q: want host:port", gw)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return fmt.Errorf("launch URL gw %q: port must be 1-65535", gw)
	}
	if strings.ContainsFunc(host, func(r rune) bool { return r <= ' ' || r == '/' || r == '@' || r > unicode.MaxASCII }) {
		return fmt.Errorf("launch URL gw %q: not a host name or IP address", gw)
	}
	return nil
}

func checkText(field, v string) error {
	if len(v) > maxField {
		return fmt.Errorf("launch URL %s: longer than %d bytes", field, maxField)
	}
	if strings.ContainsFunc(v, func(r rune) bool { return unicode.IsControl(r) || r == unicode.ReplacementChar }) {
		return fmt.Errorf("launch URL %s %q: contains control characters", field, v)
	}
	return nil
}

// MaxTicket is the longest ticket the tunnel accepts (the portal's are 43
// characters of base64url).
const MaxTicket = 128

// ErrTicketFormat means a ticket has characters a portal ticket never has.
var ErrTicketFormat = errors.New("launch ticket must be 1-128 characters of A-Z a-z 0-9 - _")

// CheckTicket checks a ticket's form (not its validity, which only the
// gateway knows).
func CheckTicket(t string) error {
	if t == "" || len(t) > MaxTicket {
		return ErrTicketFormat
	}
	for i := 0; i < len(t); i++ {
		c := t[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return ErrTicketFormat
		}
	}
	return nil
}
