package main

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"sync"

	"github.com/kardianos/service"
)

// eventLogHandler sends each log record, formatted as the text handler
// does, to the service manager's log. On Windows that is the Event Log
// (Application log, source "portico-gateway", registered by `install`):
// a Windows service has no console, so without it the gateway's log would
// be lost. Errors become Error events, warnings Warning events, the rest
// Information events.
type eventLogHandler struct {
	sink  service.Logger
	mu    *sync.Mutex
	buf   *bytes.Buffer
	inner slog.Handler
}

func newEventLogHandler(sink service.Logger, level slog.Leveler) *eventLogHandler {
	buf := &bytes.Buffer{}
	return &eventLogHandler{sink: sink, mu: &sync.Mutex{}, buf: buf,
		inner: slog.NewTextHandler(buf, &slog.HandlerOptions{Level: level, ReplaceAttr: dropTime})}
}

// dropTime leaves the timestamp to the Event Log, which records its own.
func dropTime(groups []string, a slog.Attr) slog.Attr {
	if len(groups) == 0 && a.Key == slog.TimeKey {
		return slog.Attr{}
	}
	return a
}

func (h *eventLogHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return h.inner.Enabled(ctx, l)
}

func (h *eventLogHandler) Handle(ctx context.Context, r slog.Record) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.buf.Reset()
	if err := h.inner.Handle(ctx, r); err != nil {
		return err
	}
	msg := strings.TrimRight(h.buf.String(), "\n")
	switch {
	case r.Level >= slog.LevelError:
		return h.sink.Error(msg)
	case r.Level >= slog.LevelWarn:
		return h.sink.Warning(msg)
	}
	return h.sink.Info(msg)
}

func (h *eventLogHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return &eventLogHandler{sink: h.sink, mu: h.mu, buf: h.buf, inner: h.inner.WithAttrs(as)}
}

func (h *eventLogHandler) WithGroup(name string) slog.Handler {
	return &eventLogHandler{sink: h.sink, mu: h.mu, buf: h.buf, inner: h.inner.WithGroup(name)}
}

// eventLogger logs to the service manager's log, or keeps fallback when
// it cannot be opened.
func eventLogger(svc service.Service, level string, fallback *slog.Logger) *slog.Logger {
	sink, err := svc.Logger(nil)
	if err != nil {
		fallback.Warn("cannot open the service manager's log; logging to stderr", "err", err)
		return fallback
	}
	return slog.New(newEventLogHandler(sink, parseLevel(level)))
}

// eventLogWriter sends what the gateway prints for the admin (the
// first-run password, the listening addresses) to the service manager's
// log as information events: a Windows service's stdout goes nowhere.
type eventLogWriter struct{ sink service.Logger }

// Write implements io.Writer; one Write is one event.
func (w eventLogWriter) Write(p []byte) (int, error) {
	if msg := strings.TrimSpace(string(p)); msg != "" {
		if err := w.sink.Info(msg); err != nil {
			return 0, err
		}
	}
	return len(p), nil
}
