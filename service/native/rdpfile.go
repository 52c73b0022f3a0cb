package native

import (
	"strconv"
	"strings"
)

// RDPFile is an .rdp file as a typed value, one field per key, written by
// one encoder (String) for the portal's downloads and the native client's
// mstsc launch alike. Zero fields are left out.
type RDPFile struct {
	// FullAddress is "full address:s:", the gateway's host:port.
	FullAddress string
	// LoadBalanceInfo carries the launch ticket ("loadbalanceinfo:s:").
	LoadBalanceInfo string
	// Username prefills the client's sign-in ("username:s:").
	Username string
	// PromptForCredentials asks for the password on the client.
	PromptForCredentials bool
	// AuthenticationLevel is "authentication level:i:" (2: warn).
	AuthenticationLevel int
	// ScreenModeID is "screen mode id:i:" (2: full screen).
	ScreenModeID int
	// RemoteApp, when not nil, opens a published program in RemoteApp
	// mode instead of a desktop.
	RemoteApp *RDPRemoteApp
	// DriveStoreRedirect, when not nil, is "drivestoredirect:s:": "*" to
	// redirect every drive of the client, "" for none (the line is written
	// either way, so an empty value turns the client's default off).
	DriveStoreRedirect *string
}

// RDPRemoteApp is the RemoteApp part of an .rdp file.
type RDPRemoteApp struct {
	// Program is "remoteapplicationprogram:s:", an alias (||notepad) or
	// an executable path on the host.
	Program string
	// Name is "remoteapplicationname:s:", what the client shows.
	Name string
	// CmdLine is "remoteapplicationcmdline:s:", the arguments.
	CmdLine string
	// WorkDir is "shell working directory:s:", which RemoteApp clients
	// use as the program's working directory.
	WorkDir string
}

// String encodes the file, one "key:type:value" line each, CRLF ended. Line
// breaks inside a value are dropped: they would start a key of their own.
func (f RDPFile) String() string {
	var b strings.Builder
	str := func(k, v string) {
		if v != "" {
			b.WriteString(k + ":s:" + strings.NewReplacer("\r", "", "\n", "").Replace(v) + "\r\n")
		}
	}
	num := func(k string, v int) { b.WriteString(k + ":i:" + strconv.Itoa(v) + "\r\n") }
	str("full address", f.FullAddress)
	str("loadbalanceinfo", f.LoadBalanceInfo)
	str("username", f.Username)
	if f.PromptForCredentials {
		num("prompt for credentials", 1)
	}
	if f.AuthenticationLevel != 0 {
		num("authentication level", f.AuthenticationLevel)
	}
	if f.ScreenModeID != 0 {
		num("screen mode id", f.ScreenModeID)
	}
	if d := f.DriveStoreRedirect; d != nil {
		b.WriteString("drivestoredirect:s:" + strings.NewReplacer("\r", "", "\n", "").Replace(*d) + "\r\n")
	}
	if ra := f.RemoteApp; ra != nil && ra.Program != "" {
		num("remoteapplicationmode", 1)
		str("remoteapplicationprogram", ra.Program)
		str("remoteapplicationname", ra.Name)
		str("remoteapplicationcmdline", ra.CmdLine)
		str("shell working directory", ra.WorkDir)
	}
	return b.String()
}
