package hiqlite_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/ncruces/go-sqlite3"

	"github.com/hiqlite/hiqlite/internal/clustertest"
)

// TestRemoteAnswerTooLarge: a value larger than a frame (256 MiB) cannot
// reach a remote client. The member cannot even build it (SQLite's memory
// is capped at 256 MiB, so an answer larger than a frame is out of reach;
// the member would answer the frame limit's error otherwise), and says so;
// the session goes on. Either failure once killed or dropped the session.
func TestRemoteAnswerTooLarge(t *testing.T) {
	if testing.Short() || raceEnabled {
		t.Skip("slow tier: builds a 257 MiB value; not under -race or -short")
	}
	c := clustertest.New(t, 1)
	db := openRemote(t, c, 0)
	db.SetMaxOpenConns(1) // the same session before and after
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var n int
	err := db.QueryRowContext(ctx, `SELECT length(zeroblob(257 * 1024 * 1024))`).Scan(&n)
	if err != nil || n != 257<<20 {
		t.Fatalf("length of a large value: %d, %v", n, err)
	}
	var b []byte
	err = db.QueryRowContext(ctx, `SELECT zeroblob(257 * 1024 * 1024)`).Scan(&b)
	if !errors.Is(err, sqlite3.NOMEM) {
		t.Fatalf("a 257 MiB value through a remote client: %v, want an error matching sqlite3.NOMEM", err)
	}
	if err := db.QueryRowContext(ctx, `SELECT 42`).Scan(&n); err != nil || n != 42 {
		t.Fatalf("the session after the refused answer: %d, %v", n, err)
	}
}
