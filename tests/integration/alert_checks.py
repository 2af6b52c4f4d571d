"""Checks of the alert feed's end state that hold for any stream (README "Alerts"), shared by
the alert tests and the fault tests: every row well formed, the partition clocks, the encounter
alert history and the open alerts equal to oracle.alerts() (an independent recount from the raw
messages), and the alert topic equal to the table, decoded with the writer schema fetched by id.
"""
import collections
import datetime
import io
import json

import avro.io
import avro.schema

from conftest import ROOT, oracle, qsgen

E, D = "encounters", "deliveries"
ENCOUNTER_KINDS = oracle.ENCOUNTER_KINDS
MONTH_KINDS = ("MONTH_WITHOUT_SUBMISSION", "MONTH_WITHOUT_SUBMISSION_WARNING")
ALL_KINDS = oracle.ENCOUNTER_KINDS + oracle.PLAN_KINDS
IDENTITY = ("kind", "plan_id", "source", "member_id", "encounter_id", "hospital_id")

def histories(rows, kinds=ALL_KINDS):
    """{alert_id: [row, ...]} in id order, for rows of the given kinds."""
    out = collections.defaultdict(list)
    for r in rows:
        if r["kind"] in kinds:
            out[r["alert_id"]].append(r)
    return dict(out)


def assert_well_formed(rows):
    """What every alert row must satisfy, whatever the stream (README "Alerts" and
    schemas/alert.avsc):
      * kind and plan_id are the alert_id's first two parts; details say something;
      * per alert_id the states alternate RAISED, RESOLVED, RAISED ..., starting RAISED, and
        a RESOLVED row names the same condition as the RAISED row before it;
      * each kind carries its own fields (encounter: source, member, encounter, a due date,
        no period; months: the month and its last day; NTSV: hospital, first month of the
        window, no due date; timeliness: 1 January and 31 December);
      * reading the table in id order, an encounter never has two open alerts, nor a month
        its warning and its MONTH_WITHOUT_SUBMISSION at once."""
    last = {}
    open_by_subject = collections.defaultdict(set)
    for r in rows:
        a = r["alert_id"]
        parts = a.split(":")
        assert r["kind"] == parts[0] and r["plan_id"] == parts[1], r
        assert r["details"].strip(), r
        prev = last.get(a)
        assert r["state"] == ("RESOLVED" if prev and prev["state"] == "RAISED" else "RAISED"), \
            f"{a}: {r['state']} after {prev and prev['state']}"
        if prev:
            assert all(r[k] == prev[k] for k in IDENTITY), (prev, r)
        last[a] = r
        kind = r["kind"]
        if kind in ENCOUNTER_KINDS:
            assert parts[2] == r["encounter_id"] and r["member_id"] and r["source"] in ("MEDICARE", "MEDICAID"), r
            assert r["hospital_id"] is None and r["period_start"] is None and r["due_date"] is not None, r
            subject = ("encounter", r["plan_id"], r["encounter_id"])
        elif kind in MONTH_KINDS:
            month = datetime.date.fromisoformat(parts[3] + "-01")
            assert (r["source"], r["period_start"]) == (parts[2], month), r
            assert r["due_date"] == oracle.last_day(month) and r["hospital_id"] is None, r
            subject = ("month", r["plan_id"], r["source"], month)
        elif kind == "NTSV_ABOVE_TARGET":
            assert r["hospital_id"] == parts[2] and r["due_date"] is None and r["source"] is None, r
            assert r["period_start"].day == 1, r
            subject = ("ntsv", a)
        else:
            year = int(parts[3])
            assert (r["source"], r["period_start"], r["due_date"]) == \
                (parts[2], datetime.date(year, 1, 1), datetime.date(year, 12, 31)), r
            subject = ("timeliness", a)
        if r["state"] == "RAISED":
            assert not open_by_subject[subject], f"{a} raised while {open_by_subject[subject]} open"
            open_by_subject[subject].add(a)
        else:
            open_by_subject[subject].discard(a)


def open_alerts(env, kinds=ALL_KINDS):
    """qualstream.alert_open of this group, {alert_id: fields} (ALERT_FIELDS)."""
    cols = ("alert_id", "kind", "plan_id", "source", "member_id", "encounter_id", "hospital_id",
            "period_start", "due_date")
    rows = env.query(f"SELECT {', '.join(cols)} FROM qualstream.alert_open WHERE consumer_group = %s",
                     env.group)
    return {r[0]: dict(zip(cols, r)) for r in rows if r[1] in kinds}


def assert_open_matches_oracle(env, expected, kinds=ALL_KINDS):
    """alert_open equals the oracle's conditions. Encounter alerts as the oracle's history
    left them open (with the due date they were raised with); an NTSV alert's
    period_start is the window when it was raised, so only its identity is compared."""
    got = open_alerts(env, kinds)
    want = {a: v for a, v in expected.open.items() if v["kind"] in kinds}
    if expected.history:
        raised = oracle.open_after(expected.history)
        want.update({a: {k: raised[a][k] for k in oracle.ALERT_FIELDS} for a in raised if a in want})
    for a in set(got) & set(want):
        if want[a]["kind"] == "NTSV_ABOVE_TARGET":
            got[a] = dict(got[a], period_start=None)
            want[a] = dict(want[a], period_start=None)
    assert got == want, (f"open alerts differ from the oracle: only in the table {sorted(set(got) - set(want))[:10]},"
                         f" only in the oracle {sorted(set(want) - set(got))[:10]},"
                         f" different {[(got[a], want[a]) for a in set(got) & set(want) if got[a] != want[a]][:5]}")


def assert_clocks_match(env, expected):
    """consumer_offsets.event_clock of every encounters and deliveries partition equals the
    clock the oracle derives (latest event time read), NULL where none."""
    names = {env.topics[E]: E, env.topics[D]: D}
    got = {(names[t], p): c for t, p, c in env.query(
        "SELECT topic, partition, event_clock FROM qualstream.consumer_offsets WHERE consumer_group = %s",
        env.group) if t in names}
    for tp in set(got) | set(expected.clocks):
        assert got.get(tp) == expected.clocks.get(tp), \
            f"{tp}: event_clock {got.get(tp)}, oracle {expected.clocks.get(tp)} (all: {got} vs {expected.clocks})"


def assert_history_matches_oracle(rows, expected):
    """The encounter alert rows, per alert_id, are the oracle's history: same states at the
    same clock readings; RAISED rows with the same fields."""
    def shape(h, fields):
        return [(t["state"], t["detected_at"]) + (tuple(t[k] for k in fields) if t["state"] == "RAISED" else ())
                for t in h]
    fields = IDENTITY + ("due_date",)
    got = {a: shape(h, fields) for a, h in histories(rows, ENCOUNTER_KINDS).items()}
    want = collections.defaultdict(list)
    for t in expected.history:
        want[t["alert_id"]].append(t)
    want = {a: shape(h, fields) for a, h in want.items()}
    diff = sorted(a for a in set(got) | set(want) if got.get(a) != want.get(a))
    assert not diff, f"{len(diff)} encounter alerts differ from the oracle's history, e.g. " + \
        "; ".join(f"{a}: worker {got.get(a)} oracle {want.get(a)}" for a in diff[:4])


def assert_alert_topic_matches_table(env):
    """A consumer of topics.alerts: every message is Confluent-framed (magic 0, 4-byte schema
    id), its writer schema is fetched by that id from the registry the worker uses (here the
    schema.registry.dir) and is schemas/alert.avsc; decoded with python-avro, each message
    equals the qualstream.alerts row its header qualstream.alert_row (8 bytes, big-endian
    alerts.id) names, its key is the alert_id, and every row is on the topic exactly once."""
    rows = {r["id"]: r for r in env.alerts()}
    assert rows and all(r["published"] for r in rows.values())
    published = json.loads((ROOT / "schemas" / "alert.avsc").read_text())
    readers, seen = {}, collections.Counter()
    for msg in env.read_topic(env.alert_topic):
        value = msg.value()
        assert len(value) > 5 and value[0] == 0, f"no Confluent framing: {value[:8]!r}"
        sid = int.from_bytes(value[1:5], "big")
        if sid not in readers:
            text = (env.registry / f"{sid}.avsc").read_text()
            assert json.loads(text) == published, f"schema id {sid} is not schemas/alert.avsc"
            readers[sid] = (avro.io.DatumReader(qsgen.parse_schema(text)),       # dates as ints
                            avro.io.DatumReader(avro.schema.parse(text)))        # logical types
        plain, typed = readers[sid]
        buf = io.BytesIO(value[5:])
        rec = plain.read(avro.io.BinaryDecoder(buf))
        assert buf.tell() == len(value) - 5, "bytes after the Avro record"
        logical = typed.read(avro.io.BinaryDecoder(io.BytesIO(value[5:])))
        headers = [(k, v) for k, v in (msg.headers() or []) if k == "qualstream.alert_row"]
        assert len(headers) == 1 and len(headers[0][1]) == 8, msg.headers()
        rid = int.from_bytes(headers[0][1], "big")
        assert rid in rows, f"message for alerts.id {rid}, which the table does not have"
        row = rows[rid]
        assert msg.key() == row["alert_id"].encode()

        def days(d):
            return None if d is None else (d - datetime.date(1970, 1, 1)).days
        assert rec == dict(alert_id=row["alert_id"], kind=row["kind"], state=row["state"],
                           plan_id=row["plan_id"], source=row["source"], member_id=row["member_id"],
                           encounter_id=row["encounter_id"], hospital_id=row["hospital_id"],
                           period_start=days(row["period_start"]), due_date=days(row["due_date"]),
                           detected_at=row["detected_at"], details=row["details"]), (rec, row)
        assert (logical["period_start"], logical["due_date"]) == (row["period_start"], row["due_date"])
        assert logical["detected_at"] == datetime.datetime.fromtimestamp(row["detected_at"] / 1000,
                                                                         datetime.timezone.utc)
        seen[rid] += 1
    twice = {r: n for r, n in seen.items() if n > 1}
    assert not twice, f"{len(twice)} alert rows on the topic more than once: {sorted(twice.items())[:10]}"
    missing = sorted(set(rows) - set(seen))
    assert not missing, f"{len(missing)} of {len(rows)} alert rows not on the topic: {missing[:10]}"


def assert_alerts_match_oracle(env, messages):
    """The whole alert end state of a stream produced once, against the oracle: rows well formed,
    clocks, encounter alert history (same transitions at the same readings, whatever restarts,
    rebalances or fences happened), open alerts, and the topic (exactly once, as the table)."""
    rows = env.alerts()
    assert all(r["published"] for r in rows), \
        f"{sum(not r['published'] for r in rows)} of {len(rows)} alerts not marked published"
    assert_well_formed(rows)
    expected = oracle.alerts(messages, history=True)
    assert_clocks_match(env, expected)
    assert_history_matches_oracle(rows, expected)
    assert_open_matches_oracle(env, expected)
    assert_alert_topic_matches_table(env)
