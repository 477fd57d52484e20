package cluster

import (
	"context"
	"sync"
	"time"
)

// probeLogEvery is the least time between two log lines about the same
// node that failed its probe.
const probeLogEvery = 30 * time.Second

// Probe dials addr's RPC stream, completes the handshakes (TLS, when the
// port has it, and HMAC) and hangs up. A nil error means a node at addr
// holds the cluster secret and, with TLS, a certificate this node trusts
// for that address, and trusts this node's.
func (m *Mux) Probe(ctx context.Context, addr string) error {
	c, err := m.DialRPC(ctx, addr)
	if err != nil {
		return err
	}
	return c.Close()
}

// canAdd reports whether the leader may add the node id at addr to the
// Raft configuration: it must first prove that it can be reached over the
// port, TLS and secret included. Gossip only says that a node holds the
// gossip key; a node that cannot pass the port's handshakes would, as a
// voter, raise the quorum without ever voting (a fourth voter that cannot
// be reached makes a 3-node cluster need 3 of 4 and halts it on the next
// failure). A refusal is logged at WARN, once per probeLogEvery per node.
func (n *Node) canAdd(id, addr string) bool {
	ctx, cancel := context.WithTimeout(context.Background(), defaultHandshakeTimeout)
	defer cancel()
	err := n.mux.Probe(ctx, addr)
	if err == nil {
		n.probes.forget(id)
		return true
	}
	if n.probes.due(id, time.Now()) {
		n.cfg.Logger.Warn("not adding a discovered node: it failed the port's handshake", "id", id, "addr", addr, "error", err)
	}
	return false
}

// probeLog rate-limits the log lines of failed probes, per node.
type probeLog struct {
	mu   sync.Mutex
	last map[string]time.Time
}

func (p *probeLog) due(id string, now time.Time) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if now.Sub(p.last[id]) < probeLogEvery {
		return false
	}
	if p.last == nil {
		p.last = map[string]time.Time{}
	}
	p.last[id] = now
	return true
}

func (p *probeLog) forget(id string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.last, id)
}
