-- 009_gap_to_target.sql: gap to target (issue 13, item 2). For every measure
-- the evaluation judges by a count over a count, how many numerator units stand
-- between the rate so far and each bar it can be met by: the benchmark (for
-- NTSV, the 23.9% target) and, where it applies, the gap closure target. The
-- bars, rates and met are read from the evaluation views of 002, never
-- recomputed here; only the counts are new.

-- The least k >= 0 with (num + k) * scale / den >= bar: the numerator units a
-- higher-is-better rate still needs, the denominator held where it is. The
-- test is written as measure_evaluation writes its `met` (same operands, same
-- numeric division), so k = 0 exactly when the evaluation says the bar is met,
-- and a rate equal to the bar meets it. The estimate from the closed form can
-- be one off where numeric division rounds, so it is settled by that test.
-- NULL when there is no bar or no denominator.
CREATE FUNCTION qualstream.gap_needed(num bigint, den bigint, scale numeric, bar numeric)
RETURNS bigint LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE WHEN e.k > 0 AND (num + e.k - 1) * scale / den >= bar THEN e.k - 1
                WHEN (num + e.k) * scale / den >= bar THEN e.k
                ELSE e.k + 1 END
    FROM (SELECT greatest(0, ceil(bar * den / scale) - num)::bigint AS k) e
    WHERE den > 0 AND bar IS NOT NULL
$$;

-- The least k >= 0 with (num - k) * scale / den <= bar: the numerator units a
-- lower-is-better rate is over its bar (NTSV: cesareans that would have had to
-- be vaginal births, the cases to review; CAW7: ED visits). Same reading of the
-- comparison as gap_needed, the other way round, so never more than num. NULL
-- also for a negative bar (a rule that no count can meet).
CREATE FUNCTION qualstream.gap_excess(num bigint, den bigint, scale numeric, bar numeric)
RETURNS bigint LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE WHEN e.k > 0 AND (num - e.k + 1) * scale / den <= bar THEN e.k - 1
                WHEN (num - e.k) * scale / den <= bar THEN e.k
                ELSE e.k + 1 END
    FROM (SELECT greatest(0, num - floor(bar * den / scale))::bigint AS k) e
    WHERE den > 0 AND bar >= 0
$$;

-- CW13 timeliness is different: an original's lateness is fixed once it is
-- submitted, so the only way up is originals still to come, each adding one to
-- the numerator and to the denominator. The least k >= 0 with
-- (num + k) / (den + k) >= bar, compared as cw13_evaluation compares; NULL
-- when there is no bar or no original yet, or when no number of on-time
-- originals can reach the bar (a bar of 100% once one was late).
CREATE FUNCTION qualstream.gap_needed_on_time(num bigint, den bigint, bar numeric)
RETURNS bigint LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE WHEN e.k > 0 AND (num + e.k - 1)::numeric / (den + e.k - 1) >= bar THEN e.k - 1
                WHEN (num + e.k)::numeric / (den + e.k) >= bar THEN e.k
                ELSE e.k + 1 END
    FROM (SELECT CASE WHEN num::numeric / den >= bar THEN 0
                      ELSE ceil((bar * den - num) / (1 - bar))::bigint END AS k) e
    WHERE den > 0 AND bar IS NOT NULL AND (bar < 1 OR num::numeric / den >= bar)
$$;

-- The gap per plan, measure, stratum and year: every row of measure_evaluation
-- (CAW6-CAW9; CW13 for the plan), CW13 per timeliness-evaluated source
-- (stratum = the source, from cw13_evaluation) and NTSV per plan (stratum '')
-- and hospital (stratum 'hospital:<id>', from ntsv_evaluation, measure
-- NTSV_CSECTION, benchmark = the NTSV target). numerator, denominator, rate,
-- benchmark, gap_closure_target and met are the evaluation's.
--   needed_for_benchmark, needed_for_gap_closure (direction 'higher'): the
--     numerator units still needed to meet that bar with the denominator so
--     far (CAW6-CAW9). For CW13: further originals that must all be submitted
--     on time (gap_needed_on_time); the plan's row is the sum over its sources,
--     NULL when one of them has no original yet. CW13 needs a submission in
--     every month besides; a missed month (cw13_missed_month) is not made up
--     by any count here.
--   excess_over_benchmark, excess_over_gap_closure (direction 'lower'): the
--     numerator units over that bar (NTSV: cesareans to review; CAW7: ED
--     visits).
-- 0: the bar is met; NULL: no such bar, no denominator, or the other direction.
-- The measure is met by either bar, so the smaller count is what meeting it takes.
CREATE VIEW qualstream.measure_gap AS
WITH cw13_source AS (
    SELECT e.plan_id, 'CW13'::text AS measure, e.source AS stratum, e.year, e.timely AS numerator,
           e.originals AS denominator, e.timeliness_rate AS rate, e.timeliness_benchmark AS benchmark,
           NULL::numeric AS gap_closure_target, e.met, 'higher'::text AS direction, 1::numeric AS rate_scale,
           qualstream.gap_needed_on_time(e.timely, e.originals, e.timeliness_benchmark) AS needed
    FROM qualstream.cw13_evaluation e
    WHERE e.timeliness_evaluated
), cw13_plan AS (
    SELECT plan_id, year, CASE WHEN count(*) = count(needed) THEN sum(needed)::bigint END AS needed
    FROM cw13_source GROUP BY plan_id, year
)
SELECT e.plan_id, e.measure, e.stratum, e.year, e.numerator, e.denominator, e.rate, e.direction, e.rate_scale,
       e.benchmark, e.gap_closure_target, e.met,
       CASE WHEN e.measure = 'CW13' THEN c.needed
            WHEN e.direction = 'higher' THEN qualstream.gap_needed(e.numerator, e.denominator, e.rate_scale, e.benchmark)
       END AS needed_for_benchmark,
       CASE WHEN e.direction = 'higher'
            THEN qualstream.gap_needed(e.numerator, e.denominator, e.rate_scale, e.gap_closure_target)
       END AS needed_for_gap_closure,
       CASE WHEN e.direction = 'lower'
            THEN qualstream.gap_excess(e.numerator, e.denominator, e.rate_scale, e.benchmark)
       END AS excess_over_benchmark,
       CASE WHEN e.direction = 'lower'
            THEN qualstream.gap_excess(e.numerator, e.denominator, e.rate_scale, e.gap_closure_target)
       END AS excess_over_gap_closure
FROM qualstream.measure_evaluation e
LEFT JOIN cw13_plan c ON e.measure = 'CW13' AND c.plan_id = e.plan_id AND c.year = e.year
UNION ALL
SELECT plan_id, measure, stratum, year, numerator, denominator, rate, direction, rate_scale, benchmark,
       gap_closure_target, met, needed, NULL::bigint, NULL::bigint, NULL::bigint
FROM cw13_source
UNION ALL
SELECT n.plan_id, 'NTSV_CSECTION', coalesce('hospital:' || n.hospital_id, ''), n.year, n.ntsv_cesareans,
       n.ntsv_deliveries, n.rate, 'lower', 1::numeric, n.target, NULL::numeric, NOT n.above_target,
       NULL::bigint, NULL::bigint, qualstream.gap_excess(n.ntsv_cesareans, n.ntsv_deliveries, 1, n.target),
       NULL::bigint
FROM qualstream.ntsv_evaluation n;

-- Both roles read the view and may call the functions by 005's default
-- privileges (this migration runs as the role that ran 005).
