package sshrelay

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/gorilla/websocket"
	"golang.org/x/crypto/ssh"
)

// Terminal limits.
const (
	// outputChunk is the largest binary message sent to the browser.
	outputChunk = 32 << 10
	// maxTermSize bounds cols and rows; larger values are not a real
	// screen and only make the host allocate.
	maxTermSize = 1000
	// maxControl bounds a control message; a resize is ~40 bytes.
	maxControl = 1024
	// opIUTF8 is the RFC 8160 terminal mode telling the host's line
	// discipline that input is UTF-8 (so erase removes whole characters).
	opIUTF8 = 42
)

// MessageConn is the browser side of a terminal session; a gorilla
// *websocket.Conn satisfies it. Terminal reads from one goroutine and
// writes from one goroutine at a time, as gorilla requires.
type MessageConn interface {
	ReadMessage() (messageType int, p []byte, err error)
	WriteMessage(messageType int, data []byte) error
}

// readDeadliner is implemented by *websocket.Conn. Terminal uses it to
// stop its pending ReadMessage when the session ends, so it can return
// without leaving a reader goroutine behind.
type readDeadliner interface {
	SetReadDeadline(t time.Time) error
}

// control is a JSON control message from the browser.
type control struct {
	Type string `json:"type"`
	Cols int    `json:"cols"`
	Rows int    `json:"rows"`
}

// exitMessage is sent to the browser when the shell exits.
type exitMessage struct {
	Type   string `json:"type"`
	Status int    `json:"status"`
}

// parseControl decodes and validates a control message from the browser.
func parseControl(p []byte) (control, error) {
	if len(p) > maxControl {
		return control{}, fmt.Errorf("control message of %d bytes is over the %d byte limit", len(p), maxControl)
	}
	var c control
	if err := json.Unmarshal(p, &c); err != nil {
		return control{}, fmt.Errorf("decode control message: %w", err)
	}
	switch c.Type {
	case "resize":
		if err := checkSize(c.Cols, c.Rows); err != nil {
			return control{}, err
		}
		return c, nil
	}
	return control{}, fmt.Errorf("unknown control message type %q", c.Type)
}

func checkSize(cols, rows int) error {
	if cols < 1 || cols > maxTermSize || rows < 1 || rows > maxTermSize {
		return fmt.Errorf("terminal size %dx%d outside 1..%d", cols, rows, maxTermSize)
	}
	return nil
}

// Terminal runs the user's login shell in a cols x rows PTY and connects
// it to browser using the protocol in the package comment. It returns nil
// when the shell exits (after sending the exit message) or the browser
// closes normally, ctx's error when ctx ends, and other errors wrapped.
//
// If browser has SetReadDeadline (as *websocket.Conn does), Terminal sets
// a past read deadline on the way out to release its reader goroutine, so
// the caller can still write a close frame but must not read again.
// Without it, the reader goroutine ends when the caller closes browser.
func (c *Client) Terminal(ctx context.Context, browser MessageConn, cols, rows int) error {
	if err := checkSize(cols, rows); err != nil {
		return err
	}
	sess, err := c.conn.NewSession()
	if err != nil {
		return fmt.Errorf("open ssh session: %w", err)
	}
	defer sess.Close()

	// Many hosts refuse environment variables (AcceptEnv); the shell then
	// runs in the host's default locale, which is not worth failing for.
	_ = sess.Setenv("LANG", "C.UTF-8")
	modes := ssh.TerminalModes{ssh.ECHO: 1, opIUTF8: 1}
	if err := sess.RequestPty("xterm-256color", rows, cols, modes); err != nil {
		return fmt.Errorf("request pty: %w", err)
	}
	stdin, err := sess.StdinPipe()
	if err != nil {
		return fmt.Errorf("ssh stdin: %w", err)
	}
	stdout, err := sess.StdoutPipe()
	if err != nil {
		return fmt.Errorf("ssh stdout: %w", err)
	}
	stderr, err := sess.StderrPipe()
	if err != nil {
		return fmt.Errorf("ssh stderr: %w", err)
	}
	if err := sess.Shell(); err != nil {
		return fmt.Errorf("start shell: %w", err)
	}

	// One lock for all writes to the browser: stdout and stderr pumps
	// share it, and the exit message is written only after both end.
	var writeMu sync.Mutex
	send := func(typ int, p []byte) error {
		writeMu.Lock()
		defer writeMu.Unlock()
		return browser.WriteMessage(typ, p)
	}

	var pumps sync.WaitGroup
	pumpErr := make(chan error, 2)
	for _, r := range []io.Reader{stdout, stderr} {
		pumps.Add(1)
		go func() {
			defer pumps.Done()
			pumpErr <- pumpOutput(r, send)
		}()
	}
	outputDone := make(chan struct{})
	go func() {
		pumps.Wait()
		close(outputDone)
	}()

	readerDone := make(chan error, 1)
	go func() {
		readerDone <- readBrowser(browser, stdin, sess)
	}()

	var result error
	select {
	case <-outputDone:
		// The status follows the output; a host that never sends it must
		// not outlive ctx. Closing the session below releases Wait.
		waited := make(chan error, 1)
		go func() { waited <- sess.Wait() }()
		select {
		case err := <-waited:
			result = sendExit(err, send)
		case <-ctx.Done():
			result = ctx.Err()
		}
	case err := <-readerDone:
		readerDone = nil
		result = browserEnded(err)
	case <-ctx.Done():
		result = ctx.Err()
	}

	// Closing the session ends the pumps (reads return EOF) and makes any
	// blocked stdin write fail.
	sess.Close()
	<-outputDone
	for range 2 {
		if err := <-pumpErr; err != nil && result == nil {
			slog.Debug("ssh terminal output to browser failed", "err", err)
		}
	}
	if readerDone != nil {
		if d, ok := browser.(readDeadliner); ok {
			if err := d.SetReadDeadline(time.Unix(1, 0)); err == nil {
				<-readerDone
			}
		}
	}
	return result
}

// pumpOutput copies r to the browser. Each read returns whatever the SSH
// channel has buffered, up to outputChunk, so bursts coalesce into large
// messages while a lone keystroke echo is sent at once.
func pumpOutput(r io.Reader, send func(int, []byte) error) error {
	buf := make([]byte, outputChunk)
	for {
		n, err := r.Read(buf)
		if n > 0 {
			if werr := send(websocket.BinaryMessage, buf[:n]); werr != nil {
				// Keep draining so the host is never blocked on a full
				// window; the session is being torn down anyway.
				_, _ = io.Copy(io.Discard, r)
				return fmt.Errorf("write terminal output: %w", werr)
			}
		}
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("read terminal output: %w", err)
		}
	}
}

// readBrowser feeds browser keystrokes to stdin and applies control
// messages until the browser stops. Once the shell side fails (it exited
// and the channel is closing) further input is dropped rather than ending
// the session here, so the output pumps can finish and the exit status
// still reaches the browser.
func readBrowser(browser MessageConn, stdin io.Writer, sess *ssh.Session) error {
	shellGone := false
	for {
		typ, p, err := browser.ReadMessage()
		if err != nil {
			return err
		}
		if shellGone {
			continue
		}
		switch typ {
		case websocket.BinaryMessage:
			if _, err := stdin.Write(p); err != nil {
				slog.Debug("ssh terminal input dropped", "err", err)
				shellGone = true
			}
		case websocket.TextMessage:
			ctl, err := parseControl(p)
			if err != nil {
				// A bad control message cannot harm the session; dropping
				// it keeps a buggy page usable.
				slog.Warn("ignoring terminal control message", "err", err)
				continue
			}
			if err := sess.WindowChange(ctl.Rows, ctl.Cols); err != nil {
				slog.Debug("ssh terminal resize dropped", "err", err)
				shellGone = true
			}
		}
	}
}

// ErrBrowserLost is wrapped by Terminal's error when the browser's
// connection failed (as opposed to closing).
var ErrBrowserLost = errors.New("terminal browser connection")

// browserEnded maps the reader's error to Terminal's result: a closing
// browser is a normal end of session.
func browserEnded(err error) error {
	if errors.Is(err, io.EOF) || websocket.IsCloseError(err, websocket.CloseNormalClosure, websocket.CloseGoingAway, websocket.CloseNoStatusReceived) {
		return nil
	}
	return fmt.Errorf("%w: %w", ErrBrowserLost, err)
}

// sendExit reports the shell's exit status, as Session.Wait returned it,
// to the browser.
func sendExit(waitErr error, send func(int, []byte) error) error {
	status := 0
	var exitErr *ssh.ExitError
	var missing *ssh.ExitMissingError
	switch err := waitErr; {
	case err == nil:
	case errors.As(err, &exitErr):
		status = exitErr.ExitStatus()
	case errors.As(err, &missing):
		status = -1
	default:
		return fmt.Errorf("wait for shell: %w", err)
	}
	msg, err := json.Marshal(exitMessage{Type: "exit", Status: status})
	if err != nil {
		return fmt.Errorf("encode exit message: %w", err)
	}
	if err := send(websocket.TextMessage, msg); err != nil {
		return fmt.Errorf("send exit message: %w", err)
	}
	return nil
}
