package logging

import (
	"context"
	"fmt"
	"io"
	"log"
	"log/slog"
	"slices"
	"strings"

	"github.com/hashicorp/go-hclog"
)

// HCLog is an hclog.Logger (what raft and the node's own code take) that
// writes to a *slog.Logger through Rules: each line gets the level the
// rules give it, and the logger's name as the attribute "logger".
// The rules apply to the loggers given to raft and memberlist (see
// Foreign); hiqlite's own lines keep the level chosen where they are
// written. Named, With and ResetNamed share the rules of the logger they
// derive from. SetLevel does nothing: the slog handler decides what is
// shown.
type HCLog struct {
	l       *slog.Logger
	name    string
	args    []any
	rules   *Rules
	foreign bool // the rules apply
}

// Foreign lists the last parts of the names of the loggers the node gives
// to raft and memberlist ("raft", "gossip.memberlist" ...): the loggers
// whose lines the rules adjust.
var Foreign = []string{"raft", "cache-raft", "transport", "cache-transport", "memberlist", "snapshots"}

// New returns an HCLog writing to l (nil: Default()) under fresh Rules.
func New(l *slog.Logger) *HCLog {
	if l == nil {
		l = Default()
	}
	return &HCLog{l: l, rules: NewRules()}
}

// Rules returns the rules every logger derived from h shares.
func (h *HCLog) Rules() *Rules { return h.rules }

var _ hclog.Logger = (*HCLog)(nil)

// slogLevel maps an hclog level to slog's.
func slogLevel(level hclog.Level) slog.Level {
	switch level {
	case hclog.Trace:
		return LevelTrace
	case hclog.Debug:
		return slog.LevelDebug
	case hclog.Info, hclog.NoLevel, hclog.DefaultLevel:
		return slog.LevelInfo
	case hclog.Warn:
		return slog.LevelWarn
	}
	return slog.LevelError
}

// Log implements hclog.Logger.
func (h *HCLog) Log(level hclog.Level, msg string, args ...any) {
	if level == hclog.Off {
		return
	}
	h.log(slogLevel(level), msg, args)
}

func (h *HCLog) log(level slog.Level, msg string, args []any) {
	args = plainArgs(args)
	var extra []any
	if h.foreign {
		level, extra = h.rules.level(level, msg, args)
	}
	if !enabled(h.l, level) {
		return
	}
	all := make([]any, 0, len(h.args)+len(args)+len(extra)+2)
	if h.name != "" {
		all = append(all, "logger", h.name)
	}
	all = append(all, h.args...)
	all = append(all, args...)
	all = append(all, extra...)
	h.l.Log(context.Background(), level, msg, all...)
}

// plainArgs turns hclog's formatting values (hclog.Fmt, hclog.Hex ...)
// into strings slog prints as hclog would.
func plainArgs(args []any) []any {
	for i, a := range args {
		switch v := a.(type) {
		case hclog.Format:
			if len(v) > 0 {
				if f, ok := v[0].(string); ok {
					args[i] = fmt.Sprintf(f, v[1:]...)
				}
			}
		case hclog.Hex:
			args[i] = fmt.Sprintf("0x%x", int(v))
		case hclog.Octal:
			args[i] = fmt.Sprintf("0%o", int(v))
		case hclog.Binary:
			args[i] = fmt.Sprintf("0b%b", int(v))
		case hclog.Quote:
			args[i] = fmt.Sprintf("%q", string(v))
		}
	}
	return args
}

func (h *HCLog) Trace(msg string, args ...any) { h.log(LevelTrace, msg, args) }
func (h *HCLog) Debug(msg string, args ...any) { h.log(slog.LevelDebug, msg, args) }
func (h *HCLog) Info(msg string, args ...any)  { h.log(slog.LevelInfo, msg, args) }
func (h *HCLog) Warn(msg string, args ...any)  { h.log(slog.LevelWarn, msg, args) }
func (h *HCLog) Error(msg string, args ...any) { h.log(slog.LevelError, msg, args) }

func (h *HCLog) IsTrace() bool { return enabled(h.l, LevelTrace) }
func (h *HCLog) IsDebug() bool { return enabled(h.l, slog.LevelDebug) }
func (h *HCLog) IsInfo() bool  { return enabled(h.l, slog.LevelInfo) }
func (h *HCLog) IsWarn() bool  { return enabled(h.l, slog.LevelWarn) }
func (h *HCLog) IsError() bool { return enabled(h.l, slog.LevelError) }

// ImpliedArgs implements hclog.Logger.
func (h *HCLog) ImpliedArgs() []any { return h.args }

// With implements hclog.Logger.
func (h *HCLog) With(args ...any) hclog.Logger {
	c := *h
	c.args = append(append([]any(nil), h.args...), plainArgs(args)...)
	return &c
}

// Name implements hclog.Logger.
func (h *HCLog) Name() string { return h.name }

// Named implements hclog.Logger: the name is appended, after a dot.
func (h *HCLog) Named(name string) hclog.Logger {
	if h.name != "" {
		name = h.name + "." + name
	}
	return h.ResetNamed(name)
}

// ResetNamed implements hclog.Logger.
func (h *HCLog) ResetNamed(name string) hclog.Logger {
	c := *h
	c.name = name
	last := name[strings.LastIndexByte(name, '.')+1:]
	c.foreign = slices.Contains(Foreign, last)
	return &c
}

// SetLevel implements hclog.Logger; it does nothing (see HCLog).
func (h *HCLog) SetLevel(hclog.Level) {}

// GetLevel implements hclog.Logger: the lowest level the handler shows.
func (h *HCLog) GetLevel() hclog.Level {
	for _, l := range [...]hclog.Level{hclog.Trace, hclog.Debug, hclog.Info, hclog.Warn, hclog.Error} {
		if enabled(h.l, slogLevel(l)) {
			return l
		}
	}
	return hclog.Off
}

// StandardLogger implements hclog.Logger: see StandardWriter.
func (h *HCLog) StandardLogger(opts *hclog.StandardLoggerOptions) *log.Logger {
	return log.New(h.StandardWriter(opts), "", 0)
}

// StandardWriter implements hclog.Logger: each write is one line, at the
// level its "[LEVEL]" prefix names (INFO without one).
func (h *HCLog) StandardWriter(*hclog.StandardLoggerOptions) io.Writer {
	return stdWriter{h}
}

type stdWriter struct{ h *HCLog }

func (w stdWriter) Write(b []byte) (int, error) {
	s := strings.TrimSpace(string(b))
	level := slog.LevelInfo
	for _, p := range [...]struct {
		prefix string
		level  slog.Level
	}{
		{"[TRACE]", LevelTrace}, {"[DEBUG]", slog.LevelDebug}, {"[INFO]", slog.LevelInfo},
		{"[WARN]", slog.LevelWarn}, {"[ERR]", slog.LevelError}, {"[ERROR]", slog.LevelError},
	} {
		if rest, ok := strings.CutPrefix(s, p.prefix); ok {
			s, level = strings.TrimSpace(rest), p.level
			break
		}
	}
	w.h.log(level, s, nil)
	return len(b), nil
}
