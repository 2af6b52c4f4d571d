#!/usr/bin/env bash
# broker.sh: a real single-node Apache Kafka broker (KRaft, broker and
# controller in one JVM) on loopback, for the integration and fault tests.
# The fast tier uses qs-mockcluster instead; this one exists for what the
# mock fakes: durable logs, restarts, real group and transaction
# coordinators.
#
#   broker.sh fetch                            resolve the broker's jars (cached)
#   broker.sh start DIR [topic:partitions]...  format DIR, start, create topics,
#                                              print the bootstrap (host:port)
#   broker.sh stop DIR                         SIGTERM, SIGKILL after a timeout
#   broker.sh restart DIR                      stop, start again on the same data
#                                              and ports, wait until it answers
#
# DIR holds server.properties, data/, broker.log, broker.pid and bootstrap.
# Only the bootstrap goes to stdout; progress and errors go to stderr.
#
# Environment: QS_KAFKA_CACHE (jar cache, default
# ${XDG_CACHE_HOME:-~/.cache}/qualstream/kafka-<version>), JAVA (java),
# QS_KAFKA_HEAP (512m), QS_KAFKA_START_TIMEOUT (90 s), QS_KAFKA_STOP_TIMEOUT
# (30 s), QS_PYTHON (/usr/bin/python3), MVN (mvn).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=lib.sh source-path=SCRIPTDIR
. "$here/lib.sh"

pom=$here/pom.xml
# The version lives in the pom alone; the cache directory is named after it
# so two versions never share jars.
kafka_version=$(sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' "$pom")
[[ -n $kafka_version ]] || qs_die "$pom: no <kafka.version>"
cache=${QS_KAFKA_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/qualstream/kafka-$kafka_version}
libs=$cache/libs
java=${JAVA:-java}
mvn=${MVN:-mvn}
heap=${QS_KAFKA_HEAP:-512m}
start_timeout=${QS_KAFKA_START_TIMEOUT:-90}
stop_timeout=${QS_KAFKA_STOP_TIMEOUT:-30}

usage() {
	sed -n '/^#   broker.sh fetch/,/^# DIR holds/s/^# \{0,1\}//p' "${BASH_SOURCE[0]}" >&2
	exit 2
}

# A test broker lives for seconds to minutes: the optimising JIT and a
# parallel collector would spend the two cores on compiling and GC threads
# that the tests need, and slow start-up. QS_KAFKA_JVM_OPTS replaces these
# (e.g. for a benchmark that wants C2).
read -r -a jvm_opts <<<"${QS_KAFKA_JVM_OPTS:--XX:+UseSerialGC -XX:TieredStopAtLevel=1}"

# The jars are complete when libs/.stamp holds the pom's hash: the copy goes
# to a temporary directory renamed into place, so an interrupted fetch
# leaves no half-filled libs/ behind, and a changed pom fetches anew.
fetch() {
	local want tmp
	want=$(sha256sum "$pom" | cut -d' ' -f1)
	if [[ -f $libs/.stamp && $(<"$libs/.stamp") == "$want" ]]; then
		return 0
	fi
	mkdir -p "$cache"
	# Parallel test jobs may fetch at once; one copies, the others wait.
	exec 9>"$cache/.lock"
	flock -w 900 9 || qs_die "timed out waiting for $cache/.lock"
	if [[ -f $libs/.stamp && $(<"$libs/.stamp") == "$want" ]]; then
		exec 9>&-
		return 0
	fi
	qs_log "fetching Apache Kafka $kafka_version jars into $libs"
	tmp=$(mktemp -d "$cache/libs.tmp.XXXXXX")
	# Maven 3.8 prints colour resets even in batch mode, so its output goes
	# to a log that is shown only when it fails.
	# Three tries: a passing network fault should not fail a whole test run;
	# what Maven already downloaded stays in ~/.m2 between tries.
	local try
	for try in 1 2 3; do
		"$mvn" -B -q -f "$pom" dependency:copy-dependencies \
			-DincludeScope=runtime -DoutputDirectory="$tmp" >"$cache/mvn.log" 2>&1 && break
		if ((try == 3)); then
			rm -rf "$tmp"
			sed 's/\x1b\[[0-9;]*m//g' "$cache/mvn.log" >&2
			qs_die "mvn could not resolve the broker's jars (see above)"
		fi
		qs_log "mvn failed (try $try of 3); retrying in $((try * 10)) s"
		sleep $((try * 10))
	done
	echo "$want" >"$tmp/.stamp"
	rm -rf "$libs"
	mv "$tmp" "$libs"
	exec 9>&-
}

# Prints the pid recorded in DIR if it is still that broker's JVM. Checking
# the command line keeps a recycled pid from being signalled.
broker_pid() {
	local dir=$1 pid cmdline
	[[ -f $dir/broker.pid ]] || return 1
	pid=$(<"$dir/broker.pid")
	qs_pid_running "$pid" || return 1
	cmdline=$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null) || return 1
	[[ $cmdline == *" kafka.Kafka $dir/server.properties"* ]] || return 1
	echo "$pid"
}

# Talks to the broker with the librdkafka AdminClient in one interpreter:
#   ready BOOTSTRAP PID TIMEOUT  wait until the broker answers metadata and
#                                every partition it knows has a leader
#   create BOOTSTRAP topic:partitions...
# Exits 3 if PID dies while waiting, 1 on timeout or failure.
admin() {
	"$QS_PYTHON" - "$@" <<'EOF'
import signal, sys, time
from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient, NewTopic

# A Ctrl-C ends this helper quietly; broker.sh's trap does the cleanup.
signal.signal(signal.SIGINT, signal.SIG_DFL)

def alive(pid):
    try:
        with open(f'/proc/{pid}/stat') as f:
            return f.read().rsplit(')', 1)[1].split()[0] != 'Z'
    except OSError:
        return False

def unled(md, topics=None):
    out = []
    for name, t in md.topics.items():
        if topics is not None and name not in topics:
            continue
        if t.error is not None or not t.partitions:
            out.append(name)
        out += [f'{name}[{p}]' for p, pm in t.partitions.items() if pm.leader < 0 or pm.error]
    return out

cmd, bs = sys.argv[1], sys.argv[2]
# log_level 0: connection-refused noise while the JVM boots is expected.
admin = AdminClient({'bootstrap.servers': bs, 'log_level': 0, 'socket.connection.setup.timeout.ms': 1000})
if cmd == 'ready':
    pid, deadline = int(sys.argv[3]), time.monotonic() + float(sys.argv[4])
    why = 'no answer'
    while time.monotonic() < deadline:
        if not alive(pid):
            sys.exit(3)
        try:
            md = admin.list_topics(timeout=1)
            missing = unled(md)
            if md.brokers and not missing:
                sys.exit(0)
            why = f'partitions without a leader: {missing[:5]}' if md.brokers else 'no brokers in metadata'
        except KafkaException as e:
            why = str(e)
        time.sleep(0.1)
    print(f'broker.sh: not ready after {sys.argv[4]} s: {why}', file=sys.stderr)
    sys.exit(1)
elif cmd == 'create':
    specs = [a.rsplit(':', 1) for a in sys.argv[3:]]
    futs = admin.create_topics([NewTopic(n, int(p), 1) for n, p in specs], operation_timeout=30)
    for name, fut in futs.items():
        try:
            fut.result()
        except KafkaException as e:
            sys.exit(f'broker.sh: create topic {name}: {e}')
    # CreateTopics returns once the controller has the topics; wait until
    # metadata shows every partition led, so the first produce does not
    # meet UNKNOWN_TOPIC_OR_PART.
    names = {n for n, _ in specs}
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        md = admin.list_topics(timeout=2)
        if names <= set(md.topics) and not unled(md, names):
            sys.exit(0)
        time.sleep(0.05)
    sys.exit('broker.sh: topics have no leaders after 30 s')
EOF
}

# Starts the JVM on DIR's existing configuration and data, records its pid
# and waits until it answers. On failure it stops the JVM, prints the tail of
# the log, and exits non-zero.
launch() {
	local dir=$1 pid rc=0
	# The JVM is a background job, so it ignores the SIGINT of a Ctrl-C;
	# without this trap an interrupted start would leave it running.
	trap 'stop "$dir" >/dev/null 2>&1; exit 130' INT TERM
	printf '\n===== broker.sh: launch %s =====\n' "$(date -u +%FT%TZ)" >>"$dir/broker.log"
	"$java" -Xms"$heap" -Xmx"$heap" "${jvm_opts[@]}" -XX:+ExitOnOutOfMemoryError -Djava.awt.headless=true \
		-Dlog4j.configuration="file:$dir/log4j.properties" \
		-cp "$libs/*" kafka.Kafka "$dir/server.properties" \
		>>"$dir/broker.log" 2>&1 </dev/null &
	pid=$!
	echo "$pid" >"$dir/broker.pid"
	admin ready "$(<"$dir/bootstrap")" "$pid" "$start_timeout" || rc=$?
	if ((rc != 0)); then
		((rc == 3)) && qs_log "the broker JVM exited during start-up"
		fail_start "$dir"
	fi
	trap - INT TERM
}

fail_start() {
	local dir=$1
	qs_log "broker in $dir failed to start; last lines of $dir/broker.log:"
	tail -n 40 "$dir/broker.log" >&2 || true
	stop "$dir" >/dev/null 2>&1 || true
	exit 1
}

# Fails early and plainly when a tool is missing, rather than as a broker
# that "did not start".
preflight() {
	command -v "$java" >/dev/null || qs_die "no '$java' on PATH (set JAVA)"
	"$QS_PYTHON" -c 'import confluent_kafka.admin' 2>/dev/null ||
		qs_die "$QS_PYTHON cannot import confluent_kafka (set QS_PYTHON, or apt-get install python3-confluent-kafka)"
}

start() {
	local dir t port cport cluster_id ports
	[[ $# -ge 1 ]] || usage
	dir=$(realpath -m "$1")
	shift
	for t in "$@"; do
		[[ $t =~ ^[A-Za-z0-9._-]{1,249}:[1-9][0-9]{0,4}$ ]] || qs_die "bad topic spec '$t' (want name:partitions)"
	done
	if broker_pid "$dir" >/dev/null; then
		qs_die "a broker is already running in $dir"
	fi
	# start formats a new node; an old one comes back with restart.
	[[ ! -e $dir/data/meta.properties ]] || qs_die "$dir already holds a formatted node: use restart, or remove it"
	preflight
	fetch
	mkdir -p "$dir/data"

	mapfile -t ports < <(qs_free_ports 2)
	((${#ports[@]} == 2)) || qs_die "no free loopback ports"
	port=${ports[0]} cport=${ports[1]}

	# Replication factors of 1 because there is one node; one partition for
	# the internal topics because the default 50 cost seconds on the first
	# group join; no initial rebalance delay so a test's group forms at once.
	cat >"$dir/server.properties" <<EOF
# Written by tests/kafka/broker.sh: a single-node KRaft test broker.
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$cport
listeners=PLAINTEXT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$cport
advertised.listeners=PLAINTEXT://127.0.0.1:$port
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
inter.broker.listener.name=PLAINTEXT
controller.listener.names=CONTROLLER
log.dirs=$dir/data
auto.create.topics.enable=false
num.partitions=1
default.replication.factor=1
offsets.topic.replication.factor=1
offsets.topic.num.partitions=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=1
group.initial.rebalance.delay.ms=0
EOF
	# One stream: log4j writes to stdout, which launch appends to broker.log
	# together with anything the JVM itself prints (crashes, OOM).
	cat >"$dir/log4j.properties" <<'EOF'
log4j.rootLogger=INFO, stdout
log4j.appender.stdout=org.apache.log4j.ConsoleAppender
log4j.appender.stdout.layout=org.apache.log4j.PatternLayout
log4j.appender.stdout.layout.ConversionPattern=[%d] %p %m (%c)%n
log4j.logger.kafka.request.logger=WARN
# The full config dump (300 lines per start) would bury the start-up error
# that a failing test prints from the log's tail; server.properties is here.
log4j.logger.kafka.server.KafkaConfig=WARN
log4j.logger.org.apache.kafka.clients.NetworkClient=WARN
EOF
	echo "127.0.0.1:$port" >"$dir/bootstrap"

	# A Kafka Uuid is 16 random bytes in unpadded URL-safe base64; Kafka's
	# own generator also avoids a leading '-', which tools read as an option.
	# Made here, because `StorageTool random-uuid` costs a JVM start.
	cluster_id=$("$QS_PYTHON" -c '
import base64, uuid
while True:
    s = base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode()
    if not s.startswith("-"):
        print(s)
        break')
	: >"$dir/broker.log"
	if ! "$java" "${jvm_opts[@]}" -Dlog4j.configuration="file:$dir/log4j.properties" \
		-cp "$libs/*" kafka.tools.StorageTool format -t "$cluster_id" \
		-c "$dir/server.properties" >>"$dir/broker.log" 2>&1; then
		fail_start "$dir"
	fi
	launch "$dir"
	if (($# > 0)) && ! admin create "$(<"$dir/bootstrap")" "$@"; then
		fail_start "$dir"
	fi
	cat "$dir/bootstrap"
}

stop() {
	local dir pid
	[[ $# -eq 1 ]] || usage
	dir=$(realpath -m "$1")
	if ! pid=$(broker_pid "$dir"); then
		rm -f "$dir/broker.pid"
		return 0
	fi
	kill -TERM "$pid" 2>/dev/null || true
	# SIGTERM runs Kafka's controlled shutdown, which flushes the logs and
	# writes a clean-shutdown marker, so the restart skips log recovery.
	if ! qs_wait_exit "$pid" "$stop_timeout"; then
		qs_log "broker $pid still running after ${stop_timeout}s; sending SIGKILL"
		kill -KILL "$pid" 2>/dev/null || true
		qs_wait_exit "$pid" 10 || qs_die "broker $pid survived SIGKILL"
	fi
	rm -f "$dir/broker.pid"
}

restart() {
	local dir
	[[ $# -eq 1 ]] || usage
	dir=$(realpath -m "$1")
	[[ -f $dir/data/meta.properties && -f $dir/server.properties ]] ||
		qs_die "$dir holds no formatted node: use start"
	preflight
	stop "$dir"
	fetch
	# The same server.properties, so the same ports and data; clients keep
	# their bootstrap and reconnect.
	launch "$dir"
	cat "$dir/bootstrap"
}

(($# >= 1)) || usage
cmd=$1
shift
case $cmd in
fetch)
	(($# == 0)) || usage
	fetch
	;;
start | stop | restart) "$cmd" "$@" ;;
*) usage ;;
esac
