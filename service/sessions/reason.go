package sessions

// Reason says why a live session ended, in words a page can map to its
// message and a code the WebSocket close frame carries (4000–4999 is the
// range RFC 6455 leaves to applications). The portal's pages hold the
// user-facing text for each; the audit log keeps the technical detail.
type Reason string

// Why sessions end. A page reconnects by itself only after ReasonNetwork.
const (
	// ReasonSignedOut: the user signed out of the portal (any tab).
	ReasonSignedOut Reason = "signed-out"
	// ReasonSignInExpired: the portal sign-in reached its lifetime.
	ReasonSignInExpired Reason = "signin-expired"
	// ReasonAccountChanged: the account was disabled or removed, its
	// password reset or its groups changed; the user signs in again.
	ReasonAccountChanged Reason = "account-changed"
	// ReasonAccessRemoved: the resource was deleted or is no longer
	// assigned to the user.
	ReasonAccessRemoved Reason = "access-removed"
	// ReasonAdmin: an administrator disconnected the session.
	ReasonAdmin Reason = "admin"
	// ReasonShutdown: the gateway is stopping.
	ReasonShutdown Reason = "shutdown"
	// ReasonHostEnded: the remote session ended (logoff, shell exit, the
	// host closed the connection).
	ReasonHostEnded Reason = "host-ended"
	// ReasonHostUnreachable: the gateway could not connect to the host.
	ReasonHostUnreachable Reason = "host-unreachable"
	// ReasonHostSilent: the host stopped answering during the session.
	ReasonHostSilent Reason = "host-silent"
	// ReasonCredentials: the host refused the credentials.
	ReasonCredentials Reason = "credentials"
	// ReasonHostIdentity: the host's key or certificate is not the pinned one.
	ReasonHostIdentity Reason = "host-identity"
	// ReasonTicket: the launch ticket expired or was used already.
	ReasonTicket Reason = "ticket"
	// ReasonNetwork: the connection to the browser was lost.
	ReasonNetwork Reason = "network"
	// ReasonFailed: anything else (a protocol error, a policy that cannot
	// be enforced on what the peers sent).
	ReasonFailed Reason = "failed"
)

// Reasons lists every reason, for pages and tests.
var Reasons = []Reason{ReasonSignedOut, ReasonSignInExpired, ReasonAccountChanged, ReasonAccessRemoved, ReasonAdmin, ReasonShutdown,
	ReasonHostEnded, ReasonHostUnreachable, ReasonHostSilent, ReasonCredentials, ReasonHostIdentity, ReasonTicket, ReasonNetwork, ReasonFailed}

// Code is the WebSocket close code that carries r to the page.
func (r Reason) Code() int {
	for i, x := range Reasons {
		if x == r {
			return 4001 + i
		}
	}
	return 4000 + len(Reasons) + 1
}

// ReasonOf maps a close code back to its reason; ok is false for codes
// outside the vocabulary.
func ReasonOf(code int) (Reason, bool) {
	i := code - 4001
	if i < 0 || i >= len(Reasons) {
		return "", false
	}
	return Reasons[i], true
}
