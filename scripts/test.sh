#!/usr/bin/env bash
# Runs the whole test suite with the race detector. Backends that need a
# server are started here and stopped on exit (see scripts/services.sh once
# server drivers exist). Under CI=true a backend that cannot start fails the run.
set -euo pipefail
cd "$(dirname "$0")/.."

# Services started below register how to stop them in on_exit; they are
# stopped on exit, whatever happens (failure, Ctrl-C, kill).
on_exit=()
stop_services() { for cmd in "${on_exit[@]}"; do eval "$cmd" || true; done; }
trap stop_services EXIT
trap 'exit 130' INT TERM

# PostgreSQL: use EVENTSTORE_POSTGRES_URL when set, else start a throw-away
# cluster (scripts/postgres.sh). Under CI=true a cluster that cannot start
# fails the run; otherwise the PostgreSQL tests skip, saying why.
if [[ -z "${EVENTSTORE_POSTGRES_URL:-}" ]]; then
	pgdir=$(mktemp -d "${TMPDIR:-/tmp}/eventstore-pg.XXXXXX")
	on_exit+=("scripts/postgres.sh stop '$pgdir'")
	if url=$(scripts/postgres.sh start "$pgdir"); then
		export EVENTSTORE_POSTGRES_URL=$url
	elif [[ "${CI:-}" == "true" ]]; then
		echo "PostgreSQL could not be started (CI=true: failing)" >&2
		exit 1
	else
		echo "PostgreSQL could not be started: its tests will skip" >&2
	fi
fi

# DynamoDB Local: use EVENTSTORE_DYNAMODB_ENDPOINT when set, else install it
# once into the cache and start it in memory (scripts/dynamodb.sh). Under
# CI=true a DynamoDB Local that cannot start fails the run; otherwise the
# DynamoDB tests skip, saying why.
if [[ -z "${EVENTSTORE_DYNAMODB_ENDPOINT:-}" ]]; then
	ddbdir=$(mktemp -d "${TMPDIR:-/tmp}/eventstore-ddb.XXXXXX")
	on_exit+=("scripts/dynamodb.sh stop '$ddbdir'")
	if endpoint=$(scripts/dynamodb.sh start "$ddbdir"); then
		export EVENTSTORE_DYNAMODB_ENDPOINT=$endpoint
	elif [[ "${CI:-}" == "true" ]]; then
		echo "DynamoDB Local could not be started (CI=true: failing)" >&2
		exit 1
	else
		echo "DynamoDB Local could not be started: its tests will skip" >&2
	fi
fi

test -z "$(gofmt -l .)" || { echo "gofmt would change:"; gofmt -l .; exit 1; }
go vet ./...
# staticcheck at a pinned version, built from the module proxy (cached after the first run).
go run honnef.co/go/tools/cmd/staticcheck@v0.6.1 ./...
go test -race -count=1 -timeout 15m ./...
