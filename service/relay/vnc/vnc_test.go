package vnc

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"portico/service/config"
)

func need(t *testing.T, prog, pkg string) {
	t.Helper()
	if _, err := exec.LookPath(prog); err != nil {
		t.Fatalf("%s not found: apt-get install %s (make test installs it)", prog, pkg)
	}
}

type xvnc struct {
	port    int
	display string
}

// startXvnc runs a real TigerVNC server with VNC password authentication
// and a solid background colour.
func startXvnc(t *testing.T, password, colour string) xvnc {
	t.Helper()
	need(t, "Xvnc", "tigervnc-standalone-server")
	need(t, "vncpasswd", "tigervnc-tools")
	need(t, "xsetroot", "x11-xserver-utils")
	dir := t.TempDir()
	cmd := exec.Command("vncpasswd", "-f")
	cmd.Stdin = strings.NewReader(password + "\n")
	enc, err := cmd.Output()
	if err != nil {
		t.Fatal(err)
	}
	pw := filepath.Join(dir, "passwd")
	os.WriteFile(pw, enc, 0o600)
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	n := 100 + os.Getpid()%40
	for ; n < 400; n++ {
		if _, err := os.Stat(fmt.Sprintf("/tmp/.X%d-lock", n)); os.IsNotExist(err) {
			break
		}
	}
	var out bytes.Buffer
	srv := exec.Command("Xvnc", fmt.Sprintf(":%d", n), "-rfbport", strconv.Itoa(port), "-localhost", "-SecurityTypes", "VncAuth",
		"-PasswordFile", pw, "-geometry", "320x240", "-depth", "24", "-nolisten", "tcp")
	srv.Stdout, srv.Stderr = &out, &out
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		srv.Process.Kill()
		srv.Wait()
		if t.Failed() {
			t.Logf("Xvnc output:\n%s", out.String())
		}
	})
	deadline := time.Now().Add(15 * time.Second)
	for {
		c, err := net.Dial("tcp", "127.0.0.1:"+strconv.Itoa(port))
		if err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("Xvnc did not start: %s", out.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	d := fmt.Sprintf(":%d", n)
	if out, err := exec.Command("xsetroot", "-display", d, "-solid", colour).CombinedOutput(); err != nil {
		t.Fatalf("xsetroot: %v %s", err, out)
	}
	return xvnc{port: port, display: d}
}

// proxied starts Proxy between a test "browser" connection and the host.
func proxied(t *testing.T, host int, opt Options) (net.Conn, chan error) {
	t.Helper()
	backend, err := net.Dial("tcp", "127.0.0.1:"+strconv.Itoa(host))
	if err != nil {
		t.Fatal(err)
	}
	a, b := tcpPair(t)
	done := make(chan error, 1)
	go func() { done <- Proxy(context.Background(), b, backend, opt) }()
	t.Cleanup(func() { a.Close() })
	return a, done
}

func tcpPair(t *testing.T) (net.Conn, net.Conn) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	ch := make(chan net.Conn)
	go func() { c, _ := ln.Accept(); ch <- c }()
	a, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	return a, <-ch
}

// browserHandshake plays noVNC's side: 3.8, security None, shared.
func browserHandshake(t *testing.T, c net.Conn) (*ServerInit, error) {
	t.Helper()
	c.SetDeadline(time.Now().Add(20 * time.Second))
	r := bufio.NewReader(c)
	if _, _, err := readVersion(r); err != nil {
		return nil, err
	}
	io.WriteString(c, "RFB 003.008\n")
	var n [1]byte
	io.ReadFull(r, n[:])
	types := make([]byte, n[0])
	io.ReadFull(r, types)
	if !bytes.Equal(types, []byte{secNone}) {
		t.Fatalf("browser offered security types %v, want only None", types)
	}
	c.Write([]byte{secNone})
	var res uint32
	binary.Read(r, binary.BigEndian, &res)
	if res != 0 {
		reason, _ := readString(r, "reason")
		return nil, errors.New(reason)
	}
	c.Write([]byte{1})
	head := make([]byte, 24)
	if _, err := io.ReadFull(r, head); err != nil {
		return nil, err
	}
	name := make([]byte, binary.BigEndian.Uint32(head[20:]))
	io.ReadFull(r, name)
	si := &ServerInit{Width: binary.BigEndian.Uint16(head), Height: binary.BigEndian.Uint16(head[2:]), Name: string(name)}
	browserReaders[c] = r
	return si, nil
}

var browserReaders = map[net.Conn]*bufio.Reader{}

func setup32bpp(c net.Conn, encodings ...int32) {
	pf := []byte{cSetPixelFormat, 0, 0, 0, 32, 24, 0, 1, 0, 255, 0, 255, 0, 255, 16, 8, 0, 0, 0, 0}
	c.Write(pf)
	msg := []byte{cSetEncodings, 0, 0, byte(len(encodings))}
	for _, e := range encodings {
		msg = binary.BigEndian.AppendUint32(msg, uint32(e))
	}
	c.Write(msg)
}

func requestUpdate(c net.Conn, incremental bool, w, h uint16) {
	inc := byte(0)
	if incremental {
		inc = 1
	}
	b := []byte{cFramebufferUpdateReq, inc, 0, 0, 0, 0}
	b = binary.BigEndian.AppendUint16(b, w)
	b = binary.BigEndian.AppendUint16(b, h)
	c.Write(b)
}

// readRawUpdate reads one FramebufferUpdate of Raw rectangles and returns
// the pixel at (px,py) if a rectangle covered it.
func readRawUpdate(t *testing.T, r *bufio.Reader, px, py int) (rgb [3]byte, found bool) {
	t.Helper()
	for {
		typ, err := r.ReadByte()
		if err != nil {
			t.Fatal(err)
		}
		if typ != sFramebufferUpdate {
			skipServerMessage(t, r, typ)
			continue
		}
		var hdr [3]byte
		io.ReadFull(r, hdr[:])
		n := int(binary.BigEndian.Uint16(hdr[1:]))
		for i := 0; i < n; i++ {
			var rh [12]byte
			io.ReadFull(r, rh[:])
			x, y := int(binary.BigEndian.Uint16(rh[0:])), int(binary.BigEndian.Uint16(rh[2:]))
			w, h := int(binary.BigEndian.Uint16(rh[4:])), int(binary.BigEndian.Uint16(rh[6:]))
			enc := int32(binary.BigEndian.Uint32(rh[8:]))
			switch enc {
			case 0:
			case -239: // cursor shape: pixels + mask
				io.ReadFull(r, make([]byte, w*h*4+(w+7)/8*h))
				continue
			case -223, -308:
				skip := 0
				if enc == -308 {
					var n [4]byte
					io.ReadFull(r, n[:])
					skip = 16 * int(n[0])
				}
				io.ReadFull(r, make([]byte, skip))
				continue
			default:
				t.Fatalf("asked for Raw, got encoding %d", enc)
			}
			data := make([]byte, w*h*4)
			if _, err := io.ReadFull(r, data); err != nil {
				t.Fatal(err)
			}
			if px >= x && px < x+w && py >= y && py < y+h {
				o := ((py-y)*w + (px - x)) * 4
				rgb, found = [3]byte{data[o+2], data[o+1], data[o]}, true
			}
		}
		return rgb, found
	}
}

func skipServerMessage(t *testing.T, r *bufio.Reader, typ byte) {
	t.Helper()
	f := &framer{r: r, w: bufio.NewWriter(io.Discard)}
	r.UnreadByte()
	st := &state{}
	st.bpp.Store(4)
	if err := f.serverMessage(st, Options{Clipboard: config.TransferBidirectional, MaxCutText: 1 << 20}); err != nil {
		t.Fatalf("skip message %d: %v", typ, err)
	}
}

func TestWrongPasswordTellsTheBrowser(t *testing.T) {
	x := startXvnc(t, "right-pw", "#00ff00")
	c, done := proxied(t, x.port, Options{Password: "wrong-pw"})
	_, err := browserHandshake(t, c)
	if err == nil || !strings.Contains(err.Error(), "refused the password") {
		t.Fatalf("browser saw %v", err)
	}
	var ae *AuthError
	if perr := <-done; !errors.As(perr, &ae) {
		t.Fatalf("Proxy returned %v", perr)
	}
}

func TestScreenPixelsAndFramingStayInSync(t *testing.T) {
	x := startXvnc(t, "secret12", "#ff0000")
	c, done := proxied(t, x.port, Options{Password: "secret12", Clipboard: config.TransferBidirectional})
	t.Cleanup(func() {
		if t.Failed() {
			select {
			case err := <-done:
				t.Logf("proxy ended with: %v", err)
			case <-time.After(time.Second):
			}
		}
	})
	si, err := browserHandshake(t, c)
	if err != nil {
		t.Fatal(err)
	}
	if si.Width != 320 || si.Height != 240 {
		t.Fatalf("ServerInit %dx%d", si.Width, si.Height)
	}
	r := browserReaders[c]
	setup32bpp(c, 0)
	requestUpdate(c, false, si.Width, si.Height)
	rgb, ok := readRawUpdate(t, r, 10, 10)
	if !ok || rgb != [3]byte{255, 0, 0} {
		t.Fatalf("pixel (10,10) = %v (found %v), want red", rgb, ok)
	}
	// Now the compressed encodings: many updates while the screen changes;
	// if any message were mis-framed the stream would desynchronise.
	setup32bpp(c, 16, 5, 1, -239, -223, -308, 0xC0A1E5CE-1<<32, 7)
	colours := []string{"#0000ff", "#ffff00", "#00ffff", "#123456"}
	f := &framer{r: r, w: bufio.NewWriter(io.Discard)}
	st := &state{}
	st.bpp.Store(4)
	for _, col := range colours {
		exec.Command("xsetroot", "-display", x.display, "-solid", col).Run()
		requestUpdate(c, false, si.Width, si.Height)
		for {
			typ, _ := r.Peek(1)
			if err := f.serverMessage(st, Options{Clipboard: config.TransferBidirectional, MaxCutText: 1 << 20}); err != nil {
				t.Fatalf("after %s: %v", col, err)
			}
			if typ[0] == sFramebufferUpdate {
				break
			}
		}
	}
	// Back to Raw (TigerVNC drops clients that withdraw cursor support
	// mid-session, so Cursor stays): the final colour must read correctly.
	setup32bpp(c, 0, -239)
	for i := 0; i < 20; i++ {
		requestUpdate(c, false, si.Width, si.Height)
		rgb, ok = readRawUpdate(t, r, 5, 5)
		if ok {
			break
		}
	}
	if rgb != [3]byte{0x12, 0x34, 0x56} {
		t.Fatalf("final pixel %v, want 12 34 56", rgb)
	}
}

func xclipOut(display string) string {
	out, _ := exec.Command("xclip", "-display", display, "-o", "-selection", "clipboard").Output()
	return string(out)
}

func TestClipboardClientToServerEnforcedOnTheWire(t *testing.T) {
	need(t, "xclip", "xclip")
	for _, tc := range []struct {
		policy config.Transfer
		arrive bool
	}{{config.TransferBidirectional, true}, {config.TransferServerToClient, false}, {config.TransferDisabled, false}} {
		t.Run(string(tc.policy), func(t *testing.T) {
			x := startXvnc(t, "secret12", "#000000")
			var dropped [2]atomic.Int64
			c, _ := proxied(t, x.port, Options{Password: "secret12", Clipboard: tc.policy, Dropped: &dropped})
			if _, err := browserHandshake(t, c); err != nil {
				t.Fatal(err)
			}
			text := "from-browser-" + string(tc.policy)
			msg := append([]byte{cClientCutText, 0, 0, 0}, binary.BigEndian.AppendUint32(nil, uint32(len(text)))...)
			c.Write(append(msg, text...))
			// A key event after it proves the session stays in sync either way.
			c.Write([]byte{cKeyEvent, 0, 0, 0, 0, 0, 0xff, 0xe1})
			deadline := time.Now().Add(5 * time.Second)
			got := ""
			for time.Now().Before(deadline) {
				if got = xclipOut(x.display); got == text {
					break
				}
				if !tc.arrive && dropped[0].Load() == 1 {
					time.Sleep(500 * time.Millisecond) // give a wrongly forwarded text time to land
					got = xclipOut(x.display)
					break
				}
				time.Sleep(100 * time.Millisecond)
			}
			if (got == text) != tc.arrive {
				t.Fatalf("clipboard on the host = %q, arrive=%v", got, tc.arrive)
			}
			if !tc.arrive && dropped[0].Load() != 1 {
				t.Fatalf("dropped count %d", dropped[0].Load())
			}
		})
	}
}

func TestClipboardServerToClientEnforcedOnTheWire(t *testing.T) {
	need(t, "xclip", "xclip")
	for _, tc := range []struct {
		policy config.Transfer
		arrive bool
	}{{config.TransferServerToClient, true}, {config.TransferClientToServer, false}} {
		t.Run(string(tc.policy), func(t *testing.T) {
			x := startXvnc(t, "secret12", "#000000")
			var dropped [2]atomic.Int64
			c, _ := proxied(t, x.port, Options{Password: "secret12", Clipboard: tc.policy, Dropped: &dropped})
			if _, err := browserHandshake(t, c); err != nil {
				t.Fatal(err)
			}
			r := browserReaders[c]
			setup32bpp(c, 0)
			text := "from-host-" + string(tc.policy)
			xc := exec.Command("xclip", "-display", x.display, "-i", "-selection", "clipboard", "-loops", "5")
			xc.Stdin = strings.NewReader(text)
			if err := xc.Start(); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { xc.Process.Kill(); xc.Wait() })
			c.SetReadDeadline(time.Now().Add(4 * time.Second))
			got := ""
			for got == "" {
				typ, err := r.ReadByte()
				if err != nil {
					break // deadline: nothing more came
				}
				if typ == sServerCutText {
					var h [7]byte
					io.ReadFull(r, h[:])
					b := make([]byte, binary.BigEndian.Uint32(h[3:]))
					io.ReadFull(r, b)
					got = string(b)
					break
				}
				skipServerMessage(t, r, typ)
			}
			if (got == text) != tc.arrive {
				t.Fatalf("browser received %q, arrive=%v (dropped %d)", got, tc.arrive, dropped[1].Load())
			}
			if !tc.arrive && dropped[1].Load() == 0 {
				t.Fatal("host sent no cut text to drop: the test proved nothing")
			}
		})
	}
}

// fakeHost speaks just enough RFB 3.8 with None security to let tests see
// exactly what the proxy forwards.
func fakeHost(t *testing.T) (net.Conn, chan []byte) {
	a, b := tcpPair(t)
	got := make(chan []byte, 1)
	go func() {
		io.WriteString(b, "RFB 003.008\n")
		v := make([]byte, 12)
		io.ReadFull(b, v)
		b.Write([]byte{1, secNone})
		io.ReadFull(b, v[:1])
		b.Write([]byte{0, 0, 0, 0})
		io.ReadFull(b, v[:1])
		si := []byte{0, 10, 0, 10, 32, 24, 0, 1, 0, 255, 0, 255, 0, 255, 16, 8, 0, 0, 0, 0, 0, 0, 0, 1, 'x'}
		b.Write(si)
		b.SetReadDeadline(time.Now().Add(2 * time.Second))
		all, _ := io.ReadAll(b)
		got <- all
	}()
	return a, got
}

func TestSetEncodingsFilteredAndExtendedClipboardRemoved(t *testing.T) {
	host, got := fakeHost(t)
	a, b := tcpPair(t)
	go Proxy(context.Background(), b, host, Options{Clipboard: config.TransferBidirectional})
	if _, err := browserHandshake(t, a); err != nil {
		t.Fatal(err)
	}
	setup32bpp(a, 16, 7, -260, 0xC0A1E5CE-1<<32, -239, -6)
	time.Sleep(200 * time.Millisecond)
	a.Close()
	sent := <-got
	// SetPixelFormat (20 bytes), then SetEncodings with only ZRLE and Cursor:
	// Tight, TightPNG, Extended Clipboard and the unknown -6 are removed.
	want := []byte{cSetEncodings, 0, 0, 2, 0, 0, 0, 16, 0xff, 0xff, 0xff, 0x11}
	if len(sent) < 20+len(want) || !bytes.Equal(sent[20:20+len(want)], want) {
		t.Fatalf("host received % x", sent)
	}
}

// FuzzServerMessages frames arbitrary host output: it must never panic,
// and must stop at the end of input.
func FuzzServerMessages(f *testing.F) {
	f.Add([]byte{0, 0, 0, 1, 0, 0, 0, 0, 0, 2, 0, 2, 0, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16})
	f.Add([]byte{3, 0, 0, 0, 0, 0, 0, 2, 'h', 'i', 2, 150})
	f.Add([]byte{0, 0, 0, 1, 0, 0, 0, 0, 0, 32, 0, 16, 0, 0, 0, 5, 1})
	f.Fuzz(func(t *testing.T, data []byte) {
		fr := &framer{r: bufio.NewReader(bytes.NewReader(data)), w: bufio.NewWriter(io.Discard)}
		st := &state{}
		st.bpp.Store(4)
		for i := 0; i < 1000; i++ {
			if fr.serverMessage(st, Options{Clipboard: config.TransferServerToClient, MaxCutText: 1 << 16}) != nil {
				return
			}
		}
	})
}

// FuzzClientMessages frames arbitrary browser input the same way.
func FuzzClientMessages(f *testing.F) {
	f.Add([]byte{2, 0, 0, 2, 0, 0, 0, 16, 0xC0, 0xA1, 0xE5, 0xCE, 6, 0, 0, 0, 0, 0, 0, 1, 'x'})
	f.Add([]byte{0, 0, 0, 0, 32, 24, 0, 1, 0, 255, 0, 255, 0, 255, 16, 8, 0, 0, 0, 0, 5, 0, 0, 1, 0, 1})
	f.Add([]byte{255, 0, 0, 1, 0, 0, 0, 65, 0, 0, 0, 30, 248, 0, 0, 0, 0, 0, 0, 0, 3, 1, 2, 3})
	f.Fuzz(func(t *testing.T, data []byte) {
		fr := &framer{r: bufio.NewReader(bytes.NewReader(data)), w: bufio.NewWriter(io.Discard)}
		st := &state{}
		for i := 0; i < 1000; i++ {
			if fr.clientMessage(st, Options{Clipboard: config.TransferClientToServer, MaxCutText: 1 << 16}) != nil {
				return
			}
		}
	})
}
