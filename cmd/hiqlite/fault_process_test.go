package main

import (
	"net/http"
	"os/exec"
	"strings"
	"testing"

	"github.com/hiqlite/hiqlite/internal/clustertest"
)

// TestDiskFullProcess fills a follower's disk for real: its process runs
// with a file size limit (ulimit -f, 8 MiB), and the cluster then writes
// rows that make its database grow past it. The follower's apply must stop
// (fail-stop, never skip an entry) and say so on /healthz, /status and
// "hiqlite status", while the other two keep acknowledging writes. Started
// again without the limit, as after an operator freed space, it replays
// what it had not applied and ends identical to the others, with every
// acknowledged write.
func TestDiskFullProcess(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the hiqlite binary and runs a cluster of processes")
	}
	if _, err := exec.LookPath("sh"); err != nil {
		t.Skip("needs sh for ulimit")
	}
	bin := buildBinary(t)
	pc := startProcCluster(t, bin, "&_log_segment=1MiB")
	pc.waitAcks(t, 50)
	victim := pc.procs[(pc.leader(t)+1)%len(pc.procs)]
	victim.kill(t)
	// 16384 blocks of 512 bytes. Go ignores SIGXFSZ, so a write past the
	// limit fails with EFBIG instead of killing the process.
	victim.wrap = []string{"sh", "-c", `ulimit -f 16384 && exec "$0" "$@"`}
	victim.start(t, bin)
	pc.waitReady(t, victim)
	pc.logf(t, "%s runs with an 8 MiB file size limit", victim.name)

	pc.mustExec(t, `CREATE TABLE big(id INTEGER PRIMARY KEY, b BLOB NOT NULL)`)
	var fault string
	for i := 0; i < 32 && fault == ""; i++ {
		pc.mustExec(t, `INSERT INTO big(b) VALUES (randomblob(1048576))`)
		fault = getStatus(t, "http://"+victim.http).Fault
	}
	clustertest.WaitFor(t, victim.name+" to report a fault on /status", procWait, func() bool {
		fault = getStatus(t, "http://"+victim.http).Fault
		return fault != ""
	})
	pc.logf(t, "%s: fault %q", victim.name, fault)
	if !strings.Contains(fault, "stopped") {
		t.Errorf("fault %q does not say the state machine stopped", fault)
	}
	if code, _, body := httpGet(t, "http://"+victim.http+"/healthz"); code != http.StatusServiceUnavailable || !strings.Contains(body, "fault") {
		t.Errorf("/healthz of the stopped node: %d %q, want 503 naming the fault", code, body)
	}
	out, err := exec.Command(bin, "status", "--http", victim.http).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "fault:") {
		t.Errorf("hiqlite status --http %s: %v\n%s", victim.http, err, out)
	}
	// The other two go on acknowledging writes.
	pc.waitAcks(t, pc.acked()+100)
	stopped := getStatus(t, "http://"+victim.http).AppliedIndex

	victim.kill(t)
	victim.wrap = nil
	victim.start(t, bin)
	pc.waitReady(t, victim)
	if now := getStatus(t, "http://"+victim.http); now.Fault != "" || now.AppliedIndex <= stopped {
		t.Errorf("%s after the restart: fault %q, applied index %d (stopped at %d)", victim.name, now.Fault, now.AppliedIndex, stopped)
	}
	pc.logf(t, "%s restarted without the limit; it had stopped at index %d", victim.name, stopped)
	pc.waitAcks(t, pc.acked()+50)
	pc.finish(t)
}
