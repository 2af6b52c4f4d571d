#!/usr/bin/env bash
# deploy/quickstart.sh: qualstream on embedded defaults, from a fresh Debian machine.
#   1. installs the Debian packages it needs (as root) and builds the worker;
#   2. starts a private PostgreSQL data directory and librdkafka's mock cluster
#      (an in-process Kafka-protocol cluster, deploy/mockcluster.c);
#   3. produces a realistic demo stream: three plans, nine hospitals, fifteen months of
#      encounters, deliveries and member events, some late, corrected or voided, and garbage;
#   4. runs the worker until it has caught up, then prints what a quality team looks
#      at first: CW13 frequency and timeliness, the withhold evaluation per plan and
#      year, NTSV cesarean rates by hospital, dead letters.
# Everything is stopped at the end; with --keep, PostgreSQL stays up for you to query.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=lib.sh
source deploy/lib.sh

keep=false
[ "${1:-}" = "--keep" ] && keep=true
home=${QS_QUICKSTART_DIR:-/tmp/qualstream-quickstart}
py=/usr/bin/python3

qs_install_packages
qs_log "building into build/"
qs_build build

rm -rf "$home"
mkdir -p "$home"
chmod 755 "$home"
cleanup() {
	set +e
	[ -n "${mock_pid:-}" ] && kill "$mock_pid" 2>/dev/null && wait "$mock_pid" 2>/dev/null
	$keep || qs_pg_stop "$home/pg"
}
trap cleanup EXIT

qs_log "starting PostgreSQL in $home/pg and the embedded Kafka-protocol cluster"
qs_pg_start "$home/pg"
build/qs-mockcluster -b 3 -f "$home/bootstrap" >"$home/mockcluster.log" 2>&1 &
mock_pid=$!
for _ in $(seq 100); do [ -s "$home/bootstrap" ] && break; sleep 0.1; done
bootstrap=$(cat "$home/bootstrap")

qs_log "producing the demo stream (python-avro, Confluent wire format)"
"$py" tests/tools/qsgen.py registry "$home/registry" >/dev/null
"$py" tests/tools/qsgen.py produce --bootstrap "$bootstrap" --hostile --no-edges --member-events 12 | tail -n 1

cat >"$home/qualstream.conf" <<CONF
# The quickstart's configuration: see README.md, Configuration.
kafka.bootstrap.servers=$bootstrap
kafka.group.id=qualstream-quickstart
pg.conninfo=$QS_PG_DSN
schema.registry.dir=$home/registry
CONF

qs_log "qualstream migrate"
build/qualstream migrate -c "$home/qualstream.conf"
# Plan reference data a plan supplies (README, Evaluation): the stream starts in 2017,
# so CAW7's baseline-year rates come from here. PLAN-C began in 2015: baseline 2016.
psql "$QS_PG_DSN" -X -q -c "
INSERT INTO qualstream.plan (plan_id, name, baseline_year, baseline_caw7_rate) VALUES
    ('PLAN-A', 'Alameda Health Demo', 2015, 300),
    ('PLAN-B', 'Bay Care Demo', 2015, 240),
    ('PLAN-C', 'Central Valley Demo', 2016, 260)"
qs_log "qualstream run (until caught up)"
build/qualstream run -c "$home/qualstream.conf" -X run.exit.at.end=true 2>&1 | grep -v ' assigned '

sql() { psql "$QS_PG_DSN" -X -q -P footer=off -P null='' "$@"; }

qs_log "CW13 encounter submissions: frequency (a submission every month) and timeliness (<= 180 days)"
sql -c "
SELECT plan_id AS plan, source, to_char(month, 'YYYY-MM') AS month, submissions,
       CASE WHEN frequency_met THEN 'met' ELSE 'MISSED' END AS frequency,
       CASE WHEN originals > 0 THEN timely || '/' || originals || ' = '
            || round(100 * timeliness_rate, 1) || '%' END AS on_time,
       CASE WHEN timeliness_evaluated THEN 'yes' ELSE 'no' END AS timeliness_counts
FROM qualstream.cw13_month ORDER BY plan, source, month"

qs_log "CW13 months missed"
sql -c "
SELECT plan_id AS plan, source, count(*) AS months_evaluated,
       count(*) FILTER (WHERE NOT frequency_met) AS months_missed,
       coalesce(string_agg(to_char(month, 'YYYY-MM'), ' ' ORDER BY month) FILTER (WHERE NOT frequency_met), '') AS which
FROM qualstream.cw13_month GROUP BY 1, 2 ORDER BY 1, 2"

qs_log "withhold evaluation per plan and year (qualstream report; rules: qualstream rules)"
build/qualstream report -c "$home/qualstream.conf"

qs_log "NTSV cesarean rate by hospital and year, against the 23.9% target (above target first)"
sql -c "
SELECT plan_id AS plan, hospital_id AS hospital, extract(year FROM period_start)::int AS year,
       ntsv_cesareans || '/' || ntsv_deliveries AS cesareans,
       round(100 * rate, 1) || '%' AS rate,
       CASE WHEN above_target THEN 'ABOVE 23.9%' ELSE 'ok' END AS target
FROM qualstream.ntsv_hospital WHERE grain = 'year'
ORDER BY above_target DESC, rate DESC, plan, hospital, year"

qs_log "alerts raised by the demo stream (qualstream.alerts_outbox; published to topic qualstream-alerts)"
sql -c "
SELECT a.kind, count(*) FILTER (WHERE a.state = 'RAISED') AS raised,
       count(*) FILTER (WHERE a.state = 'RESOLVED') AS resolved,
       (SELECT count(*) FROM qualstream.alert_open o WHERE o.kind = a.kind) AS open_now,
       count(a.published_at) AS published_to_topic
FROM qualstream.alerts_outbox a GROUP BY a.kind ORDER BY a.kind"

qs_log "open alerts about plans (clock: the stream's event time; qualstream.alert_watermark)"
sql -c "
SELECT kind, plan_id AS plan, coalesce(source, hospital_id) AS source_or_hospital, period_start, due_date, details
FROM qualstream.alert_open
WHERE kind = ANY (qualstream.alert_kinds('plan'))
ORDER BY kind, plan_id, alert_id"

qs_log "open encounter alerts still owed: the 10 most urgent (qualstream.alert_open)"
sql -c "
SELECT kind, plan_id AS plan, source, encounter_id, member_id, due_date, details
FROM qualstream.alert_open WHERE kind IN ('DUE_SOON', 'OVERDUE')
ORDER BY due_date, encounter_id LIMIT 10"

qs_log "dead letters"
sql -c "SELECT count(*) AS dead_letters, count(published_at) AS published_to_topic FROM qualstream.dead_letter_outbox"
sql -c "SELECT topic, partition, \"offset\", reason FROM qualstream.dead_letter ORDER BY topic, partition, \"offset\""

if $keep; then
	echo
	echo "PostgreSQL is still running: psql \"$QS_PG_DSN\""
	echo "stop it with: runuser -u postgres -- $(qs_pg_bin)/pg_ctl -D $home/pg stop"
fi
