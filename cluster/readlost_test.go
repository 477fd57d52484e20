package cluster

import (
	"bufio"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/hiqlite/hiqlite/internal/nodeerr"
	"github.com/hiqlite/hiqlite/internal/nodeport"
	"github.com/hiqlite/hiqlite/internal/wire"
	"github.com/hiqlite/hiqlite/replication"
)

// A "leader" that reads each request and closes the session without a
// reply: a read index asked of it fails as a read (retried until the
// deadline, never "the write may or may not have been applied"), while a
// write sent to it keeps its unknown outcome.
func TestLostReplyOfReadIsNoWrite(t *testing.T) {
	t.Parallel()
	nodes := startTestCluster(t, 1)
	nd := nodes[0]
	fake, err := nodeport.Listen(freeLoopback(t), "", []byte("exactly-once-test-secret"), hclog.NewNullLogger())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { fake.Close() })
	go func() {
		for {
			c, err := fake.AcceptRPC()
			if err != nil {
				return
			}
			wire.ReadMessage(bufio.NewReader(c))
			c.Close()
		}
	}()
	cl := &rpcClient{n: nd, leader: func() string { return fake.Addr().String() }}
	defer cl.close()

	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	_, err = nd.forwardVia(ctx, cl, &wire.ReadIndexRequest{}, true)
	t.Logf("read: %v", err)
	if err == nil || ctx.Err() == nil {
		t.Fatalf("read index from a leader that never answers: %v before the deadline", err)
	}
	// Not "write": on a loaded machine the dial itself can time out, and
	// the network error then reads "write tcp ...: i/o timeout".
	if errors.Is(err, nodeerr.ErrOutcomeUnknown) || strings.Contains(err.Error(), "may or may not") || strings.Contains(err.Error(), "applied") {
		t.Errorf("a read's lost reply speaks of a write: %v", err)
	}

	ctx, cancel = context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	_, err = nd.forwardVia(ctx, cl, &wire.ExecRequest{Origin: replication.Origin{Node: "x", Session: 1, Seq: 1}, Stmts: stmt(`SELECT 1`)}, false)
	t.Logf("write: %v", err)
	if !errors.Is(err, nodeerr.ErrOutcomeUnknown) {
		t.Errorf("a write's lost reply: %v, want ErrOutcomeUnknown", err)
	}
}
