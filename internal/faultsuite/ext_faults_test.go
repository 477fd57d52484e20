package faultsuite

import (
	"context"
	"fmt"
	"net/url"
	"sync"
	"time"
)

// faultWindow is one fault as the checkers of the extension workloads see
// it: which node it hit ("" for a partition with a bridge, which hits
// every node) and from when to when, in ns since the run began. End is
// when the nemesis saw every node ready again (0 while it lasts).
type faultWindow struct {
	Kind       string
	Node       string
	Start, End int64
}

// faultLog records the nemesis's faults for the checkers.
type faultLog struct {
	mu      sync.Mutex
	windows []faultWindow
}

// begin records a fault of kind on node (""; every node) starting at.
func (f *faultLog) begin(kind, node string, at int64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.windows = append(f.windows, faultWindow{Kind: kind, Node: node, Start: at})
}

// end closes the fault begun last.
func (f *faultLog) end(at int64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if n := len(f.windows); n > 0 && f.windows[n-1].End == 0 {
		f.windows[n-1].End = at
	}
}

// all answers a copy of the windows; one still open ends at now.
func (f *faultLog) all(now int64) []faultWindow {
	f.mu.Lock()
	defer f.mu.Unlock()
	ws := append([]faultWindow(nil), f.windows...)
	for i := range ws {
		if ws[i].End == 0 {
			ws[i].End = now
		}
	}
	return ws
}

// hits reports whether a window in ws, widened by before and after,
// overlaps [from, to] and hit node (a window of every node hits all).
func hits(ws []faultWindow, node string, from, to int64, before, after time.Duration) bool {
	for _, w := range ws {
		if (w.Node == "" || w.Node == node) && w.Start-before.Nanoseconds() <= to && w.End+after.Nanoseconds() >= from {
			return true
		}
	}
	return false
}

// mark records the start of a fault on node nd ("" for every node) and
// logs it with the time since the run began, so a long run shows progress.
func (n *nemesis) mark(kind, nd string) {
	at := n.r.h.end()
	n.r.faults.begin(kind, nd, at)
	if n.progress != nil {
		on := nd
		if on == "" {
			on = "(every node)"
		}
		n.progress(fmt.Sprintf("%8.1fs fault %d: %s %s", float64(at)/1e9, n.total(), kind, on))
	}
}

// unmark records that the fault begun last has healed.
func (n *nemesis) unmark() { n.r.faults.end(n.r.h.end()) }

func (n *nemesis) total() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	t := 0
	for _, k := range n.counts {
		t += k
	}
	return t
}

// doExtra is do with more query parameters (such as ?timeout=).
func (r *runner) doExtra(ctx context.Context, w string, client, i int, f, method, path string, input map[string]int64, extra url.Values) Op {
	nd := r.c.nodes[i]
	call := time.Since(r.h.began).Nanoseconds()
	rep := r.c.call(ctx, nd, method, path, input, extra)
	op := Op{Client: client, Node: nd.name, Workload: w, F: f, Input: input, Call: call,
		Return: time.Since(r.h.began).Nanoseconds(), Outcome: rep.Outcome, Value: rep.Value, Values: rep.Values, Error: rep.Error}
	if op.Outcome != OK && op.Outcome != Fail && op.Outcome != Info {
		op.Error = fmt.Sprintf("unknown outcome %q: %s", op.Outcome, op.Error)
		op.Outcome = Info
	}
	r.h.add(op)
	return op
}
