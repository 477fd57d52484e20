package hiqlite

// Waiting reports how many wait for lock name, as n's replica of the
// cache group knows.
func Waiting(n *Node, name string) int {
	_, w := n.c.Cache().Machine().Holder(name)
	return w
}

// CacheLeads reports whether n leads the cache group.
func CacheLeads(n *Node) bool {
	id, _ := n.c.CacheLeader()
	return id == n.ID()
}

// SnapshotCache snapshots n's replica of the cache group.
func SnapshotCache(n *Node) error { return n.c.SnapshotCache() }
