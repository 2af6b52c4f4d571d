"""Fixtures for the integration and fault tests.

tests/run.sh starts the servers and exports where they are:
  QS_BUILD      build directory holding the qualstream binary
  QS_PG_DSN     libpq DSN of a PostgreSQL superuser (each test gets its own database)
  QS_TEST_KAFKA mock | real: which cluster the tests run against
  QS_BOOTSTRAP  that cluster's bootstrap servers
  QS_BROKER_DIR (real only) the broker's directory, for restart tests
A missing variable fails the test: nothing is skipped because a server is absent.
"""
import os
import pathlib
import signal
import subprocess
import sys
import time
import uuid

import psycopg2
import pytest

HERE = pathlib.Path(__file__).resolve().parent
ROOT = HERE.parent.parent
sys.path.insert(0, str(ROOT / "tests" / "tools"))
import oracle  # noqa: E402
import qsgen  # noqa: E402


def need(name):
    value = os.environ.get(name)
    if not value:
        pytest.fail(f"{name} is not set: run the integration tests through tests/run.sh")
    return value


def admin_sql(dsn, sql):
    """Runs a statement outside a transaction (CREATE/DROP DATABASE need that)."""
    conn = psycopg2.connect(dsn)
    try:
        conn.autocommit = True
        conn.cursor().execute(sql)
    finally:
        conn.close()


class Worker:
    """One qualstream process; its log is kept for failure messages."""

    def __init__(self, env, args, log):
        self.log = log
        self.proc = subprocess.Popen(
            [str(env.binary), "run", "-c", str(env.config)] + [a for kv in args for a in ("-X", kv)],
            stdout=open(log, "ab"), stderr=subprocess.STDOUT)

    def wait(self, timeout):
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError(f"worker did not finish in {timeout} s; log:\n{self.tail()}")

    def signal(self, sig):
        self.proc.send_signal(sig)

    def tail(self, n=60):
        lines = pathlib.Path(self.log).read_text(errors="replace").splitlines()
        return "\n".join(lines[-n:])

    def text(self):
        """The whole log so far."""
        return pathlib.Path(self.log).read_text(errors="replace")

    def wait_log(self, needle, timeout=60, count=1):
        """Waits until the log holds `needle` at least `count` times; fails with the log's tail."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.text().count(needle) >= count:
                return
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        state = "running" if self.proc.poll() is None else f"exited {self.proc.returncode}"
        raise AssertionError(f"{needle!r} not seen {count} time(s) in {self.log} within {timeout} s"
                             f" (worker {state}); log:\n{self.tail()}")


class Env:
    """A private database, topic set and schema registry directory for one test.

    inputs_of: another Env whose input topics this one reads (a replay in a fresh
    database and group, see twin()); its output topics stay its own."""

    def __init__(self, tmp_path, name, inputs_of=None, admin_dsn=None, bootstrap=None):
        """admin_dsn, bootstrap: a PostgreSQL and a cluster of the test's own (PrivatePostgres,
        MockCluster) instead of the shared ones, for tests that take them down."""
        self.kind = need("QS_TEST_KAFKA")
        self.bootstrap = bootstrap or need("QS_BOOTSTRAP")
        self.binary = pathlib.Path(need("QS_BUILD")) / "qualstream"
        self.tmp = tmp_path
        self.name = name
        admin_dsn = admin_dsn or need("QS_PG_DSN")
        self.db = f"qs_{name}"
        admin_sql(admin_dsn, f"CREATE DATABASE {self.db}")
        self.admin_dsn = admin_dsn
        self.dsn = f"{admin_dsn} dbname={self.db}"
        self.topics = {t: f"{name}.{t}" for t in ("encounters", "deliveries", "member-events")}
        if inputs_of:
            self.topics = dict(inputs_of.topics)
        self.dead_letter_topic = f"{name}.dead-letters"
        self.alert_topic = f"{name}.alerts"
        self.create_topics(outputs_only=inputs_of is not None)
        self.registry = tmp_path / "registry"
        qsgen.write_registry(str(self.registry))
        self.group = f"{name}-group"
        self.config = tmp_path / "qualstream.conf"
        self.config.write_text("\n".join([
            "# written by tests/integration/conftest.py",
            f"kafka.bootstrap.servers={self.bootstrap}",
            f"kafka.group.id={self.group}",
            f"topics.encounters={self.topics['encounters']}",
            f"topics.deliveries={self.topics['deliveries']}",
            f"topics.member_events={self.topics['member-events']}",
            f"topics.dead_letters={self.dead_letter_topic}",
            f"topics.alerts={self.alert_topic}",
            f"pg.conninfo={self.dsn}",
            f"schema.registry.dir={self.registry}",
            "flush.interval.ms=200",
            # A killed worker stays a group member until its session times out; keep that short.
            "kafka.session.timeout.ms=6000",
            "",
        ]))
        subprocess.run([str(self.binary), "migrate", "-c", str(self.config)], check=True,
                       capture_output=True)
        self.workers = []
        self.twins = []
        self.produced = inputs_of.produced if inputs_of else 0

    def create_topics(self, partitions=4, outputs_only=False):
        """Topics with 4 partitions. librdkafka's mock cluster has no CreateTopics API; its
        producers auto-create unknown topics with 4 partitions, which is the same layout."""
        if self.kind == "mock":
            return
        from confluent_kafka.admin import AdminClient, NewTopic
        admin = AdminClient({"bootstrap.servers": self.bootstrap})
        new = [] if outputs_only else [NewTopic(t, partitions, 1) for t in self.topics.values()]
        new.append(NewTopic(self.dead_letter_topic, partitions, 1))
        new.append(NewTopic(self.alert_topic, partitions, 1))
        for topic, future in admin.create_topics(new, operation_timeout=30).items():
            future.result()

    def produce(self, messages):
        producer = qsgen.make_producer(self.bootstrap)
        triples = ((m.topic, m.key, m.value) for m in messages)
        counts, errors, _ = qsgen.produce(triples, producer, self.topics)
        assert not errors, errors[:5]
        self.produced += sum(counts.values())
        return counts

    def start(self, *args):
        w = Worker(self, args, self.tmp / f"worker{len(self.workers)}.log")
        self.workers.append(w)
        return w

    def run_to_end(self, *args, timeout=300):
        """Runs a worker until it has caught up with every partition, and checks it exited 0."""
        w = self.start("run.exit.at.end=true", *args)
        rc = w.wait(timeout)
        assert rc == 0, f"worker exited {rc}; log:\n{w.tail()}"
        return w

    def twin(self):
        """A second Env over this one's input topics: its own database, group and output
        topics, closed with this one. For replays of the same history."""
        path = self.tmp / f"twin{len(self.twins)}"
        path.mkdir()
        t = Env(path, f"{self.name}x{len(self.twins)}", inputs_of=self)
        self.twins.append(t)
        return t

    def query(self, sql, *params):
        with psycopg2.connect(self.dsn) as conn, conn.cursor() as cur:
            cur.execute(sql, params)
            return cur.fetchall()

    def execute(self, sql, *params):
        """A statement without a result (UPDATE of a rule after migrate, a test trigger)."""
        with psycopg2.connect(self.dsn) as conn, conn.cursor() as cur:
            cur.execute(sql, params)

    ALERT_COLUMNS = ("id", "alert_id", "kind", "state", "plan_id", "source", "member_id", "encounter_id",
                     "hospital_id", "period_start", "due_date", "detected_at", "details", "published")

    def alerts(self):
        """This group's qualstream.alerts rows in id order, as dicts (ALERT_COLUMNS): dates
        as datetime.date, detected_at in ms since the epoch, published = on the topic
        (qualstream.alerts_outbox.published_at is set)."""
        rows = self.query(
            "SELECT id, alert_id, kind, state, plan_id, source, member_id, encounter_id, hospital_id,"
            " period_start, due_date, round(extract(epoch FROM detected_at) * 1000)::bigint, details,"
            " published_at IS NOT NULL FROM qualstream.alerts_outbox WHERE consumer_group = %s ORDER BY id",
            self.group)
        return [dict(zip(self.ALERT_COLUMNS, r)) for r in rows]

    def measure_rows(self):
        return self.query("SELECT plan_id, measure, stratum, grain, period_start, numerator, denominator"
                          " FROM qualstream.measure_period")

    def committed(self):
        return self.query("SELECT coalesce(sum(next_offset), 0) FROM qualstream.consumer_offsets")[0][0]

    def wait_committed(self, at_least, timeout=120, worker=None):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.committed() >= at_least:
                return
            if worker and worker.proc.poll() is not None:
                raise AssertionError(f"worker exited {worker.proc.returncode}; log:\n{worker.tail()}")
            time.sleep(0.05)
        raise AssertionError(f"only {self.committed()} of {at_least} offsets committed in {timeout} s")

    def offsets(self):
        """{(real topic name, partition): next_offset} as qualstream.consumer_offsets has them."""
        return {(t, p): n for t, p, n in self.query(
            "SELECT topic, partition, next_offset FROM qualstream.consumer_offsets")}

    def end_offsets(self, topics=None):
        """{(real topic name, partition): high watermark} of the input topics (or `topics`),
        from the cluster itself. A topic the cluster does not know has no partitions."""
        from confluent_kafka import Consumer, TopicPartition
        consumer = Consumer({"bootstrap.servers": self.bootstrap, "group.id": self.name + "-watermarks",
                             "enable.auto.commit": False})
        try:
            meta = consumer.list_topics(timeout=30)
            ends = {}
            for topic in topics or self.topics.values():
                t = meta.topics.get(topic)
                if t is None or t.error is not None:
                    continue
                for p in t.partitions:
                    ends[(topic, p)] = consumer.get_watermark_offsets(TopicPartition(topic, p),
                                                                      timeout=30)[1]
            return ends
        finally:
            consumer.close()

    def read_topic(self, topic, timeout=60):
        """Every message of `topic` from its start to its current end, as confluent_kafka
        Messages, read with assign() (no group membership), so nothing is missed or skipped."""
        from confluent_kafka import Consumer, TopicPartition, OFFSET_BEGINNING
        ends = {p: high for (_, p), high in self.end_offsets([topic]).items() if high > 0}
        consumer = Consumer({"bootstrap.servers": self.bootstrap, "group.id": self.name + "-reader",
                             "enable.auto.commit": False, "enable.partition.eof": False})
        out = []
        try:
            consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in ends])
            done = {p: 0 for p in ends}
            deadline = time.time() + timeout
            while any(done[p] < ends[p] for p in ends):
                assert time.time() < deadline, f"{topic}: read {done} of {ends} in {timeout} s"
                msg = consumer.poll(0.5)
                if msg is None or msg.error():
                    continue
                out.append(msg)
                done[msg.partition()] = max(done[msg.partition()], msg.offset() + 1)
        finally:
            consumer.close()
        return out

    def close(self):
        for t in self.twins:
            t.close()
        for w in self.workers:
            if w.proc.poll() is None:
                w.proc.kill()
                w.proc.wait()
        admin_sql(self.admin_dsn, f"DROP DATABASE IF EXISTS {self.db} WITH (FORCE)")


def pytest_configure(config):
    # Tests that need what only a real broker has (restarts, durable logs over ~5 MiB per
    # partition, real group coordination timing). tests/run.sh deselects them on the mock
    # tier with -m "not real_only"; they are never skipped.
    config.addinivalue_line("markers", "real_only: needs a real Apache Kafka broker (QS_BROKER_DIR)")


@pytest.fixture
def env(tmp_path, request):
    name = "t" + uuid.uuid4().hex[:10]
    e = Env(tmp_path, name)
    yield e
    if request.node.rep_call.failed if hasattr(request.node, "rep_call") else False:
        for w in e.workers + [w for t in e.twins for w in t.workers]:
            print(f"--- {w.log}\n{w.tail()}")
    e.close()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    setattr(item, "rep_" + rep.when, rep)


def assert_matches_oracle(env, messages):
    """measure_period equals the oracle's batch recount of the same messages."""
    expected = oracle.compute(messages)
    assert not expected.mismatches, expected.mismatches[:5]
    diffs = oracle.compare(expected.row_list(), env.measure_rows())
    assert not diffs, f"{len(diffs)} differences, first: " + "\n".join(diffs[:10])
    return expected


def assert_no_offset_gap(env):
    """Every message produced is committed exactly once: the stored next offsets add up to
    the messages produced, and each partition's next offset is that partition's end."""
    stored = env.offsets()
    ends = env.end_offsets()
    assert sum(stored.values()) == env.produced, \
        f"offsets sum to {sum(stored.values())}, produced {env.produced}"
    wrong = {tp: (stored.get(tp, 0), end) for tp, end in ends.items() if stored.get(tp, 0) != end}
    wrong.update({tp: (n, ends.get(tp)) for tp, n in stored.items() if tp not in ends})
    assert not wrong, f"(stored next_offset, end offset) differ: {sorted(wrong.items())[:10]}"



def wait_until(cond, timeout, what):
    """Polls cond() until it is true; fails naming `what` after `timeout` seconds."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        if cond():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


OUTBOX_HOLD_KEY = 715500  # advisory lock key that stops a worker in the outbox window


def kill_in_outbox_window(env, table, topic, start_worker):
    """Kills a worker after the broker acknowledged a batch of `table`'s outbox rows (on
    `topic`) but before the transaction marking them published (its row of
    qualstream.outbox_batch) committed, while earlier batches are already marked. A trigger,
    installed in the test's own database, makes the marking INSERT wait for an advisory lock
    the test holds once some batches of the stream are marked, so the worker is stopped
    exactly in that window. start_worker() produces and starts the worker (the lock is held
    by then). Returns (rows marked, messages on the topic) at the kill."""
    stream = table.removeprefix("qualstream.")
    env.execute(f"""
        CREATE FUNCTION public.qs_test_hold_marking() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF EXISTS (SELECT 1 FROM qualstream.outbox_batch WHERE stream = NEW.stream) THEN
                PERFORM pg_advisory_xact_lock_shared({OUTBOX_HOLD_KEY});
            END IF;
            RETURN NEW;
        END $$;
        CREATE TRIGGER qs_test_hold_marking BEFORE INSERT ON qualstream.outbox_batch
            FOR EACH ROW WHEN (NEW.stream = '{stream}') EXECUTE FUNCTION public.qs_test_hold_marking();""")
    hold = psycopg2.connect(env.dsn)
    try:
        hold.autocommit = True
        hold.cursor().execute("SELECT pg_advisory_lock(%s)", (OUTBOX_HOLD_KEY,))
        w = start_worker()

        def waiting_backend():
            rows = env.query("SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
                             " AND objid = %s", OUTBOX_HOLD_KEY)
            return rows[0][0] if rows else None

        wait_until(lambda: waiting_backend() is not None or w.proc.poll() is not None, 90,
                   f"the worker's mark of {table} to wait on the test's lock")
        pid = waiting_backend()
        assert pid is not None, f"worker exited {w.proc.returncode}:\n{w.tail()}"
        on_topic = sum(env.end_offsets([topic]).values())
        marked = env.query(f"SELECT count(*) FROM {table}_outbox WHERE published_at IS NOT NULL")[0][0]
        assert 0 < marked < on_topic, (marked, on_topic)  # the window: acknowledged, not yet marked
        w.signal(signal.SIGKILL)
        w.wait(30)
        # The killed worker's backend would finish the INSERT once the lock is free and then
        # roll back on the closed socket; end it now so no lock of it outlives the worker.
        hold.cursor().execute("SELECT pg_terminate_backend(%s)", (pid,))
        wait_until(lambda: not env.query("SELECT 1 FROM pg_stat_activity WHERE pid = %s", pid), 30,
                   "the killed worker's backend to end")
    finally:
        hold.close()
    env.execute("DROP TRIGGER qs_test_hold_marking ON qualstream.outbox_batch")
    return marked, on_topic


def assert_dead_letters_once(env, hostile_values):
    """qualstream.dead_letter holds exactly one row per hostile message: same count, same raw
    bytes as a multiset (a missing or double-counted message changes one or the other), and
    no (topic, partition, offset) twice."""
    rows = env.query('SELECT topic, partition, "offset", value FROM qualstream.dead_letter')
    keys = [r[:3] for r in rows]
    assert len(set(keys)) == len(keys), "a source message dead-lettered twice"
    assert len(rows) == len(hostile_values), f"{len(rows)} dead letters for {len(hostile_values)} hostile messages"
    assert sorted(bytes(r[3]) if r[3] is not None else b"" for r in rows) == \
        sorted(v or b"" for v in hostile_values)


def _free_port():
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PrivatePostgres:
    """A PostgreSQL cluster of one test's own, which the test may stop and start again
    (same data, same port) to stage an outage without disturbing other tests. Trust
    authentication on the loopback interface, like tests/run.sh's."""

    def __init__(self):
        import tempfile
        bins = sorted(pathlib.Path("/usr/lib/postgresql").glob("*/bin"), key=lambda p: int(p.parent.name))
        self.bin = bins[-1]
        self.dir = pathlib.Path(tempfile.mkdtemp(prefix="qs-pg-"))
        self.dir.chmod(0o755)
        self.port = _free_port()
        self.dsn = f"host=127.0.0.1 port={self.port} user=postgres dbname=postgres"
        self._as_owner(["chown", "postgres:postgres", str(self.dir)], root_only=True)
        self._as_owner([str(self.bin / "initdb"), "-D", str(self.dir / "data"), "-U", "postgres", "-A", "trust",
                        "--no-sync"])
        self.start()

    def _as_owner(self, cmd, root_only=False):
        """initdb and pg_ctl refuse root: run them as postgres then."""
        if os.geteuid() == 0:
            cmd = cmd if root_only else ["runuser", "-u", "postgres", "--"] + cmd
        elif root_only:
            return
        subprocess.run(cmd, check=True, capture_output=True, timeout=120)

    def start(self):
        self._as_owner([str(self.bin / "pg_ctl"), "-D", str(self.dir / "data"), "-l", str(self.dir / "server.log"),
                        "-w", "-t", "60", "-o", f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1",
                        "start"])

    def stop(self):
        self._as_owner([str(self.bin / "pg_ctl"), "-D", str(self.dir / "data"), "-m", "fast", "-w", "stop"])

    def close(self):
        import shutil
        if (self.dir / "data" / "postmaster.pid").exists():
            self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


class MockCluster:
    """A qs-mockcluster of one test's own; down() and up() take every broker down and
    bring them back (SIGUSR1, SIGUSR2: see deploy/mockcluster.c)."""

    def __init__(self, tmp_path, brokers=3):
        self.file = tmp_path / "mock.bootstrap"
        self.proc = subprocess.Popen([str(pathlib.Path(need("QS_BUILD")) / "qs-mockcluster"), "-b", str(brokers),
                                      "-f", str(self.file)], stdout=subprocess.DEVNULL,
                                     stderr=open(tmp_path / "mock.log", "ab"))
        wait_until(lambda: self.file.exists() and self.file.read_text().strip(), 30, "the mock cluster")
        self.bootstrap = self.file.read_text().strip()

    def down(self):
        self.proc.send_signal(signal.SIGUSR1)

    def up(self):
        self.proc.send_signal(signal.SIGUSR2)

    def close(self):
        self.proc.terminate()
        self.proc.wait(30)
