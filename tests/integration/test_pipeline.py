"""The worker end to end: messages encoded by python-avro (not the worker's code),
produced by confluent-kafka, consumed by the qualstream binary into PostgreSQL,
and measure_period compared with oracle.py's independent batch recount."""
import collections
import hashlib
import io
import signal
import subprocess
import time

import pathlib

import avro.io
import psycopg2

from conftest import assert_matches_oracle, qsgen

# A smaller stream than the demo keeps each test to seconds on both clusters.
SMALL = dict(seed=11, members=60, months=14, encounters_per_month=25, deliveries=250)


def test_stream_with_hostile_messages_matches_oracle(env):
    messages = qsgen.generate(hostile=True, **SMALL)
    env.produce(messages)
    env.run_to_end()
    expected = assert_matches_oracle(env, messages)

    # One dead letter per bad message, each with its raw bytes and a reason.
    bad = [m for m in messages if m.expect]
    assert len(bad) == len(expected.dead_letters) > 20
    rows = env.query("SELECT value, reason FROM qualstream.dead_letter")
    assert len(rows) == len(bad)
    assert sorted((bytes(v) if v is not None else b"") for v, _ in rows) == \
        sorted((m.value or b"") for m in bad)
    assert all(reason for _, reason in rows)
    assert env.committed() == env.produced


def test_dead_letters_published_once_to_topic(env):
    from confluent_kafka import Consumer
    messages = [m for m in qsgen.generate(hostile=True, **SMALL) if m.expect]
    env.produce(messages)
    env.run_to_end()
    assert env.query("SELECT count(*) FROM qualstream.dead_letter_outbox WHERE published_at IS NULL")[0][0] == 0

    consumer = Consumer({"bootstrap.servers": env.bootstrap, "group.id": env.name + "-dlq",
                         "auto.offset.reset": "earliest"})
    consumer.subscribe([env.dead_letter_topic])
    decoded = []
    deadline = time.time() + 60
    while len(decoded) < len(messages) and time.time() < deadline:
        msg = consumer.poll(1)
        if msg is None or msg.error():
            continue
        value = msg.value()
        assert value[0] == 0
        schema_id = int.from_bytes(value[1:5], "big")
        schema = qsgen.parse_schema((env.registry / f"{schema_id}.avsc").read_text())
        reader = avro.io.DatumReader(schema)
        decoded.append(reader.read(avro.io.BinaryDecoder(io.BytesIO(value[5:]))))
    # Anything more within a few seconds would be a duplicate.
    extra = consumer.poll(3)
    consumer.close()
    assert extra is None or extra.error(), "more dead letters on the topic than bad messages"
    assert len(decoded) == len(messages)
    assert sorted(d["value"] or b"" for d in decoded) == sorted(m.value or b"" for m in messages)
    assert all(d["reason"] and d["topic"].startswith(env.name) for d in decoded)


def test_kill9_midstream_then_restart_gives_identical_results(env):
    messages = qsgen.generate(hostile=True, **dict(SMALL, seed=12, members=120))
    env.produce(messages)
    w = env.start("flush.max.events=300", "flush.interval.ms=50")
    env.wait_committed(env.produced // 3, worker=w)
    w.signal(signal.SIGKILL)
    w.wait(30)
    assert env.committed() < env.produced, "the kill came too late to test anything"
    env.run_to_end()
    assert_matches_oracle(env, messages)
    assert env.query("SELECT count(*) FROM qualstream.dead_letter")[0][0] == \
        len([m for m in messages if m.expect])
    # A second run over a caught-up group changes nothing.
    before = sorted(env.measure_rows())
    env.run_to_end()
    assert sorted(env.measure_rows()) == before


def test_sigterm_flushes_and_exits_zero(env):
    messages = qsgen.generate(**dict(SMALL, seed=13))
    w = env.start()
    env.produce(messages)
    env.wait_committed(env.produced, worker=w)
    w.signal(signal.SIGTERM)
    assert w.wait(60) == 0, w.tail()
    assert_matches_oracle(env, messages)


def test_outbox_upgrade_keeps_what_was_published(env):
    """Migration 007 on a database of 006, whose outbox rows carried published_at: the rows
    published up to a group's first unpublished one become batches that keep their times;
    a row published above an unpublished one makes the group's outbox positions go, so the
    next publisher reads the topic back from its start and skips that row's message instead
    of sending it again; every unpublished row is then published once."""
    from confluent_kafka import Producer
    migrations = pathlib.Path(__file__).resolve().parents[2] / "sinks" / "migrations"
    older = sorted(p for p in migrations.glob("*.sql") if p.name < "007")
    with psycopg2.connect(env.dsn) as conn, conn.cursor() as cur:
        cur.execute("DROP SCHEMA qualstream CASCADE; CREATE SCHEMA qualstream;"
                    " CREATE TABLE qualstream.schema_migrations"
                    " (name text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())")
        for p in older:
            cur.execute(p.read_text())  # no parameters: the files' % are their own
            cur.execute("INSERT INTO qualstream.schema_migrations (name) VALUES (%s)", (p.name,))
    t1, t2 = "2026-01-01 10:00:00+00", "2026-01-01 10:00:05+00"
    other = env.group + "-other"
    # group: 1, 2 at t1, 3 at t2, 4 not yet, 5 at t2 (above 4), 6 not yet; the other group: all at t1
    for grp, published in [(env.group, [t1, t1, t2, None, t2, None]), (other, [t1, t1])]:
        for i, at in enumerate(published):
            env.execute("INSERT INTO qualstream.alerts (consumer_group, alert_id, kind, state, plan_id,"
                        " encounter_id, detected_at, details, published_at) VALUES (%s, %s, 'LATE_SUBMISSION',"
                        " 'RAISED', 'P', %s, now(), 'x', %s)", grp, f"LATE_SUBMISSION:P:e{i}", f"e{i}", at)
    env.execute("INSERT INTO qualstream.dead_letter (consumer_group, topic, partition, \"offset\", reason,"
                " published_at) VALUES (%s, 't', 0, 0, 'x', %s), (%s, 't', 0, 1, 'x', NULL)", env.group, t1,
                env.group)
    ids = [r[0] for r in env.query("SELECT id FROM qualstream.alerts WHERE consumer_group = %s ORDER BY id",
                                   env.group)]
    # What the earlier publisher delivered of this group: rows 1, 2, 3 and 5, one per partition
    # in turn; its positions end there.
    producer = Producer({"bootstrap.servers": env.bootstrap})
    for n, row in enumerate([ids[0], ids[1], ids[2], ids[4]]):
        producer.produce(env.alert_topic, value=b"earlier", partition=n % 4,
                         headers=[("qualstream.alert_row", row.to_bytes(8, "big")),
                                  ("qualstream.group", env.group.encode())])
    assert producer.flush(30) == 0
    for grp in (env.group, other):
        env.execute("INSERT INTO qualstream.outbox_position VALUES (%s, %s, 0, 1), (%s, %s, 1, 1),"
                    " (%s, %s, 2, 1), (%s, %s, 3, 1)", *[grp, env.alert_topic] * 4)

    subprocess.run([str(env.binary), "migrate", "-c", str(env.config)], check=True, capture_output=True)
    # After the numbered migrations, the repeatable one that holds the plan alerts' SQL.
    assert repeatable_checksum(env) == file_md5(migrations / "R_alerts.sql")
    batches = env.query("SELECT consumer_group, stream, last_id, published_at::text FROM qualstream.outbox_batch"
                        " ORDER BY consumer_group, stream, last_id")
    other_ids = [r[0] for r in env.query("SELECT id FROM qualstream.alerts WHERE consumer_group = %s", other)]
    dead_letter = env.query("SELECT min(id) FROM qualstream.dead_letter")[0][0]
    assert batches == [(env.group, "alerts", ids[1], t1), (env.group, "alerts", ids[2], t2),
                       (env.group, "dead_letter", dead_letter, t1), (other, "alerts", max(other_ids), t1)]
    shown = env.query("SELECT id, published_at::text FROM qualstream.alerts_outbox WHERE consumer_group = %s"
                      " ORDER BY id", env.group)
    assert shown == list(zip(ids, [t1, t1, t2, None, None, None]))
    assert [r[0] for r in env.query("SELECT DISTINCT consumer_group FROM qualstream.outbox_position")] == [other]

    env.produce(qsgen.generate(**SMALL))
    env.run_to_end()
    rows = [r[0] for r in env.query("SELECT id FROM qualstream.alerts WHERE consumer_group = %s", env.group)]
    on_topic = collections.Counter(int.from_bytes(dict(m.headers())["qualstream.alert_row"], "big")
                                   for m in env.read_topic(env.alert_topic)
                                   if dict(m.headers())["qualstream.group"] == env.group.encode())
    assert on_topic == collections.Counter(rows), "each row of the group on the topic exactly once"
    assert env.query("SELECT count(*) FROM qualstream.alerts_outbox WHERE published_at IS NULL"
                     " AND consumer_group = %s", env.group)[0][0] == 0


def file_md5(path):
    return hashlib.md5(path.read_bytes()).hexdigest()


def repeatable_checksum(env, name="R_alerts.sql"):
    return env.query("SELECT checksum FROM qualstream.schema_migrations WHERE name = %s", name)[0][0]


def test_repeatable_migration_reapplied_when_its_text_changed(env):
    """sinks/migrations/R_alerts.sql (migration 008's repeatable kind) runs again when the text
    last applied differs from the binary's, and only then; what it recreates keeps 005's grants."""
    path = pathlib.Path(__file__).resolve().parents[2] / "sinks" / "migrations" / "R_alerts.sql"
    migrate = [str(env.binary), "migrate", "-c", str(env.config)]
    applied = env.query("SELECT applied_at FROM qualstream.schema_migrations WHERE name = 'R_alerts.sql'")
    assert repeatable_checksum(env) == file_md5(path)
    subprocess.run(migrate, check=True, capture_output=True)
    assert env.query("SELECT applied_at FROM qualstream.schema_migrations WHERE name = 'R_alerts.sql'") == applied

    # A database of an older text: without the view, and with one kind fewer in the list.
    env.execute("UPDATE qualstream.schema_migrations SET checksum = md5('an older R_alerts.sql')"
                " WHERE name = 'R_alerts.sql'")
    env.execute("DROP VIEW qualstream.alert_open")
    env.execute("CREATE OR REPLACE FUNCTION qualstream.alert_kinds(VARIADIC scopes text[]) RETURNS text[]"
                " LANGUAGE sql IMMUTABLE AS $$ SELECT ARRAY['LATE_SUBMISSION', 'DUE_SOON', 'OVERDUE'] $$")
    subprocess.run(migrate, check=True, capture_output=True)
    assert repeatable_checksum(env) == file_md5(path)
    assert env.query("SELECT applied_at FROM qualstream.schema_migrations WHERE name = 'R_alerts.sql'") > applied
    assert env.query("SELECT qualstream.alert_kinds('plan')")[0][0] == [
        "MONTH_WITHOUT_SUBMISSION", "MONTH_WITHOUT_SUBMISSION_WARNING", "NTSV_ABOVE_TARGET", "TIMELINESS_AT_RISK"]
    assert env.query("SELECT has_table_privilege('qualstream_reader', 'qualstream.alert_open', 'SELECT'),"
                     " has_table_privilege('qualstream_writer', 'qualstream.alert_open', 'SELECT'),"
                     " has_function_privilege('qualstream_writer',"
                     " 'qualstream.alert_evaluate(text, text, text, bigint)', 'EXECUTE')") == [(True, True, True)]
    # And the worker's flushes work on it: the plan alerts are evaluated in every one.
    env.produce(qsgen.generate(**dict(SMALL, seed=14)))
    env.run_to_end()
    assert env.query("SELECT count(*) FROM qualstream.alerts WHERE consumer_group = %s", env.group)[0][0] > 0
