package faultsuite

import (
	"fmt"
	"slices"
)

// notifyListener is what the notify checker knows of one listener: its
// node, when Listen returned (ns since the run began), what it received
// as triples of payload, index, missed, and whether it lasted to the end
// (Whole), so that it must hold every acknowledged notification sent
// after Start.
type notifyListener struct {
	Node  string
	Start int64
	Items []int64
	Whole bool
}

// checkNotify judges the listeners against the sends and the faults in
// ws; see the notify workload for what it checks.
func checkNotify(sends []Op, ls []notifyListener, ws []faultWindow) (string, []string) {
	var anomalies []string
	add := func(format string, args ...any) {
		if len(anomalies) < 20 {
			anomalies = append(anomalies, "notify: "+fmt.Sprintf(format, args...))
		}
	}
	send := map[int64]Op{}
	n := map[string]int{}
	for _, op := range sends {
		send[op.Input["p"]] = op
		n[op.Outcome]++
	}
	indexOf := map[int64]int64{} // payload -> index, as first seen
	orders := make([][]int64, len(ls))
	delivered, excused, missedTotal := 0, 0, int64(0)
	for li, l := range ls {
		if len(l.Items)%3 != 0 {
			add("the listener on %s answered %d values, not triples", l.Node, len(l.Items))
			continue
		}
		got := map[int64]bool{}
		var missed, last int64
		for j := 0; j < len(l.Items); j += 3 {
			p, idx, m := l.Items[j], l.Items[j+1], l.Items[j+2]
			missed += m
			delivered++
			op, sent := send[p]
			switch {
			case !sent:
				add("the listener on %s got payload %d, never sent", l.Node, p)
			case op.Outcome == Fail:
				add("the listener on %s got payload %d, whose send failed (proved not applied): %s", l.Node, p, op.Error)
			}
			if got[p] {
				add("the listener on %s got payload %d twice", l.Node, p)
			}
			got[p] = true
			if idx < last {
				add("the listener on %s got payload %d at index %d after index %d: out of log order", l.Node, p, idx, last)
			}
			last = idx
			if first, ok := indexOf[p]; ok && first != idx {
				add("payload %d delivered at index %d on %s, at %d elsewhere", p, idx, l.Node, first)
			} else if !ok {
				indexOf[p] = idx
			}
			orders[li] = append(orders[li], p)
		}
		missedTotal += missed
		if !l.Whole {
			continue
		}
		var lost []int64
		for _, op := range sends {
			p := op.Input["p"]
			if op.Outcome != OK || op.Call < l.Start || got[p] {
				continue
			}
			if missed > 0 || hits(ws, l.Node, op.Call, op.Return, notifySlack, notifySlack) {
				excused++
				continue
			}
			lost = append(lost, p)
		}
		if len(lost) > 0 {
			add("the listener on %s (from %.3fs, to the end, none missed) lacks %d acknowledged notifications sent while no fault hit its node: %s",
				l.Node, sec(l.Start), len(lost), firstIDs(lost))
		}
	}
	// Any two listeners get their common payloads in the same order.
	for a := range orders {
		for b := a + 1; b < len(orders); b++ {
			inB := map[int64]bool{}
			for _, p := range orders[b] {
				inB[p] = true
			}
			inA := map[int64]bool{}
			var ca, cb []int64
			for _, p := range orders[a] {
				inA[p] = true
				if inB[p] {
					ca = append(ca, p)
				}
			}
			for _, p := range orders[b] {
				if inA[p] {
					cb = append(cb, p)
				}
			}
			if !slices.Equal(ca, cb) {
				add("the listeners on %s and %s got their common notifications in different orders", ls[a].Node, ls[b].Node)
			}
		}
	}
	return fmt.Sprintf("sends ok/fail/info %d/%d/%d, %d listeners, %d deliveries, %d missed (buffer), %d not delivered where a fault excuses it",
		n[OK], n[Fail], n[Info], len(ls), delivered, missedTotal, excused), anomalies
}
