package cluster

import (
	"log"
	"os"
	"reflect"
	"strings"

	"github.com/hiqlite/hiqlite/internal/discovery"
	"github.com/hiqlite/hiqlite/internal/logging"
)

// Logging: the standard log package left as the application had it, and
// what the node tells its log rules (internal/logging) about shutdowns
// and peers that went away.

// init puts the standard logger back to its defaults. raft-wal imports
// etcd's fileutil, whose logging package (capnslog) takes the standard
// logger over in its own init: flags 0, its own writer. This package
// imports raft-wal, so its init runs after capnslog's and before the
// application's main package can set the logger up.
//
// It resets only what capnslog left (flags 0 and a writer of its own), so
// that an application package whose init set the logger up before this
// one ran keeps its settings.
func init() {
	if log.Flags() != 0 || log.Writer() == os.Stderr {
		return
	}
	if t := reflect.TypeOf(log.Writer()); t == nil || !strings.Contains(t.String(), "capnslog") {
		return
	}
	log.SetFlags(log.LstdFlags)
	log.SetPrefix("")
	log.SetOutput(os.Stderr)
}

// logRules returns the rules of the node's logger, nil when a test gave
// it an hclog.Logger of its own (a nil *logging.Rules records nothing).
func (n *Node) logRules() *logging.Rules {
	if h, ok := n.cfg.logger.(*logging.HCLog); ok {
		return h.Rules()
	}
	return nil
}

// noteGone tells the log rules which peers gossip reports dead or left,
// and which are alive again: failures to reach a gone peer are expected.
func (n *Node) noteGone() {
	r := n.logRules()
	if r == nil || n.disc == nil {
		return
	}
	for _, p := range n.disc.Peers() {
		if p.ID == n.id {
			continue
		}
		if p.Status == discovery.StatusAlive {
			r.Back(p.ID, p.RaftAddr, p.GossipAddr)
		} else {
			r.Gone(p.ID, p.RaftAddr, p.GossipAddr)
		}
	}
}
