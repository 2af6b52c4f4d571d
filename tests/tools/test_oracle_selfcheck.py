#!/usr/bin/python3
"""Self-checks for qsgen.py and oracle.py.

The core is hand-made streams whose expected tables were worked out by hand
(below: one for CW13 and NTSV, one per CAW measure), so the oracle is checked
against arithmetic, not against itself.
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
                       (P, "CW99_UNKNOWN", "", "month", "2017-03-01", 3, 4)]
        self.assertEqual(oracle.compare(exp, extra), [])
        # CAW rows are compared: one the oracle does not expect is a difference.
        self.assertEqual(len(oracle.compare(exp, exp + [(P, "CAW9", "", "month", "2017-03-01", 3, 4)])), 1)
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


class ChainRules(unittest.TestCase):
    """README "Identity, corrections and voids": chains from the latest versions only (the cases of
    tests/test_measures.c "chains", worked by hand there). O is on time: to 2019-01-01, submitted
    2019-03-01 = 59 days; a content of to 2018-08-01 makes it 212 days, late."""

    def timely(self, recs):
        c = qsgen.Codec()
        msgs = [("encounters", b"k", c.frame(1, r)) for r in recs]
        rows = oracle.compute(msgs).row_list()
        return [r[5:] for r in rows if r[1] == "CW13_TIMELY" and r[3] == "year"] or [(0, 0)]

    O = enc("O", "MEDICARE", "ORIGINAL", "2019-01-01", "2019-03-01T00:00:00")

    def test_self_reference_is_a_chain_of_its_own(self):
        r = enc("R", "MEDICARE", "REPLACEMENT", "2018-08-01", "2019-03-02T00:00:00", orig="O")
        self.assertEqual(self.timely([self.O, r]), [(0, 1)])
        self.assertEqual(self.timely([self.O, r, dict(r, original_encounter_id="R")]), [(1, 1)])

    def test_original_resent_as_replacement_takes_its_void_along(self):
        x = enc("X", "MEDICARE", "ORIGINAL", "2019-01-05", "2019-03-03T00:00:00")
        v = enc("V", "MEDICARE", "VOID", "2019-01-05", "2019-03-04T00:00:00", orig="X")
        xr = enc("X", "MEDICARE", "REPLACEMENT", "2019-01-01", "2019-03-05T00:00:00", orig="O")
        self.assertEqual(self.timely([self.O, x, v]), [(1, 1)])
        self.assertEqual(self.timely([self.O, x, v, xr]), [(0, 0)])
        # And back to an ORIGINAL: V voids X's own chain, O counts alone.
        self.assertEqual(self.timely([self.O, x, v, xr, x]), [(1, 1)])

    def test_corrected_original_id_moves_the_records_naming_it(self):
        a = enc("A", "MEDICARE", "ORIGINAL", "2018-08-01", "2019-03-01T00:00:00")
        r = enc("R", "MEDICARE", "REPLACEMENT", "2018-08-01", "2019-03-02T00:00:00", orig="A")
        vr = enc("VR", "MEDICARE", "VOID", "2018-08-01", "2019-03-03T00:00:00", orig="R")
        self.assertEqual(self.timely([self.O, a, r, vr]), [(1, 1)])      # A voided, O on time
        self.assertEqual(self.timely([self.O, a, r, vr, dict(r, original_encounter_id="O")]),
                         [(0, 1)])                                        # O voided, A late

    def test_cycle_has_no_original(self):
        r1 = enc("R1", "MEDICARE", "REPLACEMENT", "2019-01-01", "2019-03-02T00:00:00", orig="O")
        r2 = enc("R2", "MEDICARE", "REPLACEMENT", "2019-01-01", "2019-03-03T00:00:00", orig="R1")
        r1c = enc("R1", "MEDICARE", "REPLACEMENT", "2018-08-01", "2019-03-04T00:00:00", orig="R2")
        self.assertEqual(self.timely([self.O, r1, r2, r1c]), [(1, 1)])
        chains = oracle.encounter_chains({"R1": (3, r1c), "R2": (2, r2), "O": (0, self.O)})
        self.assertEqual(sorted(chains), ["O", "R1"])                    # the cycle's smallest id
        # O made to name R2: it joins the cycle's chain, which has no original.
        o2 = enc("O", "MEDICARE", "REPLACEMENT", "2019-01-01", "2019-03-01T00:00:00", orig="R2")
        self.assertEqual(self.timely([self.O, r1, r2, r1c, o2]), [(0, 0)])
        v = enc("W", "MEDICARE", "VOID", "2019-01-01", "2019-03-05T00:00:00", orig="O")
        chains = oracle.encounter_chains({"R1": (3, r1c), "R2": (2, r2), "O": (4, o2), "W": (5, v)})
        self.assertEqual({k: sorted(r["encounter_id"] for _, r in m) for k, m in chains.items()},
                         {"R1": ["O", "R1", "R2", "W"]})

    def test_order_does_not_matter(self):
        """Every order of the same final versions gives the same chains."""
        import itertools
        recs = {"O": self.O,
                "R": enc("R", "MEDICARE", "REPLACEMENT", "2018-08-01", "2019-03-02T00:00:00", orig="Q"),
                "Q": enc("Q", "MEDICARE", "REPLACEMENT", "2019-01-01", "2019-03-02T00:00:00", orig="O"),
                "V": enc("V", "MEDICARE", "VOID", "2019-01-01", "2019-03-02T00:00:00", orig="V")}
        seen = set()
        for perm in itertools.permutations(recs):
            enc_state = {eid: (i, recs[eid]) for i, eid in enumerate(perm)}
            chains = oracle.encounter_chains(enc_state)
            seen.add(tuple(sorted((k, tuple(sorted(r["encounter_id"] for _, r in m))) for k, m in chains.items())))
        self.assertEqual(seen, {(("O", ("O", "Q", "R")), ("V", ("V",)))})


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
               dict(base, gestational_age_weeks=-1), dict(base, hospital_id=""),
               dict(base, member_id="M\x00D9")]
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

    def test_member_event_stories(self):
        kw = dict(seed=21, members=40, months=15, encounters_per_month=10, deliveries=20, hostile=True)
        msgs = qsgen.generate(member_events=11, **kw)
        res = oracle.compute(msgs)
        self.assertEqual(res.mismatches, [])
        notes = {m.note for m in msgs if m.note.startswith("CAW")}
        played = {n.split(" (")[1].split(",")[0].rstrip(")") for n in notes if " (" in n}
        stories = qsgen.CAW6_STORIES + qsgen.CAW7_STORIES + qsgen.CAW8_STORIES + qsgen.CAW9_STORIES
        self.assertEqual(set(stories) - played, set())
        ed = {n.split(" (")[1].rstrip(")") for n in notes if n.startswith("CAW7 ED") and " (" in n}
        self.assertEqual(set(qsgen.ED_VARIANTS) - ed, set())
        rows = res.row_list()
        for plan in ("PLAN-A", "PLAN-B", "PLAN-C"):
            for measure in oracle.CAW_MEASURES:
                mine = [r for r in rows if r[0] == plan and r[1] == measure]
                self.assertTrue(mine and any(r[5] for r in mine) and any(r[5] < r[6] for r in mine),
                                (plan, measure))
        # Member events and their ED encounters share the member's key.
        self.assertTrue(all(m.key == m.record["member_id"].encode() for m in msgs
                            if m.note.startswith("CAW")))
        # Without member events the rest of the stream is unchanged.
        rest = [(m.topic, m.key, m.value) for m in msgs if not m.note.startswith("CAW")]
        self.assertEqual(rest, [(m.topic, m.key, m.value) for m in qsgen.generate(**kw)])

        # Qualification flips retroactively: the fifth month (December) of a
        # fifth_month_late story changes earlier months' CAW7 cells, and a void that
        # drops a member to 4 months takes them out again.
        def caw7(prefix):
            return {k: v for k, v in oracle.compute(msgs[:prefix]).rows.items() if k[1] == "CAW7"}

        def earlier_months_changed(i):
            when = qsgen.date_of(msgs[i].record["body"]["month"])
            before, after = caw7(i), caw7(i + 1)
            return {k for k in set(before) | set(after) if k[3] == "month" and k[4] < when
                    and before.get(k) != after.get(k)}

        late = [i for i, m in enumerate(msgs) if m.note == "CAW7 enrollment (fifth_month_late)"
                and qsgen.date_of(m.record["body"]["month"]).month == 12]
        voids = [i for i, m in enumerate(msgs) if m.note.startswith("CAW7 enrollment voided")]
        self.assertTrue(late and voids)
        self.assertTrue(any(len(earlier_months_changed(i)) >= 4 for i in late))
        self.assertTrue(any(len(earlier_months_changed(i)) >= 2 for i in voids))

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
                             sorted(["s.jsonl"] + [f"{i}.avsc" for i in (1, 2, 3, 4, 5, 11, 12)]))


# --------------------------------------------------------------------------- CAW6-CAW9 by hand

Y = "PLAN-Y"


class _Stream:
    """Builds a hand stream of member events and encounters in production order."""

    def __init__(self):
        self.c = qsgen.Codec()
        self.out = []

    def ev(self, eid, member, kind, plan=P, status="ACTIVE", **body):
        for k in ("month", "event_date", "completed_on", "contact_date"):
            if k in body and isinstance(body[k], str):
                body[k] = day(body[k])
        rec = dict(event_id=eid, plan_id=plan, member_id=member, status=status, body=dict(body, _kind=kind))
        self.out.append(Message("member-events", member.encode(), self.c.frame(3, rec), rec, 3))
        return rec

    def again(self, rec, status="ACTIVE", **body):
        """A later version of member event rec (same event_id)."""
        b = dict(rec["body"])
        b.pop("_kind")
        b.update(body)
        return self.ev(rec["event_id"], rec["member_id"], rec["body"]["_kind"], rec["plan_id"], status, **b)

    def enc(self, eid, member, freq, service_to, submitted, ed, orig=None, plan=P):
        rec = dict(encounter_id=eid, original_encounter_id=orig, plan_id=plan, member_id=member,
                   source="MEDICAID", frequency=freq, service_from=day(service_to),
                   service_to=day(service_to), adjudicated_at=None,
                   submitted_at=None if submitted is None else ts(submitted), ed_visit=ed)
        self.out.append(Message("encounters", member.encode(), self.c.frame(1, rec), rec, 1))
        return rec


def caw6_stream():
    """CAW6: per (plan, member) and period the latest event (event_date, then stream
    position of the event's final version) decides; smhs: num C+E, den 2A-B-D.

      M1 a  2017-01-10 smhs county UTR     member UTR      -> 0/0
      M1 b  2017-02-20 smhs county SUCCESS member UTR      -> 1/1
      M1 c  2017-02-20 smhs county SUCCESS member SUCCESS  -> 2/2 (same day as b, later)
      M1 b  re-sent unchanged after c: b's final version is now the later one on
            2017-02-20, so b decides February (1/1), not c.
      M1 d  2017-03-05 not smhs: March counts nowhere, and d is M1's latest in Q1,
            so M1 counts nowhere in Q1 either.
      M1 e  2017-04-02 smhs county NOT_ATTEMPTED member SUCCESS -> 1/2 (2A-0-0)
      M1 f  2017-05-15 smhs SUCCESS/SUCCESS, then VOID: May has nothing, Q2 is e's.
      M1 g  2017-06-30 smhs county UTR member SUCCESS -> 1/1, corrected to event_date
            2017-07-01: July and Q3 1/1; June nothing; g is M1's latest in 2017.
      M2 h  2017-02-01 smhs county SUCCESS member NOT_ATTEMPTED -> 1/2
      M2 i  2017-01-15 smhs SUCCESS/SUCCESS -> 2/2, arrives after h (older date):
            January is i's; Q1 and 2017 are h's (Feb 1 > Jan 15).
      M3 j  2017-02-10 smhs county UTR member SUCCESS -> 1/1, corrected to county
            SUCCESS -> 2/2.
      M4 k  2017-11-03 smhs UTR/UTR -> 0/0 (November and Q4 cells stay 0/0).
      M1 on PLAN-Y: 2017-08-01 smhs SUCCESS/SUCCESS -> 2/2 for PLAN-Y only; it is a
            different member from PLAN-X's M1 (were it the same, PLAN-X's 2017 would
            be decided by it: 2/2 instead of g's 1/1).

      PLAN-X  month 2017-01: M1 0/0 + M2 2/2           = 2/2
              month 2017-02: M1 1/1 + M2 1/2 + M3 2/2  = 4/5
              month 2017-03: M1 not smhs               = absent
              month 2017-04: M1 1/2                    = 1/2
              month 2017-05: voided                    = absent
              month 2017-06: moved away                = absent
              month 2017-07: M1 1/1                    = 1/1
              month 2017-11: M4 0/0                    = absent (a zero row)
              Q1: M1 nowhere + M2 1/2 + M3 2/2         = 3/4
              Q2: M1 1/2                               = 1/2
              Q3: M1 1/1                               = 1/1
              Q4: M4 0/0                               = absent (a zero row)
              2017: M1 1/1 + M2 1/2 + M3 2/2 + M4 0/0  = 4/5
      PLAN-Y  month 2017-08, Q3, 2017: 2/2
    """
    s = _Stream()
    U, S, N = "UNABLE_TO_REACH", "SUCCESS", "NOT_ATTEMPTED"

    def bh(eid, m, d, smhs, cpo, mo, plan=P):
        return s.ev(eid, m, "BhCoordination", plan, event_date=d, receives_smhs=smhs,
                    county_provider_outcome=cpo, member_outcome=mo)

    bh("a", "M1", "2017-01-10", True, U, U)
    b = bh("b", "M1", "2017-02-20", True, S, U)
    h = bh("h", "M2", "2017-02-01", True, S, N)
    bh("c", "M1", "2017-02-20", True, S, S)
    s.again(b)
    bh("d", "M1", "2017-03-05", False, S, S)
    bh("i", "M2", "2017-01-15", True, S, S)
    j = bh("j", "M3", "2017-02-10", True, U, S)
    bh("e", "M1", "2017-04-02", True, N, S)
    f = bh("f", "M1", "2017-05-15", True, S, S)
    s.again(j, county_provider_outcome=S)
    s.again(f, status="VOID")
    g = bh("g", "M1", "2017-06-30", True, U, S)
    s.again(g, event_date=day("2017-07-01"))
    bh("y", "M1", "2017-08-01", True, S, S, plan=Y)
    bh("k", "M4", "2017-11-03", True, U, U)
    assert h
    return s.out


CAW6_EXPECTED = [
    (P, "month", "2017-01-01", 2, 2), (P, "month", "2017-02-01", 4, 5), (P, "month", "2017-04-01", 1, 2),
    (P, "month", "2017-07-01", 1, 1), (P, "quarter", "2017-01-01", 3, 4), (P, "quarter", "2017-04-01", 1, 2),
    (P, "quarter", "2017-07-01", 1, 1), (P, "year", "2017-01-01", 4, 5),
    (Y, "month", "2017-08-01", 2, 2), (Y, "quarter", "2017-07-01", 2, 2), (Y, "year", "2017-01-01", 2, 2),
]
CAW6_ZERO = [(P, "month", "2017-11-01"), (P, "quarter", "2017-10-01")]


def caw7_stream():
    """CAW7: a (plan, member, year) qualifies with >= 5 distinct ACTIVE enrollment
    months and any smi_sud among that year's enrollments; then den = its months,
    num = its ED visits (chains not voided whose content has ed_visit, by month of
    the content's service_to, submitted or not, enrolled that month or not).

      N1 enrollments 2017-01, -02, -03 (twice: two event_ids), -04, no smi; then
         2017-09 (smi), VOIDed; then 2017-08 (smi): 5 distinct months, qualifies.
         ED chains:
           X1 ED to 2017-02-14, submitted                      -> visit in Feb
           X2 ED to 2017-03-31, owed (never submitted)         -> visit in Mar
           X3 ED to 2017-04-10, replaced by X3R ed_visit false -> no visit
           X4 non-ED to 2017-06-05, replaced by X4R ED to 06-07 -> visit in Jun
              (N1 is not enrolled in June: it counts anyway)
           X5 ED to 2017-05-20, voided by X5V                  -> no visit
           X6 ED to 2017-12-30, X6R moves it to 2018-01-02      -> 2018: N1 does not
              qualify in 2018, so nowhere
           X7R ED replacement to 2017-08-15 of X7, which never arrives: a chain
              whose original is missing, not voided, content ED -> visit in Aug
           X8 ED to 2017-07-20 submitted, X8R ed false, X8R2 (naming X8R) ed true
              -> the latest replacement is X8R2: visit in Jul
         N1 on PLAN-Y: ED visit 2017-02-20 -> PLAN-Y has no enrollment: nowhere
      N2 2017-05..09, smi in 07 (qualifies), then 06 VOIDed -> 4 months: nowhere;
         its ED visit Z1 2017-07-04 counts nowhere.
      N3 2017-01..06, smi only on 02, then 02 corrected to smi false: nowhere.
      N4 2017-08..12 (smi in 12) and 2018-01..03 (smi in 2018-01): 2017 qualifies,
         2018 (3 months) does not. ED W1 2017-11-11 (Nov), W2 2018-01-20 (nowhere).

      PLAN-X months (num/den): Jan 0/1, Feb 1/1, Mar 1/1, Apr 0/1, Jun 1/0, Jul 1/0,
        Aug N1 1/1 + N4 0/1 = 1/2, Sep 0/1, Oct 0/1, Nov 1/1, Dec 0/1
      Q1 2/3; Q2 1/1 (Apr member month, Jun visit); Q3 N1 2/1 + N4 0/2 = 2/3; Q4 1/3
      2017: N1 5/5 + N4 1/5 = 6/10. Nothing in 2018, nothing for PLAN-Y.
    """
    s = _Stream()

    def en(eid, m, month, smi):
        return s.ev(eid, m, "Enrollment", month=month, smi_sud=smi)

    for k in (1, 2, 3, 4):
        en(f"n1-{k}", "N1", f"2017-0{k}-01", False)
    en("n1-3b", "N1", "2017-03-01", False)
    s.enc("X1", "N1", "ORIGINAL", "2017-02-14", "2017-03-01T10:00:00", True)
    s.enc("X2", "N1", "ORIGINAL", "2017-03-31", None, True)
    s.enc("X3", "N1", "ORIGINAL", "2017-04-10", "2017-04-20T10:00:00", True)
    s.enc("X3R", "N1", "REPLACEMENT", "2017-04-10", "2017-05-01T10:00:00", False, orig="X3")
    s.enc("X5", "N1", "ORIGINAL", "2017-05-20", "2017-05-25T10:00:00", True)
    s.enc("X4", "N1", "ORIGINAL", "2017-06-05", "2017-06-10T10:00:00", False)
    s.enc("X4R", "N1", "REPLACEMENT", "2017-06-07", "2017-06-20T10:00:00", True, orig="X4")
    s.enc("X5V", "N1", "VOID", "2017-05-20", "2017-06-25T10:00:00", True, orig="X5")
    s.enc("XY", "N1", "ORIGINAL", "2017-02-20", "2017-03-01T10:00:00", True, plan=Y)
    s.enc("X8", "N1", "ORIGINAL", "2017-07-20", "2017-07-25T10:00:00", True)
    s.enc("X8R", "N1", "REPLACEMENT", "2017-07-20", "2017-08-01T10:00:00", False, orig="X8")
    s.enc("X8R2", "N1", "REPLACEMENT", "2017-07-20", "2017-08-05T10:00:00", True, orig="X8R")
    n19 = en("n1-9", "N1", "2017-09-01", True)
    s.again(n19, status="VOID")
    s.enc("X7R", "N1", "REPLACEMENT", "2017-08-15", "2017-09-01T10:00:00", True, orig="X7")
    en("n1-8", "N1", "2017-08-01", True)
    s.enc("X6", "N1", "ORIGINAL", "2017-12-30", "2018-01-05T10:00:00", True)
    s.enc("X6R", "N1", "REPLACEMENT", "2018-01-02", "2018-01-10T10:00:00", True, orig="X6")

    n2 = {}
    for k in (5, 6, 7, 8, 9):
        n2[k] = en(f"n2-{k}", "N2", f"2017-0{k}-01", k == 7)
    s.enc("Z1", "N2", "ORIGINAL", "2017-07-04", "2017-07-10T10:00:00", True)
    s.again(n2[6], status="VOID")

    n3 = {k: en(f"n3-{k}", "N3", f"2017-0{k}-01", k == 2) for k in range(1, 7)}
    s.again(n3[2], smi_sud=False)

    for k in (8, 9, 10, 11, 12):
        en(f"n4-{k}", "N4", f"2017-{k:02d}-01", k == 12)
    s.enc("W1", "N4", "ORIGINAL", "2017-11-11", "2017-11-30T10:00:00", True)
    for k in (1, 2, 3):
        en(f"n4-18-{k}", "N4", f"2018-0{k}-01", k == 1)
    s.enc("W2", "N4", "ORIGINAL", "2018-01-20", "2018-02-01T10:00:00", True)
    return s.out


CAW7_EXPECTED = [(P, "month", f"2017-{m:02d}-01", n, d) for m, n, d in (
    (1, 0, 1), (2, 1, 1), (3, 1, 1), (4, 0, 1), (6, 1, 0), (7, 1, 0), (8, 1, 2), (9, 0, 1), (10, 0, 1),
    (11, 1, 1), (12, 0, 1))] + [
    (P, "quarter", "2017-01-01", 2, 3), (P, "quarter", "2017-04-01", 1, 1),
    (P, "quarter", "2017-07-01", 2, 3), (P, "quarter", "2017-10-01", 1, 3),
    (P, "year", "2017-01-01", 6, 10)]


def caw8_stream():
    """CAW8: B = members with an INITIAL in the period, C = those with one with
    goals; E = care_plan_ids (per plan) with a REVISED in the period, F = those
    with one with goals. num C+F, den B+E.

      K1 INITIAL cp1 2017-01-10 no goals; INITIAL cp2 2017-01-20 goals   -> Jan B1 C1
      K1 REVISED cp1 2017-02-05 no goals; REVISED cp1 2017-02-25 goals   -> Feb E1 F1
      K1 REVISED cp1 2017-04-03 no goals                                 -> Apr E1 F0
      K2 INITIAL cp3 2017-02-14 no goals, corrected to goals             -> Feb B1 C1
      K2 REVISED cp3 2017-03-01 goals, then VOID                         -> nothing
      K3 INITIAL cp4 2017-03-10 goals, corrected to REVISED              -> Mar E1 F1
      K5 INITIAL cp5 2017-05-05 no goals                                 -> May B1 C0
      K4 on PLAN-Y: REVISED cp1 2017-02-10 no goals -> PLAN-Y's own cp1: E1 F0 there;
         PLAN-X's cp1 in February still has goals (F1).

      PLAN-X  Jan 1/1; Feb B{K2} + E{cp1} = 2/2; Mar E{cp4} = 1/1; Apr E{cp1 no} = 0/1;
              May B{K5 no} = 0/1
              Q1: B{K1 yes (cp2), K2 yes} + E{cp1 yes, cp4 yes} = 4/4
              Q2: B{K5 no} + E{cp1 no} = 0/2
              2017: B{K1, K2 yes; K5 no} + E{cp1 yes, cp4 yes} = 4/5
      PLAN-Y  Feb, Q1, 2017: 0/1
    """
    s = _Stream()

    def cp(eid, m, cpid, ptype, d, goals, plan=P):
        return s.ev(eid, m, "CarePlan", plan, care_plan_id=cpid, plan_type=ptype, completed_on=d,
                    care_goals_documented=goals)

    cp("p1", "K1", "cp1", "INITIAL", "2017-01-10", False)
    cp("p2", "K1", "cp2", "INITIAL", "2017-01-20", True)
    k2 = cp("p3", "K2", "cp3", "INITIAL", "2017-02-14", False)
    cp("p4", "K1", "cp1", "REVISED", "2017-02-05", False)
    cp("p5", "K4", "cp1", "REVISED", "2017-02-10", False, plan=Y)
    cp("p6", "K1", "cp1", "REVISED", "2017-02-25", True)
    k2r = cp("p7", "K2", "cp3", "REVISED", "2017-03-01", True)
    s.again(k2, care_goals_documented=True)
    k3 = cp("p8", "K3", "cp4", "INITIAL", "2017-03-10", True)
    s.again(k2r, status="VOID")
    cp("p9", "K1", "cp1", "REVISED", "2017-04-03", False)
    s.again(k3, plan_type="REVISED")
    cp("p10", "K5", "cp5", "INITIAL", "2017-05-05", False)
    return s.out


CAW8_EXPECTED = [
    (P, "month", "2017-01-01", 1, 1), (P, "month", "2017-02-01", 2, 2), (P, "month", "2017-03-01", 1, 1),
    (P, "month", "2017-04-01", 0, 1), (P, "month", "2017-05-01", 0, 1),
    (P, "quarter", "2017-01-01", 4, 4), (P, "quarter", "2017-04-01", 0, 2), (P, "year", "2017-01-01", 4, 5),
    (Y, "month", "2017-02-01", 0, 1), (Y, "quarter", "2017-01-01", 0, 1), (Y, "year", "2017-01-01", 0, 1),
]


def caw9_stream():
    """CAW9: A = members with a CoordinatorAssigned month in the period, B = those
    of them with a CareTeamContact dated in the period (any day of it).

      C1 coordinator 2017-01, -02, -03; contacts 2017-01-15, 2017-03-31
         -> Jan 1/1, Feb 0/1, Mar 1/1, Q1 1/1
      C1 on PLAN-Y: contact 2017-02-14 -> PLAN-Y: no coordinator there, nowhere; and
         not PLAN-X's C1 (PLAN-X February stays 0/1)
      C2 contact 2017-04-10 (no coordinator in April); coordinator 2017-05; contact
         2017-05-02 corrected to 2017-07-01
         -> Apr nothing, May 0/1, Q2 1/1 (the April contact is in Q2), Q3 nothing
      C3 coordinator 2017-06 twice (two event_ids); contact 2017-06-06 -> Jun 1/1
      C4 coordinator 2017-08, VOIDed; contact 2017-08-08; coordinator 2017-09
         -> Aug nothing, Sep 0/1, Q3 1/1 (the August contact is in Q3)
      C5 contact 2017-02-02 only -> nowhere
      C7 coordinator 2017-11, no contact -> Nov 0/1, Q4 0/1

      PLAN-X  Jan 1/1, Feb 0/1, Mar 1/1, May 0/1, Jun 1/1, Sep 0/1, Nov 0/1
              Q1 1/1, Q2 {C2, C3} 2/2, Q3 {C4} 1/1, Q4 0/1, 2017 {C1..C4, C7} 4/5
    """
    s = _Stream()

    def co(eid, m, month, plan=P):
        return s.ev(eid, m, "CoordinatorAssigned", plan, month=month)

    def ct(eid, m, d, plan=P):
        return s.ev(eid, m, "CareTeamContact", plan, contact_date=d)

    for k in (1, 2, 3):
        co(f"c1-{k}", "C1", f"2017-0{k}-01")
    ct("t1", "C1", "2017-01-15")
    ct("t2", "C1", "2017-03-31")
    ct("ty", "C1", "2017-02-14", plan=Y)
    ct("t3", "C2", "2017-04-10")
    co("c2-5", "C2", "2017-05-01")
    t4 = ct("t4", "C2", "2017-05-02")
    co("c3-6", "C3", "2017-06-01")
    co("c3-6b", "C3", "2017-06-01")
    ct("t5", "C3", "2017-06-06")
    s.again(t4, contact_date=day("2017-07-01"))
    c48 = co("c4-8", "C4", "2017-08-01")
    ct("t6", "C4", "2017-08-08")
    co("c4-9", "C4", "2017-09-01")
    s.again(c48, status="VOID")
    ct("t7", "C5", "2017-02-02")
    co("c7-11", "C7", "2017-11-01")
    return s.out


CAW9_EXPECTED = [
    (P, "month", "2017-01-01", 1, 1), (P, "month", "2017-02-01", 0, 1), (P, "month", "2017-03-01", 1, 1),
    (P, "month", "2017-05-01", 0, 1), (P, "month", "2017-06-01", 1, 1), (P, "month", "2017-09-01", 0, 1),
    (P, "month", "2017-11-01", 0, 1),
    (P, "quarter", "2017-01-01", 1, 1), (P, "quarter", "2017-04-01", 2, 2), (P, "quarter", "2017-07-01", 1, 1),
    (P, "quarter", "2017-10-01", 0, 1), (P, "year", "2017-01-01", 4, 5),
]


class CawHandStreams(unittest.TestCase):
    def check(self, stream, measure, expected, zero=()):
        res = oracle.compute(stream)
        self.assertEqual(res.mismatches, [])
        self.assertEqual(res.dead_letters, [])
        got = [r for r in res.row_list() if r[1] == measure]
        want = sorted((plan, measure, "", grain, start, n, d) for plan, grain, start, n, d in expected)
        self.assertEqual(got, want)
        others = {r[1] for r in res.row_list()} - {measure, "CW13_SUBMISSIONS", "CW13_TIMELY"}
        self.assertEqual(others, set())
        zeros = sorted((k[0], k[3], k[4].isoformat()) for k in res.zero_rows if k[1] == measure)
        self.assertEqual(zeros, sorted(zero))
        # The same rows whatever the interleaving of members (each keeps its order).
        by_member = {}
        for m in stream:
            by_member.setdefault(m.key, []).append(m)
        shuffled = [m for k in sorted(by_member, reverse=True) for m in by_member[k]]
        self.assertEqual(oracle.compute(shuffled).row_list(), res.row_list())
        return res

    def test_caw6(self):
        self.check(caw6_stream(), "CAW6", CAW6_EXPECTED, CAW6_ZERO)

    def test_caw7(self):
        res = self.check(caw7_stream(), "CAW7", CAW7_EXPECTED)
        # The encounters also count for CW13 as usual (X2 is owed: 18 records, 17 submitted).
        subs = [r for r in res.row_list() if r[1] == "CW13_SUBMISSIONS" and r[3] == "year"]
        self.assertEqual(sum(r[5] for r in subs), 17)

    def test_caw7_fifth_month_and_void_flip_the_whole_year(self):
        # Prefixes of the stream: N1 qualifies only once its fifth month (August,
        # with smi) arrives, and then February's visit and January's month count;
        # N2 counts from its fifth month until the void of June.
        stream = caw7_stream()
        at = {m.record.get("event_id"): i for i, m in enumerate(stream) if m.topic == "member-events"}

        def cell(prefix, month):
            rows = oracle.compute(stream[:prefix]).rows
            return rows.get((P, "CAW7", "", "month", datetime.date.fromisoformat(month)), (0, 0))

        n18 = at["n1-8"]
        self.assertEqual(cell(n18, "2017-02-01"), (0, 0))
        self.assertEqual(cell(n18 + 1, "2017-02-01"), (1, 1))
        self.assertEqual(cell(n18 + 1, "2017-01-01"), (0, 1))
        void6 = max(i for i, m in enumerate(stream) if m.record.get("event_id") == "n2-6")
        # July before the void: N1's visit X8R2 + N2's month and visit Z1; after: N1's only.
        self.assertEqual(cell(void6, "2017-07-01"), (2, 1))
        self.assertEqual(cell(void6 + 1, "2017-07-01"), (1, 0))

    def test_caw8(self):
        self.check(caw8_stream(), "CAW8", CAW8_EXPECTED)

    def test_caw9(self):
        self.check(caw9_stream(), "CAW9", CAW9_EXPECTED)

    def test_compare_covers_caw(self):
        exp = [(p, "CAW9", "", g, st, n, d) for p, g, st, n, d in CAW9_EXPECTED]
        self.assertEqual(oracle.compare(exp, exp), [])
        wrong = [r if r[3:5] != ("year", "2017-01-01") else r[:5] + (5, 5) for r in exp]
        self.assertEqual(len(oracle.compare(exp, wrong)), 1)
        # A CAW6 cell the worker retracted back to 0/0, or one it left at 0/0, is no difference.
        self.assertEqual(oracle.compare(exp, exp + [(P, "CAW6", "", "month", "2017-11-01", 0, 0)]), [])


# --------------------------------------------------------------------------- alerts by hand

A = "PLAN-AL"


def utc(iso):
    """Epoch ms of an ISO instant in UTC (a date alone means 00:00)."""
    return ts(iso if "T" in iso else iso + "T00:00:00")


def key_on(partition, tag):
    """The first key tag-0, tag-1, ... that librdkafka's default partitioner puts in
    `partition` of a 4-partition topic."""
    i = 0
    while oracle.partition_of(f"{tag}-{i}".encode()) != partition:
        i += 1
    return f"{tag}-{i}"


class _AlertStream:
    """Encounters and deliveries of one plan, each keyed by its member."""

    def __init__(self, plan=A):
        self.c = qsgen.Codec()
        self.plan = plan
        self.out = []

    def enc(self, eid, member, service_to, submitted=None, adjudicated=None, freq="ORIGINAL", orig=None,
            source="MEDICARE", value=None):
        rec = dict(encounter_id=eid, original_encounter_id=orig, plan_id=self.plan, member_id=member,
                   source=source, frequency=freq, service_from=day(service_to), service_to=day(service_to),
                   adjudicated_at=None if adjudicated is None else utc(adjudicated),
                   submitted_at=None if submitted is None else utc(submitted), ed_visit=False)
        self.out.append(Message("encounters", member.encode(), value or self.c.frame(1, rec), rec, 1))
        return rec

    def dlv(self, did, member, hospital, date, method="CESAREAN", parity=0):
        rec = dict(delivery_id=did, plan_id=self.plan, hospital_id=hospital, member_id=member,
                   delivery_date=day(date), parity=parity, gestational_age_weeks=39, plurality=1,
                   presentation="VERTEX", method=method, live_birth=True, status="ACTIVE")
        self.out.append(Message("deliveries", member.encode(), self.c.frame(2, rec), rec, 2))
        return rec


def encounter_history_stream():
    """One member, so one partition and one clock. Ages are clock date - service_to;
    due dates service_to + 180.

      1-4 owed originals, adjudicated ten days after service_to (clock 2019-01-12 09:00):
          E149 to 2019-01-02, E150 to 2019-01-01, E180 to 2018-12-02, E181 to 2018-12-01.
          Jan 1 -> May 31 2019 = 30+28+31+30+31 = 150 days; Dec 1 -> Jan 1 = 31.
      5   T1 submitted 2019-05-30 12:00: ages 147/148/179/180: DUE_SOON E180 and E181.
      6   T2 submitted 2019-05-31 12:00: ages 148.. no: 149/150/180/181: E150 DUE_SOON;
          E180 still DUE_SOON (180); E181 DUE_SOON resolved, OVERDUE raised; E149 nothing.
      7   E181 again, now submitted 2019-05-31 13:00: 181 days late: OVERDUE resolved,
          LATE_SUBMISSION raised (due 2018-12-01 + 180 = 2019-05-30).
      8   V180 voids E180 (13:00 -> 14:00): DUE_SOON E180 resolved.
      9   R150 replaces E150 with service_to 2019-01-10 (15:00): age 141, DUE_SOON resolved.
      10  a rejected record (submitted before service_to) with times in 2030: the clock
          does not move.
      11  E9 owed, to 2019-01-05 (age 146 at May 31): nothing.
      12  E9 submitted 2019-07-10 00:00 (186 days: late), which moves the clock 40 days
          at once: LATE_SUBMISSION E9 (due 2019-07-04) only, no OVERDUE first; E149 (189
          days) OVERDUE directly, due 2019-07-01; E150 through R150 (Jan 10 -> Jul 10 =
          181 days) OVERDUE, due 2019-07-09."""
    s = _AlertStream()
    m = "M-HIST"
    s.enc("E149", m, "2019-01-02", adjudicated="2019-01-12T09:00:00")
    s.enc("E150", m, "2019-01-01", adjudicated="2019-01-11T09:00:00")
    s.enc("E180", m, "2018-12-02", adjudicated="2018-12-12T09:00:00")
    s.enc("E181", m, "2018-12-01", adjudicated="2018-12-11T09:00:00")
    s.enc("T1", m, "2019-05-29", submitted="2019-05-30T12:00:00")
    s.enc("T2", m, "2019-05-30", submitted="2019-05-31T12:00:00")
    s.enc("E181", m, "2018-12-01", adjudicated="2018-12-11T09:00:00", submitted="2019-05-31T13:00:00")
    s.enc("V180", m, "2018-12-02", submitted="2019-05-31T14:00:00", freq="VOID", orig="E180")
    s.enc("R150", m, "2019-01-10", submitted="2019-05-31T15:00:00", freq="REPLACEMENT", orig="E150")
    bad = dict(s.out[-1].record, encounter_id="BAD", frequency="ORIGINAL", original_encounter_id=None,
               service_from=day("2030-01-10"), service_to=day("2030-01-10"),
               adjudicated_at=utc("2029-12-31"), submitted_at=utc("2030-01-01"))
    s.out.append(Message("encounters", m.encode(), s.c.frame(1, bad), bad, 1, "submitted_before_service_to"))
    s.enc("E9", m, "2019-01-05", adjudicated="2019-01-06T09:00:00")
    s.enc("E9", m, "2019-01-05", adjudicated="2019-01-06T09:00:00", submitted="2019-07-10T00:00:00")
    return s.out


# (state, alert_id, detected_at, due_date), in the order the rows are written.
ENCOUNTER_HISTORY = [
    ("RAISED", "DUE_SOON:PLAN-AL:E180", "2019-05-30T12:00:00", "2019-05-31"),
    ("RAISED", "DUE_SOON:PLAN-AL:E181", "2019-05-30T12:00:00", "2019-05-30"),
    ("RESOLVED", "DUE_SOON:PLAN-AL:E181", "2019-05-31T12:00:00", "2019-05-30"),
    ("RAISED", "DUE_SOON:PLAN-AL:E150", "2019-05-31T12:00:00", "2019-06-30"),
    ("RAISED", "OVERDUE:PLAN-AL:E181", "2019-05-31T12:00:00", "2019-05-30"),
    ("RESOLVED", "OVERDUE:PLAN-AL:E181", "2019-05-31T13:00:00", "2019-05-30"),
    ("RAISED", "LATE_SUBMISSION:PLAN-AL:E181", "2019-05-31T13:00:00", "2019-05-30"),
    ("RESOLVED", "DUE_SOON:PLAN-AL:E180", "2019-05-31T14:00:00", "2019-05-31"),
    ("RESOLVED", "DUE_SOON:PLAN-AL:E150", "2019-05-31T15:00:00", "2019-06-30"),
    ("RAISED", "LATE_SUBMISSION:PLAN-AL:E9", "2019-07-10T00:00:00", "2019-07-04"),
    ("RAISED", "OVERDUE:PLAN-AL:E149", "2019-07-10T00:00:00", "2019-07-01"),
    ("RAISED", "OVERDUE:PLAN-AL:E150", "2019-07-10T00:00:00", "2019-07-09"),
]


def _rows(*cells):
    """Measure rows {(plan, measure, stratum, grain, period_start): (num, den)} from
    (plan, measure, stratum, grain, ISO period_start, num, den)."""
    return {(p, m, s, g, datetime.date.fromisoformat(st)): (n, d) for p, m, s, g, st, n, d in cells}


def _ids(alerts):
    return sorted(alerts)


class AlertOracle(unittest.TestCase):
    def test_partitioners(self):
        # Kafka's UtilsTest vectors for the Java client's murmur2 (signed 32-bit there).
        for text, signed in (("21", -973932308), ("foobar", -790332482), ("abc", 479470107),
                             ("a-little-bit-long-string", -985981536),
                             ("a-little-bit-longer-string", -1486304829),
                             ("lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8", -58897971)):
            self.assertEqual(oracle.murmur2(text.encode()), signed & 0xFFFFFFFF, text)
        # librdkafka's consistent_random is CRC-32: "123456789" has the check value 0xCBF43926.
        self.assertEqual(oracle.partition_of(b"123456789", 4), 0xCBF43926 % 4)
        self.assertEqual(oracle.partition_of(b"123456789", 7), 0xCBF43926 % 7)
        self.assertEqual(oracle.partition_of(b"abc", 4, "murmur2"), 479470107 % 4)

    def test_encounter_history_by_hand(self):
        res = oracle.alerts(encounter_history_stream(), history=True)
        got = [(t["state"], t["alert_id"], t["detected_at"], t["due_date"]) for t in res.history]
        self.assertEqual(got, [(s, a, utc(at), datetime.date.fromisoformat(due))
                               for s, a, at, due in ENCOUNTER_HISTORY])
        first = res.history[0]
        self.assertEqual({k: first[k] for k in ("kind", "plan_id", "source", "member_id", "encounter_id",
                                                "hospital_id", "period_start")},
                         dict(kind="DUE_SOON", plan_id=A, source="MEDICARE", member_id="M-HIST",
                              encounter_id="E180", hospital_id=None, period_start=None))
        # The final state: the open rows of the history are what holds at the last clock.
        want = ["LATE_SUBMISSION:PLAN-AL:E181", "LATE_SUBMISSION:PLAN-AL:E9", "OVERDUE:PLAN-AL:E149",
                "OVERDUE:PLAN-AL:E150"]
        self.assertEqual(_ids(oracle.open_after(res.history)), want)
        self.assertEqual(_ids(res.open_of(oracle.ENCOUNTER_KINDS)), want)
        (clock,) = [c for (t, _), c in res.clocks.items() if t == "encounters"]
        self.assertEqual(clock, utc("2019-07-10"))

    def test_encounter_boundaries_and_leap_year(self):
        def judge(service_to, clock, submitted=None):
            orig = dict(encounter_id="E", plan_id=A, member_id="M", source="MEDICAID", frequency="ORIGINAL",
                        service_to=day(service_to), submitted_at=None if submitted is None else utc(submitted))
            a = oracle.encounter_alert(orig, [(0, orig)], day(clock))
            return a and (a["kind"], a["due_date"].isoformat())

        # 2019-09-02 + 180 days crosses 2020-02-29: Sep 2 -> Jan 2 = 122, -> Feb 29 = 180.
        self.assertIsNone(judge("2019-09-02", "2020-01-29"))                        # 149
        self.assertEqual(judge("2019-09-02", "2020-01-30"), ("DUE_SOON", "2020-02-29"))   # 150
        self.assertEqual(judge("2019-09-02", "2020-02-29"), ("DUE_SOON", "2020-02-29"))   # 180
        self.assertEqual(judge("2019-09-02", "2020-03-01"), ("OVERDUE", "2020-02-29"))    # 181
        self.assertIsNone(judge("2019-09-02", "2020-03-05", submitted="2020-02-29T23:59:59.999"))
        self.assertEqual(judge("2019-09-02", "2020-03-05", submitted="2020-03-01T00:00:00"),
                         ("LATE_SUBMISSION", "2020-02-29"))
        # From Feb 29 itself: Feb 29 -> Aug 29 = 29+31+30+31+30+31 = 182, so +180 = Aug 27.
        self.assertIsNone(judge("2020-02-29", "2020-09-01", submitted="2020-08-27T23:59:59.999"))
        self.assertEqual(judge("2020-02-29", "2020-09-01", submitted="2020-08-28T00:00:00"),
                         ("LATE_SUBMISSION", "2020-08-27"))
        self.assertEqual(judge("2020-02-29", "2020-08-27"), ("DUE_SOON", "2020-08-27"))
        self.assertEqual(judge("2020-02-29", "2020-08-28"), ("OVERDUE", "2020-08-27"))
        # Not submitted and no clock yet: nothing to judge.
        self.assertIsNone(oracle.encounter_alert(
            dict(encounter_id="E", plan_id=A, member_id="M", source="MEDICARE", frequency="ORIGINAL",
                 service_to=day("2019-01-01"), submitted_at=None), [], None))

    def test_month_alerts_by_hand(self):
        rows = _rows((A, "CW13_SUBMISSIONS", "MEDICARE", "month", "2017-03-01", 2, 0),
                     (A, "CW13_SUBMISSIONS", "MEDICARE", "month", "2017-05-01", 1, 0),
                     (A, "CW13_SUBMISSIONS", "MEDICAID", "month", "2017-07-01", 1, 0),
                     (A, "CW13_SUBMISSIONS", "MEDICARE", "year", "2017-01-01", 3, 0),
                     (A, "CW13_TIMELY", "MEDICARE", "month", "2017-04-01", 0, 1),
                     ("PLAN-Q", "CW13_SUBMISSIONS", "MEDICARE", "month", "2016-07-01", 1, 0),
                     ("PLAN-Z", "CW13_SUBMISSIONS", "MEDICAID", "month", "2020-01-01", 4, 0))

        def at(d, **kw):
            return _ids(oracle.month_alerts(rows, datetime.date.fromisoformat(d), **kw))

        # PLAN-AL from March 2017 (its first submission): MEDICARE every month, MEDICAID from
        # June 2017 (DY3 phase-in). July's warning from July 31 - 7 = July 24.
        base = ["MONTH_WITHOUT_SUBMISSION:PLAN-AL:MEDICAID:2017-06",
                "MONTH_WITHOUT_SUBMISSION:PLAN-AL:MEDICARE:2017-04",
                "MONTH_WITHOUT_SUBMISSION:PLAN-AL:MEDICARE:2017-06"]
        self.assertEqual([a for a in at("2017-07-23") if "PLAN-AL" in a], base)
        self.assertEqual([a for a in at("2017-07-24") if "PLAN-AL" in a],
                         sorted(base + ["MONTH_WITHOUT_SUBMISSION_WARNING:PLAN-AL:MEDICARE:2017-07"]))
        self.assertEqual([a for a in at("2017-08-01") if "PLAN-AL" in a],
                         sorted(base + ["MONTH_WITHOUT_SUBMISSION:PLAN-AL:MEDICARE:2017-07"]))
        # PLAN-Q from July 2016, but DY2 evaluates Medicare from September only.
        self.assertEqual([a for a in at("2016-10-05") if "PLAN-Q" in a],
                         ["MONTH_WITHOUT_SUBMISSION:PLAN-Q:MEDICARE:2016-09"])
        # PLAN-Z: February 2020 has 29 days, so its warning starts on the 22nd, not the 21st.
        self.assertEqual([a for a in at("2020-02-21") if "PLAN-Z" in a],
                         ["MONTH_WITHOUT_SUBMISSION:PLAN-Z:MEDICARE:2020-01"])
        feb = oracle.month_alerts(rows, datetime.date(2020, 2, 22))
        w = feb["MONTH_WITHOUT_SUBMISSION_WARNING:PLAN-Z:MEDICAID:2020-02"]
        self.assertEqual((w["kind"], w["plan_id"], w["source"], w["period_start"], w["due_date"]),
                         ("MONTH_WITHOUT_SUBMISSION_WARNING", "PLAN-Z", "MEDICAID", datetime.date(2020, 2, 1),
                          datetime.date(2020, 2, 29)))
        self.assertIn("MONTH_WITHOUT_SUBMISSION_WARNING:PLAN-Z:MEDICARE:2020-02", feb)
        # A plan with cw13_from and no submission at all.
        self.assertEqual([a for a in at("2018-03-24", cw13_from={"PLAN-R": datetime.date(2018, 2, 15)})
                          if "PLAN-R" in a],
                         ["MONTH_WITHOUT_SUBMISSION:PLAN-R:MEDICAID:2018-02",
                          "MONTH_WITHOUT_SUBMISSION:PLAN-R:MEDICARE:2018-02",
                          "MONTH_WITHOUT_SUBMISSION_WARNING:PLAN-R:MEDICAID:2018-03",
                          "MONTH_WITHOUT_SUBMISSION_WARNING:PLAN-R:MEDICARE:2018-03"])
        self.assertEqual(oracle.month_alerts(rows, None), {})

    def test_timeliness_alerts_by_hand(self):
        rows = _rows((A, "CW13_TIMELY", "MEDICARE", "year", "2019-01-01", 12, 15),   # 0.80: meets it
                     (A, "CW13_TIMELY", "MEDICAID", "year", "2019-01-01", 11, 19),   # 19 originals: too few
                     ("PLAN-Q", "CW13_TIMELY", "MEDICARE", "year", "2019-01-01", 19, 24),  # 0.79
                     ("PLAN-Q", "CW13_TIMELY", "MEDICARE", "month", "2019-03-01", 0, 25),  # not a year
                     ("PLAN-Q", "CW13_TIMELY", "MEDICARE", "year", "2017-01-01", 10, 30),  # DY3 Medicare
                     ("PLAN-Q", "CW13_TIMELY", "MEDICAID", "year", "2017-01-01", 0, 30),   # not evaluated
                     ("PLAN-Q", "CW13_TIMELY", "MEDICARE", "year", "2016-01-01", 0, 30),   # not evaluated
                     ("PLAN-Q", "CW13_TIMELY", "MEDICARE", "year", "2020-01-01", 0, 30))   # after the clock
        got = oracle.timeliness_alerts(rows, datetime.date(2019, 12, 31))
        self.assertEqual(_ids(got), ["TIMELINESS_AT_RISK:PLAN-Q:MEDICARE:2017",
                                     "TIMELINESS_AT_RISK:PLAN-Q:MEDICARE:2019"])
        a = got["TIMELINESS_AT_RISK:PLAN-Q:MEDICARE:2019"]
        self.assertEqual((a["source"], a["period_start"], a["due_date"]),
                         ("MEDICARE", datetime.date(2019, 1, 1), datetime.date(2019, 12, 31)))
        self.assertIn("TIMELINESS_AT_RISK:PLAN-Q:MEDICARE:2020",
                      oracle.timeliness_alerts(rows, datetime.date(2020, 1, 1)))
        lower = dict(oracle.ALERT_RULES, timeliness_min_denominator=19)
        self.assertIn("TIMELINESS_AT_RISK:PLAN-AL:MEDICAID:2019",
                      oracle.timeliness_alerts(rows, datetime.date(2019, 12, 31), lower))

    def test_ntsv_alerts_by_hand(self):
        h = "NTSV_CSECTION"
        rows = _rows((A, h, "hospital:H1", "month", "2018-04-01", 1, 2),
                     (A, h, "hospital:H1", "month", "2019-03-01", 7, 27),     # 8/29: too few
                     (A, h, "", "month", "2019-03-01", 50, 100),              # the plan, not a hospital
                     (A, h, "hospital:H2", "month", "2019-03-01", 11, 46),    # 0.23913 > 0.239
                     (A, h, "hospital:H2", "quarter", "2019-01-01", 0, 500),  # not a month
                     (A, h, "hospital:H3", "month", "2019-02-01", 11, 47),    # 0.2340
                     (A, h, "hospital:H4", "month", "2018-03-01", 30, 30),    # leaves the window in March
                     (A, h, "hospital:H4", "month", "2019-03-01", 0, 1))
        got = oracle.ntsv_alerts(rows, datetime.date(2019, 3, 15))
        self.assertEqual(_ids(got), ["NTSV_ABOVE_TARGET:PLAN-AL:H2"])
        fields = ("hospital_id", "source", "period_start", "due_date")
        self.assertEqual({k: got["NTSV_ABOVE_TARGET:PLAN-AL:H2"][k] for k in fields},
                         dict(hospital_id="H2", source=None, period_start=datetime.date(2018, 4, 1), due_date=None))
        # On 2019-02-28 the window is 2018-03..2019-02: H4's 30/30 is in, H2's March is not.
        self.assertEqual(_ids(oracle.ntsv_alerts(rows, datetime.date(2019, 2, 28))), ["NTSV_ABOVE_TARGET:PLAN-AL:H4"])
        lower = dict(oracle.ALERT_RULES, ntsv_min_denominator=29)
        self.assertEqual(_ids(oracle.ntsv_alerts(rows, datetime.date(2019, 3, 15), lower)),
                         ["NTSV_ABOVE_TARGET:PLAN-AL:H1", "NTSV_ABOVE_TARGET:PLAN-AL:H2"])

    def test_clocks_watermarks_and_late_months(self):
        ka, kb, kc, kd = (key_on(p, "K") for p in range(4))
        s = _AlertStream()
        s.enc("A1", ka, "2019-03-01", submitted="2019-03-05T10:00:00")
        s.enc("A2", ka, "2019-02-10", submitted="2019-02-20T08:00:00")   # late in its partition: fills Feb
        s.enc("A3", ka, "2019-03-01", submitted="2019-03-02T00:00:00")   # March is still open
        s.enc("B1", kb, "2019-01-05", adjudicated="2019-01-09T06:00:00")
        s.enc("C1", kc, "2019-01-05")                                    # no event time
        s.enc("D1", kd, "2019-04-01", adjudicated="2019-04-02T00:00:00")
        s.dlv("L1", kb, "H1", "2019-04-30")
        s.dlv("L2", kb, "H1", "2019-04-01")
        res = oracle.alerts(s.out)
        self.assertEqual(res.clocks, {("encounters", 0): utc("2019-03-05T10:00:00"),
                                      ("encounters", 1): utc("2019-01-09T06:00:00"),
                                      ("encounters", 3): utc("2019-04-02"),
                                      ("deliveries", 1): utc("2019-04-30")})
        # Partition 2 of encounters and 0, 2, 3 of deliveries have never had an event time:
        # they hold the watermarks back, so no plan alert yet.
        self.assertEqual(res.watermarks, {"encounters": None, "deliveries": None})
        self.assertEqual(res.open_of(oracle.PLAN_KINDS), {})
        self.assertEqual(oracle.months_filled_late(s.out), {(A, "MEDICARE", datetime.date(2019, 2, 1))})
        # Once partition 2 has a clock, the watermark is partition 1's: 2019-01-09, before
        # the first month (February, the first submission): still no month alert.
        s.enc("C2", kc, "2019-04-01", adjudicated="2019-04-05T00:00:00")
        res = oracle.alerts(s.out)
        self.assertEqual(res.watermarks["encounters"], utc("2019-01-09T06:00:00"))
        self.assertEqual(res.open_of(oracle.PLAN_KINDS), {})
        # Once partition 1 reads past the end of February, MEDICAID's February closes.
        s.enc("B3", kb, "2019-03-01", adjudicated="2019-03-03T00:00:00")
        res = oracle.alerts(s.out)
        self.assertEqual(res.watermarks["encounters"], utc("2019-03-03"))
        self.assertEqual(_ids(res.open_of(oracle.PLAN_KINDS)), ["MONTH_WITHOUT_SUBMISSION:PLAN-AL:MEDICAID:2019-02"])
        # Given watermarks replace the derived ones.
        self.assertEqual(_ids(oracle.alerts(s.out, watermarks={"encounters": utc("2019-02-20")}).open_of(
            oracle.PLAN_KINDS)), [])

    def test_generated_stream_history_agrees_with_final_state(self):
        msgs = qsgen.generate(seed=8, members=30, months=8, encounters_per_month=12, deliveries=60)
        res = oracle.alerts(msgs, history=True)
        kinds = set(t["kind"] for t in res.history)
        self.assertEqual(kinds, set(oracle.ENCOUNTER_KINDS))
        self.assertEqual(_ids(oracle.open_after(res.history)), _ids(res.open_of(oracle.ENCOUNTER_KINDS)))
        states = {}
        for t in res.history:       # RAISED, RESOLVED, RAISED ... per alert
            self.assertNotEqual(states.get(t["alert_id"], "RESOLVED"), t["state"], t)
            states[t["alert_id"]] = t["state"]
        # Only a partition's own order matters.
        parts = oracle.split_partitions(msgs)
        again = oracle.alerts([m for k in sorted(parts, reverse=True) for m in parts[k]], history=True)
        self.assertEqual(again.open, res.open)
        self.assertEqual(sorted(map(str, again.history)), sorted(map(str, res.history)))


if __name__ == "__main__":
    unittest.main()
