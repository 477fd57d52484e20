package faultsuite

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
	"github.com/ncruces/go-sqlite3"

	"github.com/hiqlite/hiqlite"
)

// The checkers must find what they look for: these feed them made-up
// histories and node answers. They run in -short mode too.

func TestWriteOutcome(t *testing.T) {
	for _, c := range []struct {
		err  error
		want string
	}{
		{nil, OK},
		{fmt.Errorf("commit: %w", hiqlite.ErrNotVisible), OK},
		{hiqlite.ErrOutcomeUnknown, Info},
		{context.DeadlineExceeded, Info},
		{errors.New("connection reset by peer"), Info},
		{fmt.Errorf("forward: %w", hiqlite.ErrNotApplied), Fail},
		{hiqlite.ErrNotLeader, Fail},
		{sqlite3.CONSTRAINT, Fail},
		{sqlite3.INTERRUPT, Info},
	} {
		if got := WriteOutcome(c.err); got != c.want {
			t.Errorf("WriteOutcome(%v) = %s, want %s", c.err, got, c.want)
		}
	}
}

func v(n int64) *int64 { return &n }

func TestRegisterChecker(t *testing.T) {
	write := func(client int, k, val, call, ret int64, outcome string) Op {
		return Op{Client: client, F: "write", Input: map[string]int64{"k": k, "v": val}, Call: call, Return: ret, Outcome: outcome}
	}
	read := func(client int, k int64, val *int64, call, ret int64) Op {
		return Op{Client: client, F: "read", Input: map[string]int64{"k": k}, Call: call, Return: ret, Outcome: OK, Value: val}
	}
	for _, c := range []struct {
		name string
		ops  []Op
		want porcupine.CheckResult
	}{
		{"read after write sees it", []Op{write(0, 1, 5, 0, 10, OK), read(1, 1, v(5), 20, 30)}, porcupine.Ok},
		{"stale read after an acknowledged write", []Op{write(0, 1, 5, 0, 10, OK), read(1, 1, nil, 20, 30)}, porcupine.Illegal},
		{"a failed write seen", []Op{write(0, 1, 5, 0, 10, Fail), read(1, 1, v(5), 20, 30)}, porcupine.Illegal},
		{"an indeterminate write seen late", []Op{write(0, 1, 5, 0, 10, Info), read(1, 1, nil, 20, 30), read(1, 1, v(5), 40, 50)}, porcupine.Ok},
		{"a value going back", []Op{write(0, 1, 5, 0, 10, OK), write(0, 1, 6, 20, 30, OK), read(1, 1, v(6), 40, 50), read(1, 1, v(5), 60, 70)}, porcupine.Illegal},
		{"keys apart", []Op{write(0, 1, 5, 0, 10, OK), read(1, 2, nil, 20, 30)}, porcupine.Ok},
	} {
		if got := porcupine.CheckOperationsTimeout(registerModel, porcupineOps(c.ops, 1000), 10*time.Second); got != c.want {
			t.Errorf("%s: porcupine says %s, want %s", c.name, got, c.want)
		}
	}
}

// fakeRunner is a runner whose one node is an HTTP server answering the
// final reads with replies.
func fakeRunner(t *testing.T, replies map[string]Reply) *runner {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/readyz" {
			w.Write([]byte("ready"))
			return
		}
		rep, ok := replies[r.URL.Path]
		if !ok {
			http.NotFound(w, r)
			return
		}
		json.NewEncoder(w).Encode(rep)
	}))
	t.Cleanup(srv.Close)
	h, err := newHistory(t.TempDir()+"/history.jsonl", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.close() })
	nd := &node{name: "n1", http: strings.TrimPrefix(srv.URL, "http://")}
	return &runner{c: &cluster{nodes: []*node{nd}, http: srv.Client()}, h: h}
}

func TestUniquesChecker(t *testing.T) {
	ins := func(id int64, outcome string) Op {
		return Op{F: "insert", Input: map[string]int64{"id": id}, Outcome: outcome}
	}
	ops := []Op{ins(1, OK), ins(2, OK), ins(3, Fail), ins(4, Info), ins(5, OK)}
	for _, c := range []struct {
		name   string
		stored []int64
		want   string // in the anomaly; "" for none
	}{
		{"all there", []int64{1, 2, 4, 5}, ""},
		{"indeterminate one absent", []int64{1, 2, 5}, ""},
		{"acknowledged one lost", []int64{1, 5}, "missing [2]"},
		{"one twice", []int64{1, 2, 2, 5}, "duplicated [2]"},
		{"a failed one present", []int64{1, 2, 3, 5}, "never sent [3]"},
		{"one never sent", []int64{1, 2, 5, 9}, "never sent [9]"},
	} {
		r := fakeRunner(t, map[string]Reply{"/x/uniq/read": {Outcome: OK, Values: c.stored}})
		_, anomalies := (&uniques{}).Check(r, ops)
		got := strings.Join(anomalies, "; ")
		if c.want == "" && got != "" || !strings.Contains(got, c.want) {
			t.Errorf("%s: anomalies %q, want one saying %q", c.name, got, c.want)
		}
	}
}

func TestIncrementsChecker(t *testing.T) {
	ops := []Op{{F: "incr", Outcome: OK}, {F: "incr", Outcome: OK}, {F: "incr", Outcome: Info}, {F: "incr", Outcome: Fail}}
	for counter, ok := range map[int64]bool{1: false, 2: true, 3: true, 4: false} {
		r := fakeRunner(t, map[string]Reply{"/x/incr/read": {Outcome: OK, Value: v(counter)}})
		summary, anomalies := (&increments{}).Check(r, ops)
		if (len(anomalies) == 0) != ok {
			t.Errorf("counter %d after 2 acknowledged and 1 indeterminate increments: anomalies %q, want ok=%v", counter, anomalies, ok)
		}
		if summary != "increments ok/fail/info 2/1/1" {
			t.Errorf("summary %q", summary)
		}
	}
}

func TestBankChecker(t *testing.T) {
	b := &bank{accounts: 3, balance: 10}
	read := func(vals ...int64) Op { return Op{F: "read", Outcome: OK, Values: vals} }
	for _, c := range []struct {
		name string
		ops  []Op
		ok   bool
	}{
		{"totals kept", []Op{read(10, 10, 10), read(0, 15, 15)}, true},
		{"money created", []Op{read(10, 10, 10), read(10, 11, 10)}, false},
		{"an account missing", []Op{read(15, 15)}, false},
		{"a negative balance", []Op{read(-1, 16, 15)}, false},
		{"a failed read ignored", []Op{{F: "read", Outcome: Fail, Values: []int64{1}}}, true},
	} {
		r := fakeRunner(t, map[string]Reply{"/x/bank/read": {Outcome: OK, Values: []int64{10, 10, 10}}})
		_, anomalies := b.Check(r, c.ops)
		if (len(anomalies) == 0) != c.ok {
			t.Errorf("%s: anomalies %q, want ok=%v", c.name, anomalies, c.ok)
		}
	}
}
