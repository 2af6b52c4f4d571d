"""CAW6-CAW9 end to end: member-event stories (enrollments reaching or losing their
fifth month, ED encounters replaced and voided, coordination outcomes corrected
within a quarter, care plans revised, coordinator months and contacts), with
supersedes and voids, produced next to encounters and deliveries, consumed by
the qualstream binary, and measure_period compared with oracle.py's batch
recount of the final state (all measures, CW13 and NTSV included)."""
from conftest import assert_matches_oracle, oracle, qsgen

# member_events=11 plays every story scenario and every ED variant for each plan
# (qsgen.CAW*_STORIES, qsgen.ED_VARIANTS); few members, so stories share members.
CAW = dict(seed=31, members=30, months=15, encounters_per_month=8, deliveries=20, member_events=11)


def caw_rows(expected):
    rows = [r for r in expected.row_list() if r[1] in oracle.CAW_MEASURES]
    assert {r[1] for r in rows} == set(oracle.CAW_MEASURES), "the stream must exercise every CAW measure"
    return rows


def test_member_event_stream_matches_oracle(env):
    messages = qsgen.generate(hostile=True, **CAW)
    env.produce(messages)
    env.run_to_end()
    expected = assert_matches_oracle(env, messages)
    assert len(caw_rows(expected)) > 100
    assert env.query("SELECT count(*) FROM qualstream.dead_letter")[0][0] == len(expected.dead_letters)
    assert env.committed() == env.produced


def test_member_event_stream_in_two_runs(env):
    # The second half supersedes and voids what the first half left in the
    # database (fifth months arrive, enrollments are voided, ED chains replaced):
    # the second worker must rebuild its state from PostgreSQL to retract it.
    messages = qsgen.generate(**dict(CAW, seed=32))
    half = len(messages) // 2
    env.produce(messages[:half])
    env.run_to_end()
    assert_matches_oracle(env, messages[:half])
    env.produce(messages[half:])
    env.run_to_end()
    caw_rows(assert_matches_oracle(env, messages))
    assert env.committed() == env.produced
