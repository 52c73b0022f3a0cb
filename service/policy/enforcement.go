package policy

import (
	"fmt"
	"strings"

	"portico/service/config"
)

// Where says how far an allowed or refused direction is held to. It is the
// one answer to "what does this setting really do" for the README, the
// admin API's explain and the GUI.
type Where string

const (
	// OnTheWire: the gateway itself passes or drops the data, whatever the
	// page or the client does.
	OnTheWire Where = "on the wire"
	// PageOnly: the session page offers or withholds the control, but the
	// gateway cannot tell the data from other input (a paste into a
	// terminal is typing), so a modified page is not stopped.
	PageOnly Where = "in the page only"
	// Advisory: a native client talks to the host through the gateway's
	// tunnel unchanged; the setting is not enforced.
	Advisory Where = "advisory"
	// NotAvailable: the protocol has no such channel on this route, so
	// nothing passes whatever the setting says.
	NotAvailable Where = "not available"
)

func (w Where) phrase() string {
	if w == OnTheWire || w == PageOnly {
		return "enforced " + string(w)
	}
	return string(w)
}

// Route is how a session reaches its host.
type Route string

const (
	// RouteBrowser is a session in the portal's page (IronRDP, noVNC,
	// xterm.js), relayed by the gateway.
	RouteBrowser Route = "browser"
	// RouteNative is a session in the platform's own viewer through
	// portico-client's tunnel.
	RouteNative Route = "native client"
)

// Feature is what a direction set governs.
type Feature string

const (
	// FeatureClipboard is clipboard redirection.
	FeatureClipboard Feature = "clipboard"
	// FeatureFiles is file transfer.
	FeatureFiles Feature = "file transfer"
)

// Rule is one row of the enforcement table.
type Rule struct {
	Protocol config.Protocol `json:"protocol"`
	Route    Route           `json:"route"`
	Feature  Feature         `json:"feature"`
	// ClientToServer and ServerToClient say how each direction is held to.
	ClientToServer Where `json:"clientToServer"`
	ServerToClient Where `json:"serverToClient"`
	// How says what does the enforcing, in a few words.
	How string `json:"how"`
}

// Rules is the enforcement table: for every protocol, route and feature,
// where each direction is enforced. The relays and pages are what make it
// true; TestEnforcementTableInREADME keeps the README's copy equal to it.
func Rules() []Rule {
	return []Rule{
		{config.ProtocolRDP, RouteBrowser, FeatureClipboard, OnTheWire, OnTheWire, "the gateway filters the clipboard channel (CLIPRDR) per direction, or removes it"},
		{config.ProtocolRDP, RouteBrowser, FeatureFiles, OnTheWire, OnTheWire, "file lists and contents in the clipboard channel follow the file-transfer directions; the web client has no other way to move files"},
		{config.ProtocolRDP, RouteNative, FeatureClipboard, Advisory, Advisory, "the RDP client's traffic passes through unchanged"},
		{config.ProtocolRDP, RouteNative, FeatureFiles, Advisory, Advisory, "the RDP client's traffic passes through unchanged"},
		{config.ProtocolVNC, RouteBrowser, FeatureClipboard, OnTheWire, OnTheWire, "the gateway's RFB proxy drops ClientCutText / ServerCutText"},
		{config.ProtocolVNC, RouteBrowser, FeatureFiles, NotAvailable, NotAvailable, "RFB has no file transfer"},
		{config.ProtocolVNC, RouteNative, FeatureClipboard, OnTheWire, OnTheWire, "native VNC goes through the same RFB proxy"},
		{config.ProtocolVNC, RouteNative, FeatureFiles, NotAvailable, NotAvailable, "RFB has no file transfer"},
		{config.ProtocolSSH, RouteBrowser, FeatureClipboard, PageOnly, PageOnly, "the terminal page blocks paste and copy; pasted text cannot be told from typing, and what the host prints is on the screen"},
		{config.ProtocolSSH, RouteBrowser, FeatureFiles, OnTheWire, OnTheWire, "the gateway is the SFTP client and refuses uploads or downloads"},
		{config.ProtocolSSH, RouteNative, FeatureClipboard, Advisory, Advisory, "the ssh client's traffic passes through unchanged"},
		{config.ProtocolSSH, RouteNative, FeatureFiles, Advisory, Advisory, "the ssh client's traffic passes through unchanged (scp, sftp)"},
	}
}

// RulesFor returns the rows of one protocol.
func RulesFor(p config.Protocol) []Rule {
	var out []Rule
	for _, r := range Rules() {
		if r.Protocol == p {
			out = append(out, r)
		}
	}
	return out
}

// available reports whether any route of protocol p can carry feature f at
// all. A feature no route carries is effectively disabled, so that explain
// never answers "bidirectional" for a VNC resource's file transfer.
func available(p config.Protocol, f Feature) bool {
	rows := 0
	for _, r := range RulesFor(p) {
		if r.Feature != f {
			continue
		}
		rows++
		if r.ClientToServer != NotAvailable || r.ServerToClient != NotAvailable {
			return true
		}
	}
	return rows == 0 // a protocol the table does not know is not narrowed
}

// Describe says in one line per route how a decided direction set is held
// to for protocol p, e.g. "file transfer in the browser: client-to-server
// on the wire (the gateway is the SFTP client ...)".
func Describe(p config.Protocol, f Feature, t config.Transfer) []string {
	var out []string
	for _, r := range RulesFor(p) {
		if r.Feature != f {
			continue
		}
		var what string
		switch {
		case r.ClientToServer == NotAvailable && r.ServerToClient == NotAvailable:
			what = "not available"
		case r.ClientToServer == r.ServerToClient:
			what = fmt.Sprintf("%s, %s", t, r.ClientToServer.phrase())
		default:
			what = fmt.Sprintf("%s (client-to-server %s, server-to-client %s)", t, r.ClientToServer.phrase(), r.ServerToClient.phrase())
		}
		out = append(out, fmt.Sprintf("%s by %s: %s — %s", f, r.Route, what, r.How))
	}
	return out
}

// MarkdownTable renders Rules as the README's table.
func MarkdownTable() string {
	var b strings.Builder
	b.WriteString("| Protocol | Route | Feature | Client → host | Host → client | How |\n")
	b.WriteString("|---|---|---|---|---|---|\n")
	for _, r := range Rules() {
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s |\n", strings.ToUpper(string(r.Protocol)), r.Route, r.Feature, r.ClientToServer, r.ServerToClient, r.How)
	}
	return b.String()
}
