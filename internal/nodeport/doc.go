// Package nodeport is a node's one TCP port: the listener that carries
// Raft, the cache group's Raft and the RPC of followers, told apart by the
// first byte of each connection.
//
// A [Mux] owns the listener. Every connection, accepted or dialed, is
// authenticated before it is handed out: first the TLS 1.3 handshake with
// certificates checked both ways, when the port has TLS ([NewTLS],
// tls.go), then a mutual HMAC challenge-response over the cluster secret
// (auth.go). Handshakes in flight are bounded per source and overall, and a
// stranger that holds its place is displaced rather than let starve a
// member's dial (admit.go). [Mux.Probe] checks that a peer passes those
// handshakes without opening a stream.
//
// The package knows nothing of nodes, Raft state or SQL: package cluster
// builds its transports on [Mux.RaftLayer], [Mux.CacheLayer],
// [Mux.AcceptRPC] and [Mux.DialRPC].
package nodeport
