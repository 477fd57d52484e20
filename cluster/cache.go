package cluster

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"

	"github.com/hiqlite/hiqlite/extensions"
	"github.com/hiqlite/hiqlite/internal/nodeerr"
	"github.com/hiqlite/hiqlite/internal/wire"
)

// The cache group. Caches and locks (package extensions) are replicated by
// a second Raft group, on the same port as the main one (its own stream
// type), with the same members. Its state machine is in memory, and so is
// its log; only its term and vote are on disk (DATA_DIR/cache/raft-stable),
// so that a member never votes twice in a term, even across restarts.
//
// # Starting with an empty log
//
// A member starts the group's Raft once it belongs to the main cluster, and
// seeds it with a snapshot at index 1, term 1, holding the main group's
// configuration and an empty state. Every member does the same, and a group
// that was bootstrapped would have the same entry at index 1 (term 1, a
// configuration, nothing applied), so all the seeds agree with each other
// and with any real history: a restarted member is caught up from index 2,
// or by a snapshot, by the group's leader; a whole group restarted at once
// elects a leader among the seeds and starts over, empty, in a term above
// every term it used before (so fencing tokens keep growing).
//
// What memory cannot give: a member that restarts has forgotten the
// entries it acknowledged, so a majority restarting at once loses the
// caches and locks, and a minority restarting while others are down can
// lose recent entries. The caches are caches.
//
// # Membership
//
// The group's leader makes the group's configuration follow the main
// group's (as this node knows it): one change per round, like the main
// group's reconcile.

// Files and timings of the cache group.
const (
	cacheDir        = "cache"
	cacheStableFile = "raft-stable"
	cacheRoundEvery = time.Second            // membership check while leading
	cacheStartEvery = 250 * time.Millisecond // how often a node not yet started looks again
	cacheTickMinGap = 5 * time.Millisecond   // between two ticks of the expiry clock
	cacheMaxAppend  = 512
	// The log is in memory: Raft snapshots every cacheSnapshotLogs entries
	// and keeps cacheTrailingLogs behind a snapshot; the run loop also
	// snapshots after extensions.SnapshotBytes of entries.
	cacheSnapshotLogs = 2048
	cacheTrailingLogs = 256
	// Commands are proposed in batches: one log entry carries up to
	// cacheMaxBatch commands or cacheMaxEntryBytes, and up to
	// cacheMaxFlights entries wait for their commit at once.
	cacheMaxBatch      = 1024
	cacheMaxEntryBytes = 1 << 20
	cacheMaxFlights    = 64
)

// cacheGroup is this node's member of the cache group and the
// extensions.Replicator of its caches and locks.
//
// mu guards closed and the start and stop of raft and trans; raft is also
// an atomic pointer so that the hot paths read it without mu.
type cacheGroup struct {
	n      *Node
	stable raft.StableStore // a fileStable, or memory for an InMemory node
	where  string           // where stable keeps its data, for errors
	m      *extensions.Machine
	client *rpcClient // to the group's leader
	notify chan bool  // the group's leadership changes
	raft   atomic.Pointer[raft.Raft]
	done   chan struct{} // closed by close

	proposals chan *proposal // to propose, on the leader
	flights   chan flight    // proposed, waiting for their commit

	mu     sync.Mutex
	trans  raft.Transport
	closed bool
}

var _ extensions.Replicator = (*cacheGroup)(nil)

func newCacheGroup(n *Node) (*cacheGroup, error) {
	var stable raft.StableStore = raft.NewInmemStore()
	where := "memory"
	if !n.cfg.InMemory {
		dir := filepath.Join(n.cfg.Dir, cacheDir)
		if err := os.MkdirAll(dir, privateDir); err != nil {
			return nil, fmt.Errorf("hiqlite: create cache dir: %w", err)
		}
		fs, err := openFileStable(filepath.Join(dir, cacheStableFile))
		if err != nil {
			return nil, err
		}
		stable, where = fs, fs.path
	}
	g := &cacheGroup{n: n, m: extensions.NewMachine(), stable: stable, where: where, notify: make(chan bool, 16), done: make(chan struct{}),
		proposals: make(chan *proposal, 4*cacheMaxBatch), flights: make(chan flight, cacheMaxFlights)}
	g.client = &rpcClient{n: n, leader: g.leaderAddr}
	return g, nil
}

// Machine implements extensions.Replicator.
func (g *cacheGroup) Machine() *extensions.Machine { return g.m }

// leaderAddr is the address of the group's leader, "" when unknown.
func (g *cacheGroup) leaderAddr() string {
	if r := g.raft.Load(); r != nil {
		addr, _ := r.LeaderWithID()
		return string(addr)
	}
	return ""
}

// start starts the group's Raft, seeded with the main group's
// configuration conf; see the top of this file.
func (g *cacheGroup) start(conf raft.Configuration) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed || g.raft.Load() != nil {
		return nil
	}
	n := g.n
	rc := raft.DefaultConfig()
	rc.LocalID = raft.ServerID(n.id)
	rc.Logger = n.cfg.logger.Named("cache-raft")
	rc.NotifyCh = g.notify
	rc.MaxAppendEntries = cacheMaxAppend
	rc.CommitTimeout = 5 * time.Millisecond
	rc.SnapshotThreshold = cacheSnapshotLogs
	rc.TrailingLogs = cacheTrailingLogs
	rc.SnapshotInterval = 10 * time.Second
	// A member removed from the group may be added again (a reaped node
	// that comes back): it must keep running.
	rc.ShutdownOnRemove = false
	var trans raft.Transport
	if n.mux == nil {
		rc.HeartbeatTimeout = 100 * time.Millisecond
		rc.ElectionTimeout = 100 * time.Millisecond
		rc.LeaderLeaseTimeout = 100 * time.Millisecond
		_, trans = raft.NewInmemTransport(raft.ServerAddress(n.addr))
	} else {
		rc.HeartbeatTimeout = 500 * time.Millisecond
		rc.ElectionTimeout = 500 * time.Millisecond
		rc.LeaderLeaseTimeout = 500 * time.Millisecond
		trans = raft.NewNetworkTransportWithConfig(&raft.NetworkTransportConfig{
			Stream:  n.mux.CacheLayer(),
			MaxPool: 3,
			// No pipelined replication, as for the main group.
			MaxRPCsInFlight: noPipelining,
			Timeout:         10 * time.Second,
			Logger:          n.cfg.logger.Named("cache-transport"),
		})
	}
	snaps := raft.NewInmemSnapshotStore()
	sink, err := snaps.Create(raft.SnapshotVersionMax, 1, 1, conf, 1, trans)
	if err == nil {
		if _, err = sink.Write(extensions.EmptyState()); err == nil {
			err = sink.Close()
		}
	}
	var r *raft.Raft
	if err == nil {
		// The term and vote on disk; a failed save stops the node
		// (faultStable), and guard turns a failure inside NewRaft into
		// an error.
		stable := &faultStable{StableStore: g.stable, where: g.where, fail: n.persistFailed}
		err = guard(func() (err error) {
			r, err = raft.NewRaft(rc, g.m, raft.NewInmemStore(), stable, snaps, trans)
			return err
		})
		err = n.startError(err)
	}
	if err != nil {
		closeTransport(trans)
		return fmt.Errorf("hiqlite: start the cache group: %w", err)
	}
	g.trans = trans
	g.raft.Store(r)
	n.goFunc(func() { g.propose(r) })
	n.goFunc(func() { g.client.followLeader(r, g.done) })
	n.goFunc(g.settle)
	return nil
}

// Replicate implements extensions.Replicator: on the group's leader it
// stamps cmd with this node's clock and applies it; elsewhere it forwards
// cmd to the leader and waits until this node has applied it too. It waits
// up to the node's timeout for a leader.
func (g *cacheGroup) Replicate(ctx context.Context, cmd extensions.Command, idempotent bool) (extensions.Result, error) {
	res, err := g.replicate(ctx, cmd, idempotent)
	g.n.metrics.observeExtension(cmd.Op, err)
	return res, err
}

// replicate is Replicate without the metrics.
func (g *cacheGroup) replicate(ctx context.Context, cmd extensions.Command, idempotent bool) (extensions.Result, error) {
	if err := ctx.Err(); err != nil {
		return extensions.Result{}, err
	}
	if err := g.m.Fault(); err != nil {
		return extensions.Result{}, err
	}
	var maybe bool // an earlier local attempt may have been applied
	if r := g.raft.Load(); r != nil && r.State() == raft.Leader {
		// The common case, without a timer: raft bounds the wait.
		res, err := g.applyLocal(cmd)
		switch {
		case errors.Is(err, nodeerr.ErrLeadershipLost):
			if !idempotent {
				return res, unsettled(err)
			}
			maybe = true
		case !errors.Is(err, nodeerr.ErrNotLeader):
			return res, err
		}
	}
	ctx, cancel := context.WithTimeout(ctx, g.n.cfg.Timeout)
	defer cancel()
	backoff := 2 * time.Millisecond
	for {
		var err error
		r := g.raft.Load()
		switch {
		case r != nil && r.State() == raft.Leader:
			var res extensions.Result
			res, err = g.applyLocal(cmd)
			if errors.Is(err, nodeerr.ErrLeadershipLost) {
				maybe = true
				if idempotent {
					break // try again, wherever the leader is now
				}
				return res, unsettled(err)
			}
			if !errors.Is(err, nodeerr.ErrNotLeader) {
				return res, err
			}
		case r != nil && g.n.mux != nil && g.leaderAddr() != "":
			res, err := g.forward(ctx, &cmd, idempotent)
			if err != nil && maybe {
				err = unsettled(err)
			}
			return res, err
		default:
			err = nodeerr.ErrNoLeader
		}
		select {
		case <-ctx.Done():
			err = fmt.Errorf("hiqlite: cache group: %w (last error: %w)", ctx.Err(), err)
			if maybe {
				err = unsettled(err)
			}
			return extensions.Result{}, err
		case <-g.done:
			return extensions.Result{}, nodeerr.ErrClosed
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 100*time.Millisecond)
	}
}

// proposal is a command waiting to be proposed, then for its result.
// Proposals are pooled: done is buffered and receives one value per use.
type proposal struct {
	cmd  extensions.Command
	res  extensions.Result
	err  error
	done chan struct{}
}

var proposals = sync.Pool{New: func() any { return &proposal{done: make(chan struct{}, 1)} }}

// finish hands p its outcome.
func (p *proposal) finish(res extensions.Result, err error) {
	p.res, p.err = res, err
	p.done <- struct{}{}
}

// flight is one proposed entry: the future of its commit and the
// proposals it carries, in order.
type flight struct {
	f     raft.ApplyFuture
	batch []*proposal
}

// applyLocal applies cmd on this node, which should lead the group: it
// goes into the next entry propose makes, stamped with this node's clock.
func (g *cacheGroup) applyLocal(cmd extensions.Command) (extensions.Result, error) {
	p := proposals.Get().(*proposal)
	p.cmd = cmd
	select {
	case g.proposals <- p:
	case <-g.done:
		return extensions.Result{}, nodeerr.ErrClosed
	}
	select {
	case <-p.done:
	case <-g.done:
		select {
		case <-p.done:
		default:
			// The node closed with the command proposed: it may commit.
			// p stays with propose or settle, never back in the pool.
			return extensions.Result{}, fmt.Errorf("%w: %w", nodeerr.ErrLeadershipLost, nodeerr.ErrClosed)
		}
	}
	res, err := p.res, p.err
	*p = proposal{done: p.done}
	proposals.Put(p)
	return res, err
}

// propose is the goroutine that turns proposals into log entries: it takes
// every proposal waiting (up to cacheMaxBatch) into one entry, so that
// concurrent writers share entries, and hands the entry's future to
// settle. Raft gathers the entries in turn into its own batches.
func (g *cacheGroup) propose(r *raft.Raft) {
	defer close(g.flights)
	var cmds []*extensions.Command
	for {
		var batch []*proposal
		select {
		case p := <-g.proposals:
			batch = append(batch, p)
		case <-g.done:
			for {
				select {
				case p := <-g.proposals:
					p.finish(extensions.Result{}, nodeerr.ErrClosed)
				default:
					return
				}
			}
		}
		size := batch[0].cmd.Size()
	gather:
		for len(batch) < cacheMaxBatch && size < cacheMaxEntryBytes {
			select {
			case p := <-g.proposals:
				batch = append(batch, p)
				size += p.cmd.Size()
			default:
				break gather
			}
		}
		cmds = cmds[:0]
		for _, p := range batch {
			cmds = append(cmds, &p.cmd)
		}
		data, err := extensions.MarshalEntry(time.Now().UnixNano(), cmds)
		if err != nil {
			for _, p := range batch {
				p.finish(extensions.Result{}, err)
			}
			continue
		}
		g.flights <- flight{f: r.Apply(data, g.n.cfg.Timeout), batch: batch}
	}
}

// settle is the goroutine that waits for each proposed entry, in order,
// and hands each proposal its result.
func (g *cacheGroup) settle() {
	for fl := range g.flights {
		var out *extensions.Applied
		err := g.n.futureErr(context.Background(), fl.f)
		if err != nil {
			err = raftError(err)
		} else if out, _ = fl.f.Response().(*extensions.Applied); out == nil {
			err = fmt.Errorf("hiqlite: unexpected cache state machine response %T", fl.f.Response())
		} else if out.Err != nil {
			err = out.Err
		}
		for i, p := range fl.batch {
			if err != nil {
				p.finish(extensions.Result{}, err)
			} else {
				p.finish(out.Results[i], nil)
			}
		}
	}
}

// forward sends cmd to the group's leader and waits until this node has
// applied it.
func (g *cacheGroup) forward(ctx context.Context, cmd *extensions.Command, idempotent bool) (extensions.Result, error) {
	data, err := cmd.MarshalBinary()
	if err != nil {
		return extensions.Result{}, err
	}
	m, err := g.n.forwardVia(ctx, g.client, &wire.CacheRequest{Cmd: data}, idempotent)
	if err != nil {
		return extensions.Result{}, err
	}
	resp := m.(*wire.CacheResponse)
	res, err := extensions.UnmarshalResult(resp.Result)
	if err != nil {
		return extensions.Result{}, err
	}
	res.Index = resp.Index
	if err := g.m.WaitApplied(resp.Index, ctx.Done()); err != nil {
		return extensions.Result{}, err
	}
	return res, nil
}

// serve applies a command forwarded by a follower; this node must lead the
// group.
func (g *cacheGroup) serve(data []byte) (uint64, []byte, error) {
	r := g.raft.Load()
	if r == nil || r.State() != raft.Leader {
		return 0, nil, nodeerr.ErrNotLeader
	}
	cmd, err := extensions.UnmarshalCommand(data)
	if err != nil {
		return 0, nil, err
	}
	res, err := g.applyLocal(*cmd)
	if err != nil {
		return 0, nil, err
	}
	out, err := res.MarshalBinary()
	return res.Index, out, err
}

// run is the group's goroutine: it starts the group once this node belongs
// to the main cluster, and while this node leads the group it keeps the
// group's membership in line with the main group's and applies an OpTick
// whenever the next deadline of the caches and locks passes.
func (g *cacheGroup) run() {
	var lastRound time.Time
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-g.done:
			return
		case <-g.n.stopCh:
			return
		case <-t.C:
		case <-g.m.Changed():
		case <-g.notify:
		case <-g.m.Faulted():
			g.stopOnFault()
			return
		case <-g.m.SnapshotDue():
			if r := g.raft.Load(); r != nil {
				if err := g.n.futureErr(context.Background(), r.Snapshot()); err != nil {
					g.n.cfg.logger.Warn("cache group snapshot", "error", err)
				}
			}
		}
		wait := cacheRoundEvery
		r := g.raft.Load()
		switch {
		case r == nil:
			if conf, ok := g.n.mainConfiguration(); ok {
				if err := g.start(conf); err != nil {
					g.n.cfg.logger.Error("cache group", "error", err)
				}
				wait = 0
			} else {
				wait = cacheStartEvery
			}
		case r.State() == raft.Leader:
			if time.Since(lastRound) >= cacheRoundEvery {
				lastRound = time.Now()
				g.reconcile(r)
			}
			if at, ok := g.m.NextDeadline(); ok {
				if d := time.Duration(at - time.Now().UnixNano()); d > 0 {
					wait = min(wait, d)
				} else {
					if _, err := g.applyLocal(extensions.Command{Op: extensions.OpTick}); err != nil {
						g.n.cfg.logger.Debug("cache group tick", "error", err)
					}
					wait = cacheTickMinGap
				}
			}
		}
		if !t.Stop() {
			select {
			case <-t.C:
			default:
			}
		}
		t.Reset(wait)
	}
}

// mainConfiguration returns the main group's configuration, if this node
// has one yet.
func (n *Node) mainConfiguration() (raft.Configuration, bool) {
	f := n.raft.GetConfiguration()
	if f.Error() != nil {
		return raft.Configuration{}, false
	}
	conf := f.Configuration()
	return conf, len(conf.Servers) > 0
}

// reconcile makes the group's configuration follow the main group's, one
// change per call; the group's leader only.
func (g *cacheGroup) reconcile(r *raft.Raft) {
	want, ok := g.n.mainConfiguration()
	if !ok {
		return
	}
	f := r.GetConfiguration()
	if f.Error() != nil {
		return
	}
	have := map[raft.ServerID]raft.Server{}
	for _, s := range f.Configuration().Servers {
		have[s.ID] = s
	}
	timeout := g.n.cfg.Timeout
	wanted := map[raft.ServerID]bool{}
	for _, s := range want.Servers {
		wanted[s.ID] = true
		h, member := have[s.ID]
		voter := s.Suffrage == raft.Voter
		if member && h.Address == s.Address && (h.Suffrage == raft.Voter) == voter {
			continue
		}
		var err error
		if voter {
			err = g.n.futureErr(context.Background(), r.AddVoter(s.ID, s.Address, f.Index(), timeout))
		} else {
			err = g.n.futureErr(context.Background(), r.AddNonvoter(s.ID, s.Address, f.Index(), timeout))
		}
		if err != nil {
			g.n.cfg.logger.Warn("cache group: add server", "id", s.ID, "error", err)
		}
		return
	}
	for id := range have {
		if !wanted[id] {
			if err := g.n.futureErr(context.Background(), r.RemoveServer(id, f.Index(), timeout)); err != nil {
				g.n.cfg.logger.Warn("cache group: remove server", "id", id, "error", err)
			}
			return
		}
	}
}

// Cache is the node's cache group, for caches and locks.
func (n *Node) Cache() extensions.Replicator { return n.cache }

// CacheLeader returns the id and address of the cache group's leader, empty
// when unknown.
func (n *Node) CacheLeader() (id, addr string) {
	if r := n.cache.raft.Load(); r != nil {
		a, i := r.LeaderWithID()
		return string(i), string(a)
	}
	return "", ""
}

// SnapshotCache snapshots the cache group's state on this node now, which
// lets Raft drop the in-memory log behind it.
func (n *Node) SnapshotCache() error {
	r := n.cache.raft.Load()
	if r == nil {
		return nodeerr.ErrNoLeader
	}
	return r.Snapshot().Error()
}
