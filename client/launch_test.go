package main

import (
	"errors"
	"os"
	"strings"
	"testing"

	"portico/service/native"
)

func TestViewerCommands(t *testing.T) {
	have := func(names ...string) func(string) (string, error) {
		return func(n string) (string, error) {
			for _, h := range names {
				if h == n {
					return "/usr/bin/" + n, nil
				}
			}
			return "", errors.New("not found")
		}
	}
	noEnv := func(string) string { return "" }
	l := func(proto, user string) native.LaunchURL {
		return native.LaunchURL{Gateway: "gw:1", Proto: proto, Name: "Build Server #2", User: user}
	}
	for _, tc := range []struct {
		name, goos string
		l          native.LaunchURL
		look       func(string) (string, error)
		want       string // the command line, or the error text
	}{
		{"ssh", "linux", l("ssh", "alice"), have("ssh"), "/usr/bin/ssh -p 4000 -o HostKeyAlias=portico-build-server--2 -l alice 127.0.0.1"},
		{"ssh no user", "linux", l("ssh", ""), have("ssh"), "/usr/bin/ssh -p 4000 -o HostKeyAlias=portico-build-server--2 127.0.0.1"},
		{"ssh missing", "linux", l("ssh", ""), have(), "no ssh program found"},
		{"ssh without a terminal", "linux", l("ssh", ""), have("ssh", "xterm"), "/usr/bin/xterm -e /usr/bin/ssh -p 4000"},
		{"vnc", "linux", l("vnc", ""), have("vncviewer"), "/usr/bin/vncviewer 127.0.0.1::4000"},
		{"xfreerdp", "linux", l("rdp", "bob"), have("xfreerdp", "remmina"), "/usr/bin/xfreerdp /v:127.0.0.1:4000 /cert-tofu /t:Build Server #2 /u:bob"},
		{"xfreerdp3 first", "linux", l("rdp", ""), have("xfreerdp", "xfreerdp3"), "/usr/bin/xfreerdp3 /v:127.0.0.1:4000 /cert:tofu /title:Build Server #2"},
		{"remmina", "linux", l("rdp", "bob"), have("remmina"), "/usr/bin/remmina -c rdp://bob@127.0.0.1:4000"},
		{"no rdp client", "linux", l("rdp", ""), have(), "no RDP client found"},
	} {
		cmd, cleanup, err := viewer(tc.goos, tc.l, 4000, noEnv, tc.look)
		got := ""
		if err != nil {
			got = err.Error()
		} else {
			got = strings.Join(cmd.Args, " ")
			cleanup()
		}
		if !strings.Contains(got, tc.want) {
			t.Errorf("%s: got %q, want %q", tc.name, got, tc.want)
		}
	}
}

func TestViewerMstscFile(t *testing.T) {
	cmd, cleanup, err := viewer("windows", native.LaunchURL{Proto: "rdp", User: "OFFICE\\bob"}, 4000, func(string) string { return "" }, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(cmd.Args) != 2 || cmd.Args[0] != "mstsc" {
		t.Fatalf("mstsc command %v", cmd.Args)
	}
	b, err := os.ReadFile(cmd.Args[1])
	if err != nil || string(b) != "full address:s:127.0.0.1:4000\r\nusername:s:OFFICE\\bob\r\nprompt for credentials:i:1\r\n" {
		t.Fatalf(".rdp file %q %v", b, err)
	}
	cleanup()
	if _, err := os.Stat(cmd.Args[1]); !os.IsNotExist(err) {
		t.Fatal("the .rdp file outlived the session")
	}
}

func TestViewerOverrideKeepsURLFieldsOutOfTheCommand(t *testing.T) {
	env := map[string]string{ViewerEnv: "generic", ViewerEnv + "_SSH": `ssh-viewer "$PORTICO_PORT"`}
	l := native.LaunchURL{Proto: "ssh", User: "alice", Name: "x; rm -rf /"}
	cmd, _, err := viewer("linux", l, 4000, func(k string) string { return env[k] }, nil)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(cmd.Args, " ") != `sh -c ssh-viewer "$PORTICO_PORT"` {
		t.Fatalf("override command %v", cmd.Args)
	}
	vars := strings.Join(cmd.Env, "\n")
	for _, v := range []string{"PORTICO_PORT=4000", "PORTICO_HOST=127.0.0.1", "PORTICO_USER=alice", "PORTICO_NAME=x; rm -rf /", "PORTICO_PROTO=ssh"} {
		if !strings.Contains(vars, v) {
			t.Errorf("viewer environment lacks %s", v)
		}
	}
	l.Proto = "vnc"
	if cmd, _, _ := viewer("linux", l, 4000, func(k string) string { return env[k] }, nil); strings.Join(cmd.Args, " ") != "sh -c generic" {
		t.Fatalf("generic override %v", cmd.Args)
	}
}

// TestRemoteAppNativeCommandLines: an application launch opens its
// program in RemoteApp mode in every viewer the client starts.
func TestRemoteAppNativeCommandLines(t *testing.T) {
	l := native.LaunchURL{Proto: "rdp", Name: "Notepad", App: "||notepad", AppArgs: "C:\\notes.txt", AppDir: "C:\\Users"}
	look := func(want string) func(string) (string, error) {
		return func(n string) (string, error) {
			if n == want {
				return "/usr/bin/" + n, nil
			}
			return "", os.ErrNotExist
		}
	}
	cmd, _, err := viewer("linux", l, 4000, func(string) string { return "" }, look("xfreerdp"))
	if err != nil {
		t.Fatal(err)
	}
	got := strings.Join(cmd.Args, " ")
	for _, want := range []string{"/app:||notepad", "/app-name:Notepad", "/app-cmd:C:\\notes.txt", "/shell-dir:C:\\Users"} {
		if !strings.Contains(got, want) {
			t.Errorf("xfreerdp %q lacks %q", got, want)
		}
	}
	cmd, _, err = viewer("linux", l, 4000, func(string) string { return "" }, look("xfreerdp3"))
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(cmd.Args, " "); !strings.Contains(got, "/app:program:||notepad,name:Notepad,cmd:C:\\notes.txt,workdir:C:\\Users") {
		t.Errorf("xfreerdp3 %q", got)
	}
	cmd, cleanup, err := viewer("windows", l, 4000, func(string) string { return "" }, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer cleanup()
	b, _ := os.ReadFile(cmd.Args[1])
	for _, want := range []string{"remoteapplicationmode:i:1\r\n", "remoteapplicationprogram:s:||notepad\r\n", "remoteapplicationname:s:Notepad\r\n",
		"remoteapplicationcmdline:s:C:\\notes.txt\r\n", "shell working directory:s:C:\\Users\r\n"} {
		if !strings.Contains(string(b), want) {
			t.Errorf("mstsc's .rdp file %q lacks %q", b, want)
		}
	}
	// A desktop launch has none of it.
	cmd, cleanup2, _ := viewer("windows", native.LaunchURL{Proto: "rdp", Name: "Desk"}, 4000, func(string) string { return "" }, nil)
	defer cleanup2()
	if b, _ := os.ReadFile(cmd.Args[1]); strings.Contains(string(b), "remoteapplication") {
		t.Errorf("a desktop's .rdp file has RemoteApp keys: %q", b)
	}
}
