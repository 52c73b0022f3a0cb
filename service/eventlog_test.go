package main

import (
	"fmt"
	"log/slog"
	"strings"
	"testing"
)

// recordingLog is a service.Logger that keeps what it is sent.
type recordingLog struct{ events []string }

func (r *recordingLog) add(kind string, v ...any) error {
	r.events = append(r.events, kind+": "+fmt.Sprint(v...))
	return nil
}
func (r *recordingLog) Error(v ...any) error            { return r.add("error", v...) }
func (r *recordingLog) Warning(v ...any) error          { return r.add("warning", v...) }
func (r *recordingLog) Info(v ...any) error             { return r.add("info", v...) }
func (r *recordingLog) Errorf(f string, v ...any) error { return r.add("error", fmt.Sprintf(f, v...)) }
func (r *recordingLog) Warningf(f string, v ...any) error {
	return r.add("warning", fmt.Sprintf(f, v...))
}
func (r *recordingLog) Infof(f string, v ...any) error { return r.add("info", fmt.Sprintf(f, v...)) }

func TestEventLogHandler(t *testing.T) {
	rec := &recordingLog{}
	log := slog.New(newEventLogHandler(rec, parseLevel("info"))).With("listener", "https")
	log.Debug("not logged at info")
	log.Info("listening", "addr", ":443")
	log.Warn("certificate expires soon")
	log.WithGroup("tls").Error("handshake failed", "peer", "10.0.0.9")

	want := []string{
		`info: level=INFO msg=listening listener=https addr=:443`,
		`warning: level=WARN msg="certificate expires soon" listener=https`,
		`error: level=ERROR msg="handshake failed" listener=https tls.peer=10.0.0.9`,
	}
	if strings.Join(rec.events, "\n") != strings.Join(want, "\n") {
		t.Errorf("events:\n%s\nwant:\n%s", strings.Join(rec.events, "\n"), strings.Join(want, "\n"))
	}
}

func TestParseLevel(t *testing.T) {
	for in, want := range map[string]slog.Level{"debug": slog.LevelDebug, "warn": slog.LevelWarn, "error": slog.LevelError, "": slog.LevelInfo, "loud": slog.LevelInfo} {
		if got := parseLevel(in); got != want {
			t.Errorf("parseLevel(%q) = %v, want %v", in, got, want)
		}
	}
}

func TestEventLogWriterOneEventPerWrite(t *testing.T) {
	rec := &recordingLog{}
	w := eventLogWriter{rec}
	fmt.Fprintf(w, "\nFirst run: sign in to the User Portal as\n  user:     admin\n  password: %s\n\n", "s3cret")
	fmt.Fprint(w, "  \n")
	if len(rec.events) != 1 || !strings.HasPrefix(rec.events[0], "info: First run:") || !strings.HasSuffix(rec.events[0], "password: s3cret") {
		t.Errorf("event log got %q", rec.events)
	}
}
