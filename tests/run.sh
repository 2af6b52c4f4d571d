#!/usr/bin/env bash
# usage: tests/run.sh [-k EXPR] [--keep] [-h|--help]
#
# Builds qualstream and runs the test suite on this machine, tier by tier
# (QS_TEST_TIERS, default "unit asan oracle mock real fuzz"):
#   unit    the Check suites, built with -Werror, against a private PostgreSQL
#           this script starts; and the module table of docs/architecture.md
#           checked against every #include (tests/test_layers.py);
#   asan    the same under AddressSanitizer and UndefinedBehaviorSanitizer;
#   oracle  the oracle's self-check (the second implementation the integration
#           tests trust);
#   mock    integration and fault tests (pytest) on librdkafka's mock cluster;
#   real    the same tests on a real Apache Kafka broker (KRaft, Maven jars);
#   fuzz    each libFuzzer target tests/fuzz/fuzz_*.c for QS_FUZZ_SECONDS (60).
#
#   -k EXPR  only the tests that match EXPR, read as pytest -k reads it (words
#            matched as case-insensitive substrings, with and, or, not and
#            parentheses): against <module>.<function> in the Check tiers
#            (config.secret_keys_are_registered), against pytest's names in the
#            pytest tiers; the fuzz tier runs the targets whose name holds EXPR.
#            A tier in which nothing matches is skipped, not failed.
#   --keep   keep the work directory: every tier's log, the workers' logs under
#            pytest-<tier>/, the PostgreSQL data directory pg/ and its
#            server.log; its path is printed at the start and at the end.
#
# Installs missing Debian packages when run as root. Ends with one line
# "tests: N passed, M failed" and exits non-zero if anything failed.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=../deploy/lib.sh
source deploy/lib.sh

QS_PY=/usr/bin/python3 # Debian's python: it has python3-avro and python3-confluent-kafka
tiers=${QS_TEST_TIERS:-"unit asan oracle mock real fuzz"}
expr=
keep=false
while [ $# -gt 0 ]; do
	case $1 in
	-k)
		[ $# -ge 2 ] || { echo "tests/run.sh: -k needs an expression" >&2; exit 2; }
		expr=$2
		shift
		;;
	--keep) keep=true ;;
	-h | --help)
		sed -n '2,/^[^#]/s/^# \{0,1\}//p' "$0"
		exit 0
		;;
	*)
		echo "tests/run.sh: unknown argument $1 (see tests/run.sh --help)" >&2
		exit 2
		;;
	esac
	shift
done
passed=0
failed=0
work=$(mktemp -d /tmp/qs-tests.XXXXXX)
chmod 755 "$work"
$keep && qs_log "keeping the work directory $work"

cleanup() {
	set +e
	[ -n "${mock_pid:-}" ] && kill "$mock_pid" 2>/dev/null && wait "$mock_pid" 2>/dev/null
	[ -d "$work/kafka" ] && tests/kafka/broker.sh stop "$work/kafka" >/dev/null 2>&1
	qs_pg_stop "$work/pg"
	$keep || rm -rf "$work"
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

# selects TIER CMD...: false, saying the tier is skipped, when -k leaves it nothing to run: CMD (a Check
# runner's --list, a pytest --collect-only) lists nothing, or is pytest's "no tests collected" (5). When CMD
# fails otherwise (a bad expression, a module that does not import), the tier runs and reports that.
selects() {
	local tier=$1 rc=0
	shift
	[ -z "$expr" ] && return 0
	"$@" >"$work/$tier.selected" 2>&1 || rc=$?
	if [ $rc -eq 5 ] || { [ $rc -eq 0 ] && ! grep -q . "$work/$tier.selected"; }; then
		qs_log "$tier: no test matches -k $expr, skipped"
		return 1
	fi
}

# The tests a Check runner or pytest runs: all of them, or those -k selects.
check_args=()
pytest_args=(-q -p no:cacheprovider)
if [ -n "$expr" ]; then
	check_args=(-k "$expr")
	pytest_args+=(-k "$expr")
fi

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
		if selects unit build-test/check_qualstream --list "${check_args[@]}"; then
			stage unit build-test/check_qualstream "${check_args[@]}"
		fi
		# The module table of docs/architecture.md against every #include (no build needed).
		if selects layers "$QS_PY" -m pytest --collect-only "${pytest_args[@]}" tests/test_layers.py; then
			stage layers "$QS_PY" -m pytest "${pytest_args[@]}" tests/test_layers.py
		fi
		;;
	asan)
		selects asan build-test/check_qualstream --list "${check_args[@]}" || continue
		qs_log "building with AddressSanitizer and UndefinedBehaviorSanitizer"
		qs_build build-asan -DQS_WERROR=ON -DQS_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug
		ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
			CK_FORK=no stage asan build-asan/check_qualstream "${check_args[@]}"
		;;
	oracle)
		selects oracle "$QS_PY" -m pytest --collect-only "${pytest_args[@]}" tests/tools || continue
		stage oracle "$QS_PY" -m pytest "${pytest_args[@]}" --basetemp "$work/pytest-oracle" tests/tools
		;;
	mock)
		selects mock "$QS_PY" -m pytest --collect-only "${pytest_args[@]}" -m "not real_only" tests/integration ||
			continue
		build-test/qs-mockcluster -b 3 -f "$work/mock.bootstrap" >"$work/mock.log" 2>&1 &
		mock_pid=$!
		for _ in $(seq 100); do [ -s "$work/mock.bootstrap" ] && break; sleep 0.1; done
		QS_TEST_KAFKA=mock QS_BOOTSTRAP=$(cat "$work/mock.bootstrap") \
			stage mock "$QS_PY" -m pytest "${pytest_args[@]}" --basetemp "$work/pytest-mock" -m "not real_only" \
			tests/integration
		kill "$mock_pid" && wait "$mock_pid" || true
		mock_pid=
		;;
	real)
		selects real "$QS_PY" -m pytest --collect-only "${pytest_args[@]}" tests/integration || continue
		tests/kafka/broker.sh fetch
		tests/kafka/broker.sh start "$work/kafka" >/dev/null
		QS_TEST_KAFKA=real QS_BOOTSTRAP=$(cat "$work/kafka/bootstrap") QS_BROKER_DIR="$work/kafka" \
			stage real "$QS_PY" -m pytest "${pytest_args[@]}" --basetemp "$work/pytest-real" tests/integration
		tests/kafka/broker.sh stop "$work/kafka" >/dev/null
		;;
	fuzz)
		# One stage per target, so a new tests/fuzz/fuzz_*.c runs with no edit here.
		ran=false
		for src in tests/fuzz/fuzz_*.c; do
			target=$(basename "$src" .c)
			[ -z "$expr" ] || [[ $target == *"$expr"* ]] || continue
			stage "$target" tests/fuzz/run.sh "$target" "${QS_FUZZ_SECONDS:-60}"
			ran=true
		done
		$ran || qs_log "fuzz: no target matches -k $expr, skipped"
		;;
	*)
		echo "unknown tier $tier (tiers: unit asan oracle mock real fuzz)" >&2
		failed=$((failed + 1))
		;;
	esac
done

if $keep; then
	qs_log "kept the work directory $work"
elif [ "$failed" -ne 0 ]; then
	qs_log "the logs are removed at exit: rerun with --keep (and -k EXPR for the failures) to keep them"
fi
echo "tests: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
