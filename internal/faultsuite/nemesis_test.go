package faultsuite

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"
)

// Fault kinds. Each hits at most a minority (one node, or one side of a
// partition), and is healed before the next, so a majority can work
// between faults.
const (
	faultKill      = "kill"             // SIGKILL, then start again
	faultPause     = "pause"            // SIGSTOP, then SIGCONT
	faultRestart   = "graceful-restart" // SIGTERM (must exit 0), then start
	faultWipeData  = "wipe-data"        // SIGKILL, DATA_DIR removed, start: must rejoin
	faultWipeRaft  = "wipe-raft"        // SIGKILL, DATA_DIR/raft removed, start
	faultDiskFull  = "disk-full"        // restart under ulimit -f, then without
	faultPartMinor = "partition-minority"
	faultPartLead  = "partition-leader" // the leader alone on the minority side
	faultPartBrdge = "partition-bridge" // two halves that only one node links
)

var processFaults = []string{faultKill, faultPause, faultRestart, faultWipeData, faultWipeRaft, faultDiskFull}
var partitionFaults = []string{faultPartMinor, faultPartLead, faultPartBrdge}

// nemesis injects faults on a schedule drawn from its rng and records it.
type nemesis struct {
	r     *runner
	rng   *rand.Rand
	kinds []string
	// progress, when set, logs each fault as it is injected.
	progress func(string)

	mu       sync.Mutex
	schedule []string       // what it did, when
	counts   map[string]int // faults injected by kind
	problems []string       // anomalies the nemesis saw itself
}

func newNemesis(r *runner, rng *rand.Rand) *nemesis {
	kinds := append([]string(nil), processFaults...)
	if r.c.net.partitions() == "" {
		kinds = append(kinds, partitionFaults...)
	}
	return &nemesis{r: r, rng: rng, kinds: kinds, counts: map[string]int{}}
}

func (n *nemesis) logf(format string, args ...any) {
	n.mu.Lock()
	defer n.mu.Unlock()
	at := float64(n.r.h.end()) / 1e9
	n.schedule = append(n.schedule, fmt.Sprintf("%8.3fs %s", at, fmt.Sprintf(format, args...)))
}

func (n *nemesis) problem(format string, args ...any) {
	n.logf("PROBLEM: "+format, args...)
	n.mu.Lock()
	defer n.mu.Unlock()
	n.problems = append(n.problems, fmt.Sprintf(format, args...))
}

// between draws a duration from lo to hi.
func (n *nemesis) between(lo, hi time.Duration) time.Duration {
	return lo + time.Duration(n.rng.Int64N(int64(hi-lo)+1))
}

// wait waits d or until ctx ends.
func wait(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// run injects one fault after another until ctx ends, each held for a
// drawn time and healed, with a quiet time between; then it heals
// everything.
func (n *nemesis) run(ctx context.Context) {
	for ctx.Err() == nil {
		wait(ctx, n.between(time.Second, 3*time.Second))
		if ctx.Err() != nil {
			break
		}
		kind := n.kinds[n.rng.IntN(len(n.kinds))]
		pick := n.rng.IntN(len(n.r.c.nodes))
		leaderFirst := n.rng.IntN(2) == 0
		hold := n.between(time.Second, 6*time.Second)
		n.inject(ctx, kind, pick, leaderFirst, hold)
	}
}

// target answers the node a fault hits: the leader when leaderFirst and
// one is known, else node pick.
func (n *nemesis) target(pick int, leaderFirst bool) (*node, string) {
	if leaderFirst {
		if l := n.r.c.leader(); l >= 0 {
			n.r.hint.set(l)
			return n.r.c.nodes[l], " (the leader)"
		}
	}
	return n.r.c.nodes[pick], ""
}

func (n *nemesis) inject(ctx context.Context, kind string, pick int, leaderFirst bool, hold time.Duration) {
	n.mu.Lock()
	n.counts[kind]++
	n.mu.Unlock()
	switch kind {
	case faultKill, faultWipeData, faultWipeRaft:
		nd, role := n.target(pick, leaderFirst)
		n.mark(kind, nd.name)
		n.logf("%s %s%s", kind, nd.name, role)
		if err := nd.kill(); err != nil {
			n.problem("kill %s: %v", nd.name, err)
		}
		switch kind {
		case faultWipeData:
			n.remove(nd, nd.dir)
		case faultWipeRaft:
			n.remove(nd, filepath.Join(nd.dir, "raft"))
		}
		wait(ctx, hold)
		n.restart(nd, 0)
	case faultPause:
		nd, role := n.target(pick, leaderFirst)
		n.mark(kind, nd.name)
		n.logf("pause %s%s (SIGSTOP)", nd.name, role)
		nd.signal(syscall.SIGSTOP)
		wait(ctx, hold)
		nd.signal(syscall.SIGCONT)
		n.logf("resume %s (SIGCONT)", nd.name)
	case faultRestart:
		nd, role := n.target(pick, leaderFirst)
		n.mark(kind, nd.name)
		n.logf("graceful restart %s%s (SIGTERM)", nd.name, role)
		if err := nd.signal(syscall.SIGTERM); err != nil {
			n.problem("SIGTERM %s: %v", nd.name, err)
		}
		began := time.Now()
		if err := nd.wait(); err != nil {
			n.problem("%s after SIGTERM: %v, want exit status 0", nd.name, err)
			if nd.running() {
				// Where it hangs: Go prints every goroutine's stack on
				// SIGQUIT, into the node's log.
				nd.signal(syscall.SIGQUIT)
				nd.wait()
			}
			nd.kill()
		} else {
			n.logf("%s exited 0 after %v", nd.name, time.Since(began).Round(time.Millisecond))
		}
		n.restart(nd, 0)
	case faultDiskFull:
		nd, role := n.target(pick, leaderFirst)
		n.mark(kind, nd.name)
		nd.kill()
		limit := diskLimit(nd.dir)
		n.logf("disk-full %s%s: restart under ulimit -f %d (%d KiB)", nd.name, role, limit, limit/2)
		n.restart(nd, limit)
		wait(ctx, hold)
		if st, ok := n.r.c.status(nd); ok && st.Fault != "" {
			n.logf("%s under the limit reports a fault: %s", nd.name, st.Fault)
		} else if ok {
			n.logf("%s under the limit reports no fault", nd.name)
		} else {
			n.logf("%s under the limit does not answer /status", nd.name)
		}
		nd.kill()
		n.restart(nd, 0)
	default:
		n.partition(ctx, kind, pick, hold)
		n.unmark()
		return
	}
	n.recover()
	n.unmark()
}

// remove removes path of the stopped node nd.
func (n *nemesis) remove(nd *node, path string) {
	if err := os.RemoveAll(path); err != nil {
		n.problem("remove %s of %s: %v", path, nd.name, err)
	}
}

// restart starts nd under a file size limit (0: none).
func (n *nemesis) restart(nd *node, limit int64) {
	if err := n.r.c.start(nd, limit); err != nil {
		n.problem("%v", err)
		return
	}
	n.logf("start %s", nd.name)
}

// recover waits until every node is ready again; a node that does not
// come back is a problem.
func (n *nemesis) recover() {
	if err := n.r.c.waitAllReady(); err != nil {
		n.problem("after healing: %v", err)
		return
	}
	if l := n.r.c.leader(); l >= 0 {
		n.r.hint.set(l)
	}
	n.logf("all nodes ready")
}

// diskLimit answers a file size limit, in 512-byte blocks, a little
// above the database file in dir: its next growth fails as on a full
// disk.
func diskLimit(dir string) int64 {
	var size int64
	if fi, err := os.Stat(filepath.Join(dir, "hiqlite.db")); err == nil {
		size = fi.Size()
	}
	return size/512 + 128
}

// partition cuts the links of kind for hold, then heals them.
func (n *nemesis) partition(ctx context.Context, kind string, pick int, hold time.Duration) {
	c := n.r.c
	k := len(c.nodes)
	var connected func(i, j int) bool
	switch kind {
	case faultPartMinor, faultPartLead:
		alone := pick
		if kind == faultPartLead {
			if l := c.leader(); l >= 0 {
				alone = l
			}
		}
		connected = func(i, j int) bool { return i != alone && j != alone }
		n.mark(kind, c.nodes[alone].name)
		n.logf("%s: %s cut off from the others", kind, c.nodes[alone].name)
	case faultPartBrdge:
		bridge := pick
		side := map[int]bool{}
		others := n.rng.Perm(k)
		half := false
		for _, i := range others {
			if i != bridge {
				side[i] = half
				half = !half
			}
		}
		connected = func(i, j int) bool { return i == bridge || j == bridge || side[i] == side[j] }
		n.mark(kind, "") // every node loses some link
		n.logf("%s: only %s links the two halves", kind, c.nodes[bridge].name)
	}
	if err := c.net.apply(connected); err != nil {
		n.problem("apply %s: %v", kind, err)
	}
	wait(ctx, hold)
	if err := c.net.heal(); err != nil {
		n.problem("heal %s: %v", kind, err)
	}
	n.logf("healed the network")
	n.recover()
}

// healAll ends every fault: the network healed, paused nodes resumed,
// stopped ones started, a limited one restarted without its limit.
func (n *nemesis) healAll() {
	c := n.r.c
	if err := c.net.heal(); err != nil {
		n.problem("heal: %v", err)
	}
	for _, nd := range c.nodes {
		if nd.isPaused() {
			nd.signal(syscall.SIGCONT)
		}
		nd.mu.Lock()
		limited := nd.limit > 0
		nd.mu.Unlock()
		if limited {
			nd.kill()
		}
		if !nd.running() {
			n.restart(nd, 0)
		}
	}
	n.logf("healed everything")
}
