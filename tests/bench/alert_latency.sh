#!/usr/bin/env bash
# tests/bench/alert_latency.sh: the alert-latency benchmark (see README.md here).
#
# Builds qualstream, starts a private PostgreSQL and the Kafka-protocol
# cluster(s), and for each flush.interval.ms setting runs a live worker and
# measures, with alert_latency.py, the time from producing an encounter that
# raises LATE_SUBMISSION to that alert arriving on the alert topic, against
# the plain Kafka round trip (produce one message, a subscribed consumer
# receives it) measured in the same run. Prints p50, p95 and max of both and
# their ratio. Each probe must raise exactly one RAISED LATE_SUBMISSION: a
# wrong answer fails the run. Every server it starts is stopped on exit.
#
#   tests/bench/alert_latency.sh [--real] [--probes N] [--flush-ms MS ...]
#                                [--pg-set NAME=VALUE] [--build DIR] [--keep]
#
#   --real          also run against a real Apache Kafka broker (tests/kafka/broker.sh)
#                   after the mock cluster; both land in one table
#   --probes N      probes per setting (default 40)
#   --flush-ms MS   flush.interval.ms settings, one or more (default 1000 100)
#   --pg-set N=V    a PostgreSQL setting for the private server (ALTER SYSTEM;
#                   repeatable), e.g. --pg-set jit=off
#   --build DIR     build directory (default build-bench in the repository)
#   --keep          keep the work directory (worker logs, configs, results)
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=lib.sh source-path=SCRIPTDIR
. "$here/lib.sh" # root, py, the server helpers
real=false probes=40 keep=false
flush_ms=() pg_set=()
build=$root/build-bench
while (($#)); do
	case $1 in
	--real) real=true ;;
	--probes) probes=$2 && shift ;;
	--flush-ms)
		while [[ ${2:-} =~ ^[0-9]+$ ]]; do
			flush_ms+=("$2")
			shift
		done
		((${#flush_ms[@]})) || {
			echo "alert_latency.sh: --flush-ms needs one or more numbers" >&2
			exit 2
		}
		;;
	--pg-set)
		[[ ${2:-} =~ ^[a-z_.]+=[A-Za-z0-9_.]+$ ]] || {
			echo "alert_latency.sh: --pg-set needs NAME=VALUE, got '${2:-}'" >&2
			exit 2
		}
		pg_set+=("$2") && shift
		;;
	--build) build=$2 && shift ;;
	--keep) keep=true ;;
	-h | --help)
		sed -n '/^#   tests\/bench\/alert_latency.sh/,/^#   --keep/s/^# \{0,1\}//p' "${BASH_SOURCE[0]}"
		exit 0
		;;
	*)
		echo "alert_latency.sh: unknown argument $1 (see --help)" >&2
		exit 2
		;;
	esac
	shift
done
((${#flush_ms[@]})) || flush_ms=(1000 100)

work=$(mktemp -d /tmp/qs-alert-latency.XXXXXX)
chmod 755 "$work" # the PostgreSQL data directory below it belongs to the postgres user
pg_dir=$work/pg
clusters_started=()

# Stops the worker alert_latency.py left running (it stops its own unless it
# was killed), by the pid it recorded.
# shellcheck disable=SC2317 # called by the EXIT trap
stop_worker() {
	local pid
	[[ -f $work/worker.pid ]] || return 0
	pid=$(<"$work/worker.pid")
	if qs_pid_running "$pid"; then
		kill -TERM "$pid" 2>/dev/null || true
		qs_wait_exit "$pid" 30 || kill -KILL "$pid" 2>/dev/null || true
	fi
	rm -f "$work/worker.pid"
}

# shellcheck disable=SC2317 # called by the EXIT trap
cleanup() {
	local rc=$?
	stop_worker
	bench_finish "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---- build -------------------------------------------------------------------
bench_build qualstream qs-mockcluster
export QS_MOCKCLUSTER=$build/qs-mockcluster

# ---- PostgreSQL --------------------------------------------------------------
say "starting a private PostgreSQL in $pg_dir"
qs_pg_start "$pg_dir"
for kv in "${pg_set[@]}"; do
	psql "$QS_PG_DSN" -X -q -v ON_ERROR_STOP=1 -c "ALTER SYSTEM SET ${kv%%=*} = '${kv#*=}'" >/dev/null
done
if ((${#pg_set[@]})); then
	psql "$QS_PG_DSN" -X -q -c "SELECT pg_reload_conf()" >/dev/null
fi

mapfile -t specs < <("$py" "$here/alert_latency.py" topics --flush-ms "${flush_ms[@]}")

# bench_cluster mock|real
bench_cluster() {
	local kind=$1 bs
	say "[$kind] starting the cluster (${#specs[@]} topics)"
	bench_start_cluster "$kind" "${specs[@]}"
	say "[$kind] flush.interval.ms ${flush_ms[*]}: $probes probes each"
	mkdir -p "$work/$kind"
	# A wrong answer or a probe that never came back fails the run, but the
	# other cluster still runs and the table still prints.
	"$py" "$here/alert_latency.py" run --cluster "$kind" --bootstrap "$bs" --dsn "$QS_PG_DSN" \
		--build "$build" --work "$work/$kind" --flush-ms "${flush_ms[@]}" --probes "$probes" \
		--results "$work/results.jsonl" || fail=1
	# Stop this cluster now: the next one should not share the two cores with it.
	if [[ $kind == mock ]]; then qs_mock_stop "$work/mock"; else qs_broker_stop "$work/broker" >/dev/null 2>&1; fi
	clusters_started=("${clusters_started[@]/$kind/}")
}

fail=0
kinds=(mock)
$real && kinds+=(real)
for k in "${kinds[@]}"; do bench_cluster "$k"; done

# ---- the table ---------------------------------------------------------------
echo
echo "qualstream alert latency, $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores ($(lscpu | sed -n 's/^Model name: *//p' | head -n 1)),"
echo "  source ${QS_BENCH_SOURCE:-$(git -C "$root" describe --always --dirty 2>/dev/null || echo '?')}, build $build"
echo "  PostgreSQL $(psql "$QS_PG_DSN" -X -A -t -c 'SHOW server_version' | cut -d' ' -f1)${pg_set[*]:+, set: ${pg_set[*]}}, $probes probes per setting"
if [[ -s $work/results.jsonl ]]; then
	"$py" "$here/alert_latency.py" table "$work/results.jsonl" || fail=1
else
	fail=1
fi
exit $fail
