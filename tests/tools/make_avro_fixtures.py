#!/usr/bin/python3
"""make_avro_fixtures: the Avro fixtures of tests/test_decode.c.

Writes, deterministically, into tests/data/avro/:
  registry/<id>.avsc   writer schemas (1-3 the reader schemas, 4 dead_letter,
                       10 and up evolved, incompatible or broken writers)
  messages/<name>.bin  Confluent-framed message values
  cases.json           one row per message: topic, expected outcome and either
                       the decoded values the worker must produce ("event") or
                       a substring of the dead-letter reason ("reason")

Every Avro byte is written by python3-avro (Debian's, so run /usr/bin/python3),
never by the code under test. Hostile messages are assembled field by field from
python3-avro encodings of each field, with single fields replaced by hand-made
bytes; the assembler is checked against whole-record encodings first.

Run from anywhere: /usr/bin/python3 tests/tools/make_avro_fixtures.py
"""

import copy
import datetime
import io
import json
import shutil
from pathlib import Path

import avro.io
import avro.schema

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "tests" / "data" / "avro"
UTC = datetime.timezone.utc
EPOCH = datetime.datetime(1970, 1, 1, tzinfo=UTC)


def load(name):
    return json.loads((ROOT / "schemas" / name).read_text())


ENCOUNTER = load("encounter.avsc")
DELIVERY = load("delivery.avsc")
MEMBER = load("member_event.avsc")
DEAD_LETTER = load("dead_letter.avsc")


# ---- small helpers ----------------------------------------------------------


class Raw:
    """A field value given as the exact bytes to splice into the message."""

    def __init__(self, data):
        self.data = bytes(data)


class Int:
    """A date or instant given as a raw day / millisecond number."""

    def __init__(self, n):
        self.n = n


def encode(schema_json, datum):
    """python3-avro's binary encoding of datum under schema_json."""
    schema = avro.schema.parse(json.dumps(schema_json))
    buf = io.BytesIO()
    avro.io.DatumWriter(schema).write(datum, avro.io.BinaryEncoder(buf))
    return buf.getvalue()


def varint(n):
    """A zigzag varint, via python3-avro's encoder (64-bit values only)."""
    buf = io.BytesIO()
    avro.io.BinaryEncoder(buf).write_long(n)
    return buf.getvalue()


def frame(schema_id, body):
    return b"\x00" + schema_id.to_bytes(4, "big") + body


def ms(dt):
    """Milliseconds since the epoch of an aware datetime, by integer arithmetic."""
    d = dt - EPOCH
    return d.days * 86_400_000 + d.seconds * 1000 + d.microseconds // 1000


def ts(y, mo, d, h=0, mi=0, s=0, milli=0):
    return datetime.datetime(y, mo, d, h, mi, s, milli * 1000, tzinfo=UTC)


def assemble(schema_json, datum):
    """Encodes a record field by field with python3-avro, splicing Raw values
    in as they are and writing union branches named by "__branch__" keys
    explicitly (python3-avro itself picks the last branch a value fits)."""
    schema = avro.schema.parse(json.dumps(schema_json))
    return b"".join(encode_value(f.type, datum[f.name]) for f in schema.fields)


def encode_value(t, v):
    if isinstance(v, Raw):
        return v.data
    if isinstance(v, Int):
        if t.type == "union":  # ["null", date-or-instant]: the second branch
            return varint(1) + varint(v.n)
        return varint(v.n)
    if isinstance(v, dict) and "__branch__" in v:
        idx = v["__branch__"]
        branch = t.schemas[idx]
        return varint(idx) + b"".join(encode_value(f.type, v[f.name]) for f in branch.fields)
    buf = io.BytesIO()
    avro.io.DatumWriter(t).write_data(t, v, avro.io.BinaryEncoder(buf))
    return buf.getvalue()


def field_names(schema_json):
    return [f["name"] for f in schema_json["fields"]]


def with_fields(base, fields, **extra):
    s = copy.deepcopy(base)
    s["fields"] = fields
    s.update(extra)
    return s


def without(schema_json, name):
    return [copy.deepcopy(f) for f in schema_json["fields"] if f["name"] != name]


# ---- writer schemas -----------------------------------------------------------

LINK = {
    "type": "record",
    "name": "Link",
    "fields": [{"name": "value", "type": "int"}, {"name": "next", "type": ["null", "Link"]}],
}

AUDIT = {
    "type": "record",
    "name": "Audit",
    "fields": [
        {"name": "by", "type": "string"},
        {"name": "tags", "type": {"type": "array", "items": "string"}},
        {"name": "counters", "type": {"type": "map", "values": "long"}},
        {"name": "digest", "type": {"type": "fixed", "name": "Digest4", "size": 4}},
        {"name": "score", "type": "double"},
        {"name": "ratio", "type": "float"},
        {"name": "blob", "type": "bytes"},
        {"name": "level", "type": {"type": "enum", "name": "Level", "symbols": ["LOW", "HIGH"]}},
        {
            "name": "inner",
            "type": [
                "null",
                {
                    "type": "record",
                    "name": "Inner",
                    "fields": [
                        {"name": "rows", "type": {"type": "array", "items": {"type": "array", "items": "int"}}},
                        {"name": "flag", "type": "boolean"},
                    ],
                },
            ],
        },
        {"name": "nothing", "type": {"type": "array", "items": "null"}},
    ],
}


def writer_schemas():
    enc, dlv, mem = ENCOUNTER, DELIVERY, MEMBER
    ef = copy.deepcopy(enc["fields"])
    s = {1: enc, 2: dlv, 3: mem, 4: DEAD_LETTER}

    # 10: fields added, one optional in the middle, one required at the end.
    f10 = ef[:4] + [{"name": "claim_note", "type": ["null", "string"], "default": None}] + ef[4:]
    f10.append({"name": "line_count", "type": "int"})
    s[10] = with_fields(enc, f10)
    # 11: ed_visit removed (reader default false).
    s[11] = with_fields(enc, without(enc, "ed_visit"))
    # 12: delivery fields in reverse order.
    s[12] = with_fields(dlv, list(reversed(copy.deepcopy(dlv["fields"]))))
    # 13: member event without status (reader default ACTIVE).
    s[13] = with_fields(mem, without(mem, "status"))
    # 14: nested record/array/map/fixed/... field to skip, after plan_id.
    f14 = ef[:3] + [{"name": "audit", "type": AUDIT}] + ef[3:]
    f14.append({"name": "notes", "type": {"type": "array", "items": {
        "type": "record", "name": "Note", "fields": [
            {"name": "k", "type": "string"}, {"name": "v", "type": ["null", "long"]}]}}})
    s[14] = with_fields(enc, f14)
    # 15: instants written as int (promoted to the reader's long); submitted_at not nullable.
    f15 = copy.deepcopy(ef)
    for f in f15:
        if f["name"] == "adjudicated_at":
            f["type"] = ["null", "int"]
        if f["name"] == "submitted_at":
            f["type"] = "long"
            f.pop("default", None)
    s[15] = with_fields(enc, f15)
    # 16: enums reordered, one unknown symbol; hospital_id as bytes; parity not nullable.
    f16 = copy.deepcopy(dlv["fields"])
    for f in f16:
        if f["name"] == "presentation":
            f["type"][1]["symbols"] = ["BREECH", "VERTEX", "TRANSVERSE", "OTHER", "COMPOUND"]
        if f["name"] == "method":
            f["type"]["symbols"] = ["CESAREAN", "VAGINAL"]
        if f["name"] == "hospital_id":
            f["type"] = "bytes"
        if f["name"] == "parity":
            f["type"] = "int"
            f.pop("default", None)
    s[16] = with_fields(dlv, f16)
    # 17: service_to removed: the reader has no default, so incompatible.
    s[17] = with_fields(enc, without(enc, "service_to"))
    # 18: body union reordered, a branch unknown to the reader, a branch with an extra field.
    m18 = copy.deepcopy(mem)
    body = next(f for f in m18["fields"] if f["name"] == "body")
    enrollment, bh, care_plan, coordinator, contact = body["type"]
    care_plan["fields"].insert(1, {"name": "notes", "type": "string"})
    disenrollment = {"type": "record", "name": "Disenrollment", "fields": [{"name": "month", "type": "int"}]}
    # BhCoordination defines ContactOutcome, so it must precede anything referring to it.
    body["type"] = [contact, disenrollment, care_plan, enrollment, bh, coordinator]
    s[18] = m18
    # 19: ed_visit nullable in the writer only.
    f19 = copy.deepcopy(ef)
    f19[-1] = {"name": "ed_visit", "type": ["null", "boolean"], "default": None}
    s[19] = with_fields(enc, f19)
    # 20: parity as nullable long: null still reads, a long cannot.
    f20 = copy.deepcopy(dlv["fields"])
    next(f for f in f20 if f["name"] == "parity")["type"] = ["null", "long"]
    s[20] = with_fields(dlv, f20)
    # 21: another record name.
    s[21] = with_fields(enc, copy.deepcopy(ef), name="Claim")
    # 22: not JSON at all (written verbatim below).
    # 23: a recursive record to skip.
    s[23] = with_fields(enc, copy.deepcopy(ef) + [{"name": "chain", "type": ["null", LINK], "default": None}])
    # 24: body as a single record instead of the union.
    m24 = copy.deepcopy(mem)
    b24 = next(f for f in m24["fields"] if f["name"] == "body")
    b24["type"] = copy.deepcopy(next(t for t in MEMBER["fields"][4]["type"] if t["name"] == "CarePlan"))
    s[24] = m24
    # 25: another namespace for the record and its enums (names match unqualified).
    d25 = copy.deepcopy(dlv)
    d25["namespace"] = "com.example.births"
    s[25] = d25
    # 26: an array of longs before the encounter fields (hand-made blocks).
    s[26] = with_fields(enc, [{"name": "pre", "type": {"type": "array", "items": "long"}}] + copy.deepcopy(ef))
    # 27: a map of strings before the encounter fields.
    s[27] = with_fields(enc, [{"name": "pre", "type": {"type": "map", "values": "string"}}] + copy.deepcopy(ef))
    return s


# ---- data ---------------------------------------------------------------------


def enc_datum(**kw):
    d = {
        "encounter_id": "ENC-0001",
        "original_encounter_id": None,
        "plan_id": "H0001",
        "member_id": "M-100",
        "source": "MEDICARE",
        "frequency": "ORIGINAL",
        "service_from": datetime.date(2017, 3, 1),
        "service_to": datetime.date(2017, 3, 2),
        "adjudicated_at": ts(2017, 3, 10, 8, 30),
        "submitted_at": ts(2017, 4, 1, 12, 0, 0, 250),
        "ed_visit": True,
    }
    d.update(kw)
    return d


def dlv_datum(**kw):
    d = {
        "delivery_id": "DLV-1",
        "plan_id": "H0001",
        "hospital_id": "HOSP-7",
        "member_id": "M-200",
        "delivery_date": datetime.date(2018, 6, 30),
        "parity": 0,
        "gestational_age_weeks": 39,
        "plurality": 1,
        "presentation": "VERTEX",
        "method": "VAGINAL",
        "live_birth": True,
        "status": "ACTIVE",
    }
    d.update(kw)
    return d


BODY_INDEX = {"Enrollment": 0, "BhCoordination": 1, "CarePlan": 2, "CoordinatorAssigned": 3, "CareTeamContact": 4}


def mem_datum(kind, body, **kw):
    d = {"event_id": "EV-1", "plan_id": "H0002", "member_id": "M-300", "status": "ACTIVE"}
    d.update(kw)
    d["body"] = dict(body, __branch__=BODY_INDEX[kind])
    d["__kind__"] = kind
    return d


def expected(datum):
    """The reader's view of a datum, in cases.json's spelling."""
    out = {}
    for k, v in datum.items():
        if k.startswith("__"):
            continue
        if isinstance(v, dict):
            body = {bk: jsonable(bv) for bk, bv in v.items() if not bk.startswith("__")}
            body["type"] = datum["__kind__"]
            out[k] = body
        else:
            out[k] = jsonable(v)
    return out


def jsonable(v):
    if isinstance(v, datetime.datetime):
        return ms(v)
    if isinstance(v, datetime.date):
        return v.isoformat()
    if isinstance(v, bytes):
        return v.decode()
    return v


def plain(datum):
    """The datum as python3-avro takes it for a whole-record encoding."""
    out = {k: v for k, v in datum.items() if not k.startswith("__")}
    if "body" in out:
        out["body"] = {k: v for k, v in out["body"].items() if k != "__branch__"}
    return out


# ---- cases --------------------------------------------------------------------


class Cases:
    def __init__(self):
        self.rows = []
        self.blobs = {}

    def add(self, name, topic, data, event=None, reason=None):
        assert name not in self.blobs, name
        assert (event is None) != (reason is None), name
        self.blobs[name] = data
        row = {"name": name, "topic": topic, "file": "messages/%s.bin" % name}
        if event is not None:
            row["expect"] = "ok"
            row["event"] = event
        else:
            row["expect"] = "reject"
            row["reason"] = reason
        self.rows.append(row)

    def ok(self, name, topic, schema_id, schema_json, datum, event=None):
        self.add(name, topic, frame(schema_id, assemble(schema_json, datum)), event=event or expected(datum))

    def bad(self, name, topic, schema_id, schema_json, datum, reason):
        self.add(name, topic, frame(schema_id, assemble(schema_json, datum)), reason=reason)


def self_check(schemas):
    """The field-by-field assembler must equal python3-avro's whole-record writer."""
    for sid, datum in ((1, enc_datum()), (2, dlv_datum()), (2, dlv_datum(parity=None, presentation=None))):
        assert assemble(schemas[sid], datum) == encode(schemas[sid], plain(datum)), sid
    for kind, body in (("CarePlan", {"care_plan_id": "CP-1", "plan_type": "INITIAL",
                                      "completed_on": datetime.date(2018, 1, 5), "care_goals_documented": True}),):
        d = mem_datum(kind, body)
        assert assemble(schemas[3], d) == encode(schemas[3], plain(d)), kind


def build(schemas):
    c = Cases()
    E, D, M = "encounters", "deliveries", "member-events"
    s = schemas

    # -- valid messages, reader-identical writers ---------------------------------
    c.ok("enc_original", E, 1, s[1], enc_datum())
    c.ok("enc_replacement_owed", E, 1, s[1], enc_datum(
        encounter_id="ENC-0002", original_encounter_id="ENC-0001", source="MEDICAID", frequency="REPLACEMENT",
        adjudicated_at=None, submitted_at=None, ed_visit=False))
    c.ok("enc_void_same_day", E, 1, s[1], enc_datum(
        encounter_id="ENC-0003", original_encounter_id="ENC-0002", frequency="VOID",
        submitted_at=ts(2017, 3, 2, 0, 0, 0, 0), ed_visit=False))
    c.ok("enc_edges", E, 1, s[1], enc_datum(
        encounter_id="E" * 63, plan_id="plan-\u00e9\u4e2d\U0001f600", member_id="m",
        service_from=datetime.date(1900, 1, 1), service_to=datetime.date(2199, 12, 31),
        adjudicated_at=ts(1900, 1, 1), submitted_at=ts(2199, 12, 31, 23, 59, 59, 999)))
    c.ok("enc_before_1970", E, 1, s[1], enc_datum(
        service_from=datetime.date(1969, 12, 30), service_to=datetime.date(1969, 12, 31),
        adjudicated_at=ts(1969, 12, 31, 1, 2, 3, 4), submitted_at=ts(1969, 12, 31, 12, 0)))

    c.ok("dlv_ntsv", D, 2, s[2], dlv_datum())
    c.ok("dlv_nulls_void", D, 2, s[2], dlv_datum(
        delivery_id="DLV-2", parity=None, gestational_age_weeks=None, plurality=None, presentation=None,
        method="CESAREAN", live_birth=False, status="VOID"))
    c.ok("dlv_edges_high", D, 2, s[2], dlv_datum(
        delivery_id="DLV-3", parity=30, gestational_age_weeks=50, plurality=15, presentation="OTHER"))
    c.ok("dlv_edges_low", D, 2, s[2], dlv_datum(
        delivery_id="DLV-4", parity=0, gestational_age_weeks=0, plurality=1, presentation="BREECH",
        delivery_date=datetime.date(1900, 1, 1)))

    c.ok("mem_enrollment", M, 3, s[3], mem_datum("Enrollment", {"month": datetime.date(2017, 5, 1), "smi_sud": True}))
    c.ok("mem_bh", M, 3, s[3], mem_datum("BhCoordination", {
        "event_date": datetime.date(2017, 6, 15), "receives_smhs": True,
        "county_provider_outcome": "UNABLE_TO_REACH", "member_outcome": "NOT_ATTEMPTED"}, event_id="EV-2"))
    c.ok("mem_care_plan", M, 3, s[3], mem_datum("CarePlan", {
        "care_plan_id": "CP-9", "plan_type": "REVISED", "completed_on": datetime.date(2018, 2, 28),
        "care_goals_documented": False}, event_id="EV-3", status="VOID"))
    c.ok("mem_coordinator", M, 3, s[3], mem_datum("CoordinatorAssigned", {"month": datetime.date(2019, 12, 1)},
                                                   event_id="EV-4"))
    c.ok("mem_contact", M, 3, s[3], mem_datum("CareTeamContact", {"contact_date": datetime.date(2016, 9, 30)},
                                               event_id="EV-5"))

    # -- evolved writers ------------------------------------------------------------
    d = enc_datum(encounter_id="ENC-10")
    d10 = dict(d, claim_note="late paper claim", line_count=3)
    d10 = {k: d10[k] for k in field_names(s[10])}
    c.ok("evolved_added_fields", E, 10, s[10], d10, event=expected(d))
    d10b = dict(d10, claim_note=None, line_count=-7)
    c.ok("evolved_added_fields_null", E, 10, s[10], d10b, event=expected(d))

    d = enc_datum(encounter_id="ENC-11", ed_visit=True)
    d11 = {k: d[k] for k in field_names(s[11])}
    c.ok("evolved_removed_ed_visit", E, 11, s[11], d11, event=dict(expected(d), ed_visit=False))

    d = dlv_datum(delivery_id="DLV-12", parity=2, presentation="TRANSVERSE", method="CESAREAN")
    c.ok("evolved_reordered", D, 12, s[12], {k: d[k] for k in field_names(s[12])}, event=expected(d))

    d = mem_datum("Enrollment", {"month": datetime.date(2018, 1, 1), "smi_sud": False}, event_id="EV-13",
                  status="VOID")
    d13 = {k: d[k] for k in field_names(s[13])}
    d13["__kind__"] = d["__kind__"]
    c.ok("evolved_removed_status", M, 13, s[13], d13, event=dict(expected(d), status="ACTIVE"))

    d = enc_datum(encounter_id="ENC-14")
    audit = {
        "by": "auditor", "tags": ["a", "bb", ""], "counters": {"x": 1, "y": -99999999999}, "digest": b"\x00\xff\x10\x80",
        "score": 2.5, "ratio": -1.25, "blob": b"\x00\x01\x02", "level": "HIGH",
        "inner": {"rows": [[1, 2, 3], [], [-4]], "flag": True}, "nothing": [None, None, None],
    }
    d14 = dict(d, audit=audit, notes=[{"k": "a", "v": None}, {"k": "b", "v": 42}])
    c.ok("evolved_skip_nested", E, 14, s[14], {k: d14[k] for k in field_names(s[14])}, event=expected(d))
    audit_empty = dict(audit, tags=[], counters={}, inner=None, nothing=[])
    d14 = dict(d, audit=audit_empty, notes=[])
    c.ok("evolved_skip_nested_empty", E, 14, s[14], {k: d14[k] for k in field_names(s[14])}, event=expected(d))

    d = enc_datum(encounter_id="ENC-15", service_from=datetime.date(1970, 1, 2), service_to=datetime.date(1970, 1, 3))
    d15 = dict(d, adjudicated_at=Int(2_000_000_000), submitted_at=Int(ms(ts(1970, 1, 5))))
    c.ok("evolved_int_to_long", E, 15, s[15], d15,
         event=dict(expected(d), adjudicated_at=2_000_000_000, submitted_at=ms(ts(1970, 1, 5))))

    d = dlv_datum(delivery_id="DLV-16", hospital_id=b"HOSP-bytes", parity=1, presentation="BREECH", method="CESAREAN")
    c.ok("evolved_enum_by_name", D, 16, s[16], d, event=expected(d))
    d = dlv_datum(delivery_id="DLV-16b", parity=0, presentation="VERTEX", method="VAGINAL", hospital_id=b"H")
    c.ok("evolved_enum_by_name_2", D, 16, s[16], d, event=expected(d))
    c.bad("evolved_enum_unknown_symbol", D, 16, s[16], dict(d, presentation="COMPOUND"),
          "field presentation: symbol COMPOUND is unknown to the reader's enum")

    c.bad("incompatible_missing_required", E, 17, s[17],
          {k: v for k, v in enc_datum().items() if k != "service_to"},
          "incompatible writer schema 17: record qualstream.Encounter lacks field service_to, which has no default")

    body18 = {"CareTeamContact": 0, "Disenrollment": 1, "CarePlan": 2, "Enrollment": 3, "BhCoordination": 4,
              "CoordinatorAssigned": 5}
    d = mem_datum("CarePlan", {"care_plan_id": "CP-18", "plan_type": "INITIAL", "completed_on": datetime.date(2019, 7, 4),
                               "care_goals_documented": True}, event_id="EV-18")
    d18 = copy.deepcopy(d)
    d18["body"] = {"care_plan_id": "CP-18", "notes": "extra writer field", "plan_type": "INITIAL",
                   "completed_on": datetime.date(2019, 7, 4), "care_goals_documented": True, "__branch__": 2}
    c.ok("evolved_body_reordered_care_plan", M, 18, s[18], d18, event=expected(d))
    d = mem_datum("CoordinatorAssigned", {"month": datetime.date(2019, 8, 1)}, event_id="EV-18b")
    d18 = copy.deepcopy(d)
    d18["body"]["__branch__"] = body18["CoordinatorAssigned"]
    c.ok("evolved_body_reordered_coordinator", M, 18, s[18], d18, event=expected(d))
    d = mem_datum("BhCoordination", {"event_date": datetime.date(2017, 6, 1), "receives_smhs": False,
                                     "county_provider_outcome": "SUCCESS", "member_outcome": "UNABLE_TO_REACH"},
                  event_id="EV-18c")
    d18 = copy.deepcopy(d)
    d18["body"]["__branch__"] = body18["BhCoordination"]
    c.ok("evolved_body_reordered_bh", M, 18, s[18], d18, event=expected(d))
    d18 = copy.deepcopy(d)
    d18["body"] = {"month": 17500, "__branch__": body18["Disenrollment"]}
    c.bad("evolved_body_unknown_branch", M, 18, s[18], d18,
          "field body: incompatible writer schema 18: writer record qualstream.Disenrollment matches no branch")

    d = enc_datum(encounter_id="ENC-19", ed_visit=True)
    c.ok("evolved_nullable_in_writer", E, 19, s[19], d)
    c.bad("evolved_nullable_in_writer_null", E, 19, s[19], dict(d, ed_visit=None),
          "field ed_visit: incompatible writer schema 19: writer type null cannot be read as reader type boolean")

    d = dlv_datum(delivery_id="DLV-20", parity=None)
    c.ok("evolved_long_parity_null", D, 20, s[20], d)
    c.bad("evolved_long_parity_value", D, 20, s[20], dict(d, parity=2),
          "field parity: incompatible writer schema 20: writer type long cannot be read as reader type union [null, int]")

    c.bad("incompatible_record_name", E, 21, s[21], enc_datum(),
          "incompatible writer schema 21: record qualstream.Claim cannot be read as record qualstream.Encounter")
    c.add("invalid_writer_schema", E, frame(22, b"\x02A"), reason="incompatible writer schema 22: not a valid Avro schema")

    d = enc_datum(encounter_id="ENC-23")

    def chain(n):
        node = None
        for i in range(n):
            node = {"value": i, "next": node}
        return node

    c.ok("evolved_recursive_skip", E, 23, s[23], dict(d, chain=chain(3)), event=expected(d))
    c.bad("recursive_too_deep", E, 23, s[23], dict(d, chain=chain(40)),
          "field next: malformed Avro: values nested deeper than 64 levels")

    d = mem_datum("CarePlan", {"care_plan_id": "CP-24", "plan_type": "INITIAL", "completed_on": datetime.date(2018, 3, 3),
                               "care_goals_documented": True}, event_id="EV-24")
    d24 = copy.deepcopy(d)
    d24["body"] = Raw(encode(s[24]["fields"][4]["type"], plain(d)["body"]))
    c.ok("evolved_body_single_record", M, 24, s[24], d24, event=expected(d))

    d = dlv_datum(delivery_id="DLV-25")
    c.ok("evolved_other_namespace", D, 25, s[25], d)

    # Hand-made array and map blocks (python3-avro writes only positive counts).
    d = enc_datum(encounter_id="ENC-26")
    rest = encode(s[1], plain(d))
    # A block of -2 items with its byte size (2), a block of 3, the end.
    blocks = varint(-2) + varint(2) + varint(7) + varint(8) + varint(3) + varint(1) + varint(-1) + varint(300) + varint(0)
    c.add("evolved_array_blocks", E, frame(26, blocks + rest), event=expected(d))
    c.add("array_count_too_big", E, frame(26, varint(1_000_000) + varint(1) + rest),
          reason="truncated Avro: array block count 1000000 at byte 5 exceeds the")
    c.add("array_block_size_too_big", E, frame(26, varint(-1) + varint(99999) + varint(1) + rest),
          reason="truncated Avro: array block of 99999 bytes at byte 6 exceeds the")
    c.add("array_count_negative_min", E, frame(26, b"\xff" * 9 + b"\x01" + rest),
          reason="malformed Avro: array block count at byte 5")
    c.add("map_blocks", E, frame(27, varint(2) + varint(1) + b"k" + varint(1) + b"v" + varint(0) + varint(0) + varint(0)
                                 + rest), event=expected(d))
    c.add("map_count_too_big", E, frame(27, varint(500) + varint(1) + b"k" + rest),
          reason="truncated Avro: map block count 500 at byte 5 exceeds the")
    c.add("map_key_too_long", E, frame(27, varint(1) + varint(1000) + b"k" + rest),
          reason="field pre: truncated Avro: map key length 1000 at byte 6 exceeds the")

    # -- hostile framing -----------------------------------------------------------
    good = frame(1, encode(s[1], plain(enc_datum())))
    c.add("empty_value", E, b"", reason="message has no value")
    for n in range(1, 5):
        c.add("short_%d" % n, E, good[:n], reason="value of %d byte%s is shorter than the 5-byte Confluent header"
              % (n, "" if n == 1 else "s"))
    c.add("wrong_magic_json", E, b'{"encounter_id": "E1"}', reason="wrong magic byte 0x7b (expected 0)")
    c.add("wrong_magic_1", E, b"\x01" + good[1:], reason="wrong magic byte 0x01 (expected 0)")
    c.add("unknown_id", E, frame(999, good[5:]), reason="unknown schema id 999")
    c.add("id_zero", E, frame(0, good[5:]), reason="unknown schema id 0")
    c.add("id_negative", E, b"\x00\xff\xff\xff\xff" + good[5:], reason="unknown schema id -1")
    c.add("wrong_topic", D, good,
          reason="incompatible writer schema 1: record qualstream.Encounter cannot be read as record qualstream.Delivery")
    c.add("trailing_garbage", E, good + b"\x00\x01", reason="malformed Avro: 2 trailing bytes after the record, from byte %d"
          % len(good))

    # -- hostile Avro --------------------------------------------------------------
    def enc_bad(name, reason, **fields):
        c.bad(name, E, 1, s[1], enc_datum(**fields), reason)

    enc_bad("string_len_2g", "field encounter_id: truncated Avro: string length 2147483647 at byte 5 exceeds the",
            encounter_id=Raw(varint(2**31 - 1) + b"ENC"))
    enc_bad("string_len_negative", "field encounter_id: malformed Avro: string length -1 at byte 5 is negative",
            encounter_id=Raw(varint(-1)))
    enc_bad("varint_11_bytes", "field encounter_id: malformed Avro: varint at byte 5 is longer than 10 bytes",
            encounter_id=Raw(b"\xff" * 10 + b"\x01"))
    enc_bad("varint_over_64_bits", "field encounter_id: malformed Avro: varint at byte 5 does not fit in 64 bits",
            encounter_id=Raw(b"\xff" * 9 + b"\x7f"))
    c.add("varint_truncated", E, frame(1, b"\x80\x80"),
          reason="field encounter_id: truncated Avro: varint at byte 5 runs past the end of the message")
    pre = len(varint(8)) + 8  # "ENC-0001"
    enc_bad("union_index_2", "field original_encounter_id: malformed Avro: union index 2 at byte %d out of range 0..1"
            % (5 + pre), original_encounter_id=Raw(varint(2)))
    enc_bad("union_index_negative", "field original_encounter_id: malformed Avro: union index -1 at byte %d out of range"
            % (5 + pre), original_encounter_id=Raw(varint(-1)))
    enc_bad("enum_index_7", "field source: malformed Avro: enum index 7 at byte", source=Raw(varint(7)))
    enc_bad("enum_index_negative", "field frequency: malformed Avro: enum index -3 at byte", frequency=Raw(varint(-3)))
    enc_bad("boolean_2", "field ed_visit: malformed Avro: boolean byte 0x02", ed_visit=Raw(b"\x02"))
    enc_bad("int_overflow", "field service_from: malformed Avro: int at byte", service_from=Raw(varint(2**31)))
    enc_bad("int_min_as_value", "field service_to: value -2147483648 out of range", service_to=Raw(varint(-2**31)))
    enc_bad("long_min_as_value", "field submitted_at: value -9223372036854775808 out of range",
            submitted_at=Raw(varint(1) + varint(-2**63)))
    enc_bad("identifier_empty", "field encounter_id: empty identifier", encounter_id="")
    enc_bad("identifier_64_bytes", "field plan_id: identifier of 64 bytes is longer than 63 bytes", plan_id="P" * 64)
    enc_bad("identifier_nul", "field member_id: identifier contains a NUL byte", member_id="M\x00X")
    enc_bad("identifier_bad_utf8", "field member_id: identifier is not valid UTF-8",
            member_id=Raw(varint(3) + b"M\xc3\x28"))
    enc_bad("identifier_surrogate", "field member_id: identifier is not valid UTF-8",
            member_id=Raw(varint(4) + b"M\xed\xa0\x80"))
    enc_bad("original_id_empty", "field original_encounter_id: empty identifier", original_encounter_id="",
            frequency="REPLACEMENT")

    # -- validation ----------------------------------------------------------------
    enc_bad("date_2350", "field service_to: date 2350-01-01 out of range 1900-01-01..2199-12-31",
            service_to=datetime.date(2350, 1, 1), submitted_at=ts(2360, 1, 1))
    enc_bad("date_1899", "field service_from: date 1899-12-31 out of range 1900-01-01..2199-12-31",
            service_from=datetime.date(1899, 12, 31))
    enc_bad("date_huge", "field service_from: date", service_from=Int(2**31 - 1))
    enc_bad("timestamp_2200", "field adjudicated_at: timestamp %d (2200-01-01) out of range" % ms(ts(2200, 1, 1)),
            adjudicated_at=ts(2200, 1, 1))
    enc_bad("timestamp_1899", "field adjudicated_at: timestamp %d (1899-12-31) out of range"
            % ms(ts(1899, 12, 31, 23, 59, 59, 999)), adjudicated_at=ts(1899, 12, 31, 23, 59, 59, 999))
    enc_bad("timestamp_huge", "field submitted_at: timestamp 9223372036854775807 out of range",
            submitted_at=Int(2**63 - 1))
    enc_bad("from_after_to", "service_from 2017-03-03 is after service_to 2017-03-02",
            service_from=datetime.date(2017, 3, 3))
    enc_bad("submitted_before_service_to", "submitted_at date 2017-03-01 is before service_to 2017-03-02",
            submitted_at=ts(2017, 3, 1, 23, 59, 59, 999))
    enc_bad("original_with_original_id", "frequency ORIGINAL with original_encounter_id \"ENC-0000\"",
            original_encounter_id="ENC-0000")
    enc_bad("replacement_without_original_id", "frequency REPLACEMENT without original_encounter_id",
            frequency="REPLACEMENT")
    enc_bad("void_without_original_id", "frequency VOID without original_encounter_id", frequency="VOID")

    def dlv_bad(name, reason, **fields):
        c.bad(name, D, 2, s[2], dlv_datum(**fields), reason)

    dlv_bad("parity_31", "field parity: 31 out of range 0..30", parity=31)
    dlv_bad("parity_negative", "field parity: -1 out of range 0..30", parity=-1)
    dlv_bad("gestation_51", "field gestational_age_weeks: 51 out of range 0..50", gestational_age_weeks=51)
    dlv_bad("plurality_0", "field plurality: 0 out of range 1..15", plurality=0)
    dlv_bad("plurality_16", "field plurality: 16 out of range 1..15", plurality=16)
    dlv_bad("delivery_date_2200", "field delivery_date: date 2200-01-01 out of range",
            delivery_date=datetime.date(2200, 1, 1))
    dlv_bad("presentation_index_5", "field presentation: malformed Avro: enum index 5", presentation=Raw(varint(1) + varint(5)))
    dlv_bad("hospital_empty", "field hospital_id: empty identifier", hospital_id="")

    c.bad("body_date_1800", M, 3, s[3], mem_datum("CarePlan", {
        "care_plan_id": "CP-1", "plan_type": "INITIAL", "completed_on": datetime.date(1800, 1, 1),
        "care_goals_documented": True}), "field completed_on: date 1800-01-01 out of range")
    c.bad("body_index_5", M, 3, s[3], dict(mem_datum("Enrollment", {"month": datetime.date(2017, 1, 1), "smi_sud": True}),
                                          body=Raw(varint(5))), "field body: malformed Avro: union index 5")
    c.bad("body_care_plan_id_long", M, 3, s[3], mem_datum("CarePlan", {
        "care_plan_id": "C" * 100, "plan_type": "INITIAL", "completed_on": datetime.date(2018, 1, 1),
        "care_goals_documented": True}), "field care_plan_id: identifier of 100 bytes is longer than 63 bytes")
    c.bad("member_status_index_2", M, 3, s[3], mem_datum("Enrollment", {"month": datetime.date(2017, 1, 1),
                                                                        "smi_sud": True}, status=Raw(varint(2))),
          "field status: malformed Avro: enum index 2")
    return c


# python3-avro 1.11's resolver is stricter than the specification here: it
# refuses bytes -> string, a writer union read as a non-union, and record
# names that match only unqualified. The worker follows the specification.
PYTHON_AVRO_REFUSES = {"evolved_enum_by_name", "evolved_enum_by_name_2", "evolved_nullable_in_writer",
                       "evolved_other_namespace"}

READER_FILES = {"encounters": "encounter.avsc", "deliveries": "delivery.avsc", "member-events": "member_event.avsc"}


def cross_check(schemas, cases):
    """Every "ok" row's expected event must be what python3-avro's own
    resolving reader makes of the message, where it can resolve at all."""
    for row in cases.rows:
        if row["expect"] != "ok" or row["name"] in PYTHON_AVRO_REFUSES:
            continue
        data = cases.blobs[row["name"]]
        writer = avro.schema.parse(json.dumps(schemas[int.from_bytes(data[1:5], "big")]))
        reader = avro.schema.parse((ROOT / "schemas" / READER_FILES[row["topic"]]).read_text())
        decoder = avro.io.BinaryDecoder(io.BytesIO(data[5:]))
        got = avro.io.DatumReader(writer, reader).read(decoder)
        got = {k: ({bk: jsonable(bv) for bk, bv in v.items()} if isinstance(v, dict) else jsonable(v))
               for k, v in got.items()}
        want = copy.deepcopy(row["event"])
        if "body" in want:
            del want["body"]["type"]
        assert got == want, (row["name"], got, want)


def main():
    schemas = writer_schemas()
    self_check(schemas)
    cases = build(schemas)
    cross_check(schemas, cases)

    if OUT.exists():
        shutil.rmtree(OUT)
    (OUT / "registry").mkdir(parents=True)
    (OUT / "messages").mkdir()
    for sid, schema in sorted(schemas.items()):
        (OUT / "registry" / ("%d.avsc" % sid)).write_text(json.dumps(schema, indent=2) + "\n")
    (OUT / "registry" / "22.avsc").write_text('{"type": "record", "name": "Broken", "fields": [\n')
    for name, data in sorted(cases.blobs.items()):
        (OUT / "messages" / ("%s.bin" % name)).write_bytes(data)
    (OUT / "cases.json").write_text(json.dumps({"cases": cases.rows}, indent=1, ensure_ascii=True) + "\n")
    print("wrote %d writer schemas and %d messages to %s" % (len(schemas) + 1, len(cases.rows), OUT))


if __name__ == "__main__":
    main()
