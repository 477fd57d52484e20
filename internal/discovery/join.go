package discovery

import (
	"fmt"
	"net"
	"slices"
	"strings"
	"time"

	"github.com/hashicorp/memberlist"
	"github.com/hiqlite/hiqlite/internal/nodeerr"
)

// Joining: the loop that joins the seeds and rejoins a node left alone,
// why a join failed, and a node refused because a live member holds its id.

// joinLoop joins the seeds, retrying with exponential backoff until one of
// them answers, then keeps watching: when the node has been alone for
// timing.aloneAfter (all its peers died, or it was cut off long enough for
// memberlist to give up on them) it tries the seeds again. It ends at Close
// or Leave.
func (d *Discovery) joinLoop() {
	backoff := d.timing.joinMin
	joined := false
	warned := false
	var aloneSince time.Time
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-d.stopCh:
			return
		case <-d.leftCh:
			return
		case <-t.C:
		}
		if joined {
			if d.ml.NumMembers() > 1 {
				aloneSince = time.Time{}
				t.Reset(d.timing.aloneCheck)
				continue
			}
			if aloneSince.IsZero() {
				aloneSince = time.Now()
			}
			if time.Since(aloneSince) < d.timing.aloneAfter {
				t.Reset(d.timing.aloneCheck)
				continue
			}
		}
		d.joinAttempts.Add(1)
		n, err := d.ml.Join(d.seeds)
		// A seed that is this node under another name answers too: only
		// another member proves the join.
		if n > 0 && d.ml.NumMembers() > 1 {
			if warned || joined {
				d.log.Info("joined gossip", "seeds_answered", n)
			} else {
				d.log.Debug("joined gossip", "seeds_answered", n)
			}
			joined, warned = true, false
			d.setJoined(true, nil)
			aloneSince = time.Time{}
			backoff = d.timing.joinMin
			t.Reset(d.timing.aloneCheck)
			continue
		}
		why := "only this node answered"
		if err != nil {
			why = strings.Join(strings.Fields(err.Error()), " ") // memberlist lists one error per line
		}
		jerr := d.joinFailure(why)
		d.setJoined(false, jerr)
		if backoff >= d.timing.joinMax && !warned {
			d.log.Warn("cannot join gossip yet; retrying", "error", jerr)
			warned = true
		} else {
			d.log.Debug("cannot join gossip yet; retrying", "in", backoff, "error", jerr)
		}
		t.Reset(backoff)
		backoff = min(2*backoff, d.timing.joinMax)
	}
}

// joinFailure explains a failed join of the seeds; why is memberlist's
// error. memberlist reports an exchange it could not decrypt, or one
// encrypted on one side only, as text alone; its wording is matched here
// for a hint in the message, never to decide anything.
func (d *Discovery) joinFailure(why string) error {
	seeds := strings.Join(d.seeds, ", ")
	if strings.Contains(why, "crypt") { // decrypt, encrypted, encryption
		return fmt.Errorf("gossip with the seeds in _join (%s) failed: wrong secret? (%s)", seeds, why)
	}
	return fmt.Errorf("no seed in _join (%s) answered (%s)", seeds, why)
}

// setJoined records the outcome of a join of the seeds: err is why it
// failed.
func (d *Discovery) setJoined(joined bool, err error) {
	d.mu.Lock()
	d.joined = d.joined || joined
	d.joinErr = err
	d.mu.Unlock()
}

// StrayWarnEvery is the least time between two warnings of a node out of
// any cluster about why it is.
func (d *Discovery) StrayWarnEvery() time.Duration { return d.timing.strayWarn }

// JoinAttempts is the number of times the join loop tried the seeds.
func (d *Discovery) JoinAttempts() int64 { return d.joinAttempts.Load() }

// JoinError says why the seeds are not joined: why the last attempt
// failed, or that none answered yet before the first attempt ends. It is
// nil when there are no seeds, once a join succeeded, and after a later
// failure only while it lasts.
func (d *Discovery) JoinError() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.joinErr == nil && !d.joined && len(d.seeds) > 0 {
		return fmt.Errorf("no seed in _join (%s) answered yet", strings.Join(d.seeds, ", "))
	}
	return d.joinErr
}

// IDTaken returns, wrapping ErrNodeIDInUse, what gossip showed when
// another live node had this node's id while this node did not announce
// itself in a cluster; nil if that never happened. The node decides
// whether it is the newcomer (see cluster.Node.refuse).
func (d *Discovery) IDTaken() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.idTaken
}

// conflict handles memberlist's report of node other announcing the name
// of existing, a live node at another address; memberlist keeps existing
// and drops other's announcement, and logs the conflict itself. When the
// name is this node's and this node does not announce itself in a cluster,
// it may be the newcomer whose id a member already has: IDTaken records it
// (cluster/identity.go). A node in a cluster keeps its id; the newcomer,
// which sees the same conflict from its side, is the one refused.
func (d *Discovery) conflict(existing, other *memberlist.Node) {
	if existing.Name != d.id {
		return
	}
	raftAddr := "unknown"
	if p, _, err := decodePeerMeta(other.Meta); err == nil {
		raftAddr = p.RaftAddr
	}
	d.mu.Lock()
	first := d.idTaken == nil && !d.self.InCluster
	if first {
		d.idTaken = fmt.Errorf("%w: %q is the id of the live member at %s (gossip %s); this node (gossip %s) gives up joining: give it another _node",
			nodeerr.ErrNodeIDInUse, d.id, raftAddr, other.Address(), d.addr)
	}
	d.mu.Unlock()
	if first {
		d.signal()
	}
}

// otherSeeds returns seeds without those that are literally this node (its
// advertised or bind address). A seed that reaches this node under another
// name stays; joinLoop copes with it.
func otherSeeds(seeds []string, self ...string) []string {
	canon := func(a string) string {
		host, port, err := net.SplitHostPort(a)
		if err != nil {
			return a
		}
		if ip := net.ParseIP(host); ip != nil {
			host = ip.String()
		}
		return net.JoinHostPort(host, port)
	}
	var mine []string
	for _, s := range self {
		mine = append(mine, canon(s))
	}
	var out []string
	for _, s := range seeds {
		if !slices.Contains(mine, canon(s)) {
			out = append(out, s)
		}
	}
	return out
}
