package assets

import (
	"strconv"
	"strings"
)

// negotiate picks a content coding from avail (most preferred first) for
// an Accept-Encoding header value, or "" for the uncompressed file.
// present tells an absent header (anything goes, but identity is the safe
// answer) from an empty one (identity only).
//
// Per RFC 9110 §12.5.3: an explicitly listed coding overrides "*", q=0
// means "not acceptable", a higher q wins, and "x-gzip" is gzip. On equal
// q the server's order decides; a coding whose q is below identity's
// explicit (or "*") q loses to the plain file. A malformed q makes its
// entry unacceptable rather than guessing.
func negotiate(header string, present bool, avail []string) string {
	if !present {
		return ""
	}
	q := map[string]float64{}
	for part := range strings.SplitSeq(header, ",") {
		coding, params, _ := strings.Cut(part, ";")
		coding = strings.ToLower(strings.TrimSpace(coding))
		if coding == "" {
			continue
		}
		if coding == "x-gzip" {
			coding = "gzip"
		}
		weight := parseQ(params)
		// A repeated coding keeps its highest weight, so a sender that
		// lists "gzip;q=0, gzip" is not second-guessed into refusal.
		if old, seen := q[coding]; !seen || weight > old {
			q[coding] = weight
		}
	}
	weight := func(coding string) float64 {
		if w, ok := q[coding]; ok {
			return w
		}
		if w, ok := q["*"]; ok {
			return w
		}
		return 0
	}
	best, bestQ := "", 0.0
	for _, c := range avail {
		if w := weight(c); w > bestQ {
			best, bestQ = c, w
		}
	}
	if best == "" {
		return ""
	}
	if _, listed := q["identity"]; listed || q["*"] > 0 {
		if weight("identity") > bestQ {
			return ""
		}
	}
	return best
}

// parseQ returns the q parameter of an Accept-Encoding element's
// parameters (1 when absent, 0 when malformed or out of range).
func parseQ(params string) float64 {
	for p := range strings.SplitSeq(params, ";") {
		k, v, ok := strings.Cut(p, "=")
		if !ok || !strings.EqualFold(strings.TrimSpace(k), "q") {
			continue
		}
		v = strings.TrimSpace(v)
		// The grammar allows at most three decimals and no exponent, sign
		// or NaN, which ParseFloat would otherwise accept.
		if v == "" || len(v) > 5 || strings.Trim(v, "0123456789.") != "" {
			return 0
		}
		f, err := strconv.ParseFloat(v, 64)
		if err != nil || f < 0 || f > 1 {
			return 0
		}
		return f
	}
	return 1
}
