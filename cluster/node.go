package cluster

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	wal "github.com/hashicorp/raft-wal"
	"github.com/hashicorp/raft-wal/metadb"

	"github.com/hiqlite/hiqlite/extensions"
	"github.com/hiqlite/hiqlite/internal/wire"
	"github.com/hiqlite/hiqlite/replication"
)

// Errors of the node.
var (
	ErrNotLeader = wire.ErrNotLeader
	ErrClosed    = wire.ErrClosed
	ErrNoLeader  = wire.ErrNoLeader
	ErrLocked    = errors.New("hiqlite: data dir locked")
	// ErrLeadershipLost: this node lost its leadership while a write was
	// in its log. Writes with an origin are resolved on the new leader
	// before the caller sees an error.
	ErrLeadershipLost = wire.ErrLeadershipLost
)

// Config is what a node needs to start. The root package builds it from the
// DSN; every field is validated there.
type Config struct {
	Dir     string        // DATA_DIR
	ID      string        // "" = the persisted id, or a new one
	Timeout time.Duration // how long a write may wait to enter the Raft log
	Logger  hclog.Logger  // nil: errors only, to stderr
	// SnapshotThreshold is how many log entries trigger a snapshot; 0 picks
	// the default.
	SnapshotThreshold uint64
	// SnapshotBytes is how many bytes of log entries applied since the last
	// snapshot trigger one; 0 = by entry count only.
	SnapshotBytes uint64
	// SegmentSize is the size of raft-wal's segment files; 0 = raft-wal's
	// default (64 MiB; the root package's default is 4 MiB). Compaction
	// deletes whole segments only.
	SegmentSize int

	// Cluster mode, when Listen is set. Without Listen the
	// node is a one-voter cluster with no network at all.
	Listen      string        // host:port for Raft and RPC
	Advertise   string        // host:port peers dial; "" = the bound Listen address
	Gossip      string        // memberlist bind host:port
	Join        []string      // gossip seeds
	Expect      int           // voters to see in gossip before the first bootstrap; 0 = 1 without Join, never (join only) with Join
	Voter       bool          // false: a non-voting read replica
	Secret      []byte        // cluster secret; empty only on loopback
	ReapTimeout time.Duration // how long a dead node stays a member; 0 = 5 minutes
	// Mutual TLS on the port (tls.go): TLS, or the PEM files TLSCert,
	// TLSKey and TLSCA (re-read when they change); neither = clear text.
	TLS                    *tls.Config
	TLSCert, TLSKey, TLSCA string
	// FastGossip uses memberlist timings for one machine (tests, demo).
	FastGossip bool
	// InMemory keeps everything in memory and creates no file: the
	// database (replication.OpenMemory), the Raft log, its stable store
	// and the snapshots. Dir is then only a name for messages; Listen must
	// be empty.
	InMemory bool
}

// Files and directories inside DATA_DIR.
const (
	dbFile     = "hiqlite.db"
	raftDir    = "raft"
	snapDir    = "snapshots"
	idFile     = "node-id"
	lockFile   = "LOCK"
	retainSnap = 2
)

// Node is one member of a hiqlite cluster: a Raft instance whose state
// machine is the SQLite database in Dir.
//
// # Goroutines
//
// Besides raft's own, for two Raft groups (the main one and the cache
// group of cache.go), a node runs watchLeadership, stopOnFault and the
// cache group's run, propose and settle; in cluster mode also
// runMembership and the RPC server (its accept loop and one goroutine per
// connection), plus the goroutines of Mux and Discovery, which own them. All are started in Open
// (or by the accept loop, or by the cache group's start) and joined in
// Close.
type Node struct {
	cfg      Config
	id       string
	lock     *os.File
	sm       *replication.StateMachine
	log      *wal.WAL
	logCache *raft.LogCache // n.log behind a cache of the newest entries; see logStore
	logFault *faultLog      // logCache as raft gets it; see persist.go
	stable   *faultStable   // n.log's stable store as raft gets it; see persist.go
	meta     *metadb.BoltMetaDB
	mem      *raft.InmemStore // log and stable store of an InMemory node, instead of log
	snaps    raft.SnapshotStore
	trans    raft.Transport
	raft     *raft.Raft
	gate     *gate

	// cluster mode
	mux       *Mux
	disc      *Discovery
	addr      string        // the Raft/RPC address peers dial
	inCluster atomic.Bool   // raft has (or was given) a configuration
	gossipCh  chan struct{} // a gossip change happened (capacity 1)
	rpc       *rpcServer
	client    *rpcClient
	probes    probeLog // failed probes of discovered nodes (probe.go)

	refused atomic.Pointer[error] // why gossip refused this node (identity.go); nil: not refused

	hub   *extensions.Hub // listeners of hiqlite_notify and Notify
	cache *cacheGroup     // caches and locks (cache.go)

	notifyCh chan bool
	stopCh   chan struct{}
	wg       sync.WaitGroup

	readyMu sync.Mutex
	ready   chan struct{} // closed while this node is a leader ready for writes
	closed  atomic.Bool

	faulted    chan struct{} // closed by persistFailed: Raft state could not be persisted
	faultOnce  sync.Once
	persistErr atomic.Pointer[error] // the first error given to persistFailed
}

// Open starts the node in cfg.Dir: it takes the directory's lock, opens the
// state database, the Raft log and the snapshots, and starts Raft as a
// single voter if the directory has no Raft state yet.
func Open(cfg Config) (_ *Node, err error) {
	if cfg.Timeout <= 0 {
		cfg.Timeout = 10 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = defaultLogger()
	}
	if cfg.InMemory && cfg.Listen != "" {
		return nil, errors.New("hiqlite: an in-memory node has no network: it takes no Listen address")
	}
	n := &Node{cfg: cfg, gate: newGate(), hub: extensions.NewHub(), stopCh: make(chan struct{}), notifyCh: make(chan bool, 16), ready: make(chan struct{}), faulted: make(chan struct{})}
	defer func() {
		if err != nil {
			n.Close() // tears down whatever started, in order
		}
	}()
	if cfg.InMemory {
		err = n.openMemory()
	} else {
		err = n.openFiles()
	}
	if err != nil {
		return nil, err
	}

	rc := raft.DefaultConfig()
	rc.LocalID = raft.ServerID(n.id)
	rc.Logger = cfg.Logger.Named("raft")
	rc.NotifyCh = n.notifyCh
	// The database is persistent and records its applied index, so raft
	// must not restore the last snapshot over it on start; entries it
	// replays that the database already holds are skipped by the state
	// machine.
	rc.NoSnapshotRestoreOnStart = true
	// CommitTimeout paces the AppendEntries that carry the commit index
	// when no new entry does: a follower applies its own forwarded write
	// only when it hears of the commit, so this bounds a lone writer on a
	// follower. 2 ms (2-4 ms random) against 5: a follower's single-client
	// transactions went from 89 to 143-184/s; an idle 3-node cluster in one
	// process costs 17.8% of a core against 12.7%.
	rc.CommitTimeout = 2 * time.Millisecond
	// Group commit: the leader loop gathers the writes waiting on its apply
	// channel, up to MaxAppendEntries, into one log append (one fsync), one
	// AppendEntries per follower and one state machine batch (one SQLite
	// transaction). BatchApplyCh stays off: raft never answers the futures
	// left in that buffer when it shuts down, so a closing node would wait
	// for them forever.
	rc.MaxAppendEntries = 256
	if cfg.SnapshotThreshold > 0 {
		rc.SnapshotThreshold = cfg.SnapshotThreshold
		rc.TrailingLogs = cfg.SnapshotThreshold
	}
	// Raft checks the threshold every 10-20 s instead of every 2-4 min, so
	// a busy node's log cannot grow far past it: a restart reads every
	// entry after the last snapshot (raft scans them for configuration
	// changes, then replays them to the state machine, which skips those
	// the database holds), about 15 µs each.
	rc.SnapshotInterval = 10 * time.Second
	has, err := raft.HasExistingState(n.rawLog(), n.rawStable(), n.snaps)
	if err != nil {
		return nil, unreadableLog(cfg.Dir, err)
	}
	if !has && n.sm.AppliedIndex() > 0 {
		if err = n.orphanedDatabase(); err != nil {
			return nil, err
		}
	}
	logFull := n.sm.LogFull()
	if n.cache, err = newCacheGroup(n); err != nil {
		return nil, err
	}
	if cfg.Listen == "" {
		err = n.startSingle(rc, has)
	} else {
		err = n.startCluster(rc, has)
	}
	if err != nil {
		return nil, err
	}
	n.goFunc(n.watchLeadership)
	n.goFunc(n.stopOnFault)
	n.goFunc(n.cache.run)
	if logFull != nil {
		n.goFunc(func() { n.snapshotOnLogSize(logFull) })
	}
	return n, nil
}

// startSingle starts a one-voter cluster with no network: an in-memory
// transport, bootstrapped on first start. A single voter has nobody to wait
// for, so it elects itself at once.
func (n *Node) startSingle(rc *raft.Config, has bool) (err error) {
	rc.HeartbeatTimeout = 100 * time.Millisecond
	rc.ElectionTimeout = 100 * time.Millisecond
	rc.LeaderLeaseTimeout = 100 * time.Millisecond
	addr, trans := raft.NewInmemTransport(raft.ServerAddress(n.id))
	n.trans = trans
	n.addr = string(addr)
	if !has {
		boot := raft.Configuration{Servers: []raft.Server{{Suffrage: raft.Voter, ID: rc.LocalID, Address: addr}}}
		if err = guard(func() error { return raft.BootstrapCluster(rc, n.logStore(), n.stableStore(), n.snaps, trans, boot) }); err != nil {
			return fmt.Errorf("hiqlite: bootstrap: %w", n.startError(err))
		}
	}
	n.inCluster.Store(true)
	return n.newRaft(rc, trans)
}

// startCluster starts the network: the muxed listener carrying Raft and
// RPC, raft over it, the RPC server, gossip, and the membership goroutine,
// which bootstraps or waits to be added.
func (n *Node) startCluster(rc *raft.Config, has bool) (err error) {
	cfg := n.cfg
	if cfg.ReapTimeout <= 0 {
		n.cfg.ReapTimeout = 5 * time.Minute
	}
	rc.HeartbeatTimeout = 500 * time.Millisecond
	rc.ElectionTimeout = 500 * time.Millisecond
	rc.LeaderLeaseTimeout = 500 * time.Millisecond // as long as allowed: a starved leader (2 cores, -race) steps down less
	nt, err := newNodeTLS(cfg.TLS, cfg.TLSCert, cfg.TLSKey, cfg.TLSCA, cfg.Logger.Named("tls"))
	if err != nil {
		return err
	}
	warnClearText(cfg, nt != nil)
	if n.mux, err = listenMux(cfg.Listen, cfg.Advertise, cfg.Secret, cfg.Logger.Named("mux"), defaultMuxOptions(nt)); err != nil {
		return err
	}
	n.addr = n.mux.Addr().String()
	n.trans = raft.NewNetworkTransportWithConfig(&raft.NetworkTransportConfig{
		Stream:  n.mux.RaftLayer(),
		MaxPool: 3,
		// An AppendEntries carrying large values (8 MiB blobs, up to
		// MaxAppendEntries of them) can take seconds on a loaded machine;
		// at 10s one was resent from the start again and again.
		Timeout: 30 * time.Second,
		Logger:  cfg.Logger.Named("transport"),
	})
	if err = n.newRaft(rc, n.trans); err != nil {
		return err
	}
	n.rpc = newRPCServer(n)
	n.client = &rpcClient{n: n}
	n.goFunc(n.rpc.serve)
	if cfg.Gossip == "" {
		// No gossip: a one-voter cluster reachable over the network.
		if !has {
			boot := raft.Configuration{Servers: []raft.Server{{Suffrage: raft.Voter, ID: rc.LocalID, Address: raft.ServerAddress(n.addr)}}}
			if err := n.bootstrapLive(boot); err != nil {
				return fmt.Errorf("hiqlite: bootstrap: %w", err)
			}
		}
		n.inCluster.Store(true)
		return nil
	}
	n.inCluster.Store(has)
	n.gossipCh = make(chan struct{}, 1)
	n.disc, err = StartDiscovery(DiscoveryConfig{
		Bind:   cfg.Gossip,
		Join:   cfg.Join,
		Secret: cfg.Secret,
		Self:   n.selfPeer(),
		Logger: cfg.Logger.Named("gossip"),
		OnChange: func() {
			select {
			case n.gossipCh <- struct{}{}:
			default:
			}
		},
		fast: cfg.FastGossip,
	})
	if err != nil {
		return err
	}
	n.goFunc(n.runMembership)
	return nil
}

// newRaft starts the main group's Raft over trans. NewRaft reads the whole
// log after the last snapshot, and panics on an entry it cannot read;
// either failure is an ErrUnreadableLog.
func (n *Node) newRaft(rc *raft.Config, trans raft.Transport) error {
	err := guard(func() (err error) {
		n.raft, err = raft.NewRaft(rc, n.sm, n.logStore(), n.stableStore(), n.snaps, trans)
		return err
	})
	if errors.Is(err, errRaftExited) {
		return n.startError(err)
	}
	if err != nil {
		return unreadableLog(n.cfg.Dir, err)
	}
	return nil
}

// snapshotOnLogSize takes a snapshot, and so compacts the log, whenever the
// entries applied since the last one reach cfg.SnapshotBytes: raft itself
// only counts entries, and a few large entries can fill a disk long before
// SnapshotThreshold of them arrive. Raft keeps TrailingLogs entries behind
// a snapshot, so for this one it is lowered to about cfg.SnapshotBytes
// worth of entries of the recent average size: the log then stays near
// twice the threshold plus a segment.
func (n *Node) snapshotOnLogSize(full <-chan struct{}) {
	for {
		select {
		case <-n.stopCh:
			return
		case <-full:
		}
		size, entries := n.sm.LogBytes()
		if size < n.cfg.SnapshotBytes || entries == 0 {
			continue // a signal sent before the last snapshot began
		}
		rc := n.raft.ReloadableConfig()
		keep := rc.TrailingLogs
		if fit := n.cfg.SnapshotBytes / max(size/entries, 1); fit < keep {
			rc.TrailingLogs = max(fit, 16)
			if err := n.raft.ReloadConfig(rc); err != nil {
				n.cfg.Logger.Warn("lower trailing logs for a snapshot", "error", err)
			}
		}
		trailing := rc.TrailingLogs
		err := n.raft.Snapshot().Error()
		if rc.TrailingLogs != keep {
			rc.TrailingLogs = keep
			if rerr := n.raft.ReloadConfig(rc); rerr != nil {
				n.cfg.Logger.Warn("restore trailing logs", "error", rerr)
			}
		}
		switch {
		case err == nil:
			n.cfg.Logger.Info("took a snapshot: the log reached its size threshold", "bytes", size, "entries", entries, "trailing", trailing)
		case errors.Is(err, raft.ErrNothingNewToSnapshot), errors.Is(err, raft.ErrRaftShutdown):
		default:
			n.cfg.Logger.Warn("snapshot on log size failed", "error", err)
		}
	}
}

func (n *Node) goFunc(f func()) {
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		f()
	}()
}

// watchLeadership follows raft's leadership notifications. On gaining
// leadership it commits a no-op command, so that every entry of earlier
// terms is applied before this node admits a write, then opens ready.
func (n *Node) watchLeadership() {
	for {
		select {
		case <-n.stopCh:
			return
		case leader := <-n.notifyCh:
			n.setReady(false)
			if !leader {
				continue
			}
			// A no-op command, not raft.Barrier: raft does not hand barriers
			// to the state machine, and read indexes must be reachable by
			// its applied index.
			if _, err := n.apply(&replication.Command{Kind: replication.KindNoop}); err != nil {
				n.cfg.Logger.Warn("no-op after election failed", "error", err)
				continue
			}
			if n.raft.State() == raft.Leader {
				n.setReady(true)
			}
		}
	}
}

func (n *Node) setReady(ready bool) {
	n.readyMu.Lock()
	defer n.readyMu.Unlock()
	select {
	case <-n.ready:
		if !ready {
			n.ready = make(chan struct{})
		}
	default:
		if ready {
			close(n.ready)
		}
	}
}

func (n *Node) readyCh() chan struct{} {
	n.readyMu.Lock()
	defer n.readyMu.Unlock()
	return n.ready
}

// ID is the node's id.
func (n *Node) ID() string { return n.id }

// Dir is the node's data directory.
func (n *Node) Dir() string { return n.cfg.Dir }

// DBPath is the state database file; read connections open it read-only.
func (n *Node) DBPath() string { return n.sm.Path() }

// StateMachine is the node's state machine.
func (n *Node) StateMachine() *replication.StateMachine { return n.sm }

// IsLeader reports whether this node is the leader.
func (n *Node) IsLeader() bool { return n.raft.State() == raft.Leader }

// Leader returns the leader's id and address, empty when unknown.
func (n *Node) Leader() (id, addr string) {
	a, i := n.raft.LeaderWithID()
	return string(i), string(a)
}

// AppliedIndex is the index of the last command in the local database.
func (n *Node) AppliedIndex() uint64 { return n.sm.AppliedIndex() }

// Fault is the error that stopped this node's state machine, if any.
func (n *Node) Fault() error { return n.sm.Fault() }

// WaitReady blocks until the cluster has a leader and this node has applied
// everything committed before it: for a leader, until its election barrier
// is applied.
//
// A follower is ready once it knows a leader and has applied that leader's
// read index.
func (n *Node) WaitReady(ctx context.Context) error {
	for {
		if n.closed.Load() {
			return ErrClosed
		}
		if err := n.sm.Fault(); err != nil {
			return err
		}
		if err := n.refusedErr(); err != nil {
			return err
		}
		if id, _ := n.Leader(); id != "" && id != n.id && n.mux != nil {
			rctx, cancel := context.WithTimeout(ctx, time.Second)
			err := n.LinearizableRead(rctx)
			cancel()
			if err == nil {
				return nil
			}
		}
		select {
		case <-n.readyCh():
			return nil
		case <-ctx.Done():
			if err := n.clusterErr(); err != nil {
				return fmt.Errorf("hiqlite: node %s not ready: %w (%w)", n.id, ctx.Err(), err)
			}
			return fmt.Errorf("hiqlite: node %s not ready: %w", n.id, ctx.Err())
		case <-n.stopCh:
			return ErrClosed
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// waitLeaderReady waits until this node, the leader, has applied its
// election no-op. It fails with ErrNotLeader as soon as the node no longer
// leads: that election's no-op will never make it ready.
func (n *Node) waitLeaderReady(ctx context.Context) error {
	var tick *time.Ticker
	for {
		select {
		case <-n.readyCh():
			return nil
		default:
		}
		if !n.IsLeader() {
			return ErrNotLeader
		}
		if tick == nil {
			tick = time.NewTicker(10 * time.Millisecond)
			defer tick.Stop()
		}
		select {
		case <-n.readyCh():
			return nil
		case <-ctx.Done():
			return fmt.Errorf("hiqlite: node %s not ready: %w", n.id, ctx.Err())
		case <-n.stopCh:
			return ErrClosed
		case <-tick.C:
		}
	}
}

// Member describes one server of the Raft configuration.
type Member struct {
	ID       string
	Address  string
	Voter    bool
	IsLeader bool
}

// Members lists the servers of the current Raft configuration.
func (n *Node) Members() ([]Member, error) {
	f := n.raft.GetConfiguration()
	if err := f.Error(); err != nil {
		return nil, err
	}
	_, leader := n.raft.LeaderWithID()
	var ms []Member
	for _, s := range f.Configuration().Servers {
		ms = append(ms, Member{ID: string(s.ID), Address: string(s.Address), Voter: s.Suffrage == raft.Voter, IsLeader: s.ID == leader})
	}
	return ms, nil
}

// Snapshot takes a snapshot now and compacts the log behind it.
func (n *Node) Snapshot() error { return n.raft.Snapshot().Error() }

// Close stops raft and closes the log, the database and the lock. It is
// idempotent.
func (n *Node) Close() error {
	if !n.closed.CompareAndSwap(false, true) {
		return nil
	}
	var errs []error
	if n.sm != nil {
		// raft's Shutdown waits for the entry being applied: cut a long
		// write short (it is applied again at the next start).
		n.sm.Interrupt()
	}
	if n.raft != nil {
		errs = append(errs, n.raft.Shutdown().Error())
	}
	if n.cache != nil {
		errs = append(errs, n.cache.close())
	}
	close(n.stopCh)
	n.hub.Close(fmt.Errorf("%w: %w", extensions.ErrListenerClosed, ErrClosed))
	if n.rpc != nil {
		n.rpc.close()
		n.client.close()
	}
	if n.mux != nil {
		errs = append(errs, n.mux.Close())
	}
	if n.disc != nil {
		errs = append(errs, n.disc.Close())
	}
	n.wg.Wait()
	errs = append(errs, n.closeResources())
	return errors.Join(errs...)
}

// Leave leaves the cluster gracefully: a leader first hands leadership to
// another voter, then the node announces its departure in gossip so the
// leader removes it from the configuration. Close the node afterwards.
func (n *Node) Leave(timeout time.Duration) error {
	if n.disc == nil || n.refusedErr() != nil {
		return nil // no gossip, or stopped by refuse
	}
	if n.IsLeader() {
		if err := n.raft.LeadershipTransfer().Error(); err != nil {
			n.cfg.Logger.Warn("leadership transfer before leave", "error", err)
		}
	}
	return n.disc.Leave(timeout)
}

func (n *Node) closeResources() error {
	var errs []error
	if n.trans != nil {
		if c, ok := n.trans.(io.Closer); ok {
			errs = append(errs, c.Close())
		}
	}
	if n.log != nil {
		errs = append(errs, n.log.Close())
	}
	if n.meta != nil {
		errs = append(errs, n.meta.Close())
	}
	if n.sm != nil {
		errs = append(errs, n.sm.Close())
	}
	if n.lock != nil {
		errs = append(errs, unlockDir(n.lock))
	}
	return errors.Join(errs...)
}

func defaultLogger() hclog.Logger {
	level := hclog.Error
	if v := os.Getenv("HIQLITE_LOG"); v != "" {
		level = hclog.LevelFromString(v)
	}
	return hclog.New(&hclog.LoggerOptions{Name: "hiqlite", Level: level, Output: os.Stderr})
}

// State is this node's Raft state in lower case: leader, follower,
// candidate or shutdown.
func (n *Node) State() string { return strings.ToLower(n.raft.State().String()) }

// LinearizableRead returns once a read on this node sees every write
// committed before the call (read index): the leader confirms it still
// leads (its election barrier made its commit index current) and returns
// its commit index; this node's state machine then catches up to it.
// Followers ask the leader. While no leader is known it waits for one, up
// to ctx's deadline or the node's timeout. Its errors are a read's: nothing
// was written, whatever happened to the request.
func (n *Node) LinearizableRead(ctx context.Context) error {
	ctx, cancel := n.forwardContext(ctx)
	defer cancel()
	var w leaderWait
	for {
		var idx uint64
		var err error
		if n.mux == nil || n.IsLeader() {
			idx, err = n.readIndexLocal(ctx)
		}
		if n.mux != nil && (!n.IsLeader() || errors.Is(err, ErrNotLeader)) {
			var m wire.Message
			if m, err = n.forward(ctx, &wire.ReadIndexRequest{}, true); err == nil {
				idx = m.(*wire.ReadIndexResponse).Index
			}
		}
		if errors.Is(err, ErrNotLeader) && n.mux == nil {
			// A single node that has not elected itself yet.
			err = w.wait(ctx, n, err)
			if err == nil {
				continue
			}
		}
		if err != nil {
			return fmt.Errorf("hiqlite: linearizable read: %w", err)
		}
		if err := n.sm.WaitApplied(idx, ctx.Done()); err != nil {
			return fmt.Errorf("hiqlite: linearizable read: wait to apply index %d: %w", idx, err)
		}
		return nil
	}
}

// readIndexLocal confirms leadership and returns the commit index. A
// leader that cannot confirm it leads is not the leader to this read.
func (n *Node) readIndexLocal(ctx context.Context) (uint64, error) {
	if err := n.leaderReady(ctx); err != nil {
		return 0, err
	}
	if err := n.raft.VerifyLeader().Error(); err != nil {
		switch {
		case errors.Is(err, raft.ErrNotLeader), errors.Is(err, raft.ErrLeadershipLost):
			return 0, ErrNotLeader
		case errors.Is(err, raft.ErrRaftShutdown):
			return 0, ErrClosed
		}
		return 0, fmt.Errorf("hiqlite: confirm leadership: %w", err)
	}
	return n.raft.CommitIndex(), nil
}
