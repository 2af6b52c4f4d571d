-- 001_core.sql: the worker's tables. Applied once by `qualstream migrate`,
-- recorded in qualstream.schema_migrations.

CREATE SCHEMA IF NOT EXISTS qualstream;

-- Aggregate state: one row per plan, measure, stratum and period. Workers add
-- signed deltas (numerator = numerator + EXCLUDED.numerator), so rows from
-- several workers merge, and a retraction can leave a row at 0/0.
CREATE TABLE qualstream.measure_period (
    plan_id      text        NOT NULL,
    measure      text        NOT NULL,
    stratum      text        NOT NULL,
    grain        text        NOT NULL CHECK (grain IN ('month', 'quarter', 'year')),
    period_start date        NOT NULL,
    numerator    bigint      NOT NULL,
    denominator  bigint      NOT NULL,
    updated_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (plan_id, measure, stratum, grain, period_start)
);

-- Where each partition resumes. Written in the same transaction as the deltas
-- it covers; the UPDATE ... WHERE next_offset = <expected> is the fence that
-- refuses a worker which lost the partition.
CREATE TABLE qualstream.consumer_offsets (
    consumer_group text   NOT NULL,
    topic          text   NOT NULL,
    partition      int    NOT NULL,
    next_offset    bigint NOT NULL,
    PRIMARY KEY (consumer_group, topic, partition)
);

-- The latest message of every record (encounter_id, delivery_id, event_id):
-- the entity state a partition's new owner replays to retract corrections.
CREATE TABLE qualstream.record_latest (
    consumer_group text   NOT NULL,
    topic          text   NOT NULL,
    partition      int    NOT NULL,
    record_id      text   NOT NULL,
    "offset"       bigint NOT NULL,
    value          bytea  NOT NULL,
    PRIMARY KEY (consumer_group, topic, partition, record_id)
);

-- Every message that could not be used; published to topics.dead_letters
-- after commit (published_at set once the broker acknowledged it).
CREATE TABLE qualstream.dead_letter (
    id             bigserial PRIMARY KEY,
    consumer_group text        NOT NULL,
    topic          text        NOT NULL,
    partition      int         NOT NULL,
    "offset"       bigint      NOT NULL,
    key            bytea,
    value          bytea,
    reason         text        NOT NULL,
    detected_at    timestamptz NOT NULL DEFAULT now(),
    published_at   timestamptz,
    UNIQUE (consumer_group, topic, partition, "offset")
);
CREATE INDEX dead_letter_unpublished ON qualstream.dead_letter (id) WHERE published_at IS NULL;

-- Rule parameters: data, not code. The worker reads the counting rules at
-- start-up (a change to them needs a replay); the views read the rest at
-- query time.
CREATE TABLE qualstream.rule (
    name        text    PRIMARY KEY,
    value       numeric NOT NULL,
    description text    NOT NULL
);
INSERT INTO qualstream.rule (name, value, description) VALUES
    ('cw13_timely_days', 180, 'CW13: an original encounter is on time when submitted at most this many days after the ending date of service (seed: within 180 days). Counting rule: changing it needs a replay.'),
    ('ntsv_target', 0.239, 'NTSV cesarean rate target per hospital and per plan (Covered California: 23.9%). Lower is better.');

-- CW13 phase-in by demonstration year and source (seed, California variations).
-- A row applies to calendar years first_year..last_year (NULL: and later).
CREATE TABLE qualstream.cw13_phase (
    first_year  int     NOT NULL,
    last_year   int,
    source      text    NOT NULL CHECK (source IN ('MEDICARE', 'MEDICAID')),
    first_month int     NOT NULL CHECK (first_month BETWEEN 1 AND 12),
    last_month  int     NOT NULL CHECK (last_month BETWEEN 1 AND 12),
    timeliness  boolean NOT NULL,
    PRIMARY KEY (first_year, source)
);
INSERT INTO qualstream.cw13_phase VALUES
    (2016, 2016, 'MEDICARE', 9, 12, false), -- DY2: Medicare frequency from September 2016
    (2017, 2017, 'MEDICARE', 1, 12, true),  -- DY3: Medicare frequency and timeliness
    (2017, 2017, 'MEDICAID', 6, 12, false), -- DY3: Medicaid frequency from June 2017
    (2018, NULL, 'MEDICARE', 1, 12, true),  -- DY4, DY5 and later: full CW13
    (2018, NULL, 'MEDICAID', 1, 12, true);

-- Rates per period, with the NTSV target beside the NTSV rate.
CREATE VIEW qualstream.measure_rate AS
SELECT m.plan_id, m.measure, m.stratum, m.grain, m.period_start, m.numerator, m.denominator,
       CASE WHEN m.denominator > 0 THEN m.numerator::numeric / m.denominator END AS rate,
       CASE WHEN m.measure = 'NTSV_CSECTION' THEN (SELECT value FROM qualstream.rule WHERE name = 'ntsv_target') END AS target
FROM qualstream.measure_period m;

-- NTSV cesarean rate per hospital and period against the target.
CREATE VIEW qualstream.ntsv_hospital AS
SELECT plan_id, substr(stratum, length('hospital:') + 1) AS hospital_id, grain, period_start,
       numerator AS ntsv_cesareans, denominator AS ntsv_deliveries, rate, target,
       rate > target AS above_target
FROM qualstream.measure_rate
WHERE measure = 'NTSV_CSECTION' AND stratum LIKE 'hospital:%' AND denominator > 0;

-- Every month CW13 evaluates for a plan and source, from the plan's first
-- month with a submission up to the stream's clock: the latest month in which
-- any plan submitted anything (event time, so a replay of history reads the
-- same). A month with no submission at all has no measure_period row and
-- shows as missed.
CREATE VIEW qualstream.cw13_month AS
WITH clock AS (
    SELECT max(period_start) AS month FROM qualstream.measure_period
    WHERE measure = 'CW13_SUBMISSIONS' AND grain = 'month' AND numerator > 0
), plans AS (
    SELECT plan_id, min(period_start) AS first_month FROM qualstream.measure_period
    WHERE measure = 'CW13_SUBMISSIONS' AND grain = 'month' AND numerator > 0 GROUP BY plan_id
), months AS (
    SELECT p.plan_id, ph.source, m::date AS month, ph.timeliness
    FROM plans p
    CROSS JOIN clock
    CROSS JOIN LATERAL generate_series(p.first_month, clock.month, interval '1 month') AS m
    JOIN qualstream.cw13_phase ph
      ON extract(year FROM m) BETWEEN ph.first_year AND coalesce(ph.last_year, 9999)
     AND extract(month FROM m) BETWEEN ph.first_month AND ph.last_month
)
SELECT mo.plan_id, mo.source, mo.month,
       coalesce(s.numerator, 0) AS submissions,
       coalesce(s.numerator, 0) > 0 AS frequency_met,
       mo.timeliness AS timeliness_evaluated,
       t.numerator AS timely, t.denominator AS originals,
       CASE WHEN t.denominator > 0 THEN t.numerator::numeric / t.denominator END AS timeliness_rate
FROM months mo
LEFT JOIN qualstream.measure_period s
       ON s.plan_id = mo.plan_id AND s.measure = 'CW13_SUBMISSIONS' AND s.stratum = mo.source
      AND s.grain = 'month' AND s.period_start = mo.month
LEFT JOIN qualstream.measure_period t
       ON t.plan_id = mo.plan_id AND t.measure = 'CW13_TIMELY' AND t.stratum = mo.source
      AND t.grain = 'month' AND t.period_start = mo.month;
