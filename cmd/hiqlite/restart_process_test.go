package main

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/hiqlite/hiqlite/internal/clustertest"
)

// restartRounds is how many times TestLeaderRestarts kills the leader.
const restartRounds = 20

// TestLeaderRestarts kills the leader of three "hiqlite serve" processes
// with SIGKILL under write load, restartRounds times, and starts it again
// each time once a new leader took writes, as an orchestrator restarts a
// crashed container. A returning leader usually had entries in its log that
// never reached the others, which the new leader truncates: raft-wal
// v0.4.0 sealed such a segment without its index block, and the next start
// of that node panicked ("sealed segment has no index block"). Small
// segments (1 MiB) and frequent snapshots make the nodes rotate and compact
// their logs across the rounds. Every restart must come up and be ready,
// and at the end every node holds every acknowledged row and the same
// rows.
func TestLeaderRestarts(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the hiqlite binary and runs a cluster of processes")
	}
	bin := buildBinary(t)
	pc := startProcCluster(t, bin, "&_log_segment=1MiB")
	pc.waitAcks(t, 50)
	var slowest time.Duration
	for round := 1; round <= restartRounds; round++ {
		p := pc.procs[pc.leader(t)]
		p.kill(t)
		pc.waitAcks(t, pc.acked()+20) // a new leader takes writes
		began := time.Now()
		p.start(t, bin)
		clustertest.WaitFor(t, fmt.Sprintf("round %d: %s to be ready again", round, p.name), procWait, func() bool {
			if !p.running() {
				t.Fatalf("round %d: %s exited after its restart: %v\n%s", round, p.name, p.err, p.output())
			}
			code, _, _ := httpGet(t, "http://"+p.http+"/readyz?timeout=1s")
			return code == http.StatusOK
		})
		took := time.Since(began)
		slowest = max(slowest, took)
		pc.logf(t, "round %d: killed and restarted %s, ready after %v; %d acknowledged writes", round, p.name, took.Round(time.Millisecond), pc.acked())
	}
	pc.waitAcks(t, pc.acked()+20)
	pc.finish(t)
	for _, p := range pc.procs {
		if out := p.output(); strings.Contains(out, "panic:") {
			t.Errorf("%s panicked:\n%s", p.name, out)
		}
	}
	pc.logf(t, "%d rounds; slowest restart to ready %v", restartRounds, slowest.Round(time.Millisecond))
}
