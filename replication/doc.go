// Package replication is the deterministic SQLite state machine that every
// node of a hiqlite cluster applies its Raft log to, and the commands in that
// log.
//
// A [Command] (command.go) carries the statements of one autocommit write or
// one whole transaction, with the session and sequence number ([Origin]) that
// make it apply exactly once (sessions.go). [StateMachine] (statemachine.go)
// is raft's FSM: it applies committed entries in batches (apply.go), each
// command in a savepoint of one SQLite transaction, replaces the sources of
// nondeterminism (the clock, randomness) with the time and seed of the command
// (determinism.go), takes and restores snapshots (snapshot.go), and stops
// on a fault that could make nodes diverge (corrupt.go). An interactive
// write transaction runs its statements on the leader's writer
// (StateMachine.BeginTx, ExecTx) and commits as one command
// (CommitCommand); exec.go holds what a statement returns.
//
// Statements are classified before they run (classify.go, lexer.go): reads
// run on local read connections, writes go through Raft, and statements that
// cannot be replicated, or touch hiqlite's own _hiqlite objects
// (internal.go), are refused. Every connection gets the same SQL features
// (features.go); notifications raised by hiqlite_notify are delivered after
// their write commits (notify.go). An in-memory state machine keeps its
// database in memory (memory.go).
package replication
