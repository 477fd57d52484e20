package hiqlite

import (
	"context"
	"errors"

	"github.com/hiqlite/hiqlite/internal/wire"
)

// SetMaxClientSessions sets how many remote sessions a node serves, and
// returns the previous bound.
func SetMaxClientSessions(n int64) int64 {
	old := maxClientSessions
	maxClientSessions = n
	return old
}

// CommitAndDrop sends COMMIT (if send) on the remote connection dc
// (reached through (*sql.Conn).Raw), whose transaction has written, and
// closes its session without reading the answer, as when its member dies:
// it returns what the client then learns from another member.
func CommitAndDrop(dc any, send bool) error {
	c := dc.(*remoteConn)
	if !c.inTx || c.txSeq == 0 {
		return errors.New("CommitAndDrop: no transaction that wrote")
	}
	req := &wire.ClientRequest{Op: wire.OpCommit}
	if send {
		if err := wire.WriteMessage(c.w, req); err != nil {
			return err
		}
		if err := c.w.Flush(); err != nil {
			return err
		}
	}
	txSeq := c.txSeq
	c.close()
	c.inTx, c.txSeq = false, 0
	return c.lostTx(context.Background(), req, txSeq, errors.New("dropped by the test"))
}

// RemoteSession is the session id of the remote connection dc (reached
// through (*sql.Conn).Raw): a new connection has a new one.
func RemoteSession(dc any) uint64 { return dc.(*remoteConn).session }
