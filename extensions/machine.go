package extensions

import (
	"bytes"
	"container/heap"
	"io"
	"math"
	"sync"
	"sync/atomic"

	"github.com/hashicorp/raft"

	"github.com/hiqlite/hiqlite/internal/encoding"
)

// tokenTermShift places the Raft term above a counter in fencing tokens:
// a token is max(last token + 1, term << tokenTermShift). Terms are
// persisted by every member and grow with each election, so tokens keep
// growing even after the whole group restarted with empty memory.
const tokenTermShift = 40

// minLeaseTTL is the shortest lease a lock grants.
const minLeaseTTL = int64(1e6) // 1ms

// Machine is the state machine of the cache group: every cache and lock,
// in memory. It implements raft.BatchingFSM; Raft calls Apply, ApplyBatch,
// Snapshot and Restore on its FSM goroutine.
//
// Time. Every command carries the leader's clock; the machine's clock is the
// largest time it has applied, so it never goes back, even when a new
// leader's clock is behind. Before each command it expires the entries and
// leases whose deadline is at or before its clock, so every node holds the
// same entries after the same command. Between commands nothing expires:
// the leader applies an OpTick when the next deadline passes on its clock
// (NextDeadline), and a node's Get never returns what the leader's clock,
// as replicated to that node, has expired.
//
// Lock protocol: mu guards everything but applied; applying takes it for
// writing, local reads for reading. Nothing blocks under mu: the channels
// of watchers are closed, never sent to.
type Machine struct {
	mu       sync.RWMutex
	now      int64  // the group's clock, Unix nanoseconds
	term     uint64 // term of the entry being applied
	token    uint64 // last fencing token granted
	caches   map[string]map[string]entry
	locks    map[string]*lockState
	due      deadlines
	watchers map[uint64]*watch // lock requests of this node, by waiter id
	shutdown error             // set by Shutdown: no more requests
	fault    error             // set by stop: no more entries applied (applied.go)
	faulted  chan struct{}     // closed by stop
	names    map[string]string // interned cache and lock names

	applied  atomic.Uint64 // index of the last entry applied
	changed  chan struct{} // capacity 1: a deadline was added
	logBytes atomic.Int64  // bytes of the entries applied since the last Snapshot
	snapDue  chan struct{} // capacity 1: logBytes passed SnapshotBytes

	waitMu sync.Mutex
	waitCh chan struct{} // closed and replaced whenever applied moves
}

type entry struct {
	value   []byte
	expires int64 // 0: never
}

// lockState is one held lock and its FIFO queue. A lock neither held nor
// waited for has no state.
type lockState struct {
	holder  uint64 // waiter id of the lease; 0 while free
	token   uint64
	ttl     int64
	expires int64
	queue   []waiter
}

type waiter struct {
	id  uint64
	ttl int64
}

func (ls *lockState) queued(id uint64) int {
	for i, w := range ls.queue {
		if w.id == id {
			return i
		}
	}
	return -1
}

// NewMachine returns an empty machine.
func NewMachine() *Machine {
	return &Machine{
		caches:   map[string]map[string]entry{},
		locks:    map[string]*lockState{},
		watchers: map[uint64]*watch{},
		names:    map[string]string{},
		changed:  make(chan struct{}, 1),
		snapDue:  make(chan struct{}, 1),
		waitCh:   make(chan struct{}),
		faulted:  make(chan struct{}),
	}
}

var _ raft.BatchingFSM = (*Machine)(nil)

// Apply implements raft.FSM.
func (m *Machine) Apply(l *raft.Log) any { return m.ApplyBatch([]*raft.Log{l})[0] }

// Applied is what the machine returns for an entry of the log: the result
// of each of its commands, in order, or the error that kept it from
// applying any.
type Applied struct {
	Index   uint64
	Results []Result
	Err     error
}

// ApplyBatch implements raft.BatchingFSM. Each command entry gets an
// *Applied.
func (m *Machine) ApplyBatch(logs []*raft.Log) []any {
	out := make([]any, len(logs))
	var size int64
	m.mu.Lock()
	applied := uint64(0)
	for i, l := range logs {
		if l.Type == raft.LogCommand {
			out[i] = m.applyLocked(l)
			size += int64(len(l.Data))
		}
		if m.fault == nil {
			applied = l.Index
		}
	}
	m.mu.Unlock()
	if n := m.logBytes.Add(size); n >= SnapshotBytes && n-size < SnapshotBytes {
		select {
		case m.snapDue <- struct{}{}:
		default:
		}
	}
	if applied > 0 {
		m.applied.Store(applied)
		m.broadcast()
	}
	return out
}

func (m *Machine) applyLocked(l *raft.Log) *Applied {
	out := &Applied{Index: l.Index}
	if m.fault != nil {
		out.Err = m.fault
		return out
	}
	t, cmds, err := unmarshalEntry(l.Data, m.intern)
	if err != nil {
		out.Err = m.stop(l.Index, err)
		return out
	}
	m.term = l.Term
	m.now = max(m.now, t)
	m.expire()
	out.Results = make([]Result, len(cmds))
	for i := range cmds {
		out.Results[i].Index = l.Index
		m.applyCommand(&cmds[i], &out.Results[i])
	}
	return out
}

// intern returns the name of a cache or lock as a string, without
// allocating one for a name it has seen (mu held for writing).
func (m *Machine) intern(b []byte) string {
	if s, ok := m.names[string(b)]; ok {
		return s
	}
	s := string(b)
	if len(m.names) >= maxInterned {
		clear(m.names)
	}
	m.names[s] = s
	return s
}

// maxInterned bounds the interned names.
const maxInterned = 4096

// applyCommand applies one command of an entry, at the machine's clock.
func (m *Machine) applyCommand(cmd *Command, res *Result) {
	switch cmd.Op {
	case OpSet:
		m.set(cmd.Cache, cmd.Key, cmd.Value, cmd.TTL)
		res.OK = true
	case OpDelete:
		_, res.OK = m.remove(cmd.Cache, cmd.Key)
	case OpCompareAndSet:
		e, ok := m.caches[cmd.Cache][cmd.Key]
		if ok == cmd.HasOld && (!ok || bytes.Equal(e.value, cmd.Old)) {
			m.set(cmd.Cache, cmd.Key, cmd.Value, cmd.TTL)
			res.OK = true
		}
	case OpGetAndDelete:
		var e entry
		if e, res.OK = m.remove(cmd.Cache, cmd.Key); res.OK {
			res.Value = e.value
			if res.Value == nil {
				res.Value = []byte{}
			}
		}
	case OpClear:
		delete(m.caches, cmd.Cache)
		res.OK = true
	case OpTick:
		res.OK = true
	case OpAcquire:
		m.acquire(cmd, res)
	case OpRenew:
		if ls := m.locks[cmd.Cache]; ls != nil && ls.holder == cmd.ID && ls.token == cmd.Token {
			if cmd.TTL > 0 {
				ls.ttl = max(cmd.TTL, minLeaseTTL)
			}
			ls.expires = addTime(m.now, ls.ttl)
			m.addDeadline(deadline{at: ls.expires, lock: true, name: cmd.Cache, token: ls.token})
			res.OK, res.Token = true, ls.token
		}
	case OpRelease:
		m.release(cmd, res)
	}
}

// addTime is now+d, saturating.
func addTime(now, d int64) int64 {
	if d > math.MaxInt64-now {
		return math.MaxInt64
	}
	return now + d
}

func (m *Machine) set(cache, key string, value []byte, ttl int64) {
	c := m.caches[cache]
	if c == nil {
		c = map[string]entry{}
		m.caches[cache] = c
	}
	e := entry{value: value}
	if ttl > 0 {
		e.expires = addTime(m.now, ttl)
		m.addDeadline(deadline{at: e.expires, name: cache, key: key})
	}
	c[key] = e
}

func (m *Machine) remove(cache, key string) (entry, bool) {
	c := m.caches[cache]
	e, ok := c[key]
	if ok {
		delete(c, key)
		if len(c) == 0 {
			delete(m.caches, cache)
		}
	}
	return e, ok
}

// expire removes every entry and lease whose deadline is at or before now.
func (m *Machine) expire() {
	for len(m.due) > 0 && m.due[0].at <= m.now {
		d := heap.Pop(&m.due).(deadline)
		if d.lock {
			if ls := m.locks[d.name]; ls != nil && ls.holder != 0 && ls.token == d.token && ls.expires == d.at {
				m.unhold(d.name, ls)
			}
			continue
		}
		if e, ok := m.caches[d.name][d.key]; ok && e.expires == d.at {
			m.remove(d.name, d.key)
		}
	}
}

func (m *Machine) addDeadline(d deadline) {
	first := len(m.due) == 0 || d.at < m.due[0].at
	heap.Push(&m.due, d)
	if first {
		select {
		case m.changed <- struct{}{}:
		default:
		}
	}
}

func (m *Machine) acquire(cmd *Command, res *Result) {
	ls := m.locks[cmd.Cache]
	if ls == nil {
		ls = &lockState{}
		m.locks[cmd.Cache] = ls
	}
	ttl := max(cmd.TTL, minLeaseTTL)
	if w := m.watchers[cmd.ID]; w != nil {
		w.active = true
	}
	switch {
	case ls.holder == cmd.ID:
		res.OK, res.Token = true, ls.token // a retried request
	case ls.queued(cmd.ID) >= 0:
		res.Queued = true
	case ls.holder == 0:
		m.grant(cmd.Cache, ls, cmd.ID, ttl)
		res.OK, res.Token = true, ls.token
	case cmd.Wait:
		ls.queue = append(ls.queue, waiter{id: cmd.ID, ttl: ttl})
		res.Queued = true
	default:
		// Held, and the caller does not wait.
	}
}

func (m *Machine) release(cmd *Command, res *Result) {
	ls := m.locks[cmd.Cache]
	if ls == nil {
		return
	}
	if ls.holder == cmd.ID && (cmd.Token == 0 || cmd.Token == ls.token) {
		m.unhold(cmd.Cache, ls)
		res.OK = true
		return
	}
	if i := ls.queued(cmd.ID); i >= 0 {
		ls.queue = append(ls.queue[:i], ls.queue[i+1:]...)
		if w := m.watchers[cmd.ID]; w != nil {
			w.lose()
			delete(m.watchers, cmd.ID)
		}
		res.OK = true
	}
}

// grant gives lock name to waiter id.
func (m *Machine) grant(name string, ls *lockState, id uint64, ttl int64) {
	m.token = max(m.token+1, m.term<<tokenTermShift)
	ls.holder, ls.token, ls.ttl = id, m.token, ttl
	ls.expires = addTime(m.now, ttl)
	m.addDeadline(deadline{at: ls.expires, lock: true, name: name, token: ls.token})
	if w := m.watchers[id]; w != nil {
		w.grant(ls.token)
	}
}

// unhold ends the lease on lock name and grants it to the first waiter.
func (m *Machine) unhold(name string, ls *lockState) {
	if w := m.watchers[ls.holder]; w != nil {
		w.lose()
		delete(m.watchers, ls.holder)
	}
	ls.holder, ls.token, ls.expires = 0, 0, 0
	if len(ls.queue) == 0 {
		delete(m.locks, name)
		return
	}
	next := ls.queue[0]
	ls.queue = ls.queue[1:]
	m.grant(name, ls, next.id, next.ttl)
}

// Get returns a copy of the value of cache/key, if the entry exists and has
// not expired by the group's clock.
func (m *Machine) Get(cache, key string) ([]byte, bool) {
	m.mu.RLock()
	e, ok := m.caches[cache][key]
	live := ok && (e.expires == 0 || e.expires > m.now)
	var v []byte
	if live {
		v = append(make([]byte, 0, len(e.value)), e.value...)
	}
	m.mu.RUnlock()
	return v, live
}

// Len returns how many entries cache holds.
func (m *Machine) Len(cache string) int {
	m.mu.RLock()
	defer m.mu.RUnlock()
	n := 0
	for _, e := range m.caches[cache] {
		if e.expires == 0 || e.expires > m.now {
			n++
		}
	}
	return n
}

// Holder reports the fencing token of the lease on lock name, and how many
// wait for it; token 0 means the lock is free.
func (m *Machine) Holder(name string) (token uint64, waiters int) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	if ls := m.locks[name]; ls != nil {
		return ls.token, len(ls.queue)
	}
	return 0, 0
}

// NextDeadline returns the earliest time, on the group's clock, at which
// an entry or a lease expires. The leader applies an OpTick once its clock
// passes it. Changed signals when an earlier deadline appears.
func (m *Machine) NextDeadline() (int64, bool) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	if len(m.due) == 0 {
		return 0, false
	}
	return m.due[0].at, true
}

// Changed is signalled (capacity 1) when a command adds a deadline earlier
// than every other.
func (m *Machine) Changed() <-chan struct{} { return m.changed }

// deadline is when an entry (or, with lock, a lease) expires. Entries
// replaced or renewed leave their old deadline behind; expire skips a
// deadline that no longer matches its entry.
type deadline struct {
	at    int64
	lock  bool
	name  string // cache or lock
	key   string
	token uint64
}

type deadlines []deadline

func (h deadlines) Len() int           { return len(h) }
func (h deadlines) Less(i, j int) bool { return h[i].at < h[j].at }
func (h deadlines) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *deadlines) Push(x any)        { *h = append(*h, x.(deadline)) }
func (h *deadlines) Pop() any {
	old := *h
	d := old[len(old)-1]
	*h = old[:len(old)-1]
	return d
}

// Snapshots. The state is encoded under the lock at Snapshot time (the
// maps are copied into bytes) and written by Persist.

const snapshotVersion = 1

// SnapshotBytes is how many bytes of entries a node applies before it
// should snapshot (SnapshotDue): the group's log is in memory, and a
// snapshot lets Raft drop all but its last entries. Raft's own thresholds
// count entries, whose size varies.
const SnapshotBytes = 64 << 20

// SnapshotDue is signalled (capacity 1) when the entries applied since the
// last snapshot pass SnapshotBytes.
func (m *Machine) SnapshotDue() <-chan struct{} { return m.snapDue }

// Snapshot implements raft.FSM.
// A stopped machine takes none: raft would label it with an index past
// the entry it could not apply, and a follower installing it would skip
// the entries between.
func (m *Machine) Snapshot() (raft.FSMSnapshot, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	if m.fault != nil {
		return nil, m.fault
	}
	m.logBytes.Store(0)
	return &machineSnapshot{data: m.encodeLocked()}, nil
}

func (m *Machine) encodeLocked() []byte {
	b := []byte{snapshotVersion}
	b = encoding.AppendUvarint(b, m.applied.Load())
	b = encoding.AppendVarint(b, m.now)
	b = encoding.AppendUvarint(b, m.token)
	b = encoding.AppendUvarint(b, uint64(len(m.caches)))
	for name, c := range m.caches {
		b = encoding.AppendString(b, name)
		b = encoding.AppendUvarint(b, uint64(len(c)))
		for k, e := range c {
			b = encoding.AppendString(b, k)
			b = encoding.AppendBytes(b, e.value)
			b = encoding.AppendVarint(b, e.expires)
		}
	}
	b = encoding.AppendUvarint(b, uint64(len(m.locks)))
	for name, ls := range m.locks {
		b = encoding.AppendString(b, name)
		b = encoding.AppendUvarint(b, ls.holder)
		b = encoding.AppendUvarint(b, ls.token)
		b = encoding.AppendVarint(b, ls.ttl)
		b = encoding.AppendVarint(b, ls.expires)
		b = encoding.AppendUvarint(b, uint64(len(ls.queue)))
		for _, w := range ls.queue {
			b = encoding.AppendUvarint(b, w.id)
			b = encoding.AppendVarint(b, w.ttl)
		}
	}
	return b
}

// EmptyState is the snapshot of an empty machine.
func EmptyState() []byte { return NewMachine().encodeLocked() }

type machineSnapshot struct{ data []byte }

func (s *machineSnapshot) Persist(sink raft.SnapshotSink) error {
	if _, err := sink.Write(s.data); err != nil {
		sink.Cancel()
		return err
	}
	return sink.Close()
}

func (s *machineSnapshot) Release() {}

// Restore implements raft.FSM: it replaces the state with the snapshot's.
// The local lock requests whose place the new state no longer has are
// told they lost it.
func (m *Machine) Restore(r io.ReadCloser) error {
	defer r.Close()
	data, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	d := encoding.NewDecoder(data, ErrCorruptCommand)
	d.Version("cache snapshot", snapshotVersion)
	applied := d.Uvarint()
	now := d.Varint()
	token := d.Uvarint()
	caches := map[string]map[string]entry{}
	var due deadlines
	for n := d.Count(2); n > 0 && d.Err() == nil; n-- { // name, count
		name := d.String()
		c := map[string]entry{}
		for k := d.Count(3); k > 0 && d.Err() == nil; k-- { // key, value, expiry
			key := d.String()
			e := entry{value: copyBytes(d.Bytes())}
			e.expires = d.Varint()
			c[key] = e
			if e.expires != 0 {
				due = append(due, deadline{at: e.expires, name: name, key: key})
			}
		}
		caches[name] = c
	}
	locks := map[string]*lockState{}
	for n := d.Count(6); n > 0 && d.Err() == nil; n-- { // name, 4 numbers, count
		name := d.String()
		ls := &lockState{holder: d.Uvarint(), token: d.Uvarint(), ttl: d.Varint(), expires: d.Varint()}
		for k := d.Count(2); k > 0 && d.Err() == nil; k-- { // id, ttl
			ls.queue = append(ls.queue, waiter{id: d.Uvarint(), ttl: d.Varint()})
		}
		locks[name] = ls
		if ls.holder != 0 {
			due = append(due, deadline{at: ls.expires, lock: true, name: name, token: ls.token})
		}
	}
	d.Done()
	if d.Err() != nil {
		return d.Err()
	}
	heap.Init(&due)
	m.mu.Lock()
	m.now, m.token, m.caches, m.locks, m.due = now, token, caches, locks, due
	m.reconcileWatchers()
	m.mu.Unlock()
	if applied > m.applied.Load() {
		m.applied.Store(applied)
	}
	m.broadcast()
	select {
	case m.changed <- struct{}{}:
	default:
	}
	return nil
}
