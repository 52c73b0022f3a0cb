package portal

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/gorilla/websocket"

	"portico/service/config"
	"portico/service/relay"
	"portico/service/relay/rdp"
	"portico/service/store"
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
	ip := p.clientIP(r)
	if !p.originAllowed(r) {
		p.audit(store.Event{Type: "ticket.refused", ClientIP: ip, Detail: "RDP relay request from a foreign origin " + r.Header.Get("Origin")})
		http.Error(w, "origin not allowed", http.StatusForbidden)
		return
	}
	s := p.current(r)
	if s == nil {
		p.audit(store.Event{Type: "ticket.refused", ClientIP: ip, Detail: "RDP relay request without a portal session"})
		http.Error(w, "signed out: sign in again", http.StatusUnauthorized)
		return
	}
	if _, ok := p.account(s); !ok {
		p.audit(store.Event{Type: "ticket.refused", User: s.User, ClientIP: ip, Detail: "RDP: account disabled or removed since sign-in"})
		http.Error(w, "your account is disabled", http.StatusForbidden)
		return
	}
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
	sn := snap(r)
	var granted *opened
	auth := func(ctx context.Context, token string) (rdp.Target, error) {
		t, err := p.tickets.Redeem(token, s.ID())
		if err != nil {
			p.audit(store.Event{Type: "ticket.refused", User: s.User, ClientIP: ip, Detail: "RDP: " + err.Error()})
			return rdp.Target{}, fmt.Errorf("%w: %v", rdp.ErrUnauthorized, err)
		}
		res, ok := sn.Resource(t.Resource)
		if !ok || !isAssigned(res, s) || res.Protocol != config.ProtocolRDP {
			p.audit(store.Event{Type: "ticket.refused", User: s.User, ClientIP: ip, Detail: "RDP ticket for a resource that is gone, unassigned or not RDP"})
			return rdp.Target{}, rdp.ErrForbidden
		}
		granted = &opened{ticket: t, res: res, decision: p.decide(res, sn, t.User, t.Groups, t.ClientOS, t.ClientIP)}
		return rdp.Target{Addr: net.JoinHostPort(res.Host, strconv.Itoa(res.Port))}, nil
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	resp, host, err := rdp.Accept(ctx, first, auth, func(ctx context.Context, addr string) (net.Conn, error) { return p.Dial(ctx, "tcp", addr) })
	if len(resp) > 0 {
		if _, werr := stream.Write(resp); werr != nil && host != nil {
			host.Close()
			return
		}
	}
	if host == nil {
		if granted != nil {
			p.audit(store.Event{Type: "session.fail", User: s.User, ClientIP: ip, Resource: granted.res.ID, Detail: "RDP: " + err.Error()})
		}
		closeWS(ws, websocket.CloseNormalClosure, "")
		return
	}
	var once sync.Once
	sess, end := p.register(granted, func(reason string) { once.Do(func() { closeWS(ws, websocket.CloseGoingAway, reason); cancel() }) })
	err = relay.Pipe(ctx, stream, &countingConn{Conn: host, up: sess.Up(), down: sess.Down()}, nil)
	end(err)
}
