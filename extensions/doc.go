// Package extensions holds hiqlite's extensions that are not SQL:
// notifications ([Hub], [Listener]), replicated caches ([Cache]) and
// distributed locks ([Lease]). The root package hiqlite exposes them on its
// Node; package cluster plugs them into Raft and the SQL state machine.
// Nothing here imports either.
//
// # Notifications
//
// The SQL state machine raises a notification when a write calls
// hiqlite_notify(channel, payload) (see package replication) and hands the
// notifications of each committed transaction to the node's [Hub], which
// copies them into the bounded buffer of every [Listener] of their channel.
// Delivery never blocks the state machine: a full buffer drops its oldest
// notification and the next one the reader gets counts it in Missed.
//
// # The cache group
//
// Caches and locks are the state of [Machine], the state machine of a
// second Raft group (package cluster runs it). The group's log carries
// entries of one or more [Command]s ([MarshalEntry]); a [Replicator] puts
// them there: on the group's leader, commands of concurrent callers share
// an entry; a follower forwards its commands to the leader.
//
// Time is the leader's: each entry carries the leader's clock, and the
// machine's clock is the largest entry time it has applied (it never goes
// back). Before applying an entry the machine removes every entry and
// lease whose deadline its clock has reached, and the leader applies an
// [OpTick] once its clock passes the next deadline ([Machine.NextDeadline]).
// Every node thus removes the same entries at the same point of the log,
// and Get on any node never returns what the leader's clock, as far as that
// node has applied it, has expired. The price is a short delay: an entry
// outlives its TTL by the time the tick takes to reach a node (usually
// milliseconds).
//
// # Locks
//
// A lock is held by one waiter (a random id per request) with a lease of
// ttl, and has a FIFO queue of waiters. Releasing or expiring the lease
// grants the lock to the head of the queue, in the same command, so there
// is no race for a freed lock. Fencing tokens are
// max(previous + 1, term << 40), term being the Raft term of the entry
// that grants: terms are persisted by every member and grow with every
// election, so tokens keep growing when the whole group restarts with
// empty memory.
//
// Each node watches its own requests: when the machine grants the lock to
// one of them, or ends its lease, it closes the request's channels. A
// [Lease] also ends on its own clock, ttl after the request that granted or
// renewed it was sent, which is never later than the leader's end of it
// (with clocks that run at the same rate and agree to well within ttl).
// Why the group and not the SQL log: leases are renewed often and matter
// only while their holders run, so they belong with state that lives in
// memory, and they never wait for a SQLite transaction or an fsync of the
// SQL log.
package extensions
