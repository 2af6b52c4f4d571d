#!/usr/bin/python3
"""Self-checks for qsgen.py and oracle.py.

The core is a hand-made stream whose expected table was worked out by hand
(below), so the oracle is checked against arithmetic, not against itself.
Run: /usr/bin/python3 -m unittest tests/tools/test_oracle_selfcheck.py
"""

import datetime
import os
import sys
import tempfile
import unittest
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import oracle  # noqa: E402
import qsgen   # noqa: E402
from qsgen import DAY_MS, Message, day  # noqa: E402

P = "PLAN-X"


def ts(iso):
    """Epoch ms of an ISO instant written in UTC, e.g. 2017-07-09T23:59:59.999."""
    d = datetime.datetime.fromisoformat(iso).replace(tzinfo=datetime.timezone.utc)
    return int(d.timestamp() * 1000)


def enc(eid, source, freq, service_to, submitted, orig=None, service_from=None, adjudicated=None):
    return dict(encounter_id=eid, original_encounter_id=orig, plan_id=P, member_id="M-" + eid[:2],
                source=source, frequency=freq, service_from=day(service_from or service_to),
                service_to=day(service_to), adjudicated_at=adjudicated,
                submitted_at=None if submitted is None else ts(submitted), ed_visit=False)


def dlv(did, hospital, date, parity, ga, plurality, presentation, method, status="ACTIVE"):
    return dict(delivery_id=did, plan_id=P, hospital_id=hospital, member_id="M-" + did,
                delivery_date=day(date), parity=parity, gestational_age_weeks=ga,
                plurality=plurality, presentation=presentation, method=method, live_birth=True,
                status=status)


def hand_stream():
    """The stream, in production order.

    Encounters (CW13, limit 180 days):
      E1 MEDICARE to 2017-01-10, submitted 2017-07-09 23:59:59.999Z. Jan 10 -> Jan 31 is 21
         days, +Feb 28 = 49, +Mar 31 = 80, +Apr 30 = 110, +May 31 = 141, +Jun 30 = 171,
         +9 = 180: on time (exactly at the limit). Sent with evolved writer schema 11.
      E2 MEDICAID to 2017-01-10, submitted 2017-07-10 00:00:00.000Z: 181 days, late.
      E3 MEDICARE to 2017-03-01, submitted 2017-03-15; R3 replaces E3 (to 2017-03-05),
         submitted 2017-04-02; V3 voids R3 (not E3), submitted 2017-05-20. V3 joins E3's
         chain through R3, so the chain is voided: 3 submissions, no timeliness.
      E4 MEDICAID to 2017-02-01, first owed (submitted null), then the same id submitted
         2017-09-30: Feb 1 -> Sep 30 = 27+31+30+31+30+31+31+30 = 241 days, late. The owed
         version counts nowhere.
      R5 MEDICARE replaces E5 (to 2017-01-20), submitted 2017-08-01, and arrives BEFORE E5.
         E5 to 2016-12-20, submitted 2017-06-20. On its own E5 is 11+31+28+31+30+31+20 = 182
         days (late); the chain's content is R5's, Jan 20 -> Jun 20 = 11+28+31+30+31+20 =
         151 days: on time, counted in June (E5's submission month).
      E6 MEDICARE to 2017-12-01, submitted 2017-12-31 23:59:59.999Z, then the same id
         re-submitted 2018-01-01 00:00:00.000Z: the final version counts in January 2018
         (31 days, on time); nothing remains in 2017.
    Deliveries (NTSV; all live births):
      D1 H1 2017-03-31 NTSV cesarean, then corrected to 2017-04-02 at H2: counts in April
         at H2 only.
      D2 H1 2017-03-10 parity 0, GA 40, plurality 1, presentation null: NTSV_MISSING num.
      D3 H1 2017-03-12 parity null, GA 35: missing, but GA fails: NTSV_MISSING den only.
         Sent with evolved writer schema 12.
      D4 H1 2017-03-15 NTSV vaginal, then VOID: nowhere.
    Rejected: D2 again with parity -1 (must not supersede D2), and a 3-byte value.
    """
    c = qsgen.Codec()
    out = []

    def send(topic, rec, sid=None):
        sid = sid or qsgen.READER_ID[topic]
        out.append(Message(topic, rec["member_id"].encode(), c.frame(sid, rec), rec, sid))

    send("encounters", enc("E1", "MEDICARE", "ORIGINAL", "2017-01-10", "2017-07-09T23:59:59.999"),
         sid=qsgen.EVOLVED_ENCOUNTER_ID)
    send("encounters", enc("E2", "MEDICAID", "ORIGINAL", "2017-01-10", "2017-07-10T00:00:00.000"))
    send("encounters", enc("E3", "MEDICARE", "ORIGINAL", "2017-03-01", "2017-03-15T12:00:00"))
    send("encounters", enc("R3", "MEDICARE", "REPLACEMENT", "2017-03-05", "2017-04-02T08:00:00", orig="E3"))
    send("encounters", enc("V3", "MEDICARE", "VOID", "2017-03-05", "2017-05-20T08:00:00", orig="R3"))
    send("encounters", enc("E4", "MEDICAID", "ORIGINAL", "2017-02-01", None,
                           adjudicated=ts("2017-02-10T10:00:00")))
    send("encounters", enc("E4", "MEDICAID", "ORIGINAL", "2017-02-01", "2017-09-30T10:00:00",
                           adjudicated=ts("2017-02-10T10:00:00")))
    send("encounters", enc("R5", "MEDICARE", "REPLACEMENT", "2017-01-20", "2017-08-01T09:00:00", orig="E5"))
    send("encounters", enc("E5", "MEDICARE", "ORIGINAL", "2016-12-20", "2017-06-20T09:00:00"))
    send("encounters", enc("E6", "MEDICARE", "ORIGINAL", "2017-12-01", "2017-12-31T23:59:59.999"))
    send("encounters", enc("E6", "MEDICARE", "ORIGINAL", "2017-12-01", "2018-01-01T00:00:00.000"))

    send("deliveries", dlv("D1", "H1", "2017-03-31", 0, 39, 1, "VERTEX", "CESAREAN"))
    send("deliveries", dlv("D2", "H1", "2017-03-10", 0, 40, 1, None, "VAGINAL"))
    send("deliveries", dlv("D3", "H1", "2017-03-12", None, 35, 1, "VERTEX", "CESAREAN"),
         sid=qsgen.EVOLVED_DELIVERY_ID)
    send("deliveries", dlv("D4", "H1", "2017-03-15", 0, 38, 1, "VERTEX", "VAGINAL"))
    send("deliveries", dlv("D1", "H2", "2017-04-02", 0, 39, 1, "VERTEX", "CESAREAN"))
    send("deliveries", dlv("D4", "H1", "2017-03-15", 0, 38, 1, "VERTEX", "VAGINAL", status="VOID"))
    bad = dlv("D2", "H1", "2017-03-10", -1, 40, 1, None, "VAGINAL")
    out.append(Message("deliveries", b"M-D2", c.frame(2, bad), bad, 2, "parity_negative"))
    out.append(Message("encounters", b"M-E1", b"\x00\x00\x01", None, None, "short_value"))
    return out


# The hand-worked table: (measure, stratum, grain, period_start, numerator, denominator).
HAND_EXPECTED = [
    ("CW13_SUBMISSIONS", "MEDICARE", "month", "2017-03-01", 1, 0),   # E3
    ("CW13_SUBMISSIONS", "MEDICARE", "month", "2017-04-01", 1, 0),   # R3
    ("CW13_SUBMISSIONS", "MEDICARE", "month", "2017-05-01", 1, 0),   # V3
    ("CW13_SUBMISSIONS", "MEDICARE", "month", "2017-06-01", 1, 0),   # E5
    ("CW13_SUBMISSIONS", "MEDICARE", "month", "2017-07-01", 1, 0),   # E1
    ("CW13_SUBMISSIONS", "MEDICARE", "month", "2017-08-01", 1, 0),   # R5
    ("CW13_SUBMISSIONS", "MEDICARE", "month", "2018-01-01", 1, 0),   # E6 (final version)
    ("CW13_SUBMISSIONS", "MEDICARE", "quarter", "2017-01-01", 1, 0),
    ("CW13_SUBMISSIONS", "MEDICARE", "quarter", "2017-04-01", 3, 0),
    ("CW13_SUBMISSIONS", "MEDICARE", "quarter", "2017-07-01", 2, 0),
    ("CW13_SUBMISSIONS", "MEDICARE", "quarter", "2018-01-01", 1, 0),
    ("CW13_SUBMISSIONS", "MEDICARE", "year", "2017-01-01", 6, 0),
    ("CW13_SUBMISSIONS", "MEDICARE", "year", "2018-01-01", 1, 0),
    ("CW13_SUBMISSIONS", "MEDICAID", "month", "2017-07-01", 1, 0),   # E2
    ("CW13_SUBMISSIONS", "MEDICAID", "month", "2017-09-01", 1, 0),   # E4
    ("CW13_SUBMISSIONS", "MEDICAID", "quarter", "2017-07-01", 2, 0),
    ("CW13_SUBMISSIONS", "MEDICAID", "year", "2017-01-01", 2, 0),
    ("CW13_TIMELY", "MEDICARE", "month", "2017-06-01", 1, 1),        # E5 via R5, 151 days
    ("CW13_TIMELY", "MEDICARE", "month", "2017-07-01", 1, 1),        # E1, 180 days
    ("CW13_TIMELY", "MEDICARE", "month", "2018-01-01", 1, 1),        # E6, 31 days
    ("CW13_TIMELY", "MEDICARE", "quarter", "2017-04-01", 1, 1),
    ("CW13_TIMELY", "MEDICARE", "quarter", "2017-07-01", 1, 1),
    ("CW13_TIMELY", "MEDICARE", "quarter", "2018-01-01", 1, 1),
    ("CW13_TIMELY", "MEDICARE", "year", "2017-01-01", 2, 2),
    ("CW13_TIMELY", "MEDICARE", "year", "2018-01-01", 1, 1),
    ("CW13_TIMELY", "MEDICAID", "month", "2017-07-01", 0, 1),        # E2, 181 days
    ("CW13_TIMELY", "MEDICAID", "month", "2017-09-01", 0, 1),        # E4, 241 days
    ("CW13_TIMELY", "MEDICAID", "quarter", "2017-07-01", 0, 2),
    ("CW13_TIMELY", "MEDICAID", "year", "2017-01-01", 0, 2),
    ("NTSV_CSECTION", "", "month", "2017-04-01", 1, 1),              # D1 after correction
    ("NTSV_CSECTION", "", "quarter", "2017-04-01", 1, 1),
    ("NTSV_CSECTION", "", "year", "2017-01-01", 1, 1),
    ("NTSV_CSECTION", "hospital:H2", "month", "2017-04-01", 1, 1),
    ("NTSV_CSECTION", "hospital:H2", "quarter", "2017-04-01", 1, 1),
    ("NTSV_CSECTION", "hospital:H2", "year", "2017-01-01", 1, 1),
    ("NTSV_MISSING", "", "month", "2017-03-01", 1, 2),               # D2 (num), D3
    ("NTSV_MISSING", "", "month", "2017-04-01", 0, 1),               # D1
    ("NTSV_MISSING", "", "quarter", "2017-01-01", 1, 2),
    ("NTSV_MISSING", "", "quarter", "2017-04-01", 0, 1),
    ("NTSV_MISSING", "", "year", "2017-01-01", 1, 3),
    ("NTSV_MISSING", "hospital:H1", "month", "2017-03-01", 1, 2),
    ("NTSV_MISSING", "hospital:H1", "quarter", "2017-01-01", 1, 2),
    ("NTSV_MISSING", "hospital:H1", "year", "2017-01-01", 1, 2),
    ("NTSV_MISSING", "hospital:H2", "month", "2017-04-01", 0, 1),
    ("NTSV_MISSING", "hospital:H2", "quarter", "2017-04-01", 0, 1),
    ("NTSV_MISSING", "hospital:H2", "year", "2017-01-01", 0, 1),
]


class HandStream(unittest.TestCase):
    def test_hand_worked_table(self):
        res = oracle.compute(hand_stream())
        self.assertEqual(res.mismatches, [])
        self.assertEqual(res.row_list(), sorted((P,) + r for r in HAND_EXPECTED))
        self.assertEqual(len(res.dead_letters), 2)
        self.assertEqual(res.zero_rows, [])

    def test_compare(self):
        exp = sorted((P,) + r for r in HAND_EXPECTED)
        self.assertEqual(oracle.compare(exp, exp), [])
        # A worker row retracted to 0/0 and a measure the oracle does not know are fine.
        extra = exp + [(P, "NTSV_CSECTION", "hospital:H1", "month", "2017-03-01", 0, 0),
                       (P, "CAW9", "", "month", "2017-03-01", 3, 4)]
        self.assertEqual(oracle.compare(exp, extra), [])
        wrong = [r if r[1:5] != ("CW13_TIMELY", "MEDICAID", "year", "2017-01-01") else r[:5] + (1, 2)
                 for r in exp]
        self.assertEqual(len(oracle.compare(exp, wrong)), 1)
        self.assertEqual(len(oracle.compare(exp, exp[1:])), 1)
        as_dicts = [dict(zip(("plan_id", "measure", "stratum", "grain", "period_start", "numerator",
                              "denominator"), (r[0], r[1], r[2], r[3], datetime.date.fromisoformat(r[4]),
                                               str(r[5]), str(r[6])))) for r in exp]
        self.assertEqual(oracle.compare(exp, as_dicts), [])

    def test_void_of_original_only_removes_timeliness(self):
        c = qsgen.Codec()
        e = enc("E7", "MEDICARE", "ORIGINAL", "2017-01-01", "2017-02-01T00:00:00")
        v = enc("V7", "MEDICARE", "VOID", "2017-01-01", "2017-03-01T00:00:00", orig="E7")
        res = oracle.compute([("encounters", b"k", c.frame(1, e)), ("encounters", b"k", c.frame(1, v))])
        # Both records still count as submissions (Feb and Mar share Q1 and 2017).
        self.assertEqual([r[1:] for r in res.row_list()], [
            ("CW13_SUBMISSIONS", "MEDICARE", "month", "2017-02-01", 1, 0),
            ("CW13_SUBMISSIONS", "MEDICARE", "month", "2017-03-01", 1, 0),
            ("CW13_SUBMISSIONS", "MEDICARE", "quarter", "2017-01-01", 2, 0),
            ("CW13_SUBMISSIONS", "MEDICARE", "year", "2017-01-01", 2, 0)])


class Rejections(unittest.TestCase):
    def test_each_hostile_kind_is_rejected_and_valid_edges_are_used(self):
        msgs = qsgen.generate(seed=7, members=20, months=3, encounters_per_month=10, deliveries=20,
                              member_events=1, hostile=True)
        res = oracle.compute(msgs)
        self.assertEqual(res.mismatches, [])
        tagged = sorted(m.expect for m in msgs if m.expect)
        self.assertEqual(tagged, sorted(qsgen.HOSTILE_KINDS))
        self.assertEqual(len(res.dead_letters), len(qsgen.HOSTILE_KINDS))

    def test_boundaries(self):
        d = oracle.Decoder()
        c = qsgen.Codec()
        base = dlv("D9", "H1", "2017-03-10", 0, 40, 1, "VERTEX", "VAGINAL")
        ok = [dict(base, delivery_date=day("1900-01-01")), dict(base, delivery_date=day("2199-12-31")),
              dict(base, delivery_id="x" * 63), dict(base, delivery_id="\u00e9" * 31 + "x"),
              dict(base, parity=30, gestational_age_weeks=50, plurality=15),
              dict(base, parity=None, gestational_age_weeks=0, plurality=None)]
        bad = [dict(base, delivery_date=day("1899-12-31")), dict(base, delivery_date=day("2200-01-01")),
               dict(base, delivery_id="x" * 64), dict(base, delivery_id="\u00e9" * 32),
               dict(base, parity=31), dict(base, gestational_age_weeks=51), dict(base, plurality=16),
               dict(base, gestational_age_weeks=-1), dict(base, hospital_id="")]
        for r in ok:
            d.decode("deliveries", c.frame(2, r))
        for r in bad:
            with self.assertRaises(oracle.Rejected, msg=str(r)):
                d.decode("deliveries", c.frame(2, r))
        # Submitted on the service_to day (any time) is fine; the day before is not.
        e = enc("E8", "MEDICARE", "ORIGINAL", "2017-05-01", "2017-05-01T00:00:00.000")
        d.decode("encounters", c.frame(1, e))
        with self.assertRaises(oracle.Rejected):
            d.decode("encounters", c.frame(1, dict(e, submitted_at=e["submitted_at"] - 1)))


class Generator(unittest.TestCase):
    def test_deterministic(self):
        a = qsgen.generate(seed=3, members=30, months=4, encounters_per_month=15, deliveries=30,
                           hostile=True, member_events=1)
        b = qsgen.generate(seed=3, members=30, months=4, encounters_per_month=15, deliveries=30,
                           hostile=True, member_events=1)
        self.assertEqual([(m.topic, m.key, m.value) for m in a], [(m.topic, m.key, m.value) for m in b])

    def test_demo_stream_decodes_as_generated(self):
        msgs = qsgen.generate(member_events=2, hostile=True)
        res = oracle.compute(msgs)
        self.assertEqual(res.mismatches, [])
        used = [m for m in msgs if not m.expect]
        self.assertTrue(any(m.schema_id == qsgen.EVOLVED_ENCOUNTER_ID for m in used))
        self.assertTrue(any(m.schema_id == qsgen.EVOLVED_DELIVERY_ID for m in used))
        # The gap: PLAN-C MEDICAID has no submission in 2017-08.
        gap = [r for r in res.row_list() if r[:5] == ("PLAN-C", "CW13_SUBMISSIONS", "MEDICAID", "month", "2017-08-01")]
        self.assertEqual(gap, [])

    def test_replicas_scale_exactly(self):
        base = qsgen.generate(seed=5, members=20, months=4, encounters_per_month=20, deliveries=40,
                              hostile=True, member_events=1, id_suffix=qsgen.REPLICA_MARK)
        one = oracle.compute(base)
        three = oracle.compute(list(qsgen.replicate(base, 3)))
        self.assertEqual(three.mismatches, [])
        self.assertEqual(three.row_list(), oracle.scale_rows(one.row_list(), 3))
        self.assertEqual(len(three.dead_letters), 3 * len(one.dead_letters))

    def test_any_partition_interleaving_gives_the_same_rows(self):
        # Key = member_id and the generator keeps every chain and correction within
        # one member, so a consumer's per-partition order, concatenated in any
        # order, must give the production-order answer.
        import zlib
        msgs = qsgen.generate(seed=4, hostile=True, member_events=1)
        want = oracle.compute(msgs).row_list()
        for nparts in (3, 7):
            parts = [[] for _ in range(nparts)]
            for m in msgs:
                parts[zlib.crc32(m.key or b"") % nparts].append(m)
            for order in (parts, parts[::-1]):
                self.assertEqual(oracle.compute([m for p in order for m in p]).row_list(), want)

    def test_jsonl_round_trip_and_registry(self):
        msgs = qsgen.generate(seed=2, members=10, months=2, encounters_per_month=5, deliveries=5,
                              hostile=True)
        with tempfile.TemporaryDirectory() as tmp:
            p = os.path.join(tmp, "s.jsonl")
            qsgen.write_jsonl(msgs, p)
            back = qsgen.read_jsonl(p)
            self.assertEqual(oracle.compute(back).row_list(), oracle.compute(msgs).row_list())
            qsgen.write_registry(tmp)
            qsgen.write_registry(tmp)    # idempotent
            self.assertEqual(sorted(os.listdir(tmp)),
                             sorted(["s.jsonl"] + [f"{i}.avsc" for i in (1, 2, 3, 4, 11, 12)]))


if __name__ == "__main__":
    unittest.main()
