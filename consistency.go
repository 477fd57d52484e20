package hiqlite

import "context"

type consistencyKey struct{}

// WithConsistency returns a context whose reads use level c instead of the
// DSN's _consistency.
//
//	rows, err := db.QueryContext(hiqlite.WithConsistency(ctx, hiqlite.Linearizable), q)
func WithConsistency(ctx context.Context, c Consistency) context.Context {
	return context.WithValue(ctx, consistencyKey{}, c)
}

func consistencyOf(ctx context.Context, def Consistency) Consistency {
	if c, ok := ctx.Value(consistencyKey{}).(Consistency); ok {
		return c
	}
	return def
}
