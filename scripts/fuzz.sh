#!/usr/bin/env bash
# Runs fuzz targets briefly: `go test -fuzz` takes one package and one target
# per run, and each package needs its own instrumented test binary (minutes
# the first time on a fresh machine). So `make test` fuzzes the targets that
# guard secrets and the terminal (internal/redact: every driver's Open and
# the redaction; cmd/evs: the escaper); every other target runs its seed
# corpus in `make test`'s go test run, and `make fuzz` (FUZZ_ALL=1 scripts/fuzz.sh)
# fuzzes all of them. The budget is a number of inputs, not a duration: with -fuzztime
# 10s, Go before 1.27 can fail a run with a bare "context deadline exceeded"
# at the deadline (go.dev/issue/75804). A failing input is written to the
# package's testdata/fuzz/ and the script stops.
set -euo pipefail
cd "$(dirname "$0")/.."

fuzz_execs() { # inputs for a target: the slow ones open stores or run three parsers
	case "$1" in
	FuzzSecretNeverShown) echo 1500 ;;
	FuzzURL) echo 10000 ;;
	FuzzParseConnString) echo 10000 ;;
	FuzzParseURL | FuzzParsePosition) echo 20000 ;;
	*) echo 40000 ;;
	esac
}
fuzz_dirs=(./internal/redact ./cmd/evs)
[[ "${FUZZ_ALL:-}" == 1 ]] && fuzz_dirs=(.)
grep -rl --include='*_test.go' '^func Fuzz' "${fuzz_dirs[@]}" | sort | while read -r file; do
	for target in $(sed -n 's/^func \(Fuzz[A-Za-z0-9_]*\)(.*/\1/p' "$file"); do
		echo "fuzz: $(dirname "$file") $target"
		go test -run '^$' -fuzz "^$target\$" -fuzztime "$(fuzz_execs "$target")x" "$(dirname "$file")" | grep -v '^fuzz: elapsed'
	done
done
