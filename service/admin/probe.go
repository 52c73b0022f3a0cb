package admin

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	"portico/service/config"
	"portico/service/relay/rdp"
	"portico/service/relay/vnc"
)

// ConnectionTest is the answer of POST resources/{id}/test and POST
// resources/test: whether the gateway can reach the resource's host and a
// server of the resource's protocol answers there.
type ConnectionTest struct {
	// Reachable is true when a server of the resource's protocol answered
	// in a way the gateway can use.
	Reachable bool `json:"reachable"`
	// Address is the host:port the gateway dialled.
	Address string `json:"address"`
	// Result is one of reachable, refused, timeout, unknown-host,
	// unreachable, closed, wrong-protocol, unsupported, error.
	Result string `json:"result"`
	// Detail names the server ("RFB 003.008", the SSH banner, the RDP
	// security protocol) or explains the failure.
	Detail string `json:"detail"`
	// Message is the one line an admin reads, e.g. "reachable: RFB 003.008".
	Message string `json:"message"`
	// NLA (RDP only, when reachable) says whether the host asks for
	// Network Level Authentication: "required" (it refuses TLS alone),
	// "offered" (it chose NLA but also accepts TLS) or "no" (TLS only).
	NLA string `json:"nla,omitempty"`
}

// probeTimeout bounds the TCP connect and, separately, the wait for the
// server's first answer.
const probeTimeout = 5 * time.Second

// errWrongProtocol marks an answer from a server of another protocol.
var errWrongProtocol = errors.New("wrong protocol")

// testConnection dials addr and checks that a server of protocol p answers:
// SSH sends its banner, VNC its RFB version, RDP answers an X.224
// Connection Request with a Connection Confirm. It never signs in.
func testConnection(ctx context.Context, p config.Protocol, addr string, timeout time.Duration) ConnectionTest {
	res := ConnectionTest{Address: addr}
	d := net.Dialer{Timeout: timeout}
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		res.Result, res.Detail = classify(err, "")
		res.Message = res.Result + ": " + res.Detail
		return res
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(timeout))
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	detail, usable, err := identify(conn, p)
	switch {
	case err != nil:
		res.Result, res.Detail = classify(err, p)
	case !usable:
		res.Result, res.Detail = "unsupported", detail
	default:
		res.Reachable, res.Result, res.Detail = true, "reachable", detail
	}
	res.Message = res.Result + ": " + res.Detail
	return res
}

// identify reads the server's first answer on an open connection.
func identify(conn net.Conn, p config.Protocol) (detail string, usable bool, err error) {
	switch p {
	case config.ProtocolSSH:
		banner, err := readSSHBanner(conn)
		return banner, err == nil, err
	case config.ProtocolVNC:
		major, minor, err := vnc.ReadVersion(conn)
		if err != nil {
			if strings.HasPrefix(err.Error(), "not an RFB") || strings.HasPrefix(err.Error(), "bad RFB") {
				return "", false, fmt.Errorf("%w: %v", errWrongProtocol, err)
			}
			return "", false, err
		}
		return fmt.Sprintf("RFB %03d.%03d", major, minor), true, nil
	case config.ProtocolRDP:
		return identifyRDP(conn)
	}
	return "", false, fmt.Errorf("unknown protocol %q: use rdp, vnc or ssh", p)
}

// identifyRDP offers TLS and NLA, as the gateway does when it relays, and
// reads the server's choice.
func identifyRDP(conn net.Conn) (string, bool, error) {
	if _, err := conn.Write(rdp.BuildConnectionRequest("", rdp.ProtocolSSL|rdp.ProtocolHybrid|rdp.ProtocolHybridEx)); err != nil {
		return "", false, fmt.Errorf("send X.224 Connection Request: %w", err)
	}
	pkt, err := rdp.ReadTPKT(conn, 512)
	if err != nil {
		if isNetError(err) {
			return "", false, err
		}
		return "", false, fmt.Errorf("%w: not an RDP server: %v", errWrongProtocol, err)
	}
	cc, err := rdp.ParseConnectionConfirm(pkt)
	if err != nil {
		return "", false, fmt.Errorf("%w: not an RDP server: %v", errWrongProtocol, err)
	}
	switch {
	case !cc.Negotiated:
		return "RDP server with standard RDP security only; the gateway needs TLS or NLA: enable them on the host", false, nil
	case cc.Failed:
		return fmt.Sprintf("RDP server refused TLS and NLA (failure code %d); the gateway needs one of them: enable them on the host", cc.FailureCode), false, nil
	}
	return "RDP server, security " + rdpProtocolName(cc.Protocol), true, nil
}

func rdpProtocolName(p uint32) string {
	switch p {
	case rdp.ProtocolSSL:
		return "TLS"
	case rdp.ProtocolHybrid:
		return "NLA (CredSSP)"
	case rdp.ProtocolHybridEx:
		return "NLA (CredSSP, early user authorization)"
	}
	return "0x" + strconv.FormatUint(uint64(p), 16)
}

// maxBannerLines is how many lines a server may send before its SSH
// version line (RFC 4253 4.2 allows some; real servers send none).
const maxBannerLines = 20

// readSSHBanner reads the server's SSH identification line ("SSH-2.0-…"),
// skipping the few text lines RFC 4253 allows before it. Lines are at most
// 255 bytes, so a hostile server cannot make the gateway buffer much.
func readSSHBanner(r io.Reader) (string, error) {
	br := bufio.NewReaderSize(r, 256)
	var first string
	for i := 0; i < maxBannerLines; i++ {
		line, err := br.ReadSlice('\n')
		switch {
		case errors.Is(err, bufio.ErrBufferFull):
			return "", fmt.Errorf("%w: not an SSH server: a line longer than 255 bytes (%q…)", errWrongProtocol, line[:32])
		case err != nil && (i > 0 || len(line) > 0):
			if first == "" {
				first = string(line)
			}
			return "", fmt.Errorf("%w: not an SSH server: it sent %q and no SSH version line (%v)", errWrongProtocol, first, err)
		case err != nil:
			return "", fmt.Errorf("read SSH banner: %w", err)
		}
		s := strings.TrimRight(string(line), "\r\n")
		if strings.HasPrefix(s, "SSH-") {
			if !strings.HasPrefix(s, "SSH-2.0-") && !strings.HasPrefix(s, "SSH-1.99-") {
				return "", fmt.Errorf("%w: SSH server speaks an unsupported version: %q", errWrongProtocol, s)
			}
			for _, c := range s {
				if c < 0x20 || c > 0x7e {
					return "", fmt.Errorf("%w: not an SSH server: banner %q has control characters", errWrongProtocol, s)
				}
			}
			return s, nil
		}
		if first == "" {
			first = s
		}
	}
	return "", fmt.Errorf("%w: not an SSH server: %d lines without an SSH version line (first: %q)", errWrongProtocol, maxBannerLines, first)
}

// isNetError reports whether err is about the connection rather than the
// bytes that came over it.
func isNetError(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, os.ErrDeadlineExceeded)
}

// classify turns a dial or read error into a result and an explanation
// that says what to check. p is empty for dial errors.
func classify(err error, p config.Protocol) (result, detail string) {
	var dnsErr *net.DNSError
	var ne net.Error
	what := map[config.Protocol]string{config.ProtocolSSH: "SSH banner", config.ProtocolVNC: "RFB version", config.ProtocolRDP: "X.224 Connection Confirm"}[p]
	switch {
	case errors.Is(err, errWrongProtocol):
		return "wrong-protocol", strings.TrimPrefix(err.Error(), errWrongProtocol.Error()+": ")
	case errors.Is(err, syscall.ECONNREFUSED) || strings.Contains(err.Error(), "refused"):
		return "refused", "nothing listens on that port (connection refused): check the host and port, and that the server runs"
	case errors.As(err, &dnsErr):
		return "unknown-host", "the host name does not resolve: " + dnsErr.Err
	case errors.Is(err, os.ErrDeadlineExceeded) || errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout()):
		if p == "" {
			return "timeout", "no answer to the TCP connection within 5 s: check the address and any firewall between the gateway and the host"
		}
		return "timeout", "connected, but no " + what + " came back within 5 s: is it a " + strings.ToUpper(string(p)) + " server?"
	case errors.Is(err, syscall.EHOSTUNREACH) || errors.Is(err, syscall.ENETUNREACH):
		return "unreachable", "no route to the host from the gateway: " + err.Error()
	case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNRESET):
		return "closed", "the host accepted the connection and closed it before sending its " + what + ": is it a " + strings.ToUpper(string(p)) + " server?"
	}
	return "error", err.Error()
}

// testResource tests a stored resource.
func (a *api) testResource(w http.ResponseWriter, r *http.Request) {
	res, ok := a.Live.Load().Resource(r.PathValue("id"))
	if !ok {
		a.fail(w, r, notFound("resource", r.PathValue("id")))
		return
	}
	a.writeTest(w, r, res)
}

// testUnsaved tests the protocol, host and port of a resource body that
// need not be stored (the GUI's resource dialog before Save). Only those
// three fields are validated; nothing is stored.
func (a *api) testUnsaved(w http.ResponseWriter, r *http.Request) {
	res, _, err := readResource(r)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	res.Normalize()
	var bad config.FieldErrors
	if fes, ok := config.AsFieldErrors(res.Validate()); ok {
		for _, fe := range fes {
			if fe.Field == "protocol" || fe.Field == "host" || fe.Field == "port" {
				bad = append(bad, fe)
			}
		}
	}
	if len(bad) > 0 {
		a.fail(w, r, bad)
		return
	}
	a.writeTest(w, r, res)
}

func (a *api) writeTest(w http.ResponseWriter, r *http.Request, res config.Resource) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*probeTimeout+time.Second)
	defer cancel()
	out := testConnection(ctx, res.Protocol, net.JoinHostPort(res.Host, strconv.Itoa(res.Port)), probeTimeout)
	if res.Protocol == config.ProtocolRDP && out.Reachable {
		out.NLA = probeNLA(ctx, out.Address, out.Detail, probeTimeout)
		out.Message += "; " + nlaAdvice(out.NLA, res)
	}
	a.Logger.Info("connection test", "resource", res.ID, "address", out.Address, "result", out.Result)
	writeJSON(w, http.StatusOK, out)
}

// probeNLA tells whether an RDP host that chose NLA would also accept TLS
// alone, by offering it only TLS; detail is the first probe's answer.
func probeNLA(ctx context.Context, addr, detail string, timeout time.Duration) string {
	if !strings.Contains(detail, "NLA") {
		return "no"
	}
	d := net.Dialer{Timeout: timeout}
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return "offered"
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(timeout))
	if _, err := conn.Write(rdp.BuildConnectionRequest("", rdp.ProtocolSSL)); err != nil {
		return "offered"
	}
	pkt, err := rdp.ReadTPKT(conn, 512)
	if err != nil {
		return "offered"
	}
	if cc, err := rdp.ParseConnectionConfirm(pkt); err == nil && cc.Failed && cc.FailureCode == rdp.FailureHybridRequired {
		return "required"
	}
	return "offered"
}

// nlaAdvice is what the NLA answer means for the resource's sign-in.
func nlaAdvice(nla string, res config.Resource) string {
	signs := res.GatewaySignsIn()
	switch {
	case nla == "required" && signs && res.RDPSignIn() == config.CredStored && res.Credentials.Password == "":
		return "the host requires NLA, but no password is stored: sessions will fail until one is set"
	case nla == "required" && signs:
		return "the host requires NLA; the gateway signs in (" + string(res.RDPSignIn()) + " credentials), users are not asked"
	case nla == "required":
		return "the host requires NLA; users type their credentials in the session page"
	case nla == "offered":
		return "the host asks for NLA (TLS alone also accepted)"
	case signs:
		return "the host does not ask for NLA (TLS only): the gateway sends the credentials as an autologon"
	}
	return "the host does not ask for NLA (TLS only): it may show its own login screen"
}
