package cluster

import (
	"context"
	"net"
	"time"

	"github.com/hiqlite/hiqlite/replication"
)

// ClientHandler serves one authenticated session of a remote client (a
// process that is no member, see nodeport.Dialer) until the connection
// closes or ctx, cancelled when the node closes, ends. It owns c.
type ClientHandler func(ctx context.Context, c net.Conn)

// ServeClients installs h, the server of remote clients' sessions (the
// root package's, which runs them as database/sql connections of this
// node). Until it is called, and on a node without a listener, sessions
// are closed as they arrive.
func (n *Node) ServeClients(h ClientHandler) {
	n.clientHandler.Store(&h)
}

// clientsWait bounds how long Close waits for the sessions of remote
// clients once their connections are closed. A session ends as soon as its
// statement does; one whose write raft never answers (a future left behind
// by raft's shutdown) would hold Close for ever.
const clientsWait = 5 * time.Second

// serveClients is the accept loop of client sessions; each gets a goroutine
// of its own (counted in n.clients), which Close waits for, up to
// clientsWait, after the mux closed their connections.
func (n *Node) serveClients() {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	for {
		c, err := n.mux.AcceptClient()
		if err != nil {
			return
		}
		h := n.clientHandler.Load()
		if h == nil || n.closed.Load() {
			c.Close()
			continue
		}
		n.clients.Add(1)
		go func() {
			defer n.clients.Done()
			(*h)(ctx, c)
		}()
	}
}

// waitClients waits for the sessions of remote clients to end, up to
// clientsWait; the accept loop has ended (the mux is closed).
func (n *Node) waitClients() {
	done := make(chan struct{})
	go func() {
		n.clients.Wait()
		close(done)
	}()
	t := time.NewTimer(clientsWait)
	defer t.Stop()
	select {
	case <-done:
	case <-t.C:
		n.cfg.logger.Warn("remote clients' sessions still run a statement after the node closed; not waiting for them", "waited", clientsWait)
	}
}

// Resolve settles whether the write or COMMIT sent with origin was applied,
// asking the leader (which puts a fence for origin in the log when it was
// not, so that it never will be): a remote client whose member died while
// it waited for a COMMIT learns its outcome from another member.
func (n *Node) Resolve(ctx context.Context, origin replication.Origin) (applied bool, index uint64, err error) {
	ctx, cancel := n.forwardContext(ctx)
	defer cancel()
	return n.resolve(ctx, origin)
}
