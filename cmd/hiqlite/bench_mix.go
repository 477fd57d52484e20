package main

// The bench's mixed scenario (point reads and inserts from one set of
// clients) and its GOMAXPROCS sweep.

import (
	"context"
	"database/sql"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
)

// mixReadShare is the share of the mixed scenario's operations that are
// point reads; the others are single-row inserts.
const mixReadShare = 0.9

// mixer is a system that runs the mixed scenario: mixOn returns the pools
// client reads and writes through.
type mixer interface {
	mixOn(client int) (read, write *sql.DB)
}

// mixLoad is the mixed scenario's operation on one system. Each client
// draws from a PRNG of its own, seeded by its number alone, whether its
// next operation reads or inserts and which row it reads: every system
// runs the same sequence per client. It counts the reads and inserts that
// succeeded.
type mixLoad struct {
	clients []mixClient
}

type mixClient struct {
	read, write   *sql.DB
	rng           *rand.Rand
	reads, writes int64 // only its worker touches them while a load runs
	_             [32]byte
}

func newMixLoad(clients int, on mixer) *mixLoad {
	m := &mixLoad{clients: make([]mixClient, clients)}
	for i := range m.clients {
		c := &m.clients[i]
		c.read, c.write = on.mixOn(i)
		c.rng = rand.New(rand.NewPCG(uint64(i), 90))
	}
	return m
}

func (m *mixLoad) op(ctx context.Context, worker int) error {
	c := &m.clients[worker]
	if c.rng.Float64() < mixReadShare {
		var v string
		if err := c.read.QueryRowContext(ctx, benchSelect, c.rng.IntN(readRows)+1).Scan(&v); err != nil {
			return err
		}
		c.reads++
		return nil
	}
	if _, err := c.write.ExecContext(ctx, benchInsert, benchValue); err != nil {
		return err
	}
	c.writes++
	return nil
}

// take returns the reads and inserts done since the last take. Call it
// between loads only.
func (m *mixLoad) take() (reads, writes int64) {
	for i := range m.clients {
		c := &m.clients[i]
		reads += c.reads
		writes += c.writes
		c.reads, c.writes = 0, 0
	}
	return reads, writes
}

// mixOn binds the clients to the nodes in turn, all of them: a client of
// a follower reads there and has its inserts forwarded to the leader.
func (s *hiqliteSystem) mixOn(client int) (read, write *sql.DB) {
	nodes := s.c.running()
	n := nodes[client%len(nodes)]
	return n.db, n.db
}

// mixOn gives every client the readers' pool and the one writer
// connection, as the other scenarios do.
func (s *sqliteSystem) mixOn(int) (read, write *sql.DB) { return s.read, s.write }

// maxProcs bounds --procs: more than this is a typo.
const maxProcs = 1024

// parseProcs parses --procs: GOMAXPROCS values separated by commas, each
// a whole number from 1 to maxProcs, none twice. "" is no sweep.
func parseProcs(list string) ([]int, error) {
	if list == "" {
		return nil, nil
	}
	var procs []int
	for f := range strings.SplitSeq(list, ",") {
		f = strings.TrimSpace(f)
		n, err := strconv.Atoi(f)
		if err != nil || n < 1 || n > maxProcs {
			return nil, fmt.Errorf("--procs: %q is not a GOMAXPROCS from 1 to %d (want a list such as 2,4,8,16)", f, maxProcs)
		}
		if slices.Contains(procs, n) {
			return nil, fmt.Errorf("--procs: %d comes twice", n)
		}
		procs = append(procs, n)
	}
	return procs, nil
}
