// Package netns runs the nodes of a test cluster in Linux network
// namespaces and cuts or restores the links between them, so tests can
// partition a cluster of separate processes.
//
// # What it builds
//
// [New] makes one namespace per node, named PREFIX-PID-SEQ-I (the creating
// process, a per-process counter, the node), and joins them by a full
// mesh of veth pairs: in node i's namespace the link to node j is "mJ".
// Node i's address, [Net.IP], is a /32 on its loopback device, in
// 10.213.B.0/24 where B is a block no other route on the machine uses (so
// two Nets, in one process or two, never collide); each node has a /32
// route to every peer over the matching veth.
//
// Each node also has a veth pair to the root namespace (where the test
// process runs): the root end, named "nn" plus the pid, counter and node
// in base 36, carries a /32 route to the node and the Net's source
// address 10.213.B.254, and the node routes that address back over it.
// These links are never cut: the test process reaches every node, always,
// and nodes cannot reach each other through the root namespace.
//
// # Partitions
//
// [Net.Apply] points each node's route to a cut peer at a private "sink"
// veth whose other end is down, and a restored one back at the mesh link.
// A cut link drops packets silently in both directions, as a real
// partition does: a TCP dial times out, a UDP datagram vanishes, an
// established connection stalls; nothing answers with "unreachable".
//
// # Requirements
//
// Linux, root (CAP_NET_ADMIN and CAP_SYS_ADMIN), the veth driver, and the
// ip command of iproute2 (found on PATH, or in /usr/sbin or /sbin).
// Neither iptables nor nft is used. [Supported] says why not when any of
// this is missing.
//
// # Leftovers
//
// [Net.Close] removes every namespace and link the Net made. A process
// still running inside a namespace keeps that namespace alive, unnamed,
// until it exits, but without its links. After a crash, the next [New]
// with the same prefix removes the namespaces (and root links) left by a
// creator that is no longer running; those of live processes stay.
package netns

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
)

// MaxNodes is the largest n that [New] accepts: a Net's addresses share a /24.
const MaxNodes = 250

const (
	sinkLink = "sink"  // in each node: the cut peers' routes point here
	sinkPeer = "sinkx" // its other end, always down
	hostLink = "host"  // in each node: the end of the link to the root namespace
	srcHost  = 254     // last byte of the root namespace's source address
)

var (
	probeOnce sync.Once
	probeErr  error
	ipPath    string

	netSeq atomic.Uint64 // numbers this process's Nets

	prefixRE = regexp.MustCompile(`^[A-Za-z0-9_.]+(-[A-Za-z0-9_.]+)*$`)
)

// Supported reports nil when this process can build namespaces, otherwise
// an error that says why (not Linux, not root, no ip command, the kernel
// refused a namespace or a veth pair). It probes once and caches the
// answer.
func Supported() error {
	probeOnce.Do(func() { probeErr = probe() })
	return probeErr
}

func probe() error {
	if runtime.GOOS != "linux" {
		return fmt.Errorf("netns: needs Linux, this is %s", runtime.GOOS)
	}
	if uid := os.Geteuid(); uid != 0 {
		return fmt.Errorf("netns: needs root, running as uid %d", uid)
	}
	path, err := exec.LookPath("ip")
	if err != nil {
		for _, p := range []string{"/usr/sbin/ip", "/sbin/ip"} {
			if _, serr := os.Stat(p); serr == nil {
				path, err = p, nil
				break
			}
		}
	}
	if err != nil {
		return fmt.Errorf("netns: no ip command (iproute2): %w", err)
	}
	ipPath = path
	name := fmt.Sprintf("netnsprobe-%d", os.Getpid())
	if _, err := ip(nil, "netns", "add", name); err != nil {
		return err
	}
	_, err = ip(nil, "-n", name, "link", "add", "name", "a", "type", "veth", "peer", "name", "b")
	if _, derr := ip(nil, "netns", "del", name); err == nil {
		err = derr
	}
	return err
}

// ip runs the ip command with args, feeding it stdin when that is not nil
// (for -batch -). Its error names the command and carries ip's stderr.
func ip(stdin []byte, args ...string) (string, error) {
	cmd := exec.Command(ipPath, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	if err := cmd.Run(); err != nil {
		what := ipPath + " " + strings.Join(args, " ")
		if stdin != nil {
			what += " <<EOF\n" + string(stdin) + "EOF"
		}
		return "", fmt.Errorf("netns: %s: %w: %s", what, err, strings.TrimSpace(stderr.String()))
	}
	return stdout.String(), nil
}

// batch runs lines (ip commands without the leading "ip") in one ip
// process, inside namespace ns when that is not empty.
func batch(ns string, lines []string) error {
	if len(lines) == 0 {
		return nil
	}
	args := []string{"-batch", "-"}
	if ns != "" {
		args = append([]string{"-n", ns}, args...)
	}
	_, err := ip([]byte(strings.Join(lines, "\n")+"\n"), args...)
	return err
}

// Net is a set of node namespaces built by [New]. Its methods may be
// called from any goroutine.
type Net struct {
	names []string // node i's namespace
	roots []string // root-namespace end of node i's link to the root
	ips   []string // node i's address
	src   string   // the root namespace's address towards the nodes

	mu     sync.Mutex // serialises Apply, Heal and Close; guards closed
	closed bool
}

// New builds n node namespaces, all links up. prefix names them (letters,
// digits, '_', '.', '-'); namespaces with the same prefix left behind by a
// process that no longer runs are removed first. Close the Net when done.
func New(prefix string, n int) (*Net, error) {
	if err := Supported(); err != nil {
		return nil, err
	}
	if !prefixRE.MatchString(prefix) || len(prefix) > 64 {
		return nil, fmt.Errorf("netns: bad prefix %q: want 1 to 64 letters, digits, '_', '.', '-'", prefix)
	}
	if n < 1 || n > MaxNodes {
		return nil, fmt.Errorf("netns: bad node count %d: want 1 to %d", n, MaxNodes)
	}
	removeStale(prefix)

	pid, seq := os.Getpid(), netSeq.Add(1)
	nt := &Net{}
	for i := range n {
		nt.names = append(nt.names, fmt.Sprintf("%s-%d-%d-%d", prefix, pid, seq, i))
		root := "nn" + strconv.FormatInt(int64(pid), 36) + "." + strconv.FormatUint(seq, 36) + "." + strconv.Itoa(i)
		if len(root) > 15 {
			return nil, fmt.Errorf("netns: link name %q is over 15 bytes (too many Nets in this process?)", root)
		}
		nt.roots = append(nt.roots, root)
	}
	if err := nt.build(); err != nil {
		return nil, errors.Join(err, nt.Close())
	}
	return nt, nil
}

// build makes the namespaces and links, then claims an address block.
func (n *Net) build() error {
	var links []string
	for i, name := range n.names {
		if _, err := ip(nil, "netns", "add", name); err != nil {
			return err
		}
		links = append(links,
			fmt.Sprintf("link add name %s type veth peer name %s netns %s", n.roots[i], hostLink, name),
			fmt.Sprintf("link set dev %s alias %s", n.roots[i], name))
		for j := i + 1; j < len(n.names); j++ {
			links = append(links, fmt.Sprintf("link add name m%d netns %s type veth peer name m%d netns %s",
				j, name, i, n.names[j]))
		}
	}
	if err := batch("", links); err != nil {
		return err
	}
	var err error
	for range 5 { // another process may claim the same block at the same moment
		var block int
		if block, err = freeBlock(); err != nil {
			return err
		}
		if err = n.claim(block); err == nil {
			break
		}
		for _, root := range n.roots { // give back what this attempt took
			_, _ = ip(nil, "route", "flush", "dev", root)
			_, _ = ip(nil, "addr", "flush", "dev", root)
		}
	}
	if err != nil {
		return err
	}
	for i, name := range n.names {
		lines := []string{
			"link set dev lo up",
			"addr add " + n.ips[i] + "/32 dev lo",
			"link set dev " + hostLink + " up",
			"route add " + n.src + "/32 dev " + hostLink + " src " + n.ips[i],
			fmt.Sprintf("link add name %s type veth peer name %s", sinkLink, sinkPeer),
			"link set dev " + sinkLink + " arp off",
			"link set dev " + sinkLink + " up",
		}
		for j := range n.names {
			if j != i {
				lines = append(lines,
					fmt.Sprintf("link set dev m%d up", j),
					fmt.Sprintf("route add %s/32 dev m%d src %s", n.ips[j], j, n.ips[i]))
			}
		}
		if err := batch(name, lines); err != nil {
			return err
		}
	}
	return nil
}

// claim sets up the root namespace's side with the addresses of block: the
// first route to a node fails if another Net holds the block.
func (n *Net) claim(block int) error {
	n.src = fmt.Sprintf("10.213.%d.%d", block, srcHost)
	n.ips = n.ips[:0]
	var lines []string
	for i, root := range n.roots {
		n.ips = append(n.ips, fmt.Sprintf("10.213.%d.%d", block, i+1))
		lines = append(lines,
			"link set dev "+root+" up",
			"addr add "+n.src+"/32 dev "+root,
			"route add "+n.ips[i]+"/32 dev "+root+" src "+n.src)
	}
	return batch("", lines)
}

var blockRE = regexp.MustCompile(`\b10\.213\.(\d+)\.`)

// freeBlock returns a block B such that nothing in the root namespace's
// routing tables mentions 10.213.B.x.
func freeBlock() (int, error) {
	out, err := ip(nil, "-4", "route", "show", "table", "all")
	if err != nil {
		return 0, err
	}
	used := map[int]bool{}
	for _, m := range blockRE.FindAllStringSubmatch(out, -1) {
		b, _ := strconv.Atoi(m[1])
		used[b] = true
	}
	start := (os.Getpid()*7 + int(netSeq.Load())*13) % 250
	for k := range 250 {
		if b := (start + k) % 250; !used[b] {
			return b, nil
		}
	}
	return 0, errors.New("netns: every block of 10.213.0.0/16 is in use")
}

// IP returns node i's IPv4 address, which the test process and the other
// nodes (while their links are up) reach. It panics if i is not a node.
func (n *Net) IP(i int) string {
	if i < 0 || i >= len(n.ips) {
		panic(fmt.Sprintf("netns: node %d out of range [0, %d)", i, len(n.ips)))
	}
	return n.ips[i]
}

// Command returns a command that runs name with args inside node i's
// namespace. ip netns exec replaces itself with the program, so the
// command's pid is the program's: signals (SIGSTOP, SIGKILL) reach it.
// It panics if i is not a node.
func (n *Net) Command(ctx context.Context, i int, name string, args ...string) *exec.Cmd {
	if i < 0 || i >= len(n.names) {
		panic(fmt.Sprintf("netns: node %d out of range [0, %d)", i, len(n.names)))
	}
	return exec.CommandContext(ctx, ipPath, append([]string{"netns", "exec", n.names[i], name}, args...)...)
}

// Apply sets the link between every pair of nodes i < j up when
// connected(i, j) is true and cuts it otherwise. It changes nothing
// between the nodes and the test process.
func (n *Net) Apply(connected func(i, j int) bool) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		return errors.New("netns: Apply on a closed Net")
	}
	count := len(n.names)
	up := make([][]bool, count)
	for i := range up {
		up[i] = make([]bool, count)
	}
	for i := range count {
		for j := i + 1; j < count; j++ {
			up[i][j] = connected(i, j)
			up[j][i] = up[i][j]
		}
	}
	var errs []error
	for i, name := range n.names {
		var lines []string
		for j := range count {
			switch {
			case j == i:
			case up[i][j]:
				lines = append(lines, fmt.Sprintf("route replace %s/32 dev m%d src %s", n.ips[j], j, n.ips[i]))
			default:
				lines = append(lines, fmt.Sprintf("route replace %s/32 dev %s", n.ips[j], sinkLink))
			}
		}
		errs = append(errs, batch(name, lines))
	}
	return errors.Join(errs...)
}

// Heal brings every link between nodes back up.
func (n *Net) Heal() error {
	return n.Apply(func(int, int) bool { return true })
}

// Close removes the namespaces and links of the Net. Calling it again
// does nothing.
func (n *Net) Close() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		return nil
	}
	n.closed = true
	var errs []error
	// The root ends first: a namespace held by a running process outlives
	// its name, and must not keep its link to the root.
	for _, root := range n.roots {
		if exists("/sys/class/net/" + root) {
			_, err := ip(nil, "link", "del", "dev", root)
			errs = append(errs, err)
		}
	}
	for _, name := range n.names {
		if exists("/run/netns/" + name) {
			_, err := ip(nil, "netns", "del", name)
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// removeStale deletes the namespaces named PREFIX-PID-SEQ-I, and root
// links whose alias is such a name, whose PID no longer runs. It is best
// effort: what it cannot remove, a later New sees again.
func removeStale(prefix string) {
	stale := func(name string) bool {
		rest, ok := strings.CutPrefix(name, prefix+"-")
		if !ok {
			return false
		}
		f := strings.Split(rest, "-")
		if len(f) != 3 {
			return false
		}
		for _, s := range f {
			if _, err := strconv.ParseUint(s, 10, 32); err != nil {
				return false
			}
		}
		pid, _ := strconv.Atoi(f[0])
		return pid != os.Getpid() && !exists(fmt.Sprintf("/proc/%d", pid))
	}
	if links, err := os.ReadDir("/sys/class/net"); err == nil {
		for _, l := range links {
			alias, err := os.ReadFile("/sys/class/net/" + l.Name() + "/ifalias")
			if err == nil && stale(strings.TrimSpace(string(alias))) {
				_, _ = ip(nil, "link", "del", "dev", l.Name())
			}
		}
	}
	if names, err := os.ReadDir("/run/netns"); err == nil {
		for _, e := range names {
			if stale(e.Name()) {
				_, _ = ip(nil, "netns", "del", e.Name())
			}
		}
	}
}
