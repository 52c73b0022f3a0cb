package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"

	"portico/service/native"
	"portico/service/relay"
	"portico/service/tunnel"
)

// ViewerEnv overrides the viewer for every protocol; ViewerEnv+"_SSH" (or
// _RDP, _VNC) for one. The value is a shell command line (sh -c, or cmd /C
// on Windows) run with PORTICO_HOST, PORTICO_PORT, PORTICO_USER,
// PORTICO_NAME and PORTICO_PROTO set. The launch URL's fields travel only
// in those variables, never in the command text, so a crafted link cannot
// inject commands.
const ViewerEnv = "PORTICO_VIEWER"

// runLaunch opens the session a portico://launch URL names: a TLS tunnel
// to the gateway (certificate pinned by the URL's fingerprint) carrying the
// ticket, a listener on a random 127.0.0.1 port for the one connection the
// viewer makes, and the platform's viewer against it. It returns when the
// viewer exits, with the viewer's exit code.
func runLaunch(ctx context.Context, u *url.URL, stdout, stderr io.Writer) int {
	l, err := native.ParseLaunchURL(u.String())
	if err != nil {
		fmt.Fprintln(stderr, "portico-client:", err)
		return 2
	}
	gw, proto, err := tunnel.Dial(ctx, l.Gateway, l.Fingerprint, l.Ticket)
	if err != nil {
		fmt.Fprintln(stderr, "portico-client:", err)
		return 1
	}
	defer gw.Close()
	if proto != l.Proto {
		fmt.Fprintf(stderr, "portico-client: the gateway opened a %s session but the link is for %s\n", proto, l.Proto)
		return 1
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(stderr, "portico-client: local listener:", err)
		return 1
	}
	defer ln.Close()
	port := ln.Addr().(*net.TCPAddr).Port
	cmd, cleanup, err := viewer(runtime.GOOS, l, port, os.Getenv, exec.LookPath)
	if err != nil {
		fmt.Fprintln(stderr, "portico-client:", err)
		return 1
	}
	defer cleanup()
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, stdout, stderr
	if err := cmd.Start(); err != nil {
		fmt.Fprintf(stderr, "portico-client: start %s: %v\n", cmd.Path, err)
		return 1
	}
	relayed := make(chan error, 1)
	go func() {
		// One connection only: the ticket opened one session.
		c, err := ln.Accept()
		ln.Close()
		if err != nil {
			relayed <- nil
			return
		}
		relayed <- relay.Pipe(ctx, c, gw, nil)
	}()
	werr := cmd.Wait()
	ln.Close()
	gw.Close()
	if err := <-relayed; err != nil {
		fmt.Fprintln(stderr, "portico-client: tunnel:", err)
	}
	var ee *exec.ExitError
	switch {
	case errors.As(werr, &ee):
		return ee.ExitCode()
	case werr != nil:
		fmt.Fprintln(stderr, "portico-client: viewer:", werr)
		return 1
	}
	return 0
}

// viewer builds the command that shows the session on 127.0.0.1:port, and
// a clean-up for any file it wrote.
func viewer(goos string, l native.LaunchURL, port int, getenv func(string) string, lookPath func(string) (string, error)) (*exec.Cmd, func(), error) {
	none := func() {}
	addr := "127.0.0.1:" + strconv.Itoa(port)
	if line := firstSet(getenv, ViewerEnv+"_"+strings.ToUpper(l.Proto), ViewerEnv); line != "" {
		cmd := exec.Command("sh", "-c", line)
		if goos == "windows" {
			cmd = exec.Command("cmd", "/C", line)
		}
		cmd.Env = append(os.Environ(), "PORTICO_HOST=127.0.0.1", "PORTICO_PORT="+strconv.Itoa(port),
			"PORTICO_USER="+l.User, "PORTICO_NAME="+l.Name, "PORTICO_PROTO="+l.Proto)
		return cmd, none, nil
	}
	find := func(names ...string) (string, string) {
		for _, n := range names {
			if p, err := lookPath(n); err == nil {
				return n, p
			}
		}
		return "", ""
	}
	switch l.Proto {
	case native.ProtoSSH:
		// The local port changes every launch: HostKeyAlias keys the host
		// key by resource, so known_hosts still catches a changed host.
		args := []string{"-p", strconv.Itoa(port), "-o", "HostKeyAlias=" + hostKeyAlias(l.Name)}
		if l.User != "" {
			args = append(args, "-l", l.User)
		}
		args = append(args, "127.0.0.1")
		_, ssh := find("ssh")
		if ssh == "" {
			return nil, none, errors.New("no ssh program found: install OpenSSH (on Debian: apt-get install openssh-client)")
		}
		// Started from a browser there is no terminal (desktop sessions
		// set no TERM; terminals always do): open one.
		if goos != "windows" && (getenv("TERM") == "" || !isCharDevice(os.Stdin)) {
			if _, term := find("x-terminal-emulator", "xterm"); term != "" {
				return exec.Command(term, append([]string{"-e", ssh}, args...)...), none, nil
			}
		}
		return exec.Command(ssh, args...), none, nil
	case native.ProtoVNC:
		_, v := find("vncviewer", "tvnviewer")
		if v == "" {
			return nil, none, errors.New("no VNC viewer found: install TigerVNC (on Debian: apt-get install tigervnc-viewer)")
		}
		return exec.Command(v, "127.0.0.1::"+strconv.Itoa(port)), none, nil
	case native.ProtoRDP:
		if goos == "windows" {
			f, err := os.CreateTemp("", "portico-*.rdp")
			if err != nil {
				return nil, none, fmt.Errorf("write the .rdp file: %w", err)
			}
			_, err = f.WriteString(rdpFile(l, addr).String())
			f.Close()
			if err != nil {
				os.Remove(f.Name())
				return nil, none, fmt.Errorf("write the .rdp file: %w", err)
			}
			return exec.Command("mstsc", f.Name()), func() { os.Remove(f.Name()) }, nil
		}
		name, p := find("xfreerdp3", "xfreerdp", "remmina")
		switch name {
		case "xfreerdp3":
			args := []string{"/v:" + addr, "/cert:tofu", "/title:" + l.Name}
			if l.User != "" {
				args = append(args, "/u:"+l.User)
			}
			if l.App != "" {
				// FreeRDP 3 takes the RemoteApp as one comma-separated option.
				if strings.ContainsRune(l.App+l.AppArgs+l.AppDir+l.Name, ',') {
					return nil, none, errors.New("this application's program, arguments or folder contain a comma, which xfreerdp3's /app: option cannot carry; use xfreerdp 2 or the .rdp file")
				}
				app := "/app:program:" + l.App + ",name:" + l.Name
				if l.AppArgs != "" {
					app += ",cmd:" + l.AppArgs
				}
				if l.AppDir != "" {
					app += ",workdir:" + l.AppDir
				}
				args = append(args, app)
			}
			return exec.Command(p, args...), none, nil
		case "xfreerdp":
			args := []string{"/v:" + addr, "/cert-tofu", "/t:" + l.Name}
			if l.User != "" {
				args = append(args, "/u:"+l.User)
			}
			if l.App != "" {
				args = append(args, "/app:"+l.App, "/app-name:"+l.Name)
				if l.AppArgs != "" {
					args = append(args, "/app-cmd:"+l.AppArgs)
				}
				if l.AppDir != "" {
					args = append(args, "/shell-dir:"+l.AppDir)
				}
			}
			return exec.Command(p, args...), none, nil
		case "remmina":
			target := addr
			if l.User != "" {
				target = url.PathEscape(l.User) + "@" + addr
			}
			return exec.Command(p, "-c", "rdp://"+target), none, nil
		}
		return nil, none, errors.New("no RDP client found: install FreeRDP or Remmina (on Debian: apt-get install freerdp2-x11)")
	}
	return nil, none, fmt.Errorf("no viewer for protocol %q", l.Proto)
}

func firstSet(getenv func(string) string, names ...string) string {
	for _, n := range names {
		if v := strings.TrimSpace(getenv(n)); v != "" {
			return v
		}
	}
	return ""
}

// hostKeyAlias names a resource's SSH host key in known_hosts.
func hostKeyAlias(name string) string {
	a := strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' || r == '.' {
			return r
		}
		if r >= 'A' && r <= 'Z' {
			return r + ('a' - 'A')
		}
		return '-'
	}, name)
	return "portico-" + strings.Trim(a, "-.")
}

func isCharDevice(f *os.File) bool {
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// rdpFile is the .rdp file mstsc opens for launch l through the tunnel's
// local addr, in RemoteApp mode when l names a program.
func rdpFile(l native.LaunchURL, addr string) native.RDPFile {
	f := native.RDPFile{FullAddress: addr, Username: l.User, PromptForCredentials: true}
	if l.App != "" {
		f.RemoteApp = &native.RDPRemoteApp{Program: l.App, Name: l.Name, CmdLine: l.AppArgs, WorkDir: l.AppDir}
	}
	return f
}
