package hiqlite

// SetMaxClientSessions sets how many remote sessions a node serves, and
// returns the previous bound.
func SetMaxClientSessions(n int64) int64 {
	old := maxClientSessions
	maxClientSessions = n
	return old
}
