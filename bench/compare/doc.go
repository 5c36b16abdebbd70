// Package compare benchmarks the library's PostgreSQL and SQLite drivers
// against other event stores on the same server and disk, in the same run
// (issue 16). It is a module of its own so that the library's go.mod gains
// none of the other stores' dependencies; it holds only benchmarks.
//
// Run it with `make bench-compare` from the repository root (it starts a
// throw-away PostgreSQL unless EVENTSTORE_POSTGRES_URL is set), or:
//
//	cd bench/compare && go test -run '^$' -bench . -benchtime 20x
//
// The contenders, what each gives up, and the figures are in
// docs/benchmarks.md ("Against other event stores").
package compare
