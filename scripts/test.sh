#!/usr/bin/env bash
# Runs the whole test suite with the race detector. Backends that need a
# server are started here and stopped on exit (see scripts/services.sh once
# server drivers exist). Under CI=true a backend that cannot start fails the run.
set -euo pipefail
cd "$(dirname "$0")/.."

test -z "$(gofmt -l .)" || { echo "gofmt would change:"; gofmt -l .; exit 1; }
go vet ./...
go test -race -count=1 -timeout 15m ./...
