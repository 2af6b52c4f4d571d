"""Fault tests: the worker under group changes, broker restarts, a big stream, a zombie
worker and a crash in the dead-letter outbox.

Every test ends by checking the same four things, which together say "the same as a
fault-free run":
  * qualstream.measure_period equals oracle.py's independent batch recount of the stream
    (assert_matches_oracle);
  * no offset gap: the stored next offsets add up to the messages produced and each
    partition's next offset is that partition's end offset (assert_no_offset_gap);
  * no double count: one dead-letter row per hostile message (assert_dead_letters_once).
  * the alerts: every encounter alert transition the oracle derives, once, at the same clock
    reading, the same open alerts, and each row on the alert topic exactly once
    (assert_alerts_match_oracle).

Tests marked real_only need a real Apache Kafka broker (restarts, logs over the mock's
~5 MiB per partition, a real group coordinator); tests/run.sh deselects them on the mock
tier with -m "not real_only".
"""
import collections
import io
import re
import signal
import subprocess
import threading
import time

import avro.io
import pytest

from alert_checks import assert_alerts_match_oracle
from conftest import (ROOT, assert_dead_letters_once, assert_matches_oracle, assert_no_offset_gap,
                      kill_in_outbox_window, need, oracle, qsgen, wait_until)

# Enough records that a stream takes a few seconds to flow and every partition gets data.
MEDIUM = dict(seed=21, members=300, months=14, encounters_per_month=60, deliveries=600)


# --------------------------------------------------------------------------- helpers

def hostile_values(messages):
    return [m.value for m in messages if m.expect]


def split(messages, *fractions):
    """Cuts a stream, in order, at the given fractions of its length."""
    cuts = [0] + [int(len(messages) * f) for f in fractions] + [len(messages)]
    return [messages[a:b] for a, b in zip(cuts, cuts[1:])]


def applied_events(worker):
    """The "applied N events" count of a worker's end-of-run summary."""
    found = re.findall(r"applied (\d+) events", worker.text())
    assert found, f"no end-of-run summary in {worker.log}:\n{worker.tail()}"
    return int(found[-1])


def resumed_midway(worker):
    """Partitions this worker was assigned at a non-zero stored offset: ones it took over
    from another worker (or got back) after some of their messages had been committed."""
    return {(t, int(p)) for t, p, o in
            re.findall(r"assigned (\S+)\[(\d+)\]: resuming at offset (\d+)", worker.text()) if int(o) > 0}


ASSIGNMENT = re.compile(r"assignment of (\d+) partitions: (\d+) kept, (\d+) restored, (\d+) parked")


def assignments(worker):
    """(assigned, kept, restored, parked) of each assignment the worker logged, in order."""
    return [tuple(map(int, m)) for m in ASSIGNMENT.findall(worker.text())]


class Trickle(threading.Thread):
    """Produces messages in order in the background, spread over about `seconds`, so data
    keeps flowing while the test changes the group, the broker or the workers around it.
    Adds what it produced to env.produced when joined."""

    def __init__(self, env, messages, seconds, chunks=40):
        super().__init__(daemon=True)
        self.env, self.messages, self.chunks = env, messages, max(1, min(chunks, len(messages)))
        self.pause = seconds / self.chunks
        self.sent = 0
        self.errors = []

    def run(self):
        try:
            producer = qsgen.make_producer(self.env.bootstrap)
            size = -(-len(self.messages) // self.chunks)
            for i in range(0, len(self.messages), size):
                chunk = self.messages[i:i + size]
                # qsgen.produce waits for every delivery report: a chunk is on the broker
                # (or reported failed) before the next one goes.
                _, errors, _ = qsgen.produce(((m.topic, m.key, m.value) for m in chunk), producer,
                                             self.env.topics)
                self.errors += errors
                self.sent += len(chunk)
                time.sleep(self.pause)
        except Exception as e:  # reported by finish(), in the test's thread
            self.errors.append(repr(e))

    def finish(self, timeout=180):
        self.join(timeout)
        assert not self.is_alive(), "the background producer did not finish"
        assert not self.errors, self.errors[:5]
        self.env.produced += self.sent


def decode_dead_letters(env, kafka_messages):
    """Decodes dead-letter topic messages (Confluent framing, Avro) with the test registry."""
    readers, out = {}, []
    for msg in kafka_messages:
        value = msg.value()
        assert value[0] == 0, "dead letter without the Confluent magic byte"
        schema_id = int.from_bytes(value[1:5], "big")
        if schema_id not in readers:
            readers[schema_id] = avro.io.DatumReader(
                qsgen.parse_schema((env.registry / f"{schema_id}.avsc").read_text()))
        out.append(readers[schema_id].read(avro.io.BinaryDecoder(io.BytesIO(value[5:]))))
    return out


def assert_end_state(env, messages):
    """The end-of-test checks of the module docstring, for a stream produced once."""
    assert_matches_oracle(env, messages)
    assert_no_offset_gap(env)
    assert_dead_letters_once(env, hostile_values(messages))
    assert_alerts_match_oracle(env, messages)


# --------------------------------------------------------------------------- 1. group changes

def test_three_workers_join_and_leave_midstream(env):
    """Partitions move between three workers of one group while data flows: one worker
    starts alone, two join, one leaves with SIGTERM (flushes on revoke and exit) and one is
    killed with SIGKILL (its un-flushed work is lost and must be re-read by the survivor
    from the offsets in PostgreSQL). The survivor finishes the stream, and the result is
    exactly the fault-free one: nothing counted twice on a hand-over, nothing skipped."""
    messages = qsgen.generate(hostile=True, **MEDIUM)
    first, joining, leaving, killing, rest = split(messages, 0.15, 0.40, 0.65, 0.85)
    fast_flush = ("flush.interval.ms=100", "flush.max.events=250")

    env.produce(first)
    w0 = env.start(*fast_flush)
    env.wait_committed(len(first), worker=w0)  # w0 alone owns every partition

    # Two workers join while the next part flows; the group rebalances around them.
    w1, w2 = env.start(*fast_flush), env.start(*fast_flush)
    trickle = Trickle(env, joining, seconds=4)
    trickle.start()
    w1.wait_log("assigned ", timeout=60)
    w2.wait_log("assigned ", timeout=60)
    trickle.finish()

    # One leaves cleanly mid-stream.
    trickle = Trickle(env, leaving, seconds=4)
    trickle.start()
    wait_until(lambda: trickle.sent >= len(leaving) // 2, 60, "half of the third part")
    w1.signal(signal.SIGTERM)
    assert w1.wait(60) == 0, w1.tail()
    trickle.finish()
    assert env.committed() < len(messages)

    # One dies mid-stream, holding partitions and (usually) un-flushed events.
    trickle = Trickle(env, killing, seconds=3)
    trickle.start()
    wait_until(lambda: trickle.sent >= len(killing) // 2, 60, "half of the fourth part")
    w2.signal(signal.SIGKILL)
    w2.wait(30)
    trickle.finish()

    # The survivor takes everything over (after the dead member's session times out).
    env.produce(rest)
    env.wait_committed(env.produced, timeout=90, worker=w0)
    w0.signal(signal.SIGTERM)
    assert w0.wait(60) == 0, w0.tail()

    assert_end_state(env, messages)
    # The hand-overs really happened with data in the partitions: the joiners resumed
    # partitions part-way through, and the survivor took partitions back part-way through.
    assert applied_events(w1) > 0
    assert resumed_midway(w1) | resumed_midway(w2), "no joiner took over a partition mid-stream"
    assert resumed_midway(w0), "the survivor never took a partition back mid-stream"


def test_partitions_coming_back_unchanged_are_kept(env):
    """Issue 11 item 5: a partition that comes back to the worker that held it, with its
    stored offset unchanged, keeps its state instead of being restored from PostgreSQL.
    A holds all 12 partitions (3 topics x 4) and has committed the first part. B joins
    (range assignor: each gets 2 of every topic's 4 partitions), reads the second part
    but never flushes, and is killed. Its partitions' stored offsets never moved, so when
    the group hands them back A keeps the state it parked when it lost them, and re-reads
    what B had read. The counts are the assignor's arithmetic, not the worker's; the
    result is the fault-free one."""
    messages = qsgen.generate(hostile=True, **dict(MEDIUM, seed=26))
    first, second, rest = split(messages, 0.4, 0.7)
    env.produce(first)
    a = env.start("flush.interval.ms=100")
    env.wait_committed(len(first), worker=a)
    assert assignments(a) == [(12, 0, 12, 0)], a.tail()

    b = env.start("flush.interval.ms=600000", "flush.max.events=10000000")
    b.wait_log("assignment of ", timeout=60)
    a.wait_log("assignment of ", count=2, timeout=60)
    # A got back, unchanged, the half it kept; the other half waits parked.
    assert assignments(a)[1] == (6, 6, 0, 6), a.tail()
    assert assignments(b) == [(6, 0, 6, 0)], b.tail()
    before = env.offsets()
    env.produce(second)
    wait_until(lambda: env.committed() >= len(first) + len(second) // 3, 60, "A committing its half")
    b.signal(signal.SIGKILL)
    b.wait(30)
    # B's stored offsets never moved: it committed nothing.
    theirs = {tp for tp, n in env.offsets().items() if n == before[tp]}
    assert len(theirs) >= 6, (before, env.offsets())

    # The group may rebalance more than once meanwhile (a loaded machine can add a round with
    # the same split): whatever the rounds, A ends with all 12 and never restores one.
    a.wait_log("assignment of 12 partitions", count=2, timeout=90)
    later = assignments(a)[1:]
    assert later[-1] == (12, 12, 0, 0) and all(restored == 0 for _, _, restored, _ in later), a.tail()
    restores = a.text().count("state restored in")
    env.produce(rest)
    env.wait_committed(env.produced, timeout=90, worker=a)
    a.signal(signal.SIGTERM)
    assert a.wait(60) == 0, a.tail()
    assert a.text().count("state restored in") == restores == 12, "A restored a partition it held"
    assert_end_state(env, messages)


# --------------------------------------------------------------------------- 2. broker restart

@pytest.mark.real_only
def test_broker_restart_midstream(env):
    """The broker is restarted (same data, same ports) while the worker consumes and flushes
    and the producer keeps producing. The worker reconnects by itself, keeps its group
    membership or rejoins, and finishes with the fault-free result."""
    broker_dir = need("QS_BROKER_DIR")
    messages = qsgen.generate(hostile=True, **dict(MEDIUM, seed=22))
    first, rest = split(messages, 0.3)
    w = env.start("flush.interval.ms=100", "flush.max.events=250")
    env.produce(first)
    env.wait_committed(len(first) // 2, worker=w)

    trickle = Trickle(env, rest, seconds=8)
    trickle.start()
    wait_until(lambda: trickle.sent >= len(rest) // 4, 60, "a quarter of the rest")
    before = env.committed()
    subprocess.run([str(ROOT / "tests" / "kafka" / "broker.sh"), "restart", broker_dir], check=True,
                   timeout=120, stdout=subprocess.DEVNULL)
    trickle.finish()
    assert before < len(messages), "the restart came after the worker had everything"

    env.wait_committed(env.produced, timeout=120, worker=w)
    assert w.proc.poll() is None, "the worker exited during the broker restart"
    # librdkafka logs to the worker's stderr: the worker did see the broker go away.
    assert "Connection refused" in w.text() or "Disconnected" in w.text(), w.tail()
    w.signal(signal.SIGTERM)
    assert w.wait(60) == 0, w.tail()
    assert_end_state(env, messages)


# --------------------------------------------------------------------------- 3. big stream

@pytest.mark.real_only
def test_stream_over_5mib_per_partition(env):
    """A replicated stream whose encounter partitions each hold more than 5 MiB (more than
    librdkafka's mock cluster keeps per partition, so only the real broker can hold it)
    gives exactly `replicas` times the base stream's expected rows and dead letters."""
    replicas = 90
    # Few deliveries: the bytes go to the encounters topic, so its partitions fill up.
    base = qsgen.generate(seed=23, deliveries=60, hostile=True, id_suffix=qsgen.REPLICA_MARK)

    producer = qsgen.make_producer(env.bootstrap)
    sizes = collections.Counter()
    errors = []

    def on_delivery(err, msg):
        if err is not None:
            errors.append(str(err))
        else:
            sizes[(msg.topic(), msg.partition())] += len(msg.key() or b"") + len(msg.value() or b"")

    n = 0
    hostile = []  # replicate() rewrites the marker in hostile messages too: keep the copies' bytes
    for topic, key, value, expect in qsgen.replicate(base, replicas):
        if expect:
            hostile.append(value)
        while True:
            try:
                producer.produce(env.topics[topic], value=value, key=key, on_delivery=on_delivery)
                break
            except BufferError:
                producer.poll(0.05)
        n += 1
        if n % 1000 == 0:
            producer.poll(0)
    assert producer.flush(120) == 0 and not errors, errors[:5]
    env.produced += n
    small = {tp: size for tp, size in sizes.items()
             if tp[0] == env.topics["encounters"] and size <= 5 * 1024 * 1024}
    assert not small, f"encounter partitions with 5 MiB of keys and values or less: {small}"

    env.run_to_end("flush.max.events=50000", timeout=240)

    expected = oracle.compute(base)
    assert not expected.mismatches, expected.mismatches[:5]
    diffs = oracle.compare(oracle.scale_rows(expected.row_list(), replicas), env.measure_rows())
    assert not diffs, f"{len(diffs)} differences, first: " + "\n".join(diffs[:10])
    assert_no_offset_gap(env)
    assert len(hostile) == replicas * len(hostile_values(base)) == replicas * len(expected.dead_letters)
    assert_dead_letters_once(env, hostile)


# --------------------------------------------------------------------------- 4. zombie worker

@pytest.mark.real_only
def test_zombie_worker_is_fenced(env):
    """Worker A consumes but holds its events un-flushed (flush only on revoke or exit). A is
    frozen with SIGSTOP; its session times out, worker B takes every partition over from the
    offsets in PostgreSQL and commits the stream. A is thawed with SIGCONT: it learns it lost
    its partitions and flushes on the revoke, and that late flush must be refused by the
    offset fence (A logs "fenced"), else A's stale events would be counted a second time.
    The final result is the fault-free one."""
    messages = qsgen.generate(hostile=True, **dict(MEDIUM, seed=24))
    first, second, third = split(messages, 0.4, 0.7)
    group_timing = ("kafka.session.timeout.ms=6000", "kafka.max.poll.interval.ms=10000")

    # A flushes only when it loses partitions or exits; debug logs show each dead letter read.
    a = env.start("flush.interval.ms=600000", "flush.max.events=10000000", "log.level=debug", *group_timing)
    a.wait_log("assigned ", timeout=60)
    env.produce(first)
    # A has read the first part once it has logged every dead letter in it; then a little more.
    a.wait_log("dead letter:", count=len(hostile_values(first)), timeout=60)
    time.sleep(1)
    assert env.committed() == 0, "A flushed although it was told not to"
    a.signal(signal.SIGSTOP)  # A keeps its un-flushed events and stops heartbeating

    try:
        b = env.start("flush.interval.ms=100", *group_timing)
        env.produce(second)
        # B gets the partitions once A's session expires, and commits both parts.
        env.wait_committed(env.produced, timeout=90, worker=b)
    finally:
        a.signal(signal.SIGCONT)  # also when B failed, so the process can be stopped

    # A's late flush is refused by the fence. ("fenced: ", not "fenced": the test's own
    # directory, which A's log names, is called test_zombie_worker_is_fenced0.)
    a.wait_log("fenced: ", timeout=60)
    assert re.search(r"fenced: \S+ is no longer at offset 0 .*reloading the assignment from PostgreSQL",
                     a.text()), a.tail()

    # A rejoins the group and reloads its new share from PostgreSQL (rule 3): from now on it
    # is a legitimate owner again. The rest of the stream flows to both; A holds its share
    # un-flushed until SIGTERM makes both flush and exit; a fresh worker reads anything left.
    a.wait_log("assigned ", count=a.text().count("assigned ") + 1, timeout=60)
    # A fenced worker keeps nothing of its memory: its first assignment after the fence
    # restores every partition it gets.
    a.wait_log("assignment of ", count=2, timeout=60)
    after_fence = ASSIGNMENT.findall(a.text().split("fenced: ", 1)[1])
    assert after_fence, a.tail()
    assigned, kept, restored, _ = map(int, after_fence[0])
    assert kept == 0 and restored == assigned > 0, a.tail()
    env.produce(third)
    time.sleep(2)
    for w in (a, b):
        w.signal(signal.SIGTERM)
    for w in (a, b):
        assert w.wait(60) == 0, w.tail()
    flushes = int(re.findall(r"(\d+) flushes", a.text())[-1])
    assert flushes > 0, "A, owner again after the fence, never committed its share"
    env.run_to_end()

    assert_end_state(env, messages)


# --------------------------------------------------------------------------- 5. outbox crash

@pytest.mark.real_only
def test_dead_letters_published_once_despite_crash_after_ack(env):
    """Issue item 4: the worker is killed after the broker acknowledged a batch of dead
    letters but before the transaction marking them published (qualstream.outbox_batch)
    committed,
    while earlier batches are already marked. After a restart every dead letter must be on
    the dead-letter topic exactly once, and all rows marked published. The window is made
    deterministic by conftest.kill_in_outbox_window."""
    base_hostile = [m for m in qsgen.generate(hostile=True, **dict(MEDIUM, seed=25)) if m.expect]
    burst = base_hostile * 20  # many dead letters: many flushes and outbox batches

    def start():
        env.produce(burst)
        # Flushes of exactly 100 events, so the held outbox batch is 100 dead letters.
        return env.start("flush.max.events=100", "flush.interval.ms=60000")

    marked, on_topic = kill_in_outbox_window(env, "qualstream.dead_letter", env.dead_letter_topic, start)

    # The stream goes on (so the restarted worker flushes, which is when it publishes).
    env.produce(base_hostile)
    env.run_to_end()

    expected = burst + base_hostile
    assert_no_offset_gap(env)
    assert_dead_letters_once(env, hostile_values(expected))
    assert env.query("SELECT count(*) FROM qualstream.dead_letter_outbox WHERE published_at IS NULL")[0][0] == 0

    published = decode_dead_letters(env, env.read_topic(env.dead_letter_topic))
    copies = collections.Counter((d["topic"], d["partition"], d["offset"]) for d in published)
    twice = {k: n for k, n in copies.items() if n > 1}
    rows = {tuple(r) for r in env.query('SELECT topic, partition, "offset" FROM qualstream.dead_letter')}
    assert not twice, (f"{len(twice)} of {len(rows)} dead letters published more than once"
                       f" ({sum(twice.values()) - len(twice)} extra messages; {on_topic} were on the topic"
                       f" and {marked} marked when the worker was killed)")
    assert set(copies) == rows
