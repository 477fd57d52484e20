package faultsuite

import (
	"strings"
	"testing"
	"time"
)

// The extension checkers must find what they look for: made-up histories,
// good and bad. They run in -short mode too.

const s = int64(time.Second)

func TestCacheChecker(t *testing.T) {
	set := func(node string, k, val, call, ret int64, outcome string) Op {
		return Op{Node: node, F: "set", Input: map[string]int64{"k": k, "v": val}, Call: call, Return: ret, Outcome: outcome}
	}
	get := func(node string, k int64, val *int64, call, ret int64) Op {
		return Op{Node: node, F: "get", Input: map[string]int64{"k": k}, Call: call, Return: ret, Outcome: OK, Value: val}
	}
	pauseN1 := []faultWindow{{Kind: faultPause, Node: "n1", Start: 10 * s, End: 20 * s}}
	for _, c := range []struct {
		name string
		ops  []Op
		ws   []faultWindow
		want string // a part of the one anomaly; "" for none
	}{
		{"reads what was written", []Op{set("n1", 1, 5, 0, s, OK), get("n2", 1, v(5), 2*s, 2*s), get("n3", 1, nil, 0, s)}, nil, ""},
		{"reads an indeterminate set", []Op{set("n1", 1, 5, 0, s, Info), get("n2", 1, v(5), 2*s, 2*s)}, nil, ""},
		{"invented value", []Op{set("n1", 1, 5, 0, s, OK), get("n2", 1, v(6), 2*s, 2*s)}, nil, "which no set of that key wrote"},
		{"value of another key", []Op{set("n1", 2, 5, 0, s, OK), get("n2", 1, v(5), 2*s, 2*s)}, nil, "which no set of that key wrote"},
		{"value from the future", []Op{get("n2", 1, v(5), 0, s), set("n1", 1, 5, 2*s, 3*s, OK)}, nil, "which no set of that key wrote"},
		{"value of a failed set", []Op{set("n1", 1, 5, 0, s, Fail), get("n2", 1, v(5), 2*s, 2*s)}, nil, "set that failed"},
		{"fast set during a leader pause", []Op{set("n2", 1, 5, 11*s, 13*s, OK)}, pauseN1, ""},
		{"a set through the paused node may hang", []Op{set("n1", 1, 5, 11*s, 20*s, Info)}, pauseN1, ""},
		{"a set through a healthy node hangs", []Op{set("n2", 1, 5, 11*s, 20*s, Info)}, pauseN1, "beyond 6s"},
		{"a bridge partition excuses every node", []Op{set("n2", 1, 5, 11*s, 20*s, Info)}, []faultWindow{{Kind: faultPartBrdge, Start: 10 * s, End: 12 * s}}, ""},
		{"a stall with no fault", []Op{set("n2", 1, 5, 30*s, 39*s, Info)}, pauseN1, "took 9s"},
	} {
		_, found := checkCache(c.ops, c.ws)
		expectOne(t, c.name, found, c.want)
	}
}

func TestLockChecker(t *testing.T) {
	cycle := func(h, token int64, outcome string, results ...int64) Op {
		return Op{F: "cycle", Input: map[string]int64{"h": h}, Outcome: outcome, Value: v(token), Values: results}
	}
	for _, c := range []struct {
		name   string
		cycles []Op
		acts   []int64
		want   string
	}{
		{"two holders in turn", []Op{cycle(1, 10, OK, 1, 1), cycle(2, 11, OK, 1, 1)},
			[]int64{10, 1, 1, 10, 1, 2, 11, 2, 1, 11, 2, 2}, ""},
		{"a late holder refused by the fence", []Op{cycle(1, 10, OK, 1, 0), cycle(2, 11, OK, 1, 1)},
			[]int64{10, 1, 1, 11, 2, 1, 11, 2, 2}, ""},
		{"an unknown action may land", []Op{cycle(1, 10, OK, 1, -2)},
			[]int64{10, 1, 1, 10, 1, 2}, ""},
		{"a smaller token accepted later", []Op{cycle(1, 10, OK, 1, 1), cycle(2, 11, OK, 1, 1)},
			[]int64{10, 1, 1, 11, 2, 1, 10, 1, 2, 11, 2, 2}, "with the larger token"},
		{"one token, two holders, interleaved", []Op{cycle(1, 10, OK, 1, 1), cycle(2, 10, OK, 1, 1)},
			[]int64{10, 1, 1, 10, 2, 1, 10, 1, 2, 10, 2, 2}, "both granted token 10"},
		{"an accepted action missing", []Op{cycle(1, 10, OK, 1, 1)},
			[]int64{10, 1, 1}, "not in lock_acts"},
		{"a refused action present", []Op{cycle(1, 10, OK, 1, 0)},
			[]int64{10, 1, 1, 10, 1, 2}, "refused or failed"},
		{"an action with another token than granted", []Op{cycle(1, 10, OK, 1, 1)},
			[]int64{10, 1, 1, 12, 1, 2}, "granted token 10 but acted with 12"},
	} {
		_, found := checkLocks(c.cycles, c.acts)
		if c.want == "" {
			expectOne(t, c.name, found, "")
			continue
		}
		if !anyHas(found, c.want) {
			t.Errorf("%s: anomalies %q, want one with %q", c.name, found, c.want)
		}
	}
}

func TestNotifyChecker(t *testing.T) {
	send := func(p, call, ret int64, outcome string) Op {
		return Op{F: "send", Input: map[string]int64{"p": p}, Call: call, Return: ret, Outcome: outcome}
	}
	sends := []Op{send(1, 1*s, 2*s, OK), send(2, 3*s, 4*s, OK), send(3, 5*s, 6*s, Info), send(4, 7*s, 8*s, Fail)}
	whole := func(node string, items ...int64) notifyListener {
		return notifyListener{Node: node, Start: 0, Items: items, Whole: true}
	}
	killN2 := []faultWindow{{Kind: faultKill, Node: "n2", Start: 30 * s, End: 40 * s}}
	for _, c := range []struct {
		name string
		ls   []notifyListener
		ws   []faultWindow
		want string
	}{
		{"all delivered in order", []notifyListener{whole("n1", 1, 5, 0, 2, 6, 0, 3, 7, 0), whole("n2", 1, 5, 0, 2, 6, 0)}, nil, ""},
		{"two in one log entry", []notifyListener{whole("n1", 1, 5, 0, 2, 5, 0)}, nil, ""},
		{"a listener started late", []notifyListener{{Node: "n1", Start: 2500 * int64(time.Millisecond), Items: []int64{2, 6, 0}, Whole: true}}, nil, ""},
		{"a listener that died", []notifyListener{{Node: "n1", Items: []int64{1, 5, 0}}}, nil, ""},
		{"a gap the buffer reports", []notifyListener{whole("n1", 2, 6, 1)}, nil, ""},
		{"a gap while its node was down", []notifyListener{whole("n2", 2, 6, 0)}, []faultWindow{{Kind: faultKill, Node: "n2", Start: 5 * s, End: 9 * s}}, ""},
		{"a gap with no excuse", []notifyListener{whole("n1", 2, 6, 0)}, killN2, "lacks 1 acknowledged"},
		{"delivered twice", []notifyListener{whole("n1", 1, 5, 0, 1, 5, 0, 2, 6, 0)}, nil, "twice"},
		{"out of log order", []notifyListener{whole("n1", 2, 6, 0, 1, 5, 0)}, nil, "out of log order"},
		{"never sent", []notifyListener{whole("n1", 1, 5, 0, 2, 6, 0, 9, 7, 0)}, nil, "never sent"},
		{"a failed send delivered", []notifyListener{whole("n1", 1, 5, 0, 2, 6, 0, 4, 8, 0)}, nil, "proved not applied"},
		{"indexes disagree", []notifyListener{whole("n1", 1, 5, 0, 2, 6, 0), whole("n2", 1, 5, 0, 2, 7, 0)}, nil, "at index 7 on n2"},
		{"orders disagree", []notifyListener{whole("n1", 1, 5, 0, 2, 5, 0), whole("n2", 2, 5, 0, 1, 5, 0)}, nil, "different orders"},
	} {
		_, found := checkNotify(sends, c.ls, c.ws)
		expectOne(t, c.name, found, c.want)
	}
}

// expectOne fails unless found is empty (want "") or holds exactly one
// anomaly containing want.
func expectOne(t *testing.T, name string, found []string, want string) {
	t.Helper()
	switch {
	case want == "" && len(found) > 0:
		t.Errorf("%s: anomalies %q, want none", name, found)
	case want != "" && (len(found) != 1 || !strings.Contains(found[0], want)):
		t.Errorf("%s: anomalies %q, want one with %q", name, found, want)
	}
}

func anyHas(found []string, want string) bool {
	for _, f := range found {
		if strings.Contains(f, want) {
			return true
		}
	}
	return false
}

func TestFaultWindows(t *testing.T) {
	var f faultLog
	f.begin(faultPause, "n1", 10*s)
	f.end(20 * s)
	f.begin(faultPartBrdge, "", 30*s)
	ws := f.all(35 * s)
	if len(ws) != 2 || ws[1].End != 35*s {
		t.Fatalf("windows %+v: want two, the open one ending at 35s", ws)
	}
	for _, c := range []struct {
		node     string
		from, to int64
		want     bool
	}{
		{"n1", 5 * s, 11 * s, true},
		{"n2", 5 * s, 11 * s, false},
		{"n1", 21 * s, 25 * s, false},
		{"n2", 34 * s, 50 * s, true}, // the bridge hits every node
	} {
		if got := hits(ws, c.node, c.from, c.to, 0, 0); got != c.want {
			t.Errorf("hits(%s, %v..%v) = %v, want %v", c.node, c.from, c.to, got, c.want)
		}
	}
	if !hits(ws, "n1", 21*s, 22*s, 0, 2*time.Second) {
		t.Error("a window widened by 2s after must reach 21s from 20s")
	}
}
