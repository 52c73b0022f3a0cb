package admin

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"
)

// Client talks to a local gateway's admin API. It trusts exactly the
// certificate named in the data directory's endpoint file (pinned by
// SHA-256), and sends the token from admin.token.
type Client struct {
	// BaseURL is e.g. https://127.0.0.1:9443.
	BaseURL string
	token   string
	http    *http.Client
}

// Endpoint is the content of admin-endpoint.json.
type Endpoint struct {
	// URL of the admin API.
	URL string `json:"url"`
	// CertSHA256 is the admin certificate's fingerprint.
	CertSHA256 string `json:"certSHA256"`
}

// DefaultDataDir is the platform's place for the gateway's data, shared by
// the gateway (its --data-dir default) and its local clients.
func DefaultDataDir() string {
	switch runtime.GOOS {
	case "windows":
		base := os.Getenv("ProgramData")
		if base == "" {
			base = `C:\ProgramData`
		}
		return filepath.Join(base, "Portico")
	case "darwin":
		return "/Library/Application Support/Portico"
	}
	return "/var/lib/portico"
}

// ErrNoGateway means there is no gateway data in the directory (not
// installed, or never started).
var ErrNoGateway = errors.New("no Portico gateway data found")

// Dial prepares a client from a data directory. The errors tell the admin
// what to do: install/start the service, or run with enough rights.
func Dial(dataDir string) (*Client, error) {
	raw, err := os.ReadFile(filepath.Join(dataDir, "admin-endpoint.json"))
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("%w in %s: install and start the Portico service (portico-gateway install && portico-gateway start), or start it once with portico-gateway run", ErrNoGateway, dataDir)
	}
	if errors.Is(err, os.ErrPermission) {
		return nil, fmt.Errorf("no permission to read %s: run as root/Administrator", dataDir)
	}
	if err != nil {
		return nil, fmt.Errorf("read admin endpoint: %w", err)
	}
	var ep Endpoint
	if err := json.Unmarshal(raw, &ep); err != nil || ep.URL == "" {
		return nil, fmt.Errorf("admin endpoint file in %s is damaged: restart the Portico service to rewrite it", dataDir)
	}
	tok, err := os.ReadFile(filepath.Join(dataDir, "admin.token"))
	if errors.Is(err, os.ErrPermission) {
		return nil, fmt.Errorf("no permission to read the admin token in %s: run as root/Administrator", dataDir)
	}
	if err != nil {
		return nil, fmt.Errorf("read admin token: %w", err)
	}
	return NewClient(ep, strings.TrimSpace(string(tok))), nil
}

// NewClient makes a client for an endpoint and token.
func NewClient(ep Endpoint, token string) *Client {
	want := strings.ToUpper(strings.ReplaceAll(ep.CertSHA256, ":", ""))
	tc := &tls.Config{
		MinVersion: tls.VersionTLS12,
		// The admin certificate is self-signed; it is verified by its
		// pinned fingerprint instead of a CA.
		InsecureSkipVerify: true,
		VerifyConnection: func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 {
				return errors.New("admin API presented no certificate")
			}
			sum := sha256.Sum256(cs.PeerCertificates[0].Raw)
			if fmt.Sprintf("%X", sum[:]) != want {
				return errors.New("admin API certificate does not match admin-endpoint.json: is another program on the admin port?")
			}
			return nil
		},
	}
	return &Client{BaseURL: strings.TrimRight(ep.URL, "/"), token: token, http: &http.Client{
		Timeout:   30 * time.Second,
		Transport: &http.Transport{TLSClientConfig: tc, ForceAttemptHTTP2: true},
	}}
}

// APIError is an error answer from the admin API.
type APIError struct {
	// Status is the HTTP status code.
	Status int
	// Message is the error text.
	Message string `json:"error"`
	// Fields are field-level problems.
	Fields []struct {
		Field   string `json:"field"`
		Value   string `json:"value"`
		Message string `json:"message"`
	} `json:"fields"`
}

func (e *APIError) Error() string {
	if len(e.Fields) == 0 {
		return e.Message
	}
	parts := []string{e.Message}
	for _, f := range e.Fields {
		parts = append(parts, fmt.Sprintf("%s: %s", f.Field, f.Message))
	}
	return strings.Join(parts, "\n  ")
}

// Do sends a request with an optional JSON body (any value, or raw bytes /
// io.Reader passed through) and decodes a JSON answer into out (if non-nil).
func (c *Client) Do(ctx context.Context, method, path string, body, out any) error {
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case []byte:
		rd = bytes.NewReader(b)
	case io.Reader:
		rd = b
	default:
		data, err := json.Marshal(b)
		if err != nil {
			return fmt.Errorf("encode request: %w", err)
		}
		rd = bytes.NewReader(data)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.BaseURL+path, rd)
	if err != nil {
		return fmt.Errorf("admin request: %w", err)
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	req.Header.Set("Accept", "application/json")
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("the gateway's admin API does not answer at %s (is the service running?): %w", c.BaseURL, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return fmt.Errorf("read admin answer: %w", err)
	}
	if resp.StatusCode >= 300 {
		e := &APIError{Status: resp.StatusCode}
		if json.Unmarshal(data, e) != nil || e.Message == "" {
			e.Message = fmt.Sprintf("%s: %s", resp.Status, strings.TrimSpace(string(data)))
		}
		return e
	}
	if out == nil || resp.StatusCode == http.StatusNoContent {
		return nil
	}
	if raw, ok := out.(*json.RawMessage); ok {
		*raw = data
		return nil
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("decode admin answer: %w", err)
	}
	return nil
}
