package rdp

import (
	"context"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/gorilla/websocket"

	"portico/internal/testserver"
	"portico/service/relay"
)

// benchChunk is what the stand-in host writes per iteration: about a
// screen update's worth of RDP output.
const benchChunk = 64 << 10

// streamingHost stands in for an RDP server for throughput: it answers
// the X.224 request with a TLS confirm, does the TLS handshake, then
// writes benchChunk blocks until the connection closes.
func streamingHost(b *testing.B, tlsCfg *tls.Config) string {
	return testserver.Serve(b, func(c net.Conn) {
		if _, err := ReadTPKT(c, 1024); err != nil {
			return
		}
		c.Write(BuildConnectionConfirm(true, ProtocolSSL))
		tc := tls.Server(c, tlsCfg)
		block := make([]byte, benchChunk)
		for {
			if _, err := tc.Write(block); err != nil {
				return
			}
		}
	})
}

// BenchmarkRDPDownload measures host→browser bytes through the
// RDCleanPath relay (host TLS decrypted by the gateway, framed into wss)
// against the same bytes over raw loopback TCP, in one run: compare the
// MB/s columns. `make bench` runs it.
func BenchmarkRDPDownload(b *testing.B) {
	b.Run("raw-tcp", func(b *testing.B) {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			b.Fatal(err)
		}
		defer l.Close()
		go func() {
			c, err := l.Accept()
			if err != nil {
				return
			}
			defer c.Close()
			block := make([]byte, benchChunk)
			for {
				if _, err := c.Write(block); err != nil {
					return
				}
			}
		}()
		c, err := net.Dial("tcp", l.Addr().String())
		if err != nil {
			b.Fatal(err)
		}
		defer c.Close()
		buf := make([]byte, benchChunk)
		b.SetBytes(benchChunk)
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			if _, err := io.ReadFull(c, buf); err != nil {
				b.Fatal(err)
			}
		}
	})

	b.Run("rdcleanpath-wss", func(b *testing.B) {
		gw := httptest.NewUnstartedServer(nil)
		gw.Listener = relay.BatchListener(gw.Listener) // as the gateway's HTTPS listener
		gw.StartTLS()
		defer gw.Close()
		host := streamingHost(b, gw.TLS)
		up := relay.NewUpgrader(func(string) bool { return true })
		gw.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			ws, err := up.Upgrade(w, r, nil)
			if err != nil {
				return
			}
			stream := relay.NewStream(ws)
			_, first, err := ws.ReadMessage()
			if err != nil {
				return
			}
			auth := func(context.Context, string) (Target, error) { return Target{Addr: host}, nil }
			resp, tc, err := Accept(r.Context(), first, auth, nil)
			stream.Write(resp)
			if err != nil {
				return
			}
			relay.Pipe(context.Background(), stream, tc, nil)
		})
		d := websocket.Dialer{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}
		ws, _, err := d.Dial(strings.Replace(gw.URL, "https", "wss", 1), http.Header{"Origin": {gw.URL}})
		if err != nil {
			b.Fatal(err)
		}
		defer ws.Close()
		first, err := NewRequest(BuildConnectionRequest("", ProtocolSSL|ProtocolHybrid), "ignored:3389", "token", "").Marshal()
		if err != nil {
			b.Fatal(err)
		}
		if err := ws.WriteMessage(websocket.BinaryMessage, first); err != nil {
			b.Fatal(err)
		}
		_, resp, err := ws.ReadMessage()
		if err != nil {
			b.Fatal(err)
		}
		if p, err := ParsePDU(resp); err != nil || p.Error != nil {
			b.Fatalf("RDCleanPath response: %v %+v", err, p)
		}
		r := &wsBytes{ws: ws}
		buf := make([]byte, benchChunk)
		b.SetBytes(benchChunk)
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			if _, err := io.ReadFull(r, buf); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// wsBytes reads a WebSocket's binary messages as one byte stream, as the
// web client does.
type wsBytes struct {
	ws  *websocket.Conn
	cur io.Reader
}

func (r *wsBytes) Read(p []byte) (int, error) {
	for {
		if r.cur == nil {
			_, next, err := r.ws.NextReader()
			if err != nil {
				return 0, err
			}
			r.cur = next
		}
		n, err := r.cur.Read(p)
		if err == io.EOF {
			r.cur = nil
			if n == 0 {
				continue
			}
			err = nil
		}
		return n, err
	}
}
