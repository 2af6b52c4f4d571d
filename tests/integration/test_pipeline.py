"""The worker end to end: messages encoded by python-avro (not the worker's code),
produced by confluent-kafka, consumed by the qualstream binary into PostgreSQL,
and measure_period compared with oracle.py's independent batch recount."""
import io
import signal
import time

import avro.io

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
    assert env.query("SELECT count(*) FROM qualstream.dead_letter WHERE published_at IS NULL")[0][0] == 0

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
