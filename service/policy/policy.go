// Package policy computes the effective clipboard and file-transfer
// directions of a session from its three levels: the host/resource, the
// User Portal, and the first matching client policy: a direction is allowed
// only when every level allows it.
// Every relay and every session page asks Decide and nothing else. It reads
// only what it is given; it does not know about HTTP or the store.
package policy

import (
	"fmt"
	"net"
	"strings"

	"portico/service/config"
)

// Client describes who is connecting from where, for client-policy matching.
type Client struct {
	// User is the portal user name.
	User string
	// Groups are the user's groups.
	Groups []string
	// OS is the client OS (windows, macos, linux, android, ios, chromeos, other).
	OS string
	// IP is the trusted client IP.
	IP net.IP
}

// Decision is the effective result with the reasons for it.
type Decision struct {
	// Clipboard is the allowed clipboard direction set.
	Clipboard config.Transfer `json:"clipboard"`
	// FileTransfer is the allowed file-transfer direction set.
	FileTransfer config.Transfer `json:"fileTransfer"`
	// Policy is the matching client policy's name ("" if none matched).
	Policy string `json:"policy,omitempty"`
	// Explanation says how each result came about, for the admin.
	Explanation []string `json:"explanation"`
	// Enforcement says, per route, how the resource's protocol holds the
	// session to the result (see Rules).
	Enforcement []string `json:"enforcement"`
}

// Decide intersects host ∩ portal ∩ (first matching enabled policy). A
// policy that leaves a setting unset does not restrict it.
func Decide(res config.Resource, portal config.PortalSettings, policies []config.ClientPolicy, c Client) Decision {
	d := Decision{
		Clipboard:    res.Clipboard.Intersect(portal.Restrictions.Clipboard),
		FileTransfer: res.FileTransfer.Intersect(portal.Restrictions.FileTransfer),
	}
	pol, matched := Match(policies, c)
	polClip, polFiles := config.TransferBidirectional, config.TransferBidirectional
	polName := "no client policy matched"
	if matched {
		d.Policy = pol.Name
		polName = fmt.Sprintf("policy '%s'", pol.Name)
		if pol.Clipboard != "" {
			polClip = pol.Clipboard
		}
		if pol.FileTransfer != "" {
			polFiles = pol.FileTransfer
		}
	}
	d.Clipboard = d.Clipboard.Intersect(polClip)
	d.FileTransfer = d.FileTransfer.Intersect(polFiles)
	explain := func(what string, result, host, portalSet config.Transfer, polSet config.Transfer, polHas bool) string {
		p := "sets nothing"
		if matched && polHas {
			p = "allows " + string(polSet)
		}
		return fmt.Sprintf("%s = %s because host allows %s, portal allows %s, %s %s", what, result, host, portalSet, polName, p)
	}
	d.Explanation = []string{
		explain("clipboard", d.Clipboard, res.Clipboard, portal.Restrictions.Clipboard, pol.Clipboard, pol.Clipboard != ""),
		explain("file transfer", d.FileTransfer, res.FileTransfer, portal.Restrictions.FileTransfer, pol.FileTransfer, pol.FileTransfer != ""),
	}
	// A feature the protocol cannot carry on any route is disabled, not
	// "allowed" with nothing behind it.
	if !available(res.Protocol, FeatureClipboard) && d.Clipboard != config.TransferDisabled {
		d.Clipboard = config.TransferDisabled
		d.Explanation[0] = fmt.Sprintf("clipboard = disabled because %s has no clipboard (without that: %s)", strings.ToUpper(string(res.Protocol)), d.Explanation[0])
	}
	if !available(res.Protocol, FeatureFiles) && d.FileTransfer != config.TransferDisabled {
		d.FileTransfer = config.TransferDisabled
		d.Explanation[1] = fmt.Sprintf("file transfer = disabled because %s has no file transfer (without that: %s)", strings.ToUpper(string(res.Protocol)), d.Explanation[1])
	}
	d.Enforcement = append(Describe(res.Protocol, FeatureClipboard, d.Clipboard), Describe(res.Protocol, FeatureFiles, d.FileTransfer)...)
	return d
}

// Match returns the first enabled policy whose every non-empty criterion
// matches the client.
func Match(policies []config.ClientPolicy, c Client) (config.ClientPolicy, bool) {
	for _, p := range policies {
		if p.Enabled && matches(p, c) {
			return p, true
		}
	}
	return config.ClientPolicy{}, false
}

func matches(p config.ClientPolicy, c Client) bool {
	if len(p.Users) > 0 && !anyFold(p.Users, c.User) {
		return false
	}
	if len(p.Groups) > 0 {
		hit := false
		for _, g := range c.Groups {
			if anyFold(p.Groups, g) {
				hit = true
				break
			}
		}
		if !hit {
			return false
		}
	}
	if len(p.ClientOS) > 0 && !anyFold(p.ClientOS, c.OS) {
		return false
	}
	if len(p.Networks) > 0 {
		hit := false
		for _, n := range p.Networks {
			if ipn, err := config.ParseCIDROrIP(n); err == nil && c.IP != nil && ipn.Contains(c.IP) {
				hit = true
				break
			}
		}
		if !hit {
			return false
		}
	}
	return true
}

func anyFold(list []string, s string) bool {
	for _, x := range list {
		if strings.EqualFold(x, s) {
			return true
		}
	}
	return false
}

// ClientOS guesses the client OS from a User-Agent header.
func ClientOS(userAgent string) string {
	ua := strings.ToLower(userAgent)
	switch {
	case strings.Contains(ua, "portico-client/"):
		// The native client says its OS explicitly: "portico-client/1.0 (linux)".
		for _, os := range config.ClientOSes {
			if strings.Contains(ua, "("+os) {
				return os
			}
		}
	case strings.Contains(ua, "android"):
		return "android"
	case strings.Contains(ua, "iphone"), strings.Contains(ua, "ipad"):
		return "ios"
	case strings.Contains(ua, "cros"):
		return "chromeos"
	case strings.Contains(ua, "windows"):
		return "windows"
	case strings.Contains(ua, "mac os"), strings.Contains(ua, "macintosh"):
		return "macos"
	case strings.Contains(ua, "linux"), strings.Contains(ua, "x11"):
		return "linux"
	}
	return "other"
}
