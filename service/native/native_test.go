package native

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
)

const (
	fpHex   = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	ticketA = "Zm9vYmFyYmF6cXV4LWxvbmdlci10aWNrZXRfdmFsdWUx"
)

func goodURL() LaunchURL {
	return LaunchURL{Gateway: "gw.example.test:4443", Fingerprint: fpHex, Ticket: ticketA, Proto: ProtoRDP, Name: "Office PC (2nd floor) & co", User: "alice"}
}

func TestLaunchURLRoundTrip(t *testing.T) {
	for _, l := range []LaunchURL{
		goodURL(),
		{Gateway: "[::1]:8443", Fingerprint: fpHex, Ticket: "abc", Proto: ProtoSSH, Name: "büro?=#", User: ""},
		{Gateway: "10.0.0.1:1", Fingerprint: fpHex, Ticket: "x", Proto: ProtoVNC, Name: "", User: "DOMAIN\\bob"},
	} {
		s := l.String()
		if !strings.HasPrefix(s, "portico://launch?") {
			t.Fatalf("String() = %q", s)
		}
		got, err := ParseLaunchURL(s)
		if err != nil {
			t.Fatalf("ParseLaunchURL(%q): %v", s, err)
		}
		if got != l {
			t.Fatalf("round trip of %+v gave %+v", l, got)
		}
	}
}

func TestParseLaunchURLNormalizesFingerprint(t *testing.T) {
	colon := strings.ToUpper(fpHex[:2])
	for i := 2; i < len(fpHex); i += 2 {
		colon += ":" + strings.ToUpper(fpHex[i:i+2])
	}
	l := goodURL()
	l.Fingerprint = colon
	got, err := ParseLaunchURL(l.String())
	if err != nil || got.Fingerprint != fpHex {
		t.Fatalf("colon fingerprint: %q %v", got.Fingerprint, err)
	}
}

func TestParseLaunchURLRejects(t *testing.T) {
	mod := func(f func(*LaunchURL)) string { l := goodURL(); f(&l); return l.String() }
	for _, tc := range []struct{ url, want string }{
		{"https://launch?gw=a:1", "want portico://launch"},
		{"portico://detect?n=1", "want portico://launch"},
		{"portico://launch/x?gw=a:1", "want portico://launch"},
		{mod(func(l *LaunchURL) { l.Gateway = "nohost" }), "gw"},
		{mod(func(l *LaunchURL) { l.Gateway = "a:0" }), "port must be"},
		{mod(func(l *LaunchURL) { l.Gateway = "a b:1" }), "not a host"},
		{mod(func(l *LaunchURL) { l.Fingerprint = "abc" }), "fp"},
		{mod(func(l *LaunchURL) { l.Fingerprint = strings.Repeat("zz", 32) }), "not hex"},
		{mod(func(l *LaunchURL) { l.Ticket = "" }), "launch URL t"},
		{mod(func(l *LaunchURL) { l.Ticket = "a b" }), "launch URL t"},
		{mod(func(l *LaunchURL) { l.Ticket = strings.Repeat("a", 129) }), "launch URL t"},
		{mod(func(l *LaunchURL) { l.Proto = "telnet" }), "proto"},
		{mod(func(l *LaunchURL) { l.Name = "a\nb" }), "control"},
		{mod(func(l *LaunchURL) { l.Name = strings.Repeat("n", 257) }), "longer"},
		{mod(func(l *LaunchURL) { l.User = "-oProxyCommand=x" }), "must not start"},
		{mod(func(l *LaunchURL) { l.User = "a@evil" }), "must not start"},
	} {
		_, err := ParseLaunchURL(tc.url)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("ParseLaunchURL(%q) = %v, want error containing %q", tc.url, err, tc.want)
		}
	}
}

func FuzzParseLaunchURL(f *testing.F) {
	f.Add(goodURL().String())
	f.Add("portico://launch?gw=%5B::1%5D:1&fp=" + fpHex + "&t=a&proto=vnc&name=&user=")
	f.Add("portico://launch?gw=a:1&fp=" + fpHex + "&t=a&proto=ssh&name=%00")
	f.Add("portico://launch?;;%zz")
	f.Fuzz(func(t *testing.T, s string) {
		l, err := ParseLaunchURL(s)
		if err != nil {
			return
		}
		// Whatever parses must format to a URL that parses to the same value.
		again, err := ParseLaunchURL(l.String())
		if err != nil || again != l {
			t.Fatalf("%q parsed to %+v, which re-parses to %+v, %v", s, l, again, err)
		}
	})
}

func TestHelloRoundTripLeavesTheStream(t *testing.T) {
	b, err := AppendHello(nil, ticketA)
	if err != nil {
		t.Fatal(err)
	}
	r := bytes.NewReader(append(b, "SSH-2.0-rest"...))
	got, err := ReadHello(r)
	if err != nil || got != ticketA {
		t.Fatalf("ReadHello = %q, %v", got, err)
	}
	rest, _ := io.ReadAll(r)
	if string(rest) != "SSH-2.0-rest" {
		t.Fatalf("ReadHello consumed the stream: %q left", rest)
	}
}

func TestReadHelloRejects(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want error
	}{
		{"GET / HTTP/1.1\r\n", ErrNotHello},
		{"PTN1\x00", ErrTicketFormat},
		{"PTN1\x03a b", ErrTicketFormat},
		{"PTN1\xffaaa", ErrTicketFormat},
		{"PTN1\x05ab", io.ErrUnexpectedEOF},
		{"PT", io.ErrUnexpectedEOF},
	} {
		if _, err := ReadHello(strings.NewReader(tc.in)); !errors.Is(err, tc.want) {
			t.Errorf("ReadHello(%q) = %v, want %v", tc.in, err, tc.want)
		}
	}
	if _, err := AppendHello(nil, "bad ticket"); err == nil {
		t.Fatal("AppendHello accepted a bad ticket")
	}
}

func FuzzReadHello(f *testing.F) {
	good, _ := AppendHello(nil, ticketA)
	f.Add(good)
	f.Add([]byte("PTN1\x01-"))
	f.Add([]byte("PTN1\x80"))
	f.Add([]byte("\x16\x03\x01"))
	f.Fuzz(func(t *testing.T, b []byte) {
		r := bytes.NewReader(b)
		ticket, err := ReadHello(r)
		if err != nil {
			return
		}
		if CheckTicket(ticket) != nil {
			t.Fatalf("accepted malformed ticket %q", ticket)
		}
		if used := len(b) - r.Len(); used != 5+len(ticket) {
			t.Fatalf("read %d bytes for a %d-byte ticket", used, len(ticket))
		}
	})
}

func TestAnswers(t *testing.T) {
	r := bytes.NewReader(append(OKAnswer("ssh"), "SSH-2.0"...))
	if p, err := ReadAnswer(r); err != nil || p != "ssh" {
		t.Fatalf("OK answer: %q %v", p, err)
	}
	if r.Len() != len("SSH-2.0") {
		t.Fatalf("ReadAnswer consumed %d session bytes", len("SSH-2.0")-r.Len())
	}
	_, err := ReadAnswer(bytes.NewReader(ErrAnswer("launch ticket expired:\nopen it again")))
	var ref *RefusedError
	if !errors.As(err, &ref) || ref.Message != "launch ticket expired: open it again" {
		t.Fatalf("ERR answer: %v", err)
	}
	for _, in := range []string{"HTTP/1.1 400 Bad Request\r\n", strings.Repeat("x", 600), "OK"} {
		if _, err := ReadAnswer(strings.NewReader(in)); err == nil || errors.As(err, &ref) {
			t.Errorf("ReadAnswer(%.20q) = %v, want a protocol error", in, err)
		}
	}
}
