package faultsuite

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/url"
	"sync"
)

// The lock workload: holders take one lock through every node, act twice
// each by a fenced write (a row of table lock_acts inserted only if no row
// holds a larger token, the way a store that remembers the largest token
// refuses a late holder), then release it. A holder whose lease the
// leader ended (a pause, a partition) may still act: the fence must
// refuse it once a later holder acted.
//
// The checker proves from the final table (in commit order) and the
// history that fencing tokens never let two holders act at once: the
// accepted actions' tokens never decrease, each token belongs to one
// holder and one grant (no two grants share a token), one holder's
// actions are contiguous (no other holder acts between them), and every
// action a holder saw accepted is there, none it saw refused or failed.

// lockOpTimeout bounds a holder's whole cycle: waiting in the queue,
// acting, releasing.
const lockOpTimeout = "8s"

type locks struct {
	mu   sync.Mutex
	next int64 // the last holder id
}

func (*locks) Name() string { return "lock" }

func (w *locks) Run(ctx context.Context, r *runner, rng *rand.Rand) {
	extra := url.Values{"timeout": {lockOpTimeout}}
	clients(ctx, r.nodes(), rng, func(ctx context.Context, c int, _ *rand.Rand) Op {
		w.mu.Lock()
		w.next++
		h := w.next
		w.mu.Unlock()
		return r.doExtra(ctx, w.Name(), c, c, "cycle", "POST", "/x/lock/cycle", map[string]int64{"h": h}, extra)
	})
}

func (w *locks) Check(r *runner, ops []Op) (string, []string) {
	var anomalies []string
	var final []int64
	for i := range r.c.nodes {
		op := r.do(context.Background(), w.Name(), -1, i, "final-read", "GET", "/x/lock/read", nil, "linearizable")
		if op.Outcome != OK {
			anomalies = append(anomalies, fmt.Sprintf("lock: final read on %s: %s %s", op.Node, op.Outcome, op.Error))
			continue
		}
		if final == nil {
			final = op.Values
		}
	}
	var cycles []Op
	for _, op := range ops {
		if op.F == "cycle" {
			cycles = append(cycles, op)
		}
	}
	summary, found := checkLocks(cycles, final)
	return summary, append(anomalies, found...)
}

// lockAct is one accepted action: a row of lock_acts.
type lockAct struct{ token, holder, step int64 }

// checkLocks judges the holders' cycles against acts, lock_acts in
// commit order as triples of token, holder, step.
func checkLocks(cycles []Op, acts []int64) (string, []string) {
	var anomalies []string
	add := func(format string, args ...any) {
		if len(anomalies) < 20 {
			anomalies = append(anomalies, "lock: "+fmt.Sprintf(format, args...))
		}
	}
	if len(acts)%3 != 0 {
		return "", []string{fmt.Sprintf("lock: lock_acts read as %d values, not triples", len(acts))}
	}
	rows := make([]lockAct, 0, len(acts)/3)
	for i := 0; i < len(acts); i += 3 {
		rows = append(rows, lockAct{acts[i], acts[i+1], acts[i+2]})
	}
	// The grants: a token for one holder only.
	tokenOf := map[int64]int64{}  // holder -> token, of an acknowledged grant
	holderOf := map[int64]int64{} // token -> holder
	n := map[string]int{}
	for _, op := range cycles {
		n[op.Outcome]++
		if op.Outcome != OK || op.Value == nil {
			continue
		}
		h, tok := op.Input["h"], *op.Value
		tokenOf[h] = tok
		if other, ok := holderOf[tok]; ok && other != h {
			add("holders %d and %d were both granted token %d", other, h, tok)
		}
		holderOf[tok] = h
	}
	// The table: tokens never decrease, a token has one holder, a
	// holder's actions are contiguous and not repeated.
	seen := map[[2]int64]bool{} // holder, step
	done := map[int64]bool{}    // holders that acted and were followed by another
	rowHolder := map[int64]int64{}
	for i, a := range rows {
		if i > 0 {
			prev := rows[i-1]
			if a.token < prev.token {
				add("action %d (holder %d, token %d) accepted after holder %d's with the larger token %d", i, a.holder, a.token, prev.holder, prev.token)
			}
			if a.holder != prev.holder {
				done[prev.holder] = true
			}
		}
		if done[a.holder] {
			add("holder %d (token %d) acted again at action %d after another holder had acted: two holders interleaved", a.holder, a.token, i)
		}
		if h, ok := rowHolder[a.token]; ok && h != a.holder {
			add("token %d acted for holders %d and %d", a.token, h, a.holder)
		}
		rowHolder[a.token] = a.holder
		if tok, ok := tokenOf[a.holder]; ok && tok != a.token {
			add("holder %d was granted token %d but acted with %d", a.holder, tok, a.token)
		}
		if seen[[2]int64{a.holder, a.step}] {
			add("holder %d's action %d accepted twice", a.holder, a.step)
		}
		seen[[2]int64{a.holder, a.step}] = true
	}
	// What the holders saw of their actions.
	accepted, refused := 0, 0
	for _, op := range cycles {
		if op.Outcome != OK {
			continue
		}
		h := op.Input["h"]
		for i, res := range op.Values {
			step := int64(i + 1)
			in := seen[[2]int64{h, step}]
			switch {
			case res == 1:
				accepted++
				if !in {
					add("holder %d's action %d was accepted but is not in lock_acts", h, step)
				}
			case res == 0 || res == -1:
				if res == 0 {
					refused++
				}
				if in {
					add("holder %d's action %d was refused or failed (%d) but is in lock_acts", h, step, res)
				}
			}
		}
	}
	return fmt.Sprintf("cycles ok/fail/info %d/%d/%d, actions accepted %d (in table %d), refused by the fence %d",
		n[OK], n[Fail], n[Info], accepted, len(rows), refused), anomalies
}
