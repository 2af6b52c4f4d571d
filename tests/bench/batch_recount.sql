-- batch_recount.sql: the full recomputation of measure_period's rows (every measure) in SQL from
-- the raw events batch_load.sql loaded (tests/bench/incremental.sh): what a batch user runs
-- nightly instead of the worker. It follows tests/tools/oracle.py (README "Identity, corrections
-- and voids", "What is counted") rule for rule; incremental.py compare checks its rows against the
-- worker's. Result: batch.measure_period (plan_id, measure, stratum, grain, period_start,
-- numerator, denominator), cells at 0/0 left out.
\set ON_ERROR_STOP on
SET client_min_messages = warning;
-- A nightly batch gets its memory: sorts and hashes of millions of rows stay in memory.
SET work_mem = '256MB';
DROP TABLE IF EXISTS batch.encounter, batch.delivery, batch.member_event, batch.link, batch.chain,
    batch.chain_info, batch.measure_month, batch.measure_cell, batch.caw7_year, batch.measure_period;

-- Each record's latest version: the last one in the stream. Only that version exists.
CREATE TABLE batch.encounter AS
SELECT DISTINCT ON (encounter_id) * FROM batch.encounter_event ORDER BY encounter_id, seq DESC;
CREATE TABLE batch.delivery AS
SELECT DISTINCT ON (delivery_id) * FROM batch.delivery_event ORDER BY delivery_id, seq DESC;
-- A member event whose latest version is a VOID counts nowhere: only the ACTIVE ones are kept.
CREATE TABLE batch.member_event AS
SELECT * FROM (SELECT DISTINCT ON (event_id) * FROM batch.member_event_raw ORDER BY event_id, seq DESC) e
WHERE status = 'ACTIVE';

-- Chains. A record that is not an ORIGINAL names its original; following the names ends at an
-- ORIGINAL or at an id no record has (the chain's root either way), or goes round a cycle, whose
-- smallest id (bytewise) is then the root. An ORIGINAL is its own root.
CREATE TABLE batch.link AS
SELECT encounter_id AS id, original_encounter_id AS next, seq, frequency, service_to, ed_visit,
       plan_id, member_id
FROM batch.encounter WHERE frequency <> 'ORIGINAL';
ANALYZE batch.link;
CREATE TABLE batch.chain AS
WITH RECURSIVE walk (id, cur, path) AS (
    SELECT id, id, ARRAY[]::text[] FROM batch.link
    UNION ALL
    SELECT w.id, l.next, w.path || w.cur
    FROM walk w JOIN batch.link l ON l.id = w.cur
    WHERE w.cur <> ALL (w.path)
)
SELECT w.id,
       CASE WHEN w.cur = ANY (w.path)
            THEN (SELECT min(x COLLATE "C") FROM unnest(w.path[array_position(w.path, w.cur):]) x)
            ELSE w.cur END AS root
FROM walk w
WHERE w.cur = ANY (w.path) OR NOT EXISTS (SELECT 1 FROM batch.link l WHERE l.id = w.cur);

-- Per root: voided (a VOID among its records: the chain counts nowhere) and its content, the
-- latest REPLACEMENT (null when it has none: the content is then the original's).
CREATE TABLE batch.chain_info AS
SELECT c.root, bool_or(l.frequency = 'VOID') AS voided,
       (array_agg(l.service_to ORDER BY l.seq DESC) FILTER (WHERE l.frequency = 'REPLACEMENT'))[1]
           AS content_service_to,
       (array_agg(l.ed_visit ORDER BY l.seq DESC) FILTER (WHERE l.frequency = 'REPLACEMENT'))[1]
           AS content_ed_visit,
       (array_agg(l.plan_id ORDER BY l.seq DESC) FILTER (WHERE l.frequency = 'REPLACEMENT'))[1]
           AS content_plan_id,
       (array_agg(l.member_id ORDER BY l.seq DESC) FILTER (WHERE l.frequency = 'REPLACEMENT'))[1]
           AS content_member_id
FROM batch.chain c JOIN batch.link l USING (id)
GROUP BY c.root;

-- Monthly cells; quarters and years are sums of their months.
CREATE TABLE batch.measure_month (plan_id text, measure text, stratum text, month date,
                                  numerator bigint, denominator bigint);

-- CW13_SUBMISSIONS: every record (any frequency) with a submitted_at, in its UTC month, by source.
INSERT INTO batch.measure_month
SELECT plan_id, 'CW13_SUBMISSIONS', source,
       date_trunc('month', (date '1970-01-01' + floor(submitted_at / 86400000.0)::int)::timestamp)::date,
       count(*), 0
FROM batch.encounter WHERE submitted_at IS NOT NULL
GROUP BY 1, 2, 3, 4;

-- CW13_TIMELY: per chain with a submitted ORIGINAL and no VOID, under the original's plan,
-- source and submission month: timely when the original's submission day minus the content's
-- service_to is at most 180 days.
INSERT INTO batch.measure_month
SELECT plan_id, 'CW13_TIMELY', source, date_trunc('month', (date '1970-01-01' + sub_day)::timestamp)::date,
       count(*) FILTER (WHERE sub_day - coalesce(content_service_to, service_to) <= 180), count(*)
FROM (SELECT o.plan_id, o.source, o.service_to, floor(o.submitted_at / 86400000.0)::int AS sub_day,
             ci.content_service_to
      FROM batch.encounter o LEFT JOIN batch.chain_info ci ON ci.root = o.encounter_id
      WHERE o.frequency = 'ORIGINAL' AND o.submitted_at IS NOT NULL AND ci.voided IS NOT TRUE) t
GROUP BY 1, 2, 3, 4;

-- NTSV: ACTIVE deliveries, in the plan as a whole ('') and per hospital. A criterion with no
-- value is missing; the others must pass (parity 0, >= 37 weeks, singleton, vertex, live birth).
-- NTSV_MISSING counts the deliveries that pass what is known but miss something, over all;
-- NTSV_CSECTION the cesareans among those with everything known and passing.
INSERT INTO batch.measure_month
SELECT plan_id, m.measure, s.stratum, month,
       count(*) FILTER (WHERE CASE m.measure WHEN 'NTSV_MISSING' THEN missing AND pass ELSE cesarean END),
       count(*)
FROM (SELECT plan_id, hospital_id,
             date_trunc('month', (date '1970-01-01' + delivery_date)::timestamp)::date AS month,
             parity IS NULL OR gestational_age_weeks IS NULL OR plurality IS NULL OR presentation IS NULL
                 AS missing,
             coalesce(parity = 0, true) AND coalesce(gestational_age_weeks >= 37, true)
                 AND coalesce(plurality = 1, true) AND coalesce(presentation = 'VERTEX', true) AND live_birth
                 AS pass,
             method = 'CESAREAN' AS cesarean
      FROM batch.delivery WHERE status = 'ACTIVE') d
CROSS JOIN LATERAL (VALUES (''), ('hospital:' || d.hospital_id)) s (stratum)
CROSS JOIN LATERAL (VALUES ('NTSV_MISSING'), ('NTSV_CSECTION')) m (measure)
WHERE m.measure = 'NTSV_MISSING' OR (d.pass AND NOT d.missing)
GROUP BY 1, 2, 3, 4;

-- CAW7's member-years: >= 5 distinct months (the month holding each ACTIVE Enrollment's `month`)
-- in the year, and smi_sud on at least one of that year's Enrollment events. Members are per plan.
CREATE TABLE batch.caw7_year AS
SELECT plan_id, member_id, extract(year FROM m)::int AS year, array_agg(DISTINCT m) AS months
FROM (SELECT plan_id, member_id, smi_sud,
             date_trunc('month', (date '1970-01-01' + month)::timestamp)::date AS m
      FROM batch.member_event WHERE kind = 'Enrollment') e
GROUP BY 1, 2, 3
HAVING count(DISTINCT m) >= 5 AND bool_or(smi_sud);

-- CAW7: denominator 1 per enrolled month of a qualifying member-year; numerator 1 per ED visit
-- (a chain with no VOID whose content has ed_visit, owed or submitted, under its original's plan
-- and member, or its content's when the original is missing) in the month of the content's
-- service_to, when that member-year qualifies.
INSERT INTO batch.measure_month
SELECT plan_id, 'CAW7', '', m, 0, 1 FROM batch.caw7_year, unnest(months) m;
INSERT INTO batch.measure_month
SELECT v.plan_id, 'CAW7', '', date_trunc('month', v.day::timestamp)::date, count(*), 0
FROM (SELECT coalesce(o.plan_id, ci.content_plan_id) AS plan_id,
             coalesce(o.member_id, ci.content_member_id) AS member_id,
             date '1970-01-01' + coalesce(ci.content_service_to, o.service_to) AS day
      FROM batch.chain_info ci
      FULL JOIN (SELECT * FROM batch.encounter WHERE frequency = 'ORIGINAL') o ON o.encounter_id = ci.root
      WHERE ci.voided IS NOT TRUE
        AND CASE WHEN ci.content_service_to IS NOT NULL THEN ci.content_ed_visit ELSE o.ed_visit END) v
JOIN batch.caw7_year q ON (q.plan_id, q.member_id, q.year) = (v.plan_id, v.member_id, extract(year FROM v.day)::int)
GROUP BY 1, 2, 3, 4;

-- CAW6, CAW8 and CAW9 count members (or care plans) per period, so each grain is computed on its own.
CREATE TABLE batch.measure_cell (plan_id text, measure text, stratum text, grain text, period_start date,
                                 numerator bigint, denominator bigint);
CREATE TEMP VIEW member_event_period AS
SELECT e.*, g.grain, g.period_start
FROM (SELECT *, date '1970-01-01' + coalesce(event_date, completed_on, contact_date, month) AS day
      FROM batch.member_event) e
CROSS JOIN LATERAL (VALUES ('month', date_trunc('month', e.day::timestamp)::date),
                           ('quarter', date_trunc('quarter', e.day::timestamp)::date),
                           ('year', date_trunc('year', e.day::timestamp)::date)) g (grain, period_start);

-- CAW6: per plan, member and period the BhCoordination event with the latest (event_date,
-- position) decides; when it says receives_smhs it adds C+E to the numerator and 2A-B-D to
-- the denominator (A = 1, B/D = county provider / member unable to reach, C/E = success).
INSERT INTO batch.measure_cell
SELECT plan_id, 'CAW6', '', grain, period_start,
       sum((county_provider_outcome = 'SUCCESS')::int + (member_outcome = 'SUCCESS')::int),
       sum(2 - (county_provider_outcome = 'UNABLE_TO_REACH')::int - (member_outcome = 'UNABLE_TO_REACH')::int)
FROM (SELECT DISTINCT ON (plan_id, member_id, grain, period_start) *
      FROM member_event_period WHERE kind = 'BhCoordination'
      ORDER BY plan_id, member_id, grain, period_start, event_date DESC, seq DESC) latest
WHERE receives_smhs
GROUP BY 1, 2, 3, 4, 5;

-- CAW8: members with an INITIAL care plan completed in the period (goals documented on any of
-- them), plus care_plan_ids with a REVISED one in it (goals on any).
INSERT INTO batch.measure_cell
SELECT plan_id, 'CAW8', '', grain, period_start, count(*) FILTER (WHERE goals), count(*)
FROM (SELECT plan_id, grain, period_start, bool_or(care_goals_documented) AS goals
      FROM member_event_period WHERE kind = 'CarePlan'
      GROUP BY plan_id, grain, period_start, plan_type = 'INITIAL',
               CASE plan_type WHEN 'INITIAL' THEN member_id ELSE care_plan_id END) w
GROUP BY 1, 2, 3, 4, 5;

-- CAW9: members with a CoordinatorAssigned month in the period, and those of them with a
-- CareTeamContact dated in it.
INSERT INTO batch.measure_cell
SELECT a.plan_id, 'CAW9', '', a.grain, a.period_start, count(c.member_id), count(*)
FROM (SELECT DISTINCT plan_id, member_id, grain, period_start
      FROM member_event_period WHERE kind = 'CoordinatorAssigned') a
LEFT JOIN (SELECT DISTINCT plan_id, member_id, grain, period_start
           FROM member_event_period WHERE kind = 'CareTeamContact') c USING (plan_id, member_id, grain, period_start)
GROUP BY 1, 2, 3, 4, 5;

CREATE TABLE batch.measure_period AS
SELECT plan_id, measure, stratum, g.grain, g.period_start,
       sum(numerator)::bigint AS numerator, sum(denominator)::bigint AS denominator
FROM batch.measure_month
CROSS JOIN LATERAL (VALUES ('month', month),
                           ('quarter', date_trunc('quarter', month::timestamp)::date),
                           ('year', date_trunc('year', month::timestamp)::date)) g (grain, period_start)
GROUP BY 1, 2, 3, 4, 5
HAVING (sum(numerator), sum(denominator)) <> (0, 0)
UNION ALL
SELECT * FROM batch.measure_cell WHERE (numerator, denominator) <> (0, 0);
