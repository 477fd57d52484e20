package extensions

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Replicator is how caches and locks reach the cache Raft group. Package
// cluster implements it for a node.
type Replicator interface {
	// Replicate applies cmd through the cache group: the leader stamps it
	// with its clock and puts it in the group's log, a follower forwards
	// it to the leader. It returns the command's result once this node has
	// applied it. idempotent says that applying cmd twice does no harm, so
	// it may be sent again after a reply was lost. Safe for concurrent use.
	Replicate(ctx context.Context, cmd Command, idempotent bool) (Result, error)
	// Machine is this node's replica of the group's state.
	Machine() *Machine
}

// Cache is a named cache of byte values replicated to every node. Get is
// local and never touches the network; writes go through the cache group's
// leader and return once applied on this node (read your writes).
//
// Expiry is decided by the cache group leader's clock and replicated: an
// entry with a TTL disappears from every node at the same point of the
// group's log, once the leader's clock has passed its deadline. Until this
// node has applied that point, its Get still returns the entry.
//
// Values are copied in and out: the caller owns the slices it passes and
// gets.
type Cache struct {
	r    Replicator
	name string
}

// NewCache returns the cache called name.
func NewCache(r Replicator, name string) *Cache { return &Cache{r: r, name: name} }

// Name is the cache's name.
func (c *Cache) Name() string { return c.name }

// Get returns the value of key in the local replica.
func (c *Cache) Get(key string) ([]byte, bool) { return c.r.Machine().Get(c.name, key) }

// Len returns how many entries the local replica holds.
func (c *Cache) Len() int { return c.r.Machine().Len(c.name) }

// Set stores value under key; with ttl > 0 the entry expires ttl after the
// leader applied the Set.
//
// A Set is sent again, to the new leader, when the leader it went to
// stops answering and the others elect another, so it does not fail for
// a leader change. Applying it twice leaves the same value; the only
// trace of a second copy is that, when another node's Set of the same key
// was applied between the two, this value comes back (as if this Set,
// still in flight, had been applied last), and a ttl starts again.
func (c *Cache) Set(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	if err := checkTTL(ttl); err != nil {
		return err
	}
	_, err := c.do(ctx, Command{Op: OpSet, Key: key, Value: value, TTL: int64(ttl)}, true)
	return err
}

// Delete removes key and reports whether it existed.
func (c *Cache) Delete(ctx context.Context, key string) (bool, error) {
	res, err := c.do(ctx, Command{Op: OpDelete, Key: key}, false)
	return res.OK, err
}

// CompareAndSet stores value under key (with ttl, as Set) only if the
// entry holds old, or, when old is nil, only if there is no entry (an
// empty non-nil old matches an empty value). It reports whether it stored.
func (c *Cache) CompareAndSet(ctx context.Context, key string, old, value []byte, ttl time.Duration) (bool, error) {
	if err := checkTTL(ttl); err != nil {
		return false, err
	}
	res, err := c.do(ctx, Command{Op: OpCompareAndSet, Key: key, Old: old, HasOld: old != nil, Value: value, TTL: int64(ttl)}, false)
	return res.OK, err
}

// GetAndDelete removes key and returns the value it had.
func (c *Cache) GetAndDelete(ctx context.Context, key string) ([]byte, bool, error) {
	res, err := c.do(ctx, Command{Op: OpGetAndDelete, Key: key}, false)
	return res.Value, res.OK, err
}

// Clear removes every entry of the cache.
func (c *Cache) Clear(ctx context.Context) error {
	_, err := c.do(ctx, Command{Op: OpClear}, false)
	return err
}

// do replicates a cache command. Only a Set (idempotent) is sent again
// after its reply was lost. The others, whose result depends on the state
// they find, report that their outcome is unknown (ErrOutcomeUnknown of
// package hiqlite): at once when a new leader is elected while they wait
// for the old one, else when ctx or the node's timeout ends.
func (c *Cache) do(ctx context.Context, cmd Command, idempotent bool) (Result, error) {
	cmd.Cache = c.name
	res, err := c.r.Replicate(ctx, cmd, idempotent)
	if err != nil {
		return Result{}, fmt.Errorf("hiqlite: cache %q: %s: %w", c.name, cmd.Op, err)
	}
	return res, nil
}

func checkTTL(ttl time.Duration) error {
	if ttl < 0 {
		return errors.New("hiqlite: cache: negative ttl")
	}
	return nil
}
