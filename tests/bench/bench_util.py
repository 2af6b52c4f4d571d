#!/usr/bin/python3
"""Helpers for tests/bench/run.sh (run with /usr/bin/python3: it needs confluent_kafka and psycopg2).

  bench_util.py watermarks --bootstrap HOST:PORT TOPIC...
      Prints "<messages> <partitions>": the messages held (high - low watermark summed over every
      partition). Exits 1 if any partition's low watermark is not 0, i.e. the cluster dropped the
      head of a log (librdkafka's mock keeps ~5 MiB per partition) and a drain would not see the
      whole stream.

  bench_util.py worklog LOG
      Reads a worker's log and prints shell assignments: drain_s (first "assigned" line to the
      end-of-run summary line), flush_s (sum of the "flushed N events in M ms" lines that
      log.level=debug writes), applied, dead, flushes, resets, entities, peak_rss_mib.

  bench_util.py verify --dsn DSN --base BASE.jsonl --replicas N [--demo DEMO.jsonl] [--messages M]
      The oracle's expected rows for DEMO plus N disjoint copies of BASE (qsgen --replicas N),
      compared with qualstream.measure_period; also the dead-letter count and, with --messages,
      that the committed offsets cover M messages. Prints one line per check and exits 1 on any
      difference.
"""
import argparse
import pathlib
import re
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent.parent
sys.path.insert(0, str(ROOT / "tests" / "tools"))


def watermarks(a):
    from confluent_kafka import Consumer, TopicPartition
    c = Consumer({"bootstrap.servers": a.bootstrap, "group.id": "qs-bench-watermarks",
                  "enable.auto.commit": False})
    total = parts = 0
    bad = []
    try:
        md = c.list_topics(timeout=30)
        for topic in a.topics:
            t = md.topics.get(topic)
            if t is None or t.error is not None:
                sys.exit(f"topic {topic}: not found ({t.error if t else 'no metadata'})")
            for p in sorted(t.partitions):
                lo, hi = c.get_watermark_offsets(TopicPartition(topic, p), timeout=30)
                if lo != 0:
                    bad.append(f"{topic}[{p}] starts at offset {lo}")
                total += hi - lo
                parts += 1
    finally:
        c.close()
    print(total, parts)
    for b in bad:
        print("truncated log:", b, file=sys.stderr)
    return 1 if bad else 0


def _stamp(line):
    import datetime
    m = re.match(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3})Z ", line)
    return datetime.datetime.fromisoformat(m.group(1)).timestamp() if m else None


def worklog(a):
    first = summary = None
    flush_ms = 0
    for line in open(a.log, errors="replace"):
        if first is None and " assigned " in line:
            first = _stamp(line)
        m = re.search(r" flushed \d+ events in (\d+) ms", line)  # log.level=debug
        if m:
            flush_ms += int(m.group(1))
        if re.search(r" applied \d+ events, ", line):
            summary = line
    if first is None or summary is None:
        print(f"{a.log}: no 'assigned' or no end-of-run summary line", file=sys.stderr)
        return 1
    # Matched piece by piece, so that the rest of the line may change wording.
    pats = {"applied": r"applied (\d+) events", "dead": r"(\d+) dead letters", "flushes": r"(\d+) flushes",
            "resets": r"(\d+) resets", "entities": r"(\d+) entities held", "peak_rss_mib": r"peak RSS (\d+) MiB"}
    out = [f"drain_s={_stamp(summary) - first:.3f}", f"flush_s={flush_ms / 1000:.3f}"]
    for k, pat in pats.items():
        m = re.search(pat, summary)
        if not m:
            print(f"{a.log}: no '{pat}' in: {summary}", file=sys.stderr)
            return 1
        out.append(f"{k}={m.group(1)}")
    print("\n".join(out))
    return 0


def verify(a):
    import oracle
    import psycopg2
    import qsgen

    t0 = time.perf_counter()
    expected = {}
    n_dead = 0
    sources = [(a.base, a.replicas)] + ([(a.demo, 1)] if a.demo else [])
    for path, k in sources:
        res = oracle.compute(qsgen.read_jsonl(path))
        for m in res.mismatches[:5]:
            print("oracle warning:", m, file=sys.stderr)
        for r in oracle.scale_rows(res.row_list(), k):
            key = r[:5]
            num, den = expected.get(key, (0, 0))
            expected[key] = (num + r[5], den + r[6])
        n_dead += len(res.dead_letters) * k
    exp_rows = [k + v for k, v in expected.items()]
    t_oracle = time.perf_counter() - t0

    with psycopg2.connect(a.dsn) as conn, conn.cursor() as cur:
        cur.execute("SELECT plan_id, measure, stratum, grain, period_start, numerator, denominator"
                    " FROM qualstream.measure_period")
        actual = cur.fetchall()
        cur.execute("SELECT count(*) FROM qualstream.dead_letter")
        dead = cur.fetchone()[0]
        cur.execute("SELECT coalesce(sum(next_offset), 0) FROM qualstream.consumer_offsets")
        committed = cur.fetchone()[0]
    diffs = oracle.compare(exp_rows, actual)
    ok = not diffs
    print(f"verify rows: {len(exp_rows)} expected non-zero rows, {len(actual)} worker rows, "
          f"{len(diffs)} differences (oracle {t_oracle:.1f} s)")
    for d in diffs[:10]:
        print("  ", d)
    print(f"verify dead letters: expected {n_dead}, worker wrote {dead}")
    ok &= dead == n_dead
    if a.messages is not None:
        print(f"verify offsets: committed offsets cover {committed} messages, the topics hold {a.messages}")
        ok &= committed == a.messages
    print("verify:", "OK" if ok else "FAILED")
    return 0 if ok else 1


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("watermarks")
    p.add_argument("--bootstrap", required=True)
    p.add_argument("topics", nargs="+")
    p = sub.add_parser("worklog")
    p.add_argument("log")
    p = sub.add_parser("verify")
    p.add_argument("--dsn", required=True)
    p.add_argument("--base", required=True)
    p.add_argument("--replicas", type=int, default=1)
    p.add_argument("--demo")
    p.add_argument("--messages", type=int)
    a = ap.parse_args()
    return {"watermarks": watermarks, "worklog": worklog, "verify": verify}[a.cmd](a)


if __name__ == "__main__":
    sys.exit(main())
