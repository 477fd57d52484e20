// Package hiqlite is a database/sql driver that makes an embedded SQLite
// database highly available over Raft.
//
// Every application process embeds one node: a full local SQLite replica
// (github.com/ncruces/go-sqlite3, pure Go, no cgo), a Raft log
// (github.com/hashicorp/raft on github.com/hashicorp/raft-wal) and, with
// the cluster, gossip membership. Reads run on the local replica without
// any network; every write is a Raft command that each node's deterministic
// SQLite state machine applies to the same result. Applications open it
// with sql.Open("hiqlite", dsn) and keep their database/sql code.
//
// Without _listen, sql.Open starts a one-node Raft cluster in its data
// directory, with no network at all. With _listen, _gossip and _join, nodes
// find each other by gossip, bootstrap a cluster, and forward writes from
// followers to the leader (see the DSN parameters below). Caches, locks and
// notifications are extensions on *Node (see Extensions).
//
// # Quick start
//
//	import (
//		"database/sql"
//
//		_ "github.com/hiqlite/hiqlite" // registers the "hiqlite" driver
//	)
//
//	db, err := sql.Open("hiqlite", "/var/lib/myapp")
//	if err != nil { ... }
//	defer db.Close()
//
//	// No WaitReady needed: the node elects itself within moments of
//	// opening, and a write waits for that (up to ctx's deadline or _timeout).
//	_, err = db.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS users(
//		id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT NOT NULL)`)
//	var id int64
//	err = db.QueryRowContext(ctx,
//		`INSERT INTO users(name) VALUES (?) RETURNING id`, "ada").Scan(&id)
//
// The data directory holds hiqlite.db (the SQLite database), raft/ (the
// Raft log), snapshots/ (Raft snapshots), cache/ (the term and vote of the
// Raft group of caches and locks), node-id and LOCK. One process at
// a time may open it: on Unix systems another process gets [ErrLocked]
// (elsewhere LOCK is not enforced, so take care not to open it twice). Within one process
// the same directory opened twice shares one node, which stops when the
// last *sql.DB using it is closed. Nodes with different directories can run
// side by side in one process. Stopping a node takes moments even with a
// long write or a snapshot in progress: they are interrupted, and the
// interrupted write is applied again when the node next starts (the other
// nodes complete it).
//
// The command hiqlite (cmd/hiqlite) walks through all of this: go run
// ./cmd/hiqlite demo.
//
// # DSN
//
// A DSN is DATA_DIR[?param=value&...]; a leading "file:" is stripped.
// ":memory:" ([MemoryDir]; also "file::memory:" and
// "file:NAME?mode=memory", with SQLite's cache=shared or cache=private,
// which change nothing) opens an in-memory node, for tests: a single node
// (no _listen) that creates no file, whose database, Raft log and
// snapshots are in memory and freed on Close. Each opening is a database
// of its own; the connections of one *sql.DB share it.
// Values are %-escaped as in a URL query. Unknown or repeated parameters
// are errors, and every error names the parameter (never the secret: a value that
// contains the word "secret", as one from a DSN with a mistyped separator does,
// is cut after that word).
// [ParseDSN] parses a DSN into a [Config], [Config.FormatDSN] writes the
// canonical form back, and [NewConnector] with sql.OpenDB takes a Config
// directly.
//
//	param          meaning                                              default
//	-------------  ---------------------------------------------------  ----------------------------------------
//	_node          node ID, unique in the cluster                       generated once, persisted in DATA_DIR
//	_listen        host:port for Raft and RPC (one TCP port)            unset: single node, no listener
//	_advertise     address peers dial                                   _listen
//	_gossip        memberlist bind host:port                            unset
//	_join          comma-separated gossip seeds                         unset
//	_expect        voters to see in gossip before the first bootstrap   1 without _join; with _join, only join
//	_secret        cluster secret, at least 16 bytes                    required once any address is not loopback
//	_secret_file   file holding the cluster secret (instead of _secret)
//	_consistency   default read consistency: local or linearizable      local
//	_voter         false makes a non-voting read replica                true
//	_foreign_keys  true: every connection starts with foreign keys on   false
//	_txlock        what BEGIN and BeginTx take: deferred, immediate,    deferred
//	               or exclusive (immediate: the write slot at BEGIN)
//	_timeout       write / forward timeout, with the wait for a leader  10s
//	_txidle        idle timeout of an open write transaction            5s
//	_busy          how long a writer waits for the write slot           5s
//	_reap          how long a dead node stays a member (at least 1s)    5m
//	_snapshot_entries
//	               log entries that trigger a snapshot (at least 16)    8192
//	_snapshot_bytes
//	               bytes of log entries that trigger one (>= 1MiB)      256MiB
//	_log_segment   size of a Raft log segment file (1MiB to 1GiB);      4MiB
//	               preallocated, so about what an empty node takes
//	_backup        scheduled backups to a directory or s3://bucket/...  unset: none
//	               taken by the leader (Node.Backup on demand)
//	_backup_every  how often (at least 1s)                              24h
//	_backup_keep   how many the destination keeps (at least 1)          7
//	_backup_key_file
//	               age keys, one per line, or a passphrase: encrypts    unset: not encrypted
//	_tls_cert      PEM file: this node's certificate (mutual TLS)       unset: no TLS
//	_tls_key       PEM file: its private key                            unset
//	_tls_ca        PEM file: the CA of every node's certificate         unset
//
// _tls_cert, _tls_key and _tls_ca go together (or set [Config].TLS in Go):
// every connection on the node port then runs mutual TLS 1.3, each side's
// certificate verified against the CA and the dialed node's against the
// address dialed, under the secret's handshake. The files are re-read when
// they change, so certificates rotate without a restart. The leader adds a
// node that gossip discovered only after it has passed the port's
// handshakes, TLS included.
//
// Rules that tie the parameters together are checked at open (_gossip
// requires _listen, a non-loopback address requires a secret, ...).
// Cluster mode (_listen, _gossip, _join, _expect) forms a cluster by gossip
// (a node with _join and no _expect only joins one, it never bootstraps
// alone; a node refused by the cluster, for a wrong secret or a live
// member's _node, says why in its log and in the errors of its writes)
// and forwards writes from followers to the leader, exactly once: a write
// whose reply was lost is sent again and applied once, and a COMMIT
// interrupted by fail-over is resolved on the new leader. The leader
// removes a node that gossip has reported dead for longer than _reap from
// the Raft configuration; the node is added back if it returns. Durations use Go's
// syntax (500ms, 10s); sizes are bytes or end in KiB, MiB or GiB.
//
// A node logs, Raft's and memberlist's lines included, to [Config].Logger
// (a *slog.Logger), or without one as text on stderr at the level the
// environment variable HIQLITE_LOG names: debug, info, warn (the default),
// error or off. Expected events (a peer closing, a node leaving, a
// shutdown) are not errors, and a failure Raft retries against one peer is
// a warning once, then summarised every minute. Importing hiqlite leaves
// the standard log package as it was.
//
// # Remote clients
//
// A process that is not a member opens a running cluster with a DSN of the
// form hiqlite://HOST:PORT[,HOST:PORT...][?param=value&...] (see
// [ClientConfig], [ParseClientDSN], [NewClientConnector]): it opens no node
// and stores nothing locally. Each connection is a session on a member's
// node port, authenticated with the cluster secret (_secret or _secret_file)
// and, under mutual TLS, the client's certificate (_tls_cert, _tls_key,
// _tls_ca); the member runs its statements as one of its own connections,
// so reads (_consistency), writes, transactions and errors behave as on the
// member. A connection starts at a random host and keeps to the one that
// last answered; a statement whose session breaks is sent again elsewhere
// with the same identity, so a write is applied once, and an interrupted
// COMMIT is settled by another member. [ClientOf] gives the extensions of a
// remote client, behind the [Extensions] interface a [Node] satisfies too,
// and [Client.Backup], a member's backup written on the client's side.
//
// # Reads and writes
//
// Each database/sql connection has its own read-only SQLite connection to
// the local database. Every statement is prepared there first (or found in
// the connection's cache of recent texts) and classified: a statement SQLite reports as read-only runs on that local
// connection and never touches Raft or the network. Anything else is a
// write: its text and arguments become a Raft command; once the command is
// committed, the state machine applies it on the node's single writer and
// the caller gets the writer's result (LastInsertId, RowsAffected, the rows
// of RETURNING, or the SQL error). A write that arrives through QueryContext,
// such as INSERT ... RETURNING, is a write too.
//
// A write returns once it is committed and applied on the leader. Every
// later read on the node it was issued on sees it (read your writes): on a
// follower, which applies it a moment later, such a read first waits until
// the node has applied every write it acknowledged. A text of several
// statements given to Exec runs as one write (or locally, when every
// statement is a read); QueryContext takes one statement.
//
// Reads are local by default. A linearizable read first confirms that the
// leader still leads and waits until the node has applied everything the
// leader had committed: set _consistency=linearizable, or per query use
// [WithConsistency] with [Linearizable].
//
// # Transactions
//
// BeginTx with ReadOnly gives a read transaction on the local connection. A
// plain BeginTx (or the statement BEGIN on a *sql.Conn) takes what _txlock
// says, as in the ncruces and mattn drivers; by default it is deferred, as
// in SQLite:
//
//   - its first read opens a read transaction on the local connection, which
//     fixes its snapshot;
//   - its first write takes the leader's exclusive write slot (autocommit
//     writes share that slot; a transaction holds it alone, as SQLite's
//     write lock) and from then on each statement runs at once on the
//     leader's writer, returning its results, and reads see the
//     transaction's own writes;
//   - if something committed after the transaction's snapshot, its first
//     write fails with SQLITE_BUSY_SNAPSHOT, and the transaction should be
//     retried;
//   - COMMIT replicates the statements the transaction ran as one Raft
//     command, which every node replays to the same result; Rollback leaves
//     no trace anywhere.
//
// BEGIN IMMEDIATE and BEGIN EXCLUSIVE (the same here), and BEGIN or BeginTx
// with _txlock=immediate or exclusive, take the leader's write slot at
// once, from any node (a follower forwards the BEGIN): every statement of
// the transaction, reads included, runs on the leader's writer, so its
// reads see the latest committed data and it never fails with
// SQLITE_BUSY_SNAPSHOT. Use it for read-then-write transactions under
// contention; the price is that it holds the slot, which admits no other
// write, from BEGIN. BEGIN DEFERRED stays deferred whatever _txlock says.
// A writer that waits longer than _busy for the slot gets SQLITE_BUSY; a
// write transaction left idle longer than _txidle is rolled back
// ([ErrTxIdle]). SAVEPOINT, RELEASE and ROLLBACK TO work inside a
// transaction.
//
// [RetryTx] runs a function in a transaction and runs it again, after a
// jittered backoff and until its context ends, when the attempt failed with
// an error that proves nothing committed and that another attempt may
// succeed: SQLITE_BUSY, SQLITE_BUSY_SNAPSHOT, leader loss before COMMIT,
// or a COMMIT settled as [ErrNotApplied]. Any other error the function
// returns, [ErrOutcomeUnknown] and [ErrNotVisible] are returned at once.
//
// sql.TxOptions map to this as follows. ReadOnly gives a deferred read
// transaction on the local connection whatever _txlock says; it never takes
// the write slot, and a write in it fails with SQLITE_READONLY. Isolation
// sql.LevelDefault and sql.LevelSerializable are accepted (SQLite
// transactions are serializable); every other level (read uncommitted,
// read committed, write committed, repeatable read, snapshot,
// linearizable) makes BeginTx fail with an error naming the level.
//
// # Migrations
//
// [Migrate] applies numbered SQL files (001_init.sql, 002_users.sql, ...)
// from an fs.FS, usually an embed.FS, once for the whole cluster:
//
//	//go:embed migrations/*.sql
//	var migrations embed.FS
//
//	sub, _ := fs.Sub(migrations, "migrations")
//	if err := hiqlite.Migrate(ctx, db, sub); err != nil { ... }
//
// Each file runs in one write transaction together with the row that
// records it in _hiqlite_migrations (version, name, checksum, applied_at),
// so it is applied entirely or not at all. Every node may call Migrate at
// start-up at the same time: under the write slot each migration's record
// is read again, so none is applied twice. An applied file whose SHA-256
// has changed since is refused ([ErrMigrationChanged]); a .sql file name
// that is not NNN_name.sql is refused too, naming the file, and so is a file
// system with no migration file in its root (an embed.FS passed without
// fs.Sub), naming the directories found there. Only Migrate may write
// _hiqlite_migrations; any other statement that would is refused.
//
// # Determinism
//
// Every node must reach the same database from the same commands, so the
// writer (and only the writer) replaces SQLite's non-deterministic built-ins
// with functions fed by the command: current_timestamp, current_date,
// current_time, date, time, datetime, julianday, unixepoch, strftime and
// timediff read 'now' (and their forms without arguments) as the leader's
// clock when it created the command, to the millisecond; random and
// randomblob draw from a PRNG (ChaCha8) keyed by a seed carried in the
// command, and so do the UUID functions (see below). This covers DEFAULT
// CURRENT_TIMESTAMP and DEFAULT (uuid7()) in table definitions too.
// So a write stores concrete values that are identical on every node:
// 'now' is one instant for the whole command (or transaction), and random()
// differs from row to row but is the same on every node. Reads are not
// replicated: in a SELECT, random() and 'now' are SQLite's own.
//
// # Full-text search, R*Tree and UUIDs
//
// Every connection of every node, the writer included, has SQLite's FTS5
// virtual table (with its auxiliary functions bm25, highlight and snippet),
// R*Tree and geopoly: nothing to load or register. Writes to them go
// through the log like any other, so every node holds the same index;
// searches run on the local reader. The SQLite docs' external-content
// pattern (a content table, and triggers that insert into the FTS5 table,
// with the 'delete' command for old values) works from any node.
//
// An index put out of step with its external content (a 'delete' with
// other values than those indexed) makes FTS5 fail with
// SQLITE_CORRUPT_VTAB ("database disk image is malformed"): the
// statement's error, alike on every node, not a damaged file; the node
// keeps running. INSERT INTO t(t) VALUES ('rebuild') rebuilds the index.
//
// uuid4(), gen_random_uuid() and uuid() return a random (version 4) UUID as
// text, uuid7() and uuid(7) a version 7 one, whose first 48 bits are Unix
// milliseconds. In a write (DEFAULT clauses and triggers included) they
// draw from the command's seed and time, so every node stores the same
// UUID; the version 7 UUIDs of one command or transaction increase in the
// order they are made. In a read they are plain random.
//
// # Your own functions
//
// Config.ConnInit registers the application's SQL functions, collations
// and ncruces ext/ packages on every connection of the node, the writer
// and every read connection, as the ncruces driver's init callback does;
// set it on the Config given to NewConnector (a DSN cannot carry it). Every
// node replays each write, so in a write the writer refuses a function of
// the hook registered without sqlite3.DETERMINISTIC, with an error that
// names it; reads call the real function. The README lists which ext/
// packages are safe in writes.
//
//	CREATE TABLE event(id TEXT PRIMARY KEY DEFAULT (uuid7()), body)
//
// # Extensions
//
// A [Node] also offers what SQL does not: notifications, replicated caches
// and distributed locks. Reach them from a *sql.DB with [NodeOf], or from
// a connection through (*sql.Conn).Raw and [NodeConn]; a remote client's
// *sql.DB reaches them with [ClientOf].
//
// Notifications are ordered with the writes: [Node.Notify] goes through the
// Raft log, and so does the SQL function hiqlite_notify(channel, payload)
// (payload optional, taken as text), which a write or a trigger calls to
// raise a notification if and only if the write commits. Every node
// delivers the notifications of a write after that write is committed in
// its database, in log order, to the [Listener]s of their channel made with
// [Node.Listen]. Nothing is delivered for a write that fails or is rolled
// back, for a statement that fails within a write, or for what a ROLLBACK
// TO undoes. A statement that calls hiqlite_notify is a write even when it
// is a SELECT. A listener that falls behind loses its oldest notifications
// and learns how many from the Missed count of the next one.
//
//	_, err := db.ExecContext(ctx, `CREATE TRIGGER order_placed AFTER INSERT ON orders
//		BEGIN SELECT hiqlite_notify('orders', NEW.id); END`)
//	l, err := node.Listen(ctx, "orders")
//	for {
//		n, err := l.Next(ctx)
//		if err != nil { break }
//		fmt.Println("order", n.Payload, "missed", n.Missed)
//	}
//
// Caches ([Node.Cache]) hold byte values under string keys, with an
// optional TTL per entry, in the memory of every node. Get is local;
// Set, Delete, CompareAndSet and GetAndDelete go through the leader of a
// second Raft group that runs on the same port as the first, with the same
// members, and return once applied on the calling node. Expiry follows the
// leader's clock and is replicated, so all nodes hold the same entries.
// That group keeps its log in memory (only its term and vote are on disk,
// under DATA_DIR/cache): the caches survive the restart of some of the
// nodes, not of the whole cluster.
//
//	sessions := node.Cache("sessions")
//	err := sessions.Set(ctx, token, []byte(userID), 30*time.Minute)
//	v, ok := sessions.Get(token)
//
// Locks ([Node.Lock]) live in the same group. A [Lease] carries a fencing
// token that strictly grows from one holder to the next, even across a
// restart of the whole cluster; it expires ttl after it was granted or
// renewed unless Renewed, so the lock of a crashed holder frees itself;
// its Lost channel closes when it ends. Waiters are served first in, first
// out, and one whose context ends leaves the queue.
//
//	lease, err := node.Lock(ctx, "nightly-report", time.Minute)
//	if err != nil { ... }
//	defer lease.Unlock(ctx)
//	// pass lease.Token() to the storage the lock protects
//
// # Differences from SQLite
//
//   - SAVEPOINT (and RELEASE, ROLLBACK TO) outside a transaction is refused:
//     use BEGIN or BeginTx.
//   - A text that is one whole transaction, "BEGIN; CREATE TABLE ...; INSERT
//     ...; COMMIT;" (also BEGIN IMMEDIATE or EXCLUSIVE, BEGIN TRANSACTION,
//     and END for COMMIT), runs in one Exec as one atomic write, as on
//     SQLite: if a statement fails, nothing of the text is left, on any
//     node. Other transaction control inside a text of several statements is
//     refused: a text that begins a transaction and does not end with COMMIT
//     (SQLite would leave the transaction open), one with ROLLBACK, and one
//     with several transactions; run those statements on their own, or use
//     BeginTx. Nodes of earlier versions refuse a transaction text, so
//     upgrade every node before an app sends one.
//   - Refused, because they would break replication or reach state that is
//     not this session's ([ErrRefused]): CREATE TEMP objects, ATTACH and
//     DETACH, VACUUM INTO, load_extension(), pragmas that would change the
//     journal or the shared writer (journal_mode other than WAL,
//     locking_mode, wal_checkpoint, fullfsync, query_only, writable_schema,
//     ...), and pragmas hiqlite does not know (SQLite would ignore them
//     silently).
//   - Pragmas that ask for what hiqlite already guarantees are accepted, so
//     the usual startup text "PRAGMA journal_mode=WAL; PRAGMA
//     synchronous=normal; PRAGMA temp_store=memory;" works in one Exec:
//     journal_mode=WAL answers what the database is (wal; an in-memory
//     node's database answers its own mode), and synchronous only sets the
//     local reader's value: durability comes from Raft, which has each
//     write fsynced to the log of a majority of the nodes before it is
//     answered. Pragmas that only tune reading (busy_timeout, cache_size,
//     mmap_size, temp_store, ...) apply to the connection's local reader
//     and are not replicated.
//   - Objects whose name starts with _hiqlite (_hiqlite_state,
//     _hiqlite_sessions, _hiqlite_migrations, ...) belong to hiqlite: they
//     may be read, but a statement that would create, alter, drop, write,
//     index or put a trigger on one, in any spelling and from a trigger
//     or view alike, is refused ([ErrRefused], and sqlite3.AUTH).
//   - VACUUM, alone in its Exec, is replicated: every node runs it at the
//     same point of the log, outside the transaction the other writes
//     share, and checkpoints its WAL, so its file shrinks; writes wait
//     meanwhile. As in SQLite it renumbers (in order) the rowids of a table
//     with neither an INTEGER PRIMARY KEY nor an index, alike on every node.
//     Inside a transaction, or in a text of several statements, it fails as
//     in SQLite; VACUUM INTO is refused.
//   - PRAGMA foreign_keys is a per-session setting (off by default, as in
//     SQLite) that the session's writes carry to the writer.
//   - The functions last_insert_rowid(), changes() and total_changes() in a
//     write see the writer that all sessions share, not the session; in a
//     read they see the local read connection, which never writes, and
//     return 0. Use Result.LastInsertId, Result.RowsAffected or RETURNING.
//   - Result.LastInsertId is 0 for a statement that changed no rows;
//     otherwise it is the last rowid inserted within the same autocommit
//     write or transaction (0 if none), where SQLite would report the
//     connection's last insert, whenever it happened.
//   - The SQL status functions hiqlite_node_id(), hiqlite_leader_id(),
//     hiqlite_is_leader(), hiqlite_applied_index() and the table
//     hiqlite_nodes exist on the read connections only: a write that uses
//     them fails with "no such function".
//   - FTS5, R*Tree and geopoly are there on every connection (plain SQLite
//     and the ncruces driver need them registered). The application's own
//     functions, collations and the other ncruces ext/ packages come from
//     Config.ConnInit (see "Your own functions"). Custom FTS5 tokenizers
//     and auxiliary functions cannot be added yet.
//   - SQLITE_CORRUPT_VTAB from FTS5 or R*Tree (an index out of step with
//     its content) is the statement's error and never stops a node; any
//     other SQLITE_CORRUPT is a damaged file.
//   - 'localtime' (and 'utc') modifiers in a write use the time zone of each
//     node that applies it: run all nodes in one time zone. In an index
//     expression or a generated column, 'now' is evaluated where SQLite
//     would report a non-deterministic use.
//   - random(), randomblob() and the UUID functions (uuid4(),
//     gen_random_uuid(), uuid(), uuid7(), which SQLite lacks) in a write are
//     deterministic across nodes: a PRNG keyed by the command's seed, not
//     the operating system's randomness.
//   - One write is at most [MaxCommandBytes] (63 MiB): an autocommit write,
//     or all the writes of a transaction together, is one Raft log entry.
//     A bigger one is refused where it is issued, before anything is sent,
//     with an error matching [ErrTooLarge] that names the limit; in a
//     transaction only that statement fails. SQLite allows 1e9 bytes.
//   - Reads inside a write transaction (after its first write) run on the
//     leader's writer and their rows are buffered in memory before the
//     first one is returned.
//   - An idle write transaction is rolled back after _txidle.
//
// # Errors
//
// SQL errors stay SQLite's: they are *sqlite3.Error values or wrap a
// sqlite3.ErrorCode, so errors.Is(err, sqlite3.CONSTRAINT) or
// errors.Is(err, sqlite3.BUSY) work (github.com/ncruces/go-sqlite3). The
// driver's own errors are matched with errors.Is:
//
//   - [ErrNotLeader]: a request reached a node that is not the leader.
//   - [ErrNoLeader]: the cluster had no leader. A write, a transaction's
//     first write or a linearizable read that finds none waits for one up
//     to its context's deadline or _timeout, whichever comes first, and
//     then fails with an error matching both ErrNoLeader and
//     context.DeadlineExceeded (or the context's own error). So sql.Open
//     then Exec works on a fresh node; [Node.WaitReady] is optional.
//   - [ErrNotInCluster]: a node with _join is not part of a cluster yet;
//     the error says why (no seed answered, a wrong secret?, too few
//     voters for _expect) and is also [ErrNoLeader].
//   - [ErrNodeIDInUse]: the node's _node is the id of a live member; the
//     node gave up joining and the cluster was left alone.
//   - [ErrClosed]: the node was closed.
//   - [ErrLocked]: another process holds the data directory.
//   - [ErrRefused]: the statement cannot be replicated (see above); the
//     error is a [github.com/hiqlite/hiqlite/replication.RefusedError]
//     that says why, or, for a statement that would change an object of
//     hiqlite, a [github.com/hiqlite/hiqlite/replication.InternalObjectError]
//     ("hiqlite: _hiqlite_sessions is internal to hiqlite and cannot be
//     modified"), which errors.Is also matches with sqlite3.AUTH.
//   - [ErrTxAborted]: the write transaction no longer exists on the writer
//     (SQLite rolled it back, or the node lost leadership).
//   - [ErrTxIdle]: the write transaction was rolled back after _txidle.
//   - [ErrStopped]: the node's state machine stopped after a fault of the
//     node itself (I/O error, disk full, a corrupt database found by a read
//     or an apply) that could make it diverge; [Node.Fault] tells which.
//     The node keeps serving reads of the state it reached. A restart
//     rebuilds a corrupt database from a snapshot and the log. Nothing a
//     command does stops it: that is the command's own error, alike on
//     every node.
//   - [ErrNotApplied]: a write or COMMIT whose leader failed was settled
//     as not applied, for good; running it again is safe.
//   - [ErrNotVisible]: a read (or Notify) waited for a write or COMMIT this
//     node acknowledged, and the node had not applied it when the wait
//     ended; the write happened, so do not run it again.
//   - [ErrOutcomeUnknown]: no leader could say in time whether a write was
//     applied; check with a read before running it again.
//   - [ErrTooLarge]: a write (or a transaction's writes together) exceeds
//     [MaxCommandBytes]; it was refused before it was sent, nothing applied.
//   - [ErrLockLost]: a lease ended before Renew or Unlock; [ErrLockHeld]:
//     TryLock found the lock held; [ErrListenerClosed]: the listener was
//     closed (by Close, its context, or the node closing).
//
// A write slot held longer than _busy gives an error that matches
// sqlite3.BUSY; a transaction whose snapshot went stale gives one that
// matches sqlite3.BUSY_SNAPSHOT.
package hiqlite
