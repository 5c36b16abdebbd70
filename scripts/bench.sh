#!/usr/bin/env bash
# Runs every benchmark; each store benchmark has a raw-client twin in the same run.
set -euo pipefail
cd "$(dirname "$0")/.."
go test -run '^$' -bench "${BENCH:-.}" -benchtime "${BENCHTIME:-1x}" -count 1 -timeout 30m ./... | tee bench.out
