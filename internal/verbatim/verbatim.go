// Package verbatim marks a context whose appends must store their events'
// metadata exactly as given, without the trace context the Store otherwise
// records in it: a migration's appends copy events that must compare
// byte for byte with their source.
package verbatim

import "context"

type key struct{}

// With returns ctx marked: appends made with it keep metadata verbatim.
func With(ctx context.Context) context.Context { return context.WithValue(ctx, key{}, true) }

// Is reports whether ctx was marked by With.
func Is(ctx context.Context) bool {
	v, _ := ctx.Value(key{}).(bool)
	return v
}
