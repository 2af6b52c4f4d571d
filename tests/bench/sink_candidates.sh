#!/usr/bin/env bash
# tests/bench/sink_candidates.sh: measures how the worker could persist its
# entities (README.md here, "Entity persistence: the candidates"), each as a
# ratio to a plain COPY of the same rows in the same run. Starts a private
# PostgreSQL (deploy/lib.sh, default durability), runs sink_candidates.py
# against it, stops it on exit. Arguments go to sink_candidates.py
# (--scale, --replicas, --partitions, --flush, --rounds, --candidates).
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=lib.sh source-path=SCRIPTDIR
. "$here/lib.sh"
work=$(mktemp -d /tmp/qs-sink-bench.XXXXXX)
chmod 755 "$work"
pg_dir=$work/pg
trap 'qs_pg_stop "$pg_dir"; rm -rf "$work"' EXIT
trap 'exit 130' INT TERM
qs_pg_start "$pg_dir"
"$py" "$here/sink_candidates.py" --dsn "$QS_PG_DSN" "$@"
