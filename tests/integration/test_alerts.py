"""The alert feed (README "Alerts", issue 4) end to end.

Hand-made streams with chosen dates, encoded by python-avro (qsgen.Codec), produced by
confluent-kafka and consumed by the qualstream binary. Every expected alert row (alert_id,
kind, state sequence, detected_at, due_date, period_start) is worked out by hand in this file
from the README's contract, and the conditions that hold at the end (qualstream.alert_open)
are also compared with oracle.alerts(), the independent recount, as are the partition clocks
(consumer_offsets.event_clock, which the oracle derives from the keys and the partitioner).

Most tests keep one worker running and produce their stream a step at a time (Steps), waiting
until the worker has committed each step, so every clock reading is known: a partition's clock
is the latest event time it has read (an encounter's later of adjudicated_at and submitted_at,
a delivery's delivery_date), and a topic's watermark the lowest clock among its partitions.
Keys are chosen per partition (key_on) with librdkafka's default partitioner, which the
producer uses; a scenario that must not see another's clock gets its own partition. Plan
alerts start once every partition of their topic has read an event, so partitions a test does
not otherwise use get a clock holder (hold_clocks): an event of a plan of its own, far ahead
of the test's dates, which raises nothing and never holds the watermark back.

Reading of the contract where it could be read two ways:
  * encounter alerts are judged after every message, with the record applied and the clock
    moved ("a pure function of the chain and the clock date"): "the same transitions ... at the
    same clock readings, whatever the flush size" needs a judgement per message, and the
    message that carries an owed original's late submission makes it LATE_SUBMISSION, not
    OVERDUE and resolved at the same reading (the chain was never owed at that reading);
  * a RESOLVED row repeats the identity of the alert it resolves (kind, plan, source,
    member, encounter, hospital); its due_date and period_start are not compared, since a
    replacement can move a due date while the alert stays open.
"""
import calendar
import collections
import datetime
import signal
import time

from alert_checks import (ALL_KINDS, ENCOUNTER_KINDS, MONTH_KINDS, E, D, assert_alert_topic_matches_table,
                          assert_alerts_match_oracle, assert_clocks_match, assert_history_matches_oracle,
                          assert_open_matches_oracle, assert_well_formed, histories, open_alerts)
from conftest import kill_in_outbox_window, oracle, qsgen, wait_until

CODEC = qsgen.Codec()


# --------------------------------------------------------------------------- building streams

def utc(iso):
    """Epoch ms of an ISO instant in UTC; a date alone means its 00:00."""
    d = datetime.datetime.fromisoformat(iso if "T" in iso else iso + "T00:00:00")
    return int(d.replace(tzinfo=datetime.timezone.utc).timestamp() * 1000)


def date(iso):
    return None if iso is None else datetime.date.fromisoformat(iso)


def key_on(partition, tag):
    """The first member id tag-0, tag-1, ... that the producer's default partitioner
    (librdkafka: CRC-32 of the key) puts in `partition` of the tests' 4-partition topics."""
    i = 0
    while oracle.partition_of(f"{tag}-{i}".encode()) != partition:
        i += 1
    return f"{tag}-{i}"


def enc(plan, eid, member, service_to, submitted=None, adjudicated=None, source="MEDICARE",
        freq="ORIGINAL", orig=None):
    """An encounter record keyed by its member; times are ISO instants in UTC."""
    rec = dict(encounter_id=eid, original_encounter_id=orig, plan_id=plan, member_id=member,
               source=source, frequency=freq, service_from=qsgen.day(service_to),
               service_to=qsgen.day(service_to),
               adjudicated_at=None if adjudicated is None else utc(adjudicated),
               submitted_at=None if submitted is None else utc(submitted), ed_visit=False)
    return qsgen.Message(E, member.encode(), CODEC.frame(1, rec), rec, 1)


def dlv(plan, did, member, hospital, day, method, parity=0):
    """A live-born singleton vertex delivery at 39 weeks: NTSV when parity is 0."""
    rec = dict(delivery_id=did, plan_id=plan, hospital_id=hospital, member_id=member,
               delivery_date=qsgen.day(day), parity=parity, gestational_age_weeks=39, plurality=1,
               presentation="VERTEX", method=method, live_birth=True, status="ACTIVE")
    return qsgen.Message(D, member.encode(), CODEC.frame(2, rec), rec, 2)


def hold_clocks(topic, partitions, day="2030-01-01"):
    """One event of PLAN-CLOCK on each of `partitions` of `topic`, at `day`: an owed original
    (service_to the day before) or a non-NTSV delivery. It gives those partitions a clock far
    ahead, so that the watermark is the lowest clock of the partitions the test uses."""
    if topic == E:
        before = (date(day) - datetime.timedelta(days=1)).isoformat()
        return [enc("PLAN-CLOCK", f"CLOCK-{p}", key_on(p, "CLOCK"), before, adjudicated=day + "T00:00:00")
                for p in partitions]
    return [dlv("PLAN-CLOCK", f"CLOCK-{p}", key_on(p, "CLOCK"), "H-CLOCK", day, "VAGINAL", parity=1)
            for p in partitions]


class Steps:
    """One worker, kept running; step() produces messages and waits until the worker has
    committed them (its alerts are committed in the same transactions). The worker polls and
    flushes often, so that a step takes a fraction of a second."""

    def __init__(self, env, *args):
        self.env, self.worker, self.sent = env, None, []
        self.args = ("kafka.fetch.wait.max.ms=50", "flush.interval.ms=50") + args
        self.producer = qsgen.make_producer(env.bootstrap, extra={"linger.ms": 0})

    def step(self, *messages):
        _, errors, _ = qsgen.produce(((m.topic, m.key, m.value) for m in messages), self.producer,
                                     self.env.topics)
        assert not errors, errors[:5]
        self.env.produced += len(messages)
        self.sent += messages
        if self.worker is None:
            self.worker = self.env.start(*self.args)
        self.env.wait_committed(self.env.produced, timeout=60, worker=self.worker)

    def stop(self):
        """Waits until every alert is on the topic, then SIGTERM: the worker must exit 0."""
        wait_until(lambda: all(r["published"] for r in self.env.alerts()), 60, "every alert published")
        self.worker.signal(signal.SIGTERM)
        assert self.worker.wait(60) == 0, self.worker.tail()


# --------------------------------------------------------------------------- reading alerts

def transitions(rows, kinds=ALL_KINDS):
    """{alert_id: [(state, detected_at ISO, due_date, period_start)]}: RESOLVED rows carry
    None for the two dates (not compared, see the module docstring)."""
    def iso(ms):
        return datetime.datetime.fromtimestamp(ms / 1000, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3]
    return {a: [(r["state"], iso(r["detected_at"]),
                 r["due_date"] if r["state"] == "RAISED" else None,
                 r["period_start"] if r["state"] == "RAISED" else None) for r in h]
            for a, h in histories(rows, kinds).items()}


def expect(*entries):
    """transitions()' shape from (alert_id, state, detected_at ISO, due ISO, period ISO)."""
    out = collections.defaultdict(list)
    for a, state, at, due, period in entries:
        at = at if "." in at else at + ".000"
        out[a].append((state, at, date(due) if state == "RAISED" else None,
                       date(period) if state == "RAISED" else None))
    return dict(out)


# --------------------------------------------------------------------------- encounter alerts

def test_encounter_alert_boundaries(env):
    """DUE_SOON, OVERDUE and LATE_SUBMISSION at their day boundaries, on four partitions
    whose clocks move independently. Ages are clock date - service_to; due = service_to + 180.

    Partition 0 (owed originals, MEDICARE). Jan 1 -> May 31 2019 = 30+28+31+30+31 = 150 days,
    Dec 1 2018 -> Jan 1 = 31 days:
      step 1  E149 to 2019-01-02, E150 to 01-01, E180 to 2018-12-02, E181 to 12-01, all owed;
              T0A submitted 2019-05-30 12:00 moves the clock: ages 147/149/179/180, so
              DUE_SOON for E180 and E181 only.
      step 2  T0B 2019-05-31 12:00: ages 148.. i.e. 149 (E149: nothing), 150 (E150: DUE_SOON
              raised), 180 (E180: still DUE_SOON, no row), 181 (E181: DUE_SOON resolved,
              then OVERDUE raised).
      step 3  E181 submitted 2019-05-31 13:00 (181 days: late): OVERDUE resolved, then
              LATE_SUBMISSION raised (due 2019-05-30).
      step 4  V180 voids E180 (14:00): DUE_SOON resolved.
      step 5  E150 itself is submitted 2019-07-05 12:00, which moves the clock 35 days: Jan 1 ->
              Jul 5 = 185 days, a late submission: DUE_SOON resolved, LATE_SUBMISSION raised
              (never OVERDUE: at no clock reading was it owed for 181 days); E149 (Jan 2 -> Jul
              5 = 184 days) goes from nothing straight to OVERDUE, due 2019-07-01.
    Partition 1 (submitted originals, MEDICAID):
      step 1  S180 to 2019-01-01 submitted 2019-06-30 23:59:59.999 (180 days: on time);
              S181 to 2019-01-01 submitted 2019-07-01 00:00:00.000 (181: LATE, due 06-30);
              ER to 2019-01-05 submitted 2019-06-30 10:00 (176 days: on time).
      step 2  RR replaces ER with service_to 2018-12-31 (submitted 2019-07-01 10:00): the
              chain is re-judged, Dec 31 -> Jun 30 = 181 days: LATE_SUBMISSION for ER, due
              2019-06-29, found at the clock 07-01 10:00.
    Partition 2 (leap year; owed L to 2019-09-02: Sep 2 -> Jan 2 = 122 days, -> Feb 29 2020
    = 180, so due 2020-02-29; a 28-day February would make it 2020-03-01):
      ticks on 2020-01-29 (149: nothing), 01-30 (150: DUE_SOON), 02-29 (180: no row),
      03-01 (181: DUE_SOON resolved, OVERDUE raised), one per step.
    Partition 3 (leap year, submitted, MEDICAID): LY/LX to 2019-09-02 submitted 2020-02-29
    23:59:59.999 (180) and 2020-03-01 00:00 (181: LATE, due 02-29); LS1/LS2 to 2020-02-29
    (Feb 29 -> Aug 29 = 182 days, +180 = Aug 27) submitted 08-27 23:59:59.999 (180) and
    08-28 00:00 (181: LATE, due 2020-08-27)."""
    p = "PLAN-E"
    k = [key_on(i, "MEMBER-E") for i in range(4)]
    s = Steps(env)
    s.step(enc(p, "E149", k[0], "2019-01-02", adjudicated="2019-01-12T09:00:00"),
           enc(p, "E150", k[0], "2019-01-01", adjudicated="2019-01-11T09:00:00"),
           enc(p, "E180", k[0], "2018-12-02", adjudicated="2018-12-12T09:00:00"),
           enc(p, "E181", k[0], "2018-12-01", adjudicated="2018-12-11T09:00:00"),
           enc(p, "T0A", k[0], "2019-05-29", submitted="2019-05-30T12:00:00"),
           enc(p, "S180", k[1], "2019-01-01", submitted="2019-06-30T23:59:59.999", source="MEDICAID"),
           enc(p, "S181", k[1], "2019-01-01", submitted="2019-07-01T00:00:00.000", source="MEDICAID"),
           enc(p, "ER", k[1], "2019-01-05", submitted="2019-06-30T10:00:00", source="MEDICAID"),
           enc(p, "L", k[2], "2019-09-02", adjudicated="2019-09-10T09:00:00"),
           enc(p, "T2A", k[2], "2020-01-28", submitted="2020-01-29T12:00:00"),
           enc(p, "LY", k[3], "2019-09-02", submitted="2020-02-29T23:59:59.999", source="MEDICAID"),
           enc(p, "LX", k[3], "2019-09-02", submitted="2020-03-01T00:00:00.000", source="MEDICAID"),
           enc(p, "LS1", k[3], "2020-02-29", submitted="2020-08-27T23:59:59.999", source="MEDICAID"),
           enc(p, "LS2", k[3], "2020-02-29", submitted="2020-08-28T00:00:00.000", source="MEDICAID"))
    s.step(enc(p, "T0B", k[0], "2019-05-30", submitted="2019-05-31T12:00:00"),
           enc(p, "RR", k[1], "2018-12-31", submitted="2019-07-01T10:00:00", source="MEDICAID",
               freq="REPLACEMENT", orig="ER"),
           enc(p, "T2B", k[2], "2020-01-29", submitted="2020-01-30T12:00:00"))
    s.step(enc(p, "E181", k[0], "2018-12-01", adjudicated="2018-12-11T09:00:00", submitted="2019-05-31T13:00:00"),
           enc(p, "T2C", k[2], "2020-02-28", submitted="2020-02-29T12:00:00"))
    s.step(enc(p, "V180", k[0], "2018-12-02", submitted="2019-05-31T14:00:00", freq="VOID", orig="E180"),
           enc(p, "T2D", k[2], "2020-02-29", submitted="2020-03-01T12:00:00"))
    s.step(enc(p, "E150", k[0], "2019-01-01", adjudicated="2019-01-11T09:00:00", submitted="2019-07-05T12:00:00"))
    s.stop()

    rows = env.alerts()
    assert_well_formed(rows)
    want = expect(
        ("DUE_SOON:PLAN-E:E180", "RAISED", "2019-05-30T12:00:00", "2019-05-31", None),
        ("DUE_SOON:PLAN-E:E180", "RESOLVED", "2019-05-31T14:00:00", None, None),
        ("DUE_SOON:PLAN-E:E181", "RAISED", "2019-05-30T12:00:00", "2019-05-30", None),
        ("DUE_SOON:PLAN-E:E181", "RESOLVED", "2019-05-31T12:00:00", None, None),
        ("OVERDUE:PLAN-E:E181", "RAISED", "2019-05-31T12:00:00", "2019-05-30", None),
        ("OVERDUE:PLAN-E:E181", "RESOLVED", "2019-05-31T13:00:00", None, None),
        ("LATE_SUBMISSION:PLAN-E:E181", "RAISED", "2019-05-31T13:00:00", "2019-05-30", None),
        ("DUE_SOON:PLAN-E:E150", "RAISED", "2019-05-31T12:00:00", "2019-06-30", None),
        ("DUE_SOON:PLAN-E:E150", "RESOLVED", "2019-07-05T12:00:00", None, None),
        ("LATE_SUBMISSION:PLAN-E:E150", "RAISED", "2019-07-05T12:00:00", "2019-06-30", None),
        ("OVERDUE:PLAN-E:E149", "RAISED", "2019-07-05T12:00:00", "2019-07-01", None),
        ("LATE_SUBMISSION:PLAN-E:S181", "RAISED", "2019-07-01T00:00:00", "2019-06-30", None),
        ("LATE_SUBMISSION:PLAN-E:ER", "RAISED", "2019-07-01T10:00:00", "2019-06-29", None),
        ("DUE_SOON:PLAN-E:L", "RAISED", "2020-01-30T12:00:00", "2020-02-29", None),
        ("DUE_SOON:PLAN-E:L", "RESOLVED", "2020-03-01T12:00:00", None, None),
        ("OVERDUE:PLAN-E:L", "RAISED", "2020-03-01T12:00:00", "2020-02-29", None),
        ("LATE_SUBMISSION:PLAN-E:LX", "RAISED", "2020-03-01T00:00:00", "2020-02-29", None),
        ("LATE_SUBMISSION:PLAN-E:LS2", "RAISED", "2020-08-28T00:00:00", "2020-08-27", None))
    assert transitions(rows, ENCOUNTER_KINDS) == want

    # Who the alerts are about.
    by = {(r["alert_id"], r["state"]): r for r in rows}
    for eid, member, source in (("E181", k[0], "MEDICARE"), ("S181", k[1], "MEDICAID"), ("ER", k[1], "MEDICAID"),
                                ("LX", k[3], "MEDICAID")):
        r = by[(f"LATE_SUBMISSION:PLAN-E:{eid}", "RAISED")]
        assert (r["plan_id"], r["source"], r["member_id"], r["encounter_id"]) == (p, source, member, eid)
    # An escalation resolves the old alert before raising the new one.
    for old, new in (("DUE_SOON:PLAN-E:E181", "OVERDUE:PLAN-E:E181"),
                     ("OVERDUE:PLAN-E:E181", "LATE_SUBMISSION:PLAN-E:E181"),
                     ("DUE_SOON:PLAN-E:L", "OVERDUE:PLAN-E:L"),
                     ("DUE_SOON:PLAN-E:E150", "LATE_SUBMISSION:PLAN-E:E150")):
        assert by[(old, "RESOLVED")]["id"] < by[(new, "RAISED")]["id"], (old, new)

    expected = oracle.alerts(s.sent, history=True)
    assert_clocks_match(env, expected)
    assert expected.clocks[(E, 0)] == utc("2019-07-05T12:00:00") and expected.clocks[(E, 3)] == utc("2020-08-28")
    assert_history_matches_oracle(rows, expected)
    assert_open_matches_oracle(env, expected, ENCOUNTER_KINDS)
    assert sorted(open_alerts(env, ENCOUNTER_KINDS)) == [
        "LATE_SUBMISSION:PLAN-E:E150", "LATE_SUBMISSION:PLAN-E:E181", "LATE_SUBMISSION:PLAN-E:ER",
        "LATE_SUBMISSION:PLAN-E:LS2", "LATE_SUBMISSION:PLAN-E:LX", "LATE_SUBMISSION:PLAN-E:S181",
        "OVERDUE:PLAN-E:E149", "OVERDUE:PLAN-E:L"]


# --------------------------------------------------------------------------- month alerts

def test_month_alerts(env):
    """MONTH_WITHOUT_SUBMISSION and its warning against the encounters watermark, the lowest
    clock of its partitions: A and B carry PLAN-M's events, the other two hold clocks in 2030.
    PLAN-M's calendar starts in January 2019 (its first submission); 2019 evaluates both sources
    every month.

      1  A: MEDICARE submitted 01-10 12:00; B: owed, adjudicated 01-08 12:00.    wm 01-08
      2  A: owed, adjudicated 01-24 12:00: B holds the watermark back.            wm 01-08
      3  B: 01-23 12:00 = January 31 - 8: no warning yet.                          wm 01-23
      4  B: 01-24 06:00 = January 31 - 7: WARNING MEDICAID 2019-01.                wm 01-24 06:00
      5  A: MEDICAID submitted 01-25 12:00: the warning is resolved.              wm unchanged
      6  A and B: 02-21 12:00 = February 28 - 7: WARNING MEDICARE and MEDICAID 2019-02.
      7  A: MEDICARE submitted 02-27 12:00: the MEDICARE warning is resolved.
      8  A: 03-01 12:00; B still at 02-21: February is not closed, nothing changes.
      9  B: 03-01 06:00: February closes without a MEDICAID submission: the warning is
         resolved, then MONTH_WITHOUT_SUBMISSION raised.                           wm 03-01 06:00
      10 B: a late MEDICAID submission dated 2019-02-15 (B's clock stays): resolved.
      11 A and B: 2020-02-21 12:00: March 2019 to January 2020 close for both sources,
         raised directly (the clock never stood in their warning days); February 2020 has
         29 days, so 02-21 is not yet in its warning.
      12 A: 2020-02-22 12:00, B: 02-22 06:00: WARNING for February 2020, due 02-29."""
    p = "PLAN-M"
    a, b = key_on(0, "MEMBER-M"), key_on(1, "MEMBER-M")

    def owed(eid, key, service_to, at):
        return enc(p, eid, key, service_to, adjudicated=at)

    def sub(eid, key, service_to, at, source):
        return enc(p, eid, key, service_to, adjudicated=service_to + "T08:00:00", submitted=at, source=source)

    steps = [
        [sub("MA1", a, "2019-01-03", "2019-01-10T12:00:00", "MEDICARE"),
         owed("MB1", b, "2019-01-05", "2019-01-08T12:00:00")]
        + hold_clocks(E, (2, 3)),
        [owed("MA2", a, "2019-01-20", "2019-01-24T12:00:00")],
        [owed("MB2", b, "2019-01-20", "2019-01-23T12:00:00")],
        [owed("MB3", b, "2019-01-21", "2019-01-24T06:00:00")],
        [sub("MA3", a, "2019-01-20", "2019-01-25T12:00:00", "MEDICAID")],
        [owed("MA4", a, "2019-02-15", "2019-02-21T12:00:00"), owed("MB4", b, "2019-02-15", "2019-02-21T12:00:00")],
        [sub("MA5", a, "2019-02-20", "2019-02-27T12:00:00", "MEDICARE")],
        [owed("MA6", a, "2019-02-25", "2019-03-01T12:00:00")],
        [owed("MB5", b, "2019-02-25", "2019-03-01T06:00:00")],
        [sub("MB6", b, "2019-02-10", "2019-02-15T12:00:00", "MEDICAID")],
        [owed("MA7", a, "2020-02-10", "2020-02-21T12:00:00"), owed("MB7", b, "2020-02-10", "2020-02-21T12:00:00")],
        [owed("MA8", a, "2020-02-10", "2020-02-22T12:00:00"), owed("MB8", b, "2020-02-10", "2020-02-22T06:00:00")],
    ]
    w, m = "MONTH_WITHOUT_SUBMISSION_WARNING:PLAN-M", "MONTH_WITHOUT_SUBMISSION:PLAN-M"
    by_step = {
        4: [(f"{w}:MEDICAID:2019-01", "RAISED", "2019-01-24T06:00:00", "2019-01-31", "2019-01-01")],
        5: [(f"{w}:MEDICAID:2019-01", "RESOLVED", "2019-01-24T06:00:00", None, None)],
        6: [(f"{w}:MEDICARE:2019-02", "RAISED", "2019-02-21T12:00:00", "2019-02-28", "2019-02-01"),
            (f"{w}:MEDICAID:2019-02", "RAISED", "2019-02-21T12:00:00", "2019-02-28", "2019-02-01")],
        7: [(f"{w}:MEDICARE:2019-02", "RESOLVED", "2019-02-21T12:00:00", None, None)],
        9: [(f"{w}:MEDICAID:2019-02", "RESOLVED", "2019-03-01T06:00:00", None, None),
            (f"{m}:MEDICAID:2019-02", "RAISED", "2019-03-01T06:00:00", "2019-02-28", "2019-02-01")],
        10: [(f"{m}:MEDICAID:2019-02", "RESOLVED", "2019-03-01T06:00:00", None, None)],
        11: [(f"{m}:{source}:{month:%Y-%m}", "RAISED", "2020-02-21T12:00:00",
              month.replace(day=calendar.monthrange(month.year, month.month)[1]).isoformat(), month.isoformat())
             for month in (qsgen.add_months(datetime.date(2019, 3, 1), i) for i in range(11))
             for source in ("MEDICAID", "MEDICARE")],
        12: [(f"{w}:{source}:2020-02", "RAISED", "2020-02-22T06:00:00", "2020-02-29", "2020-02-01")
             for source in ("MEDICAID", "MEDICARE")],
    }
    s = Steps(env)
    for n, messages in enumerate(steps, 1):
        s.step(*messages)
        want = expect(*[e for i in sorted(by_step) if i <= n for e in by_step[i]])
        assert transitions(env.alerts(), MONTH_KINDS) == want, f"after step {n}"
        assert_open_matches_oracle(env, oracle.alerts(s.sent), MONTH_KINDS)
    s.stop()

    rows = env.alerts()
    assert_well_formed(rows)
    by = {(r["alert_id"], r["state"]): r for r in rows}
    assert by[(f"{w}:MEDICAID:2019-02", "RESOLVED")]["id"] < by[(f"{m}:MEDICAID:2019-02", "RAISED")]["id"]
    assert len(open_alerts(env, MONTH_KINDS)) == 24
    assert_clocks_match(env, oracle.alerts(s.sent))


def test_month_stays_open_while_a_partition_has_unread_events(env):
    """README: "A month therefore closes only when every partition has read past it, which is
    what keeps a replay from raising a month that a slower partition would fill", and a
    partition that has not read an event yet holds the watermark back. Three
    partitions hold March 2019 submissions; the fourth holds PLAN-W's January and February
    submissions of both sources and nothing later. Everything is on the topics before the
    worker starts, and it flushes after every event, whatever order it reads the partitions
    in: the watermark never passes 2019-02-11 (the fourth partition's clock), so January
    (submitted) is the only closed month, February is not closed and not in its warning days
    (from 02-21): no month alert may ever be raised, not even for a moment."""
    p = "PLAN-W"
    behind = key_on(3, "MEMBER-W")
    messages = []
    for part in range(3):
        ahead = key_on(part, "MEMBER-W")
        for i in range(8):
            source = ("MEDICARE", "MEDICAID")[i % 2]
            messages.append(enc(p, f"W{part}-{i}", ahead, "2019-02-25", source=source,
                                submitted=f"2019-03-0{1 + i // 2}T1{i}:00:00"))
    messages += [enc(p, "B1", behind, "2019-01-10", submitted="2019-01-15T12:00:00"),
                 enc(p, "B2", behind, "2019-01-10", submitted="2019-01-16T12:00:00", source="MEDICAID"),
                 enc(p, "B3", behind, "2019-02-01", submitted="2019-02-10T12:00:00", source="MEDICAID"),
                 enc(p, "B4", behind, "2019-02-01", submitted="2019-02-11T12:00:00")]
    env.produce(messages)
    env.run_to_end("flush.max.events=1")
    expected = oracle.alerts(messages)
    assert expected.watermarks[E] == utc("2019-02-11T12:00:00")
    assert expected.open == {}
    assert_clocks_match(env, expected)
    raised = [(r["alert_id"], r["state"], r["detected_at"]) for r in env.alerts()]
    watermark = env.query("SELECT clock_ms FROM qualstream.alert_watermark WHERE topic = %s", env.topics[E])
    assert raised == [], (f"month alerts raised while a partition had not read its January and February"
                          f" (stored watermark {watermark}): {raised}")


# --------------------------------------------------------------------------- NTSV and timeliness

def test_ntsv_above_target(env):
    """NTSV_ABOVE_TARGET for PLAN-N at hospital H1 (on one partition; the others hold clocks
    in 2030, so the deliveries watermark is its latest delivery_date, 00:00 UTC). Window: the
    12 months ending with the watermark's month, 2018-04..2019-03 while it is in March 2019.
      1  29 NTSV deliveries on 03-10, 7 cesareans: 24.1% but fewer than 30: nothing.
      2  one more cesarean (03-11): 8/30 = 26.7% with 30: RAISED.
      3  four vaginal (03-12): 8/34 = 23.5%: RESOLVED.
      4  three cesareans and nine vaginal (03-13): 11/46 = 23.913% > 23.9%: RAISED.
      5  one vaginal (03-14): 11/47 = 23.4%: RESOLVED.
      6  a vaginal delivery of step 1 corrected to cesarean (dated 03-10, the clock stays):
         12/47 = 25.5%: RAISED at 03-14.
      7  a non-NTSV delivery at H2 on 2020-02-29: the window 2019-03..2020-02 still holds
         March 2019: no change.
      8  the same at H2 on 2020-03-01: the window 2019-04..2020-03 is empty at H1: RESOLVED."""
    p, key = "PLAN-N", key_on(2, "MEMBER-N")
    first = [dlv(p, f"N1-{i}", key, "H1", "2019-03-10", "CESAREAN" if i < 7 else "VAGINAL") for i in range(29)]
    steps = [
        first + hold_clocks(D, (0, 1, 3)),
        [dlv(p, "N2", key, "H1", "2019-03-11", "CESAREAN")],
        [dlv(p, f"N3-{i}", key, "H1", "2019-03-12", "VAGINAL") for i in range(4)],
        [dlv(p, f"N4-{i}", key, "H1", "2019-03-13", "CESAREAN" if i < 3 else "VAGINAL") for i in range(12)],
        [dlv(p, "N5", key, "H1", "2019-03-14", "VAGINAL")],
        [dlv(p, "N1-28", key, "H1", "2019-03-10", "CESAREAN")],
        [dlv(p, "N7", key, "H2", "2020-02-29", "VAGINAL", parity=1)],
        [dlv(p, "N8", key, "H2", "2020-03-01", "VAGINAL", parity=1)],
    ]
    a = "NTSV_ABOVE_TARGET:PLAN-N:H1"
    by_step = {2: [(a, "RAISED", "2019-03-11T00:00:00", None, "2018-04-01")],
               3: [(a, "RESOLVED", "2019-03-12T00:00:00", None, None)],
               4: [(a, "RAISED", "2019-03-13T00:00:00", None, "2018-04-01")],
               5: [(a, "RESOLVED", "2019-03-14T00:00:00", None, None)],
               6: [(a, "RAISED", "2019-03-14T00:00:00", None, "2018-04-01")],
               8: [(a, "RESOLVED", "2020-03-01T00:00:00", None, None)]}
    s = Steps(env)
    for n, messages in enumerate(steps, 1):
        s.step(*messages)
        want = expect(*[e for i in sorted(by_step) if i <= n for e in by_step[i]])
        assert transitions(env.alerts(), ("NTSV_ABOVE_TARGET",)) == want, f"after step {n}"
        assert_open_matches_oracle(env, oracle.alerts(s.sent), ("NTSV_ABOVE_TARGET",))
    s.stop()
    rows = env.alerts()
    assert_well_formed(rows)
    assert all(r["hospital_id"] == "H1" for r in rows)
    assert_clocks_match(env, oracle.alerts(s.sent))


def test_timeliness_at_risk(env):
    """TIMELINESS_AT_RISK for PLAN-T MEDICARE 2019, with alert_timeliness_min_denominator
    lowered to 5 (a rule read at query time); one partition, the others hold clocks. On time:
    service_to 2019-06-01 or 06-10, submitted in July; late: service_to 2019-01-01, submitted
    07-02.. (182+ days).
      1  T1, T2 on time, L1, L2 late: 2/4, fewer than 5 originals: nothing.
      2  L3 late (07-03 12:00): 2/5 = 40% < 80%: RAISED (period 2019-01-01, due 12-31).
      3  nine on time (07-04): 11/14 = 78.6%: still below, no row.
      4  one on time (07-05 12:00): 12/15 = 80%, equal to the benchmark meets it: RESOLVED.
      5  a replacement moves T1's service_to to 2019-01-01: T1 (submitted 07-01) is 181
         days late: 11/15: RAISED again (07-06 12:00).
      6  voids of L2 and L3 (07-07 12:00): 11/13 = 84.6%: RESOLVED."""
    env.execute("UPDATE qualstream.rule SET value = 5 WHERE name = 'alert_timeliness_min_denominator'")
    p, key = "PLAN-T", key_on(1, "MEMBER-T")

    def on_time(eid, at, service_to="2019-06-10"):
        return enc(p, eid, key, service_to, submitted=at)

    def late(eid, at):
        return enc(p, eid, key, "2019-01-01", submitted=at)
    steps = [
        [on_time("T1", "2019-07-01T12:00:00", "2019-06-01"), on_time("T2", "2019-07-01T12:00:00", "2019-06-01"),
         late("L1", "2019-07-02T12:00:00"), late("L2", "2019-07-02T12:00:00")] + hold_clocks(E, (0, 2, 3)),
        [late("L3", "2019-07-03T12:00:00")],
        [on_time(f"T{i}", "2019-07-04T12:00:00") for i in range(3, 12)],
        [on_time("T12", "2019-07-05T12:00:00")],
        [enc(p, "R1", key, "2019-01-01", submitted="2019-07-06T12:00:00", freq="REPLACEMENT", orig="T1")],
        [enc(p, "V2", key, "2019-01-01", submitted="2019-07-07T12:00:00", freq="VOID", orig="L2"),
         enc(p, "V3", key, "2019-01-01", submitted="2019-07-07T12:00:00", freq="VOID", orig="L3")],
    ]
    a = "TIMELINESS_AT_RISK:PLAN-T:MEDICARE:2019"
    by_step = {2: [(a, "RAISED", "2019-07-03T12:00:00", "2019-12-31", "2019-01-01")],
               4: [(a, "RESOLVED", "2019-07-05T12:00:00", None, None)],
               5: [(a, "RAISED", "2019-07-06T12:00:00", "2019-12-31", "2019-01-01")],
               6: [(a, "RESOLVED", "2019-07-07T12:00:00", None, None)]}
    s = Steps(env)
    rules = {"timeliness_min_denominator": 5}
    for n, messages in enumerate(steps, 1):
        s.step(*messages)
        want = expect(*[e for i in sorted(by_step) if i <= n for e in by_step[i]])
        assert transitions(env.alerts(), ("TIMELINESS_AT_RISK",)) == want, f"after step {n}"
        assert_open_matches_oracle(env, oracle.alerts(s.sent, rules=rules), ("TIMELINESS_AT_RISK",))
    s.stop()
    rows = env.alerts()
    assert_well_formed(rows)
    # The replacement also made T1 a late submission.
    assert "LATE_SUBMISSION:PLAN-T:T1" in open_alerts(env, ENCOUNTER_KINDS)


# --------------------------------------------------------------------------- the feed

def test_alert_topic_decodes_with_published_schema(env):
    """A consumer of topics.alerts decodes every message with the writer schema the
    registry gives for its id, and finds exactly the qualstream.alerts rows, each once.
    The stream raises every kind (minimum denominators lowered to 2), with null and non-null
    optional fields and both states: PLAN-F's owed O1 (OVERDUE) and O2 (DUE_SOON, then
    voided: RESOLVED), late L (LATE_SUBMISSION, and timeliness 1/2), months since May 2019
    without submissions (MONTH_WITHOUT_SUBMISSION, and MEDICAID July's warning at the clock
    07-25, resolved by the void, itself a submission), and two NTSV cesareans at H9
    (NTSV_ABOVE_TARGET)."""
    env.execute("UPDATE qualstream.rule SET value = 2 WHERE name IN"
                " ('alert_timeliness_min_denominator', 'alert_ntsv_min_denominator')")
    p, ke, kd = "PLAN-F", key_on(0, "MEMBER-F"), key_on(3, "MEMBER-F")
    s = Steps(env)
    s.step(enc(p, "M1", ke, "2019-05-01", submitted="2019-05-10T12:00:00"),
           enc(p, "O1", ke, "2019-01-01", adjudicated="2019-01-05T12:00:00"),
           enc(p, "O2", ke, "2019-02-20", adjudicated="2019-02-25T12:00:00", source="MEDICAID"),
           enc(p, "L", ke, "2019-01-10", submitted="2019-07-25T12:00:00"),
           dlv(p, "D1", kd, "H9", "2019-07-01", "CESAREAN"),
           dlv(p, "D2", kd, "H9", "2019-07-01", "CESAREAN"),
           *hold_clocks(E, (1, 2, 3)), *hold_clocks(D, (0, 1, 2)))
    s.step(enc(p, "V2", ke, "2019-02-20", submitted="2019-07-25T13:00:00", source="MEDICAID", freq="VOID", orig="O2"))
    s.stop()
    rows = env.alerts()
    assert_well_formed(rows)
    assert {r["kind"] for r in rows} == set(ALL_KINDS)
    assert [r["state"] for r in rows if r["alert_id"] == "MONTH_WITHOUT_SUBMISSION_WARNING:PLAN-F:MEDICAID:2019-07"] \
        == ["RAISED", "RESOLVED"]
    assert {r["state"] for r in rows} == {"RAISED", "RESOLVED"}
    assert_alert_topic_matches_table(env)
    expected = oracle.alerts(s.sent, rules={"timeliness_min_denominator": 2, "ntsv_min_denominator": 2},
                             history=True)
    assert_open_matches_oracle(env, expected)
    assert sorted(open_alerts(env)) == [
        "LATE_SUBMISSION:PLAN-F:L", "MONTH_WITHOUT_SUBMISSION:PLAN-F:MEDICAID:2019-05",
        "MONTH_WITHOUT_SUBMISSION:PLAN-F:MEDICAID:2019-06", "MONTH_WITHOUT_SUBMISSION:PLAN-F:MEDICARE:2019-06",
        "NTSV_ABOVE_TARGET:PLAN-F:H9",
        "OVERDUE:PLAN-F:O1", "TIMELINESS_AT_RISK:PLAN-F:MEDICARE:2019"]


def test_wall_clock_judges_by_todays_date(env):
    """alerts.clock=wall: every clock is the machine's UTC time, so owed encounters age and
    months close with no event moving them. PLAN-WALL's owed originals, adjudicated long ago:
    O200 (service_to 200 days before today: OVERDUE), O165 (DUE_SOON), O10 (nothing); one
    MEDICARE submission on the 5th of the month before last (M0) starts its calendar, so
    MEDICARE's last month and MEDICAID's M0 and last month are closed without a submission.
    Ages are far from the 150/181 boundaries so that a midnight during the test changes
    nothing; the months are worked out for the dates at the start and at the end."""
    p, key = "PLAN-WALL", key_on(2, "MEMBER-WALL")
    t0 = int(time.time() * 1000)
    today = datetime.datetime.now(datetime.timezone.utc).date()

    def back(n):
        return (today - datetime.timedelta(days=n)).isoformat()
    m0 = qsgen.add_months(today.replace(day=1), -2)
    messages = [enc(p, f"O{n}", key, back(n), adjudicated=back(n - 5) + "T10:00:00") for n in (200, 165, 10)]
    messages.append(enc(p, "S1", key, m0.isoformat(), submitted=m0.replace(day=5).isoformat() + "T10:00:00"))
    env.produce(messages)
    env.run_to_end("alerts.clock=wall")
    t1 = int(time.time() * 1000)
    rows = env.alerts()
    assert_well_formed(rows)
    assert all(t0 - 1000 <= r["detected_at"] <= t1 + 1000 for r in rows), \
        [(r["alert_id"], r["detected_at"]) for r in rows if not t0 - 1000 <= r["detected_at"] <= t1 + 1000]
    got = {r["alert_id"]: (r["state"], r["due_date"]) for r in rows if r["kind"] in ENCOUNTER_KINDS}
    assert got == {f"OVERDUE:{p}:O200": ("RAISED", today - datetime.timedelta(days=20)),
                   f"DUE_SOON:{p}:O165": ("RAISED", today + datetime.timedelta(days=15))}

    def closed(day):
        m1 = qsgen.add_months(day.replace(day=1), -1)
        want = {(s_, m1) for s_ in ("MEDICARE", "MEDICAID")} | {("MEDICAID", qsgen.add_months(m1, -1))}
        return {f"MONTH_WITHOUT_SUBMISSION:{p}:{s_}:{m:%Y-%m}" for s_, m in want}
    months = {r["alert_id"] for r in rows if r["kind"] == "MONTH_WITHOUT_SUBMISSION"}
    end = datetime.datetime.now(datetime.timezone.utc).date()
    assert months in (closed(today), closed(end)), months


# --------------------------------------------------------------------------- replay and crash

# Ten months of three plans: late, owed, corrected and voided encounters, the gap month
# (PLAN-C MEDICAID 2017-06), and enough NTSV deliveries at each plan's first hospital for
# its alert.
REPLAY = dict(seed=33, members=40, months=10, encounters_per_month=15, deliveries=250,
              hospitals_per_plan=2)


def assert_months_closed_only_when_read(rows, messages, expected):
    """Every MONTH_WITHOUT_SUBMISSION ever raised either still holds at the end or was
    filled by a submission that reached its partition after that partition's clock had
    left the month (a late event): otherwise the month was closed before every partition
    had read past it."""
    late = oracle.months_filled_late(messages)
    wrong = sorted({r["alert_id"] for r in rows if r["kind"] == "MONTH_WITHOUT_SUBMISSION" and r["state"] == "RAISED"
                    and r["alert_id"] not in expected.open
                    and (r["plan_id"], r["source"], r["period_start"]) not in late})
    assert not wrong, f"{len(wrong)} months raised before every partition had read past them: {wrong[:10]}"


def test_replay_gives_the_same_alerts(env):
    """The same history read twice, in fresh databases and groups, with different flush
    sizes (README "What a replay reproduces"): the encounter alerts are the same rows (kind,
    state, detected_at, due_date, details ...) per alert_id, and the oracle's history; the
    conditions that hold at the end are the same and the oracle's; the clocks are the
    oracle's; and no month was closed before every partition had read past it. Transient plan
    alerts may differ between the runs, so plan alert histories are not compared."""
    messages = qsgen.generate(**REPLAY)
    env.produce(messages)
    env.run_to_end()
    twin = env.twin()
    twin.run_to_end("flush.max.events=37")
    expected = oracle.alerts(messages, history=True)
    kinds = collections.Counter(v["kind"] for v in expected.open.values())
    assert set(kinds) >= {"LATE_SUBMISSION", "OVERDUE", "MONTH_WITHOUT_SUBMISSION", "NTSV_ABOVE_TARGET"}, kinds
    assert "MONTH_WITHOUT_SUBMISSION:PLAN-C:MEDICAID:2017-06" in expected.open

    runs = []
    for e in (env, twin):
        rows = e.alerts()
        assert_well_formed(rows)
        assert_clocks_match(e, expected)
        assert_history_matches_oracle(rows, expected)
        assert_open_matches_oracle(e, expected)
        assert_months_closed_only_when_read(rows, messages, expected)
        runs.append(rows)

    def full(rows):
        return {a: [tuple(r[k] for k in e_cols) for r in h] for a, h in histories(rows, ENCOUNTER_KINDS).items()}
    e_cols = ("kind", "state", "plan_id", "source", "member_id", "encounter_id", "hospital_id", "period_start",
              "due_date", "detected_at", "details")
    first, second = (full(r) for r in runs)
    diff = sorted(a for a in set(first) | set(second) if first.get(a) != second.get(a))
    assert not diff, "; ".join(f"{a}: {first.get(a)} vs {second.get(a)}" for a in diff[:3])

    def conditions(e):      # an open NTSV alert's window is the one it was raised in
        return {a: dict(v, period_start=None) if v["kind"] == "NTSV_ABOVE_TARGET" else v
                for a, v in open_alerts(e).items()}
    assert conditions(env) == conditions(twin)


CRASH = dict(seed=35, members=60, months=14, encounters_per_month=25, deliveries=250)


def test_alerts_published_once_despite_crash_after_ack(env):
    """The worker is killed after the broker acknowledged a batch of alerts but before the
    transaction marking them published (qualstream.outbox_batch) committed, while earlier
    batches are already marked: a trigger on qualstream.outbox_batch makes the marking INSERT
    wait for an advisory lock the test holds once some batches are marked (as the dead-letter
    crash test does). After a restart every alerts row is on topics.alerts exactly once (header
    qualstream.alert_row = its id, key = its alert_id), all rows are marked, the table has no
    double transition, and the alerts equal the oracle's."""
    messages = qsgen.generate(**CRASH)
    cut = len(messages) * 4 // 5

    def start():
        env.produce(messages[:cut])
        return env.start("flush.max.events=100", "flush.interval.ms=60000")

    kill_in_outbox_window(env, "qualstream.alerts", env.alert_topic, start)

    env.produce(messages[cut:])
    env.run_to_end()
    assert_alerts_match_oracle(env, messages)
