#!/usr/bin/env bash
# tests/bench/all.sh: every benchmark of issue 11 in one command, one after
# the other (each starts and stops its own servers and prints its own table;
# README.md here explains each figure):
#   run.sh --real           end to end against kcat and a plain COPY (4a), hot path (3), memory (2)
#   incremental.sh          incremental against a batch SQL recount at 1, 5, 20 M (4b), the 20 M run (4d)
#   rebalance.sh            restore at 1 and 5 M entities (4c), rebalances (5)
#   sink_candidates.sh      the entity-persistence candidates (1)
# About 50 minutes on 2 cores. --quick runs each on a small stream (about 4
# minutes) to check that they all work. The exit status is the first failure's.
#
#   tests/bench/all.sh [--quick]
set -uo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
quick=false
case ${1:-} in
--quick) quick=true ;;
"") ;;
*)
	echo "all.sh: unknown argument $1 (usage: tests/bench/all.sh [--quick])" >&2
	exit 2
	;;
esac
rc=0
# bench NAME ARGS...: runs one benchmark, keeps the first failure's status.
bench() {
	printf '\033[1m==> tests/bench/%s\033[0m\n' "$*" >&2
	"$here/$@" || { r=$? && ((rc == 0)) && rc=$r; }
}
if $quick; then
	bench run.sh --replicas 2
	bench incremental.sh --sizes 0.1 --runs 1 --flush-ms 100
	bench rebalance.sh --sizes 2 --runs 1
	bench sink_candidates.sh --replicas 2 --rounds 1
else
	bench run.sh --real
	bench incremental.sh
	bench rebalance.sh
	bench sink_candidates.sh
fi
exit $rc
