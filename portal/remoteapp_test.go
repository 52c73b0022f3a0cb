package portal

import (
	"net/http/httptest"
	"strings"
	"testing"

	"portico/service/config"
	"portico/service/native"
)

func notepad() config.Resource {
	return config.Resource{ID: "np", Name: "Notepad", Kind: config.KindApplication, Protocol: config.ProtocolRDP,
		RemoteApp: &config.RemoteApp{Program: "||notepad", Path: `C:\Windows\notepad.exe`, Args: `C:\notes.txt`, WorkDir: `C:\Users`}}
}

// TestRemoteAppRDPFileAndLaunchURL: the downloaded .rdp file and the
// native client's launch URL of an application carry its RemoteApp keys.
func TestRemoteAppRDPFileAndLaunchURL(t *testing.T) {
	f := RDPFile("gw.example:443", "ticket", "alice", notepad(), config.TransferDisabled)
	for _, want := range []string{"full address:s:gw.example:443\r\n", "loadbalanceinfo:s:ticket\r\n", "remoteapplicationmode:i:1\r\n",
		"remoteapplicationprogram:s:||notepad\r\n", "remoteapplicationname:s:Notepad\r\n", `remoteapplicationcmdline:s:C:\notes.txt` + "\r\n",
		`shell working directory:s:C:\Users` + "\r\n"} {
		if !strings.Contains(f, want) {
			t.Errorf(".rdp file %q lacks %q", f, want)
		}
	}
	desk := notepad()
	desk.Kind, desk.RemoteApp = config.KindDesktop, nil
	if f := RDPFile("gw.example:443", "ticket", "alice", desk, config.TransferDisabled); strings.Contains(f, "remoteapplication") {
		t.Errorf("a desktop's .rdp file has RemoteApp keys: %q", f)
	}
	u := nativeLaunchURL(httptest.NewRequest("GET", "https://gw.example/", nil), config.NLBSettings{}, strings.Repeat("a", 64), "ticket", notepad(), "alice")
	l, err := native.ParseLaunchURL(u)
	if err != nil {
		t.Fatal(err)
	}
	if l.App != "||notepad" || l.AppArgs != `C:\notes.txt` || l.AppDir != `C:\Users` {
		t.Fatalf("launch URL %s parsed to %+v", u, l)
	}
}

// TestRemoteAppInitialProgramForTheBrowser: in the browser the program
// is the session's alternate shell (its executable path and arguments).
func TestRemoteAppInitialProgramForTheBrowser(t *testing.T) {
	shell, dir := rdpInitialProgram(notepad())
	if shell != `C:\Windows\notepad.exe C:\notes.txt` || dir != `C:\Users` {
		t.Fatalf("initial program %q in %q", shell, dir)
	}
	r := notepad()
	r.RemoteApp.Path, r.RemoteApp.Args = `C:\Program Files\App\app.exe`, ""
	if shell, _ := rdpInitialProgram(r); shell != `"C:\Program Files\App\app.exe"` {
		t.Fatalf("a path with spaces gives %q", shell)
	}
}
