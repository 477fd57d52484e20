package cluster

import (
	"os"
	"sync"
	"sync/atomic"

	"github.com/hashicorp/raft"
	wal "github.com/hashicorp/raft-wal"
	"github.com/hashicorp/raft-wal/metadb"

	"github.com/hiqlite/hiqlite/extensions"
	"github.com/hiqlite/hiqlite/internal/discovery"
	"github.com/hiqlite/hiqlite/internal/nodeport"
	"github.com/hiqlite/hiqlite/replication"
)

// Node is one member of a hiqlite cluster: a Raft instance whose state
// machine is the SQLite database in Dir.
//
// # Goroutines
//
// Besides raft's own, for two Raft groups (the main one and the cache
// group of cache.go), a node runs watchLeadership (leadership.go),
// stopOnFault (persist.go), snapshotOnLogSize (lifecycle.go) and the cache
// group's run, propose and settle; in cluster mode also runMembership
// (membership.go) and the RPC server (forward.go: its accept loop and one
// goroutine per connection), the sessions of remote clients (clients.go:
// the same), plus the goroutines of the port's Mux
// (internal/nodeport) and of Discovery (internal/discovery), which own
// them. All are started in Open (lifecycle.go; or by the accept loop, or
// by the cache group's start) and joined in Close.
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
	votes    *voteGuard // between trans and raft on a node that started without Raft state
	raft     *raft.Raft
	gate     *gate
	batch    batcher    // autocommit writes waiting on the leader (batcher.go)
	fwd      fwdBatcher // autocommit writes this node forwards (fwdbatch.go)

	// cluster mode
	mux       *nodeport.Mux
	disc      *discovery.Discovery
	addr      string        // the Raft/RPC address peers dial
	inCluster atomic.Bool   // raft has (or was given) a configuration
	gossipCh  chan struct{} // a gossip change happened (capacity 1)
	rpc       *rpcServer
	client    *rpcClient
	probes    probeLog // failed probes of discovered nodes (membership.go)

	refused atomic.Pointer[error] // why gossip refused this node (identity.go); nil: not refused

	clientHandler atomic.Pointer[ClientHandler] // remote clients' sessions (clients.go); nil: refused
	clients       sync.WaitGroup                // the sessions of remote clients (clients.go)

	hub     *extensions.Hub // listeners of hiqlite_notify and Notify
	metrics *metrics        // Prometheus metrics (metrics.go)
	cache   *cacheGroup     // caches and locks (cache.go)

	// acked: the highest index of a write or COMMIT that this node
	// acknowledged; reads here wait until it is applied (ownwrites.go)
	acked atomic.Uint64

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

func (n *Node) goFunc(f func()) {
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		f()
	}()
}

// ID is the node's id.
func (n *Node) ID() string { return n.id }

// dataDir is the node's data directory.
func (n *Node) dataDir() string { return n.cfg.Dir }

// DBPath is the state database file; read connections open it read-only.
func (n *Node) DBPath() string { return n.sm.Path() }

// AppliedIndex is the index of the last command in the local database.
func (n *Node) AppliedIndex() uint64 { return n.sm.AppliedIndex() }

// Fault is the error that stopped this node's state machine, if any.
func (n *Node) Fault() error { return n.sm.Fault() }

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
