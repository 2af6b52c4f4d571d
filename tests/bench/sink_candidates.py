#!/usr/bin/python3
"""sink_candidates.py: how to persist the worker's entities, measured (README "Entity persistence").

Run by sink_candidates.sh, which starts a private PostgreSQL and passes its DSN. Builds the rows the
worker persists for qsgen's big stream (--scale S --replicas N, the stream of run.sh): messages go to
--partitions partitions by a hash of the key, are cut into flushes of --flush events, and each flush
persists the latest message of every record it changed. Every candidate then writes the same flushes,
one transaction each, into a fresh table, and the figure is its time as a ratio to a plain COPY of the
same rows (text format, as the worker sends) into an unindexed table, measured in the same run:

  copy        the baseline: COPY into a table with no index
  upsert      today: COPY into a temporary table, INSERT ... ON CONFLICT DO UPDATE into record_latest
  log         append-only log, COPY straight into it, btree on (stream, partition, offset); narrow keys
              (an int stream id for group + topic), record_id COLLATE "C" (migration 006's record_log)
  log-bin     the same with binary COPY (what pgsink.c does)
  log-noidx   the log without its index (restore and compaction scan the table)
  typed       typed per-topic tables (decoded columns, smallint plan/source/enum codes), text COPY
  typed-bin   the same with binary COPY

For the appended candidates it also times a compaction (delete every superseded version, per
partition) and, for each candidate, a restore: read every partition's latest version of each record in
offset order, as pgsink_load_records does, reported per million records restored. Prints one table.
"""
import argparse
import datetime
import io
import struct
import sys
import time
import zlib
from pathlib import Path

import psycopg2

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tools"))
import qsgen  # noqa: E402

ID_FIELD = {"encounters": "encounter_id", "deliveries": "delivery_id", "member-events": "event_id"}
TOPIC_NO = {t: i for i, t in enumerate(qsgen.TOPICS)}
GROUP = "qs-bench"

# Typed tables: (column, SQL type, binary packer). Text fields carry the replica tag.
ENUMS = ("source", "frequency", "presentation", "method", "status")  # stored as smallint codes
TYPED = {
    "encounters": [("encounter_id", "text"), ("original_encounter_id", "text"), ("plan", "smallint"),
                   ("member_id", "text"), ("source", "smallint"), ("frequency", "smallint"),
                   ("service_from", "int"), ("service_to", "int"), ("adjudicated_at", "bigint"),
                   ("submitted_at", "bigint"), ("ed_visit", "boolean")],
    "deliveries": [("delivery_id", "text"), ("plan", "smallint"), ("hospital", "smallint"),
                   ("member_id", "text"), ("delivery_date", "int"), ("parity", "int"),
                   ("gestational_age_weeks", "int"), ("plurality", "int"), ("presentation", "smallint"),
                   ("method", "smallint"), ("live_birth", "boolean"), ("status", "smallint")],
}


def build_flushes(a):
    """[(flush: [(topic, partition, record_id, offset, value, record)])], record with tagged strings."""
    base = qsgen.generate(members=round(150 * a.scale), encounters_per_month=round(40 * a.scale),
                          deliveries=round(600 * a.scale), id_suffix=qsgen.REPLICA_MARK)
    mark = qsgen.REPLICA_MARK
    tags = [".r%05d" % r for r in range(a.replicas)]
    offsets = {}
    flushes, cur = [], {}
    n = 0
    for m in base:
        if m.record is None or m.topic not in TYPED:
            continue
        for t in tags:
            key = m.key.replace(mark.encode(), t.encode())
            value = m.value.replace(mark.encode(), t.encode())
            rec = {k: v.replace(mark, t) if isinstance(v, str) else v for k, v in m.record.items()}
            part = zlib.crc32(key) % a.partitions
            off = offsets.get((m.topic, part), 0)
            offsets[(m.topic, part)] = off + 1
            # latest version of each record within the flush, in first-changed order (a dict keeps it)
            cur[(m.topic, part, rec[ID_FIELD[m.topic]])] = (off, value, rec)
            n += 1
            if n % a.flush == 0:
                flushes.append([(k[0], k[1], k[2], v[0], v[1], v[2]) for k, v in cur.items()])
                cur = {}
    if cur:
        flushes.append([(k[0], k[1], k[2], v[0], v[1], v[2]) for k, v in cur.items()])
    return n, flushes


def by_partition(rows):
    """A flush's rows grouped by partition (offset order within), as pgsink.c's write_records sends them."""
    return sorted(rows, key=lambda r: (TOPIC_NO[r[0]], r[1], r[3]))


def esc(s):
    return s.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n")


def text_rows(rows, shape):
    out = io.StringIO()
    for topic, part, rid, off, value, _ in rows:
        if shape == "latest":  # record_latest / the baseline: group and topic as text
            out.write(f"{GROUP}\t{topic}\t{part}\t{esc(rid)}\t{off}\t\\\\x{value.hex()}\n")
        elif shape == "temp":  # today's qs_record
            out.write(f"{topic}\t{part}\t{esc(rid)}\t{off}\t\\\\x{value.hex()}\n")
        else:  # log: stream id
            out.write(f"{TOPIC_NO[topic] + 1}\t{part}\t{off}\t{esc(rid)}\t\\\\x{value.hex()}\n")
    return io.BytesIO(out.getvalue().encode())


def bin_header():
    return b"PGCOPY\n\xff\r\n\x00" + struct.pack("!ii", 0, 0)


def bin_log_rows(rows):
    out = io.BytesIO()
    out.write(bin_header())
    for topic, part, rid, off, value, _ in rows:
        r = rid.encode()
        out.write(struct.pack("!hiiiiiqi", 5, 4, TOPIC_NO[topic] + 1, 4, part, 8, off, len(r)))
        out.write(r)
        out.write(struct.pack("!i", len(value)))
        out.write(value)
    out.write(struct.pack("!h", -1))
    out.seek(0)
    return out


class Dict:
    """Small ids for repeated text (plans, hospitals), as the typed tables would keep in a lookup table."""

    def __init__(self):
        self.ids = {}

    def __call__(self, s):
        return self.ids.setdefault(s, len(self.ids) + 1)


def typed_values(topic, rec, ids):
    vals = []
    for col, _ in TYPED[topic]:
        if col == "plan":
            vals.append(ids("plan:" + rec["plan_id"]))
        elif col == "hospital":
            vals.append(None if rec["hospital_id"] is None else ids("hosp:" + rec["hospital_id"]))
        elif col in ENUMS:
            vals.append(None if rec[col] is None else ids(col + ":" + rec[col]))
        else:
            vals.append(rec[col])
    return vals


def typed_text(rows, topic, ids):
    out = io.StringIO()
    for t, part, _, off, _, rec in rows:
        if t != topic:
            continue
        cols = [str(TOPIC_NO[t] + 1), str(part), str(off)]
        for v in typed_values(t, rec, ids):
            cols.append("\\N" if v is None else ("t" if v is True else "f" if v is False else esc(str(v))))
        out.write("\t".join(cols) + "\n")
    return io.BytesIO(out.getvalue().encode())


def typed_bin(rows, topic, ids):
    out = io.BytesIO()
    out.write(bin_header())
    types = [ty for _, ty in TYPED[topic]]
    for t, part, _, off, _, rec in rows:
        if t != topic:
            continue
        out.write(struct.pack("!hiiiiiq", 3 + len(types), 4, TOPIC_NO[t] + 1, 4, part, 8, off))
        for ty, v in zip(types, typed_values(t, rec, ids)):
            if v is None:
                out.write(struct.pack("!i", -1))
            elif ty == "text":
                b = v.encode()
                out.write(struct.pack("!i", len(b)) + b)
            elif ty == "smallint":
                out.write(struct.pack("!ih", 2, v))
            elif ty == "int":
                out.write(struct.pack("!ii", 4, v))
            elif ty == "bigint":
                out.write(struct.pack("!iq", 8, v))
            else:
                out.write(struct.pack("!i?", 1, v))
    out.write(struct.pack("!h", -1))
    out.seek(0)
    return out


LATEST_COLS = ("consumer_group text NOT NULL, topic text NOT NULL, partition int NOT NULL,"
               " record_id text NOT NULL, \"offset\" bigint NOT NULL, value bytea NOT NULL")
LOG_COLS = "stream int NOT NULL, partition int NOT NULL, \"offset\" bigint NOT NULL," \
           " record_id text COLLATE \"C\" NOT NULL, value bytea NOT NULL"


def typed_cols(topic):
    return "stream int NOT NULL, partition int NOT NULL, \"offset\" bigint NOT NULL, " + ", ".join(
        f"{c} {ty}" + (' COLLATE "C"' if c == ID_FIELD[topic] else "") for c, ty in TYPED[topic])


def tname(topic):
    return "b_" + topic.replace("-", "_")


def setup(cur, cand):
    cur.execute("DROP SCHEMA IF EXISTS b CASCADE; CREATE SCHEMA b")
    if cand == "copy":
        cur.execute(f"CREATE TABLE b.t ({LATEST_COLS})")
    elif cand == "upsert":
        cur.execute(f"CREATE TABLE b.t ({LATEST_COLS}, PRIMARY KEY (consumer_group, topic, partition, record_id))")
    elif cand.startswith("log"):
        cur.execute(f"CREATE TABLE b.t ({LOG_COLS})")
        if cand != "log-noidx":
            cur.execute("CREATE INDEX ON b.t (stream, partition, \"offset\")")
    else:
        for topic in TYPED:
            cur.execute(f"CREATE TABLE b.{tname(topic)} ({typed_cols(topic)})")
            cur.execute(f"CREATE INDEX ON b.{tname(topic)} (stream, partition, \"offset\")")


def write_flush(conn, cand, rows, ids):
    """Builds the COPY data (untimed), then times one flush transaction; returns seconds."""
    cur = conn.cursor()
    if cand.startswith(("log", "typed")):
        rows = by_partition(rows)
    if cand in ("copy", "upsert"):
        data = [text_rows(rows, "latest" if cand == "copy" else "temp")]
    elif cand in ("log", "log-noidx"):
        data = [text_rows(rows, "log")]
    elif cand == "log-bin":
        data = [bin_log_rows(rows)]
    else:
        make = typed_bin if cand == "typed-bin" else typed_text
        data = [make(rows, topic, ids) for topic in TYPED]
    t0 = time.perf_counter()
    if cand == "copy":
        cur.copy_expert("COPY b.t FROM STDIN", data[0])
    elif cand == "upsert":
        cur.execute("CREATE TEMP TABLE IF NOT EXISTS qs_record (topic text, partition int, record_id text,"
                    " \"offset\" bigint, value bytea) ON COMMIT DELETE ROWS")
        cur.copy_expert("COPY qs_record FROM STDIN", data[0])
        cur.execute("INSERT INTO b.t AS r SELECT DISTINCT ON (topic, partition, record_id) %s, topic, partition,"
                    " record_id, \"offset\", value FROM qs_record ORDER BY topic, partition, record_id,"
                    " \"offset\" DESC ON CONFLICT (consumer_group, topic, partition, record_id) DO UPDATE"
                    " SET \"offset\" = EXCLUDED.\"offset\", value = EXCLUDED.value", (GROUP,))
    elif cand in ("log", "log-noidx"):
        cur.copy_expert("COPY b.t FROM STDIN", data[0])
    elif cand == "log-bin":
        cur.copy_expert("COPY b.t FROM STDIN (FORMAT binary)", data[0])
    else:
        fmt = " (FORMAT binary)" if cand == "typed-bin" else ""
        for topic, d in zip(TYPED, data):
            cur.copy_expert(f"COPY b.{tname(topic)} FROM STDIN{fmt}", d)
    conn.commit()
    return time.perf_counter() - t0


def partitions_of(cur, cand):
    if cand in ("copy", "upsert"):
        cur.execute("SELECT DISTINCT topic, partition FROM b.t")
        return [(t, p) for t, p in cur.fetchall()]
    if cand.startswith("log"):
        cur.execute("SELECT DISTINCT stream, partition FROM b.t")
        return cur.fetchall()
    out = []
    for topic in TYPED:
        cur.execute(f"SELECT DISTINCT stream, partition FROM b.{tname(topic)}")
        out += [(topic, s, p) for s, p in cur.fetchall()]
    return out


def log_table(cand, key):
    """(table, record id column, stream, partition) of one partition of an appended candidate."""
    if cand.startswith("log"):
        return ("b.t", "record_id") + tuple(key)
    return f"b.{tname(key[0])}", ID_FIELD[key[0]], key[1], key[2]


def compact(conn, cand):
    """Deletes every superseded version, one partition per transaction, as pgsink.c's compact() does;
    returns (seconds, rows deleted)."""
    cur = conn.cursor()
    parts = partitions_of(cur, cand)
    conn.commit()
    deleted = 0
    t0 = time.perf_counter()
    for key in parts:
        table, idcol, s, p = log_table(cand, key)
        cur.execute(f"DELETE FROM {table} WHERE ctid = ANY(ARRAY(SELECT ctid FROM (SELECT ctid, row_number() OVER"
                    f" (PARTITION BY {idcol} ORDER BY \"offset\" DESC) AS rn FROM {table}"
                    " WHERE stream = %s AND partition = %s) v WHERE rn > 1))", (s, p))
        deleted += cur.rowcount
        conn.commit()
    return time.perf_counter() - t0, deleted


class Discard:
    def write(self, b):
        return len(b)


def restore(conn, cand):
    """Reads every partition's latest versions in offset order, as pgsink_load_records; (seconds, rows)."""
    cur = conn.cursor()
    parts = partitions_of(cur, cand)
    conn.commit()
    rows = 0
    t0 = time.perf_counter()
    for i, key in enumerate(parts):
        if cand in ("copy", "upsert"):
            sql, args = ("SELECT \"offset\", value FROM b.t WHERE consumer_group = %s AND topic = %s"
                         " AND partition = %s ORDER BY \"offset\"", (GROUP,) + tuple(key))
        else:  # pgsink.c's LATEST_SQL: each record's version of the highest offset
            table, idcol, st, p = log_table(cand, key)
            cols = "l.value" if cand.startswith("log") else ", ".join("l." + c for c, _ in TYPED[key[0]])
            sql, args = (f"SELECT l.\"offset\", {cols} FROM (SELECT DISTINCT ON ({idcol}) * FROM {table}"
                         f" WHERE stream = %s AND partition = %s ORDER BY {idcol}, \"offset\" DESC) l"
                         " ORDER BY l.\"offset\"", (st, p))
        # COPY out in binary and discard: the server's side of a restore, not Python's per-row cost
        cur.copy_expert(cur.mogrify(f"COPY ({sql}) TO STDOUT (FORMAT binary)", args).decode(), Discard())
        rows += cur.rowcount
        conn.commit()
    return time.perf_counter() - t0, rows


def disk(cur):
    cur.execute("SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0) FROM pg_class c"
                " JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'b' AND c.relkind = 'r'")
    return cur.fetchone()[0]


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--dsn", required=True)
    p.add_argument("--scale", type=float, default=10)
    p.add_argument("--replicas", type=int, default=23)
    p.add_argument("--partitions", type=int, default=16)
    p.add_argument("--flush", type=int, default=50000, help="events per flush (the worker's default)")
    p.add_argument("--rounds", type=int, default=3, help="runs of each candidate; the median is reported")
    p.add_argument("--candidates", default="copy,upsert,log,log-bin,log-noidx,typed,typed-bin")
    a = p.parse_args()
    t0 = time.perf_counter()
    events, flushes = build_flushes(a)
    nrows = sum(len(f) for f in flushes)
    print(f"{events} events (qsgen --scale {a.scale:g} --replicas {a.replicas}, encounters and deliveries),"
          f" {a.partitions} partitions, {len(flushes)} flushes of {a.flush}: {nrows} rows persisted"
          f" (built in {time.perf_counter() - t0:.0f} s)", file=sys.stderr)
    conn = psycopg2.connect(a.dsn)
    cur = conn.cursor()
    cur.execute("SELECT version()")
    version = cur.fetchone()[0].split(" on ")[0]
    conn.commit()
    cands = a.candidates.split(",")
    res = {c: [] for c in cands}
    # Rounds interleave the candidates, so a change in the machine's load touches all of them alike.
    for r in range(a.rounds):
        for cand in cands:
            setup(cur, cand)
            conn.commit()
            cur.execute("CHECKPOINT")
            ids = Dict()
            w = sum(write_flush(conn, cand, f, ids) for f in flushes)
            size = disk(cur)
            conn.commit()
            c_s, c_rows = compact(conn, cand) if cand.startswith(("log", "typed")) else (0.0, 0)
            r_s, r_rows = restore(conn, cand) if cand != "copy" else (0.0, 0)  # copy keeps no key
            res[cand].append((w, c_s, c_rows, r_s, r_rows, size))
            print(f"  round {r + 1} {cand}: write {w:.2f} s, compact {c_s:.2f} s ({c_rows} rows),"
                  f" restore {r_s:.2f} s ({r_rows} rows), {size / 2**20:.0f} MiB", file=sys.stderr)
    cur.execute("DROP SCHEMA IF EXISTS b CASCADE")
    conn.commit()

    def med(xs):
        return sorted(xs)[len(xs) // 2]

    base = med([x[0] for x in res["copy"]]) if "copy" in res else None
    print(f"sink candidates, {datetime.datetime.utcnow():%Y-%m-%dT%H:%MZ}, {version}; {nrows} rows"
          f" ({events} events, {len(flushes)} flushes), median of {a.rounds}")
    print(f"{'candidate':<10} {'write s':>8} {'x COPY':>7} {'rows/s':>9} {'compact s':>9} {'x COPY':>7}"
          f" {'restore s/M':>11} {'MiB':>6}")
    for cand in cands:
        w = med([x[0] for x in res[cand]])
        c = med([x[1] for x in res[cand]])
        rs = med([x[3] / x[4] * 1e6 if x[4] else 0.0 for x in res[cand]])
        size = med([x[5] for x in res[cand]]) / 2**20
        print(f"{cand:<10} {w:8.2f} {w / base if base else 0:7.2f} {nrows / w:9.0f} {c:9.2f}"
              f" {c / base if base else 0:7.2f} {rs:11.2f} {size:6.0f}")
    print("  x COPY = time / the plain COPY's (copy) in the same run; restore s/M = seconds per million"
          " records restored (latest versions, offset order); MiB = tables + indexes after the writes")


if __name__ == "__main__":
    main()
