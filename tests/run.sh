#!/usr/bin/env bash
# tests/run.sh: builds qualstream and runs the whole test suite on this machine:
#   1. unit suites (Check), built with -Werror, then again under ASan+UBSan,
#      against a private PostgreSQL this script starts;
#   2. the oracle's self-check (the second implementation the integration tests trust);
#   3. integration and fault tests (pytest) on librdkafka's mock cluster (fast tier);
#   4. the same tests on a real Apache Kafka broker (KRaft, jars from Maven Central);
#   5. each libFuzzer target tests/fuzz/fuzz_*.c for QS_FUZZ_SECONDS (60) on its corpus.
# Installs missing Debian packages when run as root. Prints one closing line
# "tests: N passed, M failed" and exits non-zero if anything failed.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=../deploy/lib.sh
source deploy/lib.sh

QS_PY=/usr/bin/python3 # Debian's python: it has python3-avro and python3-confluent-kafka
tiers=${QS_TEST_TIERS:-"unit asan oracle mock real fuzz"}
passed=0
failed=0
work=$(mktemp -d /tmp/qs-tests.XXXXXX)
chmod 755 "$work"

cleanup() {
	set +e
	[ -n "${mock_pid:-}" ] && kill "$mock_pid" 2>/dev/null && wait "$mock_pid" 2>/dev/null
	[ -d "$work/kafka" ] && tests/kafka/broker.sh stop "$work/kafka" >/dev/null 2>&1
	qs_pg_stop "$work/pg"
	rm -rf "$work"
}
trap cleanup EXIT

# count LOG: adds a Check or pytest summary in LOG to the totals.
count() {
	local log=$1 line p f e
	if line=$(grep -E '^[0-9]+%: Checks: ' "$log" | tail -n 1) && [ -n "$line" ]; then
		p=$(sed -E 's/.*Checks: ([0-9]+).*/\1/' <<<"$line")
		f=$(sed -E 's/.*Failures: ([0-9]+).*/\1/' <<<"$line")
		e=$(sed -E 's/.*Errors: ([0-9]+).*/\1/' <<<"$line")
		passed=$((passed + p - f - e))
		failed=$((failed + f + e))
	elif line=$(grep -E '[0-9]+ (passed|failed|errors?)\b.* in [0-9.]+s' "$log" | tail -n 1) && [ -n "$line" ]; then
		p=$(awk '{for (i = 2; i <= NF; i++) if ($i ~ /^passed,?$/) s += $(i - 1)} END {print s + 0}' <<<"$line")
		f=$(awk '{for (i = 2; i <= NF; i++) if ($i ~ /^(failed|errors?),?$/) s += $(i - 1)} END {print s + 0}' <<<"$line")
		passed=$((passed + p))
		failed=$((failed + f))
	else
		failed=$((failed + 1)) # a runner that printed no summary crashed
	fi
}

# stage NAME CMD...: runs a stage, shows its output, counts its results.
stage() {
	local name=$1
	shift
	qs_log "$name"
	local start=$SECONDS rc=0
	"$@" 2>&1 | tee "$work/$name.log" || rc=$?
	count "$work/$name.log"
	[ $rc -eq 0 ] || grep -qE 'Failures: [1-9]|Errors: [1-9]|failed|error' "$work/$name.log" || failed=$((failed + 1))
	qs_log "$name: $((SECONDS - start)) s"
}

extra_packages=()
[[ " $tiers " == *" real "* ]] && extra_packages+=(default-jre-headless maven)
[[ " $tiers " == *" fuzz "* ]] && extra_packages+=(clang libclang-rt-14-dev)
qs_install_packages "${extra_packages[@]}"

qs_log "building (warnings are errors)"
qs_build build-test -DQS_WERROR=ON
qs_pg_start "$work/pg"
export QS_BUILD="$QS_ROOT/build-test"

for tier in $tiers; do
	case $tier in
	unit)
		stage unit build-test/check_qualstream
		;;
	asan)
		qs_log "building with AddressSanitizer and UndefinedBehaviorSanitizer"
		qs_build build-asan -DQS_WERROR=ON -DQS_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug
		ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
			CK_FORK=no stage asan build-asan/check_qualstream
		;;
	oracle)
		stage oracle "$QS_PY" -m pytest -q -p no:cacheprovider tests/tools
		;;
	mock)
		build-test/qs-mockcluster -b 3 -f "$work/mock.bootstrap" >"$work/mock.log" 2>&1 &
		mock_pid=$!
		for _ in $(seq 100); do [ -s "$work/mock.bootstrap" ] && break; sleep 0.1; done
		QS_TEST_KAFKA=mock QS_BOOTSTRAP=$(cat "$work/mock.bootstrap") \
			stage mock "$QS_PY" -m pytest -q -p no:cacheprovider -m "not real_only" tests/integration
		kill "$mock_pid" && wait "$mock_pid" || true
		mock_pid=
		;;
	real)
		tests/kafka/broker.sh fetch
		tests/kafka/broker.sh start "$work/kafka" >/dev/null
		QS_TEST_KAFKA=real QS_BOOTSTRAP=$(cat "$work/kafka/bootstrap") QS_BROKER_DIR="$work/kafka" \
			stage real "$QS_PY" -m pytest -q -p no:cacheprovider tests/integration
		tests/kafka/broker.sh stop "$work/kafka" >/dev/null
		;;
	fuzz)
		# One stage per target, so a new tests/fuzz/fuzz_*.c runs with no edit here.
		for src in tests/fuzz/fuzz_*.c; do
			target=$(basename "$src" .c)
			stage "$target" tests/fuzz/run.sh "$target" "${QS_FUZZ_SECONDS:-60}"
		done
		;;
	*)
		echo "unknown tier $tier (tiers: unit asan oracle mock real fuzz)" >&2
		failed=$((failed + 1))
		;;
	esac
done

echo "tests: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
