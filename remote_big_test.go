package hiqlite_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/hiqlite/hiqlite/internal/clustertest"
)

// TestRemoteAnswerTooLarge: a row larger than a frame (256 MiB) cannot
// reach a remote client. The member says so, and the session goes on: it
// once dropped the session without a word, and the client sent the query
// to every host in turn before failing with EOF.
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
	if err == nil || !strings.Contains(err.Error(), "exceeds the frame limit") {
		t.Fatalf("a 257 MiB value through a remote client: %v, want an error about the frame limit", err)
	}
	if err := db.QueryRowContext(ctx, `SELECT 42`).Scan(&n); err != nil || n != 42 {
		t.Fatalf("the session after the refused answer: %d, %v", n, err)
	}
}
