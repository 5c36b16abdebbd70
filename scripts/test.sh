#!/usr/bin/env bash
# Runs the whole test suite with the race detector, after gofmt, go vet and
# staticcheck. The servers the tests need are started by scripts/services.sh
# and stopped on exit, and Chromium for the browser test is installed by
# scripts/chromium.sh. Under CI=true a backend (or a Chromium) that cannot
# start fails the run.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/services.sh
# Chromium for the console's browser test, installed with apt-get when missing.
source scripts/chromium.sh

test -z "$(gofmt -l .)" || { echo "gofmt would change:"; gofmt -l .; exit 1; }
go vet ./...
# staticcheck at a pinned version, built from the module proxy (cached after the first run).
go run honnef.co/go/tools/cmd/staticcheck@v0.6.1 ./...
go test -race -count=1 -timeout 15m ./...

# The fuzz targets that guard secrets and the terminal, briefly (scripts/fuzz.sh).
scripts/fuzz.sh
