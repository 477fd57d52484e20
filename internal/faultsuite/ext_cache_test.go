package faultsuite

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/url"
	"sort"
	"sync"
	"time"
)

// The cache workload: Set, Delete and (local) Get of a few keys of one
// cache, through every node.
//
// Its checker asks two things. No invented values: every value a Get
// returns was written by a Set of that key called before the Get
// returned, and not by one proved not applied. No stalls: a Set or Delete
// through a node that no fault hit while it ran (and during no partition
// with a bridge, which disturbs every node) returns within stallBound,
// whatever happened to the cache group's leader: a killed, paused, cut
// off or restarted leader costs a new election, not the op's whole
// timeout.
//
// stallBound: the cache group elects with raft's heartbeat and election
// timeouts of 500 ms, each drawn by raft from [T, 2T]: a follower notices
// a silent leader within 1 s and the next election takes 1 s or a few
// tries of it, about 2 s in all; a pending request is cut as soon as
// this node learns of the new leader and the Set is sent again. 6 s is
// three times that, for a 2-core machine under -race; an op that waits
// for its whole timeout (cacheOpTimeout, 9 s) is a stall.
const (
	stallBound     = 6 * time.Second
	cacheOpTimeout = 9 * time.Second // below the suite's HTTP timeout of 10 s
	cacheKeys      = 4
)

type caches struct {
	mu   sync.Mutex
	next int64 // the last value written: every Set writes a new one
}

func (*caches) Name() string { return "cache" }

func (w *caches) Run(ctx context.Context, r *runner, rng *rand.Rand) {
	extra := url.Values{"timeout": {cacheOpTimeout.String()}}
	clients(ctx, r.nodes(), rng, func(ctx context.Context, c int, rng *rand.Rand) Op {
		k := rng.Int64N(cacheKeys)
		switch n := rng.IntN(10); {
		case n < 4:
			return r.doExtra(ctx, w.Name(), c, c, "get", "GET", "/x/cache/get", map[string]int64{"k": k}, nil)
		case n < 9:
			w.mu.Lock()
			w.next++
			v := w.next
			w.mu.Unlock()
			return r.doExtra(ctx, w.Name(), c, c, "set", "POST", "/x/cache/set", map[string]int64{"k": k, "v": v}, extra)
		default:
			return r.doExtra(ctx, w.Name(), c, c, "delete", "POST", "/x/cache/delete", map[string]int64{"k": k}, extra)
		}
	})
}

func (w *caches) Check(r *runner, ops []Op) (string, []string) {
	return checkCache(ops, r.faults.all(r.h.end()))
}

// checkCache judges a cache history against the faults in ws.
func checkCache(ops []Op, ws []faultWindow) (string, []string) {
	var anomalies []string
	n := map[string]int{}
	type set struct {
		call    int64
		outcome string
	}
	sets := map[[2]int64]set{} // by key and value
	for _, op := range ops {
		n[op.F+" "+op.Outcome]++
		if op.F == "set" {
			sets[[2]int64{op.Input["k"], op.Input["v"]}] = set{op.Call, op.Outcome}
		}
	}
	var slow []time.Duration
	stalls := 0
	for _, op := range ops {
		switch op.F {
		case "get":
			if op.Outcome != OK {
				continue
			}
			if op.Error != "" {
				anomalies = append(anomalies, fmt.Sprintf("cache: get of k%d on %s at %.3fs: %s", op.Input["k"], op.Node, sec(op.Call), op.Error))
				continue
			}
			if op.Value == nil {
				continue
			}
			s, ok := sets[[2]int64{op.Input["k"], *op.Value}]
			switch {
			case !ok || s.call > op.Return:
				anomalies = append(anomalies, fmt.Sprintf("cache: get of k%d on %s at %.3fs read %d, which no set of that key wrote before",
					op.Input["k"], op.Node, sec(op.Call), *op.Value))
			case s.outcome == Fail:
				anomalies = append(anomalies, fmt.Sprintf("cache: get of k%d on %s at %.3fs read %d, written by a set that failed (proved not applied)",
					op.Input["k"], op.Node, sec(op.Call), *op.Value))
			}
		case "set", "delete":
			took := time.Duration(op.Return - op.Call)
			if took <= stallBound || hits(ws, op.Node, op.Call, op.Return, 0, 0) {
				continue
			}
			stalls++
			slow = append(slow, took)
			if stalls <= 10 {
				anomalies = append(anomalies, fmt.Sprintf("cache: %s of k%d on %s at %.3fs took %v (%s %s), beyond %v, while no fault hit %s",
					op.F, op.Input["k"], op.Node, sec(op.Call), took.Round(time.Millisecond), op.Outcome, op.Error, stallBound, op.Node))
			}
		}
	}
	if stalls > 10 {
		sort.Slice(slow, func(i, j int) bool { return slow[i] > slow[j] })
		anomalies = append(anomalies, fmt.Sprintf("cache: %d stalls in all, the longest %v", stalls, slow[0].Round(time.Millisecond)))
	}
	return fmt.Sprintf("sets ok/fail/info %d/%d/%d, deletes ok/fail/info %d/%d/%d, gets ok/fail %d/%d, stalls %d",
		n["set ok"], n["set fail"], n["set info"], n["delete ok"], n["delete fail"], n["delete info"],
		n["get ok"], n["get fail"]+n["get info"], stalls), anomalies
}

// sec answers ns as seconds.
func sec(ns int64) float64 { return float64(ns) / 1e9 }
