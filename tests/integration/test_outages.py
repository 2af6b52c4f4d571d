"""Outages (issue 10, item 5): PostgreSQL down for longer than a flush interval, and the
whole Kafka cluster down and back (the mock's brokers set down, or the real broker
stopped). The worker keeps running, backs off and says so in a few log lines (not one per
try), and catches up with the fault-free result: measure_period and the alerts equal the
oracle's, no offset gap, every dead letter exactly once.

Each test stages its outage on servers of its own (PrivatePostgres, MockCluster; the real
tier's broker is the one tests/run.sh started, restarted as test_faults.py does), so no
other test sees it.
"""
import re
import signal
import subprocess
import time
import uuid

import pytest

from alert_checks import assert_alerts_match_oracle
from conftest import (ROOT, Env, MockCluster, PrivatePostgres, assert_dead_letters_once, assert_matches_oracle,
                      assert_no_offset_gap, need, qsgen)

STREAM = dict(seed=41, members=50, months=10, encounters_per_month=25, deliveries=150)
OUTAGE_S = 4  # twenty flush intervals of 200 ms


def start_part_way(env, parts):
    """Produces the first 1/`parts` of a hostile stream and starts a worker that has committed it (the
    state an outage hits): returns the worker, the whole stream, and the part not produced yet."""
    messages = qsgen.generate(hostile=True, **STREAM)
    first, rest = messages[:len(messages) // parts], messages[len(messages) // parts:]
    env.produce(first)
    w = env.start("flush.interval.ms=200")
    env.wait_committed(len(first), worker=w)
    return w, messages, rest


def stop_and_check(env, w, messages):
    """Stops the worker as an operator would and checks the end state against the fault-free one."""
    w.signal(signal.SIGTERM)
    assert w.wait(60) == 0, w.tail()
    assert_matches_oracle(env, messages)
    assert_no_offset_gap(env)
    assert_dead_letters_once(env, [m.value for m in messages if m.expect])
    assert_alerts_match_oracle(env, messages)


def log_lines(worker, pattern):
    return [line for line in worker.text().splitlines() if re.search(pattern, line)]


@pytest.fixture
def closing(request):
    """Closes what a test registers, last first, and prints worker logs when it failed."""
    things = []
    yield things.append
    failed = request.node.rep_call.failed if hasattr(request.node, "rep_call") else False
    for thing in reversed(things):
        if failed and isinstance(thing, Env):
            for w in thing.workers:
                print(f"--- {w.log}\n{w.tail()}")
        thing.close()


def test_postgres_down_longer_than_a_flush_interval(tmp_path, closing):
    pg = PrivatePostgres()
    closing(pg)
    env = Env(tmp_path, "t" + uuid.uuid4().hex[:10], admin_dsn=pg.dsn)
    closing(env)
    w, messages, rest = start_part_way(env, 3)

    pg.stop()
    try:
        env.produce(rest)  # Kafka is up: the worker reads on and cannot flush
        time.sleep(OUTAGE_S)
        assert w.proc.poll() is None, f"the worker exited while PostgreSQL was down:\n{w.tail()}"
        warnings = log_lines(w, r"WARN .*(PostgreSQL unavailable|flush failed).*retrying in \d+ ms")
        assert warnings, f"no warning with a retry delay while PostgreSQL was down:\n{w.tail()}"
        # Backing off (250 ms doubling) means a handful of lines in the outage, not one per poll.
        assert len(warnings) <= 12, f"{len(warnings)} warnings in {OUTAGE_S} s:\n" + "\n".join(warnings)
        delays = [int(d) for d in re.findall(r"retrying in (\d+) ms", "\n".join(warnings))]
        assert max(delays) > min(delays), f"the retry delay does not grow: {delays}"
    finally:
        pg.start()  # also when the checks failed, so the test's database can be dropped

    env.wait_committed(env.produced, timeout=90, worker=w)
    stop_and_check(env, w, messages)


def test_kafka_cluster_down_and_back(tmp_path, closing):
    kind = need("QS_TEST_KAFKA")
    if kind == "mock":
        cluster = MockCluster(tmp_path)
        closing(cluster)
        bootstrap, down, up = cluster.bootstrap, cluster.down, cluster.up
    else:
        broker_dir = need("QS_BROKER_DIR")
        broker = str(ROOT / "tests" / "kafka" / "broker.sh")
        bootstrap = None

        def down():
            subprocess.run([broker, "stop", broker_dir], check=True, timeout=120, stdout=subprocess.DEVNULL)

        def up():
            subprocess.run([broker, "restart", broker_dir], check=True, timeout=120, stdout=subprocess.DEVNULL)

    env = Env(tmp_path, "t" + uuid.uuid4().hex[:10], bootstrap=bootstrap)
    closing(env)
    w, messages, rest = start_part_way(env, 2)
    produced_first = len(messages) - len(rest)

    down()
    try:
        time.sleep(OUTAGE_S)
        assert w.proc.poll() is None, f"the worker exited while Kafka was down:\n{w.tail()}"
        # Flushes go on while nothing new can be read: nothing is committed twice meanwhile.
        assert env.committed() == produced_first
    finally:
        up()
    env.produce(rest)
    env.wait_committed(env.produced, timeout=120, worker=w)
    text = w.text()
    kafka_warnings = log_lines(w, r"WARN +Kafka: ")
    assert kafka_warnings, f"the worker did not say Kafka was down:\n{w.tail()}"
    assert len(kafka_warnings) <= 12, f"{len(kafka_warnings)} warnings:\n" + "\n".join(kafka_warnings)
    assert "retries by itself" in text
    stop_and_check(env, w, messages)
