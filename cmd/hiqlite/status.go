package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/hiqlite/hiqlite"
)

func cmdStatus(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := newFlagSet("status", "--dsn DSN", stderr)
	dsn := fs.String("dsn", "", "the node to open: DATA_DIR[?param=value&...] (required)")
	wait := fs.Duration("wait", 10*time.Second, "how long to wait for the node to be ready")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *dsn == "" {
		return &usageError{errors.New("--dsn is required, for example: hiqlite status --dsn /tmp/hiqlite")}
	}
	if *wait <= 0 {
		return &usageError{fmt.Errorf("--wait %v must be positive", *wait)}
	}
	return status(ctx, *dsn, *wait, stdout)
}

// status opens the node of dsn in this process and prints what it knows
// about itself and the cluster. Until the cluster issue brings a client for
// running nodes, the data directory must not be in use by another process.
func status(ctx context.Context, dsn string, wait time.Duration, w io.Writer) error {
	wctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	db, err := openNode(wctx, dsn)
	if err != nil {
		return err
	}
	defer db.Close()
	n, err := hiqlite.NodeOf(ctx, db)
	if err != nil {
		return err
	}
	leaderID, leaderAddr := n.Leader()
	leader := leaderID
	switch {
	case leaderID == "":
		leader = "unknown (no leader right now)"
	case leaderID == n.ID():
		leader += " (this node)"
	case leaderAddr != "":
		leader += " at " + leaderAddr
	}
	fmt.Fprintf(w, "node:          %s\n", n.ID())
	fmt.Fprintf(w, "leader:        %s\n", leader)
	fmt.Fprintf(w, "applied index: %d\n", n.AppliedIndex())
	fmt.Fprintf(w, "data dir:      %s\n", n.DataDir())
	if err := n.Fault(); err != nil {
		fmt.Fprintf(w, "fault:         %v\n", err)
	}
	ms, err := n.Members()
	if err != nil {
		return fmt.Errorf("members: %w", err)
	}
	cells := make([][]string, 0, len(ms))
	for _, m := range ms {
		cells = append(cells, []string{m.ID, m.Address, strconv.FormatBool(m.Voter), strconv.FormatBool(m.IsLeader)})
	}
	fmt.Fprintln(w, "members:")
	printTable(w, "  ", []string{"ID", "ADDRESS", "VOTER", "LEADER"}, cells)
	return nil
}
