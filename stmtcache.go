package hiqlite

import (
	"github.com/ncruces/go-sqlite3"
)

// A connection keeps, by query text, the idle prepared statements of plain
// reads (SELECT, VALUES, WITH ... SELECT: a single statement that only
// sqlite3_stmt_readonly classified), so that a repeated query neither
// prepares nor finalizes a statement. A query takes its statement out of the
// cache and the release at the end of its execution puts it back, reset and
// with no bindings, so two live executions never share a statement: a query
// whose text is out already prepares one of its own.
//
// A statement prepared before a schema change is re-prepared by SQLite at
// its next step (prepare_v3), and rows read the columns after that first
// step. Its class cannot change: sqlite3_stmt_readonly is true of any
// SELECT whatever the schema, and its parameters are the text's. A text
// that did not prepare (or was refused) is never cached, and a statement
// whose execution failed is closed, not cached, so the next run prepares
// again and reports the error where it did before.
//
// PRAGMA and EXPLAIN statements are not cached: SQLite evaluates most
// pragmas when it prepares them, and marks them to run once and be prepared
// again, so a cache would gain nothing.
const readCacheSize = 64 // idle statements per connection

// cachedRead is an idle prepared plain read.
type cachedRead struct {
	s        *sqlite3.Stmt
	numInput int
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
