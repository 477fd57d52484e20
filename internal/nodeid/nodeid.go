// Package nodeid is the one definition of a valid node id, shared by the
// DSN's _node and by package cluster, which checks the id it is given.
//
// A node id is 1 to [MaxLen] characters of [A-Za-z0-9._-]: it appears in
// Raft's configuration, gossip metadata, log lines and the node-id file of
// the data directory, and never needs quoting or escaping in any of them.
package nodeid

import "fmt"

// MaxLen is the most bytes a node id may have.
const MaxLen = 64

// Valid reports whether id is a valid node id.
func Valid(id string) bool {
	if len(id) == 0 || len(id) > MaxLen {
		return false
	}
	for i := 0; i < len(id); i++ {
		if b := id[i]; !isAlnum(b) && b != '.' && b != '_' && b != '-' {
			return false
		}
	}
	return true
}

// Check returns nil for a valid node id, else an error that says what a
// node id must be. It does not quote id: the caller names the field and
// the value.
func Check(id string) error {
	if Valid(id) {
		return nil
	}
	return fmt.Errorf("want 1 to %d characters of [A-Za-z0-9._-]", MaxLen)
}

func isAlnum(b byte) bool {
	return 'a' <= b && b <= 'z' || 'A' <= b && b <= 'Z' || '0' <= b && b <= '9'
}
