// Package extensions holds hiqlite's extensions of SPEC §9 that are not
// SQL: notifications (Hub, Listener), replicated caches and distributed
// locks. The root package hiqlite exposes them on its Node; package cluster
// plugs them into Raft and the state machine.
//
// # Notifications
//
// The SQL state machine raises a notification when a write calls
// hiqlite_notify(channel, payload) (see package replication) and hands the
// notifications of each committed transaction to the node's Hub, which
// copies them into the bounded buffer of every Listener of their channel.
// Delivery never blocks the state machine: a full buffer drops its oldest
// notification and the next one the reader gets counts it in Missed.
package extensions
