#!/usr/bin/env bash
# Starts and stops a throw-away PostgreSQL cluster for tests and benchmarks.
#
#   scripts/postgres.sh start DIR   initdb + start a cluster in DIR (created, must
#                                   not exist or be empty); prints its URL on stdout
#   scripts/postgres.sh stop DIR    stop the cluster by its postmaster PID, remove DIR
#   scripts/postgres.sh restart DIR fast|immediate
#                                   stop (immediate: crash) and start it again
#
# The cluster listens on 127.0.0.1 on a free port and on a socket in DIR, trusts
# local connections, and keeps fsync on (the default). It uses the binaries in
# $PG_BIN, else /usr/lib/postgresql/15/bin, else the newest
# /usr/lib/postgresql/*/bin, else the PATH. PostgreSQL refuses to run as root:
# as root the cluster runs as the `postgres` user.
set -euo pipefail

die() { echo "postgres.sh: $*" >&2; exit 1; }

pg_bin() {
	if [[ -n "${PG_BIN:-}" ]]; then echo "$PG_BIN"; return; fi
	if [[ -x /usr/lib/postgresql/15/bin/initdb ]]; then echo /usr/lib/postgresql/15/bin; return; fi
	local d
	d=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n1 || true)
	if [[ -n "$d" && -x "$d/initdb" ]]; then echo "$d"; return; fi
	command -v initdb >/dev/null 2>&1 && { dirname "$(command -v initdb)"; return; }
	die "PostgreSQL binaries not found: install postgresql (Debian: apt-get install postgresql) or set PG_BIN"
}

# as_owner runs a command as the cluster owner: `postgres` when we are root.
as_owner() {
	if [[ $(id -u) -eq 0 ]]; then
		runuser -u postgres -- "$@"
	else
		"$@"
	fi
}

port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

start() {
	local dir=$1 bin
	bin=$(pg_bin)
	mkdir -p "$dir"
	[[ -z "$(ls -A "$dir")" ]] || die "$dir is not empty"
	if [[ $(id -u) -eq 0 ]]; then
		id postgres >/dev/null 2>&1 || die "running as root needs a 'postgres' user to own the cluster"
		chown postgres: "$dir"
		# The owner must be able to reach DIR through its parents (e.g. a mktemp -d).
		chmod 0755 "$dir"
	fi
	as_owner "$bin/initdb" -D "$dir/data" -U postgres --auth=trust --encoding=UTF8 --locale=C.UTF-8 \
		>"$dir/initdb.log" 2>&1 || { cat "$dir/initdb.log" >&2; die "initdb failed"; }
	local port tries
	for tries in $(seq 1 20); do
		port=$((20000 + RANDOM % 20000))
		port_in_use "$port" && continue
		if as_owner "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 start -o \
			"-c listen_addresses=127.0.0.1 -c port=$port -c unix_socket_directories=$dir \
			 -c max_connections=300 -c shared_buffers=128MB -c deadlock_timeout=200ms \
			 -c max_locks_per_transaction=256" >"$dir/pg_ctl.log" 2>&1; then
			echo "postgres://postgres@127.0.0.1:$port/postgres?sslmode=disable"
			return 0
		fi
		# Another process may have taken the port between the check and the start.
		grep -q "could not bind\|already in use" "$dir/server.log" 2>/dev/null || break
		: >"$dir/server.log"
	done
	cat "$dir/pg_ctl.log" "$dir/server.log" >&2 2>/dev/null || true
	die "could not start PostgreSQL in $dir"
}

stop() {
	local dir=$1 bin pid
	[[ -d "$dir" ]] || return 0
	bin=$(pg_bin)
	if [[ -f "$dir/data/postmaster.pid" ]]; then
		pid=$(head -n1 "$dir/data/postmaster.pid")
		# pg_ctl signals exactly this postmaster (by the PID in its pid file) and waits.
		as_owner "$bin/pg_ctl" -D "$dir/data" -m fast -w -t 60 stop >/dev/null 2>&1 ||
			{ [[ -n "$pid" ]] && kill -TERM "$pid" 2>/dev/null || true; }
	fi
	rm -rf "$dir"
}

# restart stops the cluster in DIR with MODE (fast or immediate, a crash)
# and starts it again on the same port.
restart() {
	local dir=$1 mode=$2 bin
	bin=$(pg_bin)
	as_owner "$bin/pg_ctl" -D "$dir/data" -m "$mode" -w -t 60 restart -l "$dir/server.log" >/dev/null 2>&1 ||
		{ cat "$dir/server.log" >&2 2>/dev/null; die "could not restart PostgreSQL in $dir"; }
}

case "${1:-}" in
start) [[ $# -eq 2 ]] || die "usage: $0 start DIR"; start "$2" ;;
stop) [[ $# -eq 2 ]] || die "usage: $0 stop DIR"; stop "$2" ;;
restart) [[ $# -eq 3 ]] || die "usage: $0 restart DIR fast|immediate"; restart "$2" "$3" ;;
*) die "usage: $0 start DIR | stop DIR | restart DIR fast|immediate" ;;
esac
