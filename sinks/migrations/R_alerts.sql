-- R_alerts.sql: the one home of the plan alerts' SQL (README "Alerts") and of
-- the list of alert kinds. A repeatable migration (008): `qualstream migrate`
-- applies it after the numbered ones whenever this text changed or a numbered
-- migration ran, so edit it here, never in a numbered file. 004 and 007
-- created the first versions of what it defines; those files are history,
-- kept because databases applied them by name.
--
-- Written to run again on its own result: CREATE OR REPLACE where the shape
-- stays; where it changes (a view's columns, a function's result), DROP ...
-- IF EXISTS first. What 005_roles.sql grants on these objects is granted
-- again at the end, for whoever recreates them.
--
-- Adding a kind: its row in alert_kinds() and the same row in the worker's
-- QS_ALERT_KINDS (worker/alerts.h, which tests/test_alerts.c checks against
-- this file and schemas/alert.avsc); for a plan kind also its condition in
-- alert_conditions() and its resolution text in alert_evaluate().
--
-- Alert ids follow one rule in C and here: the kind and what the alert is
-- about, joined by ':' (worker/alerts.h, alerts_encounter_id).

-- Every alert kind and who raises it: 'encounter' kinds the worker, from its
-- entities; 'plan' kinds alert_evaluate(), below. IMMUTABLE, so that the
-- planner folds it into a constant: alert_evaluate's read of the open plan
-- alerts then matches the partial index alerts_plan_kinds. Both that index
-- and the CHECK on qualstream.alerts.kind depend on this list, so they are
-- dropped before it is replaced and made again after (an index over a
-- function must be rebuilt when the function changes).
ALTER TABLE qualstream.alerts DROP CONSTRAINT IF EXISTS alerts_kind_check;
DROP INDEX IF EXISTS qualstream.alerts_plan_kinds;
CREATE OR REPLACE FUNCTION qualstream.alert_kinds(VARIADIC scopes text[])
RETURNS text[] LANGUAGE sql IMMUTABLE AS $$
    SELECT array_agg(k.kind) FROM (VALUES
        ('LATE_SUBMISSION', 'encounter'),
        ('DUE_SOON', 'encounter'),
        ('OVERDUE', 'encounter'),
        ('MONTH_WITHOUT_SUBMISSION', 'plan'),
        ('MONTH_WITHOUT_SUBMISSION_WARNING', 'plan'),
        ('NTSV_ABOVE_TARGET', 'plan'),
        ('TIMELINESS_AT_RISK', 'plan')
    ) AS k (kind, scope)
    WHERE k.scope = ANY (scopes)
$$;
ALTER TABLE qualstream.alerts ADD CONSTRAINT alerts_kind_check
    CHECK (kind = ANY (qualstream.alert_kinds('encounter', 'plan')));
-- alert_evaluate() reads the open plan alerts on every call: keep that read small.
CREATE INDEX alerts_plan_kinds ON qualstream.alerts (consumer_group, alert_id, id)
    WHERE kind = ANY (qualstream.alert_kinds('plan'));

-- The conditions that hold now: each alert's latest transition, when it is RAISED.
CREATE OR REPLACE VIEW qualstream.alert_open AS
SELECT consumer_group, alert_id, kind, plan_id, source, member_id, encounter_id, hospital_id,
       period_start, due_date, detected_at AS raised_at, details
FROM (SELECT DISTINCT ON (consumer_group, alert_id) *
      FROM qualstream.alerts ORDER BY consumer_group, alert_id, id DESC) latest
WHERE state = 'RAISED';

-- The plan conditions that hold at the encounters clock date enc_day and the
-- deliveries clock date del_day (NULL: that topic has no clock yet, nothing
-- of its kinds holds). One row per condition, keyed by alert_id.
CREATE OR REPLACE FUNCTION qualstream.alert_conditions(enc_day date, del_day date)
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
CREATE OR REPLACE FUNCTION qualstream.alert_watermark_advance(grp text, topic_name text)
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
CREATE OR REPLACE FUNCTION qualstream.alert_evaluate(grp text, encounters_topic text, deliveries_topic text, wall_ms bigint)
RETURNS int LANGUAGE plpgsql SET jit = off AS $$
DECLARE
    enc_ms bigint := wall_ms;
    del_ms bigint := wall_ms;
    n int;
BEGIN
    -- The group's outbox lock, PG_LOCK_OUTBOX_ROWS in sinks/pg.h: the flush takes it
    -- before its outbox COPYs, so alert ids of one group become visible in order.
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
              AND a.kind = ANY (qualstream.alert_kinds('plan')) -- the predicate of alerts_plan_kinds
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

-- 005_roles.sql's grants, for objects this file made anew (CREATE OR REPLACE
-- keeps them; a DROP does not, and default privileges cover only the role
-- that ran 005).
GRANT SELECT ON qualstream.alert_open TO qualstream_writer, qualstream_reader;
GRANT EXECUTE ON FUNCTION qualstream.alert_kinds(text[]), qualstream.alert_conditions(date, date),
    qualstream.alert_watermark_advance(text, text), qualstream.alert_evaluate(text, text, text, bigint)
    TO qualstream_writer, qualstream_reader;
