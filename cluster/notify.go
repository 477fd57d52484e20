package cluster

import (
	"context"
	"errors"
	"fmt"

	"github.com/hiqlite/hiqlite/extensions"
	"github.com/hiqlite/hiqlite/replication"
)

// notifySQL is how Notify reaches the state machine: a write like any
// other, so that its notification takes its place in the log among the
// SQL writes.
const notifySQL = `SELECT ` + replication.NotifyFunc + `(?1, ?2)`

// Notify raises a notification on channel through the Raft log: every
// node delivers it to its listeners, in log order with the notifications
// raised by SQL writes. It returns once the notification is delivered on
// this node. A follower forwards it to the leader; like any write without a
// session, a forwarded one whose reply is lost fails with
// ErrOutcomeUnknown (it may have been delivered).
func (n *Node) Notify(ctx context.Context, channel, payload string) error {
	if channel == "" {
		return errors.New("hiqlite: notify: the channel must not be empty")
	}
	st := replication.Statement{SQL: notifySQL, Args: []replication.Arg{{Ordinal: 1, Value: channel}, {Ordinal: 2, Value: payload}}}
	resp, err := n.Exec(ctx, n.cfg.Timeout, replication.Origin{}, 0, []replication.Statement{st})
	if err != nil {
		return err
	}
	if len(resp.Results) == 1 && resp.Results[0].Err != nil {
		return fmt.Errorf("hiqlite: notify: %w", resp.Results[0].Err)
	}
	// A forwarded write returns before this node applies it (ownwrites.go);
	// Notify promises its own node's delivery.
	return n.waitVisible(ctx, resp.Index)
}

// Notifications is the node's notification hub: Listen on it.
func (n *Node) Notifications() *extensions.Hub { return n.hub }

// deliverNotifications is the state machine's notification sink.
func (n *Node) deliverNotifications(ns []replication.Notification) {
	out := make([]extensions.Notification, len(ns))
	for i, x := range ns {
		out[i] = extensions.Notification{Channel: x.Channel, Payload: x.Payload, Index: x.Index}
	}
	n.hub.Deliver(out)
}
