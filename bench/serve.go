package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"syscall"
	"time"

	"portico/service/relay"
	"portico/service/relay/rdp"
)

// relayStats is what the relay child reports on /stats, after a full GC.
type relayStats struct {
	Goroutines int    `json:"goroutines"`
	HeapInuse  uint64 `json:"heap_inuse"`
	StackInuse uint64 `json:"stack_inuse"`
}

// serveRelay runs in the child process: a TLS server whose /source, /sink
// and /echo paths relay a browser WebSocket to the matching backend the
// way the portal's relay endpoints do (upgrade, NewStream, dial, Pipe),
// minus sign-in and tickets. It prints its address on stdout and serves
// until killed. args: cert key source sink echo.
//
// With profile set it records a CPU profile from the start and writes it
// when the harness stops it (SIGTERM).
func serveRelay(args []string, profile string) error {
	if len(args) != 6 {
		return fmt.Errorf("serve-relay wants cert key source sink echo rdp-host, got %d arguments", len(args))
	}
	if profile != "" {
		f, err := os.Create(profile)
		if err != nil {
			return fmt.Errorf("profile: %w", err)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			return fmt.Errorf("profile: %w", err)
		}
		sig := make(chan os.Signal, 1)
		signal.Notify(sig, syscall.SIGTERM)
		go func() {
			<-sig
			pprof.StopCPUProfile()
			f.Close()
			os.Exit(0)
		}()
	}
	up := relay.NewUpgrader(func(string) bool { return true })
	mux := http.NewServeMux()
	for path, backend := range map[string]string{"/source": args[2], "/sink": args[3], "/echo": args[4]} {
		mux.HandleFunc(path, func(w http.ResponseWriter, r *http.Request) {
			ws, err := up.Upgrade(w, r, nil)
			if err != nil {
				return
			}
			stream := relay.NewStream(ws)
			var d net.Dialer
			bc, err := d.DialContext(r.Context(), "tcp", backend)
			if err != nil {
				stream.Close()
				return
			}
			_ = relay.Pipe(context.Background(), stream, bc, nil)
		})
	}
	// /rdp is the RDCleanPath relay as the portal's RDP endpoint runs it
	// (minus the ticket): the first message names the host, Accept does
	// the X.224 exchange and the host's TLS, then Pipe relays the
	// decrypted host bytes.
	rdpHost := args[5]
	mux.HandleFunc("/rdp", func(w http.ResponseWriter, r *http.Request) {
		ws, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		stream := relay.NewStream(ws)
		_, first, err := ws.ReadMessage()
		if err != nil {
			stream.Close()
			return
		}
		auth := func(context.Context, string) (rdp.Target, error) { return rdp.Target{Addr: rdpHost}, nil }
		resp, tc, err := rdp.Accept(r.Context(), first, auth, nil)
		stream.Write(resp)
		if err != nil {
			stream.Close()
			return
		}
		_ = relay.Pipe(context.Background(), stream, tc, nil)
	})
	mux.HandleFunc("/stats", func(w http.ResponseWriter, r *http.Request) {
		runtime.GC()
		debug.FreeOSMemory()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		_ = json.NewEncoder(w).Encode(relayStats{Goroutines: runtime.NumGoroutine(), HeapInuse: ms.HeapInuse, StackInuse: ms.StackInuse})
	})
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	fmt.Fprintln(os.Stdout, l.Addr().String())
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	// As the gateway does: TLS over BatchConns.
	return srv.ServeTLS(relay.BatchListener(l), args[0], args[1])
}
