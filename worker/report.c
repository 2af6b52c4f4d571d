/*
 * report.c: the `report` command (see report.h), and the snapshot and number
 * formatting it shares with `rules` (report_rules.c, report_internal.h). It
 * opens one connection and one read-only, repeatable-read transaction, so
 * every section of a report comes from the same snapshot, runs a few queries
 * on the views of 002_evaluation.sql and 009_gap_to_target.sql and prints
 * them. It reads four results sorted alike by (plan, year): the plan-years
 * with their withhold, the measures, the NTSV rows and the gaps to target, and
 * walks them together. Text is for people, CSV (RFC 4180 quoting, one flat
 * table with a section column) and JSON (nested by plan and year) for
 * programs.
 */
#include "report.h"

#include <jansson.h>
#include <libpq-fe.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "compiler.h"
#include "errstr.h"
#include "pg.h"
#include "report_internal.h"

/* ---- PostgreSQL ---- */

struct pg *report_snapshot(const char *conninfo, char *errstr, size_t errstr_size)
{
	struct pg *pg = pg_connect(conninfo, errstr, errstr_size);
	/*
	 * JIT off: the views' row estimates (generate_series, fresh tables) can
	 * push small queries over jit_above_cost, and compiling then costs
	 * seconds to save microseconds.
	 */
	if (pg && pg_exec(pg, "starting a read-only transaction",
			  "SET jit = off; BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", errstr, errstr_size)) {
		pg_free(pg);
		pg = NULL;
	}
	return pg;
}

/* ---- number formatting (report_internal.h) ---- */

static void strip_zeros(char *s)
{
	if (!strchr(s, '.') || strpbrk(s, "eE"))
		return;
	size_t n = strlen(s);
	while (s[n - 1] == '0')
		s[--n] = '\0';
	if (s[n - 1] == '.')
		s[--n] = '\0';
}

struct num num_plain(const char *v)
{
	struct num n = {""};
	if (v) {
		snprintf(n.s, sizeof(n.s), "%s", v);
		strip_zeros(n.s);
	}
	return n;
}

struct num num_percent(const char *v)
{
	struct num n = {"-"};
	if (v) {
		snprintf(n.s, sizeof(n.s), "%.2f", strtod(v, NULL) * 100);
		strip_zeros(n.s);
		strcat(n.s, "%");
	}
	return n;
}

struct num num_rate(const char *v, const char *scale)
{
	struct num n = {"-"};
	if (!v)
		return n;
	if (!scale || strtod(scale, NULL) == 1)
		return num_percent(v);
	snprintf(n.s, sizeof(n.s), "%.2f", strtod(v, NULL));
	strip_zeros(n.s);
	size_t len = strlen(n.s);
	snprintf(n.s + len, sizeof(n.s) - len, "/%.12s", num_plain(scale).s);
	return n;
}

/* ---- CSV ---- */

/* Writes one record: fields quoted when they hold a comma, quote or line break, quotes doubled. */
static void csv_row(FILE *out, const char *const *fields, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		const char *s = fields[i] ? fields[i] : "";
		if (i)
			fputc(',', out);
		if (strpbrk(s, ",\"\r\n")) {
			fputc('"', out);
			for (; *s; s++) {
				if (*s == '"')
					fputc('"', out);
				fputc(*s, out);
			}
			fputc('"', out);
		} else {
			fputs(s, out);
		}
	}
	fputc('\n', out);
}

/* ---- JSON: each returns a new reference, json_null() for SQL NULL ---- */

static json_t *jnum(const char *v)
{
	return v ? json_real(strtod(v, NULL)) : json_null();
}

static json_t *jint(const char *v)
{
	return v ? json_integer(strtoll(v, NULL, 10)) : json_null();
}

static json_t *jstr(const char *v)
{
	json_t *s = v ? json_string(v) : NULL;
	return s ? s : json_null();
}

static json_t *jbool(const char *v)
{
	return v ? json_boolean(v[0] == 't') : json_null();
}

/* ---- report ---- */

/*
 * Left as written (clang-format off ... on): the queries read as SQL, the enums
 * name their columns in order, and the CSV rows are laid out column by column.
 */
/* clang-format off */
/* Every query filters on $1 plan_id (NULL: all) and $2 year (NULL: all) and sorts by plan (bytewise), year. */
#define FILTER(p, y) " WHERE ($1::text IS NULL OR " p " = $1) AND ($2::int IS NULL OR " y " = $2)"

enum { K_PLAN, K_YEAR, K_NAME, K_MET, K_EVALUATED, K_SHARE, K_REPAID };
static const char sql_keys[] =
	"SELECT k.plan_id, k.year, coalesce(p.name, ''), w.measures_met, w.measures_evaluated, w.share_met,"
	" w.withhold_repaid_pct"
	" FROM (SELECT plan_id, year FROM qualstream.measure_evaluation"
	"       UNION SELECT plan_id, year FROM qualstream.ntsv_evaluation) k"
	" LEFT JOIN qualstream.withhold_result w ON w.plan_id = k.plan_id AND w.year = k.year"
	" LEFT JOIN qualstream.plan p ON p.plan_id = k.plan_id" FILTER("k.plan_id", "k.year")
	" ORDER BY k.plan_id COLLATE \"C\", k.year";

/* The measures' and the gaps' queries start with the same columns (C_*), read by one json_measure(). */
enum { C_PLAN, C_YEAR, C_MEASURE, C_STRATUM, C_NUM, C_DEN, C_RATE, C_SCALE, C_DIRECTION, C_BENCH, C_TARGET, C_MET,
       C_SHARED };
#define SHARED_COLUMNS "plan_id, year, measure, stratum, numerator, denominator, rate, rate_scale, direction," \
	" benchmark, gap_closure_target, met"

enum { M_PRIOR = C_SHARED, M_MET_BY, M_DETAIL };
static const char sql_measures[] =
	"SELECT " SHARED_COLUMNS ", prior_rate, met_by, detail"
	" FROM qualstream.measure_evaluation" FILTER("plan_id", "year")
	" ORDER BY plan_id COLLATE \"C\", year, measure COLLATE \"C\", stratum COLLATE \"C\"";

enum { N_PLAN, N_YEAR, N_HOSPITAL, N_NAME, N_MDC, N_CESAREANS, N_NTSV, N_RATE, N_TARGET, N_ABOVE, N_MISSING,
       N_DELIVERIES };
static const char sql_ntsv[] =
	"SELECT plan_id, year, hospital_id, hospital_name, mdc_participant, ntsv_cesareans, ntsv_deliveries, rate,"
	" target, above_target, missing_data, deliveries"
	" FROM qualstream.ntsv_evaluation" FILTER("plan_id", "year")
	" ORDER BY plan_id COLLATE \"C\", year, hospital_id IS NOT NULL, above_target DESC NULLS LAST,"
	" rate DESC NULLS LAST, hospital_id COLLATE \"C\"";

enum { G_NEED_BENCH = C_SHARED, G_NEED_TARGET, G_EXCESS_BENCH, G_EXCESS_TARGET };
static const char sql_gap[] =
	"SELECT " SHARED_COLUMNS ", needed_for_benchmark, needed_for_gap_closure, excess_over_benchmark,"
	" excess_over_gap_closure"
	" FROM qualstream.measure_gap" FILTER("plan_id", "year")
	" ORDER BY plan_id COLLATE \"C\", year, measure COLLATE \"C\", stratum COLLATE \"C\"";
/* clang-format on */

/* A result read in step with the plan-years: rows of one plan-year are consecutive. */
struct cursor {
	const PGresult *res;
	int row;
};

/* True while the cursor's current row belongs to the plan-year (columns 0 and 1 are plan_id and year). */
static bool at(const struct cursor *c, const char *plan, const char *year)
{
	return c->row < PQntuples(c->res) && !strcmp(PQgetvalue(c->res, c->row, 0), plan) &&
	       !strcmp(PQgetvalue(c->res, c->row, 1), year);
}

/* "CAW8", or "CW13:MEDICAID" with its stratum: how a row of the measures or the gaps is named for people. */
struct label {
	char s[160]; /* a measure's name, ':' and a stratum of up to "hospital:" and a 63-byte id */
};
static struct label measure_label(const PGresult *r, int i)
{
	struct label l;
	const char *stratum = PQgetvalue(r, i, C_STRATUM);
	snprintf(l.s, sizeof(l.s), "%s%s%s", PQgetvalue(r, i, C_MEASURE), *stratum ? ":" : "", stratum);
	return l;
}

/* A gap count for people: "met" for 0, else "12 more" or "12 over" (what); "-" for NULL. */
static struct num gap_count(const char *k, const char *what)
{
	struct num n = {"-"};
	if (k && !strcmp(k, "0"))
		snprintf(n.s, sizeof(n.s), "met");
	else if (k)
		snprintf(n.s, sizeof(n.s), "%.40s %s", k, what);
	return n;
}

/* Prints the gap rows of a plan-year for people, advancing g past them. */
static void text_gap(FILE *out, struct cursor *g, const char *plan, const char *year)
{
	if (!at(g, plan, year))
		return;
	fprintf(out, "  gap to target, given the denominator so far: \"more\" = numerator units still needed (CW13:"
		     " further originals, all on time);\n  \"over\" = numerator units above the bar (NTSV: cesareans"
		     " to review; CAW7: ED visits); met by either bar\n");
	fprintf(out, "  %-28s %10s %12s %12s %12s %14s %12s %14s\n", "measure", "numerator", "denominator", "rate",
		"benchmark", "to benchmark", "gap target", "to gap target");
	for (; at(g, plan, year); g->row++) {
		const PGresult *r = g->res;
		int i = g->row;
		bool higher = !strcmp(PQgetvalue(r, i, C_DIRECTION), "higher");
		const char *scale = pg_value(r, i, C_SCALE);
		const char *what = higher ? "more" : "over";
		fprintf(out, "  %-28s %10s %12s %12s %12s %14s %12s %14s\n", measure_label(r, i).s,
			PQgetvalue(r, i, C_NUM), PQgetvalue(r, i, C_DEN), num_rate(pg_value(r, i, C_RATE), scale).s,
			num_rate(pg_value(r, i, C_BENCH), scale).s,
			gap_count(pg_value(r, i, higher ? G_NEED_BENCH : G_EXCESS_BENCH), what).s,
			num_rate(pg_value(r, i, C_TARGET), scale).s,
			gap_count(pg_value(r, i, higher ? G_NEED_TARGET : G_EXCESS_TARGET), what).s);
	}
}

/* Prints plan-year k of keys for people, advancing m, n and g past its measure, NTSV and gap rows. */
static void text_plan_year(FILE *out, const PGresult *keys, int k, struct cursor *m, struct cursor *n, struct cursor *g)
{
	const char *plan = PQgetvalue(keys, k, K_PLAN), *year = PQgetvalue(keys, k, K_YEAR);
	const char *name = PQgetvalue(keys, k, K_NAME);
	fprintf(out, "== plan %s%s%s%s, %s (DY%d) ==\n", plan, *name ? " (" : "", name, *name ? ")" : "", year,
		atoi(year) - 2014);
	if (pg_value(keys, k, K_SHARE))
		fprintf(out, "withhold: %s of %s evaluated measures met (%s): %s%% of the withhold repaid\n",
			PQgetvalue(keys, k, K_MET), PQgetvalue(keys, k, K_EVALUATED),
			num_percent(pg_value(keys, k, K_SHARE)).s, num_plain(pg_value(keys, k, K_REPAID)).s);
	else
		fprintf(out, "withhold: no measure evaluated\n");
	if (at(m, plan, year)) {
		fprintf(out, "  %-8s %10s %12s %12s %12s %12s %12s  %s\n", "measure", "numerator", "denominator",
			"rate", "benchmark", "gap target", "prior rate", "met");
		int first = m->row;
		for (; at(m, plan, year); m->row++) {
			const PGresult *r = m->res;
			int i = m->row;
			const char *scale = pg_value(r, i, C_SCALE), *met = pg_value(r, i, C_MET);
			char verdict[64];
			if (!met)
				snprintf(verdict, sizeof(verdict), "not evaluated");
			else if (met[0] == 't')
				snprintf(verdict, sizeof(verdict), "yes (%s)", PQgetvalue(r, i, M_MET_BY));
			else
				snprintf(verdict, sizeof(verdict), "NO");
			fprintf(out, "  %-8s %10s %12s %12s %12s %12s %12s  %s\n", measure_label(r, i).s,
				PQgetvalue(r, i, C_NUM), PQgetvalue(r, i, C_DEN),
				num_rate(pg_value(r, i, C_RATE), scale).s, num_rate(pg_value(r, i, C_BENCH), scale).s,
				num_rate(pg_value(r, i, C_TARGET), scale).s, num_rate(pg_value(r, i, M_PRIOR), scale).s,
				verdict);
		}
		for (int i = first; i < m->row; i++)
			if (pg_value(m->res, i, M_DETAIL))
				fprintf(out, "  %s: %s\n", PQgetvalue(m->res, i, C_MEASURE),
					PQgetvalue(m->res, i, M_DETAIL));
	}
	if (at(n, plan, year)) {
		fprintf(out, "  NTSV cesarean rate (target %s, lower is better; hospitals above target first)\n",
			num_percent(pg_value(n->res, n->row, N_TARGET)).s);
		fprintf(out, "  %-32s %14s %15s %8s %12s %13s\n", "hospital", "NTSV cesareans", "NTSV deliveries",
			"rate", "above target", "missing data");
		for (; at(n, plan, year); n->row++) {
			const PGresult *r = n->res;
			int i = n->row;
			char label[96], missing[48];
			const char *id = pg_value(r, i, N_HOSPITAL), *hname = pg_value(r, i, N_NAME);
			if (!id)
				snprintf(label, sizeof(label), "(whole plan)");
			else
				snprintf(label, sizeof(label), "%s%s%s%s", id, hname && *hname ? " " : "",
					 hname ? hname : "",
					 pg_value(r, i, N_MDC) && pg_value(r, i, N_MDC)[0] == 't' ? " [MDC]" : "");
			snprintf(missing, sizeof(missing), "%s of %s", PQgetvalue(r, i, N_MISSING),
				 PQgetvalue(r, i, N_DELIVERIES));
			const char *above = pg_value(r, i, N_ABOVE);
			fprintf(out, "  %-32s %14s %15s %8s %12s %13s\n", label, PQgetvalue(r, i, N_CESAREANS),
				PQgetvalue(r, i, N_NTSV), num_percent(pg_value(r, i, N_RATE)).s,
				!above            ? "-"
				: above[0] == 't' ? "ABOVE"
						  : "no",
				missing);
		}
	}
	text_gap(out, g, plan, year);
	fputc('\n', out);
}

static const char *const csv_header[] = {"section",
					 "plan_id",
					 "plan_name",
					 "year",
					 "measure",
					 "stratum",
					 "numerator",
					 "denominator",
					 "rate",
					 "benchmark",
					 "gap_closure_target",
					 "prior_rate",
					 "met",
					 "met_by",
					 "withhold_repaid_pct",
					 "detail",
					 "needed_for_benchmark",
					 "needed_for_gap_closure",
					 "excess_over_benchmark",
					 "excess_over_gap_closure"};
#define CSV_COLUMNS (ARRAY_LEN(csv_header))

/* clang-format off */
/* Writes plan-year k as CSV records (withhold, measures, NTSV, gaps), advancing m, n and g past its rows. */
static void csv_plan_year(FILE *out, const PGresult *keys, int k, struct cursor *m, struct cursor *n,
			  struct cursor *g)
{
	const char *plan = PQgetvalue(keys, k, K_PLAN), *year = PQgetvalue(keys, k, K_YEAR);
	const char *name = PQgetvalue(keys, k, K_NAME);
	if (pg_value(keys, k, K_EVALUATED)) {
		struct num share = num_plain(pg_value(keys, k, K_SHARE));
		struct num repaid = num_plain(pg_value(keys, k, K_REPAID));
		const char *f[CSV_COLUMNS] = {"withhold", plan, name, year, "WITHHOLD", "",
					      PQgetvalue(keys, k, K_MET), PQgetvalue(keys, k, K_EVALUATED),
					      share.s, NULL, NULL, NULL, NULL, NULL, repaid.s, NULL};
		csv_row(out, f, CSV_COLUMNS);
	}
	for (; at(m, plan, year); m->row++) {
		const PGresult *r = m->res;
		int i = m->row;
		struct num rate = num_plain(pg_value(r, i, C_RATE)), bench = num_plain(pg_value(r, i, C_BENCH)),
			   target = num_plain(pg_value(r, i, C_TARGET)), prior = num_plain(pg_value(r, i, M_PRIOR));
		const char *met = pg_value(r, i, C_MET);
		const char *f[CSV_COLUMNS] = {"measure", plan, name, year, PQgetvalue(r, i, C_MEASURE),
					      PQgetvalue(r, i, C_STRATUM), PQgetvalue(r, i, C_NUM),
					      PQgetvalue(r, i, C_DEN), rate.s, bench.s, target.s, prior.s,
					      !met ? "" : met[0] == 't' ? "true" : "false", pg_value(r, i, M_MET_BY),
					      NULL, pg_value(r, i, M_DETAIL)};
		csv_row(out, f, CSV_COLUMNS);
	}
	for (; at(n, plan, year); n->row++) {
		const PGresult *r = n->res;
		int i = n->row;
		const char *id = pg_value(r, i, N_HOSPITAL), *hname = pg_value(r, i, N_NAME);
		const char *mdc = pg_value(r, i, N_MDC);
		const char *above = pg_value(r, i, N_ABOVE);
		char stratum[128], detail[300];
		snprintf(stratum, sizeof(stratum), "%s%s", id ? "hospital:" : "", id ? id : "");
		snprintf(detail, sizeof(detail), "%s%s%s of %s deliveries excluded for missing data",
			 hname && *hname ? hname : "",
			 !mdc		? (hname && *hname ? "; " : "")
			 : mdc[0] == 't' ? " (MDC participant); "
					 : " (not in MDC); ",
			 PQgetvalue(r, i, N_MISSING), PQgetvalue(r, i, N_DELIVERIES));
		struct num rate = num_plain(pg_value(r, i, N_RATE)), target = num_plain(pg_value(r, i, N_TARGET));
		const char *f[CSV_COLUMNS] = {"ntsv", plan, name, year, "NTSV_CSECTION", stratum,
					      PQgetvalue(r, i, N_CESAREANS), PQgetvalue(r, i, N_NTSV), rate.s,
					      target.s, NULL, NULL, !above ? "" : above[0] == 't' ? "false" : "true",
					      NULL, NULL, detail};
		csv_row(out, f, CSV_COLUMNS);
	}
	for (; at(g, plan, year); g->row++) {
		const PGresult *r = g->res;
		int i = g->row;
		struct num rate = num_plain(pg_value(r, i, C_RATE)), bench = num_plain(pg_value(r, i, C_BENCH)),
			   target = num_plain(pg_value(r, i, C_TARGET));
		const char *met = pg_value(r, i, C_MET);
		const char *f[CSV_COLUMNS] = {"gap", plan, name, year, PQgetvalue(r, i, C_MEASURE),
					      PQgetvalue(r, i, C_STRATUM), PQgetvalue(r, i, C_NUM),
					      PQgetvalue(r, i, C_DEN), rate.s, bench.s, target.s, NULL,
					      !met ? "" : met[0] == 't' ? "true" : "false", NULL, NULL, NULL,
					      pg_value(r, i, G_NEED_BENCH), pg_value(r, i, G_NEED_TARGET),
					      pg_value(r, i, G_EXCESS_BENCH), pg_value(r, i, G_EXCESS_TARGET)};
		csv_row(out, f, CSV_COLUMNS);
	}
}

/* clang-format on */

/* A JSON key, the column it is read from and how its text becomes a value. */
struct json_field {
	const char *key;
	int column;
	json_t *(*value)(const char *v);
};

/* Sets the fields of row i of r in o, in order. */
static void json_fields(json_t *o, const PGresult *r, int i, const struct json_field *f, size_t n)
{
	for (size_t k = 0; k < n; k++)
		json_object_set_new(o, f[k].key, f[k].value(pg_value(r, i, f[k].column)));
}

/* Row i of the measures or the gaps as a JSON object with its shared columns up to the bars (a new reference). */
static json_t *json_measure(const PGresult *r, int i)
{
	static const struct json_field shared[] = {
		{"measure", C_MEASURE, jstr},     {"stratum", C_STRATUM, jstr}, {"numerator", C_NUM, jint},
		{"denominator", C_DEN, jint},     {"rate", C_RATE, jnum},       {"rate_scale", C_SCALE, jnum},
		{"direction", C_DIRECTION, jstr}, {"benchmark", C_BENCH, jnum}, {"gap_closure_target", C_TARGET, jnum},
	};
	json_t *o = json_object();
	json_fields(o, r, i, shared, ARRAY_LEN(shared));
	return o;
}

/* Plan-year k as a JSON object, advancing m, n and g past its rows. Returns a new reference. */
static json_t *json_plan_year(const PGresult *keys, int k, struct cursor *m, struct cursor *n, struct cursor *g)
{
	const char *plan = PQgetvalue(keys, k, K_PLAN), *year = PQgetvalue(keys, k, K_YEAR);
	json_t *py = json_object(), *measures = json_array(), *hospitals = json_array();
	json_object_set_new(py, "year", json_integer(atoi(year)));
	json_object_set_new(py, "dy", json_integer(atoi(year) - 2014));
	json_t *w = json_object();
	json_object_set_new(w, "measures_met", jint(pg_value(keys, k, K_MET)));
	json_object_set_new(w, "measures_evaluated", jint(pg_value(keys, k, K_EVALUATED)));
	json_object_set_new(w, "share_met", jnum(pg_value(keys, k, K_SHARE)));
	json_object_set_new(w, "withhold_repaid_pct", jnum(pg_value(keys, k, K_REPAID)));
	json_object_set_new(py, "withhold", w);
	for (; at(m, plan, year); m->row++) {
		const PGresult *r = m->res;
		int i = m->row;
		json_t *o = json_measure(r, i);
		json_object_set_new(o, "prior_rate", jnum(pg_value(r, i, M_PRIOR)));
		json_object_set_new(o, "met", jbool(pg_value(r, i, C_MET)));
		json_object_set_new(o, "met_by", jstr(pg_value(r, i, M_MET_BY)));
		json_object_set_new(o, "detail", jstr(pg_value(r, i, M_DETAIL)));
		json_array_append_new(measures, o);
	}
	json_object_set_new(py, "measures", measures);
	json_t *ntsv = json_object(), *whole = json_null(), *target = json_null();
	for (; at(n, plan, year); n->row++) {
		const PGresult *r = n->res;
		int i = n->row;
		json_t *o = json_object();
		if (pg_value(r, i, N_HOSPITAL)) {
			json_object_set_new(o, "hospital_id", jstr(pg_value(r, i, N_HOSPITAL)));
			json_object_set_new(o, "name", jstr(pg_value(r, i, N_NAME)));
			json_object_set_new(o, "mdc_participant", jbool(pg_value(r, i, N_MDC)));
		}
		json_object_set_new(o, "ntsv_cesareans", jint(pg_value(r, i, N_CESAREANS)));
		json_object_set_new(o, "ntsv_deliveries", jint(pg_value(r, i, N_NTSV)));
		json_object_set_new(o, "rate", jnum(pg_value(r, i, N_RATE)));
		json_object_set_new(o, "above_target", jbool(pg_value(r, i, N_ABOVE)));
		json_object_set_new(o, "missing_data", jint(pg_value(r, i, N_MISSING)));
		json_object_set_new(o, "deliveries", jint(pg_value(r, i, N_DELIVERIES)));
		json_decref(target);
		target = jnum(pg_value(r, i, N_TARGET));
		if (pg_value(r, i, N_HOSPITAL)) {
			json_array_append_new(hospitals, o);
		} else {
			json_decref(whole);
			whole = o;
		}
	}
	json_object_set_new(ntsv, "target", target);
	json_object_set_new(ntsv, "plan", whole);
	json_object_set_new(ntsv, "hospitals", hospitals);
	json_object_set_new(py, "ntsv", ntsv);
	static const struct json_field counts[] = {
		{"met", C_MET, jbool},
		{"needed_for_benchmark", G_NEED_BENCH, jint},
		{"needed_for_gap_closure", G_NEED_TARGET, jint},
		{"excess_over_benchmark", G_EXCESS_BENCH, jint},
		{"excess_over_gap_closure", G_EXCESS_TARGET, jint},
	};
	json_t *gaps = json_array();
	for (; at(g, plan, year); g->row++) {
		json_t *o = json_measure(g->res, g->row);
		json_fields(o, g->res, g->row, counts, ARRAY_LEN(counts));
		json_array_append_new(gaps, o);
	}
	json_object_set_new(py, "gap", gaps);
	return py;
}

int report_parse_format(const char *name, enum report_format *format)
{
	static const char *const names[] = {"text", "csv", "json"};
	for (size_t i = 0; i < ARRAY_LEN(names); i++)
		if (!strcmp(name, names[i])) {
			*format = (enum report_format)i;
			return 0;
		}
	return -1;
}

int report_print(const char *conninfo, const struct report_options *opts, FILE *out, char *errstr, size_t errstr_size)
{
	PGresult *keys = NULL, *measures = NULL, *ntsv = NULL, *gap = NULL;
	json_t *doc = NULL;
	int rc = -1;
	char year[16];
	snprintf(year, sizeof(year), "%d", opts->year);
	const char *params[2] = {opts->plan, opts->year ? year : NULL};
	struct pg *pg = report_snapshot(conninfo, errstr, errstr_size);
	if (!pg ||
	    pg_select(pg, "reading qualstream.withhold_result", sql_keys, 2, params, PG_TEXT, &keys, errstr,
		      errstr_size) ||
	    pg_select(pg, "reading qualstream.measure_evaluation", sql_measures, 2, params, PG_TEXT, &measures, errstr,
		      errstr_size) ||
	    pg_select(pg, "reading qualstream.ntsv_evaluation", sql_ntsv, 2, params, PG_TEXT, &ntsv, errstr,
		      errstr_size) ||
	    pg_select(pg, "reading qualstream.measure_gap", sql_gap, 2, params, PG_TEXT, &gap, errstr, errstr_size))
		goto done;
	struct cursor m = {measures, 0}, n = {ntsv, 0}, g = {gap, 0};
	int rows = PQntuples(keys);
	switch (opts->format) {
	case REPORT_TEXT:
		if (!rows)
			fprintf(out, "nothing to report%s%s%s%s: no measure data in qualstream.measure_period\n",
				opts->plan ? " for plan " : "", opts->plan ? opts->plan : "", opts->year ? " in " : "",
				opts->year ? year : "");
		for (int k = 0; k < rows; k++)
			text_plan_year(out, keys, k, &m, &n, &g);
		break;
	case REPORT_CSV:
		csv_row(out, csv_header, CSV_COLUMNS);
		for (int k = 0; k < rows; k++)
			csv_plan_year(out, keys, k, &m, &n, &g);
		break;
	case REPORT_JSON: {
		doc = json_object();
		json_t *plans = json_array(), *plan = NULL, *years = NULL;
		for (int k = 0; k < rows; k++) {
			const char *id = PQgetvalue(keys, k, K_PLAN);
			if (!plan || strcmp(json_string_value(json_object_get(plan, "plan_id")), id)) {
				plan = json_object();
				years = json_array();
				json_object_set_new(plan, "plan_id", jstr(id));
				json_object_set_new(plan, "name", jstr(PQgetvalue(keys, k, K_NAME)));
				json_object_set_new(plan, "years", years); /* borrowed until plans is freed */
				json_array_append_new(plans, plan);
			}
			json_array_append_new(years, json_plan_year(keys, k, &m, &n, &g));
		}
		json_object_set_new(doc, "plans", plans);
		if (json_dumpf(doc, out, JSON_INDENT(2) | JSON_REAL_PRECISION(15) | JSON_PRESERVE_ORDER)) {
			errstr_set(errstr, errstr_size, "writing JSON failed");
			goto done;
		}
		fputc('\n', out);
		break;
	}
	}
	if (fflush(out) || ferror(out)) {
		errstr_set(errstr, errstr_size, "writing the report failed");
		goto done;
	}
	rc = 0;
done:
	json_decref(doc);
	PQclear(keys);
	PQclear(measures);
	PQclear(ntsv);
	PQclear(gap);
	pg_free(pg);
	return rc;
}
