package hiqlite

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"filippo.io/age"

	"github.com/hiqlite/hiqlite/internal/backup"
	"github.com/hiqlite/hiqlite/internal/logging"
)

// backupSchedule takes the scheduled backups of a node (_backup): while
// the node leads, one every `every` after the newest in the store, then
// retention. Its goroutine is started by startBackups and joined by close.
type backupSchedule struct {
	n          *Node
	store      backup.Store
	recipients []age.Recipient
	every      time.Duration
	keep       int
	log        *slog.Logger
	cancel     context.CancelFunc
	wg         sync.WaitGroup
}

// startBackups starts the schedule of cfg's _backup on n, if any. The key
// file and the destination are checked here, so that a mistake fails the
// opening instead of every backup.
func (n *Node) startBackups(cfg *Config) error {
	if cfg.Backup == "" {
		return nil
	}
	o := BackupOptions{KeyFile: cfg.BackupKeyFile}
	recipients, err := o.recipients()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(context.Background())
	store, err := backup.OpenStore(ctx, cfg.Backup)
	if err != nil {
		cancel()
		return err
	}
	log := cfg.Logger
	if log == nil {
		log = logging.Default()
	}
	s := &backupSchedule{n: n, store: store, recipients: recipients, every: cfg.BackupEvery, keep: cfg.BackupKeep, log: log, cancel: cancel}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		s.run(ctx)
	}()
	n.backups = s
	return nil
}

// close stops the schedule, cutting a backup in progress short (it leaves
// no object), and waits for its goroutine.
func (s *backupSchedule) close() {
	if s == nil {
		return
	}
	s.cancel()
	s.wg.Wait()
}

func (s *backupSchedule) run(ctx context.Context) {
	check := min(s.every, time.Minute)
	t := time.NewTicker(check)
	defer t.Stop()
	var due time.Time // zero: not known, ask the store
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if !s.n.IsLeader() {
			due = time.Time{} // a leader again later asks the store anew
			continue
		}
		now := time.Now()
		if due.IsZero() {
			last, err := s.newest(ctx)
			if err != nil {
				s.log.Warn("scheduled backup: list the destination", "destination", s.store.String(), "error", err)
				continue
			}
			due = now.Add(s.every)
			if !last.IsZero() {
				due = last.Add(s.every)
			}
		}
		if now.Before(due) {
			continue
		}
		info, err := s.n.backupTo(ctx, s.store, s.recipients, nil)
		if err != nil {
			if ctx.Err() == nil {
				s.log.Error("scheduled backup failed; trying again later", "destination", s.store.String(), "retry_in", check, "error", err)
			}
			due = now.Add(check)
			continue
		}
		due = now.Add(s.every)
		s.log.Info("scheduled backup taken", "name", info.Name, "destination", s.store.String(), "index", info.Index, "bytes", info.Size, "took", info.Duration)
		removed, err := backup.Prune(ctx, s.store, s.keep, info.Name)
		if err != nil {
			s.log.Warn("scheduled backup: remove old backups", "destination", s.store.String(), "error", err)
		}
		if len(removed) > 0 {
			s.log.Info("removed old backups", "names", removed, "keep", s.keep)
		}
	}
}

// newest returns when the newest backup of the store was taken, zero if
// it holds none.
func (s *backupSchedule) newest(ctx context.Context) (time.Time, error) {
	objs, err := backup.Backups(ctx, s.store)
	if err != nil || len(objs) == 0 {
		return time.Time{}, err
	}
	return backup.TimeOf(objs[len(objs)-1].Name), nil
}
