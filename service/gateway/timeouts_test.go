package gateway

import (
	"crypto/tls"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"

	"bytes"
)

// TestSlowClientsAreClosedWithinDeadlines holds 200 POSTs whose bodies
// trickle in a byte at a time and 200 HTTP/2 connections whose first
// header block never ends, and checks that each is closed within its
// configured deadline (plus slack for a loaded machine), never before it,
// while normal requests keep answering.
func TestSlowClientsAreClosedWithinDeadlines(t *testing.T) {
	to := Timeouts{Header: 2 * time.Second, Body: 3 * time.Second, Idle: 4 * time.Second}
	echo := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, err := io.ReadAll(r.Body); err != nil {
			http.Error(w, "body too slow or too large", http.StatusRequestTimeout)
			return
		}
		fmt.Fprintln(w, "read")
	})
	out := &bytes.Buffer{}
	g, err := New(Options{
		DataDir: t.TempDir(), HTTPSAddr: "127.0.0.1:0", HTTPAddr: "127.0.0.1:0", AdminAddr: "127.0.0.1:0", DNSAddr: "127.0.0.1:0",
		Version: "test", Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Out: out,
		Portal: func(Parts) http.Handler { return echo }, Timeouts: to,
	})
	if err != nil {
		t.Fatal(err)
	}
	startForTest(t, g)
	addr := g.listener("https")
	const slack = 20 * time.Second // a busy shared machine; the deadline itself is the lower bound

	type result struct {
		kind    string
		held    time.Duration
		err     error
		minimum time.Duration
	}
	results := make(chan result, 400)
	var wg sync.WaitGroup
	// waitClosed reads until the gateway closes the connection, answering
	// nothing the client would need (a 408 answer, then EOF, counts).
	waitClosed := func(c net.Conn, start time.Time) (time.Duration, error) {
		c.SetReadDeadline(time.Now().Add(to.Body + to.Header + slack))
		_, err := io.Copy(io.Discard, c)
		if ne, ok := err.(net.Error); ok && ne.Timeout() {
			return time.Since(start), fmt.Errorf("still open after %v", time.Since(start))
		}
		return time.Since(start), nil
	}
	for i := 0; i < 200; i++ {
		wg.Add(2)
		go func() { // slow body
			defer wg.Done()
			c, err := tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true, NextProtos: []string{"http/1.1"}})
			if err != nil {
				results <- result{kind: "slow body", err: err}
				return
			}
			defer c.Close()
			fmt.Fprintf(c, "POST /upload HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\nContent-Length: 100000\r\n\r\n")
			start := time.Now()
			stop := make(chan struct{})
			go func() { // a byte every 200 ms: never idle, never done
				tk := time.NewTicker(200 * time.Millisecond)
				defer tk.Stop()
				for {
					select {
					case <-tk.C:
						if _, err := c.Write([]byte("x")); err != nil {
							return
						}
					case <-stop:
						return
					}
				}
			}()
			held, err := waitClosed(c, start)
			close(stop)
			results <- result{kind: "slow body", held: held, err: err, minimum: to.Body}
		}()
		go func() { // unfinished HTTP/2 header block
			defer wg.Done()
			start := time.Now()
			c, err := tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true, NextProtos: []string{"h2"}})
			if err != nil {
				results <- result{kind: "h2 headers", err: err}
				return
			}
			defer c.Close()
			if p := c.ConnectionState().NegotiatedProtocol; p != "h2" {
				results <- result{kind: "h2 headers", err: fmt.Errorf("negotiated %q", p)}
				return
			}
			c.Write([]byte("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"))
			c.Write([]byte{0, 0, 0, 0x4, 0, 0, 0, 0, 0}) // empty SETTINGS
			// HEADERS on stream 1 without END_HEADERS: ":method: GET", then
			// the CONTINUATION that would end it never comes.
			c.Write([]byte{0, 0, 1, 0x1, 0, 0, 0, 0, 1, 0x82})
			held, err := waitClosed(c, start)
			results <- result{kind: "h2 headers", held: held, err: err, minimum: to.Header}
		}()
	}

	// Normal requests keep answering meanwhile.
	hc := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	for i := 0; i < 5; i++ {
		resp, err := hc.Post("https://"+addr+"/upload", "text/plain", bytes.NewReader([]byte("hello")))
		if err != nil {
			t.Fatalf("normal request during the slow clients: %v", err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || string(b) != "read\n" {
			t.Fatalf("normal request: %d %q", resp.StatusCode, b)
		}
		time.Sleep(300 * time.Millisecond)
	}
	wg.Wait()
	close(results)
	worst := map[string]time.Duration{}
	for r := range results {
		if r.err != nil {
			t.Fatalf("%s: %v", r.kind, r.err)
		}
		if r.held < r.minimum-100*time.Millisecond {
			t.Fatalf("%s closed after %v, before its deadline %v: closed for another reason", r.kind, r.held, r.minimum)
		}
		worst[r.kind] = max(worst[r.kind], r.held)
	}
	t.Logf("longest held: %v", worst)
}
