#!/usr/bin/env bash
# Runs the whole test suite with the race detector, after gofmt, go vet and
# staticcheck. The servers the tests need are started by scripts/services.sh
# and stopped on exit. Under CI=true a backend that cannot start fails the run.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/services.sh

test -z "$(gofmt -l .)" || { echo "gofmt would change:"; gofmt -l .; exit 1; }
go vet ./...
# staticcheck at a pinned version, built from the module proxy (cached after the first run).
go run honnef.co/go/tools/cmd/staticcheck@v0.6.1 ./...
go test -race -count=1 -timeout 15m ./...

# Every fuzz target, briefly: `go test -fuzz` takes one package and one
# target per run. The budget is a number of inputs, not a duration: with
# -fuzztime 10s, Go before 1.27 can fail a run with a bare "context deadline
# exceeded" at the deadline (go.dev/issue/75804). A failing input is written
# to the package's testdata/fuzz/ and the script stops. About 45 s of
# fuzzing, plus building each instrumented test binary (minutes the first
# time, cached after).
fuzz_execs() { # inputs for a target: the slow ones open stores or run three parsers
	case "$1" in
	FuzzSecretNeverShown) echo 1500 ;;
	FuzzURL) echo 10000 ;;
	FuzzParseConnString) echo 10000 ;;
	FuzzParseURL | FuzzParsePosition) echo 20000 ;;
	*) echo 40000 ;;
	esac
}
grep -rl --include='*_test.go' '^func Fuzz' . | sort | while read -r file; do
	for target in $(sed -n 's/^func \(Fuzz[A-Za-z0-9_]*\)(.*/\1/p' "$file"); do
		echo "fuzz: $(dirname "$file") $target"
		go test -run '^$' -fuzz "^$target\$" -fuzztime "$(fuzz_execs "$target")x" "$(dirname "$file")" | grep -v '^fuzz: elapsed'
	done
done
