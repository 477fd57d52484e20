//go:build faultsuite

package main

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/hiqlite/hiqlite"
	"github.com/hiqlite/hiqlite/internal/faultsuite"
)

// The workload endpoints of the fault-injection suite for the extensions:
// caches, locks (with a fenced write per holder action) and notifications.

const (
	extCache   = "fcache" // the cache of the cache workload
	extLock    = "flock"  // the lock of the lock workload
	extChannel = "fnote"  // the channel of the notify workload
	// extLockTTL bounds how long a crashed holder keeps the lock.
	extLockTTL = 2 * time.Second
)

// extSetup creates the tables of the extension workloads: lock_acts holds
// the holders' accepted (fenced) actions, notes the notifications raised by
// SQL writes (its trigger raises one per row).
const extSetup = `
CREATE TABLE IF NOT EXISTS lock_acts(token INTEGER NOT NULL, holder INTEGER NOT NULL, step INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS notes(p INTEGER NOT NULL);
CREATE TRIGGER IF NOT EXISTS notes_notify AFTER INSERT ON notes BEGIN SELECT hiqlite_notify('` + extChannel + `', NEW.p); END;`

// extHandlers adds the extension endpoints to mux.
func (x *xHandler) extHandlers(mux *http.ServeMux) {
	x.listeners = map[int64]*xListener{}
	mux.HandleFunc("POST /x/cache/set", x.handle(x.cacheSet))
	mux.HandleFunc("POST /x/cache/delete", x.handle(x.cacheDelete))
	mux.HandleFunc("GET /x/cache/get", x.handle(x.cacheGet))
	mux.HandleFunc("POST /x/lock/cycle", x.handle(x.lockCycle))
	mux.HandleFunc("GET /x/lock/read", x.handle(x.lockRead))
	mux.HandleFunc("POST /x/notify/send", x.handle(x.notifySend))
	mux.HandleFunc("POST /x/notify/listen", x.handle(x.notifyListen))
	mux.HandleFunc("GET /x/notify/poll", x.handle(x.notifyPoll))
}

func cacheKey(k int64) string { return "k" + strconv.FormatInt(k, 10) }

// cacheSet stores ?v= under key ?k=, without expiry.
func (x *xHandler) cacheSet(ctx context.Context, q func(string) int64) faultsuite.Reply {
	err := x.node.Cache(extCache).Set(ctx, cacheKey(q("k")), []byte(strconv.FormatInt(q("v"), 10)), 0)
	return write(err)
}

func (x *xHandler) cacheDelete(ctx context.Context, q func(string) int64) faultsuite.Reply {
	_, err := x.node.Cache(extCache).Delete(ctx, cacheKey(q("k")))
	return write(err)
}

// cacheGet answers the local value of key ?k= (nil: no entry).
func (x *xHandler) cacheGet(_ context.Context, q func(string) int64) faultsuite.Reply {
	b, ok := x.node.Cache(extCache).Get(cacheKey(q("k")))
	rep := faultsuite.Reply{Outcome: faultsuite.OK}
	if !ok {
		return rep
	}
	v, err := strconv.ParseInt(string(b), 10, 64)
	if err != nil {
		return faultsuite.Reply{Outcome: faultsuite.OK, Error: fmt.Sprintf("cache value %q is not an integer", b)}
	}
	rep.Value = &v
	return rep
}

// lockCycle is one holder ?h=: it takes the lock, then acts twice, each
// action a fenced write (a row of lock_acts, inserted only if no row
// holds a larger token), then releases it. The reply's Value is the
// token, Values each action's result: 1 accepted, 0 refused by the
// fence, -1 failed, -2 unknown.
func (x *xHandler) lockCycle(ctx context.Context, q func(string) int64) faultsuite.Reply {
	holder := q("h")
	lease, err := x.node.Lock(ctx, extLock, extLockTTL)
	if err != nil {
		return write(err)
	}
	token := int64(lease.Token())
	rep := faultsuite.Reply{Outcome: faultsuite.OK, Value: &token, Values: []int64{}}
	for step := int64(1); step <= 2; step++ {
		res, err := x.db.ExecContext(ctx, `INSERT INTO lock_acts(token, holder, step)
SELECT ?1, ?2, ?3 WHERE ?1 >= coalesce((SELECT max(token) FROM lock_acts), 0)`, token, holder, step)
		var n int64
		if err == nil {
			n, err = res.RowsAffected()
		}
		switch {
		case err == nil:
			rep.Values = append(rep.Values, n)
		case faultsuite.WriteOutcome(err) == faultsuite.Fail:
			rep.Values = append(rep.Values, -1)
		default:
			rep.Values = append(rep.Values, -2)
		}
		if err != nil && rep.Error == "" {
			rep.Error = fmt.Sprintf("action %d: %v", step, err)
		}
	}
	// A failed release leaves the lease to expire; the fence covers it.
	if err := lease.Unlock(ctx); err != nil && !errors.Is(err, hiqlite.ErrLockLost) && rep.Error == "" {
		rep.Error = fmt.Sprintf("unlock: %v", err)
	}
	return rep
}

// lockRead answers lock_acts in commit (rowid) order, as triples of
// token, holder, step.
func (x *xHandler) lockRead(ctx context.Context, _ func(string) int64) faultsuite.Reply {
	rep := faultsuite.Reply{Outcome: faultsuite.OK, Values: []int64{}}
	err := x.query(ctx, `SELECT token, holder, step FROM lock_acts ORDER BY rowid`, func(rows *sql.Rows) error {
		var t, h, s int64
		err := rows.Scan(&t, &h, &s)
		rep.Values = append(rep.Values, t, h, s)
		return err
	})
	if err != nil {
		return read(err)
	}
	return rep
}

// notifySend raises notification ?p= on the channel: by node.Notify when
// ?sql=0, else by a row of notes (its trigger raises it in the write).
func (x *xHandler) notifySend(ctx context.Context, q func(string) int64) faultsuite.Reply {
	p := q("p")
	if q("sql") == 0 {
		return write(x.node.Notify(ctx, extChannel, strconv.FormatInt(p, 10)))
	}
	_, err := x.db.ExecContext(ctx, `INSERT INTO notes(p) VALUES (?)`, p)
	return write(err)
}

// xListener is a listener of this process and what it received.
type xListener struct {
	mu    sync.Mutex
	items []int64 // payload, index, missed of each notification
	err   error   // why it stopped
}

// notifyListen starts a listener of the channel that lives as long as
// the process and reads every notification into memory; Value is its id,
// unique across restarts (the clock's nanoseconds).
func (x *xHandler) notifyListen(ctx context.Context, _ func(string) int64) faultsuite.Reply {
	l, err := x.node.Listen(context.Background(), extChannel, hiqlite.ListenBuffer(4096))
	if err != nil {
		return read(err)
	}
	xl := &xListener{}
	id := time.Now().UnixNano()
	x.lmu.Lock()
	x.listeners[id] = xl
	x.lmu.Unlock()
	go func() {
		for {
			n, err := l.Next(context.Background())
			if err != nil {
				xl.mu.Lock()
				xl.err = err
				xl.mu.Unlock()
				return
			}
			p, perr := strconv.ParseInt(n.Payload, 10, 64)
			if perr != nil {
				p = -1 // not sent by the suite: the checker reports it
			}
			xl.mu.Lock()
			xl.items = append(xl.items, p, int64(n.Index), int64(n.Missed))
			xl.mu.Unlock()
		}
	}()
	return faultsuite.Reply{Outcome: faultsuite.OK, Value: &id}
}

// notifyPoll answers the notifications listener ?id= received from the
// ?from=th on, as triples; it fails for an unknown listener (the process
// restarted) or one that stopped.
func (x *xHandler) notifyPoll(_ context.Context, q func(string) int64) faultsuite.Reply {
	id, from := q("id"), q("from")
	x.lmu.Lock()
	xl := x.listeners[id]
	x.lmu.Unlock()
	if xl == nil {
		return faultsuite.Reply{Outcome: faultsuite.Fail, Error: fmt.Sprintf("unknown listener %d", id)}
	}
	xl.mu.Lock()
	defer xl.mu.Unlock()
	if xl.err != nil {
		return faultsuite.Reply{Outcome: faultsuite.Fail, Error: fmt.Sprintf("listener %d stopped: %v", id, xl.err)}
	}
	if from < 0 || 3*from > int64(len(xl.items)) {
		return faultsuite.Reply{Outcome: faultsuite.Fail, Error: fmt.Sprintf("invalid from %d: the listener holds %d", from, len(xl.items)/3)}
	}
	return faultsuite.Reply{Outcome: faultsuite.OK, Values: append([]int64{}, xl.items[3*from:]...)}
}
