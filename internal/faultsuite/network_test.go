package faultsuite

import (
	"context"
	"fmt"
	"os/exec"
	"testing"

	"github.com/hiqlite/hiqlite/internal/netns"
	"github.com/hiqlite/hiqlite/internal/testaddr"
)

// network places the nodes: their addresses, how their processes start,
// and, where it can, which node reaches which. A *netns.Net (one Linux
// network namespace a node) fits it through nsNetwork; loopback is the
// fallback without namespaces.
type network interface {
	// addrs answers node i's Raft, gossip and HTTP addresses, stable
	// across restarts; the test process reaches each.
	addrs(t *testing.T, i int) (listen, gossip, http string)
	// command runs name inside node i's network.
	command(i int, name string, args ...string) *exec.Cmd
	// apply cuts every link between nodes i and j for which connected
	// is false; heal restores them all. Without partitions (loopback),
	// apply returns errNoPartitions.
	apply(connected func(i, j int) bool) error
	heal() error
	close() error
	// partitions is "" when apply works, else why not.
	partitions() string
}

var errNoPartitions = fmt.Errorf("this network cannot partition nodes")

// newNetwork answers namespaces for n nodes when they work, else loopback
// with the reason partitions are skipped.
func newNetwork(prefix string, n int) network {
	if err := netns.Supported(); err != nil {
		return loopback{why: err.Error()}
	}
	ns, err := netns.New(prefix, n)
	if err != nil {
		return loopback{why: err.Error()}
	}
	return nsNetwork{ns}
}

// loopback runs every node in the test's own network namespace on
// 127.0.0.1: nothing can be partitioned.
type loopback struct{ why string }

func (loopback) addrs(t *testing.T, i int) (string, string, string) {
	return testaddr.Loopback(t), testaddr.Loopback(t), testaddr.Loopback(t)
}

func (loopback) command(_ int, name string, args ...string) *exec.Cmd {
	return exec.Command(name, args...)
}

func (loopback) apply(func(i, j int) bool) error { return errNoPartitions }
func (loopback) heal() error                     { return nil }
func (loopback) close() error                    { return nil }
func (l loopback) partitions() string            { return l.why }

// nsNetwork gives each node its own namespace and address, with the same
// ports on each.
type nsNetwork struct{ ns *netns.Net }

func (n nsNetwork) addrs(_ *testing.T, i int) (string, string, string) {
	ip := n.ns.IP(i)
	return ip + ":7101", ip + ":7102", ip + ":7103"
}

func (n nsNetwork) command(i int, name string, args ...string) *exec.Cmd {
	return n.ns.Command(context.Background(), i, name, args...)
}

func (n nsNetwork) apply(connected func(i, j int) bool) error { return n.ns.Apply(connected) }
func (n nsNetwork) heal() error                               { return n.ns.Heal() }
func (n nsNetwork) close() error                              { return n.ns.Close() }
func (nsNetwork) partitions() string                          { return "" }
