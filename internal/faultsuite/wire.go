// Package faultsuite is hiqlite's fault-injection suite: a cluster of
// "hiqlite serve" processes built with -tags faultsuite, clients that run
// workloads through every node, a nemesis that kills, pauses, restarts,
// wipes, fills the disk of and partitions nodes on a seeded schedule, and
// checkers that judge the recorded history (linearizable registers, bank
// totals, unique inserts, exactly-once increments, identical replicas,
// caches without stalls or invented values, fenced lock holders,
// notifications delivered once and in order).
//
// This file holds what the serve binary and the suite share: the reply of
// the workload endpoints and how an error is classified.
package faultsuite

import (
	"database/sql/driver"
	"errors"

	"github.com/ncruces/go-sqlite3"

	"github.com/hiqlite/hiqlite"
)

// Outcomes of an operation, as in Jepsen's histories.
const (
	OK   = "ok"   // it happened
	Fail = "fail" // it certainly did not happen, and never will
	Info = "info" // indeterminate: it may have happened, now or later
)

// Reply is the JSON answer of every workload endpoint.
type Reply struct {
	Outcome string  `json:"outcome"`
	Value   *int64  `json:"value,omitempty"`  // a register's value (nil: no row)
	Values  []int64 `json:"values,omitempty"` // bank balances, in account order
	Error   string  `json:"error,omitempty"`
	// Dump, Integrity and Applied answer /x/dump: each user table's rows
	// as text, PRAGMA integrity_check, the node's applied index.
	Dump      map[string]string `json:"dump,omitempty"`
	Integrity string            `json:"integrity,omitempty"`
	Applied   uint64            `json:"applied,omitempty"`
}

// WriteOutcome classifies the error of a write (an autocommit statement or
// a COMMIT) by what the driver documents: Fail when it proves the write
// was not applied and never will be, Info when the outcome is unknown, OK
// for nil and for ErrNotVisible (committed, not yet visible on this node).
func WriteOutcome(err error) string {
	switch {
	case err == nil, errors.Is(err, hiqlite.ErrNotVisible):
		return OK
	case errors.Is(err, hiqlite.ErrOutcomeUnknown):
		return Info
	case errors.Is(err, hiqlite.ErrNotApplied), errors.Is(err, hiqlite.ErrNotLeader),
		errors.Is(err, hiqlite.ErrNoLeader), errors.Is(err, driver.ErrBadConn),
		errors.Is(err, hiqlite.ErrTooLarge), errors.Is(err, hiqlite.ErrRefused):
		return Fail
	case errors.Is(err, hiqlite.ErrTxAborted):
		return Fail // the transaction no longer exists on the writer
	}
	var serr *sqlite3.Error
	var code sqlite3.ErrorCode
	var xcode sqlite3.ExtendedErrorCode
	if errors.Is(err, sqlite3.INTERRUPT) {
		return Info // interrupted by the deadline: where, it does not say
	}
	if errors.As(err, &serr) || errors.As(err, &code) || errors.As(err, &xcode) {
		// SQL errors are the leader's apply result (or a local refusal),
		// except a stopped state machine's I/O fault: that node refuses.
		return Fail
	}
	if errors.Is(err, hiqlite.ErrStopped) || errors.Is(err, hiqlite.ErrClosed) {
		return Info // the node may have forwarded it before stopping
	}
	return Info
}
