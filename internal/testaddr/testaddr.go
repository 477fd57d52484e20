// Package testaddr hands tests loopback addresses to bind. It imports
// nothing of hiqlite, so tests of every package (the conformance module's
// too) can use it.
package testaddr

import (
	"fmt"
	"math/rand/v2"
	"net"
	"sync"
	"testing"
)

var (
	mu    sync.Mutex
	given = map[string]bool{} // handed out in this run
)

// Loopback returns a 127.0.0.1 address whose TCP and UDP ports (gossip
// binds both) were free a moment ago. The port is below Linux's ephemeral
// range (32768 and up), where outgoing connections take their local ports,
// and never the same twice in a run, so a port freed here does not come
// back to another node of the same test.
func Loopback(t testing.TB) string {
	t.Helper()
	mu.Lock()
	defer mu.Unlock()
	for range 1000 {
		addr := fmt.Sprintf("127.0.0.1:%d", 20000+rand.IntN(12000))
		if given[addr] {
			continue
		}
		l, err := net.Listen("tcp", addr)
		if err != nil {
			continue
		}
		u, err := net.ListenPacket("udp", addr)
		l.Close()
		if err != nil {
			continue // the UDP port is taken: try another
		}
		u.Close()
		given[addr] = true
		return addr
	}
	t.Fatal("no free loopback port with both TCP and UDP")
	return ""
}
