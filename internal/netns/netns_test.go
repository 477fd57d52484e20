package netns

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// The test binary doubles as the program run inside the namespaces: with
// helperEnv set, TestMain runs a helper instead of the tests.
const (
	helperEnv  = "NETNS_TEST_HELPER" // "serve" or "probe"
	addrEnv    = "NETNS_TEST_ADDR"   // serve: the address to listen on
	targetsEnv = "NETNS_TEST_TARGETS"
	echoPort   = "7411"
	// reachTries bounds the attempts at a pair that should connect; each
	// waits at most dialTimeout. A pair that should not connect gets one.
	reachTries  = 20
	dialTimeout = time.Second
)

func TestMain(m *testing.M) {
	switch os.Getenv(helperEnv) {
	case "":
		os.Exit(m.Run())
	case "serve":
		serve(os.Getenv(addrEnv))
	case "probe":
		probeTargets(os.Getenv(targetsEnv))
	default:
		fmt.Fprintf(os.Stderr, "unknown %s %q\n", helperEnv, os.Getenv(helperEnv))
		os.Exit(2)
	}
}

// serve echoes TCP streams and UDP datagrams on addr, says "ready" on
// stdout once both listen, and exits when stdin closes.
func serve(addr string) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	pc, err := net.ListenPacket("udp", addr)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { defer c.Close(); _, _ = io.Copy(c, c) }()
		}
	}()
	go func() {
		buf := make([]byte, 1500)
		for {
			k, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			_, _ = pc.WriteTo(buf[:k], from)
		}
	}()
	fmt.Println("ready")
	_, _ = io.Copy(io.Discard, os.Stdin)
	os.Exit(0)
}

// probeTargets takes "IP=1,IP=0" (1: expected to connect) and prints one
// line "IP TCP UDP SILENT" per target: the first two true when the echo came
// back, the last when the TCP dial failed by timing out.
func probeTargets(spec string) {
	var targets []string
	var want []bool
	for _, t := range strings.Split(spec, ",") {
		ip, w, _ := strings.Cut(t, "=")
		targets, want = append(targets, ip), append(want, w == "1")
	}
	for i, r := range reachAll(targets, want) {
		fmt.Printf("%s %t %t %t\n", targets[i], r.tcp, r.udp, r.silent)
	}
	os.Exit(0)
}

// reached is what one target answered.
type reached struct {
	tcp, udp bool // the echo came back
	silent   bool // the TCP dial failed by timing out, not with an error
}

// reachAll checks every target over TCP and UDP at once. A target
// expected to connect gets up to reachTries attempts; one expected not to,
// a single attempt: its failure is the silence of a cut link, which only
// a timeout can observe.
func reachAll(targets []string, want []bool) []reached {
	got := make([]reached, len(targets))
	var wg sync.WaitGroup
	for i, ip := range targets {
		tries := 1
		if want[i] {
			tries = reachTries
		}
		wg.Go(func() {
			for range tries {
				err := tcpEcho(ip)
				var ne net.Error
				got[i].tcp = err == nil
				got[i].silent = errors.As(err, &ne) && ne.Timeout()
				if err == nil {
					return
				}
			}
		})
		wg.Go(func() {
			for range tries {
				if got[i].udp = udpEcho(ip) == nil; got[i].udp {
					return
				}
			}
		})
	}
	wg.Wait()
	return got
}

func tcpEcho(ip string) error {
	c, err := net.DialTimeout("tcp", net.JoinHostPort(ip, echoPort), dialTimeout)
	if err != nil {
		return err
	}
	defer c.Close()
	return echoOnce(c)
}

func udpEcho(ip string) error {
	c, err := net.Dial("udp", net.JoinHostPort(ip, echoPort))
	if err != nil {
		return err
	}
	defer c.Close()
	return echoOnce(c)
}

func echoOnce(c net.Conn) error {
	_ = c.SetDeadline(time.Now().Add(dialTimeout))
	msg := []byte("ping " + c.LocalAddr().String())
	if _, err := c.Write(msg); err != nil {
		return err
	}
	buf := make([]byte, len(msg))
	if _, err := io.ReadFull(c, buf); err != nil {
		return err
	}
	if string(buf) != string(msg) {
		return fmt.Errorf("echo %q, sent %q", buf, msg)
	}
	return nil
}

func requireSupported(t *testing.T) {
	t.Helper()
	if err := Supported(); err != nil {
		t.Skipf("network namespaces unavailable: %v", err)
	}
}

// newNet builds a Net, starts an echo server in each node, and closes
// both at the end of the test, checking that nothing is left behind.
func newNet(t *testing.T, prefix string, count int) *Net {
	t.Helper()
	n, err := New(prefix, count)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := n.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
		if err := n.Close(); err != nil {
			t.Errorf("second Close: %v", err)
		}
		assertGone(t, n)
	})
	for i := range count {
		startServer(t, n, i)
	}
	return n
}

func startServer(t *testing.T, n *Net, i int) *exec.Cmd {
	t.Helper()
	cmd := n.Command(context.Background(), i, os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), helperEnv+"=serve", addrEnv+"="+net.JoinHostPort(n.IP(i), echoPort))
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = stdin.Close()
		if err := cmd.Wait(); err != nil {
			t.Errorf("echo server in node %d: %v", i, err)
		}
	})
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if line != "ready\n" {
		t.Fatalf("echo server in node %d: got %q, %v; want ready", i, line, err)
	}
	return cmd
}

// assertGone fails unless the namespaces and root links of n are gone,
// as ip lists them.
func assertGone(t *testing.T, n *Net) {
	t.Helper()
	out, err := ip(nil, "netns", "list")
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range n.names {
		if strings.Contains(out, name) {
			t.Errorf("namespace %s left behind: ip netns list:\n%s", name, out)
		}
	}
	out, err = ip(nil, "-o", "link", "show")
	if err != nil {
		t.Fatal(err)
	}
	for _, root := range n.roots {
		if strings.Contains(out, " "+root+"@") || strings.Contains(out, " "+root+":") {
			t.Errorf("link %s left behind: ip link show:\n%s", root, out)
		}
	}
}

// checkMatrix asserts that node i reaches node j, over TCP and UDP, just
// when want(i, j), and that the test process reaches every node.
func checkMatrix(t *testing.T, n *Net, want func(i, j int) bool) {
	t.Helper()
	count := len(n.names)
	got := make([][]reached, count+1) // row count: the test process
	var wg sync.WaitGroup
	var mu sync.Mutex
	var errs []string
	for i := range count {
		wg.Go(func() {
			row, err := probeFrom(n, i, want)
			mu.Lock()
			defer mu.Unlock()
			got[i] = row
			if err != nil {
				errs = append(errs, err.Error())
			}
		})
	}
	wg.Go(func() {
		targets, all := make([]string, count), make([]bool, count)
		for j := range count {
			targets[j], all[j] = n.IP(j), true
		}
		got[count] = reachAll(targets, all)
	})
	wg.Wait()
	if len(errs) > 0 {
		t.Fatal(strings.Join(errs, "\n"))
	}
	var bad []string
	for i := range count + 1 {
		for j := range count {
			expect := i == count || i == j || want(min(i, j), max(i, j))
			from := fmt.Sprintf("node %d", i)
			if i == count {
				from = "test process"
			}
			if i == j {
				continue
			}
			r := got[i][j]
			for _, c := range []struct {
				proto string
				got   bool
			}{{"tcp", r.tcp}, {"udp", r.udp}} {
				if c.got != expect {
					bad = append(bad, fmt.Sprintf("%s -> node %d over %s: reached %t, want %t", from, j, c.proto, c.got, expect))
				}
			}
			if !expect && !r.silent {
				bad = append(bad, fmt.Sprintf("%s -> node %d: the TCP dial failed with an error, want a timeout (a cut link drops silently)", from, j))
			}
		}
	}
	if len(bad) > 0 {
		t.Fatal(strings.Join(bad, "\n"))
	}
}

// probeFrom runs the probe helper in node i against every other node and
// returns what it reached, indexed by node (node i's own entry empty).
func probeFrom(n *Net, i int, want func(i, j int) bool) ([]reached, error) {
	var spec []string
	var order []int
	for j := range n.names {
		if j != i {
			w := "0"
			if want(min(i, j), max(i, j)) {
				w = "1"
			}
			spec, order = append(spec, n.IP(j)+"="+w), append(order, j)
		}
	}
	cmd := n.Command(context.Background(), i, os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), helperEnv+"=probe", targetsEnv+"="+strings.Join(spec, ","))
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("probe in node %d: %w: %s", i, err, out)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) != len(order) {
		return nil, fmt.Errorf("probe in node %d: got %q, want %d lines", i, out, len(order))
	}
	row := make([]reached, len(n.names))
	for k, line := range lines {
		var ip string
		var r reached
		if _, err := fmt.Sscanf(line, "%s %t %t %t", &ip, &r.tcp, &r.udp, &r.silent); err != nil || ip != n.IP(order[k]) {
			return nil, fmt.Errorf("probe in node %d: bad line %q (%v)", i, line, err)
		}
		row[order[k]] = r
	}
	return row, nil
}

func TestPartitions(t *testing.T) {
	requireSupported(t)
	n := newNet(t, "nstest", 3)

	all := func(i, j int) bool { return true }
	side := []int{0, 0, 1} // nodes 0 and 1 the majority, node 2 alone
	split := func(i, j int) bool { return side[i] == side[j] }
	bridge := func(i, j int) bool { return !(i == 0 && j == 2) } // node 1 sees both

	steps := []struct {
		name  string
		apply func() error
		want  func(i, j int) bool
	}{
		{"initial", func() error { return nil }, all},
		{"majority-minority", func() error { return n.Apply(split) }, split},
		{"bridge", func() error { return n.Apply(bridge) }, bridge},
		{"heal", n.Heal, all},
	}
	for _, s := range steps {
		if err := s.apply(); err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		t.Run(s.name, func(t *testing.T) { checkMatrix(t, n, s.want) })
	}
}

func TestTwoNetsAtOnce(t *testing.T) {
	requireSupported(t)
	nets := make([]*Net, 2)
	var wg sync.WaitGroup
	for k := range nets {
		wg.Go(func() {
			n, err := New("nstwo", 2)
			if err != nil {
				t.Error(err)
				return
			}
			nets[k] = n
		})
	}
	wg.Wait()
	for _, n := range nets {
		if n != nil {
			t.Cleanup(func() {
				if err := n.Close(); err != nil {
					t.Errorf("Close: %v", err)
				}
				assertGone(t, n)
			})
		}
	}
	if t.Failed() {
		t.FailNow()
	}
	a, b := nets[0], nets[1]
	ips := []string{a.IP(0), a.IP(1), b.IP(0), b.IP(1)}
	if len(slices.Compact(slices.Sorted(slices.Values(ips)))) != 4 {
		t.Fatalf("addresses collide: %v", ips)
	}
	for k, n := range nets {
		for i := range 2 {
			startServer(t, n, i)
		}
		if k == 0 {
			if err := n.Apply(func(i, j int) bool { return false }); err != nil {
				t.Fatal(err)
			}
		}
	}
	checkMatrix(t, a, func(i, j int) bool { return false })
	checkMatrix(t, b, func(i, j int) bool { return true })
}

func TestStaleRemoved(t *testing.T) {
	requireSupported(t)
	dead := exec.Command(os.Args[0], "-test.run=^$") // exits at once, and is reaped
	_ = dead.Run()
	staleName := fmt.Sprintf("nsstale-%d-1-0", dead.Process.Pid)
	liveName := fmt.Sprintf("nsstale-%d-1-0", os.Getppid()) // our parent runs
	staleLink := "nnstaletest"
	for _, name := range []string{staleName, liveName} {
		if _, err := ip(nil, "netns", "add", name); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			if exists("/run/netns/" + name) {
				_, _ = ip(nil, "netns", "del", name)
			}
		})
	}
	if err := batch("", []string{
		"link add name " + staleLink + " type veth peer name " + staleLink + "p netns " + liveName,
		"link set dev " + staleLink + " alias " + staleName,
	}); err != nil {
		t.Fatal(err)
	}
	n, err := New("nsstale", 1)
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
	if exists("/run/netns/" + staleName) {
		t.Errorf("namespace %s of dead pid %d not removed", staleName, dead.Process.Pid)
	}
	if exists("/sys/class/net/" + staleLink) {
		t.Errorf("link %s with alias %s not removed", staleLink, staleName)
	}
	if !exists("/run/netns/" + liveName) {
		t.Errorf("namespace %s of running pid %d removed", liveName, os.Getppid())
	}
}

func TestBadInput(t *testing.T) {
	requireSupported(t)
	for _, tc := range []struct {
		prefix string
		n      int
		want   string
	}{
		{"", 3, `""`},
		{"a b", 3, `"a b"`},
		{"ok", 0, "0"},
		{"ok", MaxNodes + 1, fmt.Sprint(MaxNodes + 1)},
	} {
		n, err := New(tc.prefix, tc.n)
		if err == nil {
			_ = n.Close()
			t.Errorf("New(%q, %d) succeeded", tc.prefix, tc.n)
		} else if !strings.Contains(err.Error(), tc.want) {
			t.Errorf("New(%q, %d): %v, want it to name %s", tc.prefix, tc.n, err, tc.want)
		}
	}
}

// A server still running in a closed Net's namespace keeps the namespace
// alive, but loses its name and its link to the test process. And the
// pid of a Command is the program's, not ip's.
func TestCloseWhileRunning(t *testing.T) {
	requireSupported(t)
	n, err := New("nsrun", 1)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = n.Close() })
	cmd := startServer(t, n, 0)
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	if got, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", cmd.Process.Pid)); err != nil || got != exe {
		t.Errorf("Command's pid %d runs %q (%v), want the program %q", cmd.Process.Pid, got, err, exe)
	}
	if err := tcpEcho(n.IP(0)); err != nil {
		t.Fatalf("before Close: %v", err)
	}
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
	assertGone(t, n)
	if err := tcpEcho(n.IP(0)); err == nil {
		t.Errorf("after Close the test process still reaches %s", n.IP(0))
	}
}
