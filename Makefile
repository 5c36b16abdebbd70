# Test, benchmark and demo targets. `make test` is what CI runs.
GO ?= go
export CGO_ENABLED = 1

.PHONY: test fuzz demo bench bench-compare bench-scale crash lint vet test-kurrentdb services-up services-down

test:
	CI=$${CI:-true} ./scripts/test.sh

# Every fuzz target briefly; `make test` fuzzes only those of internal/redact
# and cmd/evs (the others run their seed corpus there).
fuzz:
	FUZZ_ALL=1 ./scripts/fuzz.sh

demo:
	$(GO) run ./examples/quickstart

bench:
	./scripts/bench.sh

# The PostgreSQL and SQLite drivers against other event stores, in the same
# run (bench/compare, a module of its own so the library gains none of their
# dependencies; docs/benchmarks.md, "Against other event stores"). Starts a
# throw-away PostgreSQL unless EVENTSTORE_POSTGRES_URL is set. BENCH,
# BENCHTIME and COUNT as in scripts/bench-compare.sh.
bench-compare:
	GO=$(GO) ./scripts/bench-compare.sh

# Appends and reads against logs of 1M and 10M events, PostgreSQL (a
# throw-away cluster of its own unless EVENTSTORE_POSTGRES_URL is set) and
# SQLite, each rate with its ratio 10M/1M (scripts/bench-scale.sh; not part of
# `make test`). Seeding takes most of the time and a few GB of disk, freed at
# the end. EVENTSTORE_SCALE=1000000,10000000 sets the sizes.
bench-scale:
	./scripts/bench-scale.sh

# The crash tests at full length, on PostgreSQL (a throw-away cluster of its
# own) and SQLite (scripts/crash.sh): a projector process killed (kill -9) 25
# times at random while 8 writers append, and 25 consumer-group members
# killed mid-batch and replaced. `make test` runs them with 5 kills and 1.
# Then, on DynamoDB Local, the process ordering an indexed table's log
# killed 25 times while 4 writers append, once with writers that wait for
# their positions and once with position=async writers (`make test`: once each).
# EVENTSTORE_CRASH_KILLS=100 make crash kills more.
crash:
	./scripts/crash.sh

# The KurrentDB driver against a real server (`docker compose up -d
# kurrentdb`): the conformance suite, then the benchmarks. `make test` runs
# the driver against an in-process double instead (docs/kurrentdb.md).
EVENTSTORE_KURRENTDB_URL ?= kurrentdb://127.0.0.1:2113?tls=false
test-kurrentdb:
	EVENTSTORE_KURRENTDB_URL='$(EVENTSTORE_KURRENTDB_URL)' $(GO) test -race -count=1 -run RealServer ./drivers/kurrentdb/
	EVENTSTORE_KURRENTDB_URL='$(EVENTSTORE_KURRENTDB_URL)' $(GO) test -count=1 -run '^$$' -bench . -benchtime $${BENCHTIME:-1x} ./drivers/kurrentdb/

# PostgreSQL, DynamoDB Local and KurrentDB in Docker (docker-compose.yml), for
# people who have it. `make test` does not need them.
services-up:
	docker compose up -d --wait

services-down:
	docker compose down

vet:
	$(GO) vet ./...

lint: vet
	@test -z "$$(gofmt -l .)" || { echo "gofmt would change:"; gofmt -l .; exit 1; }
	$(GO) run honnef.co/go/tools/cmd/staticcheck@v0.6.1 ./...
