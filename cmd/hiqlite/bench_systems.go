package main

// The systems the bench measures: hiqlite (a three-node cluster in this
// process) and its baselines, plain SQLite through
// github.com/ncruces/go-sqlite3/driver and bare Raft with a state machine
// that does nothing.

import (
	"context"
	crand "crypto/rand"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	wal "github.com/hashicorp/raft-wal"
	"github.com/hashicorp/raft-wal/metadb"
	_ "github.com/ncruces/go-sqlite3/driver" // "sqlite3", the plain SQLite baseline

	"github.com/hiqlite/hiqlite"
	"github.com/hiqlite/hiqlite/internal/devcert"
	"github.com/hiqlite/hiqlite/internal/logging"
	"github.com/hiqlite/hiqlite/internal/nodeport"
	"github.com/hiqlite/hiqlite/replication"
)

// The statements every SQL system runs. k takes the inserts; r holds
// readRows rows for the point reads.
const (
	benchSchema = `CREATE TABLE k(id INTEGER PRIMARY KEY, v TEXT);
CREATE TABLE r(id INTEGER PRIMARY KEY, v TEXT);`
	benchFill = `WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?)
INSERT INTO r SELECT i, 'row ' || i FROM n`
	benchInsert = `INSERT INTO k(v) VALUES (?)`
	benchSelect = `SELECT v FROM r WHERE id = ?`
	benchValue  = "a row of the hiqlite bench"
	readRows    = 10000
)

// benchSystem is one system under measurement. ops returns the operation
// that measures sc on it, or nil when sc does not apply to it.
type benchSystem interface {
	ops(sc *scenario) op
	close() error
}

// sqlOps are the operations of a system reached through database/sql:
// writes on write, reads on read.
type sqlOps struct {
	write, read *sql.DB
	txRows      int
}

func (s sqlOps) insert(ctx context.Context, _ int) error {
	_, err := s.write.ExecContext(ctx, benchInsert, benchValue)
	return err
}

// tx inserts txRows rows in one transaction.
func (s sqlOps) tx(ctx context.Context, _ int) error {
	tx, err := s.write.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	for range s.txRows {
		if _, err := tx.ExecContext(ctx, benchInsert, benchValue); err != nil {
			tx.Rollback()
			return err
		}
	}
	return tx.Commit()
}

// reader returns a point read by a random primary key for each of workers.
func (s sqlOps) reader(workers int) op {
	rngs := make([]*rand.Rand, workers)
	for i := range rngs {
		rngs[i] = rand.New(rand.NewPCG(uint64(i), 42))
	}
	return func(ctx context.Context, w int) error {
		var v string
		return s.read.QueryRowContext(ctx, benchSelect, rngs[w].IntN(readRows)+1).Scan(&v)
	}
}

// prepare creates the tables and fills r.
func (s sqlOps) prepare(ctx context.Context) error {
	if _, err := s.write.ExecContext(ctx, benchSchema); err != nil {
		return err
	}
	_, err := s.write.ExecContext(ctx, benchFill, readRows)
	return err
}

// maxWorkers is the most workers of any scenario; pools keep that many
// idle connections so that no operation pays for opening one.
const maxWorkers = 256

// hiqliteSystem is a hiqlite cluster (three voters unless its spec says
// otherwise) on loopback in this process. Writes on the leader run there;
// writes on a follower are forwarded to the leader; reads run on a
// follower, locally.
type hiqliteSystem struct {
	c        *localCluster
	leader   *localNode
	follower *localNode
	txRows   int

	cacheKeys atomic.Int64 // spreads the cache scenarios over their keys
	fillOnce  sync.Once    // fills the keys the cache get scenario reads
	fillErr   error

	remote *sql.DB // a remote client attached to the follower, opened by the first remote scenario

	spec   clusterSpec
	others []*hiqliteSystem // the clusters of the other specs the scenarios to run name (on the base cluster only)
}

// startHiqlite starts a cluster of spec's voters; with spec.tls, with
// mutual TLS: a development CA and one certificate for 127.0.0.1 that
// every node presents.
func startHiqlite(ctx context.Context, dir string, txRows int, spec clusterSpec) (_ *hiqliteSystem, err error) {
	s := &hiqliteSystem{c: &localCluster{dir: dir}, txRows: txRows, spec: spec}
	defer func() {
		if err != nil {
			s.close()
		}
	}()
	var params []string
	if spec.tls {
		if params, err = benchTLSFiles(filepath.Join(dir, "tls")); err != nil {
			return nil, err
		}
	}
	if err := s.c.create(spec.voters, params...); err != nil {
		return nil, err
	}
	if err := s.c.openAll(ctx); err != nil {
		return nil, err
	}
	for _, n := range s.c.nodes {
		n.db.SetMaxIdleConns(maxWorkers)
	}
	if err := s.c.waitReady(ctx); err != nil {
		return nil, err
	}
	if err := s.findLeader(ctx); err != nil {
		return nil, err
	}
	if err := (sqlOps{write: s.leader.db}).prepare(ctx); err != nil {
		return nil, err
	}
	if err := s.c.waitApplied(ctx, s.leader.node.AppliedIndex()); err != nil {
		return nil, err
	}
	return s, nil
}

// findLeader waits for the nodes to agree on a leader and picks a follower.
func (s *hiqliteSystem) findLeader(ctx context.Context) error {
	l, err := s.c.leader(ctx)
	if err != nil {
		return err
	}
	s.leader, s.follower = l, s.c.followers(l)[0]
	return nil
}

// leaderMoved reports whether the leader changed since findLeader, and if
// so finds the new one: the measurement that just ran may have been
// forwarded where it meant to be local.
func (s *hiqliteSystem) leaderMoved(ctx context.Context) (bool, error) {
	if s.leader.node.IsLeader() {
		return false, nil
	}
	return true, s.findLeader(ctx)
}

// benchTLSFiles writes a CA and a node certificate for 127.0.0.1 in dir
// and returns the DSN parameters that use them.
func benchTLSFiles(dir string) ([]string, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	ca, err := devcert.NewCA("hiqlite bench CA", 24*time.Hour)
	if err != nil {
		return nil, err
	}
	leaf, err := ca.Issue("node", []string{"127.0.0.1"}, time.Now().Add(-time.Minute), time.Now().Add(24*time.Hour))
	if err != nil {
		return nil, err
	}
	cert, key, caFile := filepath.Join(dir, "node.crt"), filepath.Join(dir, "node.key"), filepath.Join(dir, "ca.crt")
	if err := leaf.Write(cert, key); err != nil {
		return nil, err
	}
	if err := ca.WriteCA(caFile); err != nil {
		return nil, err
	}
	return []string{"_tls_cert=" + dsnEscaper.Replace(cert), "_tls_key=" + dsnEscaper.Replace(key), "_tls_ca=" + dsnEscaper.Replace(caFile)}, nil
}

// forCluster returns the cluster of spec: s or one of its others; nil
// if none runs.
func (s *hiqliteSystem) forCluster(spec clusterSpec) *hiqliteSystem {
	if s.spec == spec {
		return s
	}
	for _, o := range s.others {
		if o.spec == spec {
			return o
		}
	}
	return nil
}

func (s *hiqliteSystem) ops(sc *scenario) op {
	if sc.cluster() != s.spec {
		if o := s.forCluster(sc.cluster()); o != nil {
			return o.ops(sc)
		}
		return nil
	}
	on := s.leader
	if sc.follower {
		on = s.follower
	}
	o := sqlOps{write: on.db, read: s.follower.db, txRows: s.txRows}
	if sc.remote {
		db, err := s.remoteClient()
		if err != nil {
			return func(context.Context, int) error { return err }
		}
		o.write, o.read = db, db
	}
	switch sc.kind {
	case kindInsert:
		return o.insert
	case kindTx:
		return o.tx
	case kindRead:
		return o.reader(sc.workers)
	case kindCacheSet:
		cache := s.cacheLeader().node.Cache("bench")
		value := []byte("a value of a few dozen bytes, as a session token might be")
		return func(ctx context.Context, worker int) error {
			return cache.Set(ctx, "k"+strconv.FormatInt(s.cacheKeys.Add(1)%10000, 10), value, 0)
		}
	case kindCacheGet:
		cache := s.follower.node.Cache("bench")
		return func(ctx context.Context, worker int) error {
			s.fillOnce.Do(func() { s.fillErr = s.fillCache(ctx) })
			if s.fillErr != nil {
				return s.fillErr
			}
			if _, ok := cache.Get("g" + strconv.FormatInt(s.cacheKeys.Add(1)%100, 10)); !ok {
				return errors.New("cache get: a key the bench set is missing")
			}
			return nil
		}
	}
	return nil
}

// cacheLeader is the node that leads the cache group: the database's
// leader, unless the two groups' leaders parted (an election in one of
// them), in which case a set "on the leader" would be forwarded.
func (s *hiqliteSystem) cacheLeader() *localNode {
	id, _ := s.leader.node.CacheLeader()
	for _, n := range s.c.running() {
		if n.name == id {
			return n
		}
	}
	return s.leader
}

// remoteClient is the remote client of the follower, opened once: a
// hiqlite:// DSN naming the follower's node port, with the cluster's
// secret file.
func (s *hiqliteSystem) remoteClient() (*sql.DB, error) {
	if s.remote != nil {
		return s.remote, nil
	}
	dsn := hiqlite.RemotePrefix + s.follower.listen + "?_secret_file=" + dsnEscaper.Replace(s.c.secretFile)
	db, err := sql.Open(hiqlite.DriverName, dsn)
	if err != nil {
		return nil, err
	}
	db.SetMaxIdleConns(maxWorkers)
	s.remote = db
	return db, nil
}

// fillCache sets the 100 keys the get scenario reads, on the leader, and
// waits until the follower that reads them has them all.
func (s *hiqliteSystem) fillCache(ctx context.Context) error {
	for i := range 100 {
		if err := s.leader.node.Cache("bench").Set(ctx, "g"+strconv.Itoa(i), []byte("v"), 0); err != nil {
			return err
		}
	}
	return waitFor(ctx, "the cache keys on the follower", func() (bool, error) {
		_, ok := s.follower.node.Cache("bench").Get("g99")
		return ok, nil
	})
}

func (s *hiqliteSystem) close() error {
	var errs []error
	if s.remote != nil {
		errs = append(errs, s.remote.Close())
	}
	for _, o := range s.others {
		errs = append(errs, o.close())
	}
	for _, n := range s.c.nodes {
		if err := n.stop(); err != nil {
			errs = append(errs, fmt.Errorf("stop %s: %w", n.name, err))
		}
	}
	return errors.Join(errs...)
}

// sqliteSystem is plain SQLite on one file in WAL mode, with
// synchronous=FULL (every commit fsyncs the WAL: durable) or NORMAL (the
// WAL is fsynced only at checkpoints: a power loss can lose the last
// commits, never corrupt; what hiqlite's state machine runs with, since
// its Raft log is what makes a write durable). Writers share one
// connection, as Go programs commonly run SQLite writes (SQLite admits one
// writer at a time, and a pool of writers would wait in its busy handler,
// which sleeps); readers get a pool of read-only connections, as in
// hiqlite.
type sqliteSystem struct {
	sqlOps
}

func startSQLite(ctx context.Context, path, synchronous string, txRows int) (_ *sqliteSystem, err error) {
	s := &sqliteSystem{sqlOps{txRows: txRows}}
	defer func() {
		if err != nil {
			s.close()
		}
	}()
	const pragmas = "_pragma=busy_timeout(10000)&_pragma=journal_mode(wal)"
	if s.write, err = sql.Open("sqlite3", "file:"+path+"?_txlock=immediate&"+pragmas+"&_pragma=synchronous("+synchronous+")"); err != nil {
		return nil, err
	}
	s.write.SetMaxOpenConns(1)
	if err := s.prepare(ctx); err != nil {
		return nil, err
	}
	if s.read, err = sql.Open("sqlite3", "file:"+path+"?mode=ro&_pragma=busy_timeout(10000)"); err != nil {
		return nil, err
	}
	s.read.SetMaxIdleConns(maxWorkers)
	return s, nil
}

func (s *sqliteSystem) ops(sc *scenario) op {
	switch sc.kind {
	case kindInsert:
		return s.insert
	case kindTx:
		return s.tx
	case kindRead:
		return s.reader(sc.workers)
	}
	return nil
}

func (s *sqliteSystem) close() error {
	var errs []error
	for _, db := range []*sql.DB{s.read, s.write} {
		if db != nil {
			errs = append(errs, db.Close())
		}
	}
	return errors.Join(errs...)
}

// raftSystem is bare hashicorp/raft: three voters in this process with
// hiqlite's log store (raft-wal, fsync per append) and transport (raft's
// NetworkTransport over the node's authenticated TCP mux, nodeport.Mux, on
// 127.0.0.1), and a state machine that does nothing. Writers apply entries
// of the size of hiqlite's single-row INSERT command on the leader. What
// hiqlite adds on top of it is SQL: parsing, the state machine's SQLite
// transaction, results, the database/sql driver.
type raftSystem struct {
	nodes []*bareRaft
	entry []byte
}

// bareRaft is one voter of a raftSystem.
type bareRaft struct {
	meta  *metadb.BoltMetaDB
	log   *wal.WAL
	mux   *nodeport.Mux
	trans *raft.NetworkTransport
	raft  *raft.Raft
}

// bareRaftConfig is raft.Config as cluster/lifecycle.go sets it for a cluster
// node; keep the two in step.
func bareRaftConfig(id string, logger hclog.Logger) *raft.Config {
	rc := raft.DefaultConfig()
	rc.LocalID = raft.ServerID(id)
	rc.Logger = logger
	rc.NoSnapshotRestoreOnStart = true
	rc.CommitTimeout = 5 * time.Millisecond
	rc.MaxAppendEntries = 256
	rc.HeartbeatTimeout = 500 * time.Millisecond
	rc.ElectionTimeout = 500 * time.Millisecond
	rc.LeaderLeaseTimeout = 500 * time.Millisecond
	return rc
}

// benchLogger logs as a node does: at the level HIQLITE_LOG names, under
// the same level rules (internal/logging).
func benchLogger(name string) hclog.Logger {
	return logging.New(logging.Default()).Named(name)
}

func startRaft(ctx context.Context, dir string) (_ *raftSystem, err error) {
	s := &raftSystem{}
	defer func() {
		if err != nil {
			s.close()
		}
	}()
	cmd := replication.Command{Kind: replication.KindExec, Time: time.Now().UnixNano(), Seed: rand.Uint64(),
		Origin: replication.Origin{Node: "node1", Session: 1, Seq: 1},
		Stmts:  []replication.Statement{{SQL: benchInsert, Args: []replication.Arg{{Ordinal: 1, Value: benchValue}}}}}
	if s.entry, err = cmd.MarshalBinary(); err != nil {
		return nil, err
	}
	secret := make([]byte, 32)
	crand.Read(secret)
	logger := benchLogger("bench-raft")
	var servers []raft.Server
	for i := range 3 {
		n := &bareRaft{meta: &metadb.BoltMetaDB{}}
		s.nodes = append(s.nodes, n)
		id := fmt.Sprintf("raft%d", i+1)
		ndir := filepath.Join(dir, id)
		if err := os.MkdirAll(ndir, 0o755); err != nil {
			return nil, err
		}
		// raft-wal's Close leaves its meta database open: close it too.
		if n.log, err = wal.Open(ndir, wal.WithMetaStore(n.meta)); err != nil {
			return nil, err
		}
		if n.mux, err = nodeport.Listen("127.0.0.1:0", "", secret, logger); err != nil {
			return nil, err
		}
		n.trans = raft.NewNetworkTransportWithConfig(&raft.NetworkTransportConfig{
			Stream:  n.mux.RaftLayer(),
			MaxPool: 3,
			// As the cluster's transport: no pipelined replication.
			MaxRPCsInFlight: 1,
			Timeout:         10 * time.Second,
			Logger:          logger,
		})
		servers = append(servers, raft.Server{Suffrage: raft.Voter, ID: raft.ServerID(id), Address: n.trans.LocalAddr()})
	}
	for i, n := range s.nodes {
		rc := bareRaftConfig(string(servers[i].ID), logger)
		snaps, err := raft.NewFileSnapshotStoreWithLogger(filepath.Join(dir, string(servers[i].ID)), 2, logger)
		if err != nil {
			return nil, err
		}
		if err := raft.BootstrapCluster(rc, n.log, n.log, snaps, n.trans, raft.Configuration{Servers: servers}); err != nil {
			return nil, err
		}
		if n.raft, err = raft.NewRaft(rc, noopFSM{}, n.log, n.log, snaps, n.trans); err != nil {
			return nil, err
		}
	}
	if err := s.waitLeader(ctx); err != nil {
		return nil, err
	}
	return s, nil
}

// waitLeader waits up to demoWait for one of the nodes to lead.
func (s *raftSystem) waitLeader(ctx context.Context) error {
	return waitFor(ctx, "a bare Raft leader", func() (bool, error) {
		for _, n := range s.nodes {
			if n.raft.State() == raft.Leader {
				return true, nil
			}
		}
		return false, nil
	})
}

func (s *raftSystem) ops(sc *scenario) op {
	if sc.kind != kindInsert {
		return nil
	}
	return func(ctx context.Context, _ int) error {
		for _, n := range s.nodes {
			if n.raft.State() == raft.Leader {
				return n.raft.Apply(s.entry, 10*time.Second).Error()
			}
		}
		return raft.ErrNotLeader
	}
}

func (s *raftSystem) close() error {
	var errs []error
	for _, n := range s.nodes {
		if n.raft != nil {
			errs = append(errs, n.raft.Shutdown().Error())
		}
	}
	for _, n := range s.nodes {
		if n.trans != nil {
			errs = append(errs, n.trans.Close())
		}
		if n.mux != nil {
			errs = append(errs, n.mux.Close())
		}
		if n.log != nil {
			errs = append(errs, n.log.Close())
		}
		errs = append(errs, n.meta.Close())
	}
	return errors.Join(errs...)
}

// noopFSM is a raft.BatchingFSM that applies nothing, as hiqlite's state
// machine is a BatchingFSM.
type noopFSM struct{}

func (noopFSM) Apply(*raft.Log) any { return nil }

func (noopFSM) ApplyBatch(logs []*raft.Log) []any { return make([]any, len(logs)) }

func (noopFSM) Snapshot() (raft.FSMSnapshot, error) { return noopSnapshot{}, nil }

func (noopFSM) Restore(rc io.ReadCloser) error { return rc.Close() }

type noopSnapshot struct{}

func (noopSnapshot) Persist(sink raft.SnapshotSink) error { return sink.Close() }

func (noopSnapshot) Release() {}
