#!/usr/bin/env bash
# tests/bench/rebalance.sh: what a restore on assignment and a rebalance cost
# (issue 11, items 4c and 5; see README.md here). Run on demand, not in CI.
#
# For each history size: produces `replicas` disjoint copies of qsgen's base
# stream (--scale 10: about 63 k held entities per copy), drains them once into
# PostgreSQL with one worker, then
#   restore  starts a worker on the drained group, `run.exit.at.end=true`: it
#            restores every partition from record_latest and exits at once.
#            Baseline: a plain `COPY (SELECT offset, value FROM record_latest
#            WHERE group) TO STDOUT (FORMAT binary)` of the same rows, by psql, to /dev/null.
# and, at the largest size, two workers A and B on the drained group, then
#   leave    B stops (SIGTERM): A takes B's half over;
#   flap     B starts, restores a half and is killed (SIGKILL) before it
#            commits anything: the group hands the half back to A;
#   return   B starts again and takes a half back.
# Each step's time runs from the signal (or the start) to "caught up": a marker
# batch (the demo stream, produced right after the signal) is committed in
# every partition. It is also given as a ratio to the COPY baseline. With
# --before DIR the restore and the scenarios also run with the binary in DIR
# (an older build), on the same history, in the same run.
#
#   tests/bench/rebalance.sh [--sizes "R1 R2 ..."] [--partitions P] [--runs N]
#                            [--real] [--before DIR] [--build DIR] [--keep]
#
#   --sizes       replica counts, one history each (default "16 79": ~1 M and ~5 M entities)
#   --partitions  partitions per input topic (default 96: the mock keeps ~5 MiB per partition)
#   --runs        restore runs per binary and size, median reported (default 3)
#   --real        a real Apache Kafka broker instead of librdkafka's mock cluster
#   --before DIR  also measure the qualstream binary in DIR
#   --build DIR   build directory (default build-bench in the repository)
#   --keep        keep the work directory
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=lib.sh source-path=SCRIPTDIR
. "$here/lib.sh"
sizes="16 79" partitions=96 runs=3 kind=mock before= keep=false
build=$root/build-bench
while (($#)); do
	case $1 in
	--sizes) sizes=$2 && shift ;;
	--partitions) partitions=$2 && shift ;;
	--runs) runs=$2 && shift ;;
	--real) kind=real ;;
	--before) before=$2 && shift ;;
	--build) build=$2 && shift ;;
	--keep) keep=true ;;
	-h | --help)
		sed -n '/^#   tests\/bench\/rebalance.sh/,/^#   --keep/s/^# \{0,1\}//p' "${BASH_SOURCE[0]}"
		exit 0
		;;
	*)
		echo "rebalance.sh: unknown argument $1 (see --help)" >&2
		exit 2
		;;
	esac
	shift
done

now_ms() { date +%s%3N; }
work=$(mktemp -d /tmp/qs-rebalance.XXXXXX)
chmod 755 "$work"
pg_dir=$work/pg
clusters_started=()
pids=()
# shellcheck disable=SC2317 # called by the EXIT trap
cleanup() {
	local p
	for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done
	bench_finish "$1"
}
trap 'cleanup $?' EXIT
trap 'exit 130' INT TERM

bench_build qualstream qs-mockcluster
export QS_MOCKCLUSTER=$build/qs-mockcluster
bins=("after=$build/qualstream")
[[ -n $before ]] && bins=("before=$before/qualstream" "${bins[@]}")

gen=$root/tests/tools/qsgen.py
"$py" "$gen" registry "$work/registry" >/dev/null
qs_pg_start "$pg_dir"
admin_dsn=$QS_PG_DSN

# shellcheck disable=SC2086 # the sizes are words
bench_start_histories "$kind" "$partitions" r $sizes

# conf R GROUP: writes the worker configuration for history R and prints its path.
conf() {
	local f=$work/r$1/$2.conf
	cat >"$f" <<-EOF
		kafka.bootstrap.servers=$bs
		kafka.group.id=$2
		kafka.session.timeout.ms=6000
		topics.encounters=r$1.encounters
		topics.deliveries=r$1.deliveries
		topics.member_events=r$1.member-events
		pg.conninfo=$admin_dsn dbname=qs_r$1
		schema.registry.dir=$work/registry
	EOF
	echo "$f"
}

# produce R ARGS...: produces qsgen's stream with ARGS to history R's topics.
produce() {
	local r=$1
	shift
	"$py" "$gen" produce --bootstrap "$bs" --topic-encounters "r$r.encounters" --topic-deliveries \
		"r$r.deliveries" --topic-member-events "r$r.member-events" "$@" 2>/dev/null | tail -n 1
}

# committed R: messages committed in history R's database.
committed() {
	psql "$admin_dsn dbname=qs_r$1" -X -At -c "SELECT coalesce(sum(next_offset), 0) FROM qualstream.consumer_offsets"
}

# held R: messages in history R's topics.
held() {
	"$py" "$here/bench_util.py" watermarks --bootstrap "$bs" "r$1.encounters" "r$1.deliveries" "r$1.member-events" |
		cut -d' ' -f1
}

# caught_up R N: waits until N messages are committed in history R.
caught_up() {
	while (($(committed "$1") < $2)); do sleep 0.1; done
}

# median of the arguments
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR] = $1} END {print a[int((NR + 1) / 2)]}'; }

# restore_ms LOG [FROM]: sum of the "state restored in N ms" lines of LOG from byte FROM on, and their count.
restore_ms() {
	tail -c +"$((${2:-0} + 1))" "$1" | awk '/state restored in/ {for (i = 1; i <= NF; i++) if ($i == "in") s += $(i + 1); n++}
		END {printf "%d %d\n", s, n}'
}

declare -A R
for r in $sizes; do
	mkdir -p "$work/r$r"
	psql "$admin_dsn" -X -q -c "CREATE DATABASE qs_r$r" >/dev/null
	c=$(conf "$r" history)
	"$build/qualstream" migrate -c "$c" >/dev/null
	say "[r$r] producing $r copies of the base stream"
	produce "$r" --scale 10 --replicas "$r" >&2
	n=$(held "$r")
	say "[r$r] draining $n messages into PostgreSQL (one worker)"
	t0=$(now_ms)
	"$build/qualstream" run -c "$c" -X run.exit.at.end=true >"$work/r$r/drain.log" 2>&1
	R[$r.drain_s]=$(echo "($(now_ms) - $t0) / 1000" | bc -l)
	R[$r.entities]=$(grep -o '[0-9]* entities held; peak' "$work/r$r/drain.log" | tail -n 1 | cut -d' ' -f1)
	R[$r.rows]=$(psql "$admin_dsn dbname=qs_r$r" -X -At -c "SELECT count(*) FROM qualstream.record_latest")

	say "[r$r] baseline: COPY of record_latest's rows to /dev/null (x$runs)"
	ts=()
	for ((i = 0; i < runs; i++)); do
		t0=$(now_ms)
		psql "$admin_dsn dbname=qs_r$r" -X -q -c "COPY (SELECT \"offset\", value FROM qualstream.record_latest \
			WHERE consumer_group = 'history') TO STDOUT (FORMAT binary)" >/dev/null
		ts+=($(($(now_ms) - t0)))
	done
	R[$r.copy_ms]=$(median "${ts[@]}")

	for b in "${bins[@]}"; do
		name=${b%%=*} bin=${b#*=}
		say "[r$r] $name: restore on assignment (x$runs)"
		ts=() rss=()
		for ((i = 0; i < runs; i++)); do
			log=$work/r$r/restore-$name-$i.log
			"$bin" run -c "$c" -X run.exit.at.end=true >"$log" 2>&1
			read -r ms _ < <(restore_ms "$log")
			ts+=("$ms")
			rss+=("$(grep -o 'peak RSS [0-9]*' "$log" | tail -n 1 | cut -d' ' -f3)")
		done
		R[$r.$name.restore_ms]=$(median "${ts[@]}")
		R[$r.$name.rss]=$(median "${rss[@]}")
	done
done

# ---- rebalances, at the largest size ---------------------------------------------
r=${sizes##* }
step() { # step NAME BIN: runs the group scenarios with BIN
	local name=$1 bin=$2 c a b la lb at bt n t0 msa msb
	c=$(conf "$r" history)
	la=$work/r$r/group-$name-a.log lb=$work/r$r/group-$name-b.log
	: >"$lb"
	say "[r$r] $name: two workers"
	"$bin" run -c "$c" >"$la" 2>&1 &
	a=$!
	pids+=("$a")
	# A first, so that it holds everything before B joins.
	until_restored "$la" $((3 * partitions))
	start_b
	produce "$r" --hostile --member-events 3 >/dev/null
	caught_up "$r" "$(held "$r")"

	# measure SCENARIO ACTION...: runs ACTION, produces the marker, waits until caught up.
	measure() {
		local scenario=$1
		shift
		at=$(stat -c %s "$la")
		bt=$(stat -c %s "$lb")
		t0=$(now_ms)
		"$@"
		produce "$r" --hostile --member-events 3 >/dev/null
		caught_up "$r" "$(held "$r")"
		R[$name.$scenario.s]=$(echo "($(now_ms) - $t0) / 1000" | bc -l)
		read -r msa na < <(restore_ms "$la" "$at")
		read -r msb nb < <(restore_ms "$lb" "$bt")
		R[$name.$scenario.restored]=$((na + nb))
		R[$name.$scenario.restore_s]=$(echo "($msa + $msb) / 1000" | bc -l)
	}
	leave() {
		kill -TERM "$b"
		wait "$b" || true
	}
	# B joins, restores its half and dies before it commits anything.
	flap() {
		start_b
		kill -KILL "$b"
		wait "$b" 2>/dev/null || true
	}
	measure leave leave
	measure flap flap
	measure return start_b
	kill -TERM "$a" "$b"
	wait "$a" "$b" || true
}
# until_restored LOG N: waits until LOG holds N more restored partitions than when called.
until_restored() {
	while (($(restore_ms "$1" | cut -d' ' -f2) < $2)); do sleep 0.2; done
}
# start_b: starts worker B (appending to its log) and waits until it has restored its half.
start_b() {
	local before_n
	before_n=$(restore_ms "$lb" | cut -d' ' -f2)
	"$bin" run -c "$c" >>"$lb" 2>&1 &
	b=$!
	pids+=("$b")
	until_restored "$lb" $((before_n + 3 * partitions / 2))
}
for b in "${bins[@]}"; do step "${b%%=*}" "${b#*=}"; done

# ---- the table -------------------------------------------------------------------
echo
echo "qualstream restore and rebalance benchmark, $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, $kind cluster,"
echo "  source $(git -C "$root" describe --always --dirty 2>/dev/null || echo '?'), $partitions partitions per topic"
printf '%-8s %9s %10s %9s %-7s %10s %8s %10s %9s\n' history entities rows "COPY s" binary "restore s" ratio \
	"s/M ent." "peak RSS"
for r in $sizes; do
	for b in "${bins[@]}"; do
		name=${b%%=*}
		rs=$(echo "${R[$r.$name.restore_ms]} / 1000" | bc -l)
		printf '%-8s %9s %10s %9.2f %-7s %10.2f %8.1f %10.2f %5s MiB\n' "x$r" "${R[$r.entities]}" "${R[$r.rows]}" \
			"$(echo "${R[$r.copy_ms]} / 1000" | bc -l)" "$name" "$rs" "$(echo "$rs * 1000 / ${R[$r.copy_ms]}" | bc -l)" \
			"$(echo "$rs * 1000000 / ${R[$r.entities]}" | bc -l)" "${R[$r.$name.rss]}"
	done
done
echo "  restore s = sum of the worker's per-partition restore times (median of $runs runs);"
echo "  ratio = restore / COPY of the same rows (median of $runs); peak RSS = the restoring worker's getrusage"
echo
printf 'rebalances at x%s (%s entities), two workers; seconds to caught up (ratio to COPY), partitions restored (restore s)\n' \
	"$r" "${R[$r.entities]}"
printf '%-7s %-26s %-26s %-26s\n' binary "leave (B stops)" "flap (B joins, killed)" "return (B starts)"
for b in "${bins[@]}"; do
	name=${b%%=*}
	row=()
	for s in leave flap return; do
		row+=("$(printf '%6.1f (%5.1f) %4s (%5.1f)' "${R[$name.$s.s]}" \
			"$(echo "${R[$name.$s.s]} * 1000 / ${R[$r.copy_ms]}" | bc -l)" "${R[$name.$s.restored]}" \
			"${R[$name.$s.restore_s]}")")
	done
	printf '%-7s %-26s %-26s %-26s\n' "$name" "${row[@]}"
done
echo "  of ${partitions}x3 partitions; flap includes the 6 s session timeout before the group notices"
