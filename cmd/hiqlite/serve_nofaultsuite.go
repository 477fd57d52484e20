//go:build !faultsuite

package main

import (
	"database/sql"
	"net/http"

	"github.com/hiqlite/hiqlite"
)

// withFaultsuite returns h: the workload endpoints of the fault-injection
// suite exist only in a binary built with -tags faultsuite.
func withFaultsuite(h http.Handler, _ *sql.DB, _ *hiqlite.Node) http.Handler { return h }
