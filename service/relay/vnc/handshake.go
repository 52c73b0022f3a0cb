// Package vnc is the gateway's RFB (VNC) proxy. Towards the host the
// gateway is the RFB client: it answers the host's VNC password challenge
// with the stored password. Towards the browser (noVNC) it is an RFB 3.8
// server that offers no authentication, so the password never reaches the
// browser. Between them it frames every RFB message in both directions,
// which lets it enforce the clipboard directions on the wire (ClientCutText
// and ServerCutText are dropped when not allowed) and keep the encodings to
// those it can frame. It does not decide policy; it is told the directions.
package vnc

import (
	"bytes"
	"context"
	"crypto/des"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"time"
)

// Security types.
const (
	secInvalid = 0
	secNone    = 1
	secVNCAuth = 2
)

// ServerInit is the host's ServerInit message.
type ServerInit struct {
	Width, Height uint16
	// PixelFormat is the 16-byte RFB pixel format.
	PixelFormat [16]byte
	// Name is the desktop name.
	Name string
	// raw is the message as received, forwarded to the browser unchanged.
	raw []byte
}

// AuthError is a refusal by the host's security handshake.
type AuthError struct{ Reason string }

// Error reads "VNC host refused the password: <reason>".
func (e *AuthError) Error() string { return "VNC host refused the password: " + e.Reason }

// maxReason caps strings the host sends during the handshake.
const maxReason = 4096

func readVersion(r io.Reader) (major, minor int, err error) {
	var b [12]byte
	if _, err := io.ReadFull(r, b[:]); err != nil {
		return 0, 0, fmt.Errorf("read RFB version: %w", err)
	}
	if !bytes.HasPrefix(b[:], []byte("RFB ")) || b[7] != '.' || b[11] != '\n' {
		return 0, 0, fmt.Errorf("not an RFB (VNC) server: got %q", b[:])
	}
	major, err1 := strconv.Atoi(string(b[4:7]))
	minor, err2 := strconv.Atoi(string(b[8:11]))
	if err1 != nil || err2 != nil {
		return 0, 0, fmt.Errorf("bad RFB version %q", b[:])
	}
	return major, minor, nil
}

func readString(r io.Reader, what string) (string, error) {
	var n uint32
	if err := binary.Read(r, binary.BigEndian, &n); err != nil {
		return "", fmt.Errorf("read %s length: %w", what, err)
	}
	if n > maxReason {
		return "", fmt.Errorf("%s too long (%d bytes)", what, n)
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(r, b); err != nil {
		return "", fmt.Errorf("read %s: %w", what, err)
	}
	return string(b), nil
}

// Connect performs the client side of the RFB handshake with the host and
// returns its ServerInit. It gives up when ctx ends; the connection is left
// open either way (the caller owns it).
func Connect(ctx context.Context, backend net.Conn, password string) (*ServerInit, error) {
	if d, ok := ctx.Deadline(); ok {
		backend.SetDeadline(d)
	}
	// A cancelled ctx interrupts a blocked read by expiring the deadline.
	stop := context.AfterFunc(ctx, func() { backend.SetDeadline(time.Unix(1, 0)) })
	si, err := connect(backend, password)
	stop()
	backend.SetDeadline(time.Time{})
	if err != nil && ctx.Err() != nil {
		return nil, fmt.Errorf("VNC handshake: %w (%w)", ctx.Err(), err)
	}
	return si, err
}

func connect(rw io.ReadWriter, password string) (*ServerInit, error) {
	major, minor, err := readVersion(rw)
	if err != nil {
		return nil, err
	}
	// Pick the highest version both speak; servers announcing odd minors
	// (e.g. Apple's 3.889) speak at least 3.8.
	ver := 3
	switch {
	case major > 3 || minor >= 8:
		ver = 8
	case minor == 7:
		ver = 7
	}
	if _, err := fmt.Fprintf(rw, "RFB 003.%03d\n", ver); err != nil {
		return nil, fmt.Errorf("write RFB version: %w", err)
	}
	var types []byte
	if ver == 3 {
		var t uint32
		if err := binary.Read(rw, binary.BigEndian, &t); err != nil {
			return nil, fmt.Errorf("read security type: %w", err)
		}
		if t == secInvalid {
			reason, _ := readString(rw, "failure reason")
			return nil, &AuthError{Reason: reason}
		}
		types = []byte{byte(t)}
	} else {
		var n [1]byte
		if _, err := io.ReadFull(rw, n[:]); err != nil {
			return nil, fmt.Errorf("read security types: %w", err)
		}
		if n[0] == 0 {
			reason, _ := readString(rw, "failure reason")
			return nil, fmt.Errorf("VNC host refused the connection: %s", reason)
		}
		types = make([]byte, n[0])
		if _, err := io.ReadFull(rw, types); err != nil {
			return nil, fmt.Errorf("read security types: %w", err)
		}
	}
	chosen := byte(0)
	for _, t := range types {
		if t == secVNCAuth || (t == secNone && chosen == 0) {
			chosen = t
		}
	}
	if chosen == secNone && password != "" && bytes.IndexByte(types, secVNCAuth) >= 0 {
		chosen = secVNCAuth
	}
	if chosen == 0 {
		return nil, fmt.Errorf("VNC host offers no supported security type (offered %v): configure it for VNC password authentication", types)
	}
	if ver >= 7 {
		if _, err := rw.Write([]byte{chosen}); err != nil {
			return nil, fmt.Errorf("write security type: %w", err)
		}
	}
	if chosen == secVNCAuth {
		var challenge [16]byte
		if _, err := io.ReadFull(rw, challenge[:]); err != nil {
			return nil, fmt.Errorf("read VNC auth challenge: %w", err)
		}
		resp, err := vncAuthResponse(password, challenge[:])
		if err != nil {
			return nil, err
		}
		if _, err := rw.Write(resp); err != nil {
			return nil, fmt.Errorf("write VNC auth response: %w", err)
		}
	}
	if chosen == secVNCAuth || ver == 8 {
		var result uint32
		if err := binary.Read(rw, binary.BigEndian, &result); err != nil {
			return nil, fmt.Errorf("read security result: %w", err)
		}
		if result != 0 {
			reason := "wrong password"
			if ver == 8 {
				if s, err := readString(rw, "failure reason"); err == nil && s != "" {
					reason = s
				}
			}
			return nil, &AuthError{Reason: reason}
		}
	}
	if _, err := rw.Write([]byte{1}); err != nil { // ClientInit: shared
		return nil, fmt.Errorf("write ClientInit: %w", err)
	}
	head := make([]byte, 24)
	if _, err := io.ReadFull(rw, head); err != nil {
		return nil, fmt.Errorf("read ServerInit: %w", err)
	}
	nameLen := binary.BigEndian.Uint32(head[20:24])
	if nameLen > maxReason {
		return nil, fmt.Errorf("ServerInit desktop name too long (%d bytes)", nameLen)
	}
	raw := make([]byte, 24+nameLen)
	copy(raw, head)
	if _, err := io.ReadFull(rw, raw[24:]); err != nil {
		return nil, fmt.Errorf("read desktop name: %w", err)
	}
	si := &ServerInit{Width: binary.BigEndian.Uint16(raw[0:2]), Height: binary.BigEndian.Uint16(raw[2:4]), Name: string(raw[24:]), raw: raw}
	copy(si.PixelFormat[:], raw[4:20])
	return si, nil
}

// vncAuthResponse encrypts the challenge with DES keyed by the password.
// VNC uses each key byte bit-reversed and only the first 8 characters.
func vncAuthResponse(password string, challenge []byte) ([]byte, error) {
	var key [8]byte
	copy(key[:], password)
	for i, b := range key {
		var r byte
		for j := 0; j < 8; j++ {
			r |= ((b >> j) & 1) << (7 - j)
		}
		key[i] = r
	}
	c, err := des.NewCipher(key[:])
	if err != nil {
		return nil, fmt.Errorf("VNC auth: %w", err)
	}
	out := make([]byte, 16)
	c.Encrypt(out[:8], challenge[:8])
	c.Encrypt(out[8:], challenge[8:16])
	return out, nil
}

// serveBrowser performs the server side of an RFB 3.8 handshake offering
// security type None. If hostErr is set, the browser is told the reason as
// a security failure (noVNC shows it) instead of being let in.
func serveBrowser(rw io.ReadWriter, si *ServerInit, hostErr error) error {
	if _, err := io.WriteString(rw, "RFB 003.008\n"); err != nil {
		return fmt.Errorf("write RFB version to browser: %w", err)
	}
	major, minor, err := readVersion(rw)
	if err != nil {
		return fmt.Errorf("browser: %w", err)
	}
	if major != 3 || minor < 7 {
		return fmt.Errorf("browser speaks RFB %d.%d; 3.7 or later is needed", major, minor)
	}
	if _, err := rw.Write([]byte{1, secNone}); err != nil {
		return fmt.Errorf("write security types to browser: %w", err)
	}
	var chosen [1]byte
	if _, err := io.ReadFull(rw, chosen[:]); err != nil {
		return fmt.Errorf("read browser security type: %w", err)
	}
	if chosen[0] != secNone {
		return fmt.Errorf("browser chose security type %d, only None (1) is offered", chosen[0])
	}
	if hostErr != nil {
		// The browser learns only what kind of failure it was: the error
		// itself may name the host, and it goes to the gateway's log.
		msg := "the remote computer could not be reached"
		var ae *AuthError
		if errors.As(hostErr, &ae) {
			msg = "the remote computer refused the credentials"
		}
		b := binary.BigEndian.AppendUint32([]byte{0, 0, 0, 1}, uint32(len(msg)))
		rw.Write(append(b, msg...))
		return hostErr
	}
	if minor >= 8 {
		if _, err := rw.Write([]byte{0, 0, 0, 0}); err != nil {
			return fmt.Errorf("write security result to browser: %w", err)
		}
	}
	var shared [1]byte
	if _, err := io.ReadFull(rw, shared[:]); err != nil {
		return fmt.Errorf("read browser ClientInit: %w", err)
	}
	if _, err := rw.Write(si.raw); err != nil {
		return fmt.Errorf("write ServerInit to browser: %w", err)
	}
	return nil
}
