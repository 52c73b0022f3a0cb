package portal

import (
	"context"
	"crypto/x509"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/gorilla/websocket"

	"portico/service/config"
	"portico/service/relay"
	"portico/service/relay/rdp"
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
	ws, err := p.upgrader().Upgrade(w, r, nil)
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
		return rdp.Target{Addr: net.JoinHostPort(o.res.Host, strconv.Itoa(o.res.Port)), CheckCert: p.rdpCertPin(o.res)}, nil
	}
	var failed error
	auth = rdpAuth(auth, &failed)
	resp, host, err := rdp.Accept(context.Background(), first, auth, func(ctx context.Context, addr string) (net.Conn, error) {
		c, err := p.Dial(ctx, "tcp", addr)
		if err != nil {
			failed = ending(sessions.ReasonHostUnreachable, err)
		}
		return c, err
	})
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
		if errors.Is(err, rdp.ErrCertificateRejected) {
			reason = sessions.ReasonHostIdentity
		}
		p.ended.record(pageID(r), reason)
		if granted != nil {
			p.audit(store.Event{Type: "session.fail", User: s.User, ClientIP: ip, Resource: granted.res.ID, Detail: "RDP: " + err.Error()})
		}
		closeWS(ws, reason.Code(), string(reason))
		return
	}
	p.runSession(granted, pageID(r), &wsClient{ws: ws}, func(ctx context.Context, m *sessions.Session) error {
		p.keepWS(ctx, ws)
		// The clipboard policy is enforced on the plaintext RDP stream, not only in the page.
		backend := newHostSide(host, m)
		filtered := rdp.NewFilter(rdp.Policy{Clipboard: granted.decision.Clipboard, FileTransfer: granted.decision.FileTransfer,
			KeyboardLayout: keyboardLayout(r), Refused: m.Refuse}, p.Logger).Wrap(backend)
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
