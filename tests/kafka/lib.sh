# shellcheck shell=bash
# lib.sh: shell helpers shared by broker.sh and the test scripts that start
# Kafka-protocol clusters: the mock cluster (qs-mockcluster, fast tier) and
# the real broker (broker.sh, integration and fault tiers). Source it; it
# sets no shell options of its own and defines only qs_* names.
#
#   qs_mock_start DIR [topic:partitions]...  -> prints bootstrap; DIR/mock.pid
#   qs_mock_stop DIR
#   qs_broker_start DIR [topic:partitions]... -> prints bootstrap (broker.sh start)
#   qs_broker_stop DIR | qs_broker_restart DIR
#   qs_free_ports N                          -> N free loopback ports, one a line

QS_KAFKA_DIR=${QS_KAFKA_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)}
# The Debian python3 carries python3-confluent-kafka; a pyenv python3 earlier
# on PATH does not.
QS_PYTHON=${QS_PYTHON:-/usr/bin/python3}

qs_log() { printf '%s: %s\n' "${0##*/}" "$*" >&2; }
qs_die() {
	qs_log "$*"
	exit 1
}

# True while PID is a live process. A zombie counts as gone: the broker is
# detached and reparented to an init that may not reap it, and kill -0
# succeeds on a zombie forever.
qs_pid_running() {
	local stat state
	[[ $1 =~ ^[0-9]+$ ]] || return 1
	stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
	state=${stat##*) }
	[[ ${state:0:1} != Z ]]
}

# Waits up to $2 whole seconds for PID $1 to exit.
qs_wait_exit() {
	local pid=$1 deadline=$((SECONDS + $2))
	while qs_pid_running "$pid"; do
		((SECONDS < deadline)) || return 1
		sleep 0.1
	done
}

# Prints N distinct loopback ports that are free now. They are drawn below
# the kernel's ephemeral range, so no client's outgoing connection can take
# one while a broker restarts on the same port.
qs_free_ports() {
	"$QS_PYTHON" - "$1" <<'EOF'
import random, socket, sys
want = int(sys.argv[1])
with open('/proc/sys/net/ipv4/ip_local_port_range') as f:
    low = int(f.read().split()[0])
hi = min(low, 32768) - 1
picked = []
for _ in range(1000):
    port = random.randint(10000, hi)
    if port in picked:
        continue
    s = socket.socket()
    try:
        s.bind(('127.0.0.1', port))
    except OSError:
        continue
    finally:
        s.close()
    picked.append(port)
    if len(picked) == want:
        break
else:
    sys.exit('no free loopback ports found')
print('\n'.join(map(str, picked)))
EOF
}

# Starts qs-mockcluster (binary: $QS_MOCKCLUSTER, else qs-mockcluster on
# PATH) in the background with the given topics, records DIR/mock.pid and
# DIR/bootstrap, and prints the bootstrap servers. Fails if the cluster does
# not come up within 10 s.
qs_mock_start() {
	local dir=$1 bin=${QS_MOCKCLUSTER:-qs-mockcluster} pid i args=()
	shift
	mkdir -p "$dir"
	rm -f "$dir/bootstrap"
	for i in "$@"; do args+=(-t "$i"); done
	# A plain background job, not setsid: $! is then the cluster itself, and
	# whatever ends the runner's process group (timeout, CI) ends it too.
	"$bin" "${args[@]}" -f "$dir/bootstrap" >/dev/null 2>>"$dir/mock.log" </dev/null &
	pid=$!
	echo "$pid" >"$dir/mock.pid"
	# The file appears atomically once every topic exists.
	for ((i = 0; i < 200; i++)); do
		if [[ -s $dir/bootstrap ]]; then
			cat "$dir/bootstrap"
			return 0
		fi
		qs_pid_running "$pid" || break
		sleep 0.05
	done
	qs_log "qs-mockcluster did not start; its log:"
	tail -n 20 "$dir/mock.log" >&2 || true
	qs_mock_stop "$dir" || true
	return 1
}

# Stops the cluster started by qs_mock_start in DIR (SIGTERM, then SIGKILL
# after 10 s). Succeeds if none is running.
qs_mock_stop() {
	local dir=$1 pid
	[[ -f $dir/mock.pid ]] || return 0
	pid=$(<"$dir/mock.pid")
	if qs_pid_running "$pid"; then
		kill -TERM "$pid" 2>/dev/null || true
		if ! qs_wait_exit "$pid" 10; then
			qs_log "qs-mockcluster $pid ignored SIGTERM; killing it"
			kill -KILL "$pid" 2>/dev/null || true
			qs_wait_exit "$pid" 5 || return 1
		fi
	fi
	rm -f "$dir/mock.pid"
}

qs_broker_start() { "$QS_KAFKA_DIR/broker.sh" start "$@"; }
qs_broker_stop() { "$QS_KAFKA_DIR/broker.sh" stop "$@"; }
qs_broker_restart() { "$QS_KAFKA_DIR/broker.sh" restart "$@"; }
