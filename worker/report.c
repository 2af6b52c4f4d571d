/*
 * report.c: the `report` and `rules` commands (see report.h). Each opens one
 * connection and one read-only, repeatable-read transaction, so every section
 * of a report comes from the same snapshot, runs a few queries on the views
 * of 002_evaluation.sql and prints them. report_print reads three results
 * sorted alike by (plan, year): the plan-years with their withhold, the
 * measures and the NTSV rows, and walks them together. Text is for people,
 * CSV (RFC 4180 quoting, one flat table with a section column) and JSON
 * (nested by plan and year) for programs.
 */
#include "report.h"

#include <jansson.h>
#include <libpq-fe.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "compiler.h"
#include "pgsink.h"

/* ---- PostgreSQL ---- */

/* Connects and opens a read-only snapshot. NULL with errstr set on failure; caller PQfinish()es. */
static PGconn *open_snapshot(const char *conninfo, char *errstr, size_t errstr_size)
{
	PGconn *conn = PQconnectdb(conninfo);
	PGresult *res = NULL;
	if (PQstatus(conn) != CONNECTION_OK) {
		pgsink_error(errstr, errstr_size, "connecting to PostgreSQL", conn, NULL);
		goto fail;
	}
	/*
	 * JIT off: the views' row estimates (generate_series, fresh tables) can
	 * push small queries over jit_above_cost, and compiling then costs
	 * seconds to save microseconds.
	 */
	res = PQexec(conn, "SET client_min_messages = warning; SET client_encoding = 'UTF8'; SET jit = off;"
			   " BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY");
	if (PQresultStatus(res) != PGRES_COMMAND_OK) {
		pgsink_error(errstr, errstr_size, "starting a read-only transaction", conn, res);
		goto fail;
	}
	PQclear(res);
	return conn;
fail:
	PQclear(res);
	PQfinish(conn);
	return NULL;
}

/* Runs a query returning rows. NULL with errstr set on failure; caller PQclear()s. */
static PGresult *select_rows(PGconn *conn, const char *what, const char *sql, int nparams, const char *const *params,
			     char *errstr, size_t errstr_size)
{
	PGresult *res = PQexecParams(conn, sql, nparams, NULL, params, NULL, NULL, 0);
	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		pgsink_error(errstr, errstr_size, what, conn, res);
		PQclear(res);
		res = NULL;
	}
	return res;
}

/* The value at row, col, or NULL for SQL NULL; borrowed until PQclear(res). */
static const char *val(const PGresult *res, int row, int col)
{
	return PQgetisnull(res, row, col) ? NULL : PQgetvalue(res, row, col);
}

/* ---- number formatting: by value, so no static buffers ---- */

struct num {
	char s[80];
};

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

/* A numeric as PostgreSQL computed it, without trailing zeros ("0.5500" -> "0.55"); "" for NULL. */
static struct num plain(const char *v)
{
	struct num n = {""};
	if (v) {
		snprintf(n.s, sizeof(n.s), "%s", v);
		strip_zeros(n.s);
	}
	return n;
}

/* A proportion as a percentage with at most two decimals ("0.239" -> "23.9%"); "-" for NULL. */
static struct num percent(const char *v)
{
	struct num n = {"-"};
	if (v) {
		snprintf(n.s, sizeof(n.s), "%.2f", strtod(v, NULL) * 100);
		strip_zeros(n.s);
		strcat(n.s, "%");
	}
	return n;
}

/* A rate for people: a percentage when scale is 1, else "12.5/1000" (per scale units); "-" for NULL. */
static struct num rate_text(const char *v, const char *scale)
{
	struct num n = {"-"};
	if (!v)
		return n;
	if (!scale || strtod(scale, NULL) == 1)
		return percent(v);
	snprintf(n.s, sizeof(n.s), "%.2f", strtod(v, NULL));
	strip_zeros(n.s);
	size_t len = strlen(n.s);
	snprintf(n.s + len, sizeof(n.s) - len, "/%.12s", plain(scale).s);
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

enum { M_PLAN, M_YEAR, M_MEASURE, M_STRATUM, M_NUM, M_DEN, M_RATE, M_BENCH, M_TARGET, M_PRIOR, M_MET, M_MET_BY,
       M_DIRECTION, M_SCALE, M_DETAIL };
static const char sql_measures[] =
	"SELECT plan_id, year, measure, stratum, numerator, denominator, rate, benchmark, gap_closure_target,"
	" prior_rate, met, met_by, direction, rate_scale, detail"
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

/* Prints plan-year k of keys for people, advancing m and n past its measure and NTSV rows. */
static void text_plan_year(FILE *out, const PGresult *keys, int k, struct cursor *m, struct cursor *n)
{
	const char *plan = PQgetvalue(keys, k, K_PLAN), *year = PQgetvalue(keys, k, K_YEAR);
	const char *name = PQgetvalue(keys, k, K_NAME);
	fprintf(out, "== plan %s%s%s%s, %s (DY%d) ==\n", plan, *name ? " (" : "", name, *name ? ")" : "", year,
		atoi(year) - 2014);
	if (val(keys, k, K_SHARE))
		fprintf(out, "withhold: %s of %s evaluated measures met (%s): %s%% of the withhold repaid\n",
			PQgetvalue(keys, k, K_MET), PQgetvalue(keys, k, K_EVALUATED),
			percent(val(keys, k, K_SHARE)).s, plain(val(keys, k, K_REPAID)).s);
	else
		fprintf(out, "withhold: no measure evaluated\n");
	if (at(m, plan, year)) {
		fprintf(out, "  %-8s %10s %12s %12s %12s %12s %12s  %s\n", "measure", "numerator", "denominator",
			"rate", "benchmark", "gap target", "prior rate", "met");
		int first = m->row;
		for (; at(m, plan, year); m->row++) {
			const PGresult *r = m->res;
			int i = m->row;
			const char *scale = val(r, i, M_SCALE), *met = val(r, i, M_MET);
			char label[64], verdict[64];
			const char *stratum = PQgetvalue(r, i, M_STRATUM);
			snprintf(label, sizeof(label), "%s%s%s", PQgetvalue(r, i, M_MEASURE), *stratum ? ":" : "",
				 stratum);
			if (!met)
				snprintf(verdict, sizeof(verdict), "not evaluated");
			else if (met[0] == 't')
				snprintf(verdict, sizeof(verdict), "yes (%s)", PQgetvalue(r, i, M_MET_BY));
			else
				snprintf(verdict, sizeof(verdict), "NO");
			fprintf(out, "  %-8s %10s %12s %12s %12s %12s %12s  %s\n", label, PQgetvalue(r, i, M_NUM),
				PQgetvalue(r, i, M_DEN), rate_text(val(r, i, M_RATE), scale).s,
				rate_text(val(r, i, M_BENCH), scale).s, rate_text(val(r, i, M_TARGET), scale).s,
				rate_text(val(r, i, M_PRIOR), scale).s, verdict);
		}
		for (int i = first; i < m->row; i++)
			if (val(m->res, i, M_DETAIL))
				fprintf(out, "  %s: %s\n", PQgetvalue(m->res, i, M_MEASURE),
					PQgetvalue(m->res, i, M_DETAIL));
	}
	if (at(n, plan, year)) {
		fprintf(out, "  NTSV cesarean rate (target %s, lower is better; hospitals above target first)\n",
			percent(val(n->res, n->row, N_TARGET)).s);
		fprintf(out, "  %-32s %14s %15s %8s %12s %13s\n", "hospital", "NTSV cesareans", "NTSV deliveries",
			"rate", "above target", "missing data");
		for (; at(n, plan, year); n->row++) {
			const PGresult *r = n->res;
			int i = n->row;
			char label[96], missing[48];
			const char *id = val(r, i, N_HOSPITAL), *hname = val(r, i, N_NAME);
			if (!id)
				snprintf(label, sizeof(label), "(whole plan)");
			else
				snprintf(label, sizeof(label), "%s%s%s%s", id, hname && *hname ? " " : "",
					 hname ? hname : "", val(r, i, N_MDC) && val(r, i, N_MDC)[0] == 't' ? " [MDC]" : "");
			snprintf(missing, sizeof(missing), "%s of %s", PQgetvalue(r, i, N_MISSING),
				 PQgetvalue(r, i, N_DELIVERIES));
			const char *above = val(r, i, N_ABOVE);
			fprintf(out, "  %-32s %14s %15s %8s %12s %13s\n", label, PQgetvalue(r, i, N_CESAREANS),
				PQgetvalue(r, i, N_NTSV), percent(val(r, i, N_RATE)).s,
				!above ? "-" : above[0] == 't' ? "ABOVE" : "no", missing);
		}
	}
	fputc('\n', out);
}

static const char *const csv_header[] = {"section",  "plan_id",   "plan_name",   "year",
					 "measure",  "stratum",   "numerator",   "denominator",
					 "rate",     "benchmark", "gap_closure_target", "prior_rate",
					 "met",      "met_by",    "withhold_repaid_pct", "detail"};
#define CSV_COLUMNS (ARRAY_LEN(csv_header))

/* Writes plan-year k as CSV records (withhold, measures, NTSV), advancing m and n past its rows. */
static void csv_plan_year(FILE *out, const PGresult *keys, int k, struct cursor *m, struct cursor *n)
{
	const char *plan = PQgetvalue(keys, k, K_PLAN), *year = PQgetvalue(keys, k, K_YEAR);
	const char *name = PQgetvalue(keys, k, K_NAME);
	if (val(keys, k, K_EVALUATED)) {
		struct num share = plain(val(keys, k, K_SHARE)), repaid = plain(val(keys, k, K_REPAID));
		const char *f[CSV_COLUMNS] = {"withhold", plan, name, year, "WITHHOLD", "",
					      PQgetvalue(keys, k, K_MET), PQgetvalue(keys, k, K_EVALUATED),
					      share.s, NULL, NULL, NULL, NULL, NULL, repaid.s, NULL};
		csv_row(out, f, CSV_COLUMNS);
	}
	for (; at(m, plan, year); m->row++) {
		const PGresult *r = m->res;
		int i = m->row;
		struct num rate = plain(val(r, i, M_RATE)), bench = plain(val(r, i, M_BENCH)),
			   target = plain(val(r, i, M_TARGET)), prior = plain(val(r, i, M_PRIOR));
		const char *met = val(r, i, M_MET);
		const char *f[CSV_COLUMNS] = {"measure", plan, name, year, PQgetvalue(r, i, M_MEASURE),
					      PQgetvalue(r, i, M_STRATUM), PQgetvalue(r, i, M_NUM),
					      PQgetvalue(r, i, M_DEN), rate.s, bench.s, target.s, prior.s,
					      !met ? "" : met[0] == 't' ? "true" : "false", val(r, i, M_MET_BY), NULL,
					      val(r, i, M_DETAIL)};
		csv_row(out, f, CSV_COLUMNS);
	}
	for (; at(n, plan, year); n->row++) {
		const PGresult *r = n->res;
		int i = n->row;
		const char *id = val(r, i, N_HOSPITAL), *hname = val(r, i, N_NAME), *mdc = val(r, i, N_MDC);
		const char *above = val(r, i, N_ABOVE);
		char stratum[128], detail[300];
		snprintf(stratum, sizeof(stratum), "%s%s", id ? "hospital:" : "", id ? id : "");
		snprintf(detail, sizeof(detail), "%s%s%s of %s deliveries excluded for missing data",
			 hname && *hname ? hname : "",
			 !mdc ? (hname && *hname ? "; " : "") : mdc[0] == 't' ? " (MDC participant); " : " (not in MDC); ",
			 PQgetvalue(r, i, N_MISSING), PQgetvalue(r, i, N_DELIVERIES));
		struct num rate = plain(val(r, i, N_RATE)), target = plain(val(r, i, N_TARGET));
		const char *f[CSV_COLUMNS] = {"ntsv", plan, name, year, "NTSV_CSECTION", stratum,
					      PQgetvalue(r, i, N_CESAREANS), PQgetvalue(r, i, N_NTSV), rate.s,
					      target.s, NULL, NULL, !above ? "" : above[0] == 't' ? "false" : "true",
					      NULL, NULL, detail};
		csv_row(out, f, CSV_COLUMNS);
	}
}

/* Plan-year k as a JSON object, advancing m and n past its rows. Returns a new reference. */
static json_t *json_plan_year(const PGresult *keys, int k, struct cursor *m, struct cursor *n)
{
	const char *plan = PQgetvalue(keys, k, K_PLAN), *year = PQgetvalue(keys, k, K_YEAR);
	json_t *py = json_object(), *measures = json_array(), *hospitals = json_array();
	json_object_set_new(py, "year", json_integer(atoi(year)));
	json_object_set_new(py, "dy", json_integer(atoi(year) - 2014));
	json_t *w = json_object();
	json_object_set_new(w, "measures_met", jint(val(keys, k, K_MET)));
	json_object_set_new(w, "measures_evaluated", jint(val(keys, k, K_EVALUATED)));
	json_object_set_new(w, "share_met", jnum(val(keys, k, K_SHARE)));
	json_object_set_new(w, "withhold_repaid_pct", jnum(val(keys, k, K_REPAID)));
	json_object_set_new(py, "withhold", w);
	for (; at(m, plan, year); m->row++) {
		const PGresult *r = m->res;
		int i = m->row;
		json_t *o = json_object();
		json_object_set_new(o, "measure", jstr(val(r, i, M_MEASURE)));
		json_object_set_new(o, "stratum", jstr(val(r, i, M_STRATUM)));
		json_object_set_new(o, "numerator", jint(val(r, i, M_NUM)));
		json_object_set_new(o, "denominator", jint(val(r, i, M_DEN)));
		json_object_set_new(o, "rate", jnum(val(r, i, M_RATE)));
		json_object_set_new(o, "rate_scale", jnum(val(r, i, M_SCALE)));
		json_object_set_new(o, "direction", jstr(val(r, i, M_DIRECTION)));
		json_object_set_new(o, "benchmark", jnum(val(r, i, M_BENCH)));
		json_object_set_new(o, "gap_closure_target", jnum(val(r, i, M_TARGET)));
		json_object_set_new(o, "prior_rate", jnum(val(r, i, M_PRIOR)));
		json_object_set_new(o, "met", jbool(val(r, i, M_MET)));
		json_object_set_new(o, "met_by", jstr(val(r, i, M_MET_BY)));
		json_object_set_new(o, "detail", jstr(val(r, i, M_DETAIL)));
		json_array_append_new(measures, o);
	}
	json_object_set_new(py, "measures", measures);
	json_t *ntsv = json_object(), *whole = json_null(), *target = json_null();
	for (; at(n, plan, year); n->row++) {
		const PGresult *r = n->res;
		int i = n->row;
		json_t *o = json_object();
		if (val(r, i, N_HOSPITAL)) {
			json_object_set_new(o, "hospital_id", jstr(val(r, i, N_HOSPITAL)));
			json_object_set_new(o, "name", jstr(val(r, i, N_NAME)));
			json_object_set_new(o, "mdc_participant", jbool(val(r, i, N_MDC)));
		}
		json_object_set_new(o, "ntsv_cesareans", jint(val(r, i, N_CESAREANS)));
		json_object_set_new(o, "ntsv_deliveries", jint(val(r, i, N_NTSV)));
		json_object_set_new(o, "rate", jnum(val(r, i, N_RATE)));
		json_object_set_new(o, "above_target", jbool(val(r, i, N_ABOVE)));
		json_object_set_new(o, "missing_data", jint(val(r, i, N_MISSING)));
		json_object_set_new(o, "deliveries", jint(val(r, i, N_DELIVERIES)));
		json_decref(target);
		target = jnum(val(r, i, N_TARGET));
		if (val(r, i, N_HOSPITAL)) {
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
	return py;
}

int report_parse_format(const char *name, enum report_format *format)
{
	static const char *const names[] = {"text", "csv", "json"};
	for (int i = 0; i < 3; i++)
		if (!strcmp(name, names[i])) {
			*format = (enum report_format)i;
			return 0;
		}
	return -1;
}

int report_print(const char *conninfo, const struct report_options *opts, FILE *out, char *errstr,
		 size_t errstr_size)
{
	PGresult *keys = NULL, *measures = NULL, *ntsv = NULL;
	json_t *doc = NULL;
	int rc = -1;
	char year[16];
	snprintf(year, sizeof(year), "%d", opts->year);
	const char *params[2] = {opts->plan, opts->year ? year : NULL};
	PGconn *conn = open_snapshot(conninfo, errstr, errstr_size);
	if (!conn)
		goto done;
	if (!(keys = select_rows(conn, "reading qualstream.withhold_result", sql_keys, 2, params, errstr,
				 errstr_size)) ||
	    !(measures = select_rows(conn, "reading qualstream.measure_evaluation", sql_measures, 2, params, errstr,
				     errstr_size)) ||
	    !(ntsv = select_rows(conn, "reading qualstream.ntsv_evaluation", sql_ntsv, 2, params, errstr,
				 errstr_size)))
		goto done;
	struct cursor m = {measures, 0}, n = {ntsv, 0};
	int rows = PQntuples(keys);
	switch (opts->format) {
	case REPORT_TEXT:
		if (!rows)
			fprintf(out, "nothing to report%s%s%s%s: no measure data in qualstream.measure_period\n",
				opts->plan ? " for plan " : "", opts->plan ? opts->plan : "",
				opts->year ? " in " : "", opts->year ? year : "");
		for (int k = 0; k < rows; k++)
			text_plan_year(out, keys, k, &m, &n);
		break;
	case REPORT_CSV:
		csv_row(out, csv_header, CSV_COLUMNS);
		for (int k = 0; k < rows; k++)
			csv_plan_year(out, keys, k, &m, &n);
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
			json_array_append_new(years, json_plan_year(keys, k, &m, &n));
		}
		json_object_set_new(doc, "plans", plans);
		if (json_dumpf(doc, out, JSON_INDENT(2) | JSON_REAL_PRECISION(15) | JSON_PRESERVE_ORDER)) {
			snprintf(errstr, errstr_size, "writing JSON failed");
			goto done;
		}
		fputc('\n', out);
		break;
	}
	}
	if (fflush(out) || ferror(out)) {
		snprintf(errstr, errstr_size, "writing the report failed");
		goto done;
	}
	rc = 0;
done:
	json_decref(doc);
	PQclear(keys);
	PQclear(measures);
	PQclear(ntsv);
	PQfinish(conn);
	return rc;
}

/* ---- rules ---- */

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
		snprintf(n.s, sizeof(n.s), "timeliness >= %s", percent(value).s);
	} else if (!strcmp(method, "fixed")) {
		snprintf(n.s, sizeof(n.s), "%s %s", higher ? ">=" : "<=", rate_text(value, scale).s);
	} else if (!strcmp(method, "best_plan_minus")) {
		/* A proportion's offset is in percentage points: 0.10 is 10 points, not 10%. */
		struct num points = percent(value);
		points.s[strlen(points.s) - 1] = '\0';
		snprintf(n.s, sizeof(n.s), "best plan's rate %s %s%s", higher ? "-" : "+",
			 proportion ? points.s : plain(value).s, proportion ? " percentage points" : "");
	} else {
		snprintf(n.s, sizeof(n.s), "baseline-year rate %s %s", higher ? "+" : "-", percent(value).s);
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
static const char sql_plans[] =
	"SELECT plan_id, name, baseline_year, baseline_caw7_rate, cw13_from, listed"
	" FROM qualstream.plan_in_force ORDER BY plan_id COLLATE \"C\"";
static const char sql_hospitals[] =
	"SELECT count(*), count(*) FILTER (WHERE mdc_participant) FROM qualstream.hospital";
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
	static const char *const what[QUERIES] = {
		"reading qualstream.rule",	    "reading qualstream.measure_rule", "reading qualstream.cw13_phase",
		"reading qualstream.withhold_tier", "reading qualstream.plan",	       "reading qualstream.hospital",
		"reading qualstream.measure_rule_year", "reading qualstream.cw13_phase"};
	PGresult *res[QUERIES] = {0};
	int rc = -1;
	PGconn *conn = open_snapshot(conninfo, errstr, errstr_size);
	if (!conn)
		goto done;
	for (int q = 0; q < QUERIES; q++)
		if (!(res[q] = select_rows(conn, what[q], sql[q], 0, NULL, errstr, errstr_size)))
			goto done;

	fprintf(out, "Rules in force. They are rows of the tables named below: edit them with SQL and the views\n"
		     "(and `qualstream report`) use the new values at the next query. Only cw13_timely_days is a\n"
		     "counting rule the worker reads at start-up; changing it needs a replay.\n\n");

	const PGresult *r = res[RULE];
	fprintf(out, "qualstream.rule: parameters\n");
	for (int i = 0; i < PQntuples(r); i++)
		fprintf(out, "  %-22s %-8s %s\n", PQgetvalue(r, i, 0), plain(val(r, i, 1)).s, PQgetvalue(r, i, 2));

	r = res[MEASURE_RULE];
	fprintf(out, "\nqualstream.measure_rule: benchmarks by measure and year (a row covers first_year..last_year,\n"
		     "empty last_year = and later; where rows overlap, the latest first_year wins)\n");
	fprintf(out, "  %-7s %-10s %-9s %-6s %-18s %-40s %s\n", "measure", "years", "direction", "scale",
		"benchmark_method", "benchmark", "gap closure");
	for (int i = 0; i < PQntuples(r); i++) {
		const char *scale = PQgetvalue(r, i, 4), *share = val(r, i, 7);
		char gap[96];
		snprintf(gap, sizeof(gap), "%s", share ? percent(share).s : "none");
		fprintf(out, "  %-7s %-10s %-9s %-6s %-18s %-40s %s\n", PQgetvalue(r, i, 0),
			years_text(PQgetvalue(r, i, 1), val(r, i, 2)).s, PQgetvalue(r, i, 3), plain(scale).s,
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
		fprintf(out, "  %-10s %-9s %2s-%-4s %s\n", years_text(PQgetvalue(r, i, 0), val(r, i, 1)).s,
			PQgetvalue(r, i, 2), PQgetvalue(r, i, 3), PQgetvalue(r, i, 4),
			PQgetvalue(r, i, 5)[0] == 't' ? "evaluated" : "not evaluated");

	r = res[TIER];
	fprintf(out, "\nqualstream.withhold_tier: withhold repaid by share of evaluated measures met\n");
	for (int i = 0; i < PQntuples(r); i++) {
		char range[200];
		if (val(r, i, 3))
			snprintf(range, sizeof(range), "%s to under %s", percent(val(r, i, 0)).s,
				 percent(val(r, i, 3)).s);
		else
			snprintf(range, sizeof(range), "%s and more", percent(val(r, i, 0)).s);
		fprintf(out, "  %-22s %5s%%  %s\n", range, plain(val(r, i, 1)).s, PQgetvalue(r, i, 2));
	}

	r = res[PLANS];
	fprintf(out, "\nqualstream.plan: plans (unlisted plans found in the stream use the defaults, marked *)\n");
	if (!PQntuples(r))
		fprintf(out, "  (no plans)\n");
	else
		fprintf(out, "  %-16s %-24s %-13s %-18s %s\n", "plan_id", "name", "baseline_year",
			"baseline_caw7_rate", "cw13_from");
	for (int i = 0; i < PQntuples(r); i++) {
		char id[80];
		snprintf(id, sizeof(id), "%s%s", PQgetvalue(r, i, 0), PQgetvalue(r, i, 5)[0] == 't' ? "" : " *");
		fprintf(out, "  %-16s %-24s %-13s %-18s %s\n", id, PQgetvalue(r, i, 1), PQgetvalue(r, i, 2),
			val(r, i, 3) ? plain(val(r, i, 3)).s : "(from stream)",
			val(r, i, 4) ? PQgetvalue(r, i, 4) : "(first submission)");
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
			const char *share = val(r, i, 7);
			char gap[96];
			snprintf(gap, sizeof(gap), "gap closure %s", share ? percent(share).s : "none");
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
		snprintf(errstr, errstr_size, "writing the rules failed");
		goto done;
	}
	rc = 0;
done:
	for (int q = 0; q < QUERIES; q++)
		PQclear(res[q]);
	PQfinish(conn);
	return rc;
}
