package main

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/hiqlite/hiqlite"
)

// leaveTimeout bounds POST /leave: the hand-over of leadership and the
// gossip announcement.
const leaveTimeout = time.Minute

// withLeave answers POST /leave, which decommissions the node: it leaves
// the cluster (Node.Leave) and then serve stops, through stop. Like POST
// /snapshot it needs the token, or no token and a loopback listener. Other
// requests go to next.
func withLeave(next http.Handler, node *hiqlite.Node, acc httpAccess, stop func()) http.Handler {
	leave := acc.guard(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if acc.tokenSum == nil && !acc.snapshotOpen {
			http.Error(w, "POST /leave is refused: serve's --http is not on a loopback address and has no token; start serve with --http-token-file FILE", http.StatusForbidden)
			return
		}
		ctx, cancel := context.WithTimeout(r.Context(), leaveTimeout)
		defer cancel()
		if err := node.Leave(ctx); err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		writeText(w, fmt.Sprintf("node %s left the cluster (the leader removes it once it hears of the leave); serve stops", node.ID()))
		stop()
	}))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/leave" && r.Method == http.MethodPost {
			leave.ServeHTTP(w, r)
			return
		}
		next.ServeHTTP(w, r)
	})
}
