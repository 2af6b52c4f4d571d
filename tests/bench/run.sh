#!/usr/bin/env bash
# tests/bench/run.sh: the end-to-end benchmark of qualstream (see README.md here).
#
# In one run: builds, generates a stream of about a million events (qsgen's
# big-stream path) plus the demo stream, starts a private PostgreSQL and the
# Kafka-protocol cluster(s), produces the streams, and drains the same topics
# twice: first with kcat (plain librdkafka consumers: the baseline), then with
# `qualstream run -X run.exit.at.end=true` into PostgreSQL. Prints events/s for
# both, their ratio, wall time and the worker's peak RSS, and checks the
# worker's measure_period against the oracle: a wrong answer fails the run.
# It also runs qs-bench-hotpath (decode + state_apply in process) on the
# same stream. Every server it starts is stopped on exit.
#
#   tests/bench/run.sh [--real] [--scale S] [--replicas N] [--partitions P]
#                      [--build DIR] [--keep] [--no-hotpath]
#
#   --real          also run against a real Apache Kafka broker (tests/kafka/broker.sh)
#                   after the mock cluster; both land in one table
#   --scale S       qsgen --scale of the base stream (default 10)
#   --replicas N    disjoint copies of the base stream, at least 2 (default 23: ~1.02 M messages)
#   --partitions P  partitions per input topic (default 16; the mock keeps only ~5 MiB
#                   per partition, so fewer would truncate the logs, which is checked)
#   --build DIR     build directory (default build-bench in the repository)
#   --keep          keep the work directory (logs, dumps) instead of deleting it
#   --no-hotpath    skip qs-bench-hotpath
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=lib.sh source-path=SCRIPTDIR
. "$here/lib.sh" # root, py, the server helpers
real=false scale=10 replicas=23 partitions=16 keep=false hotpath=true
build=$root/build-bench
while (($#)); do
	case $1 in
	--real) real=true ;;
	--scale) scale=$2 && shift ;;
	--replicas) replicas=$2 && shift ;;
	--partitions) partitions=$2 && shift ;;
	--build) build=$2 && shift ;;
	--keep) keep=true ;;
	--no-hotpath) hotpath=false ;;
	-h | --help)
		sed -n '/^#   tests\/bench\/run.sh/,/^#   --no-hotpath/s/^# \{0,1\}//p' "${BASH_SOURCE[0]}"
		exit 0
		;;
	*)
		echo "run.sh: unknown argument $1 (see --help)" >&2
		exit 2
		;;
	esac
	shift
done
if ((replicas < 2)); then
	# qsgen tags ids with the copy number only when there are two copies or more; one untagged
	# copy would share its ids with the demo stream and supersede its records.
	echo "run.sh: --replicas must be at least 2" >&2
	exit 2
fi

now() { date +%s.%N; }
since() { echo "$(now) - $1" | bc -l; }

work=$(mktemp -d /tmp/qs-bench.XXXXXX)
chmod 755 "$work" # the PostgreSQL data directory below it belongs to the postgres user
pg_dir=$work/pg
clusters_started=()

# shellcheck disable=SC2317 # called by the EXIT trap
cleanup() { bench_finish $?; }
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---- build -------------------------------------------------------------------
bench_build qualstream qs-mockcluster qs-bench-hotpath
export QS_MOCKCLUSTER=$build/qs-mockcluster

# ---- streams -----------------------------------------------------------------
# The big stream is `replicas` disjoint copies of the base stream (ids tagged
# .rNNNNN in the encoded bytes), so the oracle runs on the base and scales; the
# demo stream (hostile messages, member events) has untagged ids, so the two
# never share an identity and their expected rows add up.
gen=$root/tests/tools/qsgen.py
big_args=(--scale "$scale" --replicas "$replicas")
demo_args=(--hostile --member-events 3)
say "generating streams (base: --scale $scale, big: x$replicas, demo: ${demo_args[*]})"
"$py" "$gen" registry "$work/registry" >/dev/null
"$py" "$gen" dump --scale "$scale" --out "$work/base.jsonl" 2>/dev/null >/dev/null
"$py" "$gen" dump "${demo_args[@]}" --out "$work/demo.jsonl" 2>/dev/null >/dev/null
"$py" "$gen" dump "${big_args[@]}" --out "$work/big.jsonl" 2>/dev/null >/dev/null
n_big=$(wc -l <"$work/big.jsonl")
n_demo=$(wc -l <"$work/demo.jsonl")
n_total=$((n_big + n_demo))

# ---- hot path ----------------------------------------------------------------
hot_summary=
if $hotpath; then
	say "qs-bench-hotpath on the big stream"
	"$build/qs-bench-hotpath" --stream "$work/big.jsonl" --registry "$work/registry" \
		--partitions "$partitions" | tee "$work/hotpath.txt"
	hot_summary=$(grep '^hotpath-summary ' "$work/hotpath.txt")
fi
rm -f "$work/big.jsonl" # ~400 MB; the brokers get the stream from qsgen directly

# ---- PostgreSQL --------------------------------------------------------------
say "starting a private PostgreSQL in $pg_dir"
qs_pg_start "$pg_dir"
admin_dsn=$QS_PG_DSN

# ---- one cluster -------------------------------------------------------------
topics=(encounters deliveries member-events)
declare -A R # results, keyed "<cluster>.<name>"

# bench_cluster mock|real
bench_cluster() {
	local kind=$1 dir=$work/$1 bs db dsn conf t t0 i secs best
	mkdir -p "$dir"
	say "[$kind] starting the cluster (${topics[*]} x $partitions partitions)"
	local specs=()
	for t in "${topics[@]}"; do specs+=("$t:$partitions"); done
	specs+=(qualstream-dead-letters:1 qualstream-alerts:1)
	bench_start_cluster "$kind" "${specs[@]}"

	say "[$kind] producing the demo stream and $n_big big-stream messages to $bs"
	t0=$(now)
	"$py" "$gen" produce --bootstrap "$bs" "${demo_args[@]}" >"$dir/produce-demo.txt" 2>&1
	"$py" "$gen" produce --bootstrap "$bs" "${big_args[@]}" >"$dir/produce-big.txt" 2>&1
	R[$kind.produce_s]=$(since "$t0")
	local held
	read -r held _ < <("$py" "$here/bench_util.py" watermarks --bootstrap "$bs" "${topics[@]}")
	if ((held != n_total)); then
		echo "[$kind] the topics hold $held messages, $n_total were produced" >&2
		return 1
	fi
	R[$kind.messages]=$held

	# Baseline: plain librdkafka consumers (kcat, one per topic, running side
	# by side as the worker reads the three topics at once) read every message
	# from the beginning and discard it. Best of five runs: a run of about a
	# second is mostly librdkafka start-up and end-of-partition latency, which
	# comes in steps of up to a second.
	say "[$kind] baseline: kcat drains the three topics (best of 5)"
	best=
	for i in 1 2 3 4 5; do
		local pids=() pid
		t0=$(now)
		for t in "${topics[@]}"; do
			kcat -C -b "$bs" -t "$t" -o beginning -e -q >/dev/null &
			pids+=($!)
		done
		for pid in "${pids[@]}"; do wait "$pid"; done
		secs=$(since "$t0")
		echo "  kcat pass $i: $secs s" >&2
		if [[ -z $best ]] || (($(echo "$secs < $best" | bc -l))); then best=$secs; fi
	done
	R[$kind.base_s]=$best

	# The worker, default flush settings, into a database of its own. The debug
	# level adds one line per flush (and per dead letter), nothing per event.
	db=qs_bench_$kind
	psql "$admin_dsn" -X -q -c "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db" >/dev/null
	dsn="$admin_dsn dbname=$db"
	conf=$dir/qualstream.conf
	cat >"$conf" <<-EOF
		kafka.bootstrap.servers=$bs
		kafka.group.id=qs-bench-$kind
		pg.conninfo=$dsn
		schema.registry.dir=$work/registry
	EOF
	"$build/qualstream" migrate -c "$conf" >"$dir/migrate.log" 2>&1
	say "[$kind] worker: qualstream run -X run.exit.at.end=true"
	t0=$(now)
	/usr/bin/time -v -o "$dir/time.txt" "$build/qualstream" run -c "$conf" -X run.exit.at.end=true \
		-X log.level=debug >"$dir/worker.log" 2>&1 || {
		tail -n 30 "$dir/worker.log" >&2
		return 1
	}
	R[$kind.wall_s]=$(since "$t0")
	grep -E ' (applied|WARN|ERROR) ' "$dir/worker.log" | tail -n 5 >&2 || true
	local kv
	kv=$("$py" "$here/bench_util.py" worklog "$dir/worker.log")
	local drain_s flush_s applied dead flushes resets entities peak_rss_mib
	eval "$kv"
	R[$kind.drain_s]=$drain_s
	R[$kind.flush_pct]=$(echo "100 * $flush_s / $drain_s" | bc -l)
	R[$kind.cpu_s]=$(awk -F': ' '/(User|System) time/ {s += $2} END {printf "%.1f", s}' "$dir/time.txt")
	R[$kind.rss_mib]=$peak_rss_mib
	R[$kind.time_rss_mib]=$(awk -F': ' '/Maximum resident set size/ {printf "%.0f", $2 / 1024}' "$dir/time.txt")
	R[$kind.flushes]=$flushes
	R[$kind.resets]=$resets
	R[$kind.entities]=$entities
	R[$kind.applied]=$applied
	R[$kind.dead]=$dead

	say "[$kind] checking the worker's rows against the oracle"
	if "$py" "$here/bench_util.py" verify --dsn "$dsn" --base "$work/base.jsonl" --replicas "$replicas" \
		--demo "$work/demo.jsonl" --messages "$n_total" | tee "$dir/verify.txt"; then
		R[$kind.verify]=OK
	else
		R[$kind.verify]=FAILED
	fi

	# Baseline 4a: what PostgreSQL alone takes to receive the rows the worker
	# persisted for this stream. The tables' rows (record versions, alerts,
	# dead letters, aggregates, offsets) are dumped, then COPYed from psql in
	# the same format the worker sends them (binary for the record versions)
	# into tables of the same shape without indexes, one transaction each.
	# Superseded record versions a compaction deleted are not in the dump, so
	# the baseline is a little smaller than what the worker wrote.
	say "[$kind] baseline: a plain COPY of the rows the worker persisted"
	local tables=(record_log alerts dead_letter measure_period consumer_offsets) tb rows=0 n
	# Before migration 006 the records were upserted into record_latest, sent as text.
	[[ $(psql "$dsn" -X -At -c "SELECT to_regclass('qualstream.record_log') IS NULL") == t ]] &&
		tables[0]=record_latest
	psql "$dsn" -X -q -v ON_ERROR_STOP=1 -c "CREATE SCHEMA bench_copy" >/dev/null
	for tb in "${tables[@]}"; do
		local fmt=text
		[[ $tb == record_log ]] && fmt=binary
		psql "$dsn" -X -q -v ON_ERROR_STOP=1 \
			-c "CREATE TABLE bench_copy.$tb (LIKE qualstream.$tb)" \
			-c "\\copy qualstream.$tb TO '$dir/copy.$tb' (FORMAT $fmt)" >/dev/null
		n=$(psql "$dsn" -X -At -c "SELECT count(*) FROM qualstream.$tb")
		rows=$((rows + n))
	done
	psql "$dsn" -X -q -c CHECKPOINT >/dev/null
	t0=$(now)
	for tb in "${tables[@]}"; do
		local fmt=text
		[[ $tb == record_log ]] && fmt=binary
		psql "$dsn" -X -q -v ON_ERROR_STOP=1 -c "\\copy bench_copy.$tb FROM '$dir/copy.$tb' (FORMAT $fmt)" \
			>/dev/null
	done
	R[$kind.copy_s]=$(since "$t0")
	R[$kind.copy_rows]=$rows
	psql "$dsn" -X -q -c "DROP SCHEMA bench_copy CASCADE" >/dev/null
	rm -f "$dir"/copy.*

	# Stop this cluster now: the next one should not share the two cores with it.
	if [[ $kind == mock ]]; then qs_mock_stop "$dir"; else qs_broker_stop "$work/broker" >/dev/null 2>&1; fi
	clusters_started=("${clusters_started[@]/$kind/}")
}

kinds=(mock)
$real && kinds+=(real)
for k in "${kinds[@]}"; do bench_cluster "$k"; done

# ---- the table ---------------------------------------------------------------
rate() { echo "$1 / $2" | bc -l; }
echo
echo "qualstream benchmark, $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores ($(lscpu | sed -n 's/^Model name: *//p' | head -n 1)),"
echo "  source ${QS_BENCH_SOURCE:-$(git -C "$root" describe --always --dirty 2>/dev/null || echo '?')}, build $build"
echo "  $n_total messages: demo stream $n_demo + $replicas x base (--scale $scale), $partitions partitions per topic"
printf '%-6s %10s %11s %9s %7s %10s %7s %8s %8s %11s %7s %9s %8s %9s %7s\n' cluster "kcat ev/s" "worker ev/s" \
	"(drain s)" ratio "COPY ev/s" ratio "flush %" "wall s" "ev/s (wall)" ratio "worker cpu" "peak RSS" entities verify
for k in "${kinds[@]}"; do
	m=${R[$k.messages]}
	b=$(rate "$m" "${R[$k.base_s]}")
	d=$(rate "$m" "${R[$k.drain_s]}")
	w=$(rate "$m" "${R[$k.wall_s]}")
	c=$(rate "$m" "${R[$k.copy_s]}")
	printf '%-6s %10.0f %11.0f %9.1f %7.3f %10.0f %7.3f %7.0f%% %8.1f %11.0f %7.3f %7s s %4s MiB %9s %7s\n' "$k" \
		"$b" "$d" "${R[$k.drain_s]}" "$(rate "$d" "$b")" "$c" "$(rate "$d" "$c")" "${R[$k.flush_pct]}" \
		"${R[$k.wall_s]}" "$w" "$(rate "$w" "$b")" "${R[$k.cpu_s]}" "${R[$k.rss_mib]}" "${R[$k.entities]}" \
		"${R[$k.verify]}"
done
echo "  kcat ev/s = messages / time for three kcat (one per topic, side by side) to read them all;"
echo "  worker ev/s = messages / drain time (first partition assigned -> end-of-run line); ratio = worker / kcat;"
echo "  COPY ev/s = messages / time for psql to COPY the rows the worker persisted (${R[${kinds[0]}.copy_rows]} on"
echo "  ${kinds[0]}) into unindexed tables of the same shape; its ratio = worker / COPY (issue 11, 4a);"
echo "  flush % = share of the drain spent in flushes (PostgreSQL); wall = the whole worker process;"
echo "  worker cpu = its user + sys time; peak RSS = the worker's own getrusage figure"
if [[ -n $hot_summary ]]; then
	declare -A H
	for kv in $hot_summary; do [[ $kv == *=* ]] && H[${kv%%=*}]=${kv#*=}; done
	printf 'hotpath (%s events, in process, median of 5):\n' "${H[events]}"
	printf '  (a) read bytes %.1f ns/event | (b) decode %.1f ns = x%.2f | (c1) +apply, new entities %.1f ns = x%.2f | (c2) +apply, steady %.1f ns = x%.2f\n' \
		"${H[a_ns]}" "${H[b_ns]}" "${H[b_ratio]}" "${H[c1_ns]}" "${H[c1_ratio]}" "${H[c2_ns]}" "${H[c2_ratio]}"
	printf '  allocations: %.6f per steady-state event (%.6f not arena chunks), %.4f per new entity; memory: %s bytes/entity heap, %s RSS (%s entities)\n' \
		"${H[c2_allocs_per_event]}" "${H[c2_other_allocs_per_event]}" "${H[c1_allocs_per_new_entity]}" \
		"${H[heap_bytes_per_entity]}" "${H[rss_bytes_per_entity]}" "${H[entities]}"
fi
fail=0
for k in "${kinds[@]}"; do [[ ${R[$k.verify]} == OK ]] || fail=1; done
exit $fail
