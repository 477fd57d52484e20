package faultsuite

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"time"

	"github.com/hiqlite/hiqlite/internal/waitfor"
)

// The notify workload: notifications of unique payloads sent through
// every node, half by Node.Notify, half by SQL writes (a trigger on table
// notes raises one per row), and a listener on every node, polled; a
// listener that is gone (its node was killed or restarted) is replaced by
// a new one, checked from then on.
//
// What the driver documents, and the checker checks: a listener gets
// every notification its node delivers after Listen returned, in log
// order, each once; a notification is delivered if and when its write
// commits. Two exceptions are documented: a full listener buffer drops
// the oldest (counted in Missed), and a node that catches up by
// installing a snapshot delivers nothing for the writes the snapshot
// covers. So: no listener gets a payload twice, or one never sent, or one
// whose send was proved not applied; every listener's indexes never
// decrease, a payload has one index everywhere, and any two listeners get
// their common payloads in the same order. Every acknowledged
// notification sent after a listener started is delivered to it if the
// listener lasted to the end, unless the listener reports Missed, or a
// fault hit its node (or cut every node's links) from notifySlack before
// the send to notifySlack after it: only then may its node have fallen
// behind and installed a snapshot.
const (
	notifySlack  = 5 * time.Second
	notifyPoll   = 200 * time.Millisecond
	notifyMarker = -7 // the payload of the last notification, sent in Check
)

type notifies struct {
	mu        sync.Mutex
	next      int64
	listeners []*listenerRec
}

// listenerRec is one listener the workload started: its node, id, when
// Listen returned, what it received (triples of payload, index, missed),
// and whether it was still there at the last poll.
type listenerRec struct {
	node  int
	id    int64
	start int64
	items []int64
	gone  bool
}

func (*notifies) Name() string { return "notify" }

func (w *notifies) Run(ctx context.Context, r *runner, rng *rand.Rand) {
	var wg sync.WaitGroup
	wg.Go(func() {
		clients(ctx, r.nodes(), rng, func(ctx context.Context, c int, rng *rand.Rand) Op {
			w.mu.Lock()
			w.next++
			p := w.next
			w.mu.Unlock()
			return r.do(ctx, w.Name(), c, c, "send", "POST", "/x/notify/send", map[string]int64{"p": p, "sql": int64(rng.IntN(2))}, "")
		})
	})
	wg.Go(func() {
		cur := make([]*listenerRec, r.nodes())
		for ctx.Err() == nil {
			for i := range cur {
				cur[i] = w.poll(ctx, r, i, cur[i])
			}
			wait(ctx, notifyPoll)
		}
	})
	wg.Wait()
}

// poll reads what listener l of node i received since the last poll; a
// listener that is gone, or none, is replaced by a new one (nil when
// Listen fails). It answers the current listener.
func (w *notifies) poll(ctx context.Context, r *runner, i int, l *listenerRec) *listenerRec {
	if l != nil {
		rep := r.c.call(ctx, r.c.nodes[i], "GET", "/x/notify/poll", map[string]int64{"id": l.id, "from": int64(len(l.items) / 3)}, nil)
		switch {
		case rep.Outcome == OK:
			w.mu.Lock()
			l.items = append(l.items, rep.Values...)
			w.mu.Unlock()
			return l
		case rep.Outcome == Fail && rep.Error != "" && !isConnError(rep.Error):
			w.mu.Lock()
			l.gone = true // the process restarted, or the listener stopped
			w.mu.Unlock()
		default:
			return l // the node is down or paused: ask again later
		}
	}
	op := r.do(ctx, w.Name(), -1, i, "listen", "POST", "/x/notify/listen", nil, "")
	if op.Outcome != OK || op.Value == nil {
		return nil
	}
	nl := &listenerRec{node: i, id: *op.Value, start: op.Return}
	w.mu.Lock()
	w.listeners = append(w.listeners, nl)
	w.mu.Unlock()
	return nl
}

// isConnError reports whether a Fail reply's error is one of the
// transport (the node does not answer), not of the endpoint.
func isConnError(e string) bool {
	return strings.Contains(e, "connection refused") || strings.Contains(e, "dial ")
}

func (w *notifies) Check(r *runner, ops []Op) (string, []string) {
	var anomalies []string
	// A last notification, sent after everything: once each listener
	// has it, it has everything before it.
	marker := r.do(context.Background(), w.Name(), -1, 0, "send", "POST", "/x/notify/send", map[string]int64{"p": notifyMarker, "sql": 0}, "")
	if marker.Outcome != OK {
		anomalies = append(anomalies, fmt.Sprintf("notify: the final notification on %s: %s %s", marker.Node, marker.Outcome, marker.Error))
	}
	w.mu.Lock()
	ls := append([]*listenerRec(nil), w.listeners...)
	w.mu.Unlock()
	latest := map[int]*listenerRec{}
	for _, l := range ls {
		latest[l.node] = l
	}
	for i, l := range latest {
		if l.gone {
			continue
		}
		has := func() bool {
			for j := 0; j < len(l.items); j += 3 {
				if l.items[j] == notifyMarker {
					return true
				}
			}
			return false
		}
		ok := waitfor.Until(httpTimeout, func() bool {
			rep := r.c.call(context.Background(), r.c.nodes[i], "GET", "/x/notify/poll", map[string]int64{"id": l.id, "from": int64(len(l.items) / 3)}, nil)
			if rep.Outcome == Fail && !isConnError(rep.Error) {
				l.gone = true // its node restarted after the last poll of Run
				return true
			}
			if rep.Outcome != OK {
				return false
			}
			l.items = append(l.items, rep.Values...)
			return marker.Outcome != OK || has()
		})
		if !ok {
			anomalies = append(anomalies, fmt.Sprintf("notify: the listener of %s did not get the final notification within %v", r.c.nodes[i].name, httpTimeout))
			l.gone = true
		}
	}
	var sends []Op
	for _, op := range append(ops, marker) {
		if op.F == "send" {
			sends = append(sends, op)
		}
	}
	recs := make([]notifyListener, 0, len(ls))
	for _, l := range ls {
		recs = append(recs, notifyListener{Node: r.c.nodes[l.node].name, Start: l.start, Items: l.items, Whole: !l.gone && latest[l.node] == l})
	}
	summary, found := checkNotify(sends, recs, r.faults.all(r.h.end()))
	return summary, append(anomalies, found...)
}
