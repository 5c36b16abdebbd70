package retry

import "context"

// observerKey is the context key of a retry observer.
type observerKey struct{}

// WithObserver returns a copy of ctx that carries f: every [Policy.Wait]
// under it calls f with its context before waiting. The Store counts the
// drivers' retries with it (the eventstore.retries metric), without a
// change to the driver interface.
func WithObserver(ctx context.Context, f func(ctx context.Context)) context.Context {
	return context.WithValue(ctx, observerKey{}, f)
}

// observe calls the observer ctx carries, if any.
func observe(ctx context.Context) {
	if f, ok := ctx.Value(observerKey{}).(func(context.Context)); ok {
		f(ctx)
	}
}
