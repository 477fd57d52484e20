package cluster

import (
	"errors"
	"io"

	"github.com/hashicorp/raft"
	"github.com/hiqlite/hiqlite/internal/nodeerr"
)

// close stops the group's Raft and closes its transport; the machine's
// lock requests end with ErrClosed.
func (g *cacheGroup) close() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		return nil
	}
	g.closed = true
	close(g.done)
	var errs []error
	if r := g.raft.Load(); r != nil {
		f := r.Shutdown()
		// As for the main group (Node.Close): the transport first, so
		// that raft's wait for its replication goroutines is not held by
		// a peer that stopped answering.
		if g.trans != nil {
			errs = append(errs, closeTransport(g.trans))
		}
		errs = append(errs, f.Error())
	} else if g.trans != nil {
		errs = append(errs, closeTransport(g.trans))
	}
	g.m.Shutdown(nodeerr.ErrClosed)
	g.client.close()
	return errors.Join(errs...)
}

func closeTransport(t raft.Transport) error {
	if c, ok := t.(io.Closer); ok {
		return c.Close()
	}
	return nil
}

// stopOnFault is the fail-stop of the cache group on this node, as the main
// group's after a fault of its state machine: the machine met an entry it
// cannot apply (corrupt, or written by a newer hiqlite), so this node logs
// why and shuts its member of the group down rather than serve caches and
// locks that the other members have moved past. The main group and SQL go
// on; cache and lock calls on this node fail with the fault
// (hiqlite.ErrStopped) until it restarts with the cause fixed.
func (g *cacheGroup) stopOnFault() {
	err := g.m.Fault()
	g.n.cfg.logger.Error("the cache group stopped on this node: fix the cause and restart the node", "error", err)
	if r := g.raft.Load(); r != nil {
		if serr := r.Shutdown().Error(); serr != nil {
			g.n.cfg.logger.Warn("cache group shutdown", "error", serr)
		}
	}
}
