package hiqlite_test

import (
	"context"
	"fmt"
	"log"
	"log/slog"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hiqlite/hiqlite/internal/clustertest"
)

// TestImportLeavesStdLog checks, in a fresh process of this test binary
// (nothing else has run there), that importing hiqlite leaves the standard
// logger at its defaults: a dependency's init used to take it over.
func TestImportLeavesStdLog(t *testing.T) {
	if os.Getenv("HIQLITE_STDLOG_CHILD") == "1" {
		if f, p, w := log.Flags(), log.Prefix(), log.Writer(); f != log.LstdFlags || p != "" || w != os.Stderr {
			fmt.Printf("std log changed: flags %d prefix %q writer %T (want %d, \"\", *os.File stderr)\n", f, p, w, log.LstdFlags)
			os.Exit(3)
		}
		return
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestImportLeavesStdLog$", "-test.count=1")
	cmd.Env = append(os.Environ(), "HIQLITE_STDLOG_CHILD=1")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("child: %v\n%s", err, out)
	}
}

// logRecord is one captured log line.
type logRecord struct {
	level slog.Level
	text  string // message and attributes
}

// capture is a slog.Handler that keeps every record at or above min.
type capture struct {
	min   slog.Level
	attrs string
	mu    *sync.Mutex
	recs  *[]logRecord
}

func newCapture(min slog.Level) *capture {
	return &capture{min: min, mu: new(sync.Mutex), recs: new([]logRecord)}
}

func (c *capture) Enabled(_ context.Context, l slog.Level) bool { return l >= c.min }

func (c *capture) Handle(_ context.Context, r slog.Record) error {
	var b strings.Builder
	b.WriteString(r.Message)
	b.WriteString(c.attrs)
	r.Attrs(func(a slog.Attr) bool {
		fmt.Fprintf(&b, " %s=%v", a.Key, a.Value)
		return true
	})
	c.mu.Lock()
	*c.recs = append(*c.recs, logRecord{r.Level, b.String()})
	c.mu.Unlock()
	return nil
}

func (c *capture) WithAttrs(as []slog.Attr) slog.Handler {
	d := *c
	for _, a := range as {
		d.attrs += fmt.Sprintf(" %s=%v", a.Key, a.Value)
	}
	return &d
}

func (c *capture) WithGroup(string) slog.Handler { return c }

// records returns the records whose level is at least min and whose text
// contains sub.
func (c *capture) records(min slog.Level, sub string) []logRecord {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []logRecord
	for _, r := range *c.recs {
		if r.level >= min && strings.Contains(r.text, sub) {
			out = append(out, r)
		}
	}
	return out
}

// withLogger gives every member a logger into h, tagged with its id.
func withLogger(h *capture) func(*clustertest.Member) {
	return func(m *clustertest.Member) { m.Logger = slog.New(h).With("node", m.ID) }
}

func TestCleanCloseLogsNoErrors(t *testing.T) {
	t.Parallel()
	h := newCapture(slog.LevelDebug)
	c := clustertest.NewWith(t, 3, withLogger(h))
	mustExec(t, c.Members[c.Follower()].DB, `CREATE TABLE t(x)`)
	c.Close()
	for _, r := range h.records(slog.LevelError, "") {
		t.Errorf("ERROR logged by a clean start and close: %s", r.text)
	}
	for _, r := range h.records(slog.LevelWarn, "") {
		t.Logf("%v %s", r.level, r.text)
	}
}

func TestMemberGoneDoesNotFlood(t *testing.T) {
	t.Parallel()
	h := newCapture(slog.LevelDebug)
	c := clustertest.NewWith(t, 3, withLogger(h))
	l := c.Leader()
	f := c.Follower()
	gone := c.Members[f]
	leaderTag := "node=" + c.Members[l].ID
	c.Kill(f)
	// The leader keeps failing to reach the member: wait until it has
	// logged many failures about it, at any level.
	about := func(min slog.Level) int {
		n := 0
		for _, r := range h.records(min, leaderTag) {
			if strings.Contains(r.text, gone.Listen) || strings.Contains(r.text, gone.ID) {
				n++
			}
		}
		return n
	}
	c.WaitFor("the leader logging failures to reach the killed member", 60*time.Second, func() bool { return about(slog.LevelDebug) >= 30 })
	if n := len(h.records(slog.LevelError, "")); n != 0 {
		for _, r := range h.records(slog.LevelError, "") {
			t.Logf("ERROR %s", r.text)
		}
		t.Errorf("%d ERROR lines while a member is away, want none", n)
	}
	if n, all := about(slog.LevelWarn), about(slog.LevelDebug); n > 10 {
		t.Errorf("the leader logged %d warnings about the killed member (of %d lines), want at most 10", n, all)
	}
	for _, r := range h.records(slog.LevelWarn, leaderTag) {
		t.Logf("%v %s", r.level, r.text)
	}
}
