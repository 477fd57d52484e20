// Package logging carries every log line of a node (its own, raft's and
// memberlist's) into one *slog.Logger, at levels an operator can act on:
// events a cluster expects (a peer closing, a node leaving, a shutdown) are
// not errors, and a failure that raft retries is reported once and then
// summarised (rules.go).
//
// Default is the logger a node uses when the application gives none:
// text lines on stderr at the level HIQLITE_LOG names.
package logging

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
)

// EnvVar names the environment variable Default reads: debug, info, warn
// (the default), error or off.
const EnvVar = "HIQLITE_LOG"

// LevelTrace is the slog level of hclog's TRACE, below slog.LevelDebug.
const LevelTrace = slog.LevelDebug - 4

// ParseLevel parses a HIQLITE_LOG value: "" means warn; off reports
// off = true.
func ParseLevel(s string) (level slog.Level, off bool, err error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "trace":
		return LevelTrace, false, nil
	case "debug":
		return slog.LevelDebug, false, nil
	case "info":
		return slog.LevelInfo, false, nil
	case "", "warn", "warning":
		return slog.LevelWarn, false, nil
	case "error":
		return slog.LevelError, false, nil
	case "off", "none":
		return 0, true, nil
	}
	return 0, false, fmt.Errorf("hiqlite: %s %q: unknown level: want debug, info, warn, error or off", EnvVar, s)
}

// Default returns the logger of a node the application gave none: text on
// stderr at the level HIQLITE_LOG names, warnings and errors when it is
// unset. An unknown value logs a warning and keeps warn.
func Default() *slog.Logger {
	l, err := FromEnv(os.Stderr)
	if err != nil {
		l = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
		l.Warn("ignoring "+EnvVar+": unknown level", "value", os.Getenv(EnvVar), "using", "warn")
	}
	return l
}

// FromEnv returns a logger writing text lines to w at the level
// HIQLITE_LOG names (warn when unset), or an error naming an unknown value.
func FromEnv(w io.Writer) (*slog.Logger, error) {
	level, off, err := ParseLevel(os.Getenv(EnvVar))
	if err != nil {
		return nil, err
	}
	if off {
		return slog.New(slog.DiscardHandler), nil
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: level})), nil
}

// enabled reports whether l logs at level.
func enabled(l *slog.Logger, level slog.Level) bool {
	return l.Enabled(context.Background(), level)
}
