#!/usr/bin/python3
"""alert_latency.py: the alert-latency benchmark's driver (see README.md here).

Measures the time from producing an encounter that raises an alert to that alert
arriving on the alert topic, against a baseline taken in the same run: the plain
Kafka round trip of one message to a topic of the same cluster, received by a
subscribed consumer. alert_latency.sh starts the servers and calls this.

  alert_latency.py topics --flush-ms MS...        the topic:partitions specs to create
  alert_latency.py run --cluster NAME --bootstrap HOST:PORT --dsn DSN --build DIR
                       --work DIR --flush-ms MS... [--probes N] [--results FILE]
  alert_latency.py table FILE...                  the results table of one or more runs

`run`, for each flush.interval.ms setting: a fresh database, group and topic set;
`qualstream migrate`; `qualstream run` live (log.level=debug); one consumer
subscribed to the ping topic and the alert topic; a warm-up (a ping and a late
encounter, waited for until the worker has committed it and its alert arrived);
then --probes rounds of: a random gap holding a ping (the baseline), a probe,
sent without waiting for either to come back. A probe is an
ORIGINAL encounter with its own encounter_id and member_id, service_to D and
submitted_at D + 200 days, so the worker raises LATE_SUBMISSION as it applies
it; its latency runs from just before produce() to the consumer's receipt of
the alert naming its encounter_id. Every probe must produce exactly one
message, RAISED LATE_SUBMISSION with the right alert_id, key and due_date, and
exactly one published row in qualstream.alerts; anything else fails the run.
"""

import argparse
import datetime
import io
import json
import math
import os
import random
import signal
import statistics
import struct
import subprocess
import sys
import threading
import time
from pathlib import Path

import avro.io
import psycopg2
from confluent_kafka import Consumer, KafkaError, Producer

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "tools"))
import qsgen  # noqa: E402

PLAN = "PLAN-LAT"
# Every probe has the same dates, so the partitions' event clocks stop moving
# after the warm-up and the plan alerts (months, timeliness) settle there:
# D + 200 days is 2019-07-08, early in its month, so no month warning either.
SERVICE_TO = datetime.date(2018, 12, 20)
LATE_DAYS = 200
TIMELY_DAYS = 180  # cw13_timely_days: due_date = service_to + 180
INPUT_PARTITIONS = 4
PING_TOPIC = "alat-ping"


def topic_names(flush_ms):
    p = f"alat-f{flush_ms}"
    return {"encounters": f"{p}-encounters", "deliveries": f"{p}-deliveries",
            "member-events": f"{p}-member-events", "dead_letters": f"{p}-dead-letters",
            "alerts": f"{p}-alerts"}


def topic_specs(flush_list):
    specs = [f"{PING_TOPIC}:1"]
    for ms in flush_list:
        t = topic_names(ms)
        specs += [f"{t[k]}:{INPUT_PARTITIONS}" for k in ("encounters", "deliveries", "member-events")]
        specs += [f"{t['dead_letters']}:1", f"{t['alerts']}:1"]
    return specs


# --------------------------------------------------------------------------- decoding

class AlertDecoder:
    """Confluent-framed Avro values: magic 0, the schema id, then the body, decoded
    with <registry>/<id>.avsc (logical types stripped as qsgen.parse_schema does)."""

    def __init__(self, registry):
        self.registry = Path(registry)
        self.readers = {}

    def decode(self, value):
        if value is None or len(value) < 5 or value[0] != 0:
            raise ValueError(f"not Confluent framing: {value[:8]!r}")
        sid = struct.unpack(">I", value[1:5])[0]
        if sid not in self.readers:
            schema = qsgen.parse_schema((self.registry / f"{sid}.avsc").read_text())
            self.readers[sid] = avro.io.DatumReader(schema)
        buf = io.BytesIO(value[5:])
        rec = self.readers[sid].read(avro.io.BinaryDecoder(buf))
        if buf.tell() != len(value) - 5:
            raise ValueError(f"{len(value) - 5 - buf.tell()} trailing bytes after the record")
        return rec


# --------------------------------------------------------------------------- statistics

def pct(values, p):
    """Nearest-rank percentile: the smallest value with at least p% of them at or below it."""
    s = sorted(values)
    return s[max(0, math.ceil(p / 100 * len(s)) - 1)]


def summary(values):
    return {"n": len(values), "p50": pct(values, 50), "p95": pct(values, 95), "max": max(values),
            "mean": statistics.fmean(values)}


# --------------------------------------------------------------------------- the reader

class Reader:
    """One consumer subscribed to the ping topic and an alert topic, polled by a
    thread that stamps each message on receipt (time.perf_counter)."""

    def __init__(self, bootstrap, group, topics, decoder):
        # Default fetch settings, like the worker's consumer: the baseline is a
        # plain subscribed consumer.
        self.consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group,
                                  "auto.offset.reset": "earliest", "enable.auto.commit": False})
        self.consumer.subscribe(topics)
        self.decoder = decoder
        self.cond = threading.Condition()
        self.pings = {}    # ping id -> receive time
        self.alerts = {}   # encounter_id -> [(receive time, key, record)]
        self.others = 0    # alerts about no probe (plan alerts)
        self.errors = []
        self.stop = False
        self.thread = threading.Thread(target=self._loop, daemon=True)
        self.thread.start()

    def _loop(self):
        while not self.stop:
            msg = self.consumer.poll(0.1)
            t1 = time.perf_counter()
            if msg is None:
                continue
            if msg.error():
                if msg.error().code() != KafkaError._PARTITION_EOF:
                    with self.cond:
                        self.errors.append(str(msg.error()))
                continue
            with self.cond:
                try:
                    if msg.topic() == PING_TOPIC:
                        self.pings[msg.value().decode()] = t1
                    else:
                        rec = self.decoder.decode(msg.value())
                        eid = rec.get("encounter_id")
                        if eid is None:
                            self.others += 1
                        else:
                            self.alerts.setdefault(eid, []).append((t1, msg.key(), rec))
                except Exception as e:  # a bad message is a wrong answer, reported at the end
                    self.errors.append(f"{msg.topic()}[{msg.partition()}]@{msg.offset()}: {e}")
                self.cond.notify_all()

    def wait(self, what, key, timeout):
        """Receive time of ping `key` (what="ping") or of the first alert about
        encounter `key` (what="alert"), or None after timeout seconds."""
        deadline = time.monotonic() + timeout
        table = self.pings if what == "ping" else self.alerts
        with self.cond:
            while key not in table:
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                self.cond.wait(left)
            got = table[key]
            return got if what == "ping" else got[0][0]

    def close(self):
        self.stop = True
        self.thread.join(10)
        self.consumer.close()


# --------------------------------------------------------------------------- the worker

class Worker:
    def __init__(self, binary, conf, log, pidfile):
        self.log = log
        self.out = open(log, "w")
        self.proc = subprocess.Popen([str(binary), "run", "-c", str(conf)], stdout=self.out,
                                     stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        self.pidfile = pidfile
        pidfile.write_text(f"{self.proc.pid}\n")

    def check(self):
        if self.proc.poll() is not None:
            raise SystemExit(f"worker exited {self.proc.returncode}; log {self.log}:\n" + self.tail())

    def tail(self, n=30):
        return "".join(open(self.log).readlines()[-n:])

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.out.close()
        self.pidfile.unlink(missing_ok=True)
        return self.proc.returncode

    def flush_ms(self):
        """Durations of the flushes that wrote events (debug lines "flushed N events in M ms")."""
        out = []
        for line in open(self.log):
            i = line.find("flushed ")
            if i >= 0 and " events in " in line:
                out.append(int(line[i:].split(" events in ")[1].split()[0]))
        return out


def admin(dsn, sql):
    conn = psycopg2.connect(dsn)
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute(sql)
    finally:
        conn.close()


# --------------------------------------------------------------------------- one setting

def encounter(tag, i):
    d = qsgen.day(SERVICE_TO)
    eid = f"ENC-{tag}-{i:04d}"
    return dict(encounter_id=eid, original_encounter_id=None, plan_id=PLAN,
                member_id=f"MBR-{tag}-{i:04d}", source="MEDICARE", frequency="ORIGINAL",
                service_from=d, service_to=d, adjudicated_at=(d + 10) * qsgen.DAY_MS + 43_200_000,
                submitted_at=(d + LATE_DAYS) * qsgen.DAY_MS + 43_200_000, ed_visit=False)


def produce_one(producer, topic, key, value):
    """Produces one message and waits for its acknowledgement; returns (partition, offset)."""
    box = {}
    producer.produce(topic, key=key, value=value, on_delivery=lambda err, msg: box.update(err=err, msg=msg))
    producer.flush(30)
    if box.get("err") is not None or "msg" not in box:
        raise SystemExit(f"producing to {topic}: {box.get('err', 'no delivery report in 30 s')}")
    return box["msg"].partition(), box["msg"].offset()


def run_setting(a, flush_ms, codec, registry):
    tag = f"{a.cluster}-f{flush_ms}"
    topics = topic_names(flush_ms)
    db = f"qs_alat_{a.cluster}_f{flush_ms}"
    dsn = f"{a.dsn} dbname={db}"
    admin(a.dsn, f"DROP DATABASE IF EXISTS {db}")
    admin(a.dsn, f"CREATE DATABASE {db}")
    work = Path(a.work)
    conf = work / f"{tag}.conf"
    group = f"qs-alat-{tag}"
    conf.write_text("\n".join([
        "# written by tests/bench/alert_latency.py",
        f"kafka.bootstrap.servers={a.bootstrap}",
        f"kafka.group.id={group}",
        f"topics.encounters={topics['encounters']}",
        f"topics.deliveries={topics['deliveries']}",
        f"topics.member_events={topics['member-events']}",
        f"topics.dead_letters={topics['dead_letters']}",
        f"topics.alerts={topics['alerts']}",
        f"pg.conninfo={dsn}",
        f"schema.registry.dir={registry}",
        f"flush.interval.ms={flush_ms}",
        "log.level=debug",
        "",
    ]))
    binary = Path(a.build) / "qualstream"
    mig = subprocess.run([str(binary), "migrate", "-c", str(conf)], capture_output=True, text=True)
    if mig.returncode != 0:
        raise SystemExit(f"[{tag}] qualstream migrate exited {mig.returncode}:\n{mig.stdout}{mig.stderr}")

    rng = random.Random(a.seed * 100_003 + flush_ms)
    # linger.ms=0: a probe leaves at once; the worker's own producers keep their settings.
    producer = Producer({"bootstrap.servers": a.bootstrap, "linger.ms": 0, "acks": "all"})
    reader = Reader(a.bootstrap, f"qs-alat-reader-{tag}", [PING_TOPIC, topics["alerts"]],
                    AlertDecoder(registry))
    worker = Worker(binary, conf, work / f"{tag}.worker.log", work / "worker.pid")
    t_start = time.monotonic()
    probes = {}  # encounter_id -> (t0 perf_counter, t0 wall, record)
    pings = []
    try:
        # Warm-up: the reader has joined (a ping comes back), the worker has
        # joined and committed an event (consumer_offsets), and that event's
        # alert has come back through the outbox.
        ping_id = f"{tag}:warm"
        produce_one(producer, PING_TOPIC, None, ping_id.encode())
        if reader.wait("ping", ping_id, 60) is None:
            raise SystemExit(f"[{tag}] warm-up ping not received in 60 s")
        rec = encounter(tag, 0)
        part, off = produce_one(producer, topics["encounters"], rec["member_id"].encode(),
                                codec.frame(1, rec))
        deadline = time.monotonic() + 90
        conn = psycopg2.connect(dsn)
        conn.autocommit = True
        try:
            while True:
                worker.check()
                with conn.cursor() as cur:
                    cur.execute("SELECT next_offset FROM qualstream.consumer_offsets"
                                " WHERE consumer_group = %s AND topic = %s AND partition = %s",
                                (group, topics["encounters"], part))
                    row = cur.fetchone()
                if row and row[0] > off:
                    break
                if time.monotonic() > deadline:
                    raise SystemExit(f"[{tag}] the worker did not commit the warm-up in 90 s; log:\n"
                                     + worker.tail())
                time.sleep(0.05)
        finally:
            conn.close()
        probes[rec["encounter_id"]] = (None, None, rec)
        if reader.wait("alert", rec["encounter_id"], 30 + 3 * flush_ms / 1000) is None:
            raise SystemExit(f"[{tag}] the warm-up's alert did not arrive; log:\n" + worker.tail())
        warm_s = time.monotonic() - t_start

        # Probes and pings go out on their own random schedule, never waiting
        # for an answer: a gap of U(200, 500) ms before each probe, with a ping
        # at a random point of it. Waiting would lock each send to the previous
        # receipt, and so to the flush cycle and the consumers' fetch cycles
        # (on the mock an empty fetch is answered only after fetch.wait.max.ms);
        # this way the probes fall at random phases of all of them, and a flush
        # may carry several probes, as it would carry several real events.
        sent_pings = {}  # ping id -> t0
        order = []
        for i in range(1, a.probes + 1):
            gap = rng.uniform(0.2, 0.5)
            before = rng.uniform(0, gap)
            g0 = time.perf_counter()
            time.sleep(before)
            ping_id = f"{tag}:{i}"
            t0 = time.perf_counter()
            produce_one(producer, PING_TOPIC, None, ping_id.encode())
            sent_pings[ping_id] = t0
            time.sleep(max(0.0, gap - (time.perf_counter() - g0)))
            worker.check()

            rec = encounter(tag, i)
            value = codec.frame(1, rec)
            key = rec["member_id"].encode()
            w0 = time.time()
            t0 = time.perf_counter()
            produce_one(producer, topics["encounters"], key, value)
            probes[rec["encounter_id"]] = (t0, w0, rec)
            order.append(rec["encounter_id"])

        deadline = time.monotonic() + 30 + 3 * flush_ms / 1000
        lat = []
        for eid in order:
            t1 = reader.wait("alert", eid, max(0.0, deadline - time.monotonic()))
            if t1 is None:
                raise SystemExit(f"[{tag}] probe {eid}: no alert in time; log:\n" + worker.tail())
            lat.append((t1 - probes[eid][0]) * 1000)
        for ping_id, t0 in sent_pings.items():
            t1 = reader.wait("ping", ping_id, max(0.0, deadline - time.monotonic()))
            if t1 is None:
                raise SystemExit(f"[{tag}] ping {ping_id} not received in time")
            pings.append((t1 - t0) * 1000)
        # Late duplicates would arrive within a few flushes.
        time.sleep(max(2.0, 3 * flush_ms / 1000))
    finally:
        rc = worker.stop()
        reader.close()
        producer.flush(10)
    if rc != 0:
        raise SystemExit(f"[{tag}] worker exited {rc} on SIGTERM; log:\n" + worker.tail())

    # ---- the answers
    wrong = list(reader.errors)
    published = {}
    with psycopg2.connect(dsn) as conn, conn.cursor() as cur:
        cur.execute("SELECT encounter_id, kind, state, published_at IS NOT NULL,"
                    " extract(epoch FROM published_at)::float8 FROM qualstream.alerts_outbox"
                    " WHERE consumer_group = %s AND encounter_id IS NOT NULL", (group,))
        rows = cur.fetchall()
        cur.execute("SELECT count(*) FROM qualstream.alerts WHERE consumer_group = %s"
                    " AND encounter_id IS NULL", (group,))
        plan_rows = cur.fetchone()[0]
    for eid, kind, state, is_pub, pub_at in rows:
        published.setdefault(eid, []).append((kind, state, is_pub, pub_at))
    for eid in set(reader.alerts) - set(probes):
        wrong.append(f"alert about an encounter no probe sent: {eid}")
    to_published = []
    detail = []  # per probe: wall clock at t0, published_at, latency (for --keep analysis)
    for eid, (t0, w0, rec) in probes.items():
        got = reader.alerts.get(eid, [])
        want_id = f"LATE_SUBMISSION:{PLAN}:{eid}"
        want_due = qsgen.day(SERVICE_TO) + TIMELY_DAYS
        if len(got) != 1:
            wrong.append(f"{eid}: {len(got)} alert messages, want 1: "
                         + ", ".join(f"{r['kind']}/{r['state']}" for _, _, r in got))
        for _, key, r in got:
            if (r["kind"], r["state"], r["alert_id"], r["plan_id"], r["member_id"], r["source"],
                    r["due_date"]) != ("LATE_SUBMISSION", "RAISED", want_id, PLAN, rec["member_id"],
                                       "MEDICARE", want_due):
                wrong.append(f"{eid}: got {r}")
            if key != want_id.encode():
                wrong.append(f"{eid}: message key {key!r}, want {want_id!r}")
        dbrows = published.get(eid, [])
        if [(k, s, p) for k, s, p, _ in dbrows] != [("LATE_SUBMISSION", "RAISED", True)]:
            wrong.append(f"{eid}: qualstream.alerts rows {dbrows}, want one published RAISED LATE_SUBMISSION")
        elif w0 is not None:
            to_published.append((dbrows[0][3] - w0) * 1000)
            detail.append({"id": eid, "t0": w0, "published": dbrows[0][3], "ms": (got[0][0] - t0) * 1000})

    flushes = worker.flush_ms()
    res = {
        "cluster": a.cluster, "flush_ms": flush_ms, "probes": len(lat), "alert": summary(lat),
        "ping": summary(pings), "ratio_p50": pct(lat, 50) / pct(pings, 50),
        "ratio_p95": pct(lat, 95) / pct(pings, 95), "ratio_max": max(lat) / max(pings),
        "published_p50": pct(to_published, 50) if to_published else None,
        "flush_p50": pct(flushes, 50) if flushes else None, "flushes": len(flushes),
        "plan_alerts": reader.others, "plan_alert_rows": plan_rows, "warm_s": warm_s,
        "total_s": time.monotonic() - t_start, "verify": "OK" if not wrong else "FAILED",
        "wrong": wrong[:20], "alert_ms": lat, "ping_ms": pings, "detail": detail,
    }
    for w in wrong[:20]:
        print(f"[{tag}] WRONG: {w}", file=sys.stderr)
    return res


# --------------------------------------------------------------------------- table

def print_table(results, out=sys.stdout):
    p = lambda *a: print(*a, file=out)  # noqa: E731
    p(f"{'cluster':7} {'flush ms':>8} {'probes':>6} | {'alert p50':>9} {'p95':>7} {'max':>7} |"
      f" {'ping p50':>8} {'p95':>6} {'max':>6} | {'ratio p50':>9} {'p95':>6} {'max':>6} |"
      f" {'->published':>11} {'flush':>5} | verify")
    def ratio(x):
        return f"{x:.1f}" if x < 10 else f"{x:.0f}"

    for r in results:
        al, pg = r["alert"], r["ping"]
        pub = "-" if r["published_p50"] is None else f"{r['published_p50']:.0f}"
        fl = "-" if r["flush_p50"] is None else f"{r['flush_p50']}"
        p(f"{r['cluster']:7} {r['flush_ms']:>8} {r['probes']:>6} | {al['p50']:>9.1f} {al['p95']:>7.1f}"
          f" {al['max']:>7.1f} | {pg['p50']:>8.2f} {pg['p95']:>6.2f} {pg['max']:>6.2f} |"
          f" {ratio(r['ratio_p50']):>9} {ratio(r['ratio_p95']):>6} {ratio(r['ratio_max']):>6} | {pub:>11} {fl:>5} |"
          f" {r['verify']}")
    p("  ms, nearest-rank percentiles. alert = produce() of a late encounter -> its LATE_SUBMISSION on the")
    p("  alert topic; ping = produce() -> receipt of one message by a subscribed consumer (the baseline);")
    p("  ratio = alert / ping; ->published = median produce() -> the row's published_at (after the broker")
    p("  acknowledged the alert); flush = median duration of a flush that wrote events (worker debug log).")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("topics")
    s.add_argument("--flush-ms", type=int, nargs="+", required=True)
    s = sub.add_parser("run")
    s.add_argument("--cluster", required=True, help="a label: mock or real")
    s.add_argument("--bootstrap", required=True)
    s.add_argument("--dsn", required=True, help="admin DSN of the PostgreSQL server (dbname is appended)")
    s.add_argument("--build", required=True, help="the directory holding qualstream")
    s.add_argument("--work", required=True)
    s.add_argument("--flush-ms", type=int, nargs="+", default=[1000, 100])
    s.add_argument("--probes", type=int, default=40)
    s.add_argument("--seed", type=int, default=1)
    s.add_argument("--results", help="append one JSON line per setting here")
    s = sub.add_parser("table")
    s.add_argument("files", nargs="+")
    a = ap.parse_args(argv)

    if a.cmd == "topics":
        print("\n".join(topic_specs(a.flush_ms)))
        return 0
    if a.cmd == "table":
        results = [json.loads(line) for f in a.files for line in open(f) if line.strip()]
        print_table(results)
        return 0 if all(r["verify"] == "OK" for r in results) else 1

    registry = qsgen.write_registry(Path(a.work) / "registry")
    codec = qsgen.Codec()
    results = []
    for ms in a.flush_ms:
        print(f"  [{a.cluster}] flush.interval.ms={ms}: {a.probes} probes", file=sys.stderr)
        r = run_setting(a, ms, codec, registry)
        print(f"  [{a.cluster}] flush.interval.ms={ms}: alert p50 {r['alert']['p50']:.1f} ms, ping p50"
              f" {r['ping']['p50']:.2f} ms, {r['total_s']:.1f} s, {r['verify']}", file=sys.stderr)
        results.append(r)
        if a.results:
            with open(a.results, "a") as f:
                f.write(json.dumps(r) + "\n")
    if not a.results:
        print_table(results)
    return 0 if all(r["verify"] == "OK" for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
