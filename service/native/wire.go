package native

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
)

// The tunnel's first exchange, after the TLS handshake: the client sends
// one hello frame ("PTN1", one length byte, the ticket), the gateway
// answers one line, "OK <proto>\n" or "ERR <message>\n", and then bytes
// flow raw both ways. The hello is length-prefixed so the gateway reads
// exactly it and nothing of the stream behind it; the answer is a line so
// the helper can show the message as it is.
const helloMagic = "PTN1"

// maxAnswer caps the gateway's answer line.
const maxAnswer = 512

// AppendHello appends the hello frame for ticket to b.
func AppendHello(b []byte, ticket string) ([]byte, error) {
	if err := CheckTicket(ticket); err != nil {
		return nil, err
	}
	b = append(b, helloMagic...)
	b = append(b, byte(len(ticket)))
	return append(b, ticket...), nil
}

// ErrNotHello means the peer did not start with a tunnel hello.
var ErrNotHello = errors.New("not a Portico tunnel hello")

// ReadHello reads exactly one hello frame from r and returns its ticket.
func ReadHello(r io.Reader) (string, error) {
	var head [len(helloMagic) + 1]byte
	if _, err := io.ReadFull(r, head[:]); err != nil {
		return "", fmt.Errorf("read tunnel hello: %w", err)
	}
	if string(head[:len(helloMagic)]) != helloMagic {
		return "", ErrNotHello
	}
	n := int(head[len(helloMagic)])
	if n == 0 || n > MaxTicket {
		return "", fmt.Errorf("tunnel hello: %w", ErrTicketFormat)
	}
	t := make([]byte, n)
	if _, err := io.ReadFull(r, t); err != nil {
		return "", fmt.Errorf("read tunnel hello ticket: %w", err)
	}
	if err := CheckTicket(string(t)); err != nil {
		return "", fmt.Errorf("tunnel hello: %w", err)
	}
	return string(t), nil
}

// OKAnswer is the gateway's acceptance line for a session of proto.
func OKAnswer(proto string) []byte { return []byte("OK " + proto + "\n") }

// ErrAnswer is the gateway's refusal line; msg is flattened to one line.
func ErrAnswer(msg string) []byte {
	msg = strings.Map(func(r rune) rune {
		if r == '\n' || r == '\r' {
			return ' '
		}
		return r
	}, msg)
	if len(msg) > maxAnswer-8 {
		msg = msg[:maxAnswer-8]
	}
	return []byte("ERR " + msg + "\n")
}

// RefusedError is the gateway's refusal, carrying its message.
type RefusedError struct{ Message string }

func (e *RefusedError) Error() string { return "the gateway refused the launch: " + e.Message }

// ReadAnswer reads the gateway's answer line one byte at a time (so not a
// byte of the session behind it is consumed) and returns the protocol the
// gateway opened, or a *RefusedError.
func ReadAnswer(r io.Reader) (string, error) {
	var line []byte
	var b [1]byte
	for {
		if _, err := io.ReadFull(r, b[:]); err != nil {
			return "", fmt.Errorf("read tunnel answer: %w", err)
		}
		if b[0] == '\n' {
			break
		}
		if len(line) >= maxAnswer {
			return "", fmt.Errorf("tunnel answer longer than %d bytes: not a Portico gateway", maxAnswer)
		}
		line = append(line, b[0])
	}
	if proto, ok := bytes.CutPrefix(line, []byte("OK ")); ok {
		return string(proto), nil
	}
	if msg, ok := bytes.CutPrefix(line, []byte("ERR ")); ok {
		return "", &RefusedError{Message: string(msg)}
	}
	return "", fmt.Errorf("tunnel answer %q: not a Portico gateway", line)
}
