package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"portico/service/admin"
)

var configPaths = map[string]string{
	"status": "/api/v1/status", "site": "/api/v1/settings/site", "gateway": "/api/v1/settings/gateway",
	"effective": "/api/v1/settings/effective", "resources": "/api/v1/resources", "users": "/api/v1/users",
	"groups": "/api/v1/groups", "policies": "/api/v1/policies", "certificate": "/api/v1/certificate",
	"sessions": "/api/v1/sessions", "audit": "/api/v1/audit",
}

// configCmd implements "portico-gateway config ...", a thin client of the
// admin API (the running gateway owns the store).
func configCmd(args []string, stdout, stderr io.Writer) int {
	var f flags
	fs := newFlagSet("config", &f, stderr)
	if err := fs.Parse(flagsFirst(args)); err != nil {
		return 2
	}
	rest := fs.Args()
	if len(rest) == 0 {
		fs.Usage()
		return 2
	}
	c, err := admin.Dial(f.dataDir)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var out json.RawMessage
	switch {
	case rest[0] == "get" && len(rest) == 2 && configPaths[rest[1]] != "":
		err = c.Do(ctx, "GET", configPaths[rest[1]], nil, &out)
	case rest[0] == "set" && len(rest) == 3 && (rest[1] == "site" || rest[1] == "gateway" || rest[1] == "policies"):
		var body []byte
		if body, err = readArg(rest[2]); err == nil {
			err = c.Do(ctx, "PUT", configPaths[rest[1]], body, &out)
		}
	case rest[0] == "export" && len(rest) <= 2:
		if err = c.Do(ctx, "GET", "/api/v1/export", nil, &out); err == nil && len(rest) == 2 {
			if err = os.WriteFile(rest[1], out, 0o600); err == nil {
				fmt.Fprintf(stdout, "configuration written to %s\n", rest[1])
				return 0
			}
		}
	case rest[0] == "import" && len(rest) == 2:
		var body []byte
		if body, err = readArg(rest[1]); err == nil {
			err = c.Do(ctx, "POST", "/api/v1/import", body, &out)
		}
	default:
		fs.Usage()
		return 2
	}
	if err != nil {
		var ae *admin.APIError
		if errors.As(err, &ae) {
			fmt.Fprintf(stderr, "refused: %v\n", ae)
		} else {
			fmt.Fprintln(stderr, err)
		}
		return 1
	}
	stdout.Write(out)
	return 0
}

func readArg(name string) ([]byte, error) {
	if name == "-" {
		return io.ReadAll(os.Stdin)
	}
	b, err := os.ReadFile(name)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", name, err)
	}
	return b, nil
}

// flagsFirst moves "--name value" / "--name=value" arguments before the
// positional ones, so "config get status --data-dir X" works as well as
// "config --data-dir X get status".
func flagsFirst(args []string) []string {
	var flags, pos []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		if !strings.HasPrefix(a, "-") || a == "-" {
			pos = append(pos, a)
			continue
		}
		flags = append(flags, a)
		if !strings.Contains(a, "=") && i+1 < len(args) {
			flags = append(flags, args[i+1])
			i++
		}
	}
	return append(flags, pos...)
}
