"""The command line and configuration contract, without Kafka: every mistake in a
config file is reported with its file and line and exits 2 before any client is
created; -X overrides the file; `migrate` is idempotent."""
import pathlib
import subprocess

import pytest

from conftest import admin_sql, need


def qualstream(*args):
    binary = pathlib.Path(need("QS_BUILD")) / "qualstream"
    return subprocess.run([str(binary), *args], capture_output=True, text=True, timeout=60)


def write(tmp_path, *lines):
    path = tmp_path / "qualstream.conf"
    path.write_text("\n".join(lines) + "\n")
    return path


GOOD = ["# a comment", "", "kafka.bootstrap.servers=127.0.0.1:1", "kafka.group.id=g",
        "pg.conninfo=host=127.0.0.1 port=1", "schema.registry.dir=/tmp"]


@pytest.mark.parametrize("line, message", [
    ("flush.intervall.ms=5", 'unknown key "flush.intervall.ms"'),
    ("flush.interval.ms=soon", 'flush.interval.ms: "soon" is not a whole number from 1 to 3600000'),
    ("flush.max.events=0", 'flush.max.events: "0" is not a whole number from 1 to 10000000'),
    ("run.exit.at.end=yes", 'run.exit.at.end: "yes" is not true or false'),
    ("alerts.clock=sometimes", 'alerts.clock: "sometimes" is not event or wall'),
    ("log.level=loud", 'log.level: "loud" is not error, warn, info or debug'),
    ("kafka.no.such.property=1", "kafka.no.such.property: No such configuration property"),
    ("kafka.session.timeout.ms=abc", "kafka.session.timeout.ms: "),
    ("just words", 'expected key=value, got a line without "=" (not shown: it may hold a secret)'),
])
def test_bad_line_is_reported_with_file_and_line(tmp_path, line, message):
    conf = write(tmp_path, *GOOD, line)
    for command in ("run", "migrate"):
        r = qualstream(command, "-c", str(conf))
        assert r.returncode == 2, r.stderr
        assert f"{conf}:{len(GOOD) + 1}: {message}" in r.stderr, r.stderr


def test_override_errors_name_the_option(tmp_path):
    r = qualstream("run", "-c", str(write(tmp_path, *GOOD)), "-X", "flush.max.events=-3")
    assert r.returncode == 2
    assert '-X: flush.max.events: "-3" is not a whole number' in r.stderr, r.stderr


@pytest.mark.parametrize("drop, message", [
    ("pg.conninfo", "pg.conninfo is required"),
    ("kafka.group.id", "kafka.group.id is required"),
    ("kafka.bootstrap.servers", "kafka.bootstrap.servers is required"),
    ("schema.registry.dir", "set exactly one of schema.registry.url and schema.registry.dir"),
])
def test_missing_required_key(tmp_path, drop, message):
    conf = write(tmp_path, *[g for g in GOOD if not g.startswith(drop + "=")])
    r = qualstream("run", "-c", str(conf))
    assert r.returncode == 2 and message in r.stderr, r.stderr


def test_usage_errors_exit_2():
    assert qualstream().returncode == 2
    assert qualstream("frobnicate", "-c", "x").returncode == 2
    assert qualstream("run").returncode == 2  # no -c
    missing = qualstream("run", "-c", "/nonexistent.conf")
    assert missing.returncode == 2 and "/nonexistent.conf: No such file or directory" in missing.stderr


def test_migrate_is_idempotent_and_x_overrides_the_file(tmp_path):
    admin = need("QS_PG_DSN")
    db = "qs_cli_" + tmp_path.name.replace("-", "_")[-20:].lower()
    admin_sql(admin, f"CREATE DATABASE {db}")
    try:
        # The file points at a dead port; -X, read after the file, points at the real server.
        conf = write(tmp_path, "pg.conninfo=host=127.0.0.1 port=1")
        for _ in range(2):
            r = qualstream("migrate", "-c", str(conf), "-X", f"pg.conninfo={admin} dbname={db}")
            assert r.returncode == 0, r.stderr
        r = qualstream("migrate", "-c", str(conf))
        assert r.returncode == 1 and "connecting to PostgreSQL" in r.stderr, r.stderr
    finally:
        admin_sql(admin, f"DROP DATABASE IF EXISTS {db} WITH (FORCE)")
