#!/usr/bin/python3
"""oracle: an independent, batch re-computation of qualstream's measures.

The worker updates its cells incrementally, retracting what an earlier version
of a record contributed. This oracle never retracts anything: it decodes and
validates every message itself (strictly, from the raw bytes), keeps only the
final accepted version of each record, builds the encounter chains from that
final state and counts from scratch. Agreement between the two is evidence that
the worker's retractions are right. Measures: CW13_SUBMISSIONS, CW13_TIMELY,
NTSV_CSECTION, NTSV_MISSING and the member-event measures CAW6-CAW9 (stratum '').

It also recomputes the alert feed (README "Alerts"): alerts(messages) ->
AlertResult holds the conditions that hold at the final clocks, each
partition's event-time clock (partitions derived from the keys) and, on
request, every encounter alert transition.

Library entry points: compute(messages) -> Result, compare(expected, actual),
scale_rows(rows, k), alerts(messages) -> AlertResult. CLI: expected, deadletters, compare (`oracle.py --help`).
The semantics follow README.md's "What is counted" and "What is rejected"
literally; RULES holds the rule parameters.
"""

import argparse
import csv
import datetime
import io
import json
import subprocess
import sys
import zlib
from collections import defaultdict
from fractions import Fraction
from pathlib import Path

import avro.errors
import avro.io
import avro.schema

sys.path.insert(0, str(Path(__file__).resolve().parent))
import qsgen  # noqa: E402  (only for the schema registry and the JSONL reader)

RULES = {
    "timely_days": 180,                      # CW13: on time when days <= this
    "id_max_bytes": 63,                      # identifiers: 1..63 UTF-8 bytes
    "date_min": datetime.date(1900, 1, 1),
    "date_max": datetime.date(2199, 12, 31),
    "parity": (0, 30),
    "gestational_age_weeks": (0, 50),
    "plurality": (1, 15),
    "caw7_min_months": 5,                    # CAW7: a member-year qualifies from this many months
}
CAW_MEASURES = ("CAW6", "CAW7", "CAW8", "CAW9")
MEASURES = ("CW13_SUBMISSIONS", "CW13_TIMELY", "NTSV_CSECTION", "NTSV_MISSING") + CAW_MEASURES
GRAINS = ("month", "quarter", "year")
READER_ID = {"encounters": 1, "deliveries": 2, "member-events": 3}
EPOCH = datetime.date(1970, 1, 1)
DAY_MS = 86_400_000


# --------------------------------------------------------------------------- strict decoding

class Rejected(Exception):
    """A message the worker must dead-letter. kind is a short category."""

    def __init__(self, kind, detail=""):
        super().__init__(f"{kind}: {detail}" if detail else kind)
        self.kind = kind
        self.detail = detail


class Malformed(Exception):
    pass


class StrictDecoder(avro.io.BinaryDecoder):
    """python-avro's decoder accepts things the Avro spec does not: varints of any
    length, booleans other than 0/1, and skips past the end of the buffer when
    ignoring a field the reader does not know. Tighten all of that."""

    def read_long(self):
        n = shift = 0
        for i in range(10):
            b = self.read(1)[0]
            n |= (b & 0x7F) << shift
            shift += 7
            if not b & 0x80:
                break
        else:
            raise Malformed("varint longer than 10 bytes")
        v = (n >> 1) ^ -(n & 1)
        if not -(1 << 63) <= v < (1 << 63):
            raise Malformed("long out of 64-bit range")
        return v

    def read_int(self):
        v = self.read_long()
        if not -(1 << 31) <= v < (1 << 31):
            raise Malformed(f"int {v} out of 32-bit range")
        return v

    def read_boolean(self):
        b = self.read(1)[0]
        if b > 1:
            raise Malformed(f"boolean byte {b}")
        return b == 1

    def read_bytes(self):
        n = self.read_long()
        if n < 0:
            raise Malformed(f"negative length {n}")
        return self.read(n)

    def skip_boolean(self):
        self.read_boolean()

    def skip_int(self):
        self.read_int()

    def skip_long(self):
        self.read_long()

    def skip_bytes(self):
        self.read_bytes()

    def skip_utf8(self):
        self.read_utf8()

    def skip(self, n):
        self.read(n)


class StrictReader(avro.io.DatumReader):
    """Rejects negative enum/union indexes (python-avro would index from the end)
    and tags a record chosen from a union with `_kind` = its name, since the
    member-event body is a union of records and the dict alone does not say which."""

    def read_enum(self, writers_schema, readers_schema, decoder):
        i = decoder.read_int()
        if not 0 <= i < len(writers_schema.symbols):
            raise Malformed(f"enum index {i}")
        sym = writers_schema.symbols[i]
        if sym not in readers_schema.symbols:
            raise avro.errors.SchemaResolutionException(f"symbol {sym} unknown to the reader")
        return sym

    def skip_enum(self, writers_schema, decoder):
        i = decoder.read_int()
        if not 0 <= i < len(writers_schema.symbols):
            raise Malformed(f"enum index {i}")

    def read_union(self, writers_schema, readers_schema, decoder):
        i = decoder.read_long()
        if not 0 <= i < len(writers_schema.schemas):
            raise Malformed(f"union index {i}")
        branch = writers_schema.schemas[i]
        v = self.read_data(branch, readers_schema, decoder)
        if isinstance(branch, avro.schema.RecordSchema):
            v["_kind"] = branch.name
        return v

    def skip_union(self, writers_schema, decoder):
        i = decoder.read_long()
        if not 0 <= i < len(writers_schema.schemas):
            raise Malformed(f"union index {i}")
        self.skip_data(writers_schema.schemas[i], decoder)


class Decoder:
    """Confluent framing + registry lookup + strict resolving decode + the
    README's validation rules. decode() returns the record or raises Rejected."""

    def __init__(self, registry=None):
        texts = registry or qsgen.registry_texts()
        self.writers = {sid: qsgen.parse_schema(t) for sid, t in texts.items()}
        self.readers = {topic: self.writers[sid] for topic, sid in READER_ID.items()}
        self._datum_readers = {}

    def decode(self, topic, value):
        if value is None:
            raise Rejected("no_value")
        if len(value) < 5:
            raise Rejected("short_value", f"{len(value)} bytes")
        if value[0] != 0:
            raise Rejected("bad_magic", f"magic byte {value[0]}")
        sid = int.from_bytes(value[1:5], "big")
        if sid not in self.writers:
            raise Rejected("unknown_schema", f"schema id {sid}")
        key = (topic, sid)
        if key not in self._datum_readers:
            self._datum_readers[key] = StrictReader(self.writers[sid], self.readers[topic])
        buf = io.BytesIO(value[5:])
        try:
            rec = self._datum_readers[key].read(StrictDecoder(buf))
        except avro.errors.SchemaResolutionException as e:
            raise Rejected("unresolvable", str(e).splitlines()[0])
        except (Malformed, avro.errors.InvalidAvroBinaryEncoding, UnicodeDecodeError,
                IndexError) as e:
            raise Rejected("malformed", str(e)[:120])
        if buf.tell() != len(value) - 5:
            raise Rejected("malformed", f"{len(value) - 5 - buf.tell()} trailing bytes")
        validate(topic, rec)
        return rec


def _check_id(rec, name, value=None):
    v = rec[name] if value is None else value
    n = len(v.encode("utf-8"))
    if n == 0:
        raise Rejected("bad_id", f"{name} is empty")
    if n > RULES["id_max_bytes"]:
        raise Rejected("bad_id", f"{name} is {n} bytes")
    if "\x00" in v:
        raise Rejected("bad_id", f"{name} holds a NUL byte")


def _check_date(name, days):
    d = date_of(days) if _date_representable(days) else None
    if d is None or not RULES["date_min"] <= d <= RULES["date_max"]:
        raise Rejected("bad_date", f"{name} = {days} days")


def _date_representable(days):
    return -700000 < days < 2900000   # python dates span years 1..9999


def _check_range(rec, name):
    v = rec[name]
    lo, hi = RULES[name]
    if v is not None and not lo <= v <= hi:
        raise Rejected("out_of_range", f"{name} = {v}")


def validate(topic, rec):
    """The README's content rules ("What is rejected"), on a decoded record."""
    if topic == "encounters":
        for f in ("encounter_id", "plan_id", "member_id"):
            _check_id(rec, f)
        if rec["original_encounter_id"] is not None:
            _check_id(rec, "original_encounter_id")
        _check_date("service_from", rec["service_from"])
        _check_date("service_to", rec["service_to"])
        # An instant's date is its UTC date, so the date range covers instants too.
        for f in ("adjudicated_at", "submitted_at"):
            if rec[f] is not None:
                _check_date(f, rec[f] // DAY_MS)
        if rec["service_from"] > rec["service_to"]:
            raise Rejected("bad_dates", "service_from after service_to")
        if rec["submitted_at"] is not None and rec["submitted_at"] // DAY_MS < rec["service_to"]:
            raise Rejected("bad_dates", "submitted before service_to")
        if rec["frequency"] == "ORIGINAL" and rec["original_encounter_id"] is not None:
            raise Rejected("bad_frequency", "original names an original_encounter_id")
        if rec["frequency"] != "ORIGINAL" and rec["original_encounter_id"] is None:
            raise Rejected("bad_frequency", f"{rec['frequency'].lower()} names no original")
    elif topic == "deliveries":
        for f in ("delivery_id", "plan_id", "hospital_id", "member_id"):
            _check_id(rec, f)
        _check_date("delivery_date", rec["delivery_date"])
        for f in ("parity", "gestational_age_weeks", "plurality"):
            _check_range(rec, f)
    elif topic == "member-events":
        for f in ("event_id", "plan_id", "member_id"):
            _check_id(rec, f)
        body = rec["body"]
        if "care_plan_id" in body:
            _check_id(body, "care_plan_id")
        for f in ("month", "event_date", "completed_on", "contact_date"):
            if f in body:
                _check_date(f, body[f])
    else:
        raise Rejected("unknown_topic", topic)


# --------------------------------------------------------------------------- periods

def date_of(days):
    return EPOCH + datetime.timedelta(days=days)


def period_starts(d):
    """(grain, first day of the period) for each grain holding date d."""
    return (("month", d.replace(day=1)),
            ("quarter", datetime.date(d.year, (d.month - 1) // 3 * 3 + 1, 1)),
            ("year", datetime.date(d.year, 1, 1)))


# --------------------------------------------------------------------------- the batch computation

class Result:
    """rows: {(plan, measure, stratum, grain, period_start): [numerator, denominator]}
    with every key present having a non-zero value; zero_rows: keys whose cell
    ends at 0/0 (only CAW6 makes any: a member whose county provider and member
    were both unreachable adds 0 to both sides; such cells are left out of rows);
    dead_letters: [(seq, topic, kind, detail)]; accepted: {topic: n};
    mismatches: generator-vs-oracle disagreements on decoding or rejection."""

    def __init__(self):
        self.rows = {}
        self.zero_rows = []
        self.dead_letters = []
        self.accepted = defaultdict(int)
        self.mismatches = []

    def row_list(self):
        return sorted((k[0], k[1], k[2], k[3], k[4].isoformat(), v[0], v[1])
                      for k, v in self.rows.items())


def final_state(messages, decoder=None, result=None):
    """Decode every message and keep the final accepted version of each record.

    Returns {topic: {id: (seq, record)}}; seq is the position of that final
    version in the stream (used to order replacements)."""
    dec = decoder or Decoder()
    res = result if result is not None else Result()
    ident = {"encounters": "encounter_id", "deliveries": "delivery_id", "member-events": "event_id"}
    state = {t: {} for t in ident}
    for seq, m in enumerate(messages):
        topic, value = m[0], m[2]
        expect = m[3] if len(m) > 3 else None
        given = m[4] if len(m) > 4 else None
        try:
            rec = dec.decode(topic, value)
        except Rejected as r:
            res.dead_letters.append((seq, topic, r.kind, r.detail))
            if expect is None and len(m) > 3:
                res.mismatches.append(f"message {seq}: oracle rejects ({r}) but the generator expected it to be used")
            continue
        if expect is not None:
            res.mismatches.append(f"message {seq}: generator tagged it {expect!r} but the oracle accepts it")
        if given is not None and given != rec:
            res.mismatches.append(f"message {seq}: decoded {rec} != generated {given}")
        res.accepted[topic] += 1
        state[topic][rec[ident[topic]]] = (seq, rec)
    return state


def _add(rows, plan, measure, stratum, d, num, den):
    for grain, start in period_starts(d):
        cell = rows.setdefault((plan, measure, stratum, grain, start), [0, 0])
        cell[0] += num
        cell[1] += den


def encounter_chains(encounters):
    """{root id: [(seq, record), ...]} from the final encounter records.

    README "Identity, corrections and voids": every record that is not an
    ORIGINAL names its original_encounter_id. Follow the names from a record:
    the root is the ORIGINAL where they end, or the id they reach that no
    record has (the original is missing), or, when they go round a cycle, the
    smallest encounter_id on that cycle (such a chain has no original). A chain
    is the records sharing a root. Only the final records matter, so arrival
    order cannot."""
    def root(eid):
        path, at = [], {}
        while True:
            if eid not in encounters:
                return eid               # the missing original's id
            rec = encounters[eid][1]
            if rec["frequency"] == "ORIGINAL":
                return eid
            if eid in at:
                return min(path[at[eid]:])   # the cycle's smallest id
            at[eid] = len(path)
            path.append(eid)
            eid = rec["original_encounter_id"]

    chains = defaultdict(list)
    for eid in encounters:
        chains[root(eid)].append(encounters[eid])
    return chains


def chain_original(encounters, rid):
    """The ORIGINAL that roots chain rid, or None (missing, or a cycle)."""
    rec = encounters[rid][1] if rid in encounters else None
    return rec if rec is not None and rec["frequency"] == "ORIGINAL" else None


def chain_content(members, orig):
    """The chain's clinical content: its latest REPLACEMENT (the one whose final
    version comes last in the stream), else the original (None if missing)."""
    replacements = [(seq, rec) for seq, rec in members if rec["frequency"] == "REPLACEMENT"]
    return max(replacements, key=lambda t: t[0])[1] if replacements else orig


def count_encounters(encounters, rows, chains=None):
    """CW13_SUBMISSIONS and CW13_TIMELY from the final encounter records."""
    for _, rec in encounters.values():
        if rec["submitted_at"] is not None:
            _add(rows, rec["plan_id"], "CW13_SUBMISSIONS", rec["source"],
                 date_of(rec["submitted_at"] // DAY_MS), 1, 0)

    if chains is None:
        chains = encounter_chains(encounters)
    for rid, members in chains.items():
        orig = chain_original(encounters, rid)
        if orig is None:
            continue                     # original not received (or a cycle): no timeliness
        if orig["submitted_at"] is None:
            continue                     # owed: not submitted, so not timed
        if any(rec["frequency"] == "VOID" for _, rec in members):
            continue                     # voided chain counts nowhere
        content = chain_content(members, orig)
        sub_day = orig["submitted_at"] // DAY_MS
        timely = sub_day - content["service_to"] <= RULES["timely_days"]
        _add(rows, orig["plan_id"], "CW13_TIMELY", orig["source"], date_of(sub_day),
             1 if timely else 0, 1)


def count_deliveries(deliveries, rows):
    """NTSV_MISSING and NTSV_CSECTION from the final delivery records."""
    for _, rec in deliveries.values():
        if rec["status"] != "ACTIVE":
            continue
        criteria = {
            "parity": None if rec["parity"] is None else rec["parity"] == 0,
            "gestational_age_weeks": None if rec["gestational_age_weeks"] is None
            else rec["gestational_age_weeks"] >= 37,
            "plurality": None if rec["plurality"] is None else rec["plurality"] == 1,
            "presentation": None if rec["presentation"] is None else rec["presentation"] == "VERTEX",
            "live_birth": rec["live_birth"],
        }
        present = [v for v in criteria.values() if v is not None]
        missing = len(present) < len(criteria)
        all_pass = all(present)
        d = date_of(rec["delivery_date"])
        for stratum in ("", "hospital:" + rec["hospital_id"]):
            _add(rows, rec["plan_id"], "NTSV_MISSING", stratum, d, 1 if missing and all_pass else 0, 1)
            if not missing and all_pass:
                _add(rows, rec["plan_id"], "NTSV_CSECTION", stratum, d,
                     1 if rec["method"] == "CESAREAN" else 0, 1)


# --------------------------------------------------------------------------- CAW6-CAW9

def _first_of_month(days):
    return date_of(days).replace(day=1)


def active_member_events(events):
    """{body kind: [(seq, record), ...]} of the final member events that are
    ACTIVE. The final version of an event_id is the only one that exists (its
    kind may even differ from earlier versions'); a VOID final version counts
    nowhere, so it is simply not there. seq is the position of that final
    version in the stream: "latest in the partition" compares these."""
    by = defaultdict(list)
    for seq, rec in events.values():
        if rec["status"] == "ACTIVE":
            by[rec["body"]["_kind"]].append((seq, rec))
    for v in by.values():
        v.sort(key=lambda t: t[0])
    return by


def count_caw6(coordination, rows):
    """CAW6 from the ACTIVE BhCoordination events: per (plan, member) and
    period, the event with the greatest (event_date, seq) decides; it counts
    when it says receives_smhs. Members are per plan: the same member_id under
    two plans is two members."""
    latest = {}
    for seq, rec in coordination:
        b = rec["body"]
        for grain, start in period_starts(date_of(b["event_date"])):
            k = (rec["plan_id"], rec["member_id"], grain, start)
            cand = (b["event_date"], seq, b)
            if k not in latest or cand[:2] > latest[k][:2]:
                latest[k] = cand
    for (plan, _member, grain, start), (_, _, b) in latest.items():
        if not b["receives_smhs"]:
            continue
        a = 1
        bb = 1 if b["county_provider_outcome"] == "UNABLE_TO_REACH" else 0
        c = 1 if b["county_provider_outcome"] == "SUCCESS" else 0
        d = 1 if b["member_outcome"] == "UNABLE_TO_REACH" else 0
        e = 1 if b["member_outcome"] == "SUCCESS" else 0
        cell = rows.setdefault((plan, "CAW6", "", grain, start), [0, 0])
        cell[0] += c + e
        cell[1] += 2 * a - bb - d


def caw7_qualified(enrollments):
    """{(plan, member, year): sorted enrolled months (first days)} of the
    qualifying member-years: >= 5 distinct months with an ACTIVE Enrollment in
    the year and at least one of that year's Enrollment events with smi_sud.
    An Enrollment's `month` is taken as the month holding that date (the schema
    says it is the first day; a later day names the same month)."""
    months = defaultdict(dict)     # (plan, member, year) -> {month: any smi_sud}
    for _, rec in enrollments:
        m = _first_of_month(rec["body"]["month"])
        cell = months[(rec["plan_id"], rec["member_id"], m.year)]
        cell[m] = cell.get(m, False) or rec["body"]["smi_sud"]
    return {k: sorted(v) for k, v in months.items()
            if len(v) >= RULES["caw7_min_months"] and any(v.values())}


def caw7_ed_visits(encounters, chains):
    """[(plan, member, service_to date)] of every ED visit: a chain with no VOID
    record whose content (latest replacement, else original) has ed_visit,
    submitted or owed. The chain belongs to its original's plan and member (as
    CW13_TIMELY counts under the original's plan); a chain whose original is
    missing but holds a replacement is a visit too, under that content's plan
    and member (it is not voided and has content)."""
    out = []
    for rid, members in chains.items():
        if any(rec["frequency"] == "VOID" for _, rec in members):
            continue
        orig = chain_original(encounters, rid)
        content = chain_content(members, orig)
        if content is None or not content["ed_visit"]:
            continue
        owner = orig or content
        out.append((owner["plan_id"], owner["member_id"], date_of(content["service_to"])))
    return out


def count_caw7(enrollments, encounters, chains, rows):
    """CAW7: per qualifying (plan, member, year), denominator 1 per enrolled
    month and numerator 1 per ED visit whose service_to falls in that year
    (in the visit's month, enrolled that month or not)."""
    qualified = caw7_qualified(enrollments)
    for (plan, _member, _year), months in qualified.items():
        for m in months:
            _add(rows, plan, "CAW7", "", m, 0, 1)
    for plan, member, d in caw7_ed_visits(encounters, chains):
        if (plan, member, d.year) in qualified:
            _add(rows, plan, "CAW7", "", d, 1, 0)


def count_caw8(care_plans, rows):
    """CAW8: per plan and period, B/C over members with an INITIAL plan completed
    in it, E/F over care_plan_ids (distinct per plan) with a REVISED event in it."""
    initial = defaultdict(dict)    # (plan, grain, start) -> {member: any goals}
    revised = defaultdict(dict)    # (plan, grain, start) -> {care_plan_id: any goals}
    for _, rec in care_plans:
        b = rec["body"]
        into, who = (initial, rec["member_id"]) if b["plan_type"] == "INITIAL" else (revised, b["care_plan_id"])
        for grain, start in period_starts(date_of(b["completed_on"])):
            cell = into[(rec["plan_id"], grain, start)]
            cell[who] = cell.get(who, False) or b["care_goals_documented"]
    for src in (initial, revised):
        for (plan, grain, start), who in src.items():
            cell = rows.setdefault((plan, "CAW8", "", grain, start), [0, 0])
            cell[0] += sum(1 for g in who.values() if g)
            cell[1] += len(who)


def count_caw9(coordinators, contacts, rows):
    """CAW9: per plan and period, A = members with a CoordinatorAssigned month in
    it, B = those of them with a CareTeamContact dated in it (at quarter and year
    grain the contact need not be in the coordinator's month)."""
    assigned = defaultdict(set)    # (plan, grain, start) -> members
    contacted = defaultdict(set)
    for events, into, field in ((coordinators, assigned, "month"), (contacts, contacted, "contact_date")):
        for _, rec in events:
            for grain, start in period_starts(date_of(rec["body"][field])):
                into[(rec["plan_id"], grain, start)].add(rec["member_id"])
    for (plan, grain, start), members in assigned.items():
        cell = rows.setdefault((plan, "CAW9", "", grain, start), [0, 0])
        cell[0] += len(members & contacted.get((plan, grain, start), set()))
        cell[1] += len(members)


def count_member_events(events, encounters, rows, chains=None):
    """CAW6-CAW9 from the final member events (and, for CAW7, the encounter chains)."""
    by = active_member_events(events)
    if chains is None:
        chains = encounter_chains(encounters)
    count_caw6(by["BhCoordination"], rows)
    count_caw7(by["Enrollment"], encounters, chains, rows)
    count_caw8(by["CarePlan"], rows)
    count_caw9(by["CoordinatorAssigned"], by["CareTeamContact"], rows)


def compute(messages, decoder=None):
    """messages: iterable of qsgen.Message, or of tuples (topic, key, value[,
    expected_rejection[, generated_record]]), in production order."""
    res = Result()
    msgs = ((m.topic, m.key, m.value, m.expect, m.record) if isinstance(m, qsgen.Message) else m
            for m in messages)
    state = final_state(msgs, decoder, res)
    rows = {}
    chains = encounter_chains(state["encounters"])
    count_encounters(state["encounters"], rows, chains)
    count_deliveries(state["deliveries"], rows)
    count_member_events(state["member-events"], state["encounters"], rows, chains)
    res.zero_rows = sorted(k for k, v in rows.items() if v == [0, 0])
    res.rows = {k: tuple(v) for k, v in rows.items() if v != [0, 0]}
    return res


def scale_rows(rows, k):
    """Expected rows of k disjoint copies of a stream (qsgen.replicate)."""
    return [r[:5] + (r[5] * k, r[6] * k) for r in rows]


# --------------------------------------------------------------------------- alerts (README "Alerts")
#
# The alert feed, recomputed from the raw messages and README's "Alerts" alone.
# Encounter alerts are a pure function of an original's chain and its
# partition's clock date; the plan alerts a pure function of the measure rows
# (compute() above) and each topic's watermark. Partitions are derived from the
# message keys with the producer's partitioner, so a partition's clock is
# computed here, not read from the worker.

ALERT_RULES = {
    "timely_days": RULES["timely_days"],      # cw13_timely_days: LATE past it, OVERDUE from it + 1
    "due_soon_days": 150,                     # alert_due_soon_days
    "month_warning_days": 7,                  # alert_month_warning_days
    "ntsv_min_denominator": 30,               # alert_ntsv_min_denominator
    "timeliness_min_denominator": 20,         # alert_timeliness_min_denominator
    "ntsv_target": Fraction("0.239"),         # ntsv_target: above means rate > target
    "cw13_benchmark": Fraction("0.80"),       # README: CW13 timeliness benchmark (assumption 0.80)
}
# The CW13 phase-in (spec section 1): (first year, last year or None, source,
# first month, last month, timeliness evaluated).
CW13_PHASE = (
    (2016, 2016, "MEDICARE", 9, 12, False),
    (2017, 2017, "MEDICARE", 1, 12, True),
    (2017, 2017, "MEDICAID", 6, 12, False),
    (2018, None, "MEDICARE", 1, 12, True),
    (2018, None, "MEDICAID", 1, 12, True),
)
ENCOUNTER_KINDS = ("LATE_SUBMISSION", "DUE_SOON", "OVERDUE")
PLAN_KINDS = ("MONTH_WITHOUT_SUBMISSION", "MONTH_WITHOUT_SUBMISSION_WARNING", "NTSV_ABOVE_TARGET",
              "TIMELINESS_AT_RISK")
ALERT_FIELDS = ("alert_id", "kind", "plan_id", "source", "member_id", "encounter_id", "hospital_id",
                "period_start", "due_date")
PARTITIONS = 4          # the tests' topics (conftest.Env.create_topics, the mock's default)
IDENT = {"encounters": "encounter_id", "deliveries": "delivery_id", "member-events": "event_id"}


def murmur2(data):
    """Kafka's Java client murmur2 (org.apache.kafka.common.utils.Utils.murmur2),
    as an unsigned 32-bit value."""
    m, r = 0x5BD1E995, 24
    n = len(data)
    h = (0x9747B28C ^ n) & 0xFFFFFFFF
    for i in range(0, n - n % 4, 4):
        k = data[i] | data[i + 1] << 8 | data[i + 2] << 16 | data[i + 3] << 24
        k = (k * m) & 0xFFFFFFFF
        k ^= k >> r
        k = (k * m) & 0xFFFFFFFF
        h = ((h * m) & 0xFFFFFFFF) ^ k
    tail = n - n % 4
    if n % 4 == 3:
        h ^= data[tail + 2] << 16
    if n % 4 >= 2:
        h ^= data[tail + 1] << 8
    if n % 4 >= 1:
        h ^= data[tail]
        h = (h * m) & 0xFFFFFFFF
    h ^= h >> 13
    h = (h * m) & 0xFFFFFFFF
    return h ^ (h >> 15)


def partition_of(key, partitions=PARTITIONS, partitioner="consistent_random"):
    """The partition a producer's default partitioner gives a keyed message.

    consistent_random is librdkafka's default (CRC-32 of the key, modulo the
    partition count): the one qsgen's producer (confluent-kafka) and the worker's
    tests use. murmur2 is the Java client's default (positive murmur2 modulo the
    count), for a topic written by Java producers. Keys here are never empty."""
    if partitioner == "consistent_random":
        return zlib.crc32(key) % partitions
    if partitioner == "murmur2":
        return (murmur2(key) & 0x7FFFFFFF) % partitions
    raise ValueError(partitioner)


def event_time(topic, rec):
    """README "The clock": an encounter's event time is the later of adjudicated_at
    and submitted_at (ms; None when both are null), a delivery's its delivery_date
    (midnight UTC). Member events have none."""
    if topic == "encounters":
        times = [t for t in (rec["adjudicated_at"], rec["submitted_at"]) if t is not None]
        return max(times) if times else None
    if topic == "deliveries":
        return rec["delivery_date"] * DAY_MS
    return None


def day_of_ms(ms):
    """The UTC date (days since the epoch) of an instant in ms, None for None."""
    return None if ms is None else ms // DAY_MS


def _month_add(first, k):
    y, m = divmod(first.month - 1 + k, 12)
    return datetime.date(first.year + y, m + 1, 1)


def last_day(first):
    """The last day of the month starting on date first."""
    return _month_add(first, 1) - datetime.timedelta(days=1)


def _alert(kind, plan, ident, source=None, member=None, encounter=None, hospital=None,
           period_start=None, due=None):
    return dict(alert_id=f"{kind}:{plan}:{ident}", kind=kind, plan_id=plan, source=source,
                member_id=member, encounter_id=encounter, hospital_id=hospital,
                period_start=period_start, due_date=due)


def encounter_alert(orig, chain, clock_day, rules=ALERT_RULES):
    """The one alert an original's chain holds (README "One open alert per
    encounter"), or None. orig is the chain's ORIGINAL, chain its [(seq, record)],
    clock_day the partition's clock date in days (None: no clock yet).

    Voided: nothing. Submitted: LATE_SUBMISSION when the original's submission
    date is more than timely_days after the chain's service_to (its latest
    replacement's, else the original's). Owed (submitted_at null): age = clock
    date - service_to; DUE_SOON for due_soon_days..timely_days, OVERDUE above.
    due_date = service_to + timely_days."""
    if any(rec["frequency"] == "VOID" for _, rec in chain):
        return None
    st = chain_content(chain, orig)["service_to"]
    limit = rules["timely_days"]
    if orig["submitted_at"] is not None:
        if orig["submitted_at"] // DAY_MS - st <= limit:
            return None
        kind = "LATE_SUBMISSION"
    else:
        if clock_day is None or clock_day - st < rules["due_soon_days"]:
            return None
        kind = "OVERDUE" if clock_day - st > limit else "DUE_SOON"
    return _alert(kind, orig["plan_id"], orig["encounter_id"], source=orig["source"],
                  member=orig["member_id"], encounter=orig["encounter_id"], due=date_of(st + limit))


def encounter_alerts(encounters, clock_day, rules=ALERT_RULES):
    """{alert_id: alert} that hold for one encounters partition: its final records
    ({id: (seq, record)}) judged at its clock date. Chains whose original has not
    arrived hold none."""
    out = {}
    for rid, chain in encounter_chains(encounters).items():
        orig = chain_original(encounters, rid)
        if orig is not None:
            a = encounter_alert(orig, chain, clock_day, rules)
            if a:
                out[a["alert_id"]] = a
    return out


def walk_partition(topic, messages, decoder, rules=ALERT_RULES, history=False):
    """Reads one partition's messages [(topic, key, value), ...] in order, as the
    worker does. Returns (records, clock, transitions):
      records      the final accepted version of each record, {id: (seq, record)};
      clock        the latest event time read (ms), None if none: only messages
                   that are used (not dead-lettered) move it, and it never goes back;
      transitions  (encounters, history=True) every encounter alert transition:
                   after each message is applied and the clock moved, the alerts
                   that hold are compared with the ones open before it; each
                   difference is a RESOLVED then a RAISED row (alert fields as at
                   raising, state, detected_at = the clock then), in alert_id order.
    History rebuilds the chains after every message: small streams only."""
    records, clock, open_, out = {}, None, {}, []
    for seq, m in enumerate(messages):
        try:
            rec = decoder.decode(topic, m[2])
        except Rejected:
            continue
        records[rec[IDENT[topic]]] = (seq, rec)
        t = event_time(topic, rec)
        if t is not None and (clock is None or t > clock):
            clock = t
        if history and topic == "encounters":
            now = encounter_alerts(records, day_of_ms(clock), rules)
            for aid in sorted(set(open_) - set(now)):
                out.append(dict(open_.pop(aid), state="RESOLVED", detected_at=clock))
            for aid in sorted(set(now) - set(open_)):
                open_[aid] = now[aid]
                out.append(dict(now[aid], state="RAISED", detected_at=clock))
    return records, clock, out


def cw13_calendar(rows, upto, phase=CW13_PHASE, cw13_from=None):
    """[(plan, source, month)] that CW13 evaluates up to the month of date upto:
    from the plan's first month with a submission (any source; or cw13_from[plan],
    a date) through the phase-in."""
    first = {}
    for (plan, measure, _stratum, grain, start), v in rows.items():
        if measure == "CW13_SUBMISSIONS" and grain == "month" and v[0] > 0:
            first[plan] = min(first.get(plan, start), start)
    for plan, d in (cw13_from or {}).items():
        first[plan] = d.replace(day=1)
    out = []
    for plan, m in sorted(first.items()):
        while m <= upto.replace(day=1):
            out += [(plan, source, m) for fy, ly, source, fm, lm, _ in phase
                    if fy <= m.year <= (ly or 9999) and fm <= m.month <= lm]
            m = _month_add(m, 1)
    return out


def month_alerts(rows, enc_day, rules=ALERT_RULES, phase=CW13_PHASE, cw13_from=None):
    """MONTH_WITHOUT_SUBMISSION[_WARNING] that hold at the encounters watermark
    date enc_day (a date; None: nothing): an evaluated month without a submission
    is closed when its last day is before enc_day, warned when enc_day is in
    last day - month_warning_days .. last day."""
    out = {}
    if enc_day is None:
        return out
    for plan, source, month in cw13_calendar(rows, enc_day, phase, cw13_from):
        if rows.get((plan, "CW13_SUBMISSIONS", source, "month", month), (0, 0))[0] > 0:
            continue
        last = last_day(month)
        if last < enc_day:
            kind = "MONTH_WITHOUT_SUBMISSION"
        elif enc_day >= last - datetime.timedelta(days=rules["month_warning_days"]):
            kind = "MONTH_WITHOUT_SUBMISSION_WARNING"
        else:
            continue
        a = _alert(kind, plan, f"{source}:{month:%Y-%m}", source=source, period_start=month, due=last)
        out[a["alert_id"]] = a
    return out


def timeliness_alerts(rows, enc_day, rules=ALERT_RULES, phase=CW13_PHASE):
    """TIMELINESS_AT_RISK at the encounters watermark date enc_day: per plan,
    source and year up to enc_day's year whose timeliness the phase-in evaluates,
    CW13_TIMELY of the year (to date) below the benchmark with at least
    timeliness_min_denominator originals."""
    out = {}
    if enc_day is None:
        return out
    for (plan, measure, source, grain, start), (num, den) in rows.items():
        if measure != "CW13_TIMELY" or grain != "year" or start.year > enc_day.year:
            continue
        if not any(t and s == source and fy <= start.year <= (ly or 9999) for fy, ly, s, _, _, t in phase):
            continue
        if den >= rules["timeliness_min_denominator"] and Fraction(num, den) < rules["cw13_benchmark"]:
            a = _alert("TIMELINESS_AT_RISK", plan, f"{source}:{start.year}", source=source,
                       period_start=start, due=datetime.date(start.year, 12, 31))
            out[a["alert_id"]] = a
    return out


def ntsv_alerts(rows, del_day, rules=ALERT_RULES):
    """NTSV_ABOVE_TARGET at the deliveries watermark date del_day: per plan and
    hospital, NTSV_CSECTION over the 12 months ending with del_day's month above
    the target with at least ntsv_min_denominator NTSV deliveries. period_start
    is the window's first month; no due date."""
    out = {}
    if del_day is None:
        return out
    first = _month_add(del_day.replace(day=1), -11)
    sums = defaultdict(lambda: [0, 0])
    for (plan, measure, stratum, grain, start), (num, den) in rows.items():
        if measure == "NTSV_CSECTION" and grain == "month" and stratum.startswith("hospital:") \
                and first <= start <= del_day:
            cell = sums[(plan, stratum[len("hospital:"):])]
            cell[0] += num
            cell[1] += den
    for (plan, hospital), (num, den) in sorted(sums.items()):
        if den >= rules["ntsv_min_denominator"] and Fraction(num, den) > rules["ntsv_target"]:
            a = _alert("NTSV_ABOVE_TARGET", plan, hospital, hospital=hospital, period_start=first)
            out[a["alert_id"]] = a
    return out


class AlertResult:
    """clocks: {(topic, partition): ms} of every encounters and deliveries
    partition with a clock; watermarks: {topic: ms or None} (unless given: the
    lowest clock of the topic's partitions, None until every partition has one);
    open: {alert_id: alert}
    that hold at those clocks (encounter alerts with their current due_date);
    history: the encounter alert transitions (alerts(history=True)), each with
    its partition, in stream order per partition; rows: the measure rows."""

    def __init__(self):
        self.clocks = {}
        self.watermarks = {}
        self.open = {}
        self.history = []
        self.rows = {}

    def open_of(self, kinds):
        return {k: v for k, v in self.open.items() if v["kind"] in kinds}


def _triples(messages):
    return [(m.topic, m.key, m.value) if isinstance(m, qsgen.Message) else tuple(m[:3]) for m in messages]


def split_partitions(messages, partitions=PARTITIONS, partitioner="consistent_random"):
    """{(topic, partition): [(topic, key, value), ...]} in stream order."""
    out = defaultdict(list)
    for m in _triples(messages):
        out[(m[0], partition_of(m[1], partitions, partitioner))].append(m)
    return out


def alerts(messages, partitions=PARTITIONS, partitioner="consistent_random", rules=None,
           watermarks=None, history=False, cw13_from=None, decoder=None):
    """The alert conditions that hold once every message has been read.

    messages as for compute(), in production order (each partition's order is
    its subsequence). rules overrides ALERT_RULES entries; watermarks ({topic:
    ms}) overrides the watermarks derived from the final clocks; cw13_from is
    {plan: date} (qualstream.plan.cw13_from). Every partition of a topic is
    taken to be claimed by the group (one worker, or several sharing them)."""
    rules = dict(ALERT_RULES, **(rules or {}))
    dec = decoder or Decoder()
    msgs = _triples(messages)
    res = AlertResult()
    res.rows = compute(msgs, dec).rows
    for (topic, p), part in sorted(split_partitions(msgs, partitions, partitioner).items()):
        if topic not in ("encounters", "deliveries"):
            continue
        records, clock, transitions = walk_partition(topic, part, dec, rules, history)
        if clock is not None:
            res.clocks[(topic, p)] = clock
        if topic == "encounters":
            res.open.update(encounter_alerts(records, day_of_ms(clock), rules))
            res.history += [dict(t, partition=p) for t in transitions]
    for topic in ("encounters", "deliveries"):
        # README "The clock": a partition that has never had an event holds the
        # watermark back; plan alerts start once every partition has read one.
        mine = [c for (t, _), c in res.clocks.items() if t == topic]
        res.watermarks[topic] = min(mine) if len(mine) == partitions else None
    res.watermarks.update(watermarks or {})
    enc, dlv = (res.watermarks[t] for t in ("encounters", "deliveries"))
    enc_day = None if enc is None else date_of(day_of_ms(enc))
    del_day = None if dlv is None else date_of(day_of_ms(dlv))
    res.open.update(month_alerts(res.rows, enc_day, rules, CW13_PHASE, cw13_from))
    res.open.update(timeliness_alerts(res.rows, enc_day, rules))
    res.open.update(ntsv_alerts(res.rows, del_day, rules))
    return res


def open_after(transitions):
    """{alert_id: row} of the alerts a sequence of transition rows (dicts with
    alert_id and state, in order) leaves open: each one's last row, if RAISED."""
    last = {}
    for t in transitions:
        last[t["alert_id"]] = t
    return {k: v for k, v in last.items() if v["state"] == "RAISED"}


def months_filled_late(messages, partitions=PARTITIONS, partitioner="consistent_random", decoder=None):
    """{(plan, source, month)} that a submission reached late: it arrived in its
    partition after that partition's clock had left the month (clock date after
    the month's last day). Only such a submission can resolve a closed month: a
    MONTH_WITHOUT_SUBMISSION raised for any other month that has a submission in
    the end was raised before every partition had read past the month."""
    dec = decoder or Decoder()
    out = set()
    for (topic, _), part in split_partitions(messages, partitions, partitioner).items():
        if topic != "encounters":
            continue
        clock = None
        for m in part:
            try:
                rec = dec.decode(topic, m[2])
            except Rejected:
                continue
            if rec["submitted_at"] is not None and clock is not None:
                month = date_of(rec["submitted_at"] // DAY_MS).replace(day=1)
                if last_day(month) < date_of(day_of_ms(clock)):
                    out.add((rec["plan_id"], rec["source"], month))
            t = event_time(topic, rec)
            if t is not None and (clock is None or t > clock):
                clock = t
    return out


# --------------------------------------------------------------------------- comparing

def _norm(row):
    if isinstance(row, dict):
        row = (row["plan_id"], row["measure"], row["stratum"], row["grain"], row["period_start"],
               row["numerator"], row["denominator"])
    plan, measure, stratum, grain, start, num, den = row[:7]
    if isinstance(start, (datetime.date, datetime.datetime)):
        start = start.isoformat()[:10]
    return (str(plan), str(measure), "" if stratum is None else str(stratum), str(grain),
            str(start)[:10]), (int(num), int(den))


def compare(expected_rows, actual_rows, measures=MEASURES):
    """Human-readable differences between expected rows (oracle) and actual rows
    (worker's measure_period). Rows are 7-tuples or dicts; period_start a date
    or ISO string. A key missing on one side reads as 0/0, so worker rows that
    retractions brought back to zero are fine and expected zero rows need not
    exist. Only `measures` are compared (the worker may compute more)."""
    diffs = []
    exp, act = {}, {}
    for rows, into, side in ((expected_rows, exp, "expected"), (actual_rows, act, "actual")):
        for r in rows:
            k, v = _norm(r)
            if measures and k[1] not in measures:
                continue
            if k in into:
                diffs.append(f"duplicate {side} row {k}")
            into[k] = v
    for k, v in act.items():
        grain, start = k[3], datetime.date.fromisoformat(k[4])
        if grain not in GRAINS or start.day != 1 or \
                grain == "quarter" and start.month not in (1, 4, 7, 10) or \
                grain == "year" and start.month != 1:
            diffs.append(f"bad period {grain} {k[4]} in actual row {k}")
    for k in sorted(set(exp) | set(act)):
        e, a = exp.get(k, (0, 0)), act.get(k, (0, 0))
        if e != a:
            diffs.append("{} {} {!r} {} {}: expected {}/{}, worker has {}/{}".format(
                *k, e[0], e[1], a[0], a[1]))
    return diffs


def read_actual_csv(path):
    """Rows of measure_period from CSV; with a header row (any column order,
    extra columns ignored) or bare in table order."""
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    if rows and rows[0] and rows[0][0] == "plan_id":
        names = rows[0]
        return [dict(zip(names, r)) for r in rows[1:] if r]
    return [r for r in rows if r]


def query_actual(dsn):
    out = subprocess.run(
        ["psql", dsn, "-X", "-q", "--csv", "-c",
         "select plan_id, measure, stratum, grain, period_start, numerator, denominator "
         "from qualstream.measure_period"], check=True, capture_output=True, text=True).stdout
    return read_actual_csv_text(out)


def read_actual_csv_text(text):
    rows = list(csv.reader(io.StringIO(text)))
    names = rows[0]
    return [dict(zip(names, r)) for r in rows[1:] if r]


# --------------------------------------------------------------------------- CLI

def _print_rows(rows, fmt, out=sys.stdout):
    header = ("plan_id", "measure", "stratum", "grain", "period_start", "numerator", "denominator")
    if fmt == "csv":
        w = csv.writer(out, lineterminator="\n")
        w.writerow(header)
        w.writerows(rows)
    elif fmt == "json":
        json.dump([dict(zip(header, r)) for r in rows], out, indent=1)
        out.write("\n")
    else:
        for r in rows:
            rate = f"{100 * r[5] / r[6]:6.1f}%" if r[6] else ""
            out.write(f"{r[0]:8} {r[1]:17} {r[2]:18} {r[3]:7} {r[4]} {r[5]:7} {r[6]:7} {rate}\n")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    for name, hlp in (("expected", "print the expected measure_period rows"),
                      ("deadletters", "print the expected dead letters"),
                      ("compare", "compare the worker's rows with the expected ones")):
        p = sub.add_parser(name, help=hlp)
        p.add_argument("--stream", required=True, help="JSONL from `qsgen.py dump`")
        p.add_argument("--replicas", type=int, default=1,
                       help="the stream was produced with qsgen --replicas N: scale by N")
        if name == "expected":
            p.add_argument("--format", choices=("csv", "json", "table"), default="csv")
        if name == "compare":
            g = p.add_mutually_exclusive_group(required=True)
            g.add_argument("--actual", help="CSV of measure_period rows")
            g.add_argument("--dsn", help="PostgreSQL connection string (runs psql)")
    a = ap.parse_args(argv)

    res = compute(qsgen.read_jsonl(a.stream))
    for m in res.mismatches[:20]:
        print("warning:", m, file=sys.stderr)
    rows = scale_rows(res.row_list(), a.replicas)
    n_dead = len(res.dead_letters) * a.replicas

    if a.cmd == "expected":
        _print_rows(rows, a.format)
        print(f"{len(rows)} rows; accepted {dict(res.accepted)}; expected dead letters: {n_dead}",
              file=sys.stderr)
        return 0
    if a.cmd == "deadletters":
        by = defaultdict(int)
        for seq, topic, kind, detail in res.dead_letters:
            print(f"{seq:7} {topic:14} {kind:15} {detail}")
            by[kind] += 1
        print(f"expected dead letters: {n_dead} " + json.dumps(dict(sorted(by.items()))))
        return 0
    actual = read_actual_csv(a.actual) if a.actual else query_actual(a.dsn)
    diffs = compare(rows, actual)
    for d in diffs:
        print(d)
    print(f"{len(diffs)} differences ({len(rows)} expected non-zero rows, {len(actual)} actual rows); "
          f"expected dead letters: {n_dead}", file=sys.stderr)
    return 1 if diffs else 0


if __name__ == "__main__":
    sys.exit(main())
