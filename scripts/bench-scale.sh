#!/usr/bin/env bash
# Runs the scale benchmarks (BenchmarkScale, conformance.RunScale) of
# PostgreSQL, then SQLite: the same appends and reads against logs of
# EVENTSTORE_SCALE events (default 1M and 10M), the stores taking turns, each
# rate reported per size with its ratio to the first size. Seeding the logs
# takes most of the time (11M events a driver by default) and a few GB of
# disk: PostgreSQL's in its cluster, SQLite's under $TMPDIR; both are removed
# when the benchmark ends.
#
# Unless EVENTSTORE_POSTGRES_URL names a server, it starts a throw-away
# cluster (scripts/postgres.sh) and stops it on exit. BENCHTIME sets
# -benchtime (default 9x: nine rounds per size of each workload, after one
# warm-up round); BENCH selects sub-benchmarks (a -bench pattern); DRIVERS
# the drivers (default "postgres sqlite"). The output goes to bench-scale.out.
set -euo pipefail
cd "$(dirname "$0")/.."
export EVENTSTORE_SCALE=${EVENTSTORE_SCALE:-1000000,10000000}
drivers=${DRIVERS:-postgres sqlite}
if [[ " $drivers " == *" postgres "* && -z "${EVENTSTORE_POSTGRES_URL:-}" ]]; then
	dir=$(mktemp -d "${TMPDIR:-/tmp}/eventstore-scale.XXXXXX")
	trap 'scripts/postgres.sh stop "$dir" || true' EXIT
	trap 'exit 130' INT TERM
	EVENTSTORE_POSTGRES_URL=$(scripts/postgres.sh start "$dir")
	export EVENTSTORE_POSTGRES_URL
fi
: >bench-scale.out
# One driver at a time: each has the machine, and the disk holds one
# driver's logs at once.
for d in $drivers; do
	go test -run '^$' -bench "${BENCH:-^BenchmarkScale\$}" -benchtime "${BENCHTIME:-9x}" -count 1 \
		-timeout "${TIMEOUT:-6h}" -v "./drivers/$d" | tee -a bench-scale.out
done
