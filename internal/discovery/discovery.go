package discovery

import (
	"errors"
	"fmt"
	"log"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/memberlist"
	"github.com/hiqlite/hiqlite/internal/nodeerr"
)

// Statuses of a peer in gossip (PeerState.Status).
//
// memberlist v0.7.0 tells its delegates about joins, leaves and metadata
// updates only: suspicion is invisible (and the State field of the
// memberlist.Node it hands out is never filled in), so Discovery reports a
// suspect peer as alive until memberlist declares it dead. StatusSuspect is
// part of the vocabulary for consumers; treat every status but StatusAlive as
// "not a live peer".
const (
	StatusAlive   = "alive"
	StatusSuspect = "suspect"
	StatusDead    = "dead"
	StatusLeft    = "left"
)

// Peer is what a node announces about itself in gossip, as memberlist node
// metadata (see encodePeerMeta).
type Peer struct {
	ID       string // node id (also the memberlist node name)
	RaftAddr string // host:port peers dial for Raft and RPC
	Voter    bool
	// InCluster: the node has Raft state (belongs to a cluster); bootstrap
	// must not happen if any peer has it.
	InCluster bool
}

// PeerState is a peer as this node sees it.
type PeerState struct {
	Peer
	GossipAddr string    // the memberlist address
	Status     string    // StatusAlive, StatusDead or StatusLeft (see StatusSuspect)
	Since      time.Time // when Status last changed (local clock)
	// State is the peer's Raft state as it last gossiped it, received at
	// StateAt (local clock). StateAt is zero when the peer never gossiped
	// its state (Config.State unset, or a node of an older version).
	State   NodeState
	StateAt time.Time
}

// Discovery is a node's gossip membership over memberlist. It announces the
// node's Peer as memberlist metadata and keeps every peer it has seen, with
// its status, until Forget.
//
// # Goroutines
//
// Start starts joinLoop (when there are seeds), notifyLoop (when
// OnChange is set) and stateLoop (when State is set) through goFunc; Close joins them. memberlist's own
// goroutines stop at its Shutdown, which Close calls; a few of them notice
// within a probe interval after Close returns.
//
// # Locks
//
// opMu serialises Update, Leave and Close: they call into memberlist, whose
// Leave panics after Shutdown. mu guards the fields below it. memberlist
// calls the delegates (which take mu) while holding its node lock, so no
// code calls into memberlist while holding mu: the order is memberlist's
// lock, then mu.
type Discovery struct {
	log    hclog.Logger
	timing discoveryTiming
	ml     *memberlist.Memberlist
	addr   string   // the advertised gossip address
	seeds  []string // cfg.Join without this node's own address
	id     string
	onChg  func()
	stateF func() NodeState

	changed chan struct{} // capacity 1: a change OnChange has not seen yet
	stopCh  chan struct{} // closed by Close
	leftCh  chan struct{} // closed by Leave: stop joining
	wg      sync.WaitGroup

	joinAttempts atomic.Int64 // Join calls by joinLoop (tests watch it)

	opMu   sync.Mutex
	closed bool // guarded by opMu
	left   bool // guarded by opMu

	mu      sync.Mutex
	self    Peer
	leaving bool       // announced in meta by Leave
	state   *NodeState // the state announced by stateLoop; nil: none yet
	meta    []byte     // encodeMeta(self, leaving, state); replaced, never modified
	peers   map[string]*peerRecord
	joined  bool  // a join of the seeds succeeded
	joinErr error // why the last join of the seeds failed; nil once one succeeds
	idTaken error // a live node has this node's id (set once; see conflict)
}

// peerRecord is what Discovery keeps about a peer.
type peerRecord struct {
	PeerState
	leaving bool // the last metadata announced a graceful leave
}

// Start starts memberlist on cfg.Bind, announcing cfg.Self, and
// joins cfg.Join in the background (retrying until a seed answers).
func Start(cfg Config) (*Discovery, error) {
	meta, err := encodePeerMeta(cfg.Self, false)
	if err != nil {
		return nil, err
	}
	host, port, err := resolveBind(cfg.Bind)
	if err != nil {
		return nil, err
	}
	logger := cfg.Logger
	if logger == nil {
		logger = hclog.NewNullLogger()
	}
	mc, timing := discoverySettings(cfg.Fast)
	d := &Discovery{
		log:     logger,
		timing:  timing,
		id:      cfg.Self.ID,
		onChg:   cfg.OnChange,
		stateF:  cfg.State,
		changed: make(chan struct{}, 1),
		stopCh:  make(chan struct{}),
		leftCh:  make(chan struct{}),
		self:    cfg.Self,
		meta:    meta,
		peers:   make(map[string]*peerRecord),
	}

	mc.Name = cfg.Self.ID
	mc.BindAddr, mc.BindPort = host, port
	mc.AdvertiseAddr, mc.AdvertisePort = "", port // the bound address and port
	if len(cfg.Secret) > 0 {
		key, err := gossipKey(cfg.Secret)
		if err != nil {
			return nil, fmt.Errorf("hiqlite: derive gossip key: %w", err)
		}
		mc.SecretKey = key
		mc.GossipVerifyIncoming = true
		mc.GossipVerifyOutgoing = true
	}
	mc.Delegate = gossipDelegate{d}
	mc.Events = gossipDelegate{d}
	mc.Conflict = gossipDelegate{d}
	mc.Logger = log.New(memberlistLog{logger.Named("memberlist")}, "", 0)

	// Create announces this node to itself: the delegates run before it
	// returns, so everything they touch is ready above.
	ml, err := memberlist.Create(mc)
	if err != nil {
		return nil, fmt.Errorf("hiqlite: start gossip on %s: %w", cfg.Bind, err)
	}
	d.ml = ml
	d.addr = ml.LocalNode().Address()
	d.seeds = otherSeeds(cfg.Join, d.addr, cfg.Bind)
	logger.Debug("gossip started", "addr", d.addr, "encrypted", len(cfg.Secret) > 0, "seeds", d.seeds)

	if d.onChg != nil {
		d.goFunc(d.notifyLoop)
	}
	if len(d.seeds) > 0 {
		d.goFunc(d.joinLoop)
	}
	if d.stateF != nil {
		d.goFunc(d.stateLoop)
	}
	return d, nil
}

// goFunc runs f on a goroutine that Close joins.
func (d *Discovery) goFunc(f func()) {
	d.wg.Add(1)
	go func() {
		defer d.wg.Done()
		f()
	}()
}

// Addr returns the gossip address other nodes reach this one at (the bound
// port, even when Bind asked for port 0).
func (d *Discovery) Addr() string { return d.addr }

// Peers returns every node seen since start, this one included, sorted by
// ID. Dead and left nodes stay, with the time they died or left, until
// Forget.
func (d *Discovery) Peers() []PeerState {
	d.mu.Lock()
	out := make([]PeerState, 0, len(d.peers))
	for _, r := range d.peers {
		out = append(out, r.PeerState)
	}
	d.mu.Unlock()
	slices.SortFunc(out, func(a, b PeerState) int { return strings.Compare(a.ID, b.ID) })
	return out
}

// Forget drops a dead or left node from Peers, typically after the leader
// removed it from the Raft configuration. It does nothing for this node and
// for live ones. A forgotten node that comes back appears again.
func (d *Discovery) Forget(id string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if r, ok := d.peers[id]; ok && id != d.id && (r.Status == StatusDead || r.Status == StatusLeft) {
		delete(d.peers, id)
	}
}

// Update changes this node's metadata (self.ID must stay the same) and
// gossips it. It waits, for a few seconds at most, until the update has been
// sent around; an error after that only means it is still spreading.
func (d *Discovery) Update(self Peer) error {
	if self.ID != d.id {
		return fmt.Errorf("hiqlite: gossip update: the node id cannot change from %q to %q", d.id, self.ID)
	}
	d.opMu.Lock()
	defer d.opMu.Unlock()
	if d.closed {
		return nodeerr.ErrClosed
	}
	if d.left {
		return errors.New("hiqlite: gossip update: the node has left the cluster")
	}
	d.mu.Lock()
	meta, err := encodeMeta(self, d.leaving, d.state)
	same := err == nil && slices.Equal(meta, d.meta)
	if err == nil {
		d.self, d.meta = self, meta
	}
	d.mu.Unlock()
	if err != nil || same {
		return err
	}
	if err := d.ml.UpdateNode(d.timing.update); err != nil {
		return fmt.Errorf("hiqlite: gossip update: %w", err)
	}
	return nil
}

// Leave leaves the gossip cluster gracefully: peers see this node as left
// rather than dead. Discovery keeps running until Close. Leave waits up to
// timeout (a few seconds when timeout <= 0) for the news to go out; later
// calls do nothing.
//
// memberlist alone cannot tell its delegates a leave from a failure (see
// StatusSuspect), so the leave is announced first in metadata, gossiped and
// pushed to every live peer over TCP; a peer that sees the node go with that
// announcement records it as left, otherwise as dead.
func (d *Discovery) Leave(timeout time.Duration) error {
	if timeout <= 0 {
		timeout = d.timing.update
	}
	deadline := time.Now().Add(timeout)
	remaining := func() time.Duration {
		// memberlist waits forever on a timeout of 0.
		return max(time.Until(deadline), time.Nanosecond)
	}
	d.opMu.Lock()
	defer d.opMu.Unlock()
	if d.closed {
		return nodeerr.ErrClosed
	}
	if d.left {
		return nil
	}
	d.left = true
	close(d.leftCh)

	d.mu.Lock()
	meta, err := encodeMeta(d.self, true, d.state)
	if err == nil {
		d.leaving, d.meta = true, meta
	}
	var addrs []string
	for _, r := range d.peers {
		if r.ID != d.id && r.Status == StatusAlive {
			addrs = append(addrs, r.GossipAddr)
		}
	}
	d.mu.Unlock()
	if err != nil {
		return err // cannot happen: self was valid when set
	}

	var errs []error
	if err := d.ml.UpdateNode(remaining()); err != nil {
		errs = append(errs, fmt.Errorf("hiqlite: gossip leave announcement: %w", err))
	}
	d.pushState(addrs, deadline)
	if err := d.ml.Leave(remaining()); err != nil {
		errs = append(errs, fmt.Errorf("hiqlite: gossip leave: %w", err))
	}
	return errors.Join(errs...)
}

// pushState sends this node's state to addrs by a full state exchange (what
// memberlist's Join does), so each of them has the latest metadata
// before the leave message. It waits until deadline at most; an exchange
// still running then finishes on its own, and Close joins it.
func (d *Discovery) pushState(addrs []string, deadline time.Time) {
	if len(addrs) == 0 {
		return
	}
	done := make(chan struct{})
	d.goFunc(func() {
		defer close(done)
		if n, err := d.ml.Join(addrs); err != nil || n < len(addrs) {
			d.log.Debug("push state before leaving", "peers", len(addrs), "reached", n, "error", err)
		}
	})
	t := time.NewTimer(time.Until(deadline))
	defer t.Stop()
	select {
	case <-done:
	case <-t.C:
	}
}

// Close stops gossip without leaving (peers will see this node dead unless
// Leave came first) and joins Discovery's goroutines. It waits for an
// Update or Leave in progress, and for a join attempt in flight, which
// memberlist bounds by its TCP timeout.
func (d *Discovery) Close() error {
	d.opMu.Lock()
	defer d.opMu.Unlock()
	if d.closed {
		return nil
	}
	d.closed = true
	close(d.stopCh)
	err := d.ml.Shutdown()
	d.wg.Wait()
	if err != nil {
		return fmt.Errorf("hiqlite: stop gossip: %w", err)
	}
	return nil
}

// stateLoop gossips the node's state (Config.State) every timing.state
// when it changed, and every timing.stateRefresh in any case, so that a
// peer's view of it is never much older than that. A change of LastContact
// alone waits for the refresh: on a follower it changes at every tick.
// memberlist keeps one pending announcement per node, so a slow network
// never queues more than one.
func (d *Discovery) stateLoop() {
	t := time.NewTicker(d.timing.state)
	defer t.Stop()
	var last NodeState
	var lastAt time.Time
	for {
		select {
		case <-d.stopCh:
			return
		case <-d.leftCh:
			return
		case <-t.C:
		}
		st := d.stateF()
		cmp := st
		cmp.LastContact = last.LastContact
		if !lastAt.IsZero() && cmp == last && time.Since(lastAt) < d.timing.stateRefresh {
			continue
		}
		if d.publishState(st) {
			last, lastAt = st, time.Now()
		}
	}
}

// publishState announces st; false if it did not: the node has left or is
// closed, or an Update, Leave or Close holds opMu (the next tick tries
// again). It must not wait for opMu: Close holds it while it joins
// stateLoop.
func (d *Discovery) publishState(st NodeState) bool {
	if !d.opMu.TryLock() {
		return false
	}
	defer d.opMu.Unlock()
	if d.closed || d.left {
		return false
	}
	d.mu.Lock()
	meta, err := encodeMeta(d.self, d.leaving, &st)
	if err == nil {
		d.state, d.meta = &st, meta
	}
	d.mu.Unlock()
	if err != nil {
		return false // cannot happen: self was valid when set
	}
	// UpdateNode queues the broadcast; waiting for it to go out would
	// only delay Close, so the timeout error is expected and ignored.
	_ = d.ml.UpdateNode(time.Nanosecond)
	return true
}

// notifyLoop calls OnChange after changes, one call for any burst of them.
func (d *Discovery) notifyLoop() {
	for {
		select {
		case <-d.stopCh:
			return
		case <-d.changed:
			d.onChg()
		}
	}
}

// signal tells notifyLoop that something changed; it never blocks.
func (d *Discovery) signal() {
	select {
	case d.changed <- struct{}{}:
	default:
	}
}

// observe records what memberlist reports about node n: gone is false for a
// join or a metadata update, true when it died or left. Malformed metadata
// is ignored (a known node can still go away).
func (d *Discovery) observe(n *memberlist.Node, gone bool) {
	m, err := decodeMeta(n.Meta)
	p, leaving := m.Peer, m.leaving
	if err == nil && p.ID != n.Name {
		err = fmt.Errorf("metadata names node %q", p.ID)
	}
	addr := n.Address()
	now := time.Now()

	d.mu.Lock()
	r, known := d.peers[n.Name]
	if err != nil && (!known || !gone) {
		d.mu.Unlock()
		d.log.Debug("ignoring gossip peer with malformed metadata", "name", n.Name, "addr", addr, "meta_len", len(n.Meta), "error", err)
		return
	}
	if !known {
		r = &peerRecord{}
		d.peers[n.Name] = r
	}
	old := *r
	if err == nil {
		r.Peer, r.leaving = p, leaving
		if m.hasState && !gone {
			r.State, r.StateAt = m.state, now
		}
	}
	r.GossipAddr = addr
	status := StatusAlive
	if gone {
		status = StatusDead
		if r.leaving {
			status = StatusLeft
		}
	}
	if r.Status != status {
		r.Status, r.Since = status, now
	}
	changed := !known || r.Peer != old.Peer || r.GossipAddr != old.GossipAddr || r.Status != old.Status
	d.mu.Unlock()

	if changed {
		if old.Status != r.Status {
			d.log.Debug("gossip peer", "id", n.Name, "addr", addr, "status", r.Status)
		}
		d.signal()
	}
}

// gossipDelegate is Discovery as memberlist's Delegate, EventDelegate and
// ConflictDelegate. memberlist calls it on its own goroutines, some while
// holding its node lock: every method only takes Discovery.mu, briefly,
// and never blocks.
type gossipDelegate struct{ d *Discovery }

var (
	_ memberlist.Delegate         = gossipDelegate{}
	_ memberlist.EventDelegate    = gossipDelegate{}
	_ memberlist.ConflictDelegate = gossipDelegate{}
)

// NodeMeta returns this node's encoded Peer. memberlist keeps the slice;
// Discovery never modifies one it has handed out.
func (g gossipDelegate) NodeMeta(limit int) []byte {
	g.d.mu.Lock()
	defer g.d.mu.Unlock()
	if len(g.d.meta) > limit { // cannot happen: maxPeerMetaLen < MetaMaxSize
		g.d.log.Error("gossip metadata too long", "len", len(g.d.meta), "limit", limit)
		return nil
	}
	return g.d.meta
}

func (gossipDelegate) NotifyMsg([]byte) {}

func (gossipDelegate) GetBroadcasts(_, _ int) [][]byte { return nil }

func (gossipDelegate) LocalState(bool) []byte { return nil }

func (gossipDelegate) MergeRemoteState(_ []byte, _ bool) {}

func (g gossipDelegate) NotifyJoin(n *memberlist.Node) { g.d.observe(n, false) }

func (g gossipDelegate) NotifyUpdate(n *memberlist.Node) { g.d.observe(n, false) }

func (g gossipDelegate) NotifyLeave(n *memberlist.Node) { g.d.observe(n, true) }

// NotifyConflict: see Discovery.conflict.
func (g gossipDelegate) NotifyConflict(existing, other *memberlist.Node) {
	g.d.conflict(existing, other)
}
