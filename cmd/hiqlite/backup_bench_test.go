//go:build linux

package main

import (
	"context"
	"database/sql"
	"flag"
	"os/exec"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/hiqlite/hiqlite"
)

var backupBenchMiB = flag.Int("backup-mib", 64, "BenchmarkBackupRestore: the database size in MiB")

// BenchmarkBackupRestore measures, on a single node's database of
// -backup-mib MiB (half-compressible rows: hex of random bytes), what
// BENCHMARKS.md reports: "hiqlite backup" and "hiqlite restore" as
// processes (wall time and peak RSS, from the kernel's rusage), and the
// rate of concurrent small writes (4 writers) while Node.Backup runs in
// the same process against the rate without a backup. Run it once:
//
//	go test -run '^$' -bench BenchmarkBackupRestore -benchtime=1x ./cmd/hiqlite -backup-mib=1024
func BenchmarkBackupRestore(b *testing.B) {
	bin := buildBinary(b)
	for range b.N {
		benchBackupRestore(b, bin, *backupBenchMiB)
	}
}

func benchBackupRestore(b *testing.B, bin string, mib int) {
	ctx := context.Background()
	tmp := b.TempDir()
	dir := filepath.Join(tmp, "node")
	db, err := sql.Open(hiqlite.DriverName, dir+"?_node=b1")
	if err != nil {
		b.Fatal(err)
	}
	exec1 := func(q string, args ...any) {
		if _, err := db.Exec(q, args...); err != nil {
			b.Fatalf("%.40s: %v", q, err)
		}
	}
	exec1(`CREATE TABLE big(id INTEGER PRIMARY KEY, t TEXT NOT NULL)`)
	exec1(`CREATE TABLE small(id INTEGER PRIMARY KEY, v TEXT)`)
	for range (mib + 15) / 16 {
		// 16 rows of 1 MiB of hex text (512 KiB of random bytes) per entry.
		exec1(`WITH RECURSIVE c(x) AS (VALUES(1) UNION ALL SELECT x+1 FROM c WHERE x < 16)
			INSERT INTO big(t) SELECT hex(randomblob(524288)) FROM c`)
	}
	node, err := hiqlite.NodeOf(ctx, db)
	if err != nil {
		b.Fatal(err)
	}

	// Writes without, then during, a backup.
	rate := func(during func()) float64 {
		var n atomic.Int64
		stop := make(chan struct{})
		var wg sync.WaitGroup
		for range 4 {
			wg.Go(func() {
				for i := 0; i < 10_000_000; i++ {
					select {
					case <-stop:
						return
					default:
					}
					if _, err := db.Exec(`INSERT INTO small(v) VALUES ('a small row of text')`); err == nil {
						n.Add(1)
					}
				}
			})
		}
		start := time.Now()
		during()
		el := time.Since(start)
		close(stop)
		wg.Wait()
		return float64(n.Load()) / el.Seconds()
	}
	var inproc hiqlite.BackupInfo
	withBackup := rate(func() {
		inproc, err = node.Backup(ctx, filepath.Join(tmp, "inproc"), hiqlite.BackupOptions{})
		if err != nil {
			b.Fatal(err)
		}
	})
	without := rate(func() {
		t := time.NewTimer(inproc.Duration)
		<-t.C // the same span, without a backup: a measurement window, not synchronisation
	})
	if err := db.Close(); err != nil {
		b.Fatal(err)
	}

	dest := filepath.Join(tmp, "backups")
	bt, brss := runMeasured(b, bin, "backup", "--dsn", dir, "--to", dest)
	restored := filepath.Join(tmp, "restored")
	rt, rrss := runMeasured(b, bin, "restore", "--from", dest, "--dir", restored)
	size := fileSizeB(b, filepath.Join(dir, "hiqlite.db"))
	b.ReportMetric(float64(size>>20), "db_MiB")
	b.ReportMetric(float64(inproc.Size>>20), "object_MiB")
	b.ReportMetric(bt.Seconds(), "backup_s")
	b.ReportMetric(float64(brss>>20), "backup_maxrss_MiB")
	b.ReportMetric(rt.Seconds(), "restore_s")
	b.ReportMetric(float64(rrss>>20), "restore_maxrss_MiB")
	b.ReportMetric(without, "writes/s_without")
	b.ReportMetric(withBackup, "writes/s_during")
	b.Logf("database %d MiB, object %d MiB: backup process %v (peak RSS %d MiB), restore process %v (peak RSS %d MiB); in-process backup %v; 4 writers: %.0f writes/s without a backup, %.0f during one",
		size>>20, inproc.Size>>20, bt.Round(time.Millisecond), brss>>20, rt.Round(time.Millisecond), rrss>>20, inproc.Duration.Round(time.Millisecond), without, withBackup)
}

// runMeasured runs bin with args and returns its wall time and peak RSS.
func runMeasured(b *testing.B, bin string, args ...string) (time.Duration, int64) {
	b.Helper()
	cmd := exec.Command(bin, args...)
	start := time.Now()
	out, err := cmd.CombinedOutput()
	el := time.Since(start)
	if err != nil {
		b.Fatalf("hiqlite %v: %v\n%s", args, err, out)
	}
	ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage)
	if !ok {
		b.Fatal("no rusage")
	}
	return el, ru.Maxrss << 10 // KiB on Linux
}

func fileSizeB(b *testing.B, path string) int64 {
	b.Helper()
	var st syscall.Stat_t
	if err := syscall.Stat(path, &st); err != nil {
		b.Fatal(err)
	}
	return st.Size
}
