package main

// The load loop of the bench and the latency histogram it records into.

import (
	"context"
	"errors"
	"math/bits"
	"sync"
	"sync/atomic"
	"time"
)

// latencies is a histogram of durations in fixed memory, in the manner of
// HdrHistogram: each power of two is cut into latSub buckets of equal
// width, so a quantile is known to within 1/latSub (3%) of its value
// however many durations go in. Not safe for concurrent use: each worker
// records into its own, merged at the end.
type latencies struct {
	counts   [latBuckets]uint64
	n        uint64
	min, max time.Duration
}

const (
	latSubBits = 5
	latSub     = 1 << latSubBits
	// Bucket e*latSub+m holds [m<<(e-1), (m+1)<<(e-1)) for e >= 1 and
	// latSub <= m < 2*latSub; bucket v < latSub holds v alone.
	latBuckets = (64 - latSubBits + 1) * latSub
)

func latBucket(v uint64) int {
	if v < latSub {
		return int(v)
	}
	e := bits.Len64(v) - latSubBits // 1 for v in [latSub, 2*latSub)
	return e*latSub + int(v>>(e-1)-latSub)
}

// latBounds returns the smallest and largest value of bucket i.
func latBounds(i int) (lo, hi uint64) {
	e, m := i/latSub, uint64(i%latSub)
	if e == 0 {
		return m, m
	}
	lo = (latSub + m) << (e - 1)
	return lo, lo + 1<<(e-1) - 1
}

func (l *latencies) record(d time.Duration) {
	if d < 0 {
		d = 0
	}
	if l.n == 0 || d < l.min {
		l.min = d
	}
	l.max = max(l.max, d)
	l.n++
	l.counts[latBucket(uint64(d))]++
}

func (l *latencies) merge(o *latencies) {
	if o.n == 0 {
		return
	}
	if l.n == 0 || o.min < l.min {
		l.min = o.min
	}
	l.max = max(l.max, o.max)
	l.n += o.n
	for i, c := range o.counts {
		l.counts[i] += c
	}
}

// quantile returns the duration below which a fraction q of the recorded
// ones fall: the middle of its bucket, kept within the exact min and max.
func (l *latencies) quantile(q float64) time.Duration {
	if l.n == 0 {
		return 0
	}
	rank := uint64(q*float64(l.n) + 0.5)
	rank = min(max(rank, 1), l.n)
	var seen uint64
	for i, c := range l.counts {
		seen += c
		if seen >= rank {
			lo, hi := latBounds(i)
			d := time.Duration(lo + (hi-lo)/2)
			return min(max(d, l.min), l.max)
		}
	}
	return l.max
}

// limits bound one load run: it starts no operation after ops of them
// (all workers together) or once duration has passed, whichever comes
// first. Both must be positive.
type limits struct {
	ops      int64
	duration time.Duration
}

// loadResult is what a load run measured.
type loadResult struct {
	ops     int64
	elapsed time.Duration
	lat     *latencies
}

// perSecond returns the rate of units, each operation counting per units.
func (r loadResult) perSecond(per int) float64 {
	if r.elapsed <= 0 {
		return 0
	}
	return float64(r.ops) * float64(per) / r.elapsed.Seconds()
}

// op is one operation of a load run, by worker (0 <= worker < workers).
// Each worker calls it from one goroutine of its own, in sequence.
type op func(ctx context.Context, worker int) error

// runLoad runs op from workers goroutines until lim stops it, timing each
// call. The first error stops every worker and is returned. elapsed runs
// from the start until the last worker is done.
func runLoad(ctx context.Context, workers int, lim limits, f op) (loadResult, error) {
	if workers < 1 || lim.ops < 1 || lim.duration <= 0 {
		return loadResult{}, errors.New("bench: a load needs workers, ops and a duration")
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var (
		next  atomic.Int64
		wg    sync.WaitGroup
		hists = make([]latencies, workers)
		start = time.Now()
		end   = start.Add(lim.duration)
	)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			h := &hists[w]
			for ctx.Err() == nil && next.Add(1) <= lim.ops {
				t0 := time.Now()
				if !t0.Before(end) {
					return
				}
				if err := f(ctx, w); err != nil {
					cancel(err)
					return
				}
				h.record(time.Since(t0))
			}
		}()
	}
	wg.Wait()
	r := loadResult{elapsed: time.Since(start), lat: &latencies{}}
	for i := range hists {
		r.lat.merge(&hists[i])
	}
	r.ops = int64(r.lat.n)
	if err := context.Cause(ctx); err != nil {
		return r, err
	}
	return r, nil
}
