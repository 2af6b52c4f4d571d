#!/usr/bin/env python3
"""Writes the seed corpora of the decoder fuzz targets (tests/fuzz/README.md).

fuzz_message/: every message of tests/data/avro/cases.json (valid and rejected),
as a topic byte then the Kafka value. fuzz_schema/: the same messages whose
writer schema is in tests/data/avro/registry, as schema JSON, NUL, topic byte,
Avro body; plus the writer schemas of the regression cases of issue 10 (named
types reused, recursion, wide records of nulls, records nested deep in an
array), encoded here by hand. Run from anywhere; rewrites the seed files
(regression inputs found by fuzzing live beside them, named regress-*, and
are left alone).
"""
import json
import pathlib

ROOT = pathlib.Path(__file__).resolve().parent
AVRO = ROOT.parent / "data" / "avro"
TOPICS = {"encounters": 0, "deliveries": 1, "member-events": 2}


def zigzag(v):
    u = (v << 1) ^ (v >> 63)
    out = bytearray()
    while u >= 0x80:
        out.append((u & 0x7F) | 0x80)
        u >>= 7
    out.append(u)
    return bytes(out)


def string(s):
    b = s.encode()
    return zigzag(len(b)) + b


ENC_HEAD = [
    {"name": "encounter_id", "type": "string"},
    {"name": "original_encounter_id", "type": ["null", "string"], "default": None},
    {"name": "plan_id", "type": "string"},
    {"name": "member_id", "type": "string"},
    {"name": "source", "type": {"type": "enum", "name": "EncounterSource", "symbols": ["MEDICARE", "MEDICAID"]}},
    {"name": "frequency", "type": {"type": "enum", "name": "ClaimFrequency",
                                   "symbols": ["ORIGINAL", "REPLACEMENT", "VOID"]}},
    {"name": "service_from", "type": "int"},
    {"name": "service_to", "type": "int"},
    {"name": "adjudicated_at", "type": ["null", "long"], "default": None},
    {"name": "submitted_at", "type": ["null", "long"], "default": None},
]
ED_VISIT = {"name": "ed_visit", "type": "boolean"}
# ENC-R1, original, MEDICAID, 2017-03-01..02, adjudicated, not submitted.
ENC_HEAD_BYTES = (string("ENC-R1") + zigzag(0) + string("H0001") + string("M-7") + zigzag(1) + zigzag(0)
                  + zigzag(17226) + zigzag(17227) + zigzag(1) + zigzag(1489134600000) + zigzag(0))
REC_X = {"type": "record", "name": "X", "fields": [{"name": "a", "type": "int"}, {"name": "b", "type": "string"}]}
REC_NODE = {"type": "record", "name": "Node", "fields": [
    {"name": "v", "type": "int"}, {"name": "kids", "type": ["null", {"type": "array", "items": "Node"}]}]}


def x(a, b):
    return zigzag(a) + string(b)


def encounter(extra, extra_bytes):
    schema = {"type": "record", "name": "Encounter", "namespace": "qualstream",
              "fields": ENC_HEAD + extra + [ED_VISIT]}
    return schema, ENC_HEAD_BYTES + extra_bytes + b"\x01"


def nested(depth):
    t = "boolean"
    for i in reversed(range(depth)):
        t = {"type": "record", "name": "R%d" % i, "fields": [{"name": "f", "type": t}]}
    return {"type": "array", "items": t}


def regressions():
    yield "named-sibling", encounter([{"name": "x1", "type": REC_X}, {"name": "x2", "type": "X"}],
                                     x(5, "five") + x(-6, "six"))
    yield "named-containers", encounter(
        [{"name": "x1", "type": ["null", REC_X]}, {"name": "x2", "type": {"type": "array", "items": "X"}},
         {"name": "w", "type": {"type": "record", "name": "W", "fields": [{"name": "p", "type": "X"},
                                                                          {"name": "q", "type": "X"}]}},
         {"name": "x3", "type": {"type": "map", "values": "X"}}],
        zigzag(1) + x(7, "u") + zigzag(2) + x(8, "a0") + x(9, "a1") + zigzag(0) + x(10, "w.p") + x(11, "w.q")
        + zigzag(1) + string("k") + x(12, "m") + zigzag(0))
    leaf = lambda v: zigzag(v) + zigzag(0)
    tree = (zigzag(1) + zigzag(1) + zigzag(2) + zigzag(2) + zigzag(1) + zigzag(1) + leaf(3) + zigzag(0) + leaf(4)
            + zigzag(0))
    yield "recursive", encounter([{"name": "tree", "type": REC_NODE}, {"name": "tree2", "type": "Node"}],
                                 tree + leaf(5))
    schema = {"type": "record", "name": "Encounter", "namespace": "qualstream",
              "fields": ENC_HEAD + [{"name": "x1", "type": REC_X}, ED_VISIT, {"name": "x2", "type": "X"}]}
    yield "named-last", (schema, ENC_HEAD_BYTES + x(1, "x1") + b"\x00" + x(2, "x2"))
    wide = {"type": "array", "items": {"type": "record", "name": "W", "fields": [
        {"name": "n%d" % i, "type": "null"} for i in range(200)] + [{"name": "b", "type": "boolean"}]}}
    yield "wide-nulls", encounter([{"name": "rows", "type": wide}], zigzag(500) + b"\x01" * 500 + zigzag(0))
    yield "nested-20", encounter([{"name": "rows", "type": nested(20)}], zigzag(300) + b"\x01" * 300 + zigzag(0))
    yield "nested-40", encounter([{"name": "rows", "type": nested(40)}], zigzag(300) + b"\x01" * 300 + zigzag(0))


def compact(schema):
    """Schema JSON without docs or spaces: small seeds, every byte meaningful."""
    def strip(v):
        if isinstance(v, dict):
            return {k: strip(w) for k, w in v.items() if k != "doc"}
        return [strip(w) for w in v] if isinstance(v, list) else v
    return json.dumps(strip(schema), separators=(",", ":")).encode()


def main():
    cases = json.loads((AVRO / "cases.json").read_text())["cases"]
    out_m, out_s = ROOT / "corpus" / "fuzz_message", ROOT / "corpus" / "fuzz_schema"
    for d in (out_m, out_s):
        d.mkdir(parents=True, exist_ok=True)
        for f in d.glob("seed-*"):
            f.unlink()
    for row in cases:
        value = (AVRO / row["file"]).read_bytes()
        topic = bytes([TOPICS[row["topic"]]])
        (out_m / ("seed-" + row["name"])).write_bytes(topic + value)
        if len(value) >= 5:
            schema = AVRO / "registry" / ("%d.avsc" % int.from_bytes(value[1:5], "big"))
            if schema.exists():
                try:
                    text = compact(json.loads(schema.read_text()))
                except ValueError:  # the registry's deliberately broken schema
                    text = schema.read_bytes().strip()
                (out_s / ("seed-" + row["name"])).write_bytes(text + b"\0" + topic + value[5:])
    for name, (schema, body) in regressions():
        text = compact(schema)
        (out_s / ("seed-" + name)).write_bytes(text + b"\0\0" + body)


if __name__ == "__main__":
    main()
