#!/usr/bin/env bash
# Runs every benchmark; each store benchmark has a raw-client twin in the same
# run. The servers are started by scripts/services.sh and stopped on exit.
# BENCH selects benchmarks (a -bench pattern), BENCHTIME sets -benchtime.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/services.sh

go test -run '^$' -bench "${BENCH:-.}" -benchtime "${BENCHTIME:-1x}" -count 1 -timeout 30m ./... | tee bench.out
