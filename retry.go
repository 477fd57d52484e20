package hiqlite

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/ncruces/go-sqlite3"
)

// Backoff of RetryTx between attempts: the first wait is up to
// retryMinBackoff, doubling up to retryMaxBackoff, each drawn at random
// from its upper half so that retrying callers spread out.
const (
	retryMinBackoff = 2 * time.Millisecond
	retryMaxBackoff = 250 * time.Millisecond
)

// RetryTx runs fn in a transaction begun on db with opts, and commits it
// when fn returns nil. When the attempt fails with an error that proves the
// transaction did not commit and that running it again may succeed, it
// rolls back, waits (jittered exponential backoff) and runs fn again in a
// new transaction, until ctx ends; the transaction is bound to ctx.
//
// The errors retried are those that BeginTx, fn's statements and Commit
// return (fn should return them as they are, or wrapped with %w):
//
//   - SQLITE_BUSY: the write slot stayed taken longer than _busy, and
//     SQLITE_BUSY_SNAPSHOT: something committed since the transaction's
//     first read;
//   - leader loss before COMMIT: [ErrTxAborted] when the transaction was
//     lost with its leader or its connection to it (not when SQLite itself
//     rolled it back, as RAISE(ROLLBACK) does: that error carries SQLite's
//     code and is returned), [ErrNotLeader], [ErrNoLeader] and
//     driver.ErrBadConn (the request never reached a leader);
//   - a COMMIT settled as not applied ([ErrNotApplied]).
//
// Any other error fn returns is returned at once, after rolling back, and
// so is every error of a COMMIT whose outcome is not "not applied":
// [ErrOutcomeUnknown] (check before running it again) and [ErrNotVisible]
// (it committed). When ctx ends between attempts, the error wraps both the
// last attempt's error and ctx's.
//
// fn may run several times, so what it does outside the transaction must
// bear repeating. With _txlock=immediate a read-then-write fn never meets
// SQLITE_BUSY_SNAPSHOT and rarely needs a retry; with deferred transactions
// RetryTx is what makes one succeed under contention.
func RetryTx(ctx context.Context, db *sql.DB, opts *sql.TxOptions, fn func(*sql.Tx) error) error {
	backoff := retryMinBackoff
	for attempt := 1; ; attempt++ {
		err := runTx(ctx, db, opts, fn)
		if err == nil || !retryable(err) {
			return err
		}
		wait := backoff/2 + rand.N(backoff/2+1)
		if backoff *= 2; backoff > retryMaxBackoff {
			backoff = retryMaxBackoff
		}
		timer := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			timer.Stop()
			return fmt.Errorf("hiqlite: RetryTx gave up after %d attempts: %w (%w)", attempt, err, ctx.Err())
		case <-timer.C:
		}
	}
}

// runTx is one attempt of RetryTx.
func runTx(ctx context.Context, db *sql.DB, opts *sql.TxOptions, fn func(*sql.Tx) error) (err error) {
	tx, err := db.BeginTx(ctx, opts)
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			_ = tx.Rollback() // ErrTxDone after a failed Commit
		}
	}()
	if err := runFn(tx, fn); err != nil {
		return err
	}
	return tx.Commit()
}

// runFn calls fn, rolling back before a panic goes on.
func runFn(tx *sql.Tx, fn func(*sql.Tx) error) error {
	done := false
	defer func() {
		if !done {
			_ = tx.Rollback()
		}
	}()
	err := fn(tx)
	done = true
	return err
}

// retryable reports whether err proves that the transaction did not commit
// and that another attempt may succeed.
func retryable(err error) bool {
	switch {
	case errors.Is(err, ErrOutcomeUnknown), errors.Is(err, ErrNotVisible):
		return false
	case errors.Is(err, sqlite3.BUSY), errors.Is(err, ErrNotApplied),
		errors.Is(err, driver.ErrBadConn), errors.Is(err, ErrNotLeader), errors.Is(err, ErrNoLeader):
		return true
	case errors.Is(err, ErrTxAborted):
		// Ended by SQLite itself (ON CONFLICT ROLLBACK, RAISE(ROLLBACK)):
		// the same statements would end it again.
		var serr *sqlite3.Error
		var code sqlite3.ErrorCode
		var xcode sqlite3.ExtendedErrorCode
		return !errors.As(err, &serr) && !errors.As(err, &code) && !errors.As(err, &xcode)
	}
	return false
}
