package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"runtime"
	"runtime/debug"
	"time"

	"portico/service/relay"
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
func serveRelay(args []string) error {
	if len(args) != 5 {
		return fmt.Errorf("serve-relay wants cert key source sink echo, got %d arguments", len(args))
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
