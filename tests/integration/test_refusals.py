"""Errors a retry cannot fix (issue 10, defect class 2).

On 9f1e163 each of these made the worker loop forever: a failed flush reset the worker,
which read the same messages again and failed the same way, and every partition stalled
because a flush covers them all. Now:
  * text that is not valid UTF-8 (a reason cut inside a multi-byte character of a writer
    schema's non-ASCII namespace) is stored with U+FFFD, and the stream goes on;
  * a row the database refuses (a CHECK constraint the test adds) dead-letters the message
    it came from, and only that message;
  * a missing privilege stops the worker (exit 1) with a message naming it.
Each test bounds the worker's run, so a loop fails it instead of hanging the suite.
"""
import json
import signal
import struct

from alert_checks import assert_alerts_match_oracle
from conftest import (admin_sql, assert_dead_letters_once, assert_matches_oracle, assert_no_offset_gap, qsgen,
                      wait_until)

SMALL = dict(seed=31, members=40, months=10, encounters_per_month=20, deliveries=120)
# A namespace of 300 "é" (600 bytes): the worker quotes writer names in 255-byte pieces, an
# odd length, so the quote ends inside a character.
NON_ASCII_ID = 900
NON_ASCII_NAMESPACE = "\u00e9" * 300


def non_ascii_message(env):
    """A message on the encounters topic under writer schema 900: a record the reader cannot
    read (its name differs), whose namespace is long and non-ASCII, so the dead-letter reason
    quotes it and is cut inside a character."""
    schema = {"type": "record", "name": "Other", "namespace": NON_ASCII_NAMESPACE,
              "fields": [{"name": "x", "type": "int"}]}
    (env.registry / f"{NON_ASCII_ID}.avsc").write_text(json.dumps(schema, ensure_ascii=False))
    return qsgen.Message("encounters", b"M-non-ascii", b"\x00" + struct.pack(">I", NON_ASCII_ID) + b"\x02",
                         expect="unknown_schema", note="reason cut inside a character")


def hostile(messages):
    return [m.value for m in messages if m.expect]


def test_non_ascii_reason_cut_mid_character_is_dead_lettered(env):
    """The reproducer of defect 2: the dead letter is stored (its reason valid UTF-8, the cut
    character replaced) and the rest of the stream is counted exactly as the oracle does."""
    messages = qsgen.generate(hostile=True, **SMALL)
    half = len(messages) // 2
    messages = messages[:half] + [non_ascii_message(env)] + messages[half:]
    env.produce(messages)
    env.run_to_end(timeout=90)

    assert_matches_oracle(env, messages)  # the oracle rejects schema 900: it is not in its registry
    assert_no_offset_gap(env)
    assert_dead_letters_once(env, hostile(messages))
    assert_alerts_match_oracle(env, messages)
    reasons = [r for (r,) in env.query("SELECT reason FROM qualstream.dead_letter") if "schema 900" in r]
    assert len(reasons) == 1, reasons
    assert "\u00e9" * 100 in reasons[0] and "\ufffd" in reasons[0], reasons[0]


def test_row_the_database_refuses_is_dead_lettered(env):
    """A CHECK constraint refuses one delivery's record row. The worker traces the refusal to
    that message, dead-letters it naming the SQLSTATE (23514) and counts everything else:
    the result is the oracle's over the stream without that message."""
    messages = qsgen.generate(hostile=True, **SMALL)
    ids = [m.record["delivery_id"] for m in messages if m.topic == "deliveries" and m.record]
    victim = next(i for i in ids if ids.count(i) == 1)
    refused = [m for m in messages if m.topic == "deliveries" and m.record and m.record["delivery_id"] == victim]
    assert len(refused) == 1
    env.execute(f"ALTER TABLE qualstream.record_log ADD CONSTRAINT qs_test_refuse"
                f" CHECK (record_id <> '{victim}')")
    env.produce(messages)
    w = env.run_to_end(timeout=90)

    kept = [m for m in messages if m is not refused[0]]
    assert_matches_oracle(env, kept)
    assert_no_offset_gap(env)
    assert_dead_letters_once(env, hostile(messages) + [refused[0].value])
    assert_alerts_match_oracle(env, kept)
    (reason,) = env.query("SELECT reason FROM qualstream.dead_letter WHERE value = %s", refused[0].value)[0]
    assert "PostgreSQL refused" in reason and "23514" in reason and "qs_test_refuse" in reason, reason
    assert "flushing them one at a time" in w.text(), w.tail()


def test_missing_privilege_stops_the_worker(env):
    """The worker runs as a role with just the privileges it needs; INSERT on
    qualstream.measure_period is revoked while it runs. The next flush with deltas is refused
    (42501): the worker exits 1 within a bounded time, naming the privilege and the table,
    and commits nothing half-done: granted again, a new worker finishes with the oracle's
    result for the whole stream."""
    role = f"{env.name}_writer"
    admin_sql(env.admin_dsn, f"CREATE ROLE {role} LOGIN")
    try:
        env.execute(f"GRANT USAGE ON SCHEMA qualstream TO {role};"
                    f" GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA qualstream TO {role};"
                    f" GRANT USAGE, SELECT, UPDATE ON ALL SEQUENCES IN SCHEMA qualstream TO {role}")
        as_role = f"pg.conninfo={env.dsn} user={role}"
        messages = qsgen.generate(hostile=True, **SMALL)
        first, rest = messages[:len(messages) // 3], messages[len(messages) // 3:]
        env.produce(first)
        w = env.start(as_role)
        env.wait_committed(len(first), worker=w)
        env.execute(f"REVOKE INSERT ON qualstream.measure_period FROM {role}")
        committed = env.offsets()
        env.produce(rest)
        rc = w.wait(60)
        assert rc == 1, f"worker exited {rc}; log:\n{w.tail()}"
        text = w.text()
        assert "permission denied for table measure_period" in text and "42501" in text, w.tail()
        assert "stopping:" in text, w.tail()
        assert text.count("permission denied") <= 2, "the worker retried an error no retry can fix"
        assert env.offsets() == committed, "the worker committed after the privilege went"

        env.execute(f"GRANT INSERT ON qualstream.measure_period TO {role}")
        env.run_to_end(as_role, timeout=90)
        assert_matches_oracle(env, messages)
        assert_no_offset_gap(env)
        assert_dead_letters_once(env, hostile(messages))
        assert_alerts_match_oracle(env, messages)
    finally:
        for w in env.workers:
            if w.proc.poll() is None:
                w.signal(signal.SIGKILL)
                w.proc.wait()
        wait_until(lambda: not env.query("SELECT 1 FROM pg_stat_activity WHERE usename = %s", role), 30,
                   f"the sessions of {role} to end")
        env.execute(f"DROP OWNED BY {role}")
        admin_sql(env.admin_dsn, f"DROP ROLE {role}")
