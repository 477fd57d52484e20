package faultsuite

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"
)

// Workload is one kind of client traffic and the checker of its history.
// To add one: an endpoint under /x/ in cmd/hiqlite/serve_faultsuite.go
// (and its table in /x/setup), a type here, and an entry in workloads.
type Workload interface {
	Name() string
	// Run issues operations through r until ctx ends, from as many
	// goroutines as it likes; it returns once they have all returned.
	// rng is its own, seeded from the run's seed.
	Run(ctx context.Context, r *runner, rng *rand.Rand)
	// Check judges ops, its history, once the cluster has healed and
	// every node has applied the same index; it may read the nodes
	// through r. It answers a one-line summary and every anomaly found.
	Check(r *runner, ops []Op) (summary string, anomalies []string)
}

// workloads answers a fresh instance of every workload.
func workloads() []Workload {
	return []Workload{&registers{keys: 6}, &bank{accounts: 5, balance: 100}, &uniques{}, &increments{},
		&caches{}, &locks{}, &notifies{}} // the last three: ext_*_test.go
}

// opGap is the pause between two ops of one client: it keeps the load
// within what a small shared machine serves while faults go on.
const opGap = 5 * time.Millisecond

// maxOpsPerClient bounds every client loop, whatever the duration.
const maxOpsPerClient = 200_000

// failGap is the pause of a client after an op that did not succeed:
// no point hammering a node that is down.
const failGap = 50 * time.Millisecond

// clients runs each(client, rng) on k goroutines, each with its own rng
// drawn from rng, until ctx ends or maxOpsPerClient ops.
func clients(ctx context.Context, k int, rng *rand.Rand, each func(ctx context.Context, client int, rng *rand.Rand) Op) {
	var wg sync.WaitGroup
	for c := range k {
		crng := rand.New(rand.NewPCG(rng.Uint64(), rng.Uint64()))
		wg.Go(func() {
			t := time.NewTicker(opGap)
			defer t.Stop()
			for range maxOpsPerClient {
				select {
				case <-ctx.Done():
					return
				case <-t.C:
				}
				if op := each(ctx, c, crng); op.Outcome != OK {
					wait(ctx, failGap)
				}
			}
		})
	}
	wg.Wait()
}

// bank: accounts moved between by transfers in interactive transactions
// begun on every node (a quarter read the balance before writing); every linearizable read of all balances, on any
// node, must see the initial total and no negative balance.
type bank struct{ accounts, balance int64 }

func (*bank) Name() string { return "bank" }

func (b *bank) Run(ctx context.Context, r *runner, rng *rand.Rand) {
	clients(ctx, r.nodes(), rng, func(ctx context.Context, c int, rng *rand.Rand) Op {
		if rng.IntN(10) < 3 {
			return r.do(ctx, b.Name(), c, c, "read", "GET", "/x/bank/read", nil, "linearizable")
		}
		from := rng.Int64N(b.accounts)
		to := (from + 1 + rng.Int64N(b.accounts-1)) % b.accounts
		return r.do(ctx, b.Name(), c, c, "transfer", "POST", "/x/bank/transfer",
			map[string]int64{"from": from, "to": to, "amount": 1 + rng.Int64N(10), "readfirst": readFirst(rng)}, "")
	})
}

// readFirst answers 1 for a quarter of the transfers: those read the
// balance before writing, so any write committed meanwhile, of any
// workload, makes them retry (RetryTx), and most give up.
func readFirst(rng *rand.Rand) int64 {
	if rng.IntN(4) == 0 {
		return 1
	}
	return 0
}

func (b *bank) Check(r *runner, ops []Op) (string, []string) {
	var anomalies []string
	n := map[string]int{}
	check := func(where string, values []int64) {
		var sum int64
		negative := false
		for _, v := range values {
			sum += v
			negative = negative || v < 0
		}
		if int64(len(values)) != b.accounts || sum != b.accounts*b.balance || negative {
			anomalies = append(anomalies, fmt.Sprintf("bank: %s read balances %v: want %d accounts summing to %d, none negative",
				where, values, b.accounts, b.accounts*b.balance))
		}
	}
	for _, op := range ops {
		n[op.F+" "+op.Outcome]++
		if op.F == "read" && op.Outcome == OK {
			check(fmt.Sprintf("%s at %.3fs", op.Node, float64(op.Call)/1e9), op.Values)
		}
	}
	for i := range r.c.nodes {
		op := r.do(context.Background(), b.Name(), -1, i, "final-read", "GET", "/x/bank/read", nil, "linearizable")
		if op.Outcome != OK {
			anomalies = append(anomalies, fmt.Sprintf("bank: final read on %s: %s %s", op.Node, op.Outcome, op.Error))
			continue
		}
		check("final on "+op.Node, op.Values)
	}
	return fmt.Sprintf("transfers ok/fail/info %d/%d/%d, reads ok/fail %d/%d",
		n["transfer ok"], n["transfer fail"], n["transfer info"], n["read ok"], n["read fail"]), anomalies
}

// uniques: inserts of ids unique across clients; every acknowledged id
// must be present exactly once at the end, an id whose insert failed must
// be absent, and none may appear twice.
type uniques struct {
	mu   sync.Mutex
	next int64
}

func (*uniques) Name() string { return "uniques" }

func (u *uniques) Run(ctx context.Context, r *runner, rng *rand.Rand) {
	clients(ctx, r.nodes(), rng, func(ctx context.Context, c int, _ *rand.Rand) Op {
		u.mu.Lock()
		u.next++
		id := u.next
		u.mu.Unlock()
		return r.do(ctx, u.Name(), c, c, "insert", "POST", "/x/uniq/insert", map[string]int64{"id": id}, "")
	})
}

func (u *uniques) Check(r *runner, ops []Op) (string, []string) {
	outcome := map[int64]string{}
	n := map[string]int{}
	for _, op := range ops {
		outcome[op.Input["id"]] = op.Outcome
		n[op.Outcome]++
	}
	var anomalies []string
	for i := range r.c.nodes {
		op := r.do(context.Background(), u.Name(), -1, i, "final-read", "GET", "/x/uniq/read", nil, "linearizable")
		if op.Outcome != OK {
			anomalies = append(anomalies, fmt.Sprintf("uniques: final read on %s: %s %s", op.Node, op.Outcome, op.Error))
			continue
		}
		count := map[int64]int{}
		for _, id := range op.Values {
			count[id]++
		}
		var lost, dup, ghost []int64
		for id, o := range outcome {
			switch {
			case o == OK && count[id] == 0:
				lost = append(lost, id)
			case o == Fail && count[id] > 0:
				ghost = append(ghost, id)
			}
		}
		for id, k := range count {
			if k > 1 {
				dup = append(dup, id)
			}
			if _, ok := outcome[id]; !ok {
				ghost = append(ghost, id)
			}
		}
		if len(lost)+len(dup)+len(ghost) > 0 {
			anomalies = append(anomalies, fmt.Sprintf("uniques on %s: acknowledged but missing %v; duplicated %v; present though failed or never sent %v",
				op.Node, firstIDs(lost), firstIDs(dup), firstIDs(ghost)))
		}
	}
	return fmt.Sprintf("inserts ok/fail/info %d/%d/%d", n[OK], n[Fail], n[Info]), anomalies
}

func firstIDs(ids []int64) string {
	if len(ids) > 10 {
		return fmt.Sprintf("%v ... (%d in all)", ids[:10], len(ids))
	}
	return fmt.Sprint(ids)
}

// increments: UPDATE counter SET v = v + 1 issued on followers, so the
// write is forwarded. The final value must count every acknowledged
// increment exactly once: acked <= v <= acked + indeterminate.
type increments struct{}

func (*increments) Name() string { return "increments" }

func (w *increments) Run(ctx context.Context, r *runner, rng *rand.Rand) {
	clients(ctx, r.nodes(), rng, func(ctx context.Context, c int, _ *rand.Rand) Op {
		i := c
		if l := r.hint.get(); i == l {
			i = (i + 1) % r.nodes()
		}
		return r.do(ctx, w.Name(), c, i, "incr", "POST", "/x/incr", nil, "")
	})
}

func (w *increments) Check(r *runner, ops []Op) (string, []string) {
	var acked, failed, info int64
	for _, op := range ops {
		switch op.Outcome {
		case OK:
			acked++
		case Fail:
			failed++
		case Info:
			info++
		}
	}
	var anomalies []string
	for i := range r.c.nodes {
		op := r.do(context.Background(), w.Name(), -1, i, "final-read", "GET", "/x/incr/read", nil, "linearizable")
		switch {
		case op.Outcome != OK || op.Value == nil:
			anomalies = append(anomalies, fmt.Sprintf("increments: final read on %s: %s %s", op.Node, op.Outcome, op.Error))
		case *op.Value < acked || *op.Value > acked+info:
			anomalies = append(anomalies, fmt.Sprintf("increments: counter on %s is %d: want from %d (acknowledged) to %d (plus %d indeterminate)",
				op.Node, *op.Value, acked, acked+info, info))
		}
	}
	return fmt.Sprintf("increments ok/fail/info %d/%d/%d", acked, failed, info), anomalies
}
