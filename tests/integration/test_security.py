"""Least privilege, TLS and secrets (README "Security").

Roles: `qualstream migrate` (sinks/migrations/005_roles.sql) creates the group roles
qualstream_writer and qualstream_reader; these tests grant them to login roles of their own, run
the worker as the writer (measure_period checked against the oracle) and `report`/`rules` as the
reader, and check what each may not do: the reader writes nothing, the writer touches nothing
outside the qualstream schema and never the rules or the schema itself.
"""
import json
import pathlib
import subprocess

import psycopg2
import psycopg2.errors
import pytest

from conftest import admin_sql, assert_matches_oracle, qsgen

SMALL = dict(seed=31, members=50, months=14, encounters_per_month=20, deliveries=200)


def qualstream(env, *args, conninfo=None, timeout=120):
    """Runs a qualstream command on env's config, as the login in `conninfo` when given."""
    extra = ["-X", f"pg.conninfo={conninfo}"] if conninfo else []
    return subprocess.run([str(env.binary), args[0], "-c", str(env.config), *extra, *args[1:]],
                          capture_output=True, text=True, timeout=timeout)


@pytest.fixture
def logins(env):
    """Two login roles of this test: one granted qualstream_writer, one qualstream_reader.
    Yields {"writer": conninfo, "reader": conninfo}; the roles are dropped afterwards."""
    names = {kind: f"{env.name}_{kind}" for kind in ("writer", "reader")}
    for kind, name in names.items():
        admin_sql(env.admin_dsn, f"CREATE ROLE {name} LOGIN; GRANT qualstream_{kind} TO {name}")
    yield {kind: f"{env.dsn} user={name}" for kind, name in names.items()}
    for w in env.workers:  # a worker still connected as the role would keep it from being dropped
        if w.proc.poll() is None:
            w.proc.kill()
            w.proc.wait()
    for name in names.values():
        admin_sql(env.admin_dsn, f"DROP ROLE IF EXISTS {name}")


def refused(conninfo, sql):
    """Runs sql as that login; true when PostgreSQL refuses it for want of a privilege."""
    conn = psycopg2.connect(conninfo)
    try:
        with conn.cursor() as cur:
            cur.execute(sql)
        return False
    except psycopg2.errors.InsufficientPrivilege:
        return True
    finally:
        conn.close()


def views(env):
    return [r[0] for r in env.query("SELECT table_name FROM information_schema.views"
                                     " WHERE table_schema = 'qualstream' ORDER BY 1")]


def test_worker_as_writer_and_report_as_reader(env, logins):
    # Neither login is a superuser or owns the schema: what works below works by the grants alone.
    for conninfo in logins.values():
        user = conninfo.rsplit("user=", 1)[1]
        assert env.query("SELECT rolsuper, rolcreaterole, rolcreatedb FROM pg_roles WHERE rolname = %s",
                         user) == [(False, False, False)]
    assert env.query("SELECT nspowner::regrole::text FROM pg_namespace WHERE nspname = 'qualstream'") == \
        [("postgres",)]

    messages = qsgen.generate(hostile=True, **SMALL)
    env.produce(messages)
    w = env.run_to_end(f"pg.conninfo={logins['writer']}")
    assert "permission denied" not in w.text()
    assert_matches_oracle(env, messages)
    assert env.query("SELECT count(*) FROM qualstream.dead_letter")[0][0] == len([m for m in messages if m.expect])
    assert env.committed() == env.produced
    # A second run as the writer over a caught-up group (restore from record_latest) changes nothing.
    before = sorted(env.measure_rows())
    env.run_to_end(f"pg.conninfo={logins['writer']}")
    assert sorted(env.measure_rows()) == before

    # The reader gets the same report and rules as the schema's owner, and reads every view.
    outputs = {}
    for args in (("report", "--format", "json"), ("rules",)):
        as_owner = qualstream(env, *args)
        as_reader = qualstream(env, *args, conninfo=logins["reader"])
        assert as_owner.returncode == 0, as_owner.stderr
        assert as_reader.returncode == 0, as_reader.stderr
        assert as_reader.stdout == as_owner.stdout
        outputs[args[0]] = as_reader.stdout
    assert json.loads(outputs["report"]), "the report as the reader is empty"
    names = views(env)
    assert {"measure_rate", "measure_evaluation", "alert_open", "cw13_month"} <= set(names)
    conn = psycopg2.connect(logins["reader"])
    try:
        with conn.cursor() as cur:
            for v in names:
                cur.execute(f"SELECT count(*) FROM qualstream.{v}")
    finally:
        conn.close()


def test_reader_writes_nothing(env, logins):
    reader = logins["reader"]
    for sql in ["INSERT INTO qualstream.measure_period VALUES ('P', 'CW13_SUBMISSIONS', '', 'month',"
                " '2020-01-01', 1, 1)",
                "UPDATE qualstream.rule SET value = 1 WHERE name = 'cw13_timely_days'",
                "DELETE FROM qualstream.consumer_offsets",
                "INSERT INTO qualstream.dead_letter (consumer_group, topic, partition, \"offset\", reason)"
                " VALUES ('g', 't', 0, 0, 'x')",
                "UPDATE qualstream.alerts SET published_at = now()",
                "TRUNCATE qualstream.record_latest",
                "CREATE TABLE qualstream.mine (x int)",
                "CREATE VIEW qualstream.mine AS SELECT 1"]:
        assert refused(reader, sql), sql


def test_writer_touches_only_the_qualstream_schema(env, logins):
    writer = logins["writer"]
    admin_sql(env.dsn, "CREATE SCHEMA other; CREATE TABLE other.secrets (s text);"
                       " CREATE TABLE public.private (s text)")
    for sql in ["CREATE TABLE public.mine (x int)",
                "SELECT * FROM other.secrets",
                "SELECT * FROM public.private",
                "CREATE TABLE qualstream.mine (x int)",
                "CREATE SCHEMA mine",
                "DROP TABLE qualstream.measure_period",
                "ALTER TABLE qualstream.measure_period ADD COLUMN x int",
                "UPDATE qualstream.rule SET value = 1 WHERE name = 'cw13_timely_days'",
                "INSERT INTO qualstream.schema_migrations (name) VALUES ('999_mine.sql')",
                "DELETE FROM qualstream.measure_period",
                "TRUNCATE qualstream.record_latest",
                # The outboxes: append, then only mark published.
                "UPDATE qualstream.dead_letter SET reason = 'rewritten'",
                "UPDATE qualstream.alerts SET details = 'rewritten'"]:
        assert refused(writer, sql), sql
    # What the worker does need, stated in README "Security": temporary tables for the COPY.
    assert not refused(writer, "CREATE TEMP TABLE qs_probe (x int)")
