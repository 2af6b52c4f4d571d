#!/usr/bin/python3
"""Helpers for tests/bench/incremental.sh (run with /usr/bin/python3: confluent_kafka, psycopg2).

  incremental.py tsv --scale S --replicas R [--member-events M] --tail T.jsonl... --dir DIR
      Writes DIR/encounters.tsv, DIR/deliveries.tsv and DIR/member-events.tsv (COPY text format): every event of the
      history (R copies of qsgen's stream at --scale S --member-events M, in the order `qsgen produce` sends them)
      then of each tail, one decoded record per line with its position in the stream (seq). They
      come from the generator's records, not from anything the worker wrote: the raw events a
      batch user would load. Prints the lines of each file.

  incremental.py absorb --bootstrap HOST:PORT --dsn DSN --prefix P --tail T.jsonl --expect N
      Produces the tail's messages to P.encounters/P.deliveries/P.member-events and waits until
      the committed offsets in qualstream.consumer_offsets sum to N. Prints "absorb_s=... produce_s=...":
      from just before the first produce() to the poll that saw N committed, and the producer's part
      (to the last acknowledgement). The producer is connected before the clock starts.

  incremental.py compare --dsn DSN
      Compares batch.measure_period (tests/bench/batch_recount.sql) with the worker's
      qualstream.measure_period, row by row for the measures the batch SQL recomputes (a key missing
      on one side reads as 0/0). Prints the counts, the first differences, any worker rows of other
      measures, and exits 1 on any difference.
"""
import argparse
import json
import pathlib
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent.parent
sys.path.insert(0, str(ROOT / "tests" / "tools"))

# What batch_recount.sql recomputes: every measure of the worker.
BATCH_MEASURES = ("CW13_SUBMISSIONS", "CW13_TIMELY", "NTSV_CSECTION", "NTSV_MISSING", "CAW6", "CAW7", "CAW8", "CAW9")
ENCOUNTER_COLS = ("encounter_id", "original_encounter_id", "plan_id", "member_id", "source", "frequency",
                  "service_from", "service_to", "adjudicated_at", "submitted_at", "ed_visit")
DELIVERY_COLS = ("delivery_id", "plan_id", "hospital_id", "member_id", "delivery_date", "parity",
                 "gestational_age_weeks", "plurality", "presentation", "method", "live_birth", "status")
# A member event's body is one of five records: their fields side by side, null where absent.
MEMBER_EVENT_COLS = ("event_id", "plan_id", "member_id", "status", "_kind", "month", "smi_sud", "event_date",
                     "receives_smhs", "county_provider_outcome", "member_outcome", "care_plan_id", "plan_type",
                     "completed_on", "care_goals_documented", "contact_date")
COLS = {"encounters": ENCOUNTER_COLS, "deliveries": DELIVERY_COLS, "member-events": MEMBER_EVENT_COLS}


def _field(v):
    if v is None:
        return r"\N"
    if v is True:
        return "t"
    if v is False:
        return "f"
    return str(v)   # ids, enum symbols and numbers: no tab, newline or backslash in them


def _line(m):
    rec, body = m.record, m.record.get("body", {})
    return "\t".join(_field(rec[c] if c in rec else body.get(c)) for c in COLS[m.topic])


def tsv(a):
    import qsgen
    p = argparse.ArgumentParser()
    qsgen._gen_args(p)
    base = qsgen._generate_from_args(p.parse_args(["--scale", str(a.scale), "--replicas", str(a.replicas),
                                                   "--member-events", str(a.member_events)]))
    d = pathlib.Path(a.dir)
    out = {t: open(d / f"{t}.tsv", "w") for t in COLS}
    n = {t: 0 for t in COLS}
    mark = qsgen.REPLICA_MARK
    tags = [".r%05d" % r for r in range(a.replicas)]
    seq = 0
    # qsgen.replicate's order: message by message, each message's copies in turn.
    for m in base:
        line, f = _line(m), out[m.topic]
        assert m.expect is None and mark in line
        for t in tags:
            f.write(f"{seq}\t{line.replace(mark, t)}\n")
            seq += 1
        n[m.topic] += a.replicas
    for path in a.tail:
        for m in qsgen.read_jsonl(path):
            out[m.topic].write(f"{seq}\t{_line(m)}\n")
            n[m.topic] += 1
            seq += 1
    for f in out.values():
        f.close()
    print(*n.values())
    return 0


def _committed(cur):
    cur.execute("SELECT coalesce(sum(next_offset), 0) FROM qualstream.consumer_offsets")
    return cur.fetchone()[0]


def absorb(a):
    import psycopg2
    import qsgen
    tail = qsgen.read_jsonl(a.tail)
    producer = qsgen.make_producer(a.bootstrap)
    # Connected before the clock starts, as an upstream producer that runs all day is: the
    # metadata of the topics and the idempotent producer's id are fetched once, not per batch.
    for t in qsgen.TOPICS:
        producer.list_topics(f"{a.prefix}.{t}", timeout=30)
    producer.flush(30)
    names = {t: f"{a.prefix}.{t}" for t in qsgen.TOPICS}
    conn = psycopg2.connect(a.dsn)
    conn.autocommit = True
    cur = conn.cursor()
    before = _committed(cur)
    if before + len(tail) != a.expect:
        print(f"absorb: {before} committed + {len(tail)} new != {a.expect} expected", file=sys.stderr)
        return 1
    t0 = time.perf_counter()
    _, errors, produce_s = qsgen.produce(((m.topic, m.key, m.value) for m in tail), producer, names)
    if errors:
        print("absorb: delivery errors:", errors[:5], file=sys.stderr)
        return 1
    while _committed(cur) < a.expect:
        time.sleep(0.01)
    absorb_s = time.perf_counter() - t0
    conn.close()
    print(f"absorb_s={absorb_s:.3f} produce_s={produce_s:.3f}")
    return 0


def compare(a):
    import psycopg2
    with psycopg2.connect(a.dsn) as conn, conn.cursor() as cur:
        cur.execute("""
            SELECT coalesce(b.plan_id, w.plan_id), coalesce(b.measure, w.measure), coalesce(b.stratum, w.stratum),
                   coalesce(b.grain, w.grain), coalesce(b.period_start, w.period_start),
                   coalesce(b.numerator, 0), coalesce(b.denominator, 0),
                   coalesce(w.numerator, 0), coalesce(w.denominator, 0)
            FROM batch.measure_period b
            FULL JOIN (SELECT * FROM qualstream.measure_period WHERE measure = ANY(%s)) w
              USING (plan_id, measure, stratum, grain, period_start)
            WHERE (coalesce(b.numerator, 0), coalesce(b.denominator, 0))
                  IS DISTINCT FROM (coalesce(w.numerator, 0), coalesce(w.denominator, 0))
            ORDER BY 1, 2, 3, 4, 5""", (list(BATCH_MEASURES),))
        diffs = cur.fetchall()
        cur.execute("SELECT measure, count(*) FROM batch.measure_period GROUP BY 1 ORDER BY 1")
        batch_rows = cur.fetchall()
        cur.execute("SELECT count(*) FROM qualstream.measure_period WHERE measure = ANY(%s)"
                    " AND (numerator, denominator) <> (0, 0)", (list(BATCH_MEASURES),))
        worker_rows = cur.fetchone()[0]
        cur.execute("SELECT measure, count(*) FROM qualstream.measure_period WHERE measure <> ALL(%s)"
                    " AND (numerator, denominator) <> (0, 0) GROUP BY 1 ORDER BY 1", (list(BATCH_MEASURES),))
        others = cur.fetchall()
    print(f"compare: batch rows {sum(n for _, n in batch_rows)} ({', '.join(f'{m} {n}' for m, n in batch_rows)}),"
          f" worker non-zero rows {worker_rows}, {len(diffs)} differences")
    for d in diffs[:10]:
        print("  {} {} {!r} {} {}: batch {}/{}, worker {}/{}".format(*d))
    if others:
        print("compare: worker rows of measures the batch SQL does not recompute:", others)
    print("compare:", "OK" if not diffs and not others else "FAILED")
    return 0 if not diffs and not others else 1


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("tsv")
    p.add_argument("--scale", type=float, default=10)
    p.add_argument("--replicas", type=int, required=True)
    p.add_argument("--member-events", type=int, default=0)
    p.add_argument("--tail", action="append", default=[])
    p.add_argument("--dir", required=True)
    p = sub.add_parser("absorb")
    p.add_argument("--bootstrap", required=True)
    p.add_argument("--dsn", required=True)
    p.add_argument("--prefix", required=True)
    p.add_argument("--tail", required=True)
    p.add_argument("--expect", type=int, required=True)
    p = sub.add_parser("compare")
    p.add_argument("--dsn", required=True)
    a = ap.parse_args()
    return {"tsv": tsv, "absorb": absorb, "compare": compare}[a.cmd](a)


if __name__ == "__main__":
    sys.exit(main())
