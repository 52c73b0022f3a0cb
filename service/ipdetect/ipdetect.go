// Package ipdetect calls a client IP detection service (an ipify-style URL
// answering JSON {"ip": "..."} or the address as plain text) and returns
// the address it reports. The admin API's "Test" action uses it so the
// gateway itself checks the URL the web client will call. It only reads
// the answer; it does not store anything.
package ipdetect

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"

	"portico/service/config"
)

// Limits of a self-test call.
const (
	Timeout      = 5 * time.Second
	MaxBody      = 4 << 10
	MaxRedirects = 3
)

// Check calls url and returns the IP address in its answer. Every failure
// says what went wrong in words an admin can act on.
func Check(ctx context.Context, url string, client *http.Client) (string, error) {
	if err := config.ValidateHTTPURL(url); err != nil {
		return "", fmt.Errorf("URL not usable: %w", err)
	}
	if client == nil {
		client = &http.Client{}
	}
	c := *client
	c.Timeout = Timeout
	c.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		if len(via) >= MaxRedirects {
			return fmt.Errorf("more than %d redirects", MaxRedirects)
		}
		if req.URL.Scheme != "http" && req.URL.Scheme != "https" {
			return fmt.Errorf("redirect to a %s URL", req.URL.Scheme)
		}
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return "", fmt.Errorf("URL not usable: %w", err)
	}
	req.Header.Set("Accept", "application/json, text/plain")
	req.Header.Set("User-Agent", "Portico-gateway IP detection test")
	resp, err := c.Do(req)
	if err != nil {
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() || errors.Is(err, context.DeadlineExceeded) {
			return "", fmt.Errorf("the service did not answer within %s", Timeout)
		}
		return "", fmt.Errorf("cannot reach the service: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("the service answered %s, not 200 OK", resp.Status)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, MaxBody+1))
	if err != nil {
		return "", fmt.Errorf("reading the answer failed: %w", err)
	}
	if len(body) > MaxBody {
		return "", fmt.Errorf("the answer is larger than %d bytes: is this an IP detection service?", MaxBody)
	}
	return Parse(body)
}

// Parse extracts the address from a service answer: JSON {"ip": "..."}
// (also "address" or "query") or the address alone as text.
func Parse(body []byte) (string, error) {
	text := strings.TrimSpace(string(body))
	if strings.HasPrefix(text, "{") {
		var m map[string]any
		if err := json.Unmarshal([]byte(text), &m); err != nil {
			return "", fmt.Errorf("the answer is not valid JSON: %v", err)
		}
		for _, k := range []string{"ip", "address", "query"} {
			if s, ok := m[k].(string); ok {
				if ip := net.ParseIP(strings.TrimSpace(s)); ip != nil {
					return ip.String(), nil
				}
				return "", fmt.Errorf("the answer's %q field is not an IP address: %q", k, s)
			}
		}
		return "", errors.New(`the JSON answer has no "ip" field`)
	}
	if ip := net.ParseIP(text); ip != nil {
		return ip.String(), nil
	}
	if len(text) > 60 {
		text = text[:60] + "…"
	}
	return "", fmt.Errorf("the answer is neither JSON with an \"ip\" field nor an IP address: %q", text)
}
