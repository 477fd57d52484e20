package cluster

import (
	"context"
	"net"

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

// serveClients is the accept loop of client sessions; each gets a goroutine
// of its own, joined by Close (the mux closes their connections).
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
		n.goFunc(func() { (*h)(ctx, c) })
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
