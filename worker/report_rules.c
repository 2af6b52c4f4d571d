/*
 * report_rules.c: the `rules` command (see report.h). Reads every rule table
 * and the rules in force per year (002_evaluation.sql's measure_rule_year) in
 * one snapshot, and prints them as text with the rules put in words.
 */
#include "report.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "errstr.h"
#include "pg.h"
#include "report_internal.h"

/* The years a rule row covers: "2017", "2016-2017" or "2019 on". */
static struct num years_text(const char *first, const char *last)
{
	struct num n;
	if (!last)
		snprintf(n.s, sizeof(n.s), "%s on", first);
	else if (!strcmp(first, last))
		snprintf(n.s, sizeof(n.s), "%s", first);
	else
		snprintf(n.s, sizeof(n.s), "%s-%s", first, last);
	return n;
}

/* Words about a rule, built from numbers. */
struct text {
	char s[200];
};

/* A measure_rule benchmark in words. */
static struct text benchmark_text(const char *measure, const char *method, const char *value, const char *direction,
				  const char *scale)
{
	struct text n;
	bool higher = !strcmp(direction, "higher"), proportion = strtod(scale, NULL) == 1;
	if (!strcmp(measure, "CW13")) {
		snprintf(n.s, sizeof(n.s), "timeliness >= %s", num_percent(value).s);
	} else if (!strcmp(method, "fixed")) {
		snprintf(n.s, sizeof(n.s), "%s %s", higher ? ">=" : "<=", num_rate(value, scale).s);
	} else if (!strcmp(method, "best_plan_minus")) {
		/* A proportion's offset is in percentage points: 0.10 is 10 points, not 10%. */
		struct num points = num_percent(value);
		points.s[strlen(points.s) - 1] = '\0';
		snprintf(n.s, sizeof(n.s), "best plan's rate %s %s%s", higher ? "-" : "+",
			 proportion ? points.s : num_plain(value).s, proportion ? " percentage points" : "");
	} else {
		snprintf(n.s, sizeof(n.s), "baseline-year rate %s %s", higher ? "+" : "-", num_percent(value).s);
	}
	return n;
}

static const char sql_rule[] = "SELECT name, value, description FROM qualstream.rule ORDER BY name";
static const char sql_measure_rule[] =
	"SELECT measure, first_year, last_year, direction, rate_scale, benchmark_method, benchmark_value,"
	" gap_closure_share, description FROM qualstream.measure_rule ORDER BY measure, first_year";
static const char sql_phase[] = "SELECT first_year, last_year, source, first_month, last_month, timeliness"
				" FROM qualstream.cw13_phase ORDER BY first_year, source";
static const char sql_tier[] = "SELECT min_share_met, repaid_pct, description, lead(min_share_met)"
			       " OVER (ORDER BY min_share_met) FROM qualstream.withhold_tier ORDER BY min_share_met";
static const char sql_plans[] = "SELECT plan_id, name, baseline_year, baseline_caw7_rate, cw13_from, listed"
				" FROM qualstream.plan_in_force ORDER BY plan_id COLLATE \"C\"";
static const char sql_hospitals[] = "SELECT count(*), count(*) FILTER (WHERE mdc_participant) FROM qualstream.hospital";
static const char sql_in_force[] =
	"SELECT year, dy, measure, direction, rate_scale, benchmark_method, benchmark_value, gap_closure_share,"
	" first_year FROM qualstream.measure_rule_year ORDER BY year, measure";
static const char sql_phase_year[] =
	"SELECT y.year, ph.source, ph.first_month, ph.last_month, ph.timeliness"
	" FROM (SELECT DISTINCT year FROM qualstream.measure_rule_year) y"
	" JOIN qualstream.cw13_phase ph ON y.year BETWEEN ph.first_year AND coalesce(ph.last_year, 9999)"
	" ORDER BY y.year, ph.source";

int report_print_rules(const char *conninfo, FILE *out, char *errstr, size_t errstr_size)
{
	enum { RULE, MEASURE_RULE, PHASE, TIER, PLANS, HOSPITALS, IN_FORCE, PHASE_YEAR, QUERIES };
	static const char *const sql[QUERIES] = {sql_rule,  sql_measure_rule, sql_phase,    sql_tier,
						 sql_plans, sql_hospitals,    sql_in_force, sql_phase_year};
	static const char *const what[QUERIES] = {"reading qualstream.rule",
						  "reading qualstream.measure_rule",
						  "reading qualstream.cw13_phase",
						  "reading qualstream.withhold_tier",
						  "reading qualstream.plan",
						  "reading qualstream.hospital",
						  "reading qualstream.measure_rule_year",
						  "reading qualstream.cw13_phase"};
	PGresult *res[QUERIES] = {0};
	int rc = -1;
	struct pg *pg = report_snapshot(conninfo, errstr, errstr_size);
	if (!pg)
		goto done;
	for (int q = 0; q < QUERIES; q++)
		if (pg_select(pg, what[q], sql[q], 0, NULL, PG_TEXT, &res[q], errstr, errstr_size))
			goto done;

	fprintf(out, "Rules in force. They are rows of the tables named below: edit them with SQL and the views\n"
		     "(and `qualstream report`) use the new values at the next query. The worker reads two of them\n"
		     "at start-up (pgsink_load_rules): cw13_timely_days, a counting rule, so changing it needs a\n"
		     "replay; and alert_due_soon_days, which a restart applies to the alerts raised from then on.\n\n");

	const PGresult *r = res[RULE];
	fprintf(out, "qualstream.rule: parameters\n");
	for (int i = 0; i < PQntuples(r); i++)
		fprintf(out, "  %-22s %-8s %s\n", PQgetvalue(r, i, 0), num_plain(pg_value(r, i, 1)).s,
			PQgetvalue(r, i, 2));

	r = res[MEASURE_RULE];
	fprintf(out, "\nqualstream.measure_rule: benchmarks by measure and year (a row covers first_year..last_year,\n"
		     "empty last_year = and later; where rows overlap, the latest first_year wins)\n");
	fprintf(out, "  %-7s %-10s %-9s %-6s %-18s %-40s %s\n", "measure", "years", "direction", "scale",
		"benchmark_method", "benchmark", "gap closure");
	for (int i = 0; i < PQntuples(r); i++) {
		const char *scale = PQgetvalue(r, i, 4), *share = pg_value(r, i, 7);
		char gap[96];
		snprintf(gap, sizeof(gap), "%s", share ? num_percent(share).s : "none");
		fprintf(out, "  %-7s %-10s %-9s %-6s %-18s %-40s %s\n", PQgetvalue(r, i, 0),
			years_text(PQgetvalue(r, i, 1), pg_value(r, i, 2)).s, PQgetvalue(r, i, 3), num_plain(scale).s,
			PQgetvalue(r, i, 5),
			benchmark_text(PQgetvalue(r, i, 0), PQgetvalue(r, i, 5), PQgetvalue(r, i, 6),
				       PQgetvalue(r, i, 3), scale)
				.s,
			gap);
		if (*PQgetvalue(r, i, 8))
			fprintf(out, "          %s\n", PQgetvalue(r, i, 8));
	}
	fprintf(out, "  gap closure: a plan that misses the benchmark still meets the measure when its rate reaches\n"
		     "  prior-year rate + share x (benchmark - prior-year rate), in the measure's direction.\n");

	r = res[PHASE];
	fprintf(out, "\nqualstream.cw13_phase: which months and sources CW13 evaluates\n");
	fprintf(out, "  %-10s %-9s %-7s %s\n", "years", "source", "months", "timeliness");
	for (int i = 0; i < PQntuples(r); i++)
		fprintf(out, "  %-10s %-9s %2s-%-4s %s\n", years_text(PQgetvalue(r, i, 0), pg_value(r, i, 1)).s,
			PQgetvalue(r, i, 2), PQgetvalue(r, i, 3), PQgetvalue(r, i, 4),
			PQgetvalue(r, i, 5)[0] == 't' ? "evaluated" : "not evaluated");

	r = res[TIER];
	fprintf(out, "\nqualstream.withhold_tier: withhold repaid by share of evaluated measures met\n");
	for (int i = 0; i < PQntuples(r); i++) {
		char range[200];
		if (pg_value(r, i, 3))
			snprintf(range, sizeof(range), "%s to under %s", num_percent(pg_value(r, i, 0)).s,
				 num_percent(pg_value(r, i, 3)).s);
		else
			snprintf(range, sizeof(range), "%s and more", num_percent(pg_value(r, i, 0)).s);
		fprintf(out, "  %-22s %5s%%  %s\n", range, num_plain(pg_value(r, i, 1)).s, PQgetvalue(r, i, 2));
	}

	r = res[PLANS];
	fprintf(out, "\nqualstream.plan: plans (unlisted plans found in the stream use the defaults, marked *)\n");
	if (!PQntuples(r))
		fprintf(out, "  (no plans)\n");
	else
		fprintf(out, "  %-16s %-24s %-13s %-18s %s\n", "plan_id", "name", "baseline_year", "baseline_caw7_rate",
			"cw13_from");
	for (int i = 0; i < PQntuples(r); i++) {
		char id[80];
		snprintf(id, sizeof(id), "%s%s", PQgetvalue(r, i, 0), PQgetvalue(r, i, 5)[0] == 't' ? "" : " *");
		fprintf(out, "  %-16s %-24s %-13s %-18s %s\n", id, PQgetvalue(r, i, 1), PQgetvalue(r, i, 2),
			pg_value(r, i, 3) ? num_plain(pg_value(r, i, 3)).s : "(from stream)",
			pg_value(r, i, 4) ? PQgetvalue(r, i, 4) : "(first submission)");
	}

	r = res[HOSPITALS];
	fprintf(out, "\nqualstream.hospital: %s hospitals listed, %s in the CMQCC Maternal Data Center\n",
		PQgetvalue(r, 0, 0), PQgetvalue(r, 0, 1));

	r = res[IN_FORCE];
	const PGresult *ph = res[PHASE_YEAR];
	fprintf(out, "\nIn force by demonstration year (a measure not listed is not evaluated that year)\n");
	int p = 0;
	for (int i = 0; i < PQntuples(r);) {
		const char *year = PQgetvalue(r, i, 0);
		fprintf(out, "  %s (DY%s)\n", year, PQgetvalue(r, i, 1));
		for (; i < PQntuples(r) && !strcmp(PQgetvalue(r, i, 0), year); i++) {
			const char *share = pg_value(r, i, 7);
			char gap[96];
			snprintf(gap, sizeof(gap), "gap closure %s", share ? num_percent(share).s : "none");
			fprintf(out, "    %-5s %-40s %-18s (row from %s)\n", PQgetvalue(r, i, 2),
				benchmark_text(PQgetvalue(r, i, 2), PQgetvalue(r, i, 5), PQgetvalue(r, i, 6),
					       PQgetvalue(r, i, 3), PQgetvalue(r, i, 4))
					.s,
				gap, PQgetvalue(r, i, 8));
		}
		for (; p < PQntuples(ph) && atoi(PQgetvalue(ph, p, 0)) < atoi(year); p++)
			;
		for (; p < PQntuples(ph) && !strcmp(PQgetvalue(ph, p, 0), year); p++)
			fprintf(out, "    CW13  %s: frequency months %s-%s, timeliness %s\n", PQgetvalue(ph, p, 1),
				PQgetvalue(ph, p, 2), PQgetvalue(ph, p, 3),
				PQgetvalue(ph, p, 4)[0] == 't' ? "evaluated" : "not evaluated");
	}
	if (fflush(out) || ferror(out)) {
		errstr_set(errstr, errstr_size, "writing the rules failed");
		goto done;
	}
	rc = 0;
done:
	for (int q = 0; q < QUERIES; q++)
		PQclear(res[q]);
	pg_free(pg);
	return rc;
}
