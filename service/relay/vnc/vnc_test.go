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
	"runtime"
	"strconv"
	"strings"
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
	if err := os.WriteFile(pw, enc, 0o600); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	// Other test packages start X servers at the same time: when Xvnc
	// finds its display taken it exits, and the next display is tried.
	var out *bytes.Buffer
	n := 100 + os.Getpid()%40
	for started := false; !started; n++ {
		for ; n < 400; n++ {
			if _, err := os.Stat(fmt.Sprintf("/tmp/.X%d-lock", n)); os.IsNotExist(err) {
				break
			}
		}
		out = &bytes.Buffer{}
		srv := exec.Command("Xvnc", fmt.Sprintf(":%d", n), "-rfbport", strconv.Itoa(port), "-localhost", "-SecurityTypes", "VncAuth",
			"-PasswordFile", pw, "-geometry", "320x240", "-depth", "24", "-nolisten", "tcp")
		srv.Stdout, srv.Stderr = out, out
		if err := srv.Start(); err != nil {
			t.Fatal(err)
		}
		exited := make(chan struct{})
		go func() { srv.Wait(); close(exited) }()
		deadline := time.Now().Add(15 * time.Second)
		for !started {
			if c, err := net.Dial("tcp", "127.0.0.1:"+strconv.Itoa(port)); err == nil {
				c.Close()
				started = true
				break
			}
			select {
			case <-exited:
			default:
				if time.Now().After(deadline) {
					srv.Process.Kill()
					t.Fatalf("Xvnc did not start: %s", out.String())
				}
				time.Sleep(50 * time.Millisecond)
				continue
			}
			if n >= 399 {
				t.Fatalf("Xvnc did not start on any display: %s", out.String())
			}
			break
		}
		if started {
			log := out
			t.Cleanup(func() {
				srv.Process.Kill()
				<-exited
				if t.Failed() {
					t.Logf("Xvnc output:\n%s", log.String())
				}
			})
			break
		}
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
func browserHandshake(t *testing.T, c net.Conn) (*ServerInit, *bufio.Reader, error) {
	t.Helper()
	c.SetDeadline(time.Now().Add(20 * time.Second))
	r := bufio.NewReader(c)
	if _, _, err := readVersion(r); err != nil {
		return nil, nil, err
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
		return nil, nil, errors.New(reason)
	}
	c.Write([]byte{1})
	head := make([]byte, 24)
	if _, err := io.ReadFull(r, head); err != nil {
		return nil, nil, err
	}
	name := make([]byte, binary.BigEndian.Uint32(head[20:]))
	io.ReadFull(r, name)
	si := &ServerInit{Width: binary.BigEndian.Uint16(head), Height: binary.BigEndian.Uint16(head[2:]), Name: string(name)}
	c.SetDeadline(time.Now().Add(40 * time.Second)) // only to avoid hangs
	return si, r, nil
}

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
	_, _, err := browserHandshake(t, c)
	if err == nil || !strings.Contains(err.Error(), "refused the credentials") {
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
	si, r, err := browserHandshake(t, c)
	if err != nil {
		t.Fatal(err)
	}
	if si.Width != 320 || si.Height != 240 {
		t.Fatalf("ServerInit %dx%d", si.Width, si.Height)
	}
	setup32bpp(c, 0)
	requestUpdate(c, false, si.Width, si.Height)
	rgb, ok := readRawUpdate(t, r, 10, 10)
	if !ok || rgb != [3]byte{255, 0, 0} {
		t.Fatalf("pixel (10,10) = %v (found %v), want red", rgb, ok)
	}
	// Now the compressed encodings, one at a time: many updates while an
	// xterm is typed into and the background changes. A single mis-framed
	// byte would desynchronise the stream and fail a later message.
	need(t, "xterm", "xterm")
	need(t, "xdotool", "xdotool")
	xt := exec.Command("xterm", "-display", x.display, "-geometry", "30x6+20+20")
	if err := xt.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { xt.Process.Kill(); xt.Wait() })
	xdo := func(args ...string) {
		t.Helper()
		cmd := exec.Command("xdotool", args...)
		cmd.Env = append(os.Environ(), "DISPLAY="+x.display)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("xdotool %v: %v %s", args, err, out)
		}
	}
	// Wait for the xterm's window and put the pointer on it: with no window
	// manager, keyboard focus follows the pointer.
	xdo("search", "--sync", "--class", "xterm")
	xdo("mousemove", "--sync", "60", "40")
	f := &framer{r: r, w: bufio.NewWriter(io.Discard)}
	st := &state{}
	st.bpp.Store(4)
	opt := Options{Clipboard: config.TransferBidirectional, MaxCutText: 1 << 20}
	colours := []string{"#0000ff", "#ffff00", "#00ffff", "#123456"}
	for _, enc := range []int32{16, 5} {
		// Extended Clipboard and Tight are asked for too: the proxy must
		// strip them, or the host would use Tight and framing would fail.
		setup32bpp(c, 7, enc, 1, -239, -223, -308, 0xC0A1E5CE-1<<32)
		seen := map[int32]int{}
		updates := 0
		for i := 0; i < 12; i++ {
			xdo("type", "--delay", "1", fmt.Sprintf("echo %d%d ", enc, i))
			if i%3 == 0 {
				exec.Command("xsetroot", "-display", x.display, "-solid", colours[i/3]).Run()
			}
			requestUpdate(c, i%4 != 0, si.Width, si.Height)
			for {
				typ, err := r.Peek(1)
				if err != nil {
					t.Fatalf("encoding %d, round %d: %v", enc, i, err)
				}
				if typ[0] == sFramebufferUpdate {
					if h, err := r.Peek(16); err == nil && binary.BigEndian.Uint16(h[2:]) > 0 {
						seen[int32(binary.BigEndian.Uint32(h[12:]))]++
					}
				}
				if err := f.serverMessage(st, opt); err != nil {
					t.Fatalf("encoding %d, round %d: %v", enc, i, err)
				}
				if typ[0] == sFramebufferUpdate {
					updates++
					break
				}
			}
		}
		if seen[enc] == 0 {
			t.Fatalf("asked for encoding %d, updates began with %v", enc, seen)
		}
		t.Logf("encoding %d: %d updates, first rectangles %v", enc, updates, seen)
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
			var stats Stats
			c, _ := proxied(t, x.port, Options{Password: "secret12", Clipboard: tc.policy, Stats: &stats})
			if _, _, err := browserHandshake(t, c); err != nil {
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
				if !tc.arrive && stats.DroppedCutText[ClientToServer].Load() == 1 {
					time.Sleep(500 * time.Millisecond) // give a wrongly forwarded text time to land
					got = xclipOut(x.display)
					break
				}
				time.Sleep(100 * time.Millisecond)
			}
			if (got == text) != tc.arrive {
				t.Fatalf("clipboard on the host = %q, arrive=%v", got, tc.arrive)
			}
			if !tc.arrive && stats.DroppedCutText[ClientToServer].Load() != 1 {
				t.Fatalf("dropped count %d", stats.DroppedCutText[ClientToServer].Load())
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
			var stats Stats
			c, _ := proxied(t, x.port, Options{Password: "secret12", Clipboard: tc.policy, Stats: &stats})
			_, r, err := browserHandshake(t, c)
			if err != nil {
				t.Fatal(err)
			}
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
				t.Fatalf("browser received %q, arrive=%v (dropped %d)", got, tc.arrive, stats.DroppedCutText[ServerToClient].Load())
			}
			if !tc.arrive && stats.DroppedCutText[ServerToClient].Load() == 0 {
				t.Fatal("host sent no cut text to drop: the test proved nothing")
			}
		})
	}
}

// hostHandshake plays a host's side of RFB 3.8 with None security and a
// 10×10 32-bit desktop named "x".
func hostHandshake(b net.Conn) {
	io.WriteString(b, "RFB 003.008\n")
	v := make([]byte, 12)
	io.ReadFull(b, v)
	b.Write([]byte{1, secNone})
	io.ReadFull(b, v[:1])
	b.Write([]byte{0, 0, 0, 0})
	io.ReadFull(b, v[:1])
	b.Write([]byte{0, 10, 0, 10, 32, 24, 0, 1, 0, 255, 0, 255, 0, 255, 16, 8, 0, 0, 0, 0, 0, 0, 0, 1, 'x'})
}

// fakeHost speaks just enough RFB 3.8 with None security to let tests see
// exactly what the proxy forwards.
func fakeHost(t *testing.T) (net.Conn, chan []byte) {
	a, b := tcpPair(t)
	got := make(chan []byte, 1)
	go func() {
		hostHandshake(b)
		b.SetReadDeadline(time.Now().Add(2 * time.Second))
		all, _ := io.ReadAll(b)
		got <- all
	}()
	return a, got
}

func TestSetEncodingsFilteredAndExtendedClipboardRemoved(t *testing.T) {
	host, got := fakeHost(t)
	a, b := tcpPair(t)
	done := make(chan error, 1)
	go func() { done <- Proxy(context.Background(), b, host, Options{Clipboard: config.TransferBidirectional}) }()
	si, _, err := browserHandshake(t, a)
	if err != nil {
		t.Fatal(err)
	}
	if si.Width != 10 || si.Height != 10 || si.Name != "x" {
		t.Fatalf("browser got ServerInit %+v", si)
	}
	setup32bpp(a, 16, 7, -260, 0xC0A1E5CE-1<<32, -239, -6, -250)
	a.Close() // Proxy must flush what it framed, then close the host.
	<-done
	sent := <-got
	// SetPixelFormat (20 bytes), then SetEncodings with only ZRLE, Cursor
	// and the quality level: Tight, TightPNG, Extended Clipboard and the
	// unknown -6 are removed.
	want := []byte{cSetEncodings, 0, 0, 3, 0, 0, 0, 16, 0xff, 0xff, 0xff, 0x11, 0xff, 0xff, 0xff, 0x06}
	if !bytes.Equal(sent[min(20, len(sent)):], want) {
		t.Fatalf("host received % x", sent)
	}
}

func TestContextCancelEndsProxyAndClosesBoth(t *testing.T) {
	host, got := fakeHost(t)
	a, b := tcpPair(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Proxy(ctx, b, host, Options{}) }()
	if _, _, err := browserHandshake(t, a); err != nil {
		t.Fatal(err)
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("Proxy returned %v, want context.Canceled", err)
	}
	<-got // the host saw its connection closed
	a.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := a.Read(make([]byte, 1)); !errors.Is(err, io.EOF) {
		t.Fatalf("browser read after cancel: %v, want EOF", err)
	}
}

func TestVNCAuthResponseKnownAnswer(t *testing.T) {
	// Known answer computed independently with OpenSSL:
	// key = bit-reversed "password" bytes, DES-ECB over the challenge.
	challenge := []byte("0123456789abcdef")
	got, err := vncAuthResponse("password-is-truncated", challenge)
	if err != nil {
		t.Fatal(err)
	}
	want := "5645abeb5f1e6475e8feb11beb66ea19"
	if fmt.Sprintf("%x", got) != want {
		t.Fatalf("response %x, want %s", got, want)
	}
}

// splitReader hands out its parts one Read at a time, so a message split
// across TCP segments can be replayed exactly.
type splitReader struct{ parts [][]byte }

func (s *splitReader) Read(p []byte) (int, error) {
	for len(s.parts) > 0 && len(s.parts[0]) == 0 {
		s.parts = s.parts[1:]
	}
	if len(s.parts) == 0 {
		return 0, io.EOF
	}
	n := copy(p, s.parts[0])
	s.parts[0] = s.parts[0][n:]
	return n, nil
}

func cat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

func u16(v int) []byte { return binary.BigEndian.AppendUint16(nil, uint16(v)) }
func u32(v int) []byte { return binary.BigEndian.AppendUint32(nil, uint32(v)) }
func fill(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7 + 3)
	}
	return b
}

// rect builds a FramebufferUpdate rectangle header.
func rect(w, h int, enc int32, payload ...[]byte) []byte {
	return cat(u16(1), u16(2), u16(w), u16(h), u32(int(enc)), cat(payload...))
}

// update builds a FramebufferUpdate with the given rectangles.
func update(rects ...[]byte) []byte {
	return cat([]byte{sFramebufferUpdate, 0}, u16(len(rects)), cat(rects...))
}

// frameAll runs one framer step per expected message over data split at
// cut, and returns what it forwarded.
func frameAll(t *testing.T, data []byte, cut int, msgs int, step func(f *framer) error) []byte {
	t.Helper()
	in := &splitReader{parts: [][]byte{bytes.Clone(data[:cut]), bytes.Clone(data[cut:])}}
	var out bytes.Buffer
	f := newFramer(in, &out)
	for i := 0; i < msgs; i++ {
		if err := step(f); err != nil {
			t.Fatalf("cut at %d: message %d: %v", cut, i, err)
		}
	}
	if err := step(f); !errors.Is(err, io.EOF) {
		t.Fatalf("cut at %d: after %d messages got %v, want EOF (framing ate too little)", cut, msgs, err)
	}
	f.w.Flush()
	return out.Bytes()
}

func TestServerFramingEveryEncodingEverySplit(t *testing.T) {
	bell := []byte{sBell}
	tile := func(sub byte, data ...[]byte) []byte { return cat([]byte{sub}, cat(data...)) }
	for _, tc := range []struct {
		name string
		bpp  int32
		msg  []byte
	}{
		{"raw", 4, update(rect(3, 2, 0, fill(24)))},
		{"raw 8bpp", 1, update(rect(3, 2, 0, fill(6)))},
		{"copyrect", 4, update(rect(3, 2, 1, fill(4)))},
		{"rre", 4, update(rect(30, 20, 2, u32(2), fill(4), fill(2*12)))},
		{"hextile", 4, update(rect(20, 18, 5,
			tile(1, fill(16*16*4)),                      // raw tile 16x16
			tile(2|4|8, fill(8), []byte{2}, fill(2*2)),  // bg+fg, 2 plain subrects (4x16 tile)
			tile(2|8|16, fill(4), []byte{1}, fill(4+2)), // coloured subrect (16x2 tile)
			tile(0)))}, // 4x2 tile: same background
		{"hextile 16bpp", 2, update(rect(17, 1, 5, tile(1, fill(16*2)), tile(2, fill(2))))},
		{"zrle", 4, update(rect(64, 64, 16, u32(5), fill(5)))},
		{"cursor", 4, update(rect(10, 3, -239, fill(10*3*4), fill(2*3)))},
		{"desktop size", 4, update(rect(640, 480, -223))},
		{"extended desktop size", 4, update(rect(640, 480, -308, []byte{2, 0, 0, 0}, fill(32)))},
		{"desktop name", 4, update(rect(0, 0, -307, u32(3), []byte("abc")))},
		{"qemu led", 4, update(rect(0, 0, -261, []byte{7}))},
		{"several rects", 4, update(rect(1, 1, 0, fill(4)), rect(2, 2, 16, u32(1), fill(1)), rect(1, 1, 1, fill(4)))},
		{"last rect", 4, cat([]byte{sFramebufferUpdate, 0, 0xff, 0xff}, rect(1, 1, 0, fill(4)), rect(0, 0, -224))},
		{"colour map", 4, cat([]byte{sSetColourMap, 0, 0, 0}, u16(2), fill(12))},
		{"cut text", 4, cat([]byte{sServerCutText, 0, 0, 0}, u32(5), []byte("hello"))},
		{"fence", 4, cat([]byte{sFence, 0, 0, 0}, u32(1), []byte{3}, fill(3))},
		{"xvp", 4, []byte{sXVP, 0, 1, 1}},
		{"end of continuous updates", 4, []byte{sEndOfContinuous}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			data := cat(tc.msg, bell)
			st := &state{}
			st.bpp.Store(tc.bpp)
			opt := Options{Clipboard: config.TransferBidirectional, MaxCutText: 100}
			for cut := 0; cut <= len(data); cut++ {
				out := frameAll(t, data, cut, 2, func(f *framer) error { return f.serverMessage(st, opt) })
				if !bytes.Equal(out, data) {
					t.Fatalf("cut at %d: forwarded % x\nwant % x", cut, out, data)
				}
			}
		})
	}
}

func TestClientFramingEveryMessageEverySplit(t *testing.T) {
	key := []byte{cKeyEvent, 1, 0, 0, 0, 0, 0, 0x61}
	for _, tc := range []struct {
		name string
		msg  []byte
	}{
		{"set pixel format", []byte{cSetPixelFormat, 0, 0, 0, 16, 16, 0, 1, 0, 31, 0, 63, 0, 31, 11, 5, 0, 0, 0, 0}},
		{"set encodings", cat([]byte{cSetEncodings, 0}, u16(2), u32(16), u32(5))},
		{"update request", []byte{cFramebufferUpdateReq, 1, 0, 0, 0, 0, 1, 0, 1, 0}},
		{"key", key},
		{"pointer", []byte{cPointerEvent, 1, 0, 5, 0, 6}},
		{"cut text", cat([]byte{cClientCutText, 0, 0, 0}, u32(3), []byte("abc"))},
		{"continuous updates", []byte{cEnableContinuousUpdates, 1, 0, 0, 0, 0, 1, 0, 1, 0}},
		{"fence", cat([]byte{cFence, 0, 0, 0}, u32(0x80000001), []byte{2}, fill(2))},
		{"xvp", []byte{cXVP, 0, 1, 2}},
		{"set desktop size", cat([]byte{cSetDesktopSize, 0}, u16(800), u16(600), []byte{2, 0}, fill(32))},
		{"qemu key", cat([]byte{cQEMU, 0}, u16(1), u32(0x61), u32(30))},
	} {
		t.Run(tc.name, func(t *testing.T) {
			data := cat(tc.msg, key)
			st := &state{}
			opt := Options{Clipboard: config.TransferBidirectional, MaxCutText: 100}
			for cut := 0; cut <= len(data); cut++ {
				out := frameAll(t, data, cut, 2, func(f *framer) error { return f.clientMessage(st, opt) })
				if !bytes.Equal(out, data) {
					t.Fatalf("cut at %d: forwarded % x\nwant % x", cut, out, data)
				}
			}
			if tc.msg[0] == cSetPixelFormat && st.bpp.Load() != 2 {
				t.Fatalf("bytes per pixel after SetPixelFormat = %d, want 2", st.bpp.Load())
			}
		})
	}
}

func TestCutTextPolicyAndLimit(t *testing.T) {
	client := cat([]byte{cClientCutText, 0, 0, 0}, u32(3), []byte("abc"))
	server := cat([]byte{sServerCutText, 0, 0, 0}, u32(3), []byte("xyz"))
	for _, policy := range config.Transfers {
		t.Run(string(policy), func(t *testing.T) {
			var stats Stats
			var seen []string
			opt := Options{Clipboard: policy, MaxCutText: 100, Stats: &stats,
				OnCutText: func(d Direction, n int, fwd bool) { seen = append(seen, fmt.Sprint(d, n, fwd)) }}
			st := &state{}
			st.bpp.Store(4)
			up := frameAll(t, client, 0, 1, func(f *framer) error { return f.clientMessage(st, opt) })
			down := frameAll(t, server, 0, 1, func(f *framer) error { return f.serverMessage(st, opt) })
			if want := policy.ClientToServer(); bytes.Equal(up, client) != want || (!want && len(up) != 0) {
				t.Fatalf("client cut text forwarded as % x", up)
			}
			if want := policy.ServerToClient(); bytes.Equal(down, server) != want || (!want && len(down) != 0) {
				t.Fatalf("server cut text forwarded as % x", down)
			}
			b2i := func(b bool) int64 {
				if b {
					return 1
				}
				return 0
			}
			if stats.DroppedCutText[ClientToServer].Load() != b2i(!policy.ClientToServer()) ||
				stats.DroppedCutText[ServerToClient].Load() != b2i(!policy.ServerToClient()) ||
				stats.CutText[ClientToServer].Load() != b2i(policy.ClientToServer()) ||
				stats.CutText[ServerToClient].Load() != b2i(policy.ServerToClient()) {
				t.Fatalf("stats %+v", &stats)
			}
			want := []string{fmt.Sprint(ClientToServer, 3, policy.ClientToServer()), fmt.Sprint(ServerToClient, 3, policy.ServerToClient())}
			if strings.Join(seen, "|") != strings.Join(want, "|") {
				t.Fatalf("OnCutText saw %q, want %q", seen, want)
			}
		})
	}
	f := newFramer(bytes.NewReader(cat([]byte{cClientCutText, 0, 0, 0}, u32(101), fill(101))), io.Discard)
	if err := f.clientMessage(&state{}, Options{Clipboard: config.TransferDisabled, MaxCutText: 100}); err == nil || !strings.Contains(err.Error(), "limit") {
		t.Fatalf("oversized cut text: %v", err)
	}
}

func TestUnframeableMessagesEndTheSession(t *testing.T) {
	st := &state{}
	st.bpp.Store(4)
	opt := Options{Clipboard: config.TransferBidirectional, MaxCutText: 100}
	for name, tc := range map[string]struct {
		data   []byte
		server bool
		want   string
	}{
		"unknown client type":      {[]byte{7, 0, 0, 0}, false, "unknown type 7"},
		"unknown server type":      {[]byte{9}, true, "unknown type 9"},
		"tight not requested":      {update(rect(4, 4, 7, fill(20))), true, "encoding 7"},
		"extended clipboard":       {cat([]byte{cClientCutText, 0, 0, 0}, u32(-8), fill(8)), false, "extended clipboard"},
		"absurd pixel format":      {[]byte{cSetPixelFormat, 0, 0, 0, 24, 24, 0, 1, 0, 255, 0, 255, 0, 255, 16, 8, 0, 0, 0, 0}, false, "24 bits"},
		"huge rectangle":           {update(rect(65535, 65535, 0)), true, "too large"},
		"fence payload over limit": {cat([]byte{sFence, 0, 0, 0}, u32(0), []byte{65}, fill(65)), true, "fence payload"},
	} {
		t.Run(name, func(t *testing.T) {
			f := newFramer(bytes.NewReader(tc.data), io.Discard)
			var err error
			if tc.server {
				err = f.serverMessage(st, opt)
			} else {
				err = f.clientMessage(st, opt)
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an error containing %q", err, tc.want)
			}
		})
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

// TestConnectVersionsAndSecurity runs Connect against a scripted host for
// each protocol version and security outcome, checking what it answers.
func TestConnectVersionsAndSecurity(t *testing.T) {
	challenge := []byte("0123456789abcdef")
	goodResp, _ := vncAuthResponse("pw", challenge)
	serverInit := cat(u16(8), u16(6), fill(16), u32(4), []byte("desk"))
	for _, tc := range []struct {
		name, offer, answer string
		auth                bool
		result              uint32
		wantErr             string
	}{
		{"3.3 vnc auth", "RFB 003.003\n", "RFB 003.003\n", true, 0, ""},
		{"3.7 vnc auth", "RFB 003.007\n", "RFB 003.007\n", true, 0, ""},
		{"3.8 vnc auth", "RFB 003.008\n", "RFB 003.008\n", true, 0, ""},
		{"3.8 none", "RFB 003.008\n", "RFB 003.008\n", false, 0, ""},
		{"newer server", "RFB 004.001\n", "RFB 003.008\n", true, 0, ""},
		{"3.8 refused", "RFB 003.008\n", "RFB 003.008\n", true, 1, "VNC host refused the password: go away"},
		{"3.3 refused", "RFB 003.003\n", "RFB 003.003\n", true, 1, "VNC host refused the password: wrong password"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			gw, host := tcpPair(t)
			defer gw.Close()
			defer host.Close()
			hostErr := make(chan error, 1)
			go func() {
				// Closing unblocks Connect if the script stopped early.
				defer host.Close()
				hostErr <- func() error {
					host.SetDeadline(time.Now().Add(10 * time.Second))
					io.WriteString(host, tc.offer)
					v := make([]byte, 12)
					if _, err := io.ReadFull(host, v); err != nil || string(v) != tc.answer {
						return fmt.Errorf("gateway answered version %q (%v), want %q", v, err, tc.answer)
					}
					sec := byte(secNone)
					if tc.auth {
						sec = secVNCAuth
					}
					if tc.offer == "RFB 003.003\n" {
						host.Write(u32(int(sec)))
					} else {
						if tc.auth {
							host.Write([]byte{2, secNone, secVNCAuth})
						} else {
							host.Write([]byte{1, secNone})
						}
						if _, err := io.ReadFull(host, v[:1]); err != nil || v[0] != sec {
							return fmt.Errorf("gateway chose security %d (%v), want %d", v[0], err, sec)
						}
					}
					if tc.auth {
						host.Write(challenge)
						resp := make([]byte, 16)
						if _, err := io.ReadFull(host, resp); err != nil || !bytes.Equal(resp, goodResp) {
							return fmt.Errorf("auth response % x (%v), want % x", resp, err, goodResp)
						}
					}
					if tc.auth || tc.offer != "RFB 003.003\n" {
						host.Write(u32(int(tc.result)))
					}
					if tc.result != 0 {
						if tc.offer != "RFB 003.003\n" {
							host.Write(cat(u32(7), []byte("go away")))
						}
						return nil
					}
					if _, err := io.ReadFull(host, v[:1]); err != nil || v[0] != 1 {
						return fmt.Errorf("ClientInit %d (%v), want shared=1", v[0], err)
					}
					_, err := host.Write(serverInit)
					return err
				}()
			}()
			si, err := Connect(context.Background(), gw, "pw")
			if herr := <-hostErr; herr != nil {
				t.Fatal(herr)
			}
			if tc.wantErr != "" {
				if err == nil || err.Error() != tc.wantErr {
					t.Fatalf("Connect error %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if si.Width != 8 || si.Height != 6 || si.Name != "desk" || !bytes.Equal(si.raw, serverInit) {
				t.Fatalf("ServerInit %+v", si)
			}
		})
	}
}

// idleHost speaks RFB 3.8 with None security, then reads until closed.
func idleHost(t *testing.T) net.Conn {
	a, b := tcpPair(t)
	go func() {
		defer b.Close()
		hostHandshake(b)
		io.Copy(io.Discard, b)
	}()
	return a
}

// TestIdleSessionsHoldNoBuffers: an idle proxied session runs on two
// goroutines (the caller's and one more) and gives its framing buffers
// back (four of 64 KiB each before it did).
func TestIdleSessionsHoldNoBuffers(t *testing.T) {
	heap := func() uint64 {
		// Two collections empty sync.Pool's victim cache too.
		runtime.GC()
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		return ms.HeapInuse
	}
	const sessions = 40
	g0, h0 := runtime.NumGoroutine(), heap()
	var browsers []net.Conn
	var dones []chan error
	for range sessions {
		host := idleHost(t)
		a, b := tcpPair(t)
		done := make(chan error, 1)
		go func() { done <- Proxy(context.Background(), b, host, Options{}) }()
		if _, _, err := browserHandshake(t, a); err != nil {
			t.Fatal(err)
		}
		// One message each way's worth of framing, then idle.
		setup32bpp(a, 16)
		browsers, dones = append(browsers, a), append(dones, done)
	}
	time.Sleep(200 * time.Millisecond) // let the framed message reach the host
	g1, h1 := runtime.NumGoroutine(), heap()
	for _, a := range browsers {
		a.Close()
	}
	for _, d := range dones {
		<-d
	}
	// Per session: Proxy's caller and its one goroutine, and the test host's.
	if per := float64(g1-g0) / sessions; per > 3 {
		t.Errorf("%.2f goroutines per idle session, want at most 2 in the proxy (3 with the test host)", per)
	}
	if per := float64(int64(h1)-int64(h0)) / sessions; per >= framerBufSize {
		t.Errorf("%.0f heap bytes per idle session, want less than one %d-byte framing buffer", per, framerBufSize)
	} else {
		t.Logf("%.1f KiB heap per idle session, test ends included", per/1024)
	}
}
