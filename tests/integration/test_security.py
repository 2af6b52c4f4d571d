"""Least privilege, TLS and secrets (README "Security").

Roles: `qualstream migrate` (sinks/migrations/005_roles.sql) creates the group roles
qualstream_writer and qualstream_reader; these tests grant them to login roles of their own, run
the worker as the writer (measure_period checked against the oracle) and `report`/`rules` as the
reader, and check what each may not do: the reader writes nothing, the writer touches nothing
outside the qualstream schema and never the rules or the schema itself.

TLS: a second PostgreSQL, started here, that takes only TLS with SCRAM passwords; the worker and
the report work over sslmode=verify-full with a CA made here, and fail at once, plainly and without
the password, with the wrong CA or the wrong password.

Secrets: distinctive passwords are put in every place a configuration holds one, and in failing
configurations; no stderr line, configuration error or dead letter may contain them.
"""
import base64
import http.server
import json
import os
import pathlib
import shutil
import signal
import socket
import subprocess
import tempfile
import threading

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
                "INSERT INTO qualstream.outbox_batch (consumer_group, stream, last_id) VALUES ('g', 'alerts', 1)",
                "TRUNCATE qualstream.record_log",
                "CREATE TABLE qualstream.mine (x int)",
                "CREATE VIEW qualstream.mine AS SELECT 1"]:
        assert refused(reader, sql), sql
    # ... while reading is granted (a role with no grants at all would pass the checks above).
    for sql in ["SELECT * FROM qualstream.measure_evaluation", "SELECT * FROM qualstream.rule",
                "SELECT * FROM qualstream.alert_open", "SELECT * FROM qualstream.cw13_calendar('2020-01-01')"]:
        assert not refused(reader, sql), sql


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
                "TRUNCATE qualstream.record_log",
                "UPDATE qualstream.record_log SET value = ''",  # versions are appended, never rewritten
                # The outboxes are appended, never rewritten, and so are their marks.
                "UPDATE qualstream.dead_letter SET reason = 'rewritten'",
                "UPDATE qualstream.alerts SET details = 'rewritten'",
                "UPDATE qualstream.alerts SET consumer_group = consumer_group",
                "UPDATE qualstream.outbox_batch SET last_id = last_id + 1",
                "DELETE FROM qualstream.outbox_batch"]:
        assert refused(writer, sql), sql
    # What the worker does need (README "Security"), granted: temporary tables for the COPY, its
    # tables, the outbox marks (a batch row) and the sequences behind them.
    for sql in ["CREATE TEMP TABLE qs_probe (x int)",
                "INSERT INTO qualstream.consumer_offsets VALUES ('g', 't', 0, 0)",
                "UPDATE qualstream.consumer_offsets SET next_offset = 1",
                "INSERT INTO qualstream.measure_period VALUES ('P', 'CW13_SUBMISSIONS', '', 'month',"
                " '2020-01-01', 1, 1) ON CONFLICT (plan_id, measure, stratum, grain, period_start)"
                " DO UPDATE SET numerator = qualstream.measure_period.numerator + 1",
                "INSERT INTO qualstream.dead_letter (consumer_group, topic, partition, \"offset\", reason)"
                " VALUES ('g', 't', 0, 0, 'x')",
                "INSERT INTO qualstream.outbox_batch (consumer_group, stream, last_id) VALUES ('g', 'dead_letter', 1)",
                "DELETE FROM qualstream.record_log WHERE stream = 0",  # compaction
                "SELECT qualstream.alert_evaluate('g', 'e', 'd', NULL)",
                "SELECT * FROM qualstream.rule"]:
        assert not refused(writer, sql), sql


# ---- TLS and passwords ---------------------------------------------------------------------------

PG_BIN = sorted(pathlib.Path("/usr/lib/postgresql").glob("*/bin"), key=lambda p: int(p.parent.name))[-1]
ADMIN_PASSWORD = "Pw-admin-7Qx2"    # distinctive, so a leak is found by a plain substring search
WORKER_PASSWORD = "Pw-worker-Zk93"


def as_pg_owner(cmd, **kw):
    """Runs cmd as the owner of the data directory: initdb and postgres refuse root."""
    if os.geteuid() == 0:
        cmd = ["runuser", "-u", "postgres", "--"] + cmd
    return subprocess.run(cmd, check=True, capture_output=True, text=True, **kw)


def openssl(*args, cwd):
    subprocess.run(["openssl", *args], check=True, capture_output=True, cwd=cwd)


def make_ca(d, name):
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", f"/CN={name}",
            "-keyout", f"{name}.key", "-out", f"{name}.crt", cwd=d)
    return d / f"{name}.crt"


class TlsPostgres:
    """A PostgreSQL of its own (deploy/lib.sh's binaries, a free port) that accepts only TLS with
    SCRAM passwords over TCP: pg_hba.conf has one `hostssl ... scram-sha-256` line and no `host`
    line. Its certificate (CN localhost, SAN localhost and 127.0.0.1) is signed by a CA made here."""

    def __init__(self):
        self.dir = pathlib.Path(tempfile.mkdtemp(prefix="qs-tls-"))
        self.dir.chmod(0o755)
        d = self.dir
        self.ca = make_ca(d, "ca")
        self.other_ca = make_ca(d, "other-ca")  # a CA that did not sign the server's certificate
        openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=localhost", "-keyout", "server.key",
                "-out", "server.csr", cwd=d)
        (d / "san.ext").write_text("subjectAltName=DNS:localhost,IP:127.0.0.1\n")
        openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
                "-days", "2", "-extfile", "san.ext", "-out", "server.crt", cwd=d)
        (d / "pw").write_text(ADMIN_PASSWORD + "\n")
        self.data = d / "data"
        if os.geteuid() == 0:
            subprocess.run(["chown", "-R", "postgres:postgres", str(d)], check=True)
        (d / "server.key").chmod(0o600)
        as_pg_owner([str(PG_BIN / "initdb"), "-D", str(self.data), "-U", "postgres", "--pwfile", str(d / "pw"),
                     "--auth-local=scram-sha-256", "--auth-host=scram-sha-256", "--no-sync"])
        (self.data / "pg_hba.conf").write_text(
            "# TLS and SCRAM only: no host (plain TCP) line, no trust, no md5\n"
            "hostssl all all 127.0.0.1/32 scram-sha-256\n")
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        as_pg_owner([str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-l", str(d / "server.log"), "-w", "-t", "60",
                     "-o", f"-p {self.port} -k {d} -c listen_addresses=127.0.0.1 -c ssl=on"
                           f" -c ssl_cert_file={d}/server.crt -c ssl_key_file={d}/server.key"
                           " -c password_encryption=scram-sha-256", "start"])

    def dsn(self, dbname="postgres", user="postgres", password=ADMIN_PASSWORD, ca=None, sslmode="verify-full",
            host="127.0.0.1"):
        return (f"host={host} port={self.port} dbname={dbname} user={user} password={password}"
                f" sslmode={sslmode} sslrootcert={ca or self.ca}")

    def admin(self, sql):
        admin_sql(self.dsn(), sql)

    def stop(self):
        as_pg_owner([str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w", "stop"])
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture(scope="module")
def tls_pg():
    pg = TlsPostgres()
    yield pg
    pg.stop()


def use_database(env, conninfo):
    """Points env (its config file and its queries) at another database and migrates it."""
    lines = [l for l in env.config.read_text().splitlines() if not l.startswith("pg.conninfo=")]
    env.config.write_text("\n".join(lines + [f"pg.conninfo={conninfo}", ""]))
    env.dsn = conninfo
    r = subprocess.run([str(env.binary), "migrate", "-c", str(env.config)], capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0, r.stderr
    return r


def test_tls_server_refuses_plain_tcp_and_trust(tls_pg):
    """The server under test really requires TLS and a password (else the tests below prove nothing)."""
    for dsn in (tls_pg.dsn(sslmode="disable"), tls_pg.dsn(password="wrong", sslmode="require")):
        with pytest.raises(psycopg2.OperationalError):
            psycopg2.connect(dsn).close()
    conn = psycopg2.connect(tls_pg.dsn())
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
            assert cur.fetchone() == (True,)
    finally:
        conn.close()


def test_worker_and_report_over_verify_full(env, tls_pg):
    db = f"{env.name}_tls"
    user = f"{env.name}_w"
    tls_pg.admin(f"CREATE DATABASE {db}")
    try:
        # migrate as the administrator, run as a writer login with a password, all over verify-full
        r = use_database(env, tls_pg.dsn(db))
        tls_pg.admin(f"CREATE ROLE {user} LOGIN PASSWORD '{WORKER_PASSWORD}'; GRANT qualstream_writer TO {user}")
        writer = tls_pg.dsn(db, user=user, password=WORKER_PASSWORD)
        messages = qsgen.generate(**dict(SMALL, seed=32))
        env.produce(messages)
        w = env.run_to_end(f"pg.conninfo={writer}")
        assert_matches_oracle(env, messages)
        rep = qualstream(env, "report", "--format", "json", conninfo=tls_pg.dsn(db, host="localhost"))
        assert rep.returncode == 0 and json.loads(rep.stdout), rep.stderr
        for text in (r.stderr, w.text(), rep.stderr):
            assert ADMIN_PASSWORD not in text and WORKER_PASSWORD not in text

        # A CA that did not sign the server's certificate: refused at once, said plainly, no retry loop.
        for cmd in ("run", "report", "migrate"):
            bad = qualstream(env, cmd, conninfo=tls_pg.dsn(db, user=user, password=WORKER_PASSWORD,
                                                           ca=tls_pg.other_ca), timeout=60)
            assert bad.returncode == 1, (cmd, bad.stderr)
            assert "connecting to PostgreSQL" in bad.stderr and "certificate verify failed" in bad.stderr, \
                bad.stderr
            assert WORKER_PASSWORD not in bad.stderr

        # A wrong password: exit 1 naming the failure, and neither password in the output.
        wrong = "Pw-wrong-Hh41"
        for cmd in ("run", "report"):
            bad = qualstream(env, cmd, conninfo=tls_pg.dsn(db, user=user, password=wrong), timeout=60)
            assert bad.returncode == 1, (cmd, bad.stderr)
            assert f'password authentication failed for user "{user}"' in bad.stderr, bad.stderr
            assert wrong not in bad.stderr and WORKER_PASSWORD not in bad.stderr
    finally:
        tls_pg.admin(f"DROP DATABASE IF EXISTS {db} WITH (FORCE)")
        tls_pg.admin(f"DROP ROLE IF EXISTS {user}")


# ---- no secret in any output ---------------------------------------------------------------------

def assert_no_secret(texts, secrets):
    for name, text in texts.items():
        for s in secrets:
            assert s not in text, f"{s!r} appears in {name}:\n{text[-3000:]}"


@pytest.mark.parametrize("override", [
    "kafka.sasl.password Pw-noeq-1",             # -X value given without "="
    "Pw-bare-2",                                  # a bare password as the value of -X
    "pg.conninfo=host=127.0.0.1 user=qs Pw-conninfo-3",  # libpq would quote it: missing "=" after ...
    "pg.conninfo=host=127.0.0.1 password='Pw-conninfo-4",  # ... or an unterminated quote
    "pg.password=Pw-unknown-5",                   # an unknown key
    "kafka.sasl.pasword=Pw-misspelt-6",           # a misspelt librdkafka property
    "kafka.sasl.password",                        # the key alone: the error must not need the value
])
def test_configuration_errors_quote_no_secret(tmp_path, override):
    conf = tmp_path / "qualstream.conf"
    conf.write_text("kafka.bootstrap.servers=127.0.0.1:1\nkafka.group.id=g\npg.conninfo=host=127.0.0.1 port=1"
                    " password=Pw-file-0\nschema.registry.dir=/tmp\nkafka.ssl.key.password=Pw-file-00\n")
    binary = pathlib.Path(os.environ["QS_BUILD"]) / "qualstream"
    secrets = [w for w in override.replace("=", " ").replace("'", " ").split() if w.startswith("Pw-")]
    secrets += ["Pw-file-0", "Pw-file-00"]
    for cmd in ("run", "migrate", "report"):
        r = subprocess.run([str(binary), cmd, "-c", str(conf), "-X", override], capture_output=True, text=True,
                           timeout=60)
        assert r.returncode == 2, (cmd, r.stderr)
        assert r.stderr.startswith("qualstream: -X: "), r.stderr
        assert_no_secret({f"{cmd} stderr": r.stderr + r.stdout}, secrets)


class EchoingRegistry(http.server.BaseHTTPRequestHandler):
    """A schema registry that knows no input schema and, like a careless proxy, echoes the
    credentials it was sent (Basic authentication, from the URL's user:password) in its 404
    message. Output schemas are registered as id 9000."""

    def do_GET(self):
        auth = self.headers.get("Authorization", "")
        creds = base64.b64decode(auth.split()[1]).decode() if auth.startswith("Basic ") else "nobody"
        self.answer(404, {"error_code": 40403, "message": f"Schema not found for {creds} ({self.path})"})

    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.answer(200, {"id": 9000})

    def answer(self, status, doc):
        body = json.dumps(doc).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


SECRET_SETTINGS = {
    "kafka.sasl.password": "Pw-sasl-8",
    "kafka.ssl.key.password": "Pw-sslkey-9",
    "kafka.ssl.keystore.password": "Pw-keystore-10",
}


def test_no_secret_in_logs_or_dead_letters(env):
    """Every secret setting at once, librdkafka's configuration dump and debug logging on, and a
    registry that echoes its credentials into the reason of every dead letter."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), EchoingRegistry)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        registry = f"http://qs-user:Pw-registry-11@127.0.0.1:{server.server_address[1]}"
        lines = [l for l in env.config.read_text().splitlines() if not l.startswith("schema.registry.dir=")]
        env.config.write_text("\n".join(lines + [f"schema.registry.url={registry}"] +
                                        [f"{k}={v}" for k, v in SECRET_SETTINGS.items()] + [""]))
        conninfo = f"{env.dsn} password=Pw-pg-12"  # trust authentication: never asked for, still secret
        messages = qsgen.generate(**dict(SMALL, seed=33, members=20, deliveries=40))
        env.produce(messages)
        w = env.run_to_end(f"pg.conninfo={conninfo}", "log.level=debug", "kafka.debug=conf,security")
        secrets = list(SECRET_SETTINGS.values()) + ["Pw-registry-11", "Pw-pg-12"]
        reasons = [r[0] for r in env.query("SELECT reason FROM qualstream.dead_letter")]
        # Every message was dead-lettered with the registry's answer (redacted), so the echo was there to leak.
        assert len(reasons) == env.produced > 0
        assert all("Schema not found for qs-user:***" in r or "Schema not found for ***" in r
                   for r in reasons), reasons[:3]
        published = env.read_topic(env.dead_letter_topic)
        assert len(published) == len(reasons)
        assert_no_secret({"the worker's stderr": w.text(), "qualstream.dead_letter.reason": "\n".join(reasons),
                          "topics.dead_letters": "\n".join(m.value().decode("latin-1") for m in published)},
                         secrets)
        assert "CONF" in w.text()  # librdkafka's configuration dump did run, through the redaction
    finally:
        server.shutdown()


def test_no_secret_when_nothing_answers(env):
    """PostgreSQL and the schema registry unreachable, with credentials in both addresses."""
    binary = env.binary
    # PostgreSQL refusing connections: the worker and the report exit 1 and say why.
    for cmd in ("run", "report"):
        r = subprocess.run([str(binary), cmd, "-c", str(env.config), "-X",
                            "pg.conninfo=postgresql://qs:Pw-uri-13@127.0.0.1:1/db?sslpassword=Pw-sslpw-14"],
                           capture_output=True, text=True, timeout=60)
        assert r.returncode == 1 and "connecting to PostgreSQL" in r.stderr, r.stderr
        assert_no_secret({f"{cmd} stderr": r.stderr}, ["Pw-uri-13", "Pw-sslpw-14"])
    # A registry nobody listens on: the worker waits and retries, saying so, until stopped.
    lines = [l for l in env.config.read_text().splitlines() if not l.startswith("schema.registry.dir=")]
    env.config.write_text("\n".join(lines + ["schema.registry.url=http://qs-user:Pw-registry-15@127.0.0.1:1", ""]))
    env.produce(qsgen.generate(**dict(SMALL, seed=34, members=5, deliveries=5)))
    w = env.start()
    w.wait_log("unreachable", timeout=60)
    w.signal(signal.SIGTERM)
    w.wait(60)
    assert "http://***@127.0.0.1:1" in w.text()
    assert_no_secret({"the worker's stderr": w.text()}, ["Pw-registry-15", "qs-user"])
