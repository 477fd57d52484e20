package cluster

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/hashicorp/raft"

	"github.com/hiqlite/hiqlite/extensions"
	"github.com/hiqlite/hiqlite/internal/discovery"
	"github.com/hiqlite/hiqlite/internal/nodeerr"
	"github.com/hiqlite/hiqlite/internal/nodeport"
)

// The node's life: Open (storage, Raft's configuration, the network in
// cluster mode, the node's goroutines), log-size snapshots, Leave and
// Close.

// Open starts the node in cfg.Dir: it takes the directory's lock, opens the
// state database, the Raft log and the snapshots, and starts Raft as a
// single voter if the directory has no Raft state yet.
func Open(cfg Config) (_ *Node, err error) {
	cfg = cfg.withDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
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
	n.metrics = newMetrics(n)

	rc := raft.DefaultConfig()
	rc.LocalID = raft.ServerID(n.id)
	rc.Logger = cfg.logger.Named("raft")
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
	rc.HeartbeatTimeout = 500 * time.Millisecond
	rc.ElectionTimeout = 500 * time.Millisecond
	rc.LeaderLeaseTimeout = 500 * time.Millisecond // as long as allowed: a starved leader (2 cores, -race) steps down less
	nt, err := nodeport.NewTLS(cfg.TLS, cfg.TLSCert, cfg.TLSKey, cfg.TLSCA, cfg.logger.Named("tls"))
	if err != nil {
		return err
	}
	warnClearText(cfg, nt != nil)
	if n.mux, err = nodeport.ListenTLS(cfg.Listen, cfg.Advertise, cfg.Secret, cfg.logger.Named("mux"), nt); err != nil {
		return err
	}
	n.addr = n.mux.Addr().String()
	n.trans = raft.NewNetworkTransportWithConfig(&raft.NetworkTransportConfig{
		Stream:  n.mux.RaftLayer(),
		MaxPool: 3,
		// No pipelined replication (see noPipelining).
		MaxRPCsInFlight: noPipelining,
		// An AppendEntries carrying large values (8 MiB blobs, up to
		// MaxAppendEntries of them) can take seconds on a loaded machine;
		// at 10s one was resent from the start again and again.
		Timeout: 30 * time.Second,
		Logger:  cfg.logger.Named("transport"),
	})
	var trans raft.Transport = n.trans
	// Not !has: raft counts a saved term as state, and a node that lost its
	// log saves the leader's term at the first heartbeat, long before it
	// has the log again (a restart during the catch-up).
	if n.lastLogOrSnapshot() == 0 {
		g := guardVotes(n.trans, n.lastLogOrSnapshot, n.stopCh, func(candidate []byte, last uint64) {
			n.cfg.logger.Warn("refusing votes until a leader sends this node the log: it has no Raft state (new, or its raft directory was lost) and a candidate's log shows an existing cluster",
				"candidate", string(candidate), "candidate-last-index", last)
		})
		n.goFunc(g.run)
		n.votes, trans = g, g
	}
	if err = n.newRaft(rc, trans); err != nil {
		return err
	}
	n.rpc = newRPCServer(n)
	n.client = &rpcClient{n: n}
	n.goFunc(n.rpc.serve)
	n.goFunc(n.serveClients)
	n.goFunc(func() { n.client.followLeader(n.raft, n.stopCh) })
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
	n.disc, err = discovery.Start(discovery.Config{
		Bind:   cfg.Gossip,
		Join:   cfg.Join,
		Secret: cfg.Secret,
		Self:   n.selfPeer(),
		Logger: cfg.logger.Named("gossip"),
		OnChange: func() {
			select {
			case n.gossipCh <- struct{}{}:
			default:
			}
		},
		State: n.localState,
		Fast:  cfg.fastGossip,
	})
	if err != nil {
		return err
	}
	n.goFunc(n.runMembership)
	return nil
}

// noPipelining turns raft's pipelined replication off: each AppendEntries
// to a follower waits for its answer before the next is sent. With it on,
// a follower that refused an append (Success=false) could stop receiving
// entries for good: raft's pipeline decoder returns on the refusal while
// the sender, chosen again by its select, blocks handing the next request
// to that decoder, and the pipeline is closed only after the sender
// returns. The follower kept getting heartbeats, so no election came to
// heal it; the 31-minute fault run found a node lagging forever, and raft's
// Shutdown then waited on that sender, so SIGTERM hung. Group commit
// (MaxAppendEntries) keeps the batches large without it.
const noPipelining = 1

// newRaft starts the main group's Raft over trans. NewRaft reads the whole
// log after the last snapshot, and panics on an entry it cannot read;
// either failure is an ErrUnreadableLog.
func (n *Node) newRaft(rc *raft.Config, trans raft.Transport) error {
	err := guard(func() (err error) {
		n.raft, err = raft.NewRaft(rc, meteredFSM{n.sm, n.metrics}, n.logStore(), n.stableStore(), n.snaps, trans)
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
				n.cfg.logger.Warn("lower trailing logs for a snapshot", "error", err)
			}
		}
		trailing := rc.TrailingLogs
		err := n.futureErr(context.Background(), n.raft.Snapshot())
		if rc.TrailingLogs != keep {
			rc.TrailingLogs = keep
			if rerr := n.raft.ReloadConfig(rc); rerr != nil {
				n.cfg.logger.Warn("restore trailing logs", "error", rerr)
			}
		}
		switch {
		case err == nil:
			n.cfg.logger.Info("took a snapshot: the log reached its size threshold", "bytes", size, "entries", entries, "trailing", trailing)
		case errors.Is(err, raft.ErrNothingNewToSnapshot), errors.Is(err, raft.ErrRaftShutdown):
		default:
			n.cfg.logger.Warn("snapshot on log size failed", "error", err)
		}
	}
}

// Close stops raft and closes the log, the database and the lock. It is
// idempotent.
func (n *Node) Close() error {
	if !n.closed.CompareAndSwap(false, true) {
		return nil
	}
	n.logRules().Closing() // what fails from now on is this node closing
	var errs []error
	if n.sm != nil {
		// raft's Shutdown waits for the entry being applied: cut a long
		// write short (it is applied again at the next start).
		n.sm.Interrupt()
	}
	if n.raft != nil {
		f := n.raft.Shutdown()
		// raft joins its replication goroutines before it closes the
		// transport: one waiting on a peer that stopped answering (a
		// paused process) held Close for the transport's 30 s timeout.
		// Closing the transport first (which closes the stream and its
		// connections) fails those calls at once; raft closes it again,
		// a no-op.
		if n.mux != nil {
			errs = append(errs, closeTransport(n.trans))
		}
		errs = append(errs, f.Error())
	}
	if n.cache != nil {
		errs = append(errs, n.cache.close())
	}
	close(n.stopCh)
	n.hub.Close(fmt.Errorf("%w: %w", extensions.ErrListenerClosed, nodeerr.ErrClosed))
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
	if n.mux != nil {
		n.waitClients() // after the accept loop, joined above
	}
	errs = append(errs, n.closeResources())
	return errors.Join(errs...)
}

// Leave takes this node out of the cluster for good (to decommission it):
// a leader first hands leadership to another voter, then the node announces
// its departure in gossip, and the leader removes it from the configuration
// (both groups) when it hears of it. Leave returns once the departure is
// announced: the node may never learn of its removal (raft stops sending
// to a server it removed), so it does not wait for it. Close the node
// afterwards; a node started again from the same DATA_DIR
// is added back as any other node found in gossip.
//
// The last voter cannot leave (nobody would be left to remove it), nor can
// a node without gossip (nobody would hear it).
func (n *Node) Leave(ctx context.Context) error {
	if n.disc == nil {
		return errors.New("hiqlite: leave: this node has no gossip (_gossip), so no leader can hear it leave")
	}
	if err := n.refusedErr(); err != nil {
		return err
	}
	conf, ok := n.mainConfiguration()
	if !ok {
		return errors.New("hiqlite: leave: this node is not in a cluster yet")
	}
	self := raft.ServerID(n.ID())
	voters, member := 0, false
	for _, s := range conf.Servers {
		if s.Suffrage == raft.Voter && s.ID != self {
			voters++
		}
		member = member || s.ID == self
	}
	if !member {
		return nil // removed already: a second Leave, or reaped
	}
	if voters == 0 {
		return errors.New("hiqlite: leave: this node is the cluster's only voter; add another voter first")
	}
	if n.IsLeader() {
		if err := n.futureErr(ctx, n.raft.LeadershipTransfer()); err != nil {
			return fmt.Errorf("hiqlite: leave: hand leadership to another voter: %w", err)
		}
	}
	timeout := n.cfg.Timeout
	if d, ok := ctx.Deadline(); ok {
		timeout = time.Until(d)
	}
	if err := n.disc.Leave(timeout); err != nil {
		return fmt.Errorf("hiqlite: leave: %w", err)
	}
	return nil
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

// warnClearText logs, at start, a node that speaks clear text on an
// address that is not loopback: a choice the operator should make knowingly.
func warnClearText(cfg Config, hasTLS bool) {
	if hasTLS {
		return
	}
	for _, a := range []struct{ name, addr string }{{"listen", cfg.Listen}, {"advertise", cfg.Advertise}, {"gossip", cfg.Gossip}} {
		if a.addr != "" && !nodeport.IsLoopback(a.addr) {
			cfg.logger.Warn("the node port runs without TLS on an address that is not loopback: anyone on the path can read rows and inject Raft traffic into established connections; set _tls_cert, _tls_key and _tls_ca",
				a.name, a.addr)
			return
		}
	}
}
