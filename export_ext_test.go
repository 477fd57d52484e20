package hiqlite

// Waiting reports how many wait for lock name, as n's replica of the
// cache group knows.
func Waiting(n *Node, name string) int {
	_, w := n.c.Cache().Machine().Holder(name)
	return w
}

// CacheLeads reports whether n leads the cache group.
func CacheLeads(n *Node) bool {
	id, _ := n.CacheLeader()
	return id == n.ID()
}

// SnapshotCache snapshots n's replica of the cache group.
func SnapshotCache(n *Node) error { return n.c.SnapshotCache() }

// StmtCacheStats reports, for a driver connection reached through
// (*sql.Conn).Raw, how many idle plain reads and classified writes its
// caches hold, and how many statements are open on its read connection.
func StmtCacheStats(dc any) (reads, writes, open int) {
	c := dc.(*conn)
	for range c.db.Stmts() {
		open++
	}
	return c.reads.len(), c.writes.len(), open
}

// StmtCacheSizes are the bounds of a connection's caches.
const (
	ReadCacheSize  = readCacheSize
	WriteCacheSize = writeCacheSize
)

// Retryable reports whether RetryTx would run a transaction that failed
// with err again: it proves the transaction did not commit.
func Retryable(err error) bool { return retryable(err) }
