package main

import (
	"context"
	"io"
	"net/http"
	"net/url"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hiqlite/hiqlite/internal/backup"
	"github.com/hiqlite/hiqlite/internal/clustertest"
)

// backupMiB is the size of the database TestBackupKillProcesses backs up:
// large enough that the kill falls in the middle of writing the object.
const backupMiB = 64

// TestBackupKillProcesses kills the leader of three "hiqlite serve"
// processes with SIGKILL while it writes a backup (POST /backup) under
// write load: the destination shows no object (at most a temporary that
// List hides), the leader restarts and removes its temporary copy, a new
// backup then succeeds, "hiqlite backup verify" passes on it and
// "hiqlite restore" makes a data dir from it. Every acknowledged write
// survives.
func TestBackupKillProcesses(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the hiqlite binary and runs a cluster of processes")
	}
	bin := buildBinary(t)
	pc := startProcCluster(t, bin, "")
	pc.waitAcks(t, 50)
	pc.mustExec(t, `CREATE TABLE big(id INTEGER PRIMARY KEY, b BLOB NOT NULL)`)
	for range backupMiB / 16 {
		pc.mustExec(t, `WITH RECURSIVE c(x) AS (VALUES(1) UNION ALL SELECT x+1 FROM c WHERE x < 16)
			INSERT INTO big(b) SELECT randomblob(1048576) FROM c`)
	}
	dest := filepath.Join(t.TempDir(), "backups")
	store := backup.NewDirStore(dest)
	leader := pc.procs[pc.leader(t)]

	go http.Post("http://"+leader.http+"/backup?to="+url.QueryEscape(dest), "", nil) //nolint:errcheck // the process dies under it
	clustertest.WaitFor(t, leader.name+" to write into "+dest, procWait, func() bool {
		return len(globAll(t, dest, ".hiqlite-*.tmp-*")) > 0
	})
	leader.kill(t)
	left := globAll(t, dest, ".hiqlite-*.tmp-*")
	pc.logf(t, "killed %s while it wrote a backup; the destination holds %v", leader.name, left)
	if len(left) == 0 {
		t.Fatal("the backup finished before SIGKILL arrived")
	}
	if objs, err := backup.Backups(context.Background(), store); err != nil || len(objs) != 0 {
		t.Fatalf("after the kill the destination lists %v (%v): a partial backup is visible", objs, err)
	}
	pc.waitAcks(t, pc.acked()+50)
	leader.start(t, bin)
	pc.waitReady(t, leader)
	if rest := globAll(t, leader.dir, "backup-*.db*"); len(rest) > 0 {
		t.Errorf("%s still holds %v after its restart", leader.name, rest)
	}

	now := pc.procs[pc.leader(t)]
	resp, err := http.Post("http://"+now.http+"/backup?to="+url.QueryEscape(dest), "", nil)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(string(body), "backup hiqlite-") {
		t.Fatalf("POST /backup: %s %s", resp.Status, body)
	}
	pc.logf(t, "%s", strings.TrimSpace(string(body)))
	out, err := exec.Command(bin, "backup", "verify", dest).CombinedOutput()
	if err != nil || !strings.Contains(string(out), ": ok") {
		t.Fatalf("backup verify: %v\n%s", err, out)
	}
	out, err = exec.Command(bin, "backup", "list", dest).CombinedOutput()
	if err != nil || strings.Count(string(out), ".hqb") != 1 {
		t.Fatalf("backup list: %v\n%s", err, out)
	}
	restored := filepath.Join(t.TempDir(), "restored")
	out, err = exec.Command(bin, "restore", "--from", dest, "--dir", restored, "--node", "r1").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "restored hiqlite-") {
		t.Fatalf("restore: %v\n%s", err, out)
	}
	if got := globAll(t, restored, "hiqlite.db", "node-id", "snapshots/snapshots/*/state.bin"); len(got) != 3 {
		t.Errorf("the restored data dir holds %v", got)
	}
	pc.finish(t)
}
