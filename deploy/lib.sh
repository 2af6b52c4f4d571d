# deploy/lib.sh: shell functions shared by deploy/quickstart.sh and tests/run.sh,
# so that installing, building and starting the private PostgreSQL happen in
# one place. Source it; it defines functions and sets nothing else.

QS_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

# Debian packages the build, the quickstart and the tests need.
QS_PACKAGES=(build-essential cmake pkg-config librdkafka-dev libavro-dev libpq-dev libcurl4-openssl-dev
	libjansson-dev check libsubunit-dev postgresql python3 python3-avro python3-confluent-kafka
	python3-psycopg2 python3-pytest openssl)

qs_log() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

# Installs what is missing (as root), or says what to install.
qs_install_packages() {
	local missing=() p
	for p in "${QS_PACKAGES[@]}" "$@"; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
	done
	[ ${#missing[@]} -eq 0 ] && return 0
	if [ "$(id -u)" -ne 0 ]; then
		echo "missing Debian packages: ${missing[*]} (run as root, or: sudo apt-get install ${missing[*]})" >&2
		return 1
	fi
	qs_log "installing ${missing[*]}"
	DEBIAN_FRONTEND=noninteractive apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
}

# qs_build DIR [cmake args...]: configures and builds into DIR.
qs_build() {
	local dir=$1
	shift
	cmake -S "$QS_ROOT" -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo "$@" >/dev/null
	cmake --build "$dir" -j"$(nproc)" >/dev/null
}

# A free TCP port on the loopback interface.
qs_free_port() {
	python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# Runs a command as the owner of the PostgreSQL data directory: initdb refuses root.
qs_pg_as() {
	if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

qs_pg_bin() { ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1; }

# qs_pg_start DIR: a private PostgreSQL cluster in DIR on a free loopback port,
# trust authentication for local connections. Sets QS_PG_PORT and QS_PG_DSN.
qs_pg_start() {
	local dir=$1 bin
	bin=$(qs_pg_bin)
	mkdir -p "$dir"
	[ "$(id -u)" -eq 0 ] && chown postgres:postgres "$dir"
	if [ ! -f "$dir/PG_VERSION" ]; then
		qs_pg_as "$bin/initdb" -D "$dir" -U postgres -A trust --no-sync >/dev/null
	fi
	QS_PG_PORT=$(qs_free_port)
	# Durability settings are the defaults: the kill -9 tests rely on real commits.
	qs_pg_as "$bin/pg_ctl" -D "$dir" -l "$dir/server.log" -w -t 60 \
		-o "-p $QS_PG_PORT -k $dir -c listen_addresses=127.0.0.1 -c max_connections=200" start >/dev/null ||
		{ cat "$dir/server.log" >&2; return 1; }
	QS_PG_DSN="host=127.0.0.1 port=$QS_PG_PORT user=postgres dbname=postgres"
	export QS_PG_PORT QS_PG_DSN
}

qs_pg_stop() {
	local dir=$1
	[ -f "$dir/postmaster.pid" ] && qs_pg_as "$(qs_pg_bin)/pg_ctl" -D "$dir" -m fast -w stop >/dev/null || true
}
