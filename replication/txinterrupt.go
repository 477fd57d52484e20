package replication

import "context"

// txInterrupt is the writer's interrupt context for the statements of the
// leader's open transaction: it ends when the statement's context ends or
// when Interrupt is called. Deriving one registers on both contexts
// (context.WithCancel, context.AfterFunc), which cost a tenth of the
// leader's CPU per row in a transaction of single-row inserts; the
// statements of a transaction usually share one context, so the derived
// one is kept while they do.
//
// Contexts are told apart by their Done channel: two contexts with the
// same channel end at the same moment, which is all the derived context
// takes from them (and comparing contexts themselves could panic on an
// uncomparable implementation).
type txInterrupt struct {
	done    <-chan struct{} // Done of the context ctx derives from
	ctx     context.Context
	release func()
}

// get returns the interrupt context for a statement run under ctx, whose
// Done is not nil.
func (t *txInterrupt) get(ctx, stopping context.Context) context.Context {
	if t.ctx != nil && t.done == ctx.Done() {
		return t.ctx
	}
	t.end()
	ictx, cancel := context.WithCancel(ctx)
	stop := context.AfterFunc(stopping, cancel)
	t.done, t.ctx = ctx.Done(), ictx
	t.release = func() {
		stop()
		cancel()
	}
	return ictx
}

// end releases the derived context, if any: it must not outlive the
// transaction, as it stays registered on the caller's context.
func (t *txInterrupt) end() {
	if t.release != nil {
		t.release()
	}
	*t = txInterrupt{}
}

// endPending forgets the leader's open transaction (the caller has
// committed or rolled it back, or SQLite ended it).
func (sm *StateMachine) endPending() {
	if sm.pending != nil {
		sm.pending.intr.end()
		sm.pending = nil
	}
}
