-- 004_alerts.sql: the alert feed (README "Alerts"). Encounter alerts come
-- from the worker; the alerts about plans are evaluated here, by
-- alert_evaluate(), inside the flush transaction that changed their inputs.

-- Each partition's event-time clock (ms since the epoch), stored with its
-- offset so a restart resumes the same clock. NULL until the partition has
-- read an event with an event time.
ALTER TABLE qualstream.consumer_offsets ADD COLUMN event_clock bigint;

-- The clock the plan alerts were last evaluated at, per group and topic: the
-- watermark only moves forward, even when a partition that joins late reads
-- events older than the others have.
CREATE TABLE qualstream.alert_watermark (
    consumer_group text   NOT NULL,
    topic          text   NOT NULL,
    clock_ms       bigint NOT NULL,
    PRIMARY KEY (consumer_group, topic)
);

-- Alert parameters: data, not code. alert_due_soon_days is a counting rule
-- the worker reads at start-up; the others are read by alert_evaluate().
INSERT INTO qualstream.rule (name, value, description) VALUES
    ('alert_due_soon_days', 150, 'Alerts: an owed original encounter raises DUE_SOON at this many days after service_to (issue default 150); OVERDUE follows at cw13_timely_days + 1. Read at start-up.'),
    ('alert_month_warning_days', 7, 'Alerts: MONTH_WITHOUT_SUBMISSION_WARNING is raised from this many days before the end of a month still without a submission. Assumption.'),
    ('alert_ntsv_min_denominator', 30, 'Alerts: NTSV_ABOVE_TARGET needs at least this many NTSV deliveries at the hospital in the 12-month window. Assumption.'),
    ('alert_timeliness_min_denominator', 20, 'Alerts: TIMELINESS_AT_RISK needs at least this many original encounters submitted in the year. Assumption.');

-- Every transition of every alert, in the order found: the outbox that
-- publishes to topics.alerts (published_at set once the broker acknowledged
-- the message).
CREATE TABLE qualstream.alerts (
    id             bigserial   PRIMARY KEY,
    consumer_group text        NOT NULL,
    alert_id       text        NOT NULL,
    kind           text        NOT NULL CHECK (kind IN ('LATE_SUBMISSION', 'DUE_SOON', 'OVERDUE',
                                   'MONTH_WITHOUT_SUBMISSION', 'MONTH_WITHOUT_SUBMISSION_WARNING',
                                   'NTSV_ABOVE_TARGET', 'TIMELINESS_AT_RISK')),
    state          text        NOT NULL CHECK (state IN ('RAISED', 'RESOLVED')),
    plan_id        text        NOT NULL,
    source         text,
    member_id      text,
    encounter_id   text,
    hospital_id    text,
    period_start   date,
    due_date       date,
    detected_at    timestamptz NOT NULL,
    details        text        NOT NULL,
    published_at   timestamptz
);
-- alert_evaluate() reads a few measures of measure_period on every flush.
CREATE INDEX measure_period_by_measure ON qualstream.measure_period (measure, grain, period_start);

CREATE INDEX alerts_unpublished ON qualstream.alerts (id) WHERE published_at IS NULL;
CREATE INDEX alerts_by_alert ON qualstream.alerts (consumer_group, alert_id, id);
-- alert_evaluate() reads the open plan alerts on every call: keep that read small.
CREATE INDEX alerts_plan_kinds ON qualstream.alerts (consumer_group, alert_id, id)
    WHERE kind IN ('MONTH_WITHOUT_SUBMISSION', 'MONTH_WITHOUT_SUBMISSION_WARNING', 'NTSV_ABOVE_TARGET',
                   'TIMELINESS_AT_RISK');

-- The conditions that hold now: each alert's latest transition, when it is RAISED.
CREATE VIEW qualstream.alert_open AS
SELECT consumer_group, alert_id, kind, plan_id, source, member_id, encounter_id, hospital_id,
       period_start, due_date, detected_at AS raised_at, details
FROM (SELECT DISTINCT ON (consumer_group, alert_id) *
      FROM qualstream.alerts ORDER BY consumer_group, alert_id, id DESC) latest
WHERE state = 'RAISED';

-- The months CW13 evaluates for each plan and source up to the month of
-- `upto`: from qualstream.plan.cw13_from when set, else from the plan's first
-- month with a submission, through the phase-in of qualstream.cw13_phase.
-- One definition for the cw13_month view (up to the stream's clock) and for
-- the month alerts (up to the encounters watermark).
CREATE FUNCTION qualstream.cw13_calendar(upto date)
RETURNS TABLE (plan_id text, source text, month date, timeliness boolean)
LANGUAGE sql STABLE AS $$
    WITH submitting AS (
        SELECT m.plan_id, min(m.period_start) AS first_month FROM qualstream.measure_period m
        WHERE m.measure = 'CW13_SUBMISSIONS' AND m.grain = 'month' AND m.numerator > 0 GROUP BY m.plan_id
    ), plans AS (
        SELECT coalesce(s.plan_id, p.plan_id) AS plan_id,
               coalesce(p.cw13_from - (extract(day FROM p.cw13_from)::int - 1), s.first_month) AS first_month
        FROM submitting s
        FULL JOIN (SELECT q.plan_id, q.cw13_from FROM qualstream.plan q WHERE q.cw13_from IS NOT NULL) p
               ON p.plan_id = s.plan_id
    )
    SELECT p.plan_id, ph.source, m::date, ph.timeliness
    FROM plans p
    CROSS JOIN LATERAL generate_series(p.first_month, date_trunc('month', upto), interval '1 month') AS m
    JOIN qualstream.cw13_phase ph
      ON extract(year FROM m) BETWEEN ph.first_year AND coalesce(ph.last_year, 9999)
     AND extract(month FROM m) BETWEEN ph.first_month AND ph.last_month
$$;

-- 002's cw13_month over cw13_calendar: same columns, same clock.
CREATE OR REPLACE VIEW qualstream.cw13_month AS
WITH clock AS (
    SELECT max(period_start) AS month FROM qualstream.measure_period
    WHERE measure = 'CW13_SUBMISSIONS' AND grain = 'month' AND numerator > 0
)
SELECT mo.plan_id, mo.source, mo.month,
       coalesce(s.numerator, 0) AS submissions,
       coalesce(s.numerator, 0) > 0 AS frequency_met,
       mo.timeliness AS timeliness_evaluated,
       t.numerator AS timely, t.denominator AS originals,
       CASE WHEN t.denominator > 0 THEN t.numerator::numeric / t.denominator END AS timeliness_rate
FROM clock
CROSS JOIN LATERAL qualstream.cw13_calendar(clock.month) mo
LEFT JOIN qualstream.measure_period s
       ON s.plan_id = mo.plan_id AND s.measure = 'CW13_SUBMISSIONS' AND s.stratum = mo.source
      AND s.grain = 'month' AND s.period_start = mo.month
LEFT JOIN qualstream.measure_period t
       ON t.plan_id = mo.plan_id AND t.measure = 'CW13_TIMELY' AND t.stratum = mo.source
      AND t.grain = 'month' AND t.period_start = mo.month;

-- The plan conditions that hold at the encounters clock date enc_day and the
-- deliveries clock date del_day (NULL: that topic has no clock yet, nothing
-- of its kinds holds). One row per condition, keyed by alert_id.
CREATE FUNCTION qualstream.alert_conditions(enc_day date, del_day date)
RETURNS TABLE (alert_id text, kind text, plan_id text, source text, hospital_id text,
               period_start date, due_date date, details text)
LANGUAGE sql STABLE AS $$
    WITH r AS (
        SELECT (SELECT value FROM qualstream.rule WHERE name = 'alert_month_warning_days')::int AS warning_days,
               (SELECT value FROM qualstream.rule WHERE name = 'alert_ntsv_min_denominator') AS ntsv_min,
               (SELECT value FROM qualstream.rule WHERE name = 'alert_timeliness_min_denominator') AS timely_min,
               (SELECT value FROM qualstream.rule WHERE name = 'ntsv_target') AS ntsv_target
    ), months AS (
        SELECT c.plan_id, c.source, c.month, (c.month + interval '1 month' - interval '1 day')::date AS last_day
        FROM qualstream.cw13_calendar(enc_day) c
        WHERE enc_day IS NOT NULL
          AND NOT EXISTS (SELECT 1 FROM qualstream.measure_period s
                          WHERE s.plan_id = c.plan_id AND s.measure = 'CW13_SUBMISSIONS' AND s.stratum = c.source
                            AND s.grain = 'month' AND s.period_start = c.month AND s.numerator > 0)
    ), ntsv AS (
        SELECT m.plan_id, substr(m.stratum, length('hospital:') + 1) AS hospital_id,
               (date_trunc('month', del_day) - interval '11 months')::date AS window_start,
               sum(m.numerator) AS cesareans, sum(m.denominator) AS deliveries
        FROM qualstream.measure_period m
        WHERE del_day IS NOT NULL AND m.measure = 'NTSV_CSECTION' AND m.grain = 'month'
          AND m.stratum LIKE 'hospital:%'
          AND m.period_start BETWEEN date_trunc('month', del_day) - interval '11 months' AND del_day
        GROUP BY m.plan_id, m.stratum
    ), timely AS (
        SELECT t.plan_id, t.source, t.year, t.numerator, t.denominator, b.benchmark_value
        FROM (SELECT m.plan_id, m.stratum AS source, extract(year FROM m.period_start)::int AS year,
                     m.numerator, m.denominator
              FROM qualstream.measure_period m
              WHERE enc_day IS NOT NULL AND m.measure = 'CW13_TIMELY' AND m.grain = 'year'
                AND m.period_start <= enc_day) t
        -- measure_rule_year's row, looked up directly (that view scans measure_period for its span)
        CROSS JOIN LATERAL (SELECT r.benchmark_value FROM qualstream.measure_rule r
                            WHERE r.measure = 'CW13' AND r.first_year <= t.year
                              AND (r.last_year IS NULL OR r.last_year >= t.year)
                            ORDER BY r.first_year DESC LIMIT 1) b
        WHERE EXISTS (SELECT 1 FROM qualstream.cw13_phase ph
                      WHERE ph.source = t.source AND ph.timeliness
                        AND t.year BETWEEN ph.first_year AND coalesce(ph.last_year, 9999))
    )
    SELECT 'MONTH_WITHOUT_SUBMISSION:' || mo.plan_id || ':' || mo.source || ':' || to_char(mo.month, 'YYYY-MM'),
           'MONTH_WITHOUT_SUBMISSION', mo.plan_id, mo.source, NULL, mo.month, mo.last_day,
           format('%s %s: no encounter submitted in %s, a month CW13 evaluates; frequency is missed for the'
                  ' month unless a submission dated in it is still to arrive.',
                  mo.plan_id, mo.source, to_char(mo.month, 'YYYY-MM'))
    FROM months mo WHERE mo.last_day < enc_day
    UNION ALL
    SELECT 'MONTH_WITHOUT_SUBMISSION_WARNING:' || mo.plan_id || ':' || mo.source || ':' || to_char(mo.month, 'YYYY-MM'),
           'MONTH_WITHOUT_SUBMISSION_WARNING', mo.plan_id, mo.source, NULL, mo.month, mo.last_day,
           format('%s %s: no encounter submitted yet in %s and %s day(s) left; submit at least one by %s to'
                  ' meet CW13 frequency.',
                  mo.plan_id, mo.source, to_char(mo.month, 'YYYY-MM'), mo.last_day - enc_day + 1, mo.last_day)
    FROM months mo CROSS JOIN r
    WHERE mo.last_day >= enc_day AND enc_day >= mo.last_day - r.warning_days
    UNION ALL
    SELECT 'NTSV_ABOVE_TARGET:' || n.plan_id || ':' || n.hospital_id,
           'NTSV_ABOVE_TARGET', n.plan_id, NULL, n.hospital_id, n.window_start, NULL::date,
           format('%s at hospital %s: NTSV cesarean rate %s%% (%s of %s) over %s..%s is above the %s%% target.',
                  n.plan_id, n.hospital_id, round(100 * n.cesareans::numeric / n.deliveries, 1), n.cesareans,
                  n.deliveries, to_char(n.window_start, 'YYYY-MM'), to_char(del_day, 'YYYY-MM'),
                  round(100 * r.ntsv_target, 1))
    FROM ntsv n CROSS JOIN r
    WHERE n.deliveries >= r.ntsv_min AND n.cesareans::numeric / n.deliveries > r.ntsv_target
    UNION ALL
    SELECT 'TIMELINESS_AT_RISK:' || t.plan_id || ':' || t.source || ':' || t.year,
           'TIMELINESS_AT_RISK', t.plan_id, t.source, NULL, make_date(t.year, 1, 1), make_date(t.year, 12, 31),
           format('%s %s: CW13 timeliness for %s is %s%% (%s of %s originals on time), below the %s%% benchmark.',
                  t.plan_id, t.source, t.year, round(100 * t.numerator::numeric / t.denominator, 1), t.numerator,
                  t.denominator, round(100 * t.benchmark_value, 1))
    FROM timely t CROSS JOIN r
    WHERE t.denominator >= r.timely_min AND t.numerator::numeric / t.denominator < t.benchmark_value
$$;

-- A topic's watermark for a group: the lowest event_clock among its
-- partitions, never below what it was. A claimed partition without a clock
-- holds it (NULL until every claimed partition has read an event time), so
-- the first flush of a worker that has read only some partitions yet cannot
-- close a month the others would fill.
CREATE FUNCTION qualstream.alert_watermark_advance(grp text, topic_name text)
RETURNS bigint LANGUAGE sql AS $$
    INSERT INTO qualstream.alert_watermark AS w (consumer_group, topic, clock_ms)
    SELECT grp, topic_name, min(o.event_clock) FROM qualstream.consumer_offsets o
    WHERE o.consumer_group = grp AND o.topic = topic_name
    HAVING bool_and(o.event_clock IS NOT NULL)
    ON CONFLICT (consumer_group, topic) DO UPDATE SET clock_ms = greatest(w.clock_ms, EXCLUDED.clock_ms);
    SELECT clock_ms FROM qualstream.alert_watermark WHERE consumer_group = grp AND topic = topic_name;
$$;

-- Raises and resolves the plan alerts of a group: compares the conditions
-- that hold now with the open ones and records every difference in
-- qualstream.alerts. The clock is each topic's watermark (the lowest
-- event_clock of the group's partitions of it), or wall_ms in wall-clock
-- mode. Called by the worker inside its flush transaction; the advisory lock
-- makes concurrent flushes of several workers take turns, and each then sees
-- what the previous one committed. Returns the number of transitions.
-- jit = off: the planner overestimates the calendar's generate_series rows,
-- and compiling these small queries took ~200 ms each, against ~2 ms to run
-- them (tests/bench/alert_latency.sh); this runs on every flush.
CREATE FUNCTION qualstream.alert_evaluate(grp text, encounters_topic text, deliveries_topic text, wall_ms bigint)
RETURNS int LANGUAGE plpgsql SET jit = off AS $$
DECLARE
    enc_ms bigint := wall_ms;
    del_ms bigint := wall_ms;
    n int;
BEGIN
    PERFORM pg_advisory_xact_lock(29014, hashtext('alerts:' || grp));
    IF wall_ms IS NULL THEN
        enc_ms := qualstream.alert_watermark_advance(grp, encounters_topic);
        del_ms := qualstream.alert_watermark_advance(grp, deliveries_topic);
    END IF;
    WITH cond AS (
        SELECT * FROM qualstream.alert_conditions((to_timestamp(enc_ms / 1000.0) AT TIME ZONE 'UTC')::date,
                                                  (to_timestamp(del_ms / 1000.0) AT TIME ZONE 'UTC')::date)
    ), open AS (
        SELECT * FROM (
            SELECT DISTINCT ON (a.alert_id) a.* FROM qualstream.alerts a
            WHERE a.consumer_group = grp
              AND a.kind IN ('MONTH_WITHOUT_SUBMISSION', 'MONTH_WITHOUT_SUBMISSION_WARNING', 'NTSV_ABOVE_TARGET',
                             'TIMELINESS_AT_RISK')
            ORDER BY a.alert_id, a.id DESC) latest
        WHERE latest.state = 'RAISED'
    ), transition AS (
        SELECT c.alert_id, c.kind, 'RAISED' AS state, c.plan_id, c.source, c.hospital_id, c.period_start,
               c.due_date, c.details,
               CASE WHEN c.kind = 'NTSV_ABOVE_TARGET' THEN del_ms ELSE enc_ms END AS at_ms
        FROM cond c WHERE NOT EXISTS (SELECT 1 FROM open o WHERE o.alert_id = c.alert_id)
        UNION ALL
        SELECT o.alert_id, o.kind, 'RESOLVED', o.plan_id, o.source, o.hospital_id, o.period_start, o.due_date,
               CASE o.kind
                   WHEN 'MONTH_WITHOUT_SUBMISSION_WARNING' THEN
                       CASE WHEN EXISTS (SELECT 1 FROM cond c2
                                         WHERE c2.alert_id = 'MONTH_WITHOUT_SUBMISSION' || substr(o.alert_id, length('MONTH_WITHOUT_SUBMISSION_WARNING') + 1))
                            THEN 'Escalated: the month closed without a submission (MONTH_WITHOUT_SUBMISSION).'
                            ELSE 'Resolved: the month has a submission.' END
                   WHEN 'MONTH_WITHOUT_SUBMISSION' THEN 'Resolved: a submission dated in the month arrived.'
                   WHEN 'NTSV_ABOVE_TARGET' THEN 'Resolved: the rolling 12-month NTSV rate is at or below target, or too few deliveries to judge.'
                   ELSE 'Resolved: timeliness is at or above the benchmark, or too few originals to judge.'
               END,
               CASE WHEN o.kind = 'NTSV_ABOVE_TARGET' THEN del_ms ELSE enc_ms END
        FROM open o WHERE NOT EXISTS (SELECT 1 FROM cond c WHERE c.alert_id = o.alert_id)
    )
    INSERT INTO qualstream.alerts (consumer_group, alert_id, kind, state, plan_id, source, hospital_id,
                                   period_start, due_date, detected_at, details)
    SELECT grp, t.alert_id, t.kind, t.state, t.plan_id, t.source, t.hospital_id, t.period_start, t.due_date,
           coalesce(to_timestamp(t.at_ms / 1000.0), now()), t.details
    FROM transition t
    ORDER BY t.state DESC, t.alert_id; -- resolutions first, then raises, each in id order: a replay writes the same rows
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n;
END
$$;
