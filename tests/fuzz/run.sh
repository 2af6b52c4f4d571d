#!/usr/bin/env bash
# tests/fuzz/run.sh TARGET SECONDS: builds the libFuzzer targets (clang,
# build-fuzz/, once) and runs TARGET (fuzz_message, fuzz_schema, ...) for
# SECONDS on its committed seeds plus the corpus grown by earlier runs.
# Fails on any crash, sanitizer report, leak, input slower than 2 s or memory
# over 2 GB; the input is kept under build-fuzz/artifacts/TARGET/. Ends with
# one line "TARGET: 1 passed in Ns" or "TARGET: 1 failed in Ns", which
# tests/run.sh counts. QS_FUZZ_ARGS adds libFuzzer flags (e.g. -jobs=2).
set -euo pipefail
cd "$(dirname "$0")/../.."
target=${1:?usage: tests/fuzz/run.sh TARGET SECONDS}
seconds=${2:?usage: tests/fuzz/run.sh TARGET SECONDS}
[ -f "tests/fuzz/$target.c" ] || { echo "no fuzz target tests/fuzz/$target.c" >&2; exit 2; }
build=${QS_FUZZ_BUILD:-build-fuzz}
if [ ! -f "$build/CMakeCache.txt" ]; then
	CC=clang cmake -S . -B "$build" -DQS_FUZZ=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
fi
cmake --build "$build" -j"$(nproc)" --target "$target" >/dev/null

grown=$build/corpus/$target
artifacts=$build/artifacts/$target
mkdir -p "$grown" "$artifacts" "tests/fuzz/corpus/$target"
dict=()
[ -f "tests/fuzz/$target.dict" ] && dict=(-dict="tests/fuzz/$target.dict")
start=$SECONDS
rc=0
# The first corpus directory receives new inputs; the committed one is read only.
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	LSAN_OPTIONS=suppressions=$PWD/tests/fuzz/lsan.supp \
	"$build/$target" -max_total_time="$seconds" -timeout=2 -rss_limit_mb=2048 -max_len=65536 \
	-print_final_stats=1 -artifact_prefix="$artifacts/" "${dict[@]}" ${QS_FUZZ_ARGS:-} \
	"$grown" "tests/fuzz/corpus/$target" || rc=$?
if [ "$rc" -eq 0 ]; then
	echo "$target: 1 passed in $((SECONDS - start))s"
else
	echo "$target: 1 failed in $((SECONDS - start))s (exit $rc; inputs in $artifacts)"
fi
exit "$rc"
