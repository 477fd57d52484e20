package hiqlite

import (
	"github.com/ncruces/go-sqlite3"

	"github.com/hiqlite/hiqlite/replication"
)

// A connection remembers, by query text, what preparing a text on its read
// connection taught it, so that a repeated query neither prepares nor
// finalizes a statement:
//
//   - reads: the idle prepared statements of plain reads (SELECT, VALUES,
//     WITH ... SELECT: a single statement that only sqlite3_stmt_readonly
//     classified). A query takes its statement out of the cache and the
//     release at the end of its execution puts it back, reset and with no
//     bindings, so two live executions never share a statement: a query
//     whose text is out already prepares one of its own. A statement
//     prepared before a schema change is re-prepared by SQLite at its next
//     step (prepare_v3), and rows read the columns after that first step.
//   - writes: the classification of texts whose first statement is a Write,
//     so that the per-row INSERT of a transaction does not prepare on the
//     read connection only to learn what the text alone says.
//
// What is cached depends on the text only, never on the schema: the
// keywords decide every class but Read and Write of SELECT, VALUES and WITH,
// and for those sqlite3_stmt_readonly is true of any SELECT and false of
// any INSERT, UPDATE or DELETE after a WITH whatever the schema (SQLite
// opens a write transaction for them even on a view). The number of
// parameters and whether more statements follow are the text's too. A
// cached class could at worst send to the writer a statement that became
// a read, and the writer runs any statement correctly. A text that did not
// prepare (or was refused) is never cached, and a read whose execution
// failed is closed, not cached, so the next run prepares again and reports
// the error where it did before. A cached write whose table went away is
// reported by the writer (which prepares it), as an unprepared one is.
//
// PRAGMA and EXPLAIN statements are not cached: SQLite evaluates most
// pragmas when it prepares them, and marks them to run once and be prepared
// again, so a cache would gain nothing.
const (
	readCacheSize  = 64  // idle statements per connection
	writeCacheSize = 256 // classified texts per connection
)

// cachedRead is an idle prepared plain read.
type cachedRead struct {
	s        *sqlite3.Stmt
	numInput int
}

// cachedWrite is what preparing a text whose first statement is a Write
// taught: the text is run by the writer.
type cachedWrite struct {
	cls      replication.Class
	multi    bool
	numInput int
	atomic   bool // the text is one whole transaction (BEGIN; ...; COMMIT)
}

// cachedNoTransaction reports whether the caches know query as a text that
// reads without error and is no whole transaction, so that a prepare inside
// a transaction, which refuses whole transactions, need not read it again.
// The caches hold only texts that read without error; a cached read is one
// plain statement (never BEGIN), and a cached write says whether it is one
// whole transaction.
func (c *conn) cachedNoTransaction(query string) bool {
	if c.reads.has(query) {
		return true
	}
	n := c.writes.m[query]
	return n != nil && !n.v.atomic
}

// lru maps texts to at most size values and forgets the least recently used
// first. It is not safe for concurrent use: a conn's caches are used by the
// one goroutine database/sql lets use the conn.
type lru[V any] struct {
	size  int
	m     map[string]*lruNode[V]
	root  lruNode[V] // root.next is the most recently used, root.prev the least
	spare *lruNode[V]
}

type lruNode[V any] struct {
	key        string
	v          V
	prev, next *lruNode[V]
}

func newLRU[V any](size int) *lru[V] {
	l := &lru[V]{size: size, m: make(map[string]*lruNode[V])}
	l.root.prev, l.root.next = &l.root, &l.root
	return l
}

func (l *lru[V]) len() int { return len(l.m) }

// get returns the value of key and marks it used.
func (l *lru[V]) get(key string) (V, bool) {
	n := l.m[key]
	if n == nil {
		var zero V
		return zero, false
	}
	l.unlink(n)
	l.pushFront(n)
	return n.v, true
}

// take removes key and returns its value.
func (l *lru[V]) take(key string) (V, bool) {
	n := l.m[key]
	if n == nil {
		var zero V
		return zero, false
	}
	v := n.v
	l.remove(n)
	return v, true
}

// add adds key, which must be absent, as the most recently used. When the
// cache was full, it returns the value it forgot to make room.
func (l *lru[V]) add(key string, v V) (forgot V, ok bool) {
	if len(l.m) >= l.size {
		last := l.root.prev
		forgot, ok = last.v, true
		l.remove(last)
	}
	n := l.spare
	if n != nil {
		l.spare = nil
	} else {
		n = new(lruNode[V])
	}
	n.key, n.v = key, v
	l.m[key] = n
	l.pushFront(n)
	return forgot, ok
}

// has reports whether key is cached, without marking it used.
func (l *lru[V]) has(key string) bool { return l.m[key] != nil }

// drain removes every value, calling f on each.
func (l *lru[V]) drain(f func(V)) {
	for len(l.m) > 0 {
		n := l.root.next
		v := n.v
		l.remove(n)
		f(v)
	}
}

func (l *lru[V]) remove(n *lruNode[V]) {
	delete(l.m, n.key)
	l.unlink(n)
	var zero V
	n.key, n.v = "", zero
	l.spare = n
}

func (l *lru[V]) unlink(n *lruNode[V]) {
	n.prev.next, n.next.prev = n.next, n.prev
	n.prev, n.next = nil, nil
}

func (l *lru[V]) pushFront(n *lruNode[V]) {
	n.prev, n.next = &l.root, l.root.next
	l.root.next.prev = n
	l.root.next = n
}
