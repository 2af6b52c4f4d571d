# shellcheck shell=bash disable=SC2154 # the variables below are the caller's
# tests/bench/lib.sh: what the benchmark scripts share. Sourcing it sets root
# (the repository) and py (Debian's python3, or $QS_PYTHON) and brings in the
# PostgreSQL and Kafka helpers. The scripts set build, keep, work (their work
# directory), pg_dir and clusters_started (mock and/or real, as they start
# them) before calling the functions below.

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
# shellcheck disable=SC2034 # used by the scripts that source this
py=${QS_PYTHON:-/usr/bin/python3}
# shellcheck source=../../deploy/lib.sh source-path=SCRIPTDIR
. "$root/deploy/lib.sh"
# shellcheck source=../kafka/lib.sh source-path=SCRIPTDIR
. "$root/tests/kafka/lib.sh"

say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

# Builds the given CMake targets into $build (RelWithDebInfo); on failure
# prints the end of $work/build.log and exits 1.
bench_build() {
	say "building into $build"
	{
		cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo &&
			cmake --build "$build" -j"$(nproc)" --target "$@"
	} >"$work/build.log" 2>&1 || {
		tail -n 40 "$work/build.log" >&2
		exit 1
	}
}

# Starts the mock cluster ($work/mock) or a real broker ($work/broker) with the
# given topic:partitions specs, records it in clusters_started for
# bench_finish, and sets bs (the caller's local) to its bootstrap servers.
# shellcheck disable=SC2034
bench_start_cluster() {
	local kind=$1
	shift
	clusters_started+=("$kind")
	if [[ $kind == mock ]]; then
		bs=$(qs_mock_start "$work/mock" "$@")
	else
		"$root/tests/kafka/broker.sh" fetch
		bs=$(qs_broker_start "$work/broker" "$@")
	fi
}

# bench_start_histories KIND PARTITIONS PREFIX SIZE...: bench_start_cluster
# with the three input topics of each history PREFIX<SIZE> (a dot in SIZE
# becomes _), PARTITIONS each, and the two outbox topics.
bench_start_histories() {
	local kind=$1 partitions=$2 prefix=$3 n t
	shift 3
	local specs=()
	for n in "$@"; do
		for t in encounters deliveries member-events; do specs+=("$prefix${n//./_}.$t:$partitions"); done
	done
	specs+=(qualstream-dead-letters:1 qualstream-alerts:1)
	say "starting the $kind cluster (${#specs[@]} topics, $partitions partitions per input topic)"
	bench_start_cluster "$kind" "${specs[@]}"
}

# The end of an EXIT trap: stops every cluster started and PostgreSQL, keeps
# the work directory with --keep or after a failure (else deletes it), and
# exits with rc.
# shellcheck disable=SC2317 # called from EXIT traps
bench_finish() {
	local rc=$1 c
	set +e
	for c in "${clusters_started[@]}"; do
		[[ -n $c ]] || continue
		if [[ $c == mock ]]; then qs_mock_stop "$work/mock"; else qs_broker_stop "$work/broker" >/dev/null 2>&1; fi
	done
	qs_pg_stop "$pg_dir"
	if $keep || ((rc != 0)); then
		echo "work directory kept: $work" >&2
	else
		rm -rf "$work"
	fi
	exit "$rc"
}
