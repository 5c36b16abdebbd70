#!/usr/bin/env bash
# Runs the crash tests at full length against PostgreSQL and SQLite
# (internal/crashtest): a projector process is killed (kill -9)
# EVENTSTORE_CRASH_KILLS times (default 25) at random moments while 8 writers
# append, then its read model must equal the fold of the log; and as many
# members of a consumer group are killed mid-batch and replaced, then every
# event must have been handled, in stream order, never by two members at
# once; and the process ordering an indexed DynamoDB table's log is killed
# as often while writers append. Unless
# EVENTSTORE_POSTGRES_URL names a server, it starts a throw-away cluster
# (scripts/postgres.sh) and stops it on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
export EVENTSTORE_CRASH_KILLS=${EVENTSTORE_CRASH_KILLS:-25}
if [[ -z "${EVENTSTORE_POSTGRES_URL:-}" ]]; then
	dir=$(mktemp -d "${TMPDIR:-/tmp}/eventstore-crash.XXXXXX")
	trap 'scripts/postgres.sh stop "$dir" || true' EXIT
	trap 'exit 130' INT TERM
	EVENTSTORE_POSTGRES_URL=$(scripts/postgres.sh start "$dir")
	export EVENTSTORE_POSTGRES_URL
fi
CI=true go test -count=1 -timeout 30m -v -run '^TestCrash(Projection|Group)$' ./drivers/postgres ./drivers/sqlite
# The orderer of an indexed DynamoDB table killed as many times while 4
# writers append and a subscription runs, with writers that wait for their
# positions and with position=async writers (drivers/dynamodb, TestCrashOrderer),
# on DynamoDB Local (started in memory unless EVENTSTORE_DYNAMODB_ENDPOINT
# names one).
if [[ -z "${EVENTSTORE_DYNAMODB_ENDPOINT:-}" ]]; then
	ddir=$(mktemp -d "${TMPDIR:-/tmp}/eventstore-crash-dynamodb.XXXXXX")
	rmdir "$ddir"
	trap 'scripts/dynamodb.sh stop "$ddir" || true; [[ -n "${dir:-}" ]] && scripts/postgres.sh stop "$dir" || true' EXIT
	EVENTSTORE_DYNAMODB_ENDPOINT=$(scripts/dynamodb.sh start "$ddir")
	export EVENTSTORE_DYNAMODB_ENDPOINT
fi
CI=true go test -count=1 -timeout 30m -v -run '^TestCrashOrderer$' ./drivers/dynamodb
