package faultsuite

import (
	"context"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/anishathalye/porcupine"
)

// checkTimeout bounds porcupine's search; past it the verdict is unknown,
// which is reported, not counted as a pass.
const checkTimeout = 2 * time.Minute

// registers: one register a key, written (upsert) and read
// linearizably through every node; the history must be linearizable,
// as porcupine checks it.
type registers struct{ keys int64 }

func (*registers) Name() string { return "registers" }

func (g *registers) Run(ctx context.Context, r *runner, rng *rand.Rand) {
	// Values are unique per client: client*1e9 + its sequence.
	clients(ctx, r.nodes(), rng, func(ctx context.Context, c int, rng *rand.Rand) Op {
		k := rng.Int64N(g.keys)
		if rng.IntN(2) == 0 {
			return r.do(ctx, g.Name(), c, c, "read", "GET", "/x/reg/read", map[string]int64{"k": k}, "linearizable")
		}
		v := int64(c+1)*1_000_000_000 + rng.Int64N(1_000_000_000)
		return r.do(ctx, g.Name(), c, c, "write", "POST", "/x/reg/write", map[string]int64{"k": k, "v": v}, "")
	})
}

// regInput is a porcupine input: a read (write false) or a write of v, to key k.
type regInput struct {
	k     int64
	write bool
	v     int64
}

// registerModel is a register per key, zero until written (a read of a
// missing row answers zero).
var registerModel = porcupine.Model{
	Partition: func(history []porcupine.Operation) [][]porcupine.Operation {
		by := map[int64][]porcupine.Operation{}
		var keys []int64
		for _, op := range history {
			k := op.Input.(regInput).k
			if _, ok := by[k]; !ok {
				keys = append(keys, k)
			}
			by[k] = append(by[k], op)
		}
		var out [][]porcupine.Operation
		for _, k := range keys {
			out = append(out, by[k])
		}
		return out
	},
	Init: func() any { return int64(0) },
	Step: func(state, input, output any) (bool, any) {
		in := input.(regInput)
		if in.write {
			return true, in.v
		}
		return output.(int64) == state.(int64), state
	},
	Equal: func(a, b any) bool { return a == b },
	DescribeOperation: func(input, output any) string {
		in := input.(regInput)
		if in.write {
			return fmt.Sprintf("put(%d, %d)", in.k, in.v)
		}
		return fmt.Sprintf("get(%d) -> %d", in.k, output)
	},
}

// porcupineOps turns the register history into porcupine's: failed ops
// are dropped (a failed write never happened, a failed read saw
// nothing), an indeterminate write returns at the end of the history, an
// indeterminate read is dropped.
func porcupineOps(ops []Op, end int64) []porcupine.Operation {
	var out []porcupine.Operation
	for _, op := range ops {
		if op.Outcome == Fail || op.Client < 0 {
			continue
		}
		in := regInput{k: op.Input["k"], write: op.F == "write", v: op.Input["v"]}
		ret := op.Return
		if op.Outcome == Info {
			if !in.write {
				continue
			}
			ret = end
		}
		var v int64
		if op.Value != nil {
			v = *op.Value
		}
		out = append(out, porcupine.Operation{ClientId: op.Client, Input: in, Call: op.Call, Output: v, Return: ret})
	}
	return out
}

func (g *registers) Check(r *runner, ops []Op) (string, []string) {
	n := map[string]int{}
	for _, op := range ops {
		n[op.F+" "+op.Outcome]++
	}
	summary := fmt.Sprintf("writes ok/fail/info %d/%d/%d, reads ok/fail/info %d/%d/%d",
		n["write ok"], n["write fail"], n["write info"], n["read ok"], n["read fail"], n["read info"])
	res := porcupine.CheckOperationsTimeout(registerModel, porcupineOps(ops, r.h.end()), checkTimeout)
	summary += ", porcupine: " + string(res)
	switch res {
	case porcupine.Ok:
		return summary, nil
	case porcupine.Illegal:
		return summary, []string{"registers: the history is not linearizable (porcupine)"}
	}
	return summary, []string{fmt.Sprintf("registers: porcupine gave no verdict within %v", checkTimeout)}
}
