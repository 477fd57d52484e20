package logging

import (
	"bytes"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
)

// newTest returns an HCLog writing to a buffer at every level, with a
// clock the test moves.
func newTest() (*HCLog, *bytes.Buffer, *time.Time) {
	var buf bytes.Buffer
	h := New(slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{
		Level: LevelTrace,
		ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
			if a.Key == slog.TimeKey {
				return slog.Attr{}
			}
			return a
		},
	})))
	now := time.Unix(0, 0)
	h.rules.now = func() time.Time { return now }
	return h.Named("raft").(*HCLog), &buf, &now
}

func lines(buf *bytes.Buffer) []string {
	s := strings.TrimSpace(buf.String())
	buf.Reset()
	if s == "" {
		return nil
	}
	return strings.Split(s, "\n")
}

func TestParseLevel(t *testing.T) {
	for in, want := range map[string]slog.Level{"": slog.LevelWarn, "debug": slog.LevelDebug, "INFO": slog.LevelInfo, "warn": slog.LevelWarn, "error": slog.LevelError} {
		if got, off, err := ParseLevel(in); got != want || off || err != nil {
			t.Errorf("ParseLevel(%q) = %v, %v, %v; want %v", in, got, off, err, want)
		}
	}
	if _, off, err := ParseLevel("off"); !off || err != nil {
		t.Errorf("ParseLevel(off) = off %v, %v", off, err)
	}
	if _, _, err := ParseLevel("loud"); err == nil || !strings.Contains(err.Error(), `HIQLITE_LOG "loud"`) {
		t.Errorf("ParseLevel(loud) = %v, want an error naming the value", err)
	}
}

func TestHCLogNamesAndArgs(t *testing.T) {
	h, buf, _ := newTest()
	l := h.ResetNamed("raft").Named("x").With("node", "n1")
	l.Info("hello", "n", 1, "f", hclog.Fmt("%d-%s", 2, "b"))
	l.Trace("deep")
	got := lines(buf)
	want := []string{`level=INFO msg=hello logger=raft.x node=n1 n=1 f=2-b`, `level=DEBUG-4 msg=deep logger=raft.x node=n1`}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if l.Name() != "raft.x" || l.ResetNamed("y").Name() != "y" || l.GetLevel() != hclog.Trace || !l.IsTrace() {
		t.Errorf("Name %q, GetLevel %v", l.Name(), l.GetLevel())
	}
}

func TestStandardWriterLevels(t *testing.T) {
	h, buf, _ := newTest()
	lg := h.ResetNamed("gossip.memberlist").StandardLogger(nil)
	lg.Print("[DEBUG] memberlist: a")
	lg.Print("[WARN] memberlist: b")
	lg.Print("[ERR] memberlist: c")
	lg.Print("plain")
	got := strings.Join(lines(buf), "\n")
	for _, w := range []string{`level=DEBUG msg="memberlist: a" logger=gossip.memberlist`, `level=WARN msg="memberlist: b"`, `level=ERROR msg="memberlist: c"`, `level=INFO msg=plain`} {
		if !strings.Contains(got, w) {
			t.Errorf("missing %q in\n%s", w, got)
		}
	}
}

func TestRulesClosing(t *testing.T) {
	h, buf, _ := newTest()
	closed := errors.New("read tcp 127.0.0.1:1->127.0.0.1:2: use of closed network connection")
	h.Error("failed to decode incoming command", "error", "read tcp 127.0.0.1:1->127.0.0.1:3: read: connection reset by peer")
	if got := lines(buf); len(got) != 1 || !strings.HasPrefix(got[0], "level=DEBUG") {
		t.Errorf("a peer resetting its connection: %q, want one DEBUG", got)
	}
	h.Error("failed to install snapshot", "error", closed)
	if got := lines(buf); len(got) != 1 || !strings.HasPrefix(got[0], "level=WARN") {
		t.Errorf("a closed connection while running: %q, want one WARN", got)
	}
	h.Error("failed to open snapshot", "error", "disk full")
	if got := lines(buf); len(got) != 1 || !strings.HasPrefix(got[0], "level=ERROR") {
		t.Errorf("another error: %q, want it at ERROR", got)
	}
	h.Rules().Closing()
	h.Error("failed to decode incoming command", "error", closed)
	h.Error("failed to appendEntries to", "peer", "{Voter n2 127.0.0.1:2}", "error", "EOF")
	for _, l := range lines(buf) {
		if !strings.HasPrefix(l, "level=DEBUG") {
			t.Errorf("while closing: %q, want DEBUG", l)
		}
	}
}

func TestRulesRepeatedFailures(t *testing.T) {
	h, buf, now := newTest()
	fail := func(peer string) {
		h.Error("failed to heartbeat to", "peer", peer, "backoff time", "10ms", "error", "connection refused")
	}
	fail("127.0.0.1:4001")
	for range 2000 {
		fail("127.0.0.1:4001")
	}
	fail("127.0.0.1:4002") // another peer: its own first warning
	var warn, debug []string
	for _, l := range lines(buf) {
		switch {
		case strings.HasPrefix(l, "level=WARN"):
			warn = append(warn, l)
		case strings.HasPrefix(l, "level=DEBUG"):
			debug = append(debug, l)
		default:
			t.Errorf("unexpected level: %s", l)
		}
	}
	if len(warn) != 2 || len(debug) != 2000 {
		t.Errorf("%d WARN, %d DEBUG; want 2 (one a peer), 2000", len(warn), len(debug))
	}
	*now = now.Add(RepeatEvery)
	fail("127.0.0.1:4001")
	if got := lines(buf); len(got) != 1 || !strings.Contains(got[0], "level=WARN") || !strings.Contains(got[0], "repeated=2000") {
		t.Errorf("after RepeatEvery: %q, want one WARN counting 2000 repeats", got)
	}
}

func TestRulesGonePeer(t *testing.T) {
	h, buf, _ := newTest()
	h.Rules().Gone("n2", "127.0.0.1:4001")
	h.Error("failed to appendEntries to", "peer", "{Voter n2 127.0.0.1:4001}", "error", "EOF")
	h.Error("failed to appendEntries to", "peer", "{Voter n20 127.0.0.1:40011}", "error", "EOF")
	got := lines(buf)
	if len(got) != 2 || !strings.HasPrefix(got[0], "level=DEBUG") || !strings.HasPrefix(got[1], "level=WARN") {
		t.Errorf("gone n2, then n20: %q; want DEBUG then WARN (n20 is not n2)", got)
	}
	h.Rules().Back("n2", "127.0.0.1:4001")
	h.Error("failed to appendEntries to", "peer", "{Voter n2 127.0.0.1:4001}", "error", "EOF")
	if got := lines(buf); len(got) != 1 || !strings.HasPrefix(got[0], "level=WARN") {
		t.Errorf("n2 back, then failing: %q, want WARN", got)
	}
}

func TestRulesRoutine(t *testing.T) {
	h, buf, _ := newTest()
	h.Warn("heartbeat timeout reached, starting election", "last-leader-addr", "", "last-leader-id", "")
	h.Warn("heartbeat timeout reached, starting election", "last-leader-addr", "127.0.0.1:1", "last-leader-id", "n1")
	got := lines(buf)
	if len(got) != 2 || !strings.HasPrefix(got[0], "level=INFO") || !strings.HasPrefix(got[1], "level=WARN") {
		t.Errorf("%q: want the first election at INFO, a lost leader at WARN", got)
	}
}

func TestOwnLinesKeepTheirLevel(t *testing.T) {
	h, buf, _ := newTest()
	h.Rules().Closing()
	h.ResetNamed("").Error("remove server that left", "id", "n2", "error", "EOF")
	h.ResetNamed("mux").Error("x", "error", "use of closed network connection")
	for _, l := range lines(buf) {
		if !strings.HasPrefix(l, "level=ERROR") {
			t.Errorf("hiqlite's own line changed: %s", l)
		}
	}
}

func TestNilRules(t *testing.T) {
	var r *Rules
	r.Closing()
	r.Gone("x")
	r.Back("x")
}
