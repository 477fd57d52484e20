// Package cluster runs one hiqlite node: a Raft member (hashicorp/raft over
// raft-wal) whose state machine is the SQLite database of package
// replication, plus the cache group of package extensions. The root package
// opens a [Node] with [Open] from a [Config] and drives it; nothing else
// imports this package.
//
// What the files hold:
//
//   - config.go: [Config], [DefaultConfig] and [Config.Validate].
//   - node.go: the [Node] type, its errors and accessors.
//   - lifecycle.go: Open (storage, Raft's configuration, the network in
//     cluster mode, the node's goroutines), log-size snapshots, Close.
//   - storage.go, persist.go, stable.go, private.go, lock_*.go, corrupt.go:
//     the data directory, the stores raft is given and what happens when
//     they fail, owner-only files, the directory lock, damaged databases.
//   - leadership.go: leader changes, readiness, the read index.
//   - write.go, writetx.go, gate.go: autocommit writes and their
//     exactly-once resolution, interactive write transactions, and the
//     writer slot they share.
//   - forward.go: the RPC over which followers forward writes,
//     transactions and read-index requests (codec in internal/wire);
//     fwdbatch.go sends a follower's concurrent writes in one request.
//   - batcher.go: the leader's writes that wait together, in one log
//     entry.
//   - membership.go, identity.go: making the Raft configuration follow
//     gossip (bootstrap, join, reap), and refusing a node gossip refused.
//   - cache.go, notify.go: the cache group and notifications.
//
// The node's port (mux, authentication, TLS) is package internal/nodeport;
// its gossip is package internal/discovery.
package cluster
