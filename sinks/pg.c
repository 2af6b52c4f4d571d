/*
 * pg.c: the PostgreSQL layer (see pg.h). Every statement the worker sends
 * goes through one of the exec helpers here, so a failure is described and
 * classified in one place, whichever module sent it.
 */
#include "pg.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "errstr.h"
#include "xalloc.h"

struct pg {
	PGconn *conn;
};

/* SQLSTATE classes (first two characters) and codes, by what a retry can do about them. */
static const char *const reject_states[] = {"22", "23", "44", "54", "P0"};
static const char *const fatal_states[] = {"28", "42", "3D", "3F", "0A", "0L", "0P", "2B"};

static bool state_in(const char *state, const char *const *list, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!strncmp(state, list[i], strlen(list[i])))
			return true;
	return false;
}

/* The outcome (pg.h) of a failed result; NULL (no result) is QS_ERROR. */
static int outcome(const PGresult *res)
{
	/* No SQLSTATE: the connection broke (libpq made the error itself). Unknown classes are retried too. */
	const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
	if (!state || strlen(state) != 5)
		return QS_ERROR;
	if (state_in(state, reject_states, ARRAY_LEN(reject_states)))
		return QS_REJECT;
	if (state_in(state, fatal_states, ARRAY_LEN(fatal_states)))
		return QS_FATAL;
	return QS_ERROR;
}

/*
 * Describes a failure in errstr (pg.h): the result's error if there is one,
 * else the connection's. `what` NULL: the start of sql names it. Returns the
 * failure's outcome.
 */
static int describe(PGconn *conn, const PGresult *res, const char *what, const char *sql, char *errstr,
		    size_t errstr_size)
{
	char named[64]; /* the statement's start names it well enough */
	if (!what) {
		snprintf(named, sizeof(named), "%.56s%s", sql, strlen(sql) > 56 ? "..." : "");
		what = named;
	}
	char msg[768];
	const char *m = res ? PQresultErrorMessage(res) : "";
	snprintf(msg, sizeof(msg), "%s", *m ? m : PQerrorMessage(conn));
	size_t n = strlen(msg);
	while (n && (msg[n - 1] == '\n' || msg[n - 1] == ' '))
		msg[--n] = '\0';
	/* libpq puts a hint on a line of its own ("\n\tIs the server running..."): keep one line per log entry. */
	for (char *c = msg; *c; c++)
		if (*c == '\n' || *c == '\t')
			*c = ' ';
	const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
	/* A missing relation or schema almost always means the migrations have not run. */
	bool missing = state && (!strcmp(state, "42P01") || !strcmp(state, "3F000"));
	errstr_set(errstr, errstr_size, "%s: %s%s%s%s%s", what, msg, state ? " (SQLSTATE " : "", state ? state : "",
		   state ? ")" : "", missing ? " (run `qualstream migrate` first?)" : "");
	return outcome(res);
}

struct pg *pg_connect(const char *conninfo, char *errstr, size_t errstr_size)
{
	struct pg *pg = xcalloc(1, sizeof(*pg), "a PostgreSQL connection");
	pg->conn = PQconnectdb(conninfo);
	if (PQstatus(pg->conn) != CONNECTION_OK) {
		(void)describe(pg->conn, NULL, "connecting to PostgreSQL", NULL, errstr, errstr_size);
		goto fail;
	}
	/* Quiet NOTICEs (e.g. "relation already exists, skipping") from the logs. */
	if (pg_exec(pg, NULL, "SET client_min_messages = warning; SET client_encoding = 'UTF8'", errstr, errstr_size))
		goto fail;
	return pg;
fail:
	pg_free(pg);
	return NULL;
}

void pg_free(struct pg *pg)
{
	if (!pg)
		return;
	PQfinish(pg->conn);
	free(pg);
}

/* pg_exec for callers that must be able to ignore the outcome (pg_rollback). */
static int exec(struct pg *pg, const char *what, const char *sql, char *errstr, size_t errstr_size)
{
	PGresult *res = PQexec(pg->conn, sql);
	ExecStatusType s = PQresultStatus(res);
	int rc = 0;
	if (s != PGRES_COMMAND_OK && s != PGRES_TUPLES_OK)
		rc = describe(pg->conn, res, what, sql, errstr, errstr_size);
	PQclear(res);
	return rc;
}

int pg_exec(struct pg *pg, const char *what, const char *sql, char *errstr, size_t errstr_size)
{
	return exec(pg, what, sql, errstr, errstr_size);
}

int pg_command(struct pg *pg, const char *what, const char *sql, int n_params, const char *const *params, int64_t *rows,
	       char *errstr, size_t errstr_size)
{
	PGresult *res = PQexecParams(pg->conn, sql, n_params, NULL, params, NULL, NULL, PG_TEXT);
	int rc = 0;
	if (PQresultStatus(res) != PGRES_COMMAND_OK)
		rc = describe(pg->conn, res, what, sql, errstr, errstr_size);
	else if (rows)
		*rows = strtoll(PQcmdTuples(res), NULL, 10);
	PQclear(res);
	return rc;
}

int pg_select(struct pg *pg, const char *what, const char *sql, int n_params, const char *const *params,
	      enum pg_format format, PGresult **res, char *errstr, size_t errstr_size)
{
	PGresult *r = PQexecParams(pg->conn, sql, n_params, NULL, params, NULL, NULL, format);
	int rc = 0;
	if (PQresultStatus(r) != PGRES_TUPLES_OK) {
		rc = describe(pg->conn, r, what, sql, errstr, errstr_size);
		PQclear(r);
		r = NULL;
	}
	if (res)
		*res = r;
	else
		PQclear(r);
	return rc;
}

const char *pg_value(const PGresult *res, int row, int col)
{
	return PQgetisnull(res, row, col) ? NULL : PQgetvalue(res, row, col);
}

int pg_select_each(struct pg *pg, const char *what, const char *sql, int n_params, const char *const *params,
		   enum pg_format format, pg_row_cb cb, void *ctx, char *errstr, size_t errstr_size)
{
	if (!PQsendQueryParams(pg->conn, sql, n_params, NULL, params, NULL, NULL, format) ||
	    !PQsetSingleRowMode(pg->conn))
		return describe(pg->conn, NULL, what, sql, errstr, errstr_size);
	int rc = 0;
	/* Drain every result even after a failure, so the connection is usable again. */
	for (PGresult *res; (res = PQgetResult(pg->conn)); PQclear(res)) {
		ExecStatusType s = PQresultStatus(res);
		if (rc)
			continue;
		if (s == PGRES_SINGLE_TUPLE)
			rc = cb(ctx, res, errstr, errstr_size);
		else if (s != PGRES_TUPLES_OK)
			rc = describe(pg->conn, res, what, sql, errstr, errstr_size);
	}
	return rc;
}

int pg_copy(struct pg *pg, const char *sql, const void *data, size_t len, char *errstr, size_t errstr_size)
{
	PGresult *res = PQexec(pg->conn, sql);
	if (PQresultStatus(res) != PGRES_COPY_IN) {
		int rc = describe(pg->conn, res, sql, sql, errstr, errstr_size);
		PQclear(res);
		return rc;
	}
	PQclear(res);
	int rc = 0;
	bool sent = PQputCopyData(pg->conn, (const char *)data, (int)len) == 1 && PQputCopyEnd(pg->conn, NULL) == 1;
	for (; (res = PQgetResult(pg->conn)); PQclear(res))
		if (PQresultStatus(res) != PGRES_COMMAND_OK && rc == 0)
			rc = describe(pg->conn, res, sql, sql, errstr, errstr_size);
	if (!sent && rc == 0)
		rc = describe(pg->conn, NULL, sql, sql, errstr, errstr_size);
	return rc;
}

int pg_begin(struct pg *pg, char *errstr, size_t errstr_size)
{
	return pg_exec(pg, NULL, "BEGIN", errstr, errstr_size);
}

int pg_commit(struct pg *pg, char *errstr, size_t errstr_size)
{
	return pg_exec(pg, NULL, "COMMIT", errstr, errstr_size);
}

void pg_rollback(struct pg *pg)
{
	char ignore[1];
	(void)exec(pg, NULL, "ROLLBACK", ignore, sizeof(ignore));
}
