package sshrelay

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

type message struct {
	typ  int
	data []byte
}

// fakeBrowser is an in-memory MessageConn: the test plays the browser by
// sending on in and watching what the gateway wrote.
type fakeBrowser struct {
	in       chan message
	released chan struct{} // closed by SetReadDeadline
	once     sync.Once
	reading  atomic.Int32 // ReadMessage calls in progress

	mu       sync.Mutex
	output   bytes.Buffer // concatenated binary messages
	control  []message    // text messages from the gateway
	maxChunk int
	changed  chan struct{} // signalled on every write
}

func newFakeBrowser() *fakeBrowser {
	return &fakeBrowser{
		in:       make(chan message, 16),
		released: make(chan struct{}),
		changed:  make(chan struct{}, 1),
	}
}

func (b *fakeBrowser) ReadMessage() (int, []byte, error) {
	b.reading.Add(1)
	defer b.reading.Add(-1)
	select {
	case m, ok := <-b.in:
		if !ok {
			return 0, nil, &websocket.CloseError{Code: websocket.CloseNormalClosure}
		}
		return m.typ, m.data, nil
	case <-b.released:
		return 0, nil, errors.New("read deadline exceeded")
	}
}

func (b *fakeBrowser) WriteMessage(typ int, data []byte) error {
	b.mu.Lock()
	if typ == websocket.BinaryMessage {
		b.output.Write(data)
		b.maxChunk = max(b.maxChunk, len(data))
	} else {
		b.control = append(b.control, message{typ, bytes.Clone(data)})
	}
	b.mu.Unlock()
	select {
	case b.changed <- struct{}{}:
	default:
	}
	return nil
}

func (b *fakeBrowser) SetReadDeadline(time.Time) error {
	b.once.Do(func() { close(b.released) })
	return nil
}

func (b *fakeBrowser) typeText(s string) {
	b.in <- message{websocket.BinaryMessage, []byte(s)}
}

func (b *fakeBrowser) resize(cols, rows int) {
	b.in <- message{websocket.TextMessage, fmt.Appendf(nil, `{"type":"resize","cols":%d,"rows":%d}`, cols, rows)}
}

// waitOutput waits until the terminal output contains want and returns
// everything after it.
func (b *fakeBrowser) waitOutput(t *testing.T, want string) string {
	t.Helper()
	return b.waitFor(t, want, func(out string) (string, bool) {
		_, rest, ok := strings.Cut(out, want)
		return rest, ok
	})
}

// waitFor waits until match accepts the whole terminal output so far.
func (b *fakeBrowser) waitFor(t *testing.T, what string, match func(out string) (string, bool)) string {
	t.Helper()
	deadline := time.After(20 * time.Second)
	for {
		b.mu.Lock()
		out := b.output.String()
		b.mu.Unlock()
		if rest, ok := match(out); ok {
			return rest
		}
		select {
		case <-b.changed:
		case <-deadline:
			t.Fatalf("terminal output never matched %q; got:\n%q", what, out)
		}
	}
}

// startTerminal runs Terminal in the background and returns its result
// channel.
func startTerminal(t *testing.T, ctx context.Context, c *Client, b *fakeBrowser, cols, rows int) <-chan error {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- c.Terminal(ctx, b, cols, rows) }()
	return done
}

func waitDone(t *testing.T, done <-chan error) error {
	t.Helper()
	select {
	case err := <-done:
		return err
	case <-time.After(20 * time.Second):
		t.Fatal("Terminal did not return")
		return nil
	}
}

func TestTerminalShell(t *testing.T) {
	h := startSSHD(t)
	c := h.dial(t)
	b := newFakeBrowser()
	done := startTerminal(t, context.Background(), c, b, 80, 24)

	// The $((...)) is expanded by the shell, so the echoed command line
	// cannot produce the expected text by itself.
	b.typeText("echo hi-$((6*7))\r")
	b.waitOutput(t, "hi-42")

	if got := b.commandOutput(t, "echo $TERM $LANG"); got != "xterm-256color C.UTF-8" {
		t.Errorf("TERM and LANG = %q, want \"xterm-256color C.UTF-8\"", got)
	}
	if got := b.commandOutput(t, "stty size"); got != "24 80" {
		t.Errorf("initial stty size = %q, want \"24 80\"", got)
	}
	b.resize(100, 40)
	if got := b.commandOutput(t, "stty size"); got != "40 100" {
		t.Errorf("stty size after resize = %q, want \"40 100\"", got)
	}

	// UTF-8 both ways: the shell sees the typed bytes exactly (od shows
	// them) and prints them back exactly.
	text := "grüße ✓"
	b.typeText("printf '%s\\n' '" + text + "' | od -An -tx1 | tr -d ' \\n'; echo\r")
	var hexWant strings.Builder
	for _, c := range []byte(text + "\n") {
		fmt.Fprintf(&hexWant, "%02x", c)
	}
	b.waitOutput(t, hexWant.String()+"\r\n")
	b.typeText("printf 'gr\\303\\274\\303\\237e \\342\\234\\223\\n'\r")
	b.waitOutput(t, text+"\r\n")

	b.typeText("exit 3\r")
	if err := waitDone(t, done); err != nil {
		t.Fatalf("Terminal: %v", err)
	}
	b.mu.Lock()
	control := b.control
	maxChunk := b.maxChunk
	b.mu.Unlock()
	if len(control) != 1 || control[0].typ != websocket.TextMessage {
		t.Fatalf("control messages = %v, want one exit message", control)
	}
	var exit exitMessage
	if err := json.Unmarshal(control[0].data, &exit); err != nil {
		t.Fatalf("exit message %q: %v", control[0].data, err)
	}
	if exit != (exitMessage{Type: "exit", Status: 3}) {
		t.Errorf("exit message = %+v, want status 3", exit)
	}
	if maxChunk > outputChunk {
		t.Errorf("largest output message %d bytes, over %d", maxChunk, outputChunk)
	}
	if n := b.reading.Load(); n != 0 {
		t.Errorf("%d ReadMessage calls still running after Terminal returned", n)
	}
}

// commandOutput types cmd after echoing a unique marker and returns the
// first line the command printed.
func (b *fakeBrowser) commandOutput(t *testing.T, cmd string) string {
	t.Helper()
	marker := fmt.Sprintf("mark-%d", time.Now().UnixNano())
	// On the echoed command line the marker is followed by ";", so the
	// marker ending a line is echo's output, and cmd's follows.
	b.typeText("echo " + marker + "; " + cmd + "\r")
	start := marker + "\r\n"
	return b.waitFor(t, cmd, func(out string) (string, bool) {
		_, rest, ok := strings.Cut(out, start)
		if !ok {
			return "", false
		}
		line, _, ok := strings.Cut(rest, "\r\n")
		return line, ok
	})
}

func TestTerminalLargeOutput(t *testing.T) {
	h := startSSHD(t)
	c := h.dial(t)
	b := newFakeBrowser()
	done := startTerminal(t, context.Background(), c, b, 80, 24)
	// 300 KiB of output must arrive complete and in messages of at most
	// 32 KiB.
	b.typeText("head -c 307200 /dev/zero | tr '\\0' x; echo; echo END-$((1+1))\r")
	b.waitOutput(t, "END-2")
	b.typeText("exit\r")
	if err := waitDone(t, done); err != nil {
		t.Fatalf("Terminal: %v", err)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if n := strings.Count(b.output.String(), "x"); n < 307200 {
		t.Errorf("got %d of 307200 bytes of output", n)
	}
	if b.maxChunk > outputChunk || b.maxChunk == 0 {
		t.Errorf("largest output message %d bytes, want 1..%d", b.maxChunk, outputChunk)
	}
}

func TestTerminalBrowserCloses(t *testing.T) {
	h := startSSHD(t)
	c := h.dial(t)
	b := newFakeBrowser()
	done := startTerminal(t, context.Background(), c, b, 80, 24)
	b.typeText("echo ready-$((2*2))\r")
	b.waitOutput(t, "ready-4")
	close(b.in)
	if err := waitDone(t, done); err != nil {
		t.Fatalf("Terminal after browser close: %v", err)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.control) != 0 {
		t.Errorf("sent %v to a closed browser, want nothing", b.control)
	}
}

func TestTerminalContextCancel(t *testing.T) {
	h := startSSHD(t)
	c := h.dial(t)
	b := newFakeBrowser()
	ctx, cancel := context.WithCancel(context.Background())
	done := startTerminal(t, ctx, c, b, 80, 24)
	b.typeText("echo ready-$((2*2))\r")
	b.waitOutput(t, "ready-4")
	cancel()
	if err := waitDone(t, done); !errors.Is(err, context.Canceled) {
		t.Fatalf("Terminal after cancel = %v, want context.Canceled", err)
	}
	if n := b.reading.Load(); n != 0 {
		t.Errorf("%d ReadMessage calls still running after Terminal returned", n)
	}
	// The connection stays usable for a new session.
	b2 := newFakeBrowser()
	done2 := startTerminal(t, context.Background(), c, b2, 80, 24)
	b2.typeText("exit 0\r")
	if err := waitDone(t, done2); err != nil {
		t.Fatalf("second Terminal: %v", err)
	}
}

func TestTerminalBadSize(t *testing.T) {
	// Size is checked before anything is opened, so no host is needed.
	c := &Client{}
	for _, sz := range [][2]int{{0, 24}, {80, 0}, {1001, 24}, {80, -1}} {
		if err := c.Terminal(context.Background(), newFakeBrowser(), sz[0], sz[1]); err == nil {
			t.Errorf("Terminal(%dx%d) succeeded, want an error", sz[0], sz[1])
		}
	}
}

func TestParseControl(t *testing.T) {
	tests := []struct {
		in      string
		want    control
		wantErr bool
	}{
		{in: `{"type":"resize","cols":100,"rows":40}`, want: control{Type: "resize", Cols: 100, Rows: 40}},
		{in: `{"type":"resize","cols":1,"rows":1000}`, want: control{Type: "resize", Cols: 1, Rows: 1000}},
		{in: `{"type":"resize","cols":0,"rows":40}`, wantErr: true},
		{in: `{"type":"resize","cols":100,"rows":1001}`, wantErr: true},
		{in: `{"type":"resize","cols":-5,"rows":40}`, wantErr: true},
		{in: `{"type":"resize","cols":1e30,"rows":40}`, wantErr: true},
		{in: `{"type":"resize","cols":"100","rows":40}`, wantErr: true},
		{in: `{"type":"resize"}`, wantErr: true},
		{in: `{"type":"exit","status":0}`, wantErr: true},
		{in: `{}`, wantErr: true},
		{in: `not json`, wantErr: true},
		{in: `{"type":"resize","cols":80,"rows":24,"pad":"` + strings.Repeat("a", 2000) + `"}`, wantErr: true},
	}
	for _, tt := range tests {
		got, err := parseControl([]byte(tt.in))
		if (err != nil) != tt.wantErr {
			t.Errorf("parseControl(%.60q) error = %v, wantErr %v", tt.in, err, tt.wantErr)
			continue
		}
		if err == nil && got != tt.want {
			t.Errorf("parseControl(%.60q) = %+v, want %+v", tt.in, got, tt.want)
		}
	}
}

func FuzzParseControl(f *testing.F) {
	f.Add([]byte(`{"type":"resize","cols":100,"rows":40}`))
	f.Add([]byte(`{"type":"resize","cols":0,"rows":0}`))
	f.Add([]byte(`{"type":"resize","cols":99999999999999999999,"rows":1}`))
	f.Add([]byte(`{"type":"exit"}`))
	f.Add([]byte(`[]`))
	f.Add([]byte(``))
	f.Fuzz(func(t *testing.T, p []byte) {
		c, err := parseControl(p)
		if err != nil {
			return
		}
		// Anything accepted must be a resize the host can be given.
		if c.Type != "resize" || checkSize(c.Cols, c.Rows) != nil {
			t.Fatalf("accepted invalid control %+v from %q", c, p)
		}
	})
}
