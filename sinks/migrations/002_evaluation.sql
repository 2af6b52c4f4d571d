-- 002_evaluation.sql: the evaluation layer. Benchmarks, gap closure and the
-- withhold tiers as rule tables (data, not code; the views read them at query
-- time, so an edit shows in the next query and needs no replay), reference
-- data on plans and hospitals, and the views a user queries:
-- measure_evaluation (met / not met per plan, measure and demonstration year),
-- withhold_result (the withhold tier), cw13_evaluation, cw13_missed_month and
-- ntsv_evaluation. `qualstream rules` prints the rule tables, `qualstream
-- report` the views.

-- Rule parameters for the evaluation (the table is 001's).
INSERT INTO qualstream.rule (name, value, description) VALUES
    ('default_baseline_year', 2015, 'Baseline year of a plan not listed in qualstream.plan (seed: CY2015; CY2016 for a plan that began operating or added a service area in 2015, which qualstream.plan records).');

-- Plans: reference data the stream does not carry. A plan that is in the
-- stream but not here is evaluated with rule default_baseline_year and the
-- stream's own baseline-year rate.
CREATE TABLE qualstream.plan (
    plan_id            text    PRIMARY KEY,
    name               text    NOT NULL DEFAULT '',
    -- Seed: CY2015, or CY2016 for a plan that began operating or added a
    -- service area in 2015. A baseline-relative measure (CAW7) applies only
    -- in years after the baseline year, so 2016 means "from DY3".
    baseline_year      int     NOT NULL,
    -- CAW7 rate per 1,000 member months in the baseline year, from the plan's
    -- reporting: used when the stream does not cover the baseline year (no
    -- CAW7 member months that year). The stream's own rate wins when it has one.
    baseline_caw7_rate numeric CHECK (baseline_caw7_rate >= 0),
    -- First day the stream covers this plan's encounter submissions: CW13
    -- evaluates every month from this one, so months before the plan's first
    -- submission count as missed. NULL: from the plan's first submission month.
    cw13_from          date
);

-- Hospitals: reference data for the NTSV views (name, and participation in
-- the CMQCC Maternal Data Center). Optional: unlisted hospitals still show.
CREATE TABLE qualstream.hospital (
    hospital_id     text    PRIMARY KEY,
    name            text    NOT NULL DEFAULT '',
    mdc_participant boolean
);

-- Benchmarks per measure and demonstration year (calendar year: DY2 = 2016).
-- A row applies to years first_year..last_year (NULL: and every later year).
-- For a year, the row with the latest first_year among those that cover it
-- is in force, so adding (CAW8, 2020, NULL, ...) changes 2020 on without
-- editing the 2019 row. A measure has no row for a year: it is not evaluated.
--   benchmark_method fixed:             benchmark = benchmark_value
--   benchmark_method best_plan_minus:   benchmark = best plan's rate that year
--                                       minus benchmark_value (plus, for 'lower')
--   benchmark_method baseline_decrease: benchmark = plan's baseline-year rate
--                                       times (1 - benchmark_value) (1 + for
--                                       'higher'); applies only after the
--                                       plan's baseline year.
--   gap_closure_share: NULL = no gap closure; else the share of the gap
--                      between the prior-year rate and the benchmark a plan
--                      must close to meet the measure without meeting the
--                      benchmark.
--   rate_scale: rate = numerator / denominator * rate_scale (CAW7: per 1,000).
-- CW13's row holds the timeliness benchmark (share of original encounters
-- submitted on time); which months and sources count is qualstream.cw13_phase.
CREATE TABLE qualstream.measure_rule (
    measure           text    NOT NULL CHECK (measure IN ('CW13', 'CAW6', 'CAW7', 'CAW8', 'CAW9')),
    first_year        int     NOT NULL,
    last_year         int,
    direction         text    NOT NULL CHECK (direction IN ('higher', 'lower')),
    rate_scale        numeric NOT NULL DEFAULT 1 CHECK (rate_scale > 0),
    benchmark_method  text    NOT NULL CHECK (benchmark_method IN ('fixed', 'best_plan_minus', 'baseline_decrease')),
    benchmark_value   numeric NOT NULL,
    gap_closure_share numeric CHECK (gap_closure_share > 0 AND gap_closure_share <= 1),
    description       text    NOT NULL DEFAULT '',
    PRIMARY KEY (measure, first_year),
    CHECK (last_year IS NULL OR last_year >= first_year),
    CHECK (measure <> 'CW13' OR (benchmark_method = 'fixed' AND gap_closure_share IS NULL AND rate_scale = 1))
);
INSERT INTO qualstream.measure_rule VALUES
    ('CW13', 2016, NULL, 'higher', 1, 'fixed', 0.80, NULL,
     'Assumption (seed silent): timeliness benchmark, share of original encounters submitted within cw13_timely_days; the CMS core technical notes set the real value.'),
    ('CAW6', 2017, 2017, 'higher', 1, 'best_plan_minus', 0.10, NULL,
     'Seed: DY3 only; highest scoring plan''s rate minus ten percentage points; no gap closure.'),
    ('CAW7', 2016, NULL, 'lower', 1000, 'baseline_decrease', 0.10, 0.10,
     'Seed: 10% decrease from the baseline-year rate (per 1,000 member months). Gap closure share: assumption (CMS core notes).'),
    ('CAW8', 2016, 2017, 'higher', 1, 'fixed', 0.55, 0.10, 'Seed: DY2 and DY3 55%. Gap closure share: assumption.'),
    ('CAW8', 2018, 2018, 'higher', 1, 'fixed', 0.60, 0.10, 'Seed: DY4 60%. Gap closure share: assumption.'),
    ('CAW8', 2019, NULL, 'higher', 1, 'fixed', 0.65, 0.10, 'Seed: DY5 65%; later years continue with it. Gap closure share: assumption.'),
    ('CAW9', 2016, 2017, 'higher', 1, 'fixed', 0.78, 0.10, 'Seed: DY2 and DY3 78%. Gap closure share: assumption.'),
    ('CAW9', 2018, 2018, 'higher', 1, 'fixed', 0.83, 0.10, 'Seed: DY4 83%. Gap closure share: assumption.'),
    ('CAW9', 2019, NULL, 'higher', 1, 'fixed', 0.88, 0.10, 'Seed: DY5 88%; later years continue with it. Gap closure share: assumption.');

-- Share of the withhold repaid by share of measures met. A plan-year's tier
-- is the row with the largest min_share_met <= its share (compared exactly,
-- not rounded to whole percents).
CREATE TABLE qualstream.withhold_tier (
    min_share_met numeric PRIMARY KEY CHECK (min_share_met >= 0 AND min_share_met <= 1),
    repaid_pct    numeric NOT NULL CHECK (repaid_pct >= 0 AND repaid_pct <= 100),
    description   text    NOT NULL DEFAULT ''
);
INSERT INTO qualstream.withhold_tier VALUES
    (0.00, 0, 'Assumption (seed silent): 0-19% of measures met'),
    (0.20, 25, 'Assumption: 20-39% of measures met'),
    (0.40, 50, 'Assumption: 40-59% of measures met'),
    (0.60, 75, 'Assumption: 60-79% of measures met'),
    (0.80, 100, 'Assumption: 80-100% of measures met');

-- 001's cw13_month, extended: a plan with qualstream.plan.cw13_from is
-- evaluated from that month (even with no submission at all); the others, as
-- before, from their first month with a submission. Same columns as 001.
CREATE OR REPLACE VIEW qualstream.cw13_month AS
WITH clock AS (
    SELECT max(period_start) AS month FROM qualstream.measure_period
    WHERE measure = 'CW13_SUBMISSIONS' AND grain = 'month' AND numerator > 0
), submitting AS (
    SELECT plan_id, min(period_start) AS first_month FROM qualstream.measure_period
    WHERE measure = 'CW13_SUBMISSIONS' AND grain = 'month' AND numerator > 0 GROUP BY plan_id
), plans AS (
    SELECT coalesce(s.plan_id, p.plan_id) AS plan_id,
           coalesce(p.cw13_from - (extract(day FROM p.cw13_from)::int - 1), s.first_month) AS first_month
    FROM submitting s
    FULL JOIN (SELECT plan_id, cw13_from FROM qualstream.plan WHERE cw13_from IS NOT NULL) p
           ON p.plan_id = s.plan_id
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

-- The months CW13 found without any submission.
CREATE VIEW qualstream.cw13_missed_month AS
SELECT plan_id, source, month FROM qualstream.cw13_month WHERE NOT frequency_met;

-- Every plan the views know: qualstream.plan, plus each plan in the stream
-- with the defaults (listed = false).
CREATE VIEW qualstream.plan_in_force AS
SELECT plan_id, name, baseline_year, baseline_caw7_rate, cw13_from, true AS listed
FROM qualstream.plan
UNION ALL
SELECT s.plan_id, '', (SELECT value::int FROM qualstream.rule WHERE name = 'default_baseline_year'),
       NULL::numeric, NULL::date, false
FROM (SELECT DISTINCT plan_id FROM qualstream.measure_period) s
WHERE NOT EXISTS (SELECT 1 FROM qualstream.plan p WHERE p.plan_id = s.plan_id);

-- The measure_rule row in force for every measure and year, from the first
-- rule year through the last year any rule names or the data reaches.
CREATE VIEW qualstream.measure_rule_year AS
WITH span AS (
    SELECT min(first_year) AS first_year,
           greatest(max(first_year), max(last_year),
                    (SELECT max(extract(year FROM period_start))::int FROM qualstream.measure_period)) AS last_year
    FROM qualstream.measure_rule
)
SELECT y.year, y.year - 2014 AS dy, r.measure, r.first_year, r.last_year, r.direction, r.rate_scale,
       r.benchmark_method, r.benchmark_value, r.gap_closure_share
FROM span CROSS JOIN LATERAL generate_series(span.first_year, span.last_year) AS y(year)
CROSS JOIN (SELECT DISTINCT measure FROM qualstream.measure_rule) mm
CROSS JOIN LATERAL (
    SELECT * FROM qualstream.measure_rule r
    WHERE r.measure = mm.measure AND r.first_year <= y.year AND (r.last_year IS NULL OR r.last_year >= y.year)
    ORDER BY r.first_year DESC LIMIT 1
) r;

-- CW13 per plan, demonstration year and source, over the months cw13_month
-- evaluates (the stream's clock bounds them, so the current year is
-- evaluated to date). met: a submission in every evaluated month and, where
-- timeliness is evaluated, timely / originals over those months >= the
-- benchmark (no original at all: not met).
CREATE VIEW qualstream.cw13_evaluation AS
WITH per_source AS (
    SELECT plan_id, extract(year FROM month)::int AS year, source,
           count(*) AS months_evaluated,
           count(*) FILTER (WHERE NOT frequency_met) AS months_missed,
           bool_or(timeliness_evaluated) AS timeliness_evaluated,
           coalesce(sum(timely) FILTER (WHERE timeliness_evaluated), 0)::bigint AS timely,
           coalesce(sum(originals) FILTER (WHERE timeliness_evaluated), 0)::bigint AS originals,
           string_agg(to_char(month, 'YYYY-MM'), ' ' ORDER BY month) FILTER (WHERE NOT frequency_met) AS missed_months
    FROM qualstream.cw13_month
    GROUP BY 1, 2, 3
)
SELECT c.plan_id, c.year, c.source, c.months_evaluated, c.months_missed, c.months_missed = 0 AS frequency_met,
       c.timeliness_evaluated, c.timely, c.originals,
       CASE WHEN c.originals > 0 THEN c.timely::numeric / c.originals END AS timeliness_rate,
       CASE WHEN c.timeliness_evaluated THEN r.benchmark_value END AS timeliness_benchmark,
       c.months_missed = 0 AND (NOT c.timeliness_evaluated
                                OR (c.originals > 0 AND c.timely::numeric / c.originals >= r.benchmark_value)) AS met,
       c.missed_months
FROM per_source c
JOIN qualstream.measure_rule_year r ON r.measure = 'CW13' AND r.year = c.year;

-- Met / not met per plan, measure and demonstration year.
--   rate: numerator / denominator * rate_scale; NULL when the denominator is 0.
--   prior_rate: the plan's rate in the previous year (grain 'year'); for a
--     baseline_decrease measure in the year after the baseline year, the
--     baseline rate.
--   gap_closure_target = prior_rate + gap_closure_share * (benchmark - prior_rate),
--     when the measure has gap closure, the prior rate is known and does not
--     already meet the benchmark (else NULL).
--   met: rate meets the benchmark (>= for 'higher', <= for 'lower'), or meets
--     the gap closure target the same way. NULL: not evaluated (no data, or no
--     benchmark, e.g. no baseline rate); withhold_result leaves it out.
-- A measure with no rule in force for the year, or a baseline_decrease measure
-- in or before the plan's baseline year, has no row. CAW rows exist for every
-- year in which the plan has any data; CW13 rows for every year with a month
-- in cw13_month. CW13: numerator/denominator = timely/originals over the
-- sources and months where timeliness is evaluated; met per cw13_evaluation,
-- for every evaluated source.
CREATE VIEW qualstream.measure_evaluation AS
WITH plan_year AS (
    SELECT DISTINCT plan_id, extract(year FROM period_start)::int AS year
    FROM qualstream.measure_period WHERE grain = 'year'
), caw AS (
    -- The year's, the previous year's and the baseline year's cells, each one
    -- primary-key lookup.
    SELECT py.plan_id, r.measure, py.year, r.direction, r.rate_scale, r.benchmark_method, r.benchmark_value,
           r.gap_closure_share, b.baseline_year,
           coalesce(d.numerator, 0) AS numerator, coalesce(d.denominator, 0) AS denominator,
           CASE WHEN d.denominator > 0 THEN d.numerator * r.rate_scale / d.denominator END AS rate,
           CASE WHEN r.benchmark_method = 'baseline_decrease' THEN
               coalesce(CASE WHEN bl.denominator > 0 THEN bl.numerator * r.rate_scale / bl.denominator END,
                        CASE WHEN r.measure = 'CAW7' THEN pl.baseline_caw7_rate END)
           END AS baseline_rate,
           CASE WHEN pr.denominator > 0 THEN pr.numerator * r.rate_scale / pr.denominator END AS stream_prior_rate
    FROM plan_year py
    LEFT JOIN qualstream.plan pl ON pl.plan_id = py.plan_id
    CROSS JOIN LATERAL (
        SELECT coalesce(pl.baseline_year,
                        (SELECT value::int FROM qualstream.rule WHERE name = 'default_baseline_year')) AS baseline_year
    ) b
    JOIN qualstream.measure_rule_year r ON r.year = py.year AND r.measure <> 'CW13'
    LEFT JOIN qualstream.measure_period d
           ON d.plan_id = py.plan_id AND d.measure = r.measure AND d.stratum = '' AND d.grain = 'year'
          AND d.period_start = make_date(py.year, 1, 1)
    LEFT JOIN qualstream.measure_period pr
           ON pr.plan_id = py.plan_id AND pr.measure = r.measure AND pr.stratum = '' AND pr.grain = 'year'
          AND pr.period_start = make_date(py.year - 1, 1, 1)
    LEFT JOIN qualstream.measure_period bl
           ON bl.plan_id = py.plan_id AND bl.measure = r.measure AND bl.stratum = '' AND bl.grain = 'year'
          AND bl.period_start = make_date(b.baseline_year, 1, 1)
    WHERE r.benchmark_method <> 'baseline_decrease' OR py.year > b.baseline_year
), caw_benchmark AS (
    SELECT c.*,
           CASE c.benchmark_method
               WHEN 'fixed' THEN c.benchmark_value
               WHEN 'best_plan_minus' THEN
                   CASE c.direction
                       WHEN 'higher' THEN max(c.rate) OVER (PARTITION BY c.measure, c.year) - c.benchmark_value
                       ELSE min(c.rate) OVER (PARTITION BY c.measure, c.year) + c.benchmark_value
                   END
               WHEN 'baseline_decrease' THEN
                   CASE c.direction
                       WHEN 'lower' THEN c.baseline_rate * (1 - c.benchmark_value)
                       ELSE c.baseline_rate * (1 + c.benchmark_value)
                   END
           END AS benchmark,
           CASE WHEN c.benchmark_method = 'baseline_decrease' AND c.year - 1 = c.baseline_year
                THEN c.baseline_rate ELSE c.stream_prior_rate END AS prior_rate
    FROM caw c
), caw_target AS (
    SELECT b.*,
           CASE WHEN b.gap_closure_share IS NOT NULL AND b.prior_rate IS NOT NULL AND b.benchmark IS NOT NULL
                 AND NOT CASE b.direction WHEN 'higher' THEN b.prior_rate >= b.benchmark
                                          ELSE b.prior_rate <= b.benchmark END
                THEN b.prior_rate + b.gap_closure_share * (b.benchmark - b.prior_rate)
           END AS gap_closure_target
    FROM caw_benchmark b
), caw_met AS (
    SELECT t.*,
           CASE WHEN t.rate IS NULL OR t.benchmark IS NULL THEN NULL
                WHEN CASE t.direction WHEN 'higher' THEN t.rate >= t.benchmark ELSE t.rate <= t.benchmark END
                    THEN 'benchmark'
                WHEN t.gap_closure_target IS NOT NULL
                 AND CASE t.direction WHEN 'higher' THEN t.rate >= t.gap_closure_target
                                      ELSE t.rate <= t.gap_closure_target END
                    THEN 'gap closure'
                ELSE 'not met'
           END AS outcome
    FROM caw_target t
)
SELECT plan_id, measure, ''::text AS stratum, year, numerator, denominator, rate, benchmark, gap_closure_target,
       outcome <> 'not met' AS met,
       direction, rate_scale, prior_rate,
       CASE WHEN outcome IN ('benchmark', 'gap closure') THEN outcome END AS met_by,
       CASE WHEN denominator = 0 THEN 'no data'
            WHEN benchmark IS NULL AND benchmark_method = 'baseline_decrease' THEN 'no baseline rate for ' || baseline_year
            WHEN benchmark IS NULL THEN 'no benchmark'
            WHEN benchmark_method = 'best_plan_minus'
                THEN 'best plan''s rate ' || rtrim(rtrim(round(CASE direction WHEN 'higher' THEN benchmark + benchmark_value
                                                                            ELSE benchmark - benchmark_value END, 6)::text, '0'), '.')
            WHEN benchmark_method = 'baseline_decrease'
                THEN 'baseline ' || baseline_year || ' rate ' || rtrim(rtrim(round(baseline_rate, 6)::text, '0'), '.')
       END AS detail
FROM caw_met
UNION ALL
SELECT e.plan_id, 'CW13', '', e.year,
       coalesce(sum(e.timely) FILTER (WHERE e.timeliness_evaluated), 0)::bigint,
       coalesce(sum(e.originals) FILTER (WHERE e.timeliness_evaluated), 0)::bigint,
       CASE WHEN sum(e.originals) FILTER (WHERE e.timeliness_evaluated) > 0
            THEN sum(e.timely) FILTER (WHERE e.timeliness_evaluated)::numeric
                 / sum(e.originals) FILTER (WHERE e.timeliness_evaluated) END,
       max(e.timeliness_benchmark), NULL::numeric,
       bool_and(e.met),
       'higher', 1::numeric, NULL::numeric,
       CASE WHEN bool_and(e.met) THEN 'benchmark' END,
       string_agg(e.source || ': ' || e.months_missed || ' of ' || e.months_evaluated || ' months missed'
                  || coalesce(' (' || e.missed_months || ')', '')
                  || CASE WHEN e.timeliness_evaluated
                          THEN ', on time ' || e.timely || '/' || e.originals
                          ELSE ', timeliness not evaluated' END,
                  '; ' ORDER BY e.source)
FROM qualstream.cw13_evaluation e
GROUP BY e.plan_id, e.year;

-- The withhold per plan and year: the share of evaluated measures met (met
-- NULL is not evaluated) and the qualstream.withhold_tier it reaches. Only the
-- measures qualstream evaluates (CW13, CAW6-CAW9) count, not the CMS core
-- measures computed elsewhere.
CREATE VIEW qualstream.withhold_result AS
WITH counted AS (
    SELECT plan_id, year, count(*) FILTER (WHERE met) AS measures_met, count(met) AS measures_evaluated
    FROM qualstream.measure_evaluation
    GROUP BY plan_id, year
)
SELECT c.plan_id, c.year, c.measures_met, c.measures_evaluated,
       CASE WHEN c.measures_evaluated > 0 THEN c.measures_met::numeric / c.measures_evaluated END AS share_met,
       (SELECT t.repaid_pct FROM qualstream.withhold_tier t
        WHERE c.measures_evaluated > 0 AND t.min_share_met <= c.measures_met::numeric / c.measures_evaluated
        ORDER BY t.min_share_met DESC LIMIT 1) AS withhold_repaid_pct
FROM counted c;

-- NTSV cesarean rate per plan (hospital_id NULL) and hospital and year
-- against the target, with the deliveries excluded for missing data beside
-- it (NTSV_MISSING). Every plan or hospital with a delivery in the year has a
-- row; rate and above_target are NULL when it had no NTSV delivery.
CREATE VIEW qualstream.ntsv_evaluation AS
SELECT a.plan_id, extract(year FROM a.period_start)::int AS year,
       CASE WHEN a.stratum <> '' THEN substr(a.stratum, length('hospital:') + 1) END AS hospital_id,
       h.name AS hospital_name, h.mdc_participant,
       coalesce(n.numerator, 0) AS ntsv_cesareans, coalesce(n.denominator, 0) AS ntsv_deliveries,
       CASE WHEN n.denominator > 0 THEN n.numerator::numeric / n.denominator END AS rate,
       t.value AS target,
       CASE WHEN n.denominator > 0 THEN n.numerator::numeric / n.denominator > t.value END AS above_target,
       a.numerator AS missing_data, a.denominator AS deliveries
FROM qualstream.measure_period a
CROSS JOIN (SELECT value FROM qualstream.rule WHERE name = 'ntsv_target') t
LEFT JOIN qualstream.measure_period n
       ON n.plan_id = a.plan_id AND n.measure = 'NTSV_CSECTION' AND n.stratum = a.stratum
      AND n.grain = 'year' AND n.period_start = a.period_start
LEFT JOIN qualstream.hospital h ON a.stratum <> '' AND h.hospital_id = substr(a.stratum, length('hospital:') + 1)
WHERE a.measure = 'NTSV_MISSING' AND a.grain = 'year' AND a.denominator > 0
  AND (a.stratum = '' OR a.stratum LIKE 'hospital:%');
