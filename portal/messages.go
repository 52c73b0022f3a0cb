package portal

import (
	"encoding/json"
	"net/http"
	"strings"

	"portico/service/sessions"
)

// Message is what a session page shows when its session ends or cannot
// start. Every session page takes its text from Messages and nowhere
// else: no message names a host, a port or an internal error (those go to
// the log and the audit).
type Message struct {
	// Title is the overlay's heading.
	Title string `json:"title"`
	// Text says what happened and what the user can do.
	Text string `json:"text"`
	// Reconnect: the page reconnects by itself (after a countdown the
	// user can cancel). Only a lost network connection does.
	Reconnect bool `json:"reconnect,omitempty"`
}

// reasonUser is the page's own end: the user pressed Disconnect.
const reasonUser sessions.Reason = "user"

// What the RDP page learns from the gateway's RDCleanPath answer when the
// gateway signs in to the host itself (stored or portal credentials).
const (
	reasonStoredCredentials sessions.Reason = "stored-credentials"
	reasonNoPassword        sessions.Reason = "no-password"
)

// Messages is the vocabulary of session pages for protocol (rdp, vnc or
// ssh), one message per sessions.Reason.
func Messages(protocol string) map[sessions.Reason]Message {
	computer := "The remote computer"
	identity := Message{"Host key changed", "The remote computer presented a different key than the one trusted for it, so the gateway did not connect. Ask your administrator to check the computer.", false}
	credentials := Message{"Sign-in failed", "The remote computer refused the credentials. Ask your administrator to check the account stored for this resource.", false}
	if protocol == "rdp" {
		identity = Message{"Certificate changed", "The remote computer presented a different certificate than the one trusted for it, so the gateway did not connect. Ask your administrator to check the computer.", false}
		credentials = Message{"Sign-in failed", "The remote computer refused the sign-in or closed the connection. Check the user name and password and try again.", false}
	}
	return map[sessions.Reason]Message{
		sessions.ReasonSignedOut:       {"You signed out", "You signed out of the portal, so this session was closed. Sign in again to reconnect.", false},
		sessions.ReasonSignInExpired:   {"Your sign-in expired", "Your portal sign-in expired, so this session was closed. Sign in again to reconnect.", false},
		sessions.ReasonAccountChanged:  {"You were signed out", "An administrator changed your account, so your sign-in and this session were closed. Sign in again if you still have access.", false},
		sessions.ReasonAccessRemoved:   {"Access removed", "This resource is no longer available to you, so the session was closed.", false},
		sessions.ReasonAdmin:           {"Disconnected by the administrator", "An administrator ended this session.", false},
		sessions.ReasonShutdown:        {"Gateway restarting", "The gateway is shutting down. Open the resource again in a moment.", false},
		sessions.ReasonHostEnded:       {"Session ended", "The remote session ended.", false},
		sessions.ReasonHostUnreachable: {"Host unreachable", computer + " could not be reached: it may be off or not accepting connections. Try again later.", false},
		sessions.ReasonHostSilent:      {"Host not answering", computer + " stopped answering, so the session was closed. Try again later.", false},
		sessions.ReasonCredentials:     credentials,
		sessions.ReasonHostIdentity:    identity,
		sessions.ReasonTicket:          {"Link expired", "This launch link expired or was used already. Open the resource again from the portal.", false},
		sessions.ReasonNetwork:         {"Connection lost", "The network connection was lost.", true},
		sessions.ReasonFailed:          {"Session failed", "The session could not continue. Try again; if it keeps failing, tell your administrator.", false},
		reasonUser:                     {"Disconnected", "You ended the session.", false},
		reasonStoredCredentials:        {"Sign-in failed", "The remote computer refused the stored credentials — ask your administrator.", false},
		reasonNoPassword:               {"Sign-in not possible", "The remote computer requires Network Level Authentication and the gateway has no password to sign in with. Ask your administrator; if this resource uses your portal sign-in, sign out of the portal and sign in again.", false},
	}
}

// messagesJSON is the vocabulary for the session page's script.
func messagesJSON(protocol string) string {
	m := map[string]any{}
	for k, v := range Messages(protocol) {
		m[string(k)] = v
	}
	m["_codes"] = codes()
	b, _ := json.Marshal(m)
	return string(b)
}

// codes maps WebSocket close codes to reasons for the page.
func codes() map[int]sessions.Reason {
	out := map[int]sessions.Reason{}
	for _, r := range sessions.Reasons {
		out[r.Code()] = r
	}
	return out
}

// apiSessionEnd tells a session page why its session ended, by the ID
// the page gave its connection. It needs no sign-in: after a sign-out
// the page has none, the ID is the page's own random value, and the
// answer is one word of the vocabulary.
func (p *Portal) apiSessionEnd(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	reason, ok := p.ended.get(r.PathValue("page"))
	if !ok {
		writeJSON(w, http.StatusOK, map[string]string{})
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"reason": string(reason)})
}

// apiLiveSessions counts the live sessions of this sign-in, so the page
// can say what signing out closes.
func (p *Portal) apiLiveSessions(w http.ResponseWriter, r *http.Request) {
	s := p.requireSession(w, r)
	if s == nil {
		return
	}
	id := s.ID()
	n := p.Sessions.CountWhere(func(i sessions.Info) bool { return i.PortalSignIn == id })
	writeJSON(w, http.StatusOK, map[string]int{"count": n})
}

// endSignIn ends the live sessions opened from the portal sign-in id.
func (p *Portal) endSignIn(id string, reason sessions.Reason) int {
	return p.Sessions.DisconnectWhere(func(i sessions.Info) bool { return i.PortalSignIn == id }, reason)
}

// refusalReason is the page's reason for a relay request refused before
// any session started.
func refusalReason(msg string) sessions.Reason {
	switch {
	case strings.HasPrefix(msg, "signed out"):
		return sessions.ReasonSignedOut
	case strings.Contains(msg, "disabled"):
		return sessions.ReasonAccountChanged
	case strings.Contains(msg, "no longer available"):
		return sessions.ReasonAccessRemoved
	case strings.Contains(msg, "origin"):
		return sessions.ReasonFailed
	}
	return sessions.ReasonTicket
}
