#!/usr/bin/env bash
# tests/bench/incremental.sh: incremental against batch, and the large run (issue 11, items 4b and
# 4d; see README.md here). Run on demand, not in CI.
#
# For each history size N (millions of events): produces `replicas` disjoint copies of qsgen's base
# stream (--scale 10 --member-events 150: 53,720 events per copy) to topics of their own, drains
# them with one live worker (`qualstream run`, default settings) into a database of their own,
# then, while it runs,
#   incremental  produces a tail of 10,000 new events (qsgen tail: replacements and voids of
#                history originals, corrected and voided history deliveries and member events,
#                new records) and times it from the first produce() to the poll of
#                qualstream.consumer_offsets that shows every message committed; `--runs` tails
#                (different seeds), median reported, for each --flush-ms.
# Then it stops the worker (its end-of-run line gives entities held and peak RSS), reads the
# PostgreSQL sizes of the qualstream tables, and runs the batch a nightly user would run instead:
#   load         batch_load.sql: COPY of every raw decoded event (history and tails, written by
#                incremental.py tsv from the generator's records) into tables without indexes;
#   recount      batch_recount.sql: every measure (CW13, NTSV, CAW6-CAW9) recomputed from scratch:
#                latest version per record, chains, voids, member-years;
#   compare      incremental.py compare: the batch's rows against the worker's measure_period,
#                every row; any difference fails the run.
# Prints one table: the incremental time and the batch's, and their ratios.
#
#   tests/bench/incremental.sh [--sizes "1 5 20"] [--real|--mock] [--partitions P] [--runs N]
#                              [--events E] [--member-events M] [--flush-ms "MS..."] [--build DIR]
#                              [--keep]
#
#   --sizes       history sizes in millions of events (default "1 5 20")
#   --real        a real Apache Kafka broker, tests/kafka/broker.sh (the default)
#   --mock        librdkafka's mock cluster instead; it keeps only ~5 MiB per partition, so the
#                 partitions are raised to hold the largest history (checked either way)
#   --partitions  partitions per input topic (default 16 on the broker)
#   --runs        tails absorbed per size, median reported (default 3)
#   --events      events per tail (default 10000)
#   --member-events  qsgen --member-events of the base stream (default 150; 0: CW13 and NTSV only)
#   --flush-ms    the worker's flush.interval.ms for the tails, one set of --runs tails each
#                 (default "1000 100": the default, then a new worker process at 100 ms)
#   --build DIR   build directory (default build-bench in the repository)
#   --keep        keep the work directory (logs, TSV files, databases)
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=lib.sh source-path=SCRIPTDIR
. "$here/lib.sh"
sizes="1 5 20" kind=real partitions= runs=3 events=10000 member_events=150 flush_ms=(1000 100) keep=false
build=$root/build-bench
while (($#)); do
	case $1 in
	--sizes) sizes=$2 && shift ;;
	--real) kind=real ;;
	--mock) kind=mock ;;
	--partitions) partitions=$2 && shift ;;
	--runs) runs=$2 && shift ;;
	--events) events=$2 && shift ;;
	--member-events) member_events=$2 && shift ;;
	--flush-ms) read -r -a flush_ms <<<"$2" && shift ;;
	--build) build=$2 && shift ;;
	--keep) keep=true ;;
	-h | --help)
		sed -n '/^#   tests\/bench\/incremental.sh/,/^#   --keep/s/^# \{0,1\}//p' "${BASH_SOURCE[0]}"
		exit 0
		;;
	*)
		echo "incremental.sh: unknown argument $1 (see --help)" >&2
		exit 2
		;;
	esac
	shift
done

if [[ -z $partitions ]]; then
	partitions=16
	if [[ $kind == mock ]]; then
		# ~86 bytes per value, about 60% of them encounters; 4 MiB per partition to be safe.
		max=$(printf '%s\n' $sizes | sort -g | tail -n 1)
		partitions=$(awk -v m="$max" 'BEGIN {p = int(m * 1e6 * 86 * 0.6 / (4 * 1048576)) + 1; print (p < 16 ? 16 : p)}')
	fi
fi

now() { date +%s.%N; }
since() { echo "$(now) - $1" | bc -l; }
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR] = $1} END {print a[int((NR + 1) / 2)]}'; }

work=$(mktemp -d /tmp/qs-incremental.XXXXXX)
chmod 755 "$work"
pg_dir=$work/pg
clusters_started=()
worker=
# shellcheck disable=SC2317 # called by the EXIT trap
cleanup() {
	[[ -n $worker ]] && kill -9 "$worker" 2>/dev/null
	bench_finish "$1"
}
trap 'cleanup $?' EXIT
trap 'exit 130' INT TERM

bench_build qualstream qs-mockcluster
export QS_MOCKCLUSTER=$build/qs-mockcluster
gen=$root/tests/tools/qsgen.py
gen_args=(--scale 10 --member-events "$member_events")
"$py" "$gen" registry "$work/registry" >/dev/null
"$py" "$gen" dump "${gen_args[@]}" --out "$work/base.jsonl" >/dev/null 2>&1
base_events=$(wc -l <"$work/base.jsonl")
rm "$work/base.jsonl"
qs_pg_start "$pg_dir"
admin_dsn=$QS_PG_DSN

# shellcheck disable=SC2086 # the sizes are words
bench_start_histories "$kind" "$partitions" h $sizes

# committed DSN: messages committed in that database.
committed() { psql "$1" -X -At -c "SELECT coalesce(sum(next_offset), 0) FROM qualstream.consumer_offsets"; }

# wait_committed DSN N LOG: waits until N messages are committed; fails if the worker (LOG) died.
wait_committed() {
	while (($(committed "$1") < $2)); do
		kill -0 "$worker" 2>/dev/null || {
			tail -n 20 "$3" >&2
			exit 1
		}
		sleep 0.5
	done
}

# psql_s DSN ARGS...: runs psql with ARGS, prints its wall time in seconds.
psql_s() {
	local dsn=$1 t0
	shift
	t0=$(now)
	psql "$dsn" -X -q -v ON_ERROR_STOP=1 "$@" >/dev/null
	since "$t0"
}

declare -A R
fail=0
for n in $sizes; do
	d=$work/h${n//./_} db=qs_h${n//./_}
	mkdir -p "$d"
	chmod 755 "$d"
	replicas=$(echo "($n * 1000000 + $base_events / 2) / $base_events" | bc)
	dsn="$admin_dsn dbname=$db"
	psql "$admin_dsn" -X -q -c "CREATE DATABASE $db" >/dev/null
	cat >"$d/worker.conf" <<-EOF
		kafka.bootstrap.servers=$bs
		kafka.group.id=incremental
		topics.encounters=h${n//./_}.encounters
		topics.deliveries=h${n//./_}.deliveries
		topics.member_events=h${n//./_}.member-events
		pg.conninfo=$dsn
		schema.registry.dir=$work/registry
	EOF
	"$build/qualstream" migrate -c "$d/worker.conf" >/dev/null

	# Everything the generator computes first, so that it does not share the cores with the worker.
	say "[${n}M] generating $((runs * ${#flush_ms[@]})) tails of $events events and the raw events as TSV ($replicas copies)"
	tails=()
	for ((i = 1; i <= runs * ${#flush_ms[@]}; i++)); do
		"$py" "$gen" tail "${gen_args[@]}" --replicas "$replicas" --events "$events" --tail-seed "$i" \
			--out "$d/tail$i.jsonl" 2>"$d/tail$i.txt" >/dev/null
		tails+=(--tail "$d/tail$i.jsonl")
	done
	"$py" "$here/incremental.py" tsv "${gen_args[@]}" --replicas "$replicas" "${tails[@]}" --dir "$d" >"$d/tsv.txt"

	say "[${n}M] producing the history ($replicas copies of the base stream)"
	t0=$(now)
	"$py" "$gen" produce --bootstrap "$bs" --topic-encounters "h${n//./_}.encounters" --topic-deliveries \
		"h${n//./_}.deliveries" --topic-member-events "h${n//./_}.member-events" "${gen_args[@]}" --replicas "$replicas" \
		>"$d/produce.txt" 2>&1
	R[$n.produce_s]=$(since "$t0")
	read -r held _ < <("$py" "$here/bench_util.py" watermarks --bootstrap "$bs" "h${n//./_}.encounters" \
		"h${n//./_}.deliveries" "h${n//./_}.member-events")
	R[$n.history]=$held

	say "[${n}M] the worker drains $held messages"
	t0=$(now)
	"$build/qualstream" run -c "$d/worker.conf" -X flush.interval.ms="${flush_ms[0]}" >"$d/worker.log" 2>&1 &
	worker=$!
	wait_committed "$dsn" "$held" "$d/worker.log"
	R[$n.drain_s]=$(since "$t0")

	expect=$held tail=0
	for f in "${flush_ms[@]}"; do
		if [[ $f != "${flush_ms[0]}" ]]; then
			# Another flush interval: a new worker process, timed only once it holds every partition.
			kill -TERM "$worker"
			wait "$worker" || true
			log=$d/worker-$f.log
			: >"$log" # there before the first poll below
			"$build/qualstream" run -c "$d/worker.conf" -X flush.interval.ms="$f" >"$log" 2>&1 &
			worker=$!
			until (($(grep -c 'state restored in' "$log") >= 3 * partitions)); do
				kill -0 "$worker" 2>/dev/null || {
					tail -n 20 "$log" >&2
					exit 1
				}
				sleep 0.2
			done
		fi
		sleep 3 # the last flush's alert publication and compaction settle
		ts=() ps=()
		for ((i = 1; i <= runs; i++)); do
			tail=$((tail + 1))
			expect=$((expect + events))
			kv=$("$py" "$here/incremental.py" absorb --bootstrap "$bs" --dsn "$dsn" --prefix "h${n//./_}" \
				--tail "$d/tail$tail.jsonl" --expect "$expect")
			eval "$kv"
			say "[${n}M] flush.interval.ms=$f, tail $tail: $events events absorbed in $absorb_s s (produce $produce_s s)"
			ts+=("$absorb_s")
			ps+=("$produce_s")
			sleep 2
		done
		R[$n.$f.absorb_s]=$(median "${ts[@]}")
		R[$n.$f.absorb_all]=${ts[*]}
		R[$n.$f.produce_s]=$(median "${ps[@]}")
	done
	kill -TERM "$worker"
	wait "$worker" || true
	worker=
	# 4d: the worker that drained the history (its peak RSS is the drain's, not a restore's).
	kv=$("$py" "$here/bench_util.py" worklog "$d/worker.log")
	eval "$kv"
	R[$n.entities]=$entities
	R[$n.rss_mib]=$peak_rss_mib

	# PostgreSQL's disk: every qualstream table with its indexes and TOAST, before the batch's own.
	psql "$dsn" -X -At -F' ' -c "SELECT c.relname, pg_total_relation_size(c.oid) FROM pg_class c
		JOIN pg_namespace s ON s.oid = c.relnamespace WHERE s.nspname = 'qualstream' AND c.relkind = 'r'
		ORDER BY 2 DESC" >"$d/sizes.txt"
	R[$n.log_bytes]=$(awk '$1 == "record_log" {print $2}' "$d/sizes.txt")
	R[$n.pg_bytes]=$(awk '{s += $2} END {printf "%.0f\n", s}' "$d/sizes.txt")
	R[$n.log_rows]=$(psql "$dsn" -X -At -c "SELECT count(*) FROM qualstream.record_log")
	R[$n.largest]=$(awk 'NR <= 3 {printf "%s%s %.0f MiB", (NR > 1 ? ", " : ""), $1, $2 / 1048576}' "$d/sizes.txt")

	say "[${n}M] batch: COPY of the raw events, then the SQL recount"
	psql "$dsn" -X -q -c CHECKPOINT
	R[$n.load_s]=$(psql_s "$dsn" -v enc="$d/encounters.tsv" -v dlv="$d/deliveries.tsv" \
		-v mev="$d/member-events.tsv" -f "$here/batch_load.sql")
	psql "$dsn" -X -q -c "VACUUM ANALYZE batch.encounter_event, batch.delivery_event, batch.member_event_raw" \
		-c CHECKPOINT
	R[$n.recount_s]=$(psql_s "$dsn" -f "$here/batch_recount.sql")
	# Distinct records: the latest versions, VOIDed member events included (the batch drops those).
	R[$n.records]=$(psql "$dsn" -X -At -c "SELECT (SELECT count(*) FROM batch.encounter) +
		(SELECT count(*) FROM batch.delivery) + (SELECT count(DISTINCT event_id) FROM batch.member_event_raw)")
	if "$py" "$here/incremental.py" compare --dsn "$dsn" | tee "$d/compare.txt" >&2; then
		R[$n.verify]=OK
	else
		R[$n.verify]=FAILED
		fail=1
	fi
	rm -f "$d"/*.tsv
	$keep || psql "$admin_dsn" -X -q -c "DROP DATABASE $db" >/dev/null
done

# ---- the table -------------------------------------------------------------------
echo
echo "qualstream incremental against batch, $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, $kind cluster,"
echo "  source $(git -C "$root" describe --always --dirty 2>/dev/null || echo '?'), $partitions partitions per topic,"
echo "  history: copies of qsgen --scale 10 --member-events $member_events ($base_events events each);"
echo "  tails of $events events (median of $runs)"
printf '%-8s %10s %8s %8s %6s %9s %9s %7s %9s %9s %9s %7s\n' history events "drain s" ev/s "flush" \
	"absorb s" "(produce)" "load s" "recount s" "recount/" "(load+" verify
printf '%-8s %10s %8s %8s %6s %9s %9s %7s %9s %9s %9s %7s\n' "" "" "" "" "ms" "" "" "" "" absorb \
	"recount)/" ""
printf '%-8s %10s %8s %8s %6s %9s %9s %7s %9s %9s %9s %7s\n' "" "" "" "" "" "" "" "" "" "" absorb ""
for n in $sizes; do
	for f in "${flush_ms[@]}"; do
		a=${R[$n.$f.absorb_s]}
		printf '%-8s %10s %8.1f %8.0f %6s %9.3f %9.3f %7.1f %9.1f %9.1f %9.1f %7s\n' "${n}M" "${R[$n.history]}" \
			"${R[$n.drain_s]}" "$(echo "${R[$n.history]} / ${R[$n.drain_s]}" | bc -l)" "$f" "$a" \
			"${R[$n.$f.produce_s]}" "${R[$n.load_s]}" "${R[$n.recount_s]}" \
			"$(echo "${R[$n.recount_s]} / $a" | bc -l)" "$(echo "(${R[$n.load_s]} + ${R[$n.recount_s]}) / $a" | bc -l)" \
			"${R[$n.verify]}"
	done
done
echo "  drain = the history, worker start -> all committed; absorb s = first produce() of a tail of $events"
echo "  events -> all committed, median of $runs; (produce) = the producer's part, to its last acknowledgement;"
for n in $sizes; do
	for f in "${flush_ms[@]}"; do printf '  %s at %s ms: %s\n' "${n}M" "$f" "${R[$n.$f.absorb_all]}"; done
done
echo "  load = COPY of every raw event, history and tails (batch_load.sql); recount = batch_recount.sql"
echo "  (every measure: CW13_SUBMISSIONS, CW13_TIMELY, NTSV_MISSING, NTSV_CSECTION, CAW6-CAW9)"
echo
printf '%-8s %11s %11s %9s %10s %9s %11s %11s %12s %12s\n' history entities records "peak RSS" "B/entity" \
	"B/record" "record_log" "rows" "all tables" "MiB/M rec."
for n in $sizes; do
	rss=$((R[$n.rss_mib] * 1048576))
	printf '%-8s %11s %11s %5s MiB %10.0f %9.0f %7.0f MiB %11s %8.0f MiB %12.1f\n' "${n}M" "${R[$n.entities]}" \
		"${R[$n.records]}" "${R[$n.rss_mib]}" "$(echo "$rss / ${R[$n.entities]}" | bc -l)" \
		"$(echo "$rss / ${R[$n.records]}" | bc -l)" "$(echo "${R[$n.log_bytes]} / 1048576" | bc -l)" \
		"${R[$n.log_rows]}" "$(echo "${R[$n.pg_bytes]} / 1048576" | bc -l)" \
		"$(echo "${R[$n.pg_bytes]} / 1048576 / (${R[$n.records]} / 1000000)" | bc -l)"
done
echo "  entities, peak RSS = the end-of-run line of the worker that drained the history (and the first tails);"
echo "  records = distinct records (encounter, delivery and event ids); all tables = pg_total_relation_size"
echo "  of every qualstream table; MiB/M rec. = all tables per million distinct records; the largest:"
for n in $sizes; do echo "  ${n}M: ${R[$n.largest]}"; done
exit $fail
