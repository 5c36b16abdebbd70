#!/usr/bin/env bash
# Runs every benchmark; each store benchmark has a raw-client twin in the same
# run. The servers are started by scripts/services.sh and stopped on exit.
# BENCH selects benchmarks (a -bench pattern), BENCHTIME sets -benchtime.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/services.sh

bench=${BENCH:-.}
go test -run '^$' -bench "$bench" -skip '^BenchmarkAppendProcesses$' -benchtime "${BENCHTIME:-1x}" -count 1 -timeout 30m ./... | tee bench.out

# BenchmarkAppendProcesses (drivers/dynamodb) starts writer processes that
# append for a fixed 5 s per iteration, so it always runs one iteration
# (-benchtime 1x, about a minute in all), and -v shows why a layout is
# skipped (one the driver does not have yet).
if [[ BenchmarkAppendProcesses =~ $bench ]]; then
	go test -run '^$' -bench '^BenchmarkAppendProcesses$' -benchtime 1x -count 1 -timeout 10m -v ./drivers/dynamodb |
		grep -Ev '^(=== |BenchmarkAppendProcesses$)' | tee -a bench.out
fi
