#!/usr/bin/python3
"""qsgen: deterministic event streams for testing qualstream.

Builds realistic, replayable streams of encounter, delivery and member events in
the Confluent wire format (byte 0 = magic 0, bytes 1-4 = schema id big-endian,
then Avro binary), optionally mixed with hostile messages, each tagged with the
rejection the worker owes it. A stream can be dumped to JSONL (for oracle.py and
tests that need no Kafka) or produced to Kafka with an idempotent producer.

Library entry points: generate(), replicate(), write_registry(), Codec, Message.
CLI: registry, dump, tail, produce, bench (see `qsgen.py <command> --help`).
Run with /usr/bin/python3 (Debian's python3-avro 1.11, python3-confluent-kafka).
Nothing here reads the wall clock: the same arguments always give the same bytes.
"""

import argparse
import calendar
import datetime
import io
import json
import random
import struct
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import avro.io
import avro.schema

SCHEMA_DIR = Path(__file__).resolve().parents[2] / "schemas"

# Logical topic names; the producer maps them to real topic names.
TOPICS = ("encounters", "deliveries", "member-events")

# The worker's reader schema for each topic, by registry id.
READER_ID = {"encounters": 1, "deliveries": 2, "member-events": 3}
BASE_FILES = {1: "encounter.avsc", 2: "delivery.avsc", 3: "member_event.avsc", 4: "dead_letter.avsc",
              5: "alert.avsc"}
EVOLVED_ENCOUNTER_ID = 11
EVOLVED_DELIVERY_ID = 12

EPOCH = datetime.date(1970, 1, 1)
DAY_MS = 86_400_000

# In a replicated (big) stream every identifier carries this fixed-width marker,
# which replicate() rewrites in the encoded bytes to make each copy distinct.
REPLICA_MARK = ".r00000"


# --------------------------------------------------------------------------- dates

def day(d):
    """Days since 1970-01-01 (Avro `date`) of a date or ISO string."""
    if isinstance(d, str):
        d = datetime.date.fromisoformat(d)
    return (d - EPOCH).days


def date_of(n):
    return EPOCH + datetime.timedelta(days=n)


def add_months(d, k):
    y, m = divmod(d.month - 1 + k, 12)
    return datetime.date(d.year + y, m + 1, 1)


# --------------------------------------------------------------------------- schemas

def _load(name):
    return json.loads((SCHEMA_DIR / name).read_text())


def evolved_encounter_schema():
    """Schema 11: an upstream system's newer Encounter writer.

    Adds an optional `clearinghouse`, reorders fields and drops `ed_visit`
    (which has a default in the reader), so it still resolves."""
    base = _load("encounter.avsc")
    f = {x["name"]: x for x in base["fields"]}
    clearinghouse = {"name": "clearinghouse", "type": ["null", "string"], "default": None,
                     "doc": "Clearinghouse that forwarded the record (added in this writer version)."}
    order = ["plan_id", "member_id", "encounter_id", "source", "frequency", "original_encounter_id"]
    fields = [f[n] for n in order] + [clearinghouse] + [
        f[n] for n in ("service_to", "service_from", "submitted_at", "adjudicated_at")]
    return dict(base, doc="Evolved Encounter writer (tests): reordered, +clearinghouse, -ed_visit.",
                fields=fields)


def evolved_delivery_schema():
    """Schema 12: a newer Delivery writer: drops `status` (reader default ACTIVE),
    adds an optional `birth_weight_grams`, reorders fields."""
    base = _load("delivery.avsc")
    f = {x["name"]: x for x in base["fields"]}
    weight = {"name": "birth_weight_grams", "type": ["null", "int"], "default": None,
              "doc": "Birth weight (added in this writer version)."}
    order = ["delivery_id", "member_id", "plan_id", "hospital_id", "delivery_date", "method",
             "live_birth", "presentation", "plurality", "gestational_age_weeks", "parity"]
    fields = [f[n] for n in order[:5]] + [weight] + [f[n] for n in order[5:]]
    return dict(base, doc="Evolved Delivery writer (tests): reordered, +birth_weight_grams, -status.",
                fields=fields)


def registry_texts():
    """Schema id -> schema JSON text, as the registry directory holds it."""
    texts = {sid: (SCHEMA_DIR / name).read_text() for sid, name in BASE_FILES.items()}
    texts[EVOLVED_ENCOUNTER_ID] = json.dumps(evolved_encounter_schema(), indent=2) + "\n"
    texts[EVOLVED_DELIVERY_ID] = json.dumps(evolved_delivery_schema(), indent=2) + "\n"
    return texts


def write_registry(directory):
    """Write <id>.avsc for every schema id; refuse to overwrite a different file,
    because the worker and the generator must agree on what each id means."""
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    for sid, text in sorted(registry_texts().items()):
        p = d / f"{sid}.avsc"
        if p.exists() and p.read_text() != text:
            if json.loads(p.read_text()) != json.loads(text):
                raise SystemExit(f"{p}: exists with different content; refusing to overwrite")
            continue
        p.write_text(text)
    return d


def strip_logical(obj):
    """Drop logicalType annotations so python-avro hands dates and instants over as
    plain ints: it would otherwise convert them to datetime objects, which cannot
    even represent the out-of-range values hostile messages carry."""
    if isinstance(obj, dict):
        return {k: strip_logical(v) for k, v in obj.items() if k != "logicalType"}
    if isinstance(obj, list):
        return [strip_logical(v) for v in obj]
    return obj


def parse_schema(text):
    return avro.schema.parse(json.dumps(strip_logical(json.loads(text))))


# --------------------------------------------------------------------------- encoding

class Codec:
    """Encodes records with python-avro's DatumWriter/BinaryEncoder and frames them.

    Union fields holding a record take a dict with a `_kind` key naming the branch:
    python-avro picks the LAST branch a datum validates against, and an Enrollment
    {month, smi_sud} also validates as a CoordinatorAssigned {month}, so the branch
    must be chosen explicitly."""

    def __init__(self, texts=None):
        self.texts = texts or registry_texts()
        self.schemas = {sid: parse_schema(t) for sid, t in self.texts.items()}
        self.writer = avro.io.DatumWriter()

    def _write_record(self, schema, datum, enc, override):
        for f in schema.fields:
            if f.name in override:
                enc.write(override[f.name])
                continue
            v = datum[f.name] if f.name in datum else f.default
            t = f.type
            if isinstance(t, avro.schema.UnionSchema) and isinstance(v, dict):
                names = [getattr(b, "name", None) for b in t.schemas]
                if "_kind" not in v:
                    raise ValueError(f"{f.name}: a record in a union needs '_kind' (one of {names})")
                idx = names.index(v["_kind"])
                enc.write_long(idx)
                self._write_record(t.schemas[idx], v, enc, {})
            elif isinstance(t, avro.schema.RecordSchema):
                self._write_record(t, v, enc, {})
            else:
                self.writer.write_data(t, v, enc)

    def body(self, sid, datum, override=None):
        """Avro binary of datum under writer schema sid. override maps a field name
        to raw bytes written in its place (how hostile messages are hand-built)."""
        buf = io.BytesIO()
        self._write_record(self.schemas[sid], datum, avro.io.BinaryEncoder(buf), override or {})
        return buf.getvalue()

    def frame(self, sid, datum, magic=0, override=None):
        return bytes([magic]) + struct.pack(">I", sid) + self.body(sid, datum, override)


def zigzag_varint(n):
    """Avro long encoding of any Python int (hostile values may exceed 64 bits)."""
    z = (n << 1) if n >= 0 else ((-n) << 1) - 1
    out = bytearray()
    while True:
        b = z & 0x7F
        z >>= 7
        if z:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def avro_string(b):
    if isinstance(b, str):
        b = b.encode()
    return zigzag_varint(len(b)) + b


# --------------------------------------------------------------------------- messages

@dataclass
class Message:
    """One Kafka message of a generated stream.

    record is what the worker should decode (the reader-schema view, dates as
    days since epoch, instants as epoch ms), or None when undecodable. expect is
    the rejection kind a hostile message is tagged with, None for a usable one."""
    topic: str
    key: bytes
    value: bytes
    record: dict = None
    schema_id: int = None
    expect: str = None
    note: str = ""

    def to_json(self, seq):
        return {
            "seq": seq, "topic": self.topic,
            "key": None if self.key is None else self.key.decode("utf-8", "replace"),
            "key_hex": None if self.key is None else self.key.hex(),
            "value_hex": None if self.value is None else self.value.hex(),
            "schema_id": self.schema_id, "record": self.record,
            "expect_reject": self.expect, "note": self.note,
        }

    @classmethod
    def from_json(cls, d):
        return cls(d["topic"],
                   None if d.get("key_hex") is None else bytes.fromhex(d["key_hex"]),
                   None if d.get("value_hex") is None else bytes.fromhex(d["value_hex"]),
                   d.get("record"), d.get("schema_id"), d.get("expect_reject"), d.get("note", ""))


def write_jsonl(messages, path):
    with open(path, "w") as out:
        for i, m in enumerate(messages):
            out.write(json.dumps(m.to_json(i), separators=(",", ":")) + "\n")


def read_jsonl(path):
    with open(path) as f:
        return [Message.from_json(json.loads(line)) for line in f if line.strip()]


# --------------------------------------------------------------------------- generator

# Hostile kinds, in the order they are mixed in. Each is one message; the kind is
# also the tag the oracle's own classification is checked against.
HOSTILE_KINDS = (
    "no_value", "empty_value", "short_value", "garbage", "bad_magic", "unknown_schema",
    "wrong_topic_schema", "truncated", "trailing_bytes", "huge_string_length",
    "negative_string_length", "bad_enum_index", "bad_union_index", "bad_boolean",
    "overlong_varint", "int_overflow", "invalid_utf8", "date_out_of_range",
    "date_before_1900", "service_from_after_to", "submitted_before_service_to",
    "parity_negative", "gestational_age_99", "plurality_zero", "empty_id", "long_id_200",
    "id_64_bytes", "id_64_bytes_utf8", "original_with_original_id",
    "replacement_without_original_id", "void_without_original_id",
    "member_event_date_out_of_range", "member_event_bad_union_index",
)


# Member-event stories (qsgen --member-events N: N stories of each family per plan;
# story i plays scenario i mod len). See _Generator.caw*_story.
CAW6_STORIES = ("unable_then_success", "same_day_tie", "outcome_corrected", "latest_not_smhs",
                "latest_voided", "date_moved", "older_arrives_late", "both_unreachable", "single")
CAW7_STORIES = ("qualifies", "fifth_month_late", "void_back_to_4", "void_reinstated", "month_moved",
                "smi_corrected_away", "smi_by_correction", "short_year", "same_month_twice",
                "across_years", "retro_enrollment")
CAW8_STORIES = ("initial_then_revisions", "initial_goals_corrected", "two_initials_same_month",
                "initial_voided", "revised_only", "revised_moved", "initial_and_revised_same_month",
                "type_corrected")
CAW9_STORIES = ("coordinated", "contacts_without_coordinator", "contact_before_assignment",
                "coordinator_voided", "contact_moved", "duplicate_assignment", "coordinator_month_moved")
# How a CAW7 member's ED visit evolves, cycled per plan over that plan's visits.
ED_VARIANTS = ("plain", "ed_off", "void_original", "moved", "owed", "ed_on", "void_replacement",
               "corrected_original", "replacement_first", "toggle_back", "non_ed", "orphan_replacement")


class _Generator:
    def __init__(self, seed, plans, hospitals_per_plan, members, start_date, months,
                 encounters_per_month, deliveries, member_events, hostile, evolved_share,
                 gap, id_suffix, codec, edges=True):
        self.rng = random.Random(seed)
        self.unusual_rng = random.Random(seed ^ 0x5EED)
        self.seed = seed
        self.edges = edges
        self.plans = list(plans)
        self.hospitals_per_plan = hospitals_per_plan
        self.members = members
        self.start = start_date.replace(day=1)
        self.months = months
        self.epm = encounters_per_month
        self.deliveries = deliveries
        self.member_events = member_events
        self.hostile = hostile
        self.evolved_share = evolved_share
        self.sfx = id_suffix
        self.codec = codec
        self.out = []          # (emit_ms, creation seq, Message)
        self.first_day = day(self.start)
        self.end_day = day(add_months(self.start, months))  # exclusive
        # One plan/source gets a calendar month with no submission at all
        # (CW13 frequency must then report a miss).
        self.gap = None
        if gap and months >= 3:
            g = add_months(self.start, months // 2)
            self.gap = (self.plans[-1], "MEDICAID", day(g), day(add_months(g, 1)))
        self.some_delivery = None
        self.some_encounter = None

    # ---- plumbing

    def emit(self, at_ms, msg):
        self.out.append((at_ms, len(self.out), msg))

    def delay(self):
        """Transport delay between a business event and its message."""
        return self.rng.randrange(0, 6 * 3600_000)

    def sub_ms(self, plan, source, n, tod=None):
        """Epoch ms of a submission on day n, pushed out of the gap month."""
        if self.gap and (plan, source) == self.gap[:2] and self.gap[2] <= n < self.gap[3]:
            n = self.gap[3]
            tod = None
        return n * DAY_MS + (self.rng.randrange(DAY_MS) if tod is None else tod)

    def member_ids(self, plan):
        return [f"MBR-{plan}-{i:05d}{self.sfx}" for i in range(self.members)]

    def send_encounter(self, rec, at_ms, note, after=None):
        """Emit rec at at_ms, or just after `after` (the emission of the record this
        one follows up), so that follow-ups never overtake their target by accident;
        returns the emission time used."""
        if after is not None:
            at_ms = max(at_ms, after + 1)
        sid, datum = 1, rec
        # The evolved writer has no ed_visit, so the reader sees its default
        # (false): use it only where that is the truth.
        if not rec["ed_visit"] and self.rng.random() < self.evolved_share:
            sid = EVOLVED_ENCOUNTER_ID
            datum = dict(rec, clearinghouse=self.rng.choice(["CH-ALPHA", "CH-BETA", None]))
        self.emit(at_ms, Message("encounters", rec["member_id"].encode(),
                                 self.codec.frame(sid, datum), dict(rec), sid, None, note))
        return at_ms

    def send_delivery(self, rec, at_ms, note):
        sid, datum = 2, rec
        if rec["status"] == "ACTIVE" and self.rng.random() < self.evolved_share:
            sid = EVOLVED_DELIVERY_ID
            datum = dict(rec, birth_weight_grams=self.rng.choice([None, self.rng.randint(2200, 4400)]))
        self.emit(at_ms, Message("deliveries", rec["member_id"].encode(),
                                 self.codec.frame(sid, datum), dict(rec), sid, None, note))

    # ---- encounters

    def encounters(self):
        rng = self.rng
        for plan in self.plans:
            members = self.member_ids(plan)
            n = 0
            for mi in range(self.months):
                m0 = add_months(self.start, mi)
                dim = calendar.monthrange(m0.year, m0.month)[1]
                for _ in range(self.epm):
                    n += 1
                    member = rng.choice(members)
                    source = "MEDICARE" if rng.random() < 0.6 else "MEDICAID"
                    st = day(m0) + rng.randrange(dim)
                    self.encounter_story(plan, member, source, st, n)

    def encounter_story(self, plan, member, source, st, n):
        """One original encounter and whatever happens to it afterwards."""
        rng = self.rng
        eid = f"ENC-{plan}-{n:06d}"
        sf = st - rng.choice((0, 0, 0, 1, 2, 3, 6))
        ed = rng.random() < 0.15
        owed = False
        x = rng.random()
        if x < 0.03:      # exactly on the 180-day limit, last millisecond of the UTC day
            lag, tod, why = 180, DAY_MS - 1, "lag 180 at 23:59:59.999"
        elif x < 0.06:    # one day late, first millisecond of the UTC day
            lag, tod, why = 181, 0, "lag 181 at 00:00:00.000"
        elif x < 0.07:
            lag, tod, why = 0, None, "submitted on the service_to day"
        elif x < 0.15:
            lag, tod, why = rng.randint(182, 400), None, "late"
        elif x < 0.22:
            lag, tod, why, owed = rng.randint(30, 330), None, "owed then submitted", True
        elif x < 0.23:
            lag, tod, why, owed = None, None, "owed, never submitted", True
        else:
            lag, tod, why = rng.randint(1, 170), None, "timely"
        sub = None if lag is None else self.sub_ms(plan, source, st + lag, tod)
        adj = (st + rng.randint(1, 25)) * DAY_MS + rng.randrange(DAY_MS)
        if sub is not None:
            adj = min(adj, sub)
        if not owed and rng.random() < 0.03:
            adj = None
        rec = dict(encounter_id=eid + self.sfx, original_encounter_id=None, plan_id=plan,
                   member_id=member, source=source, frequency="ORIGINAL", service_from=sf,
                   service_to=st, adjudicated_at=adj, submitted_at=sub, ed_visit=ed)
        if self.some_encounter is None:
            self.some_encounter = rec
        if owed:
            self.send_encounter(dict(rec, submitted_at=None), adj + self.delay(), f"original owed ({why})")
            if sub is None:
                return
            t0 = self.send_encounter(rec, sub + self.delay(), f"original submitted ({why})")
            follow = rng.random()
            if 0.17 <= follow < 0.185:
                follow = 1.0    # an owed original was already sent: no out-of-order or orphan story
        else:
            follow = rng.random()
            if not (0.17 <= follow < 0.18):
                t0 = self.send_encounter(rec, sub + self.delay(), f"original ({why})")

        if follow < 0.09:
            self.replacements(rec, eid, t0)
        elif follow < 0.13:
            self.void(rec, rec, eid + "-V", "void of the original", t0)
        elif follow < 0.15:
            self.correct_original(rec, t0)
        elif follow < 0.17:
            self.send_encounter(rec, sub + rng.randint(1, 30) * DAY_MS, "exact duplicate re-sent", t0)
        elif follow < 0.18:
            # The replacement reaches the topic before its original does: it counts
            # as a submission at once, its chain's timeliness only once the original lands.
            r = self.replacement(rec, rec, eid + "-R1")
            late = r["submitted_at"] + rng.randint(1, 20) * DAY_MS
            self.send_encounter(r, r["submitted_at"] + self.delay(), "replacement before its original")
            self.send_encounter(rec, late, "original arriving after its replacement")
        elif follow < 0.185:
            # Names an original that never arrives.
            ghost = dict(rec, encounter_id=eid + "-GONE" + self.sfx)
            freq = rng.choice(("REPLACEMENT", "VOID"))
            r = self.replacement(rec, ghost, eid + "-ORPHAN")
            r["frequency"] = freq
            self.send_encounter(r, r["submitted_at"] + self.delay(), f"orphan {freq.lower()}")
        elif follow < 0.195:
            self.unusual_chain(rec, eid, t0)

    def unusual_chain(self, rec, eid, after):
        """A valid but unusual sequence (README "Identity, corrections and voids"): a
        record later made to name itself, an id re-sent with another frequency, a
        replacement whose original_encounter_id a later version corrects, a cycle.
        Its details come from a generator of its own, so that the rest of the stream
        is the one the same seed gave before these stories existed."""
        main, self.rng = self.rng, self.unusual_rng
        try:
            self._unusual_chain(rec, eid, after)
        finally:
            self.rng = main

    def _unusual_chain(self, rec, eid, after):
        rng = self.rng
        story = rng.choice(("self_named", "original_becomes_replacement", "replacement_becomes_original",
                            "repointed", "cycle"))
        r1 = self.replacement(rec, rec, eid + "-R1")
        t = self.send_encounter(r1, r1["submitted_at"] + self.delay(), f"{story}: replacement", after)
        step = DAY_MS + rng.randrange(DAY_MS)
        if story == "self_named":
            self.send_encounter(dict(r1, original_encounter_id=r1["encounter_id"]), t + step,
                                "self_named: the replacement now names itself", t)
        elif story == "original_becomes_replacement":
            x = dict(rec, encounter_id=eid + "-X" + self.sfx)
            tx = self.send_encounter(x, t + step, "original_becomes_replacement: a second original", t)
            tv = self.send_encounter(self.void_record(x, eid + "-XV"), tx + step, "original_becomes_replacement: its void", tx)
            self.send_encounter(dict(x, frequency="REPLACEMENT", original_encounter_id=rec["encounter_id"]),
                                tv + step, "original_becomes_replacement: re-sent as a replacement", tv)
        elif story == "replacement_becomes_original":
            self.send_encounter(dict(r1, frequency="ORIGINAL", original_encounter_id=None), t + step,
                                "replacement_becomes_original: re-sent as an original", t)
        elif story == "repointed":
            wrong = dict(r1, original_encounter_id=eid + "-WRONG" + self.sfx)
            tw = self.send_encounter(wrong, t + step, "repointed: the replacement names a wrong id", t)
            tv = self.send_encounter(self.void_record(r1, eid + "-RV"), tw + step, "repointed: a void of the replacement", tw)
            self.send_encounter(r1, tv + step, "repointed: the replacement names its original again", tv)
        else:
            r2 = dict(r1, encounter_id=eid + "-R2" + self.sfx, original_encounter_id=r1["encounter_id"])
            t2 = self.send_encounter(r2, t + step, "cycle: a replacement of the replacement", t)
            self.send_encounter(dict(r1, original_encounter_id=r2["encounter_id"]), t2 + step,
                                "cycle: the first replacement names the second", t2)

    def void_record(self, target, vid):
        """A VOID named vid of target, submitted when target was."""
        return dict(target, encounter_id=vid + self.sfx, original_encounter_id=target["encounter_id"],
                    frequency="VOID", adjudicated_at=None)

    def replacement(self, orig, target, rid):
        """A REPLACEMENT of target (the original or a replacement) with changed content."""
        rng = self.rng
        sub_day = target["submitted_at"] // DAY_MS + rng.randint(1, 60)
        orig_sub_day = orig["submitted_at"] // DAY_MS
        st, sf, ed = target["service_to"], target["service_from"], target["ed_visit"]
        kind = rng.choice(("service_to", "service_to", "ed_visit", "flip180"))
        if kind == "service_to":
            st += rng.choice((-15, -7, -3, -1, 1, 2, 5, 10))
        elif kind == "ed_visit":
            ed = not ed
        elif orig_sub_day - st <= 180:
            st = orig_sub_day - 181 - rng.randint(0, 2)   # now late
        else:
            st = orig_sub_day - rng.randint(150, 180)     # now on time
        st = min(st, sub_day)
        sf = min(sf, st)
        return dict(orig, encounter_id=rid + self.sfx, original_encounter_id=target["encounter_id"],
                    frequency="REPLACEMENT", service_from=sf, service_to=st, ed_visit=ed,
                    adjudicated_at=sub_day * DAY_MS - DAY_MS,
                    submitted_at=self.sub_ms(orig["plan_id"], orig["source"], sub_day))

    def replacements(self, orig, eid, after):
        rng = self.rng
        r1 = self.replacement(orig, orig, eid + "-R1")
        t1 = self.send_encounter(r1, r1["submitted_at"] + self.delay(), "replacement", after)
        last, tl = r1, t1
        if rng.random() < 0.35:
            # A second replacement, naming either the first one (the chain grows
            # through a replacement) or the original again.
            target = r1 if rng.random() < 0.6 else orig
            r2 = self.replacement(orig, target, eid + "-R2")
            # Submitted and sent after r1, so "latest replacement" means the
            # same thing by submission time and by position in the partition.
            r2["submitted_at"] = max(r2["submitted_at"], r1["submitted_at"] + DAY_MS)
            tl = self.send_encounter(r2, r2["submitted_at"] + self.delay(),
                                     "second replacement of " + ("R1" if target is r1 else "the original"), t1)
            last = r2
        if rng.random() < 0.25:
            self.void(orig, last, eid + "-V", "void of a replacement", tl)

    def void(self, orig, target, vid, note, after):
        sub_day = target["submitted_at"] // DAY_MS + self.rng.randint(1, 60)
        v = dict(target, encounter_id=vid + self.sfx, original_encounter_id=target["encounter_id"],
                 frequency="VOID", adjudicated_at=None,
                 submitted_at=self.sub_ms(orig["plan_id"], orig["source"], sub_day))
        self.send_encounter(v, v["submitted_at"] + self.delay(), note, after)

    def correct_original(self, rec, after):
        """A new version of the original under its own encounter_id."""
        rng = self.rng
        sub_day = rec["submitted_at"] // DAY_MS
        if rng.random() < 0.5:
            st = min(rec["service_to"] + rng.choice((-4, -2, 1, 3)), sub_day)
            new = dict(rec, service_to=st, service_from=min(rec["service_from"], st))
            at, note = rec["submitted_at"] + rng.randint(1, 40) * DAY_MS, "original corrected (service_to)"
        else:
            new = dict(rec, submitted_at=self.sub_ms(rec["plan_id"], rec["source"],
                                                     sub_day + rng.randint(1, 60)))
            at, note = new["submitted_at"], "original re-submitted later (moves its period)"
        self.send_encounter(new, at + self.delay(), note, after)

    # ---- deliveries

    def deliveries_stream(self):
        rng = self.rng
        span = self.end_day - self.first_day
        for plan in self.plans:
            members = self.member_ids(plan)
            hospitals = [f"HOSP-{plan[-1]}{h + 1}" for h in range(self.hospitals_per_plan)]
            # Each hospital's NTSV cesarean propensity; the first of each plan is
            # a high one so some hospitals land above the 23.9% target.
            rates = [rng.uniform(0.26, 0.32)] + [rng.uniform(0.16, 0.26) for _ in hospitals[1:]]
            weights = [rng.uniform(0.8, 1.2) for _ in hospitals]
            for i in range(self.deliveries):
                h = rng.choices(range(len(hospitals)), weights)[0]
                rec = self.delivery_record(f"DLV-{plan}-{i:06d}{self.sfx}", plan, hospitals[h],
                                           rng.choice(members), self.first_day + rng.randrange(span),
                                           rates[h])
                if self.some_delivery is None:
                    self.some_delivery = rec
                at = (rec["delivery_date"] + rng.randint(1, 30)) * DAY_MS + self.delay()
                self.send_delivery(rec, at, "delivery")
                self.delivery_followups(rec, at, hospitals, rates)

    def delivery_record(self, did, plan, hospital, member, ddate, rate):
        rng = self.rng

        def maybe(p_null, value):
            return None if rng.random() < p_null else value

        parity = maybe(0.04, 0 if rng.random() < 0.45 else rng.randint(1, 5))
        ga = maybe(0.03, rng.randint(37, 41) if rng.random() < 0.9 else rng.randint(24, 36))
        plurality = maybe(0.02, 1 if rng.random() < 0.97 else rng.choice((2, 2, 3)))
        presentation = maybe(0.05, "VERTEX" if rng.random() < 0.94
                             else rng.choice(("BREECH", "BREECH", "TRANSVERSE", "OTHER")))
        live = rng.random() < 0.99
        if presentation not in (None, "VERTEX") or (plurality or 1) > 1:
            p_cs = 0.6
        elif parity not in (None, 0):
            p_cs = 0.2
        else:
            p_cs = rate
        return dict(delivery_id=did, plan_id=plan, hospital_id=hospital, member_id=member,
                    delivery_date=ddate, parity=parity, gestational_age_weeks=ga,
                    plurality=plurality, presentation=presentation,
                    method="CESAREAN" if rng.random() < p_cs else "VAGINAL",
                    live_birth=live, status="ACTIVE")

    def delivery_followups(self, rec, at, hospitals, rates):
        rng = self.rng
        x = rng.random()
        at2 = at + rng.randint(3, 60) * DAY_MS
        if x < 0.10:
            kind = rng.choice(("move_month", "move_hospital", "fill_missing", "method", "criteria"))
            new = dict(rec)
            if kind == "move_month":
                new["delivery_date"] += rng.choice((-1, 1)) * rng.randint(25, 45)
            elif kind == "move_hospital":
                new["hospital_id"] = rng.choice([h for h in hospitals if h != rec["hospital_id"]] or hospitals)
            elif kind == "fill_missing":
                for k, v in (("parity", 0), ("gestational_age_weeks", 39), ("plurality", 1),
                             ("presentation", "VERTEX")):
                    if new[k] is None:
                        new[k] = v
                        break
                else:
                    new["parity"] = None   # nothing missing: lose one instead
            elif kind == "method":
                new["method"] = "VAGINAL" if rec["method"] == "CESAREAN" else "CESAREAN"
            else:
                new["gestational_age_weeks"] = rng.choice((None, 36, 38))
                new["presentation"] = rng.choice(("VERTEX", "BREECH", None))
            self.send_delivery(new, at2, f"delivery corrected ({kind})")
        elif x < 0.14:
            self.send_delivery(dict(rec, status="VOID"), at2, "delivery voided")
        elif x < 0.15:
            self.send_delivery(dict(rec, status="VOID"), at2, "delivery voided")
            self.send_delivery(dict(rec, method="CESAREAN"), at2 + 5 * DAY_MS,
                               "voided delivery re-activated")
        elif x < 0.16:
            self.send_delivery(rec, at2, "delivery re-sent unchanged")

    # ---- member events (CAW6-CAW9) and the ED encounters CAW7 counts

    def member_events_stream(self):
        """Per plan, member_events stories for each of CAW6, CAW7, CAW8 and CAW9.
        Story i of a family follows scenario i mod len(<FAMILY>_STORIES), with
        random dates and outcomes, so member_events >= 11 plays every scenario (and
        every ED_VARIANTS) for every plan. Each family draws its members from its
        own shuffled pool (the same member often has stories of several families).

        The stories use their own random generator, so the encounters, deliveries
        and hostile messages are the same with or without member events."""
        main_rng = self.rng
        self.rng = random.Random(self.seed * 7919 + 104729)
        try:
            for plan in self.plans:
                self._n_mev = self._n_icp = self._n_ed = 0
                self._ed_variant = 0
                pools = {}
                for fam in ("CAW6", "CAW7", "CAW8", "CAW9"):
                    pool = self.member_ids(plan)
                    self.rng.shuffle(pool)
                    pools[fam] = pool
                for i in range(self.member_events):
                    def who(fam):
                        return pools[fam][i % len(pools[fam])]
                    self.caw7_story(plan, who("CAW7"), CAW7_STORIES[i % len(CAW7_STORIES)])
                    self.caw6_story(plan, who("CAW6"), CAW6_STORIES[i % len(CAW6_STORIES)])
                    self.caw8_story(plan, who("CAW8"), CAW8_STORIES[i % len(CAW8_STORIES)])
                    self.caw9_story(plan, who("CAW9"), CAW9_STORIES[i % len(CAW9_STORIES)])
        finally:
            self.rng = main_rng

    def send_member_event(self, rec, at, note):
        self.emit(at, Message("member-events", rec["member_id"].encode(),
                              self.codec.frame(3, rec), json.loads(json.dumps(rec)), 3, None, note))

    def mev(self, plan, member, kind, body, at, note, after=None):
        """A new ACTIVE member event (new event_id); returns (record, emission time)."""
        self._n_mev += 1
        rec = dict(event_id=f"MEV-{plan}-{self._n_mev:05d}{self.sfx}", plan_id=plan, member_id=member,
                   status="ACTIVE", body=dict(body, _kind=kind))
        if after is not None:
            at = max(at, after + 1)
        self.send_member_event(rec, at, note)
        return rec, at

    def mev_again(self, rec, at, note, after, status="ACTIVE", **body):
        """A later version of rec (same event_id): changed body fields or a VOID."""
        new = dict(rec, status=status, body=dict(rec["body"], **body))
        at = max(at, after + 1)
        self.send_member_event(new, at, note)
        return new, at

    def arrival(self, d, lo=0, hi=10):
        """Emission time of a fact dated on day d: a few days later, at some hour."""
        return (d + self.rng.randint(lo, hi)) * DAY_MS + self.delay()

    def story_quarter(self):
        """Days of a random calendar quarter touching the generation window."""
        m = add_months(self.start, self.rng.randrange(self.months))
        q = datetime.date(m.year, (m.month - 1) // 3 * 3 + 1, 1)
        return [day(add_months(q, k)) for k in range(4)]     # first days of its 3 months + the next

    def day_in(self, month_first):
        """A random day of the month starting on day month_first."""
        d = date_of(month_first)
        return month_first + self.rng.randrange(calendar.monthrange(d.year, d.month)[1])

    # CAW7: Enrollment member months and ED visits

    def caw7_story(self, plan, member, kind):
        rng = self.rng
        years = sorted({add_months(self.start, k).year for k in range(self.months)})
        y = rng.choice(years)

        def mon(k):        # month k of year y (k may run past 12 into y+1)
            return day(add_months(datetime.date(y, 1, 1), k - 1))

        plan_months, smi, later = [], set(), []
        if kind == "qualifies":
            n = rng.randint(6, 12)
            first = rng.randint(1, 13 - n)
            plan_months = list(range(first, first + n))
            smi = set(rng.sample(plan_months, rng.randint(1, 3)))
        elif kind == "fifth_month_late":
            # Enrolled August..December: the fifth month (December) arrives last and
            # qualifies the whole year at once, ED visits of August..November included.
            plan_months = [8, 9, 10, 11, 12]
            smi = {rng.choice(plan_months)}
        elif kind in ("void_back_to_4", "void_reinstated", "month_moved"):
            plan_months = sorted(rng.sample(range(1, 13), 5))
            smi = {rng.choice(plan_months)}
            victim = rng.choice([m for m in plan_months if m not in smi])
            later.append((kind, victim))
        elif kind == "smi_corrected_away":
            n = rng.randint(5, 9)
            first = rng.randint(1, 13 - n)
            plan_months = list(range(first, first + n))
            smi = {rng.choice(plan_months)}
            later.append((kind, min(smi)))
        elif kind == "smi_by_correction":
            n = rng.randint(5, 9)
            first = rng.randint(1, 13 - n)
            plan_months = list(range(first, first + n))
            later.append((kind, rng.choice(plan_months)))
        elif kind == "short_year":
            n = rng.randint(3, 4)
            first = rng.randint(1, 13 - n)
            plan_months = list(range(first, first + n))
            smi = set(plan_months)
        elif kind == "same_month_twice":
            # Five enrollment events for four distinct months; a retroactive fifth
            # month arrives later and qualifies the year.
            plan_months = sorted(rng.sample(range(1, 12), 4))
            smi = {plan_months[0]}
            later.append(("duplicate", rng.choice(plan_months)))
            later.append(("retro", rng.choice([m for m in range(1, 13) if m not in plan_months])))
        elif kind == "across_years":
            # July of y to February of y+1: y has 6 months, y+1 only 2 (its visits never count).
            plan_months = list(range(7, 15))
            smi = {rng.choice(range(7, 13)), 13}
        elif kind == "retro_enrollment":
            # Four months on time; a fifth, earlier month is enrolled retroactively months later.
            plan_months = sorted(rng.sample(range(4, 13), 4))
            smi = {rng.choice(plan_months)}
            later.append(("retro", rng.choice(range(1, plan_months[0]))))
        else:
            raise ValueError(kind)

        sent, last = {}, 0
        for m in plan_months:
            rec, at = self.mev(plan, member, "Enrollment", {"month": mon(m), "smi_sud": m in smi},
                               self.arrival(mon(m), 0, 3), f"CAW7 enrollment ({kind})")
            sent[m] = rec
            last = max(last, at)
        for what, m in later:
            at = self.arrival(mon(12 if what != "retro" else max(plan_months)), 5, 60)
            if what in ("void_back_to_4", "void_reinstated"):
                _, last = self.mev_again(sent[m], at, "CAW7 enrollment voided (drops to 4 months)", last,
                                         status="VOID")
                if what == "void_reinstated":
                    _, last = self.mev_again(sent[m], at + rng.randint(5, 40) * DAY_MS,
                                             "CAW7 voided enrollment re-activated", last)
            elif what == "month_moved":
                onto = rng.choice([x for x in plan_months if x != m])
                _, last = self.mev_again(sent[m], at, "CAW7 enrollment corrected onto an enrolled month",
                                         last, month=mon(onto))
            elif what == "smi_corrected_away":
                _, last = self.mev_again(sent[m], at, "CAW7 enrollment corrected (smi_sud off)", last,
                                         smi_sud=False)
            elif what == "smi_by_correction":
                _, last = self.mev_again(sent[m], at, "CAW7 enrollment corrected (smi_sud on)", last,
                                         smi_sud=True)
            elif what == "duplicate":
                _, last = self.mev(plan, member, "Enrollment", {"month": mon(m), "smi_sud": False}, at,
                                   "CAW7 second enrollment event for the same month", last)
            elif what == "retro":
                _, last = self.mev(plan, member, "Enrollment", {"month": mon(m), "smi_sud": False}, at,
                                   "CAW7 retroactive enrollment", last)

        # ED visits, mostly in enrolled months; "fifth_month_late" gets them before
        # the fifth month arrives.
        visit_months = plan_months[:-1] if kind == "fifth_month_late" else plan_months
        for _ in range(rng.randint(1, 3)):
            m = rng.choice(visit_months) if rng.random() < 0.85 else rng.randint(1, 12)
            variant = ED_VARIANTS[self._ed_variant % len(ED_VARIANTS)]
            self._ed_variant += 1
            self.ed_visit(plan, member, self.day_in(mon(m)), variant)

    def ed_follow_up(self, target, rid, freq, not_before=0, **changes):
        """A REPLACEMENT or VOID of target, submitted after it (and on or after day
        not_before), carrying target's content with `changes`."""
        rng = self.rng
        new = dict(target, **changes)
        st = new["service_to"]
        sub_day = max(target["submitted_at"] // DAY_MS + rng.randint(1, 45), st, not_before)
        return dict(new, encounter_id=rid + self.sfx, original_encounter_id=target["encounter_id"],
                    frequency=freq, service_from=min(new["service_from"], st),
                    adjudicated_at=None if freq == "VOID" else (sub_day - 1) * DAY_MS,
                    submitted_at=self.sub_ms(new["plan_id"], new["source"], sub_day))

    def ed_visit(self, plan, member, st, variant):
        """One emergency-department encounter chain of a CAW7 member (see ED_VARIANTS)."""
        rng = self.rng
        self._n_ed += 1
        eid = f"ENC-{plan}-ED{self._n_ed:05d}"
        source = rng.choice(("MEDICARE", "MEDICARE", "MEDICAID"))
        lag = rng.randint(1, 120) if rng.random() < 0.85 else rng.randint(181, 260)
        sub = self.sub_ms(plan, source, st + lag)
        adj = min((st + rng.randint(0, 10)) * DAY_MS + rng.randrange(DAY_MS), sub)
        rec = dict(encounter_id=eid + self.sfx, original_encounter_id=None, plan_id=plan,
                   member_id=member, source=source, frequency="ORIGINAL",
                   service_from=st - rng.choice((0, 0, 0, 1)), service_to=st, adjudicated_at=adj,
                   submitted_at=sub, ed_visit=variant not in ("ed_on", "non_ed"))
        note = f"CAW7 ED original ({variant})"
        if variant == "owed":
            self.send_encounter(dict(rec, submitted_at=None), adj + self.delay(), note)
            return
        if variant == "orphan_replacement":
            # Replaces an original that never arrives: a chain whose original is
            # missing, not voided, with ED content (README: content is the latest
            # replacement's), so it is a visit.
            r = self.ed_follow_up(dict(rec, encounter_id=eid + "-GONE" + self.sfx), eid + "-ORPHAN",
                                  "REPLACEMENT")
            self.send_encounter(r, r["submitted_at"] + self.delay(), "CAW7 ED replacement of a missing original (orphan_replacement)")
            return
        if variant == "replacement_first":
            r = self.ed_follow_up(rec, eid + "-R1", "REPLACEMENT", service_to=st - rng.randint(0, 3))
            t = self.send_encounter(r, r["submitted_at"] + self.delay(), "CAW7 ED replacement before its original")
            self.send_encounter(rec, r["submitted_at"] + rng.randint(1, 20) * DAY_MS, note, t)
            return
        t0 = self.send_encounter(rec, sub + self.delay(), note)

        def follow(target, suffix, freq, after, what, **changes):
            r = self.ed_follow_up(target, eid + suffix, freq, changes.pop("not_before", 0), **changes)
            return r, self.send_encounter(r, r["submitted_at"] + self.delay(), f"CAW7 ED {what}", after)

        if variant == "ed_off":
            follow(rec, "-R1", "REPLACEMENT", t0, "replacement: not an ED visit after all", ed_visit=False)
        elif variant == "ed_on":
            follow(rec, "-R1", "REPLACEMENT", t0, "replacement: an ED visit after all", ed_visit=True)
        elif variant == "void_original":
            follow(rec, "-V", "VOID", t0, "void of the original")
        elif variant == "void_replacement":
            r1, t1 = follow(rec, "-R1", "REPLACEMENT", t0, "replacement", service_to=st - rng.randint(0, 2))
            follow(r1, "-V", "VOID", t1, "void of the replacement")
        elif variant == "moved":
            shift = rng.choice((-1, 1)) * rng.randint(25, 45)
            follow(rec, "-R1", "REPLACEMENT", t0, "replacement moving service_to to another month",
                   service_to=st + shift, service_from=rec["service_from"] + shift)
        elif variant == "corrected_original":
            new_st = st - rng.randint(1, 20)
            new = dict(rec, service_to=new_st, service_from=min(rec["service_from"], new_st))
            self.send_encounter(new, sub + rng.randint(1, 30) * DAY_MS + self.delay(),
                                "CAW7 ED original corrected (service_to)", t0)
        elif variant == "toggle_back":
            r1, t1 = follow(rec, "-R1", "REPLACEMENT", t0, "replacement: not an ED visit", ed_visit=False)
            target = r1 if rng.random() < 0.5 else rec
            # Submitted after R1 too, so "latest replacement" means the same by
            # submission time and by position in the partition.
            follow(target, "-R2", "REPLACEMENT", t1, "second replacement: an ED visit again",
                   ed_visit=True, not_before=r1["submitted_at"] // DAY_MS + 1)

    # CAW6: behavioral health coordination

    def caw6_story(self, plan, member, kind):
        rng = self.rng
        q = self.story_quarter()
        outcomes = ("SUCCESS", "UNABLE_TO_REACH", "NOT_ATTEMPTED")

        def body(d, smhs=True, county=None, mem=None):
            return {"event_date": d, "receives_smhs": smhs,
                    "county_provider_outcome": county or rng.choices(outcomes, (45, 40, 15))[0],
                    "member_outcome": mem or rng.choices(outcomes, (45, 40, 15))[0]}

        def send(d, note, after=None, **kw):
            return self.mev(plan, member, "BhCoordination", body(d, **kw), self.arrival(d),
                            f"CAW6 coordination ({note})", after)

        d1 = self.day_in(q[0])
        d2 = self.day_in(q[rng.randint(1, 2)])
        if kind == "unable_then_success":
            _, t = send(d1, kind, county="UNABLE_TO_REACH", mem=rng.choice(("UNABLE_TO_REACH", "NOT_ATTEMPTED")))
            send(d2, kind, t, county="SUCCESS")
        elif kind == "same_day_tie":
            r, t = send(d2, kind)
            _, t = send(d2, kind, t)
            if rng.random() < 0.5:
                # The first one again, unchanged: its current version is now the
                # later one in the partition, so it decides again.
                self.send_member_event(r, t + rng.randint(1, 5) * DAY_MS,
                                       "CAW6 coordination re-sent unchanged (same-day tie)")
        elif kind == "outcome_corrected":
            r, t = send(d1, kind, county="UNABLE_TO_REACH", mem="UNABLE_TO_REACH")
            self.mev_again(r, t + rng.randint(2, 40) * DAY_MS, "CAW6 coordination outcome corrected", t,
                           county_provider_outcome="SUCCESS",
                           member_outcome=rng.choice(("SUCCESS", "UNABLE_TO_REACH")))
        elif kind == "latest_not_smhs":
            _, t = send(d1, kind, smhs=True)
            send(d2, kind, t, smhs=False)
        elif kind == "latest_voided":
            _, t = send(d1, kind)
            r, t = send(d2, kind, t)
            self.mev_again(r, t + rng.randint(2, 40) * DAY_MS, "CAW6 coordination voided", t, status="VOID")
        elif kind == "date_moved":
            _, t = send(d1, kind)
            r, t = send(d2, kind, t)
            self.mev_again(r, t + rng.randint(2, 40) * DAY_MS, "CAW6 coordination event_date corrected", t,
                           event_date=d2 + rng.choice((-1, 1)) * rng.randint(20, 100))
        elif kind == "older_arrives_late":
            _, t = send(d2, kind)
            self.mev(plan, member, "BhCoordination", body(d1), t + rng.randint(1, 30) * DAY_MS,
                     "CAW6 coordination (older event arriving late)", t)
        elif kind == "both_unreachable":
            send(d1, kind, county="UNABLE_TO_REACH", mem="UNABLE_TO_REACH")
        elif kind == "single":
            r, t = send(d1, kind, smhs=rng.random() < 0.85)
            if rng.random() < 0.3:
                self.send_member_event(r, t + rng.randint(1, 5) * DAY_MS, "CAW6 coordination re-sent unchanged")
        else:
            raise ValueError(kind)

    # CAW8: individualized care plans

    def caw8_story(self, plan, member, kind):
        rng = self.rng
        q = self.story_quarter()

        def icp():
            self._n_icp += 1
            return f"ICP-{plan}-{self._n_icp:05d}{self.sfx}"

        def send(cp, ptype, d, goals, note, after=None):
            return self.mev(plan, member, "CarePlan",
                            {"care_plan_id": cp, "plan_type": ptype, "completed_on": d,
                             "care_goals_documented": goals},
                            self.arrival(d), f"CAW8 care plan {ptype.lower()} ({note})", after)

        d0 = self.day_in(q[0])
        if kind == "initial_then_revisions":
            cp = icp()
            _, t = send(cp, "INITIAL", d0, rng.random() < 0.7, kind)
            d = d0
            for k in range(rng.randint(2, 4)):
                d += rng.randint(20, 120)
                _, t = send(cp, "REVISED", d, rng.random() < 0.6, kind, t)
                if k == 0:   # a second revision in the same month, goals the other way
                    month_end = day(add_months(date_of(d).replace(day=1), 1)) - 1
                    d = min(d + rng.randint(0, 5), month_end)
                    _, t = send(cp, "REVISED", d, rng.random() < 0.5, kind + ", same month", t)
        elif kind == "initial_goals_corrected":
            r, t = send(icp(), "INITIAL", d0, False, kind)
            self.mev_again(r, t + rng.randint(3, 30) * DAY_MS, "CAW8 care plan corrected (goals documented)",
                           t, care_goals_documented=True)
        elif kind == "two_initials_same_month":
            _, t = send(icp(), "INITIAL", d0, True, kind)
            month_end = day(add_months(date_of(d0).replace(day=1), 1)) - 1
            send(icp(), "INITIAL", min(d0 + rng.randint(0, 10), month_end), False, kind, t)
        elif kind == "initial_voided":
            r, t = send(icp(), "INITIAL", d0, rng.random() < 0.5, kind)
            self.mev_again(r, t + rng.randint(3, 30) * DAY_MS, "CAW8 care plan voided", t, status="VOID")
        elif kind == "revised_only":
            cp = icp()     # its INITIAL was completed before the stream begins
            d, t, recs = d0, None, []
            for _ in range(rng.randint(2, 3)):
                r, t = send(cp, "REVISED", d, False, kind, t)
                recs.append(r)
                d += rng.randint(10, 40)
            self.mev_again(rng.choice(recs), t + rng.randint(3, 30) * DAY_MS,
                           "CAW8 revision corrected (goals documented)", t, care_goals_documented=True)
        elif kind == "revised_moved":
            cp = icp()
            _, t = send(cp, "INITIAL", d0, True, kind)
            r, t = send(cp, "REVISED", d0 + rng.randint(15, 60), rng.random() < 0.5, kind, t)
            self.mev_again(r, t + rng.randint(3, 30) * DAY_MS, "CAW8 revision corrected (completed_on)", t,
                           completed_on=r["body"]["completed_on"] + rng.choice((-1, 1)) * rng.randint(30, 95))
        elif kind == "initial_and_revised_same_month":
            cp = icp()
            _, t = send(cp, "INITIAL", d0, True, kind)
            send(cp, "REVISED", d0 + rng.randint(0, 2), False, kind, t)
        elif kind == "type_corrected":
            cp = icp()
            r, t = send(cp, "INITIAL", d0, rng.random() < 0.6, kind)
            self.mev_again(r, t + rng.randint(3, 30) * DAY_MS, "CAW8 care plan corrected (was a revision)", t,
                           plan_type="REVISED")
        else:
            raise ValueError(kind)

    # CAW9: care coordinator months and care team contacts

    def caw9_story(self, plan, member, kind):
        rng = self.rng
        q = self.story_quarter()

        def assign(m, note, after=None):
            return self.mev(plan, member, "CoordinatorAssigned", {"month": m}, self.arrival(m, 0, 5),
                            f"CAW9 coordinator month ({note})", after)

        def contact(d, note, after=None):
            return self.mev(plan, member, "CareTeamContact", {"contact_date": d}, self.arrival(d, 0, 7),
                            f"CAW9 contact ({note})", after)

        if kind == "coordinated":
            months = [day(add_months(date_of(q[0]), k)) for k in range(rng.randint(3, 8))]
            for m in months:
                assign(m, kind)
                for _ in range(rng.choices((0, 1, 2), (35, 45, 20))[0]):
                    contact(self.day_in(m), kind)
        elif kind == "contacts_without_coordinator":
            for _ in range(rng.randint(1, 3)):
                contact(self.day_in(q[rng.randint(0, 2)]), kind)
        elif kind == "contact_before_assignment":
            # Assigned from the quarter's second month; contacted in its first:
            # counts for the quarter and the year, not for the month.
            contact(self.day_in(q[0]), kind)
            for m in q[1:3]:
                assign(m, kind)
        elif kind == "coordinator_voided":
            recs = [assign(m, kind) for m in q[:3]]
            k = rng.randrange(3)
            _, t = contact(self.day_in(q[k]), kind)
            r, t2 = recs[k]
            self.mev_again(r, max(t, t2) + rng.randint(5, 40) * DAY_MS, "CAW9 coordinator month voided",
                           max(t, t2), status="VOID")
        elif kind == "contact_moved":
            for m in q[:2]:
                assign(m, kind)
            r, t = contact(self.day_in(q[1]), kind)
            self.mev_again(r, t + rng.randint(2, 20) * DAY_MS, "CAW9 contact date corrected", t,
                           contact_date=self.day_in(q[3]) + rng.randint(0, 60))
        elif kind == "duplicate_assignment":
            m = q[rng.randint(0, 2)]
            assign(m, kind)
            assign(m, kind + ", again")
            contact(self.day_in(m), kind)
        elif kind == "coordinator_month_moved":
            r, t = assign(q[0], kind)
            contact(self.day_in(q[0]), kind)
            self.mev_again(r, t + rng.randint(5, 40) * DAY_MS, "CAW9 coordinator month corrected", t,
                           month=q[rng.randint(1, 3)])
        else:
            raise ValueError(kind)

    # ---- hostile messages and valid edge cases

    def hostile_messages(self):
        """One message of each hostile kind, plus valid edge cases (expect None)."""
        c, rng = self.codec, self.rng
        enc = dict(self.some_encounter)
        enc.update(submitted_at=(enc["service_to"] + 10) * DAY_MS, adjudicated_at=None)
        dlv = dict(self.some_delivery, status="ACTIVE")
        plan, member = enc["plan_id"], enc["member_id"]
        hdr1 = b"\x00" + struct.pack(">I", 1)
        good = c.frame(1, enc)
        dgood = c.frame(2, dlv)

        def E(**kw):
            return dict(enc, **kw)

        def D(**kw):
            return dict(dlv, **kw)

        def ev(suffix):
            return f"ENC-HOSTILE-{suffix}{self.sfx}"

        mev = dict(event_id=f"MEV-HOSTILE{self.sfx}", plan_id=plan, member_id=member, status="ACTIVE",
                   body={"_kind": "CareTeamContact", "contact_date": day("2200-01-01")})
        cases = {
            "no_value": ("encounters", None, None),
            "empty_value": ("encounters", b"", None),
            "short_value": ("encounters", b"\x00\x00\x00", None),
            "garbage": ("encounters", b'{"encounter_id": "E1", "plan_id": "PLAN-A"}', None),
            "bad_magic": ("encounters", b"\x01" + good[1:], enc),
            "unknown_schema": ("encounters", b"\x00" + struct.pack(">I", 999) + good[5:], enc),
            "wrong_topic_schema": ("encounters", dgood, dlv),
            "truncated": ("encounters", good[: len(good) // 2], enc),
            "trailing_bytes": ("encounters", good + b"\x00", enc),
            "huge_string_length": ("encounters", hdr1 + zigzag_varint(2**31 - 1) + b"ENC-", None),
            "negative_string_length": ("encounters", hdr1 + zigzag_varint(-5) + b"ENC-HOSTILE", None),
            "bad_enum_index": ("encounters", c.frame(1, enc, override={"source": zigzag_varint(7)}), None),
            "bad_union_index": ("encounters", c.frame(1, enc, override={"submitted_at": zigzag_varint(4)}), None),
            "bad_boolean": ("encounters", c.frame(1, enc, override={"ed_visit": b"\x02"}), None),
            "overlong_varint": ("encounters", c.frame(1, enc, override={"service_from": b"\x80" * 10 + b"\x00"}), None),
            # 2^32 + 39: a decoder that silently truncates to 32 bits would read 39.
            "int_overflow": ("deliveries", c.frame(2, dlv, override={
                "gestational_age_weeks": zigzag_varint(1) + zigzag_varint(2**32 + 39)}), None),
            "invalid_utf8": ("encounters", c.frame(1, enc, override={"plan_id": avro_string(b"PLAN-\xff\xfe")}), None),
            "date_out_of_range": ("deliveries", None, D(delivery_date=day("2350-06-01"), delivery_id=f"DLV-HOSTILE-2350{self.sfx}")),
            "date_before_1900": ("encounters", None, E(encounter_id=ev("1899"), service_from=day("1899-12-31"))),
            "service_from_after_to": ("encounters", None, E(service_from=enc["service_to"] + 1)),
            "submitted_before_service_to": ("encounters", None, E(encounter_id=ev("EARLY"),
                                             submitted_at=enc["service_to"] * DAY_MS - 1)),
            # Names an existing delivery: being rejected, it must not supersede it.
            "parity_negative": ("deliveries", None, D(parity=-1)),
            "gestational_age_99": ("deliveries", None, D(gestational_age_weeks=99)),
            "plurality_zero": ("deliveries", None, D(plurality=0)),
            "empty_id": ("encounters", None, E(encounter_id="")),
            "long_id_200": ("encounters", None, E(encounter_id="E" * 200)),
            "id_64_bytes": ("deliveries", None, D(delivery_id="D" * 64)),
            "id_64_bytes_utf8": ("deliveries", None, D(delivery_id="\u00e9" * 32)),
            "original_with_original_id": ("encounters", None, E(encounter_id=ev("ORIG"),
                                           original_encounter_id=enc["encounter_id"])),
            "replacement_without_original_id": ("encounters", None, E(encounter_id=ev("REPL"),
                                                 frequency="REPLACEMENT")),
            "void_without_original_id": ("encounters", None, E(encounter_id=ev("VOID"), frequency="VOID")),
            "member_event_date_out_of_range": ("member-events", None, mev),
            "member_event_bad_union_index": ("member-events", c.frame(3, mev, override={
                "body": zigzag_varint(9) + zigzag_varint(17000)}), None),
        }
        assert tuple(cases) == HOSTILE_KINDS
        lo = self.first_day * DAY_MS
        hi = self.end_day * DAY_MS
        for kind, (topic, value, rec) in cases.items():
            if value is None and rec is not None:
                value = c.frame(READER_ID[topic], rec)
            self.emit(rng.randrange(lo, hi), Message(topic, member.encode(), value, rec,
                                                     None if value is None or len(value) < 5 else int.from_bytes(value[1:5], "big"),
                                                     kind, "hostile: " + kind))
        if not self.edges:
            return
        # Valid edge cases: accepted by the rules as written, at their limits.
        n63 = "ENC-EDGE-63-"
        n63 += "x" * (63 - len(n63.encode()) - len(self.sfx)) + self.sfx
        du = "DLV-EDGE-\u00e9"
        du += "\u00e9" * ((63 - len(du.encode()) - len(self.sfx)) // 2)
        du += "y" * (63 - len(du.encode()) - len(self.sfx)) + self.sfx
        edges = [
            ("encounters", E(encounter_id=n63), "edge: 63-byte encounter_id"),
            ("deliveries", D(delivery_id=du), "edge: 63-byte delivery_id with 2-byte UTF-8 characters"),
            ("deliveries", D(delivery_id=f"DLV-EDGE-1900{self.sfx}", delivery_date=day("1900-01-01")),
             "edge: delivery on 1900-01-01"),
            ("deliveries", D(delivery_id=f"DLV-EDGE-2199{self.sfx}", delivery_date=day("2199-12-31"),
                             parity=30, gestational_age_weeks=50, plurality=15),
             "edge: delivery on 2199-12-31, parity 30, gestational age 50, plurality 15"),
            ("encounters", E(encounter_id=ev("SAMEDAY"), submitted_at=enc["service_to"] * DAY_MS),
             "edge: submitted at 00:00 UTC on the service_to day"),
        ]
        for topic, rec, note in edges:
            self.emit(rng.randrange(lo, hi), Message(topic, member.encode(),
                                                     c.frame(READER_ID[topic], rec), rec,
                                                     READER_ID[topic], None, note))

    def run(self):
        self.encounters()
        self.deliveries_stream()
        if self.member_events:
            self.member_events_stream()
        if self.hostile:
            self.hostile_messages()
        self.out.sort(key=lambda t: (t[0], t[1]))
        return [m for _, _, m in self.out]


def generate(seed=1, plans=("PLAN-A", "PLAN-B", "PLAN-C"), members=150,
             start_date=datetime.date(2017, 1, 1), months=15, encounters_per_month=40,
             deliveries=600, hospitals_per_plan=3, member_events=0, hostile=False,
             evolved_share=0.1, gap=True, id_suffix="", codec=None, edges=True):
    """Generate an ordered stream of Messages (production order).

    members, encounters_per_month and deliveries are per plan; member_events is
    how many member stories per plan for each of CAW6, CAW7, CAW8 and CAW9 (0 =
    none; the rest of the stream is then byte-identical to what it is without
    them). A story is a few to a dozen member events (and, for CAW7, ED
    encounters) with corrections and voids; story i plays scenario i mod the
    family's count (CAW*_STORIES), so member_events >= 11 plays them all. hostile mixes
    in one message of every HOSTILE_KINDS kind plus a few valid edge cases.
    evolved_share is the share of records written with the evolved writer
    schemas 11/12. gap removes every submission of the last plan's MEDICAID
    stream from one month in the middle. id_suffix is appended to every record
    and member id (replicate() needs REPLICA_MARK there)."""
    g = _Generator(seed, plans, hospitals_per_plan, members, start_date, months,
                   encounters_per_month, deliveries, member_events, hostile, evolved_share,
                   gap, id_suffix, codec or Codec(), edges)
    return g.run()


def replicate(messages, replicas):
    """Yield (topic, key, value, expect) for `replicas` disjoint copies of a stream
    generated with id_suffix=REPLICA_MARK, interleaved message by message.

    Every identifier (and the key) carries the fixed-width marker, and a copy
    rewrites it in the encoded bytes, so a copy costs one bytes.replace instead
    of an Avro encoding; lengths do not change, so the framing stays valid.
    Copies share plans, hospitals and dates, so every expected measure row is
    exactly `replicas` times the base stream's, and so is the dead-letter count.
    Each member's messages keep their relative order."""
    mark = REPLICA_MARK.encode()
    tags = [(".r%05d" % r).encode() for r in range(replicas)]
    for m in messages:
        v, k = m.value, m.key
        if v is not None and mark in v or k is not None and mark in k:
            for t in tags:
                yield (m.topic, None if k is None else k.replace(mark, t),
                       None if v is None else v.replace(mark, t), m.expect)
        else:
            for _ in tags:
                yield (m.topic, k, v, m.expect)


# --------------------------------------------------------------------------- tails

# What a tail (qsgen tail) is made of, with each kind's share of its stories.
# The member-event kinds are left out when the history has no member events.
TAIL_KINDS = (("replacement of a history original", 0.25), ("void of a history original", 0.12),
              ("history original corrected", 0.08), ("history delivery corrected", 0.15),
              ("history delivery voided", 0.06), ("new encounter", 0.24), ("new delivery", 0.10),
              ("history member event corrected", 0.06), ("history member event voided", 0.04))


def generate_tail(base, replicas, events, seed=1, codec=None):
    """`events` messages that follow `replicas` copies of `base` (a stream
    generated with id_suffix=REPLICA_MARK, as produced by replicate()): what a
    day of new data looks like after a long history. Each story picks a copy at
    random and either corrects or voids one of that copy's records (a
    REPLACEMENT or VOID of an ORIGINAL encounter, a new version of an original
    under its own id, a delivery's or a member event's new version or its VOID;
    no record is touched twice) or adds new records (an encounter story with its own
    follow-ups, a delivery). Returns Messages whose ids and keys carry the
    copy's tag, so they land in the partitions of the records they follow up.
    New ids carry the seed, so tails of different seeds never share one.
    Deterministic in (base, replicas, events, seed)."""
    if replicas < 2:
        raise ValueError("a tail follows a replicated history (replicas >= 2)")
    rng = random.Random(seed * 1_000_003 + 17)
    # A generator used only for its record builders and senders (replacement, void, correct_original,
    # encounter_story, delivery_record): no plans or months of its own, no gap month, no evolved
    # writers, ids tagged with REPLICA_MARK. Its messages stay in creation order, in which every
    # follow-up comes after the record it follows (as in the history) unless its story says otherwise.
    g = _Generator(seed, [], 1, 1, datetime.date(2017, 1, 1), 1, 1, 0, 0, False, 0.0, False,
                   REPLICA_MARK, codec or Codec())
    g.rng = rng
    final = {}
    for m in base:
        if m.record is not None and m.expect is None:
            final[(m.topic, m.record.get("delivery_id") or m.record.get("event_id") or m.record["encounter_id"])] = m.record
    originals = [r for (t, _), r in final.items()
                 if t == "encounters" and r["frequency"] == "ORIGINAL" and r["submitted_at"] is not None]
    deliveries = [r for (t, _), r in final.items() if t == "deliveries" and r["status"] == "ACTIVE"]
    member_events = [r for (t, _), r in final.items() if t == "member-events" and r["status"] == "ACTIVE"]
    mark = REPLICA_MARK.encode()
    used, out, n_new = set(), [], 0
    kinds, weights = zip(*(k for k in TAIL_KINDS if member_events or "member event" not in k[0]))

    def untagged(rid):
        return rid[:-len(REPLICA_MARK)]

    while len(out) < events:
        kind = rng.choices(kinds, weights)[0]
        copy = rng.randrange(replicas)
        start = len(g.out)
        if kind.startswith("new"):
            n_new += 1
            if kind == "new encounter":
                src = rng.choice(originals)     # a history member of the plan, a history service day
                g.encounter_story(src["plan_id"], src["member_id"], src["source"], src["service_to"],
                                  seed * 1_000_000 + n_new)
            else:
                src = rng.choice(deliveries)
                rec = g.delivery_record(f"DLV-{src['plan_id']}-T{seed}-{n_new:06d}{REPLICA_MARK}", src["plan_id"],
                                        src["hospital_id"], src["member_id"], src["delivery_date"], 0.22)
                g.send_delivery(rec, (rec["delivery_date"] + 30) * DAY_MS, "tail: new delivery")
        else:
            pool = deliveries if "delivery" in kind else member_events if "member event" in kind else originals
            rec = rng.choice(pool)
            ident = (rec.get("delivery_id") or rec.get("event_id") or rec["encounter_id"], copy)
            if ident in used:
                continue
            used.add(ident)
            if kind == "replacement of a history original":
                r = g.replacement(rec, rec, untagged(rec["encounter_id"]) + f"-T{seed}")
                g.send_encounter(r, r["submitted_at"], "tail: " + kind)
            elif kind == "void of a history original":
                g.void(rec, rec, untagged(rec["encounter_id"]) + f"-TV{seed}", "tail: " + kind, 0)
            elif kind == "history original corrected":
                g.correct_original(rec, 0)
            elif kind == "history delivery corrected":
                new = dict(rec)
                what = rng.choice(("method", "parity", "gestational_age_weeks", "delivery_date"))
                if what == "method":
                    new["method"] = "VAGINAL" if rec["method"] == "CESAREAN" else "CESAREAN"
                elif what == "parity":
                    new["parity"] = rng.choice((None, 0, 1, 2))
                elif what == "gestational_age_weeks":
                    new["gestational_age_weeks"] = rng.choice((None, 35, 38, 40))
                else:
                    new["delivery_date"] += rng.choice((-1, 1)) * rng.randint(20, 60)
                g.send_delivery(new, (new["delivery_date"] + 60) * DAY_MS, "tail: " + kind + f" ({what})")
            elif kind == "history delivery voided":
                g.send_delivery(dict(rec, status="VOID"), (rec["delivery_date"] + 60) * DAY_MS, "tail: " + kind)
            elif kind == "history member event voided":
                g.send_member_event(dict(rec, status="VOID"), 0, "tail: " + kind)
            else:
                body = dict(rec["body"])
                for f in ("month", "event_date", "completed_on", "contact_date"):
                    if f in body:
                        body[f] += rng.choice((-1, 1)) * rng.randint(1, 60)
                for f in ("smi_sud", "receives_smhs", "care_goals_documented"):
                    if f in body and rng.random() < 0.5:
                        body[f] = not body[f]
                g.send_member_event(dict(rec, body=body), 0, "tail: " + kind)
        tag = (".r%05d" % copy).encode()
        for _, _, m in g.out[start:]:
            rec = json.loads(json.dumps(m.record).replace(REPLICA_MARK, tag.decode()))
            out.append(Message(m.topic, m.key.replace(mark, tag), m.value.replace(mark, tag), rec,
                               m.schema_id, None, m.note))
    return out[:events]


# --------------------------------------------------------------------------- producing

def make_producer(bootstrap=None, mock_brokers=0, extra=None):
    from confluent_kafka import Producer
    conf = {
        "enable.idempotence": True,       # retries keep each partition's order: no dup, no reorder
        "linger.ms": 20,
        "batch.num.messages": 10000,
        "queue.buffering.max.messages": 500000,
        "queue.buffering.max.kbytes": 1048576,
    }
    if mock_brokers:
        # librdkafka's in-process mock cluster: measures the client side only.
        conf["test.mock.num.brokers"] = mock_brokers
    else:
        conf["bootstrap.servers"] = bootstrap
    conf.update(extra or {})
    return Producer(conf)


def produce(triples, producer, topic_names, progress=None):
    """Produce (topic, key, value, ...) tuples in order; return (counts, errors, seconds)."""
    counts = {t: 0 for t in TOPICS}
    errors = []

    def on_delivery(err, msg):
        if err is not None:
            errors.append(str(err))

    t0 = time.perf_counter()
    for i, t in enumerate(triples):
        topic, key, value = t[0], t[1], t[2]
        while True:
            try:
                producer.produce(topic_names[topic], value=value, key=key, on_delivery=on_delivery)
                break
            except BufferError:
                producer.poll(0.05)   # local queue full: let deliveries drain
        counts[topic] += 1
        if i % 1000 == 0:
            producer.poll(0)
        if progress and i and i % 200000 == 0:
            progress(i)
    remaining = producer.flush(120)
    if remaining:
        errors.append(f"{remaining} messages still undelivered after flush")
    return counts, errors, time.perf_counter() - t0


# --------------------------------------------------------------------------- CLI

def _gen_args(p):
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--scale", type=float, default=1.0,
                   help="multiplies members, encounters per month and deliveries")
    p.add_argument("--plans", default="PLAN-A,PLAN-B,PLAN-C")
    p.add_argument("--start", default="2017-01-01", help="first month of service/delivery dates")
    p.add_argument("--months", type=int, default=15)
    p.add_argument("--members", type=int, default=150, help="per plan")
    p.add_argument("--encounters-per-month", type=int, default=40, help="originals per plan and month")
    p.add_argument("--deliveries", type=int, default=600, help="per plan")
    p.add_argument("--hospitals", type=int, default=3, help="per plan")
    p.add_argument("--member-events", type=int, default=0, help="member stories per plan for each of CAW6-CAW9 (11 or more play every scenario)")
    p.add_argument("--evolved-share", type=float, default=0.1)
    p.add_argument("--no-gap", action="store_true", help="no month without submissions")
    p.add_argument("--hostile", action="store_true", help="mix in hostile messages and edge cases")
    p.add_argument("--no-edges", action="store_true",
                   help="with --hostile: leave out the valid edge cases (1900/2199 dates, 63-byte ids)")
    p.add_argument("--replicas", type=int, default=1,
                   help="disjoint copies of the stream (big streams); expected rows scale by it")
    p.add_argument("--stream", help="use this JSONL dump instead of generating")


def _generate_from_args(a):
    if a.stream:
        msgs = read_jsonl(a.stream)
        if a.replicas > 1 and not any(m.key and REPLICA_MARK.encode() in m.key for m in msgs):
            # Copies would share identities and supersede each other.
            raise SystemExit(f"{a.stream}: ids carry no {REPLICA_MARK} marker; cannot replicate it")
        return msgs
    s = a.scale
    return generate(seed=a.seed, plans=a.plans.split(","), members=max(1, round(a.members * s)),
                    start_date=datetime.date.fromisoformat(a.start), months=a.months,
                    encounters_per_month=max(1, round(a.encounters_per_month * s)),
                    deliveries=max(1, round(a.deliveries * s)), hospitals_per_plan=a.hospitals,
                    member_events=a.member_events, hostile=a.hostile,
                    evolved_share=a.evolved_share, gap=not a.no_gap,
                    id_suffix=REPLICA_MARK if a.replicas > 1 else "", edges=not a.no_edges)


def summarize(messages):
    by = {}
    for m in messages:
        k = (m.topic, "hostile" if m.expect else (m.note.split(" (")[0] if m.note else "?"))
        by[k] = by.get(k, 0) + 1
    return by


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("registry", help="write the schema registry directory (<id>.avsc)")
    p.add_argument("dir")
    p = sub.add_parser("dump", help="write the generated stream as JSONL")
    _gen_args(p)
    p.add_argument("--out", required=True)
    p.add_argument("--summary", action="store_true", help="print message counts by kind")
    p = sub.add_parser("tail", help="write, as JSONL, new events that follow --replicas copies of the "
                       "stream: corrections and voids of its records and new records (generate_tail)")
    _gen_args(p)
    p.add_argument("--events", type=int, default=10000, help="messages in the tail")
    p.add_argument("--tail-seed", type=int, default=1)
    p.add_argument("--out", required=True)
    p = sub.add_parser("produce", help="produce the generated stream to Kafka")
    _gen_args(p)
    p.add_argument("--bootstrap", help="HOST:PORT of the cluster")
    p.add_argument("--mock-brokers", type=int, default=0,
                   help="produce to librdkafka's in-process mock cluster instead (throughput runs)")
    p.add_argument("--registry-dir", help="write/verify the registry here before producing")
    p.add_argument("--topic-encounters", default="encounters")
    p.add_argument("--topic-deliveries", default="deliveries")
    p.add_argument("--topic-member-events", default="member-events")
    p.add_argument("-X", action="append", default=[], metavar="PROP=VALUE",
                   help="extra librdkafka producer property")
    p = sub.add_parser("bench", help="measure generation, replication and (mock) production rates")
    _gen_args(p)
    p.add_argument("--mock-brokers", type=int, default=0)
    a = ap.parse_args(argv)

    if a.cmd == "registry":
        d = write_registry(a.dir)
        print(f"wrote {len(registry_texts())} schemas to {d}")
        return 0

    t0 = time.perf_counter()
    msgs = _generate_from_args(a)
    tgen = time.perf_counter() - t0
    n_hostile = sum(1 for m in msgs if m.expect)
    print(f"generated {len(msgs)} base messages ({n_hostile} hostile) in {tgen:.2f}s "
          f"({len(msgs) / max(tgen, 1e-9):,.0f} msg/s)", file=sys.stderr)

    if a.cmd == "dump":
        if a.replicas > 1:
            rows = (Message(t, k, v, None, None, e, "replica") for t, k, v, e in replicate(msgs, a.replicas))
            with open(a.out, "w") as out:
                for i, m in enumerate(rows):
                    out.write(json.dumps(m.to_json(i), separators=(",", ":")) + "\n")
        else:
            write_jsonl(msgs, a.out)
        if a.summary:
            for (topic, kind), n in sorted(summarize(msgs).items()):
                print(f"{topic:14} {kind:45} {n:7}")
        print(f"wrote {len(msgs) * a.replicas} messages to {a.out}")
        return 0

    if a.cmd == "tail":
        if a.replicas < 2:
            ap.error("tail needs --replicas 2 or more (the history it follows)")
        tail = generate_tail(msgs, a.replicas, a.events, a.tail_seed)
        write_jsonl(tail, a.out)
        kinds = {}
        for m in tail:
            k = m.note.split(" (")[0]
            kinds[k] = kinds.get(k, 0) + 1
        for k, n in sorted(kinds.items()):
            print(f"{k:55} {n:6}", file=sys.stderr)
        print(f"wrote {len(tail)} messages to {a.out}")
        return 0

    if a.cmd == "produce":
        if not a.bootstrap and not a.mock_brokers:
            ap.error("produce needs --bootstrap or --mock-brokers")
        if a.registry_dir:
            write_registry(a.registry_dir)
        extra = dict(x.split("=", 1) for x in a.X)
        producer = make_producer(a.bootstrap, a.mock_brokers, extra)
        names = {"encounters": a.topic_encounters, "deliveries": a.topic_deliveries,
                 "member-events": a.topic_member_events}
        src = replicate(msgs, a.replicas) if a.replicas > 1 else ((m.topic, m.key, m.value) for m in msgs)
        counts, errors, secs = produce(src, producer, names,
                                       lambda i: print(f"  {i:,} produced", file=sys.stderr))
        total = sum(counts.values())
        for t in TOPICS:
            print(f"{names[t]}: {counts[t]}")
        print(f"expected dead letters: {n_hostile * a.replicas}")
        print(f"produced {total} messages in {secs:.2f}s ({total / max(secs, 1e-9):,.0f} msg/s)")
        for e in errors[:10]:
            print("delivery error:", e, file=sys.stderr)
        return 1 if errors else 0

    if a.cmd == "bench":
        # Encoding rate of the realistic path (python-avro DatumWriter per message)
        # is the base generation rate above; replication is the big-stream path.
        t0 = time.perf_counter()
        n = nbytes = 0
        for _, _, v, _ in replicate(msgs, a.replicas):
            n += 1
            nbytes += len(v) if v else 0
        trep = time.perf_counter() - t0
        print(f"replicated {n:,} messages ({nbytes / 1e6:.1f} MB) in {trep:.2f}s "
              f"({n / max(trep, 1e-9):,.0f} msg/s)")
        if a.mock_brokers:
            producer = make_producer(None, a.mock_brokers)
            names = {t: t for t in TOPICS}
            counts, errors, secs = produce(replicate(msgs, a.replicas), producer, names)
            total = sum(counts.values())
            print(f"produced {total:,} messages to a {a.mock_brokers}-broker mock cluster in "
                  f"{secs:.2f}s ({total / max(secs, 1e-9):,.0f} msg/s), {len(errors)} errors")
        return 0
    return 2


if __name__ == "__main__":
    sys.exit(main())
