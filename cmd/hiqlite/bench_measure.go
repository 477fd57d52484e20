package main

// One measurement of the bench: a scenario on each system that applies,
// in rounds that take turns.

import (
	"context"
	"fmt"
	"slices"
	"time"
)

// opOf returns sys's operation for sc, nil where sc does not apply to it;
// for the mixed scenario also the mixLoad that counts its reads and writes.
func (b *benchRun) opOf(sys string, sc *scenario) (op, *mixLoad) {
	s := b.systems[sys]
	if s == nil {
		return nil, nil
	}
	if sc.kind != kindMix {
		return s.ops(sc), nil
	}
	if sys == sysHiqlite {
		s = b.hiqliteFor(sc)
	}
	mx, ok := s.(mixer)
	if !ok {
		return nil, nil
	}
	m := newMixLoad(sc.workers, mx)
	return m.op, m
}

// measure measures sc on each of systems in b.rounds rounds, taking
// turns (in another order each round), so that a change in the machine's
// load weighs on all of them alike. Each first warms up. A system's rate
// is the median of its rounds' rates; its latencies are those of all its
// rounds; its CPU time per operation counts them all.
func (b *benchRun) measure(ctx context.Context, sc *scenario, systems []string) (map[string]*measurement, error) {
	rounds := int64(b.rounds)
	if rounds > b.lim.ops {
		rounds = b.lim.ops
	}
	ops := map[string]op{}
	mixes := map[string]*mixLoad{}
	lats := map[string]*latencies{}
	cpus := map[string]time.Duration{}
	out := map[string]*measurement{}
	for _, sys := range systems {
		ops[sys], mixes[sys] = b.opOf(sys, sc)
		lats[sys] = &latencies{}
		out[sys] = &measurement{}
		warm := limits{ops: max(1, b.lim.ops/10), duration: b.lim.duration / 10}
		if _, _, err := b.load(ctx, sys, sc, warm, ops[sys]); err != nil {
			return nil, fmt.Errorf("%s, warm-up: %w", systemTitles[sys], err)
		}
		if m := mixes[sys]; m != nil {
			m.take() // the warm-up's
		}
	}
	for r := range rounds {
		// Round r's share of the count bound: they add up to b.lim.ops.
		lim := limits{ops: b.lim.ops / rounds, duration: b.lim.duration / time.Duration(rounds)}
		if r < b.lim.ops%rounds {
			lim.ops++
		}
		for i := range systems {
			sys := systems[(i+int(r))%len(systems)]
			res, cpu, err := b.load(ctx, sys, sc, lim, ops[sys])
			if err != nil {
				return nil, fmt.Errorf("%s: %w", systemTitles[sys], err)
			}
			m := out[sys]
			cpus[sys] += cpu
			m.Ops += res.ops
			m.Seconds += res.elapsed.Seconds()
			m.RoundRates = append(m.RoundRates, res.perSecond(sc.per))
			lats[sys].merge(res.lat)
			if mx := mixes[sys]; mx != nil {
				reads, writes := mx.take()
				m.Reads += reads
				m.Writes += writes
			}
			if sys == sysHiqlite {
				moved, err := b.hiqliteFor(sc).leaderMoved(ctx)
				if err != nil {
					return nil, err
				}
				if moved {
					m.Note = "the leader changed during the measurement"
				}
			}
		}
	}
	for sys, m := range out {
		m.PerSecond = median(m.RoundRates)
		m.P50Micros = micros(lats[sys].quantile(0.50))
		m.P99Micros = micros(lats[sys].quantile(0.99))
		if m.Ops > 0 {
			m.CPUMicros = micros(cpus[sys]) / float64(m.Ops)
		}
		if mixes[sys] != nil && m.Seconds > 0 {
			m.ReadsPerSecond = float64(m.Reads) / m.Seconds
			m.WritesPerSecond = float64(m.Writes) / m.Seconds
		}
	}
	return out, nil
}

// load runs one load of sc on sys and returns the CPU time the process
// used meanwhile. After hiqlite's it waits for the followers to catch up,
// so that their backlog does not weigh on the next load, and counts their
// work.
func (b *benchRun) load(ctx context.Context, sys string, sc *scenario, lim limits, f op) (loadResult, time.Duration, error) {
	cpu := processCPU()
	res, err := runLoad(ctx, sc.workers, lim, f)
	if h := b.hiqliteFor(sc); err == nil && sys == sysHiqlite {
		err = h.c.waitApplied(ctx, h.leader.node.AppliedIndex())
	}
	return res, processCPU() - cpu, err
}

// median returns the median of vs.
func median(vs []float64) float64 {
	if len(vs) == 0 {
		return 0
	}
	vs = slices.Sorted(slices.Values(vs))
	n := len(vs)
	if n%2 == 1 {
		return vs[n/2]
	}
	return (vs[n/2-1] + vs[n/2]) / 2
}

func micros(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }
