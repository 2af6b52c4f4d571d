#!/usr/bin/env bash
# tests/tools/pg_fixture.sh start|run|stop STATE [CMD...]: the private PostgreSQL
# behind ctest's `pg` fixture (CMakeLists.txt), started by the same deploy/lib.sh
# helper as tests/run.sh's, so a plain `ctest` runs test_pgsink against a real
# server. STATE is a file that records where the server lives between the calls.
#   start  a server in a fresh directory under /tmp (stopping one STATE still names)
#   run    CMD with QS_PG_DSN set to that server
#   stop   the server, and removes its directory and STATE
set -euo pipefail
# shellcheck source=../../deploy/lib.sh
source "$(dirname "$0")/../../deploy/lib.sh"

[ $# -ge 2 ] || { echo "usage: $0 start|run|stop STATE [CMD...]" >&2; exit 2; }
action=$1 state=$2
shift 2

stop() {
	[ -f "$state" ] || return 0
	local old
	old=$(sed -n 's/^dir=//p' "$state")
	qs_pg_stop "$old/data"
	rm -rf "$old" "$state"
}

case $action in
start)
	stop
	dir=$(mktemp -d /tmp/qs-ctest-pg.XXXXXX)
	chmod 755 "$dir" # initdb runs as postgres when we are root
	qs_pg_start "$dir/data"
	printf 'dir=%s\ndsn=%s\n' "$dir" "$QS_PG_DSN" >"$state"
	echo "PostgreSQL for ctest: $QS_PG_DSN (log $dir/data/server.log)"
	;;
run)
	QS_PG_DSN=$(sed -n 's/^dsn=//p' "$state")
	export QS_PG_DSN
	exec "$@"
	;;
stop)
	stop
	;;
*)
	echo "usage: $0 start|run|stop STATE [CMD...]" >&2
	exit 2
	;;
esac
