// Package conformance holds hiqlite's conformance tests, in a Go module of
// their own so that their dependencies (GORM, sqlx, goose, ...) stay out of
// the driver's go.mod. The package has no API: everything is in its tests.
//
// The suites run the same statements over several topologies (a single
// node, the leader of three, a follower of three, a remote client of a
// follower of three) and over plain SQLite
// through github.com/ncruces/go-sqlite3/driver as the reference, and compare
// results and errors; see README.md for the differences found.
//
//	cd conformance && go test ./...
package conformance
