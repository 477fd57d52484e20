package faultsuite

import (
	"bufio"
	"context"
	"encoding/json"
	"net/url"
	"os"
	"sync"
	"time"
)

// Op is one operation of a client, as recorded in the history file (one
// JSON object a line). Call and Return are nanoseconds since the run
// began; an Info op's effect may land at any time after Call.
type Op struct {
	Client   int              `json:"client"`
	Node     string           `json:"node"`
	Workload string           `json:"workload"`
	F        string           `json:"f"`
	Input    map[string]int64 `json:"input,omitempty"`
	Call     int64            `json:"call"`
	Return   int64            `json:"return"`
	Outcome  string           `json:"outcome"`
	Value    *int64           `json:"value,omitempty"`
	Values   []int64          `json:"values,omitempty"`
	Error    string           `json:"error,omitempty"`
}

// history records every op, in memory and in its file.
type history struct {
	began time.Time
	mu    sync.Mutex
	ops   []Op
	f     *os.File
	w     *bufio.Writer
	err   error // the first write error
}

func newHistory(path string, began time.Time) (*history, error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	return &history{began: began, f: f, w: bufio.NewWriter(f)}, nil
}

func (h *history) add(op Op) {
	b, _ := json.Marshal(op)
	h.mu.Lock()
	defer h.mu.Unlock()
	h.ops = append(h.ops, op)
	if h.err == nil {
		_, h.err = h.w.Write(append(b, '\n'))
	}
}

// byWorkload answers a copy of the ops of workload w.
func (h *history) byWorkload(w string) []Op {
	h.mu.Lock()
	defer h.mu.Unlock()
	var ops []Op
	for _, op := range h.ops {
		if op.Workload == w {
			ops = append(ops, op)
		}
	}
	return ops
}

func (h *history) len() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.ops)
}

// end answers the time the history ends, for Info ops' returns.
func (h *history) end() int64 { return time.Since(h.began).Nanoseconds() }

func (h *history) close() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if err := h.w.Flush(); err != nil && h.err == nil {
		h.err = err
	}
	if err := h.f.Close(); err != nil && h.err == nil {
		h.err = err
	}
	return h.err
}

// runner is what workloads see of a run: the cluster, the history and
// a hint of who leads.
type runner struct {
	c      *cluster
	h      *history
	hint   leaderHint
	faults faultLog // the nemesis's, for the checkers (ext_faults_test.go)
}

// leaderHint is the leader as last seen by the nemesis or a poll; -1 none.
type leaderHint struct {
	mu sync.Mutex
	i  int
}

func (l *leaderHint) set(i int) { l.mu.Lock(); l.i = i; l.mu.Unlock() }
func (l *leaderHint) get() int  { l.mu.Lock(); defer l.mu.Unlock(); return l.i }

func (r *runner) nodes() int { return len(r.c.nodes) }

// do runs one op of workload w on node i, records it and answers it.
// consistency, when set, is the read's level.
func (r *runner) do(ctx context.Context, w string, client, i int, f, method, path string, input map[string]int64, consistency string) Op {
	var extra url.Values
	if consistency != "" {
		extra = url.Values{"c": {consistency}}
	}
	return r.doExtra(ctx, w, client, i, f, method, path, input, extra)
}
