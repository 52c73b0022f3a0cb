package rdp

import (
	"bytes"
	"context"
	"crypto/tls"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gorilla/websocket"

	"portico/internal/testserver"
	"portico/service/config"
	"portico/service/relay"
	"portico/service/relay/rdp/rdpdr"
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

// BenchmarkRDPDriveRelay measures host→browser bytes through the
// channel filter over loopback TCP, with the session's drive (both
// directions framed record by record, the rdpdr channel served) against
// the same session without one (the plain copy the filter falls back to
// when it has nothing to enforce). The host streams 16 KiB fast-path
// updates after the Connect Response. `make bench` runs it.
func BenchmarkRDPDriveRelay(b *testing.B) {
	for _, withDrive := range []bool{false, true} {
		name := "plain"
		if withDrive {
			name = "drive"
		}
		b.Run(name, func(b *testing.B) {
			addr := testserver.Serve(b, func(c net.Conn) {
				if _, err := ReadTPKT(c, 64<<10); err != nil {
					return
				}
				c.Write(buildConnectResponse(1003, 1004, 1005))
				rec := make([]byte, 16<<10)
				rec[0], rec[1], rec[2] = 0, 0x80|byte(len(rec)>>8), byte(len(rec))
				block := bytes.Repeat(rec, 4)
				for {
					if _, err := c.Write(block); err != nil {
						return
					}
				}
			})
			host, err := net.Dial("tcp", addr)
			if err != nil {
				b.Fatal(err)
			}
			p := Policy{Clipboard: config.TransferBidirectional, FileTransfer: config.TransferBidirectional}
			if withDrive {
				d, err := rdpdr.NewDrive(filepath.Join(b.TempDir(), "s"), config.TransferBidirectional, 1<<20)
				if err != nil {
					b.Fatal(err)
				}
				defer d.Close()
				p.Drive = rdpdr.NewClient(d, "BENCH", slog.New(slog.DiscardHandler))
			}
			c := NewFilter(p, slog.New(slog.DiscardHandler)).Wrap(host)
			defer c.Close()
			if _, err := c.Write(buildConnectInitial("cliprdr")); err != nil {
				b.Fatal(err)
			}
			buf := make([]byte, benchChunk)
			b.SetBytes(benchChunk)
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if _, err := io.ReadFull(c, buf); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
