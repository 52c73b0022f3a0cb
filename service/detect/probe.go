package detect

import (
	"io"
	"net/http"
	"strings"
)

// maxProbeBody is the most a probe may send: a nonce and a newline.
const maxProbeBody = 256

// ProbeHandler is the HTTP probe: portico-client POSTs the nonce as the
// body (plain text). 204 means the nonce was outstanding and is now
// detected; 404 that it is unknown or expired; nothing else changes
// state. It needs no portal session: the client has none, and the nonce
// is the secret.
func ProbeHandler(nonces *Nonces) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		if r.Method != http.MethodPost {
			w.Header().Set("Allow", http.MethodPost)
			http.Error(w, "detection probe: use POST with the nonce as the body", http.StatusMethodNotAllowed)
			return
		}
		body, err := io.ReadAll(io.LimitReader(r.Body, maxProbeBody+1))
		if err != nil {
			http.Error(w, "detection probe: could not read the body", http.StatusBadRequest)
			return
		}
		if len(body) > maxProbeBody {
			http.Error(w, "detection probe: the body must be only the nonce", http.StatusRequestEntityTooLarge)
			return
		}
		nonce := strings.TrimSpace(string(body))
		if !ValidNonce(nonce) {
			http.Error(w, "detection probe: the body must be the nonce from the portico://detect URL", http.StatusBadRequest)
			return
		}
		if !nonces.Report(nonce, ViaHTTP) {
			http.Error(w, "detection probe: unknown or expired nonce (start detection again in the portal)", http.StatusNotFound)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
}
