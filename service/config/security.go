package config

// Security holds the gateway's limits that keep sign-in, sessions and the
// audit log within bounds whatever clients do. Zero fields in a stored
// record (one written before they existed) mean the defaults; Normalize
// fills them in.
type Security struct {
	// AuditRetentionDays is how long audit records are kept, security
	// events and aggregated refusals alike (1 to 3650; default 365).
	// Security events are never pruned to make room for refusals.
	AuditRetentionDays int `json:"auditRetentionDays"`
	// MaxSignInsPerUser is how many portal sign-ins (browsers) one user
	// may have at once (1 to 1000; default 10): a further sign-in ends
	// the user's oldest one.
	MaxSignInsPerUser int `json:"maxSignInsPerUser"`
	// MaxSessionsPerUser is how many live remote sessions one user may
	// have at once (1 to 1000; default 10): a further launch is refused
	// with a message saying so.
	MaxSessionsPerUser int `json:"maxSessionsPerUser"`
}

// Defaults of the Security settings.
const (
	DefaultAuditRetentionDays = 365
	DefaultMaxSignInsPerUser  = 10
	DefaultMaxSessionsPerUser = 10
)

// DefaultSecurity returns the Security defaults.
func DefaultSecurity() Security {
	return Security{AuditRetentionDays: DefaultAuditRetentionDays, MaxSignInsPerUser: DefaultMaxSignInsPerUser, MaxSessionsPerUser: DefaultMaxSessionsPerUser}
}

// normalize fills fields a stored record lacks with the defaults.
func (s *Security) normalize() {
	d := DefaultSecurity()
	if s.AuditRetentionDays == 0 {
		s.AuditRetentionDays = d.AuditRetentionDays
	}
	if s.MaxSignInsPerUser == 0 {
		s.MaxSignInsPerUser = d.MaxSignInsPerUser
	}
	if s.MaxSessionsPerUser == 0 {
		s.MaxSessionsPerUser = d.MaxSessionsPerUser
	}
}

func (s Security) validate(es *FieldErrors) {
	if s.AuditRetentionDays < 1 || s.AuditRetentionDays > 3650 {
		es.add("security.auditRetentionDays", s.AuditRetentionDays, "keep the audit log for 1 to 3650 days")
	}
	if s.MaxSignInsPerUser < 1 || s.MaxSignInsPerUser > 1000 {
		es.add("security.maxSignInsPerUser", s.MaxSignInsPerUser, "allow 1 to 1000 sign-ins per user")
	}
	if s.MaxSessionsPerUser < 1 || s.MaxSessionsPerUser > 1000 {
		es.add("security.maxSessionsPerUser", s.MaxSessionsPerUser, "allow 1 to 1000 sessions per user")
	}
}

// EffectiveSecurity is s with defaults for fields a stored record lacks:
// what the gateway enforces.
func (g Gateway) EffectiveSecurity() Security {
	s := g.Security
	s.normalize()
	return s
}
