package portal

import (
	"context"
	"crypto/x509"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"

	"portico/service/config"
	"portico/service/relay"
	"portico/service/relay/rdp"
	"portico/service/relay/rdp/rdpdr"
	"portico/service/sessions"
	"portico/service/store"
	"portico/service/tlscert"
)

// maxFirstPDU caps the RDCleanPath request the browser sends first.
const maxFirstPDU = 16 << 10

// readDER reads exactly one DER value (the RDCleanPath request) from the
// stream, using its length header, without reading past it.
func readDER(r io.Reader, max int) ([]byte, error) {
	head := make([]byte, 2)
	if _, err := io.ReadFull(r, head); err != nil {
		return nil, err
	}
	if head[0] != 0x30 {
		return nil, errors.New("first message is not an RDCleanPath request")
	}
	n := int(head[1])
	lenBytes := []byte{}
	if head[1]&0x80 != 0 {
		k := int(head[1] & 0x7f)
		if k == 0 || k > 3 {
			return nil, errors.New("bad DER length")
		}
		lenBytes = make([]byte, k)
		if _, err := io.ReadFull(r, lenBytes); err != nil {
			return nil, err
		}
		var b [4]byte
		copy(b[4-k:], lenBytes)
		n = int(binary.BigEndian.Uint32(b[:]))
	}
	if n > max {
		return nil, fmt.Errorf("RDCleanPath request of %d bytes (max %d)", n, max)
	}
	out := make([]byte, 0, 2+len(lenBytes)+n)
	out = append(append(out, head...), lenBytes...)
	body := make([]byte, n)
	if _, err := io.ReadFull(r, body); err != nil {
		return nil, err
	}
	return append(out, body...), nil
}

// relayRDP serves IronRDP's web client: the RDCleanPath request carries
// the launch ticket as its token; the target comes only from the ticket.
// After the gateway's TLS handshake with the host, NLA runs end to end
// inside the browser and the gateway relays the TLS stream.
func (p *Portal) relayRDP(w http.ResponseWriter, r *http.Request) {
	s, ok := p.relaySession(w, r)
	if !ok {
		return
	}
	ip := p.clientIP(r)
	ws, err := p.upgrader(r).Upgrade(w, r, nil)
	if err != nil {
		return
	}
	stream := relay.NewStream(ws)
	stream.SetReadDeadline(time.Now().Add(15 * time.Second))
	first, err := readDER(stream, maxFirstPDU)
	if err != nil {
		closeWS(ws, websocket.ClosePolicyViolation, err.Error())
		return
	}
	stream.SetReadDeadline(time.Time{})
	var granted *opened
	var signedInAs string
	auth := func(ctx context.Context, token string) (rdp.Target, error) {
		o, err := p.grant(r, s, token, config.ProtocolRDP)
		if err != nil {
			p.audit(store.Event{Type: "ticket.refused", User: s.User, ClientIP: ip, Detail: "RDP: " + err.Error()})
			if errors.Is(err, errNotGranted) {
				return rdp.Target{}, rdp.ErrForbidden
			}
			return rdp.Target{}, fmt.Errorf("%w: %v", rdp.ErrUnauthorized, err)
		}
		granted = o
		in, how, err := p.rdpSignIn(s, o.res)
		if err != nil {
			p.Logger.Error("rdp sign-in credentials", "resource", o.res.ID, "err", err)
			return rdp.Target{}, fmt.Errorf("%w: %v", rdp.ErrForbidden, err)
		}
		signedInAs = how
		return rdp.Target{Addr: net.JoinHostPort(o.res.Host, strconv.Itoa(o.res.Port)), CheckCert: p.rdpCertPin(o.res), SignIn: in}, nil
	}
	var failed error
	auth = rdpAuth(auth, &failed)
	conn, err := rdp.Options{}.Connect(context.Background(), first, auth, func(ctx context.Context, addr string) (net.Conn, error) {
		c, err := p.Dial(ctx, "tcp", addr)
		if err != nil {
			failed = ending(sessions.ReasonHostUnreachable, err)
		}
		return c, err
	})
	resp, host := conn.Resp, conn.Host
	if len(resp) > 0 {
		if _, werr := stream.Write(resp); werr != nil && host != nil {
			host.Close()
			return
		}
	}
	if host == nil {
		// IronRDP shows the RDCleanPath error itself; the page also asks
		// the gateway for the reason (the close code stays inside wasm).
		reason := reasonOf(failed, sessions.ReasonHostUnreachable)
		switch {
		case errors.Is(err, rdp.ErrCertificateRejected):
			reason = sessions.ReasonHostIdentity
		case errors.Is(err, rdp.ErrCredentialsRefused):
			reason = reasonStoredCredentials
		case errors.Is(err, rdp.ErrNoCredentials):
			reason = reasonNoPassword
		}
		p.ended.record(pageID(r), reason)
		if granted != nil {
			detail := "RDP: " + err.Error()
			if signedInAs != "" {
				detail += "; the gateway was signing in with the " + signedInAs
			}
			p.audit(store.Event{Type: "session.fail", User: s.User, ClientIP: ip, Resource: granted.res.ID, Detail: detail})
		}
		closeWS(ws, reason.Code(), string(reason))
		return
	}
	p.runSession(granted, pageID(r), &wsClient{ws: ws}, func(ctx context.Context, m *sessions.Session) error {
		p.keepWS(ctx, ws)
		logon := conn.Logon
		if shell, dir := rdpInitialProgram(granted.res); shell != "" {
			if logon == nil {
				logon = &rdp.Logon{}
			}
			logon.AlternateShell, logon.WorkDir = shell, dir
		}
		if logon != nil {
			// The filter zeroes them at the Client Info PDU, unless the
			// session ends before it.
			defer logon.Creds.Zero()
		}
		if logon != nil && signedInAs != "" {
			how := "TLS, Client Info autologon"
			if logon.HostProtocol == rdp.ProtocolHybrid {
				how = "NLA by the gateway"
			}
			p.audit(store.Event{Type: "session.signin", User: s.User, ClientIP: ip, Resource: granted.res.ID,
				Detail: fmt.Sprintf("RDP session %s: the gateway signed in with the %s (%s)", m.ID(), signedInAs, how)})
		}
		// The clipboard and file-transfer policies are enforced on the
		// plaintext RDP stream, not only in the page.
		pol := rdp.Policy{Clipboard: granted.decision.Clipboard, FileTransfer: granted.decision.FileTransfer,
			KeyboardLayout: keyboardLayout(r), Logon: logon, Refused: m.Refuse}
		fsess := newFileSession(granted, m)
		if drive := p.openDrive(granted, m); drive != nil {
			defer drive.Close()
			client := rdpdr.NewClient(drive, "PORTICO", p.Logger)
			defer client.Close()
			pol.Drive = client
			fsess.files = driveFiles{drive}
		}
		if id := r.URL.Query().Get("files"); pageIDPattern.MatchString(id) {
			defer p.relays.files.put(granted.ticket.PortalSession, id, fsess)()
		}
		backend := newHostSide(host, m)
		filtered := rdp.NewFilter(pol, p.Logger).Wrap(backend)
		err := relay.Pipe(ctx, stream, filtered, nil)
		return backend.reason(err)
	})
}

// rdpAuth wraps the ticket check so a refused ticket gives the session
// its reason.
func rdpAuth(auth func(context.Context, string) (rdp.Target, error), failed *error) func(context.Context, string) (rdp.Target, error) {
	return func(ctx context.Context, token string) (rdp.Target, error) {
		t, err := auth(ctx, token)
		if err != nil {
			if errors.Is(err, rdp.ErrForbidden) {
				*failed = ending(sessions.ReasonAccessRemoved, err)
			} else {
				*failed = ending(sessions.ReasonTicket, err)
			}
		}
		return t, err
	}
}

// openDrive makes the session's Portico drive when its file-transfer set
// allows anything; nil when it allows nothing or the folder cannot be
// made (the session then runs without a drive, and says so in the log).
func (p *Portal) openDrive(o *opened, sess *sessions.Session) *rdpdr.Drive {
	if o.decision.FileTransfer == config.TransferDisabled || o.decision.FileTransfer == "" {
		return nil
	}
	drive, err := rdpdr.NewDrive(filepath.Join(p.DriveDir, sess.ID()), o.decision.FileTransfer, p.DriveQuota)
	if err != nil {
		p.Logger.Error("RDP session without its drive", "resource", o.res.ID, "err", err)
		return nil
	}
	var refused atomic.Int64
	t := o.ticket
	drive.Meter.Refused = func(what string) {
		sess.Refuse()
		// The first refusals are audited one by one; a host that keeps
		// trying is counted in the session's refusals only.
		if n := refused.Add(1); n <= maxAuditedHostRefusals {
			p.audit(store.Event{Type: "file.refused", User: t.User, ClientIP: t.ClientIP, Resource: o.res.ID,
				Detail: "the host's " + what + " in the Portico drive: file transfer server-to-client is not allowed"})
		}
	}
	return drive
}

// maxAuditedHostRefusals caps the audit events for one session's refused
// host writes.
const maxAuditedHostRefusals = 20

// removeStaleDrives removes session drive folders that a stopped gateway
// left behind: only folders named like session IDs, under dir.
func removeStaleDrives(dir string, log *slog.Logger) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	for _, e := range entries {
		if e.IsDir() && staleDriveName.MatchString(e.Name()) {
			if err := os.RemoveAll(filepath.Join(dir, e.Name())); err != nil {
				log.Warn("cannot remove an old session drive", "err", err)
			}
		}
	}
}

var staleDriveName = regexp.MustCompile(`^[0-9a-f]{16}$`)

// rdpCertPin trusts an RDP host's certificate on first use and pins its
// fingerprint on the resource; later a different certificate is refused.
// The browser cannot judge a self-signed host certificate itself, so
// without the pin any machine answering on the host's address could
// collect the user's NLA exchange.
func (p *Portal) rdpCertPin(res config.Resource) func(*x509.Certificate) error {
	return func(leaf *x509.Certificate) error {
		fp := tlscert.Fingerprint(leaf.Raw)
		switch res.HostKey {
		case fp:
			return nil
		case "":
			return p.pinOnFirstUse(res.ID, "RDP certificate", fp)
		}
		p.audit(store.Event{Type: "hostkey.mismatch", Resource: res.ID, Detail: "RDP certificate " + fp + " differs from the pinned " + res.HostKey})
		return fmt.Errorf("certificate %s differs from the pinned %s", fp, res.HostKey)
	}
}

// keyboardLayout is the layout the user picked on the page (?keyboard=),
// if it is one the page offers; 0 leaves the web client's value.
func keyboardLayout(r *http.Request) uint32 {
	id, err := strconv.ParseUint(r.URL.Query().Get("keyboard"), 10, 32)
	if err != nil {
		return 0
	}
	if l, ok := rdp.LookupKeyboardLayout(uint32(id)); ok {
		return l.ID
	}
	return 0
}
