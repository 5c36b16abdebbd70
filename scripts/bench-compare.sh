#!/usr/bin/env bash
# Runs the comparison with other event stores (bench/compare, a module of its
# own): BenchmarkPostgres and BenchmarkSQLite. Unless EVENTSTORE_POSTGRES_URL
# is set it starts a throw-away PostgreSQL cluster (scripts/postgres.sh) and
# stops it on exit. BENCH selects benchmarks (a -bench pattern), BENCHTIME
# sets -benchtime (default 20x: 20 interleaved rounds of each contender after
# 6 warm-up rounds), COUNT sets -count.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

if [[ -z "${EVENTSTORE_POSTGRES_URL:-}" ]]; then
	dir=$(mktemp -d "${TMPDIR:-/tmp}/eventstore-cmp.XXXXXX")
	trap '"$root/scripts/postgres.sh" stop "$dir"' EXIT
	trap 'exit 130' INT TERM
	EVENTSTORE_POSTGRES_URL=$(scripts/postgres.sh start "$dir")
	export EVENTSTORE_POSTGRES_URL
fi

uptime
cd bench/compare
"${GO:-go}" test -run '^$' -bench "${BENCH:-.}" -benchtime "${BENCHTIME:-20x}" -count "${COUNT:-1}" -timeout 60m .
uptime
