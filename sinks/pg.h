/*
 * pg.h: the worker's one PostgreSQL layer. A connection with the session
 * settings every caller relies on, statements run and checked in one place,
 * transactions, the one description of a libpq failure, and what the failure
 * means to the caller (from its SQLSTATE). pgsink (the flush), outbox (the
 * publisher) and report (the read-only commands) all use it; callers read
 * results with libpq's own PQgetvalue and friends, and PQclear them.
 */
#ifndef QS_PG_H
#define QS_PG_H

#include <endian.h>
#include <libpq-fe.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "compiler.h"
#include "qserror.h"

/*
 * Advisory lock keys: every worker of every version must agree on them, and so
 * must the SQL that takes one. The one-key form (pg_advisory_lock(bigint)) and
 * the two-key form (pg_advisory_lock(int, int)) are separate lock spaces, so
 * PG_LOCK_MIGRATE and PG_LOCK_PUBLISH do not collide.
 */
/* pg_advisory_lock(PG_LOCK_MIGRATE), one key (0x7155): one `qualstream migrate` at a time. */
#define PG_LOCK_MIGRATE 29013
/* pg_try_advisory_lock(PG_LOCK_PUBLISH, hashtext('outbox:' || group)), session-level: the group's one publisher. */
#define PG_LOCK_PUBLISH 29013
/*
 * pg_advisory_xact_lock(PG_LOCK_OUTBOX_ROWS, hashtext('alerts:' || group)):
 * a flush writes the group's outbox rows under it, so their ids become
 * visible in increasing order (outbox.c's high-water mark). The SQL function
 * qualstream.alert_evaluate takes the same lock and spells the key as a
 * literal (sinks/migrations/R_alerts.sql, its one home now; 004 is history):
 * change one, change all.
 */
#define PG_LOCK_OUTBOX_ROWS 29014
/* pg_try_advisory_xact_lock(PG_LOCK_COMPACT, hashtext(stream || ':' || partition)): one compaction of a log. */
#define PG_LOCK_COMPACT 29015

#define PG_STR(x) #x
/* A lock key as SQL text, for statements written as string literals: PG_KEY(PG_LOCK_COMPACT) is "29015". */
#define PG_KEY(key) PG_STR(key)

/*
 * The functions below that can fail return 0, or a negative outcome
 * (qserror.h) with errstr set to "what: message (SQLSTATE xxxxx)", plus a
 * hint to run `qualstream migrate` when a relation or schema is missing. The
 * outcome comes from the SQLSTATE:
 * QS_ERROR   transient (no SQLSTATE: the connection broke; a server shutting
 *            down or not yet accepting connections, serialization failure,
 *            deadlock, resources, and any class not named below): reconnect
 *            and retry with a backoff;
 * QS_REJECT  the database refuses a row (classes 22, 23, 44, 54, and P0,
 *            exceptions raised by triggers): retrying the same rows cannot
 *            succeed, the message behind them must be dead-lettered;
 * QS_FATAL   the role or schema is wrong (missing privilege, failed
 *            authentication, missing relation: classes 28, 42, 3D, 3F, 0A,
 *            0L, 0P, 2B): nothing a retry can fix.
 * `what` names the statement in errstr; NULL names it by the start of its SQL.
 */

enum pg_format { PG_TEXT = 0, PG_BINARY = 1 };

struct pg;

/*
 * Connects, and sets the session up: NOTICEs quieted, client_encoding UTF8
 * (the sink sends UTF-8 whatever the server's locale). NULL with errstr on
 * failure. Caller frees with pg_free.
 */
QS_MUSTCHECK struct pg *pg_connect(const char *conninfo, char *errstr, size_t errstr_size);
/* Closes the connection. NULL is a no-op. */
void pg_free(struct pg *pg);

/* Runs one or more statements without parameters, in one round trip; rows they return are ignored. */
QS_MUSTCHECK int pg_exec(struct pg *pg, const char *what, const char *sql, char *errstr, size_t errstr_size);
/*
 * Runs a statement with text parameters that returns no rows; *rows (NULL:
 * not wanted) is then the number of rows it inserted, updated or deleted.
 */
QS_MUSTCHECK int pg_command(struct pg *pg, const char *what, const char *sql, int n_params, const char *const *params,
			    int64_t *rows, char *errstr, size_t errstr_size);
/*
 * Runs a query with text parameters, its result in `format`. On success *res
 * is the result (caller PQclear()s); res NULL discards it (a query run for its
 * effect, such as taking a lock). On failure *res is NULL.
 */
QS_MUSTCHECK int pg_select(struct pg *pg, const char *what, const char *sql, int n_params, const char *const *params,
			   enum pg_format format, PGresult **res, char *errstr, size_t errstr_size);
/* The value at row, col of res, or NULL for SQL NULL; borrowed until PQclear(res). */
const char *pg_value(const PGresult *res, int row, int col);
/* An int4 and an int8 in PostgreSQL's binary format (big-endian), as a PG_BINARY result or a copy of one holds them. */
static inline int32_t pg_int4(const void *binary)
{
	uint32_t v;
	memcpy(&v, binary, sizeof(v));
	return (int32_t)be32toh(v);
}

static inline int64_t pg_int8(const void *binary)
{
	uint64_t v;
	memcpy(&v, binary, sizeof(v));
	return (int64_t)be64toh(v);
}
/* Called with each row of pg_select_each (row 0 of `row`, borrowed for the call); nonzero stops with that value. */
typedef int (*pg_row_cb)(void *ctx, const PGresult *row, char *errstr, size_t errstr_size);
/*
 * pg_select one row at a time (single-row mode, so memory stays flat
 * whatever the result's size). Returns 0, a failure as above, or the
 * callback's nonzero value (with the errstr it set). Every result is drained
 * either way, so the connection is usable again.
 */
QS_MUSTCHECK int pg_select_each(struct pg *pg, const char *what, const char *sql, int n_params,
				const char *const *params, enum pg_format format, pg_row_cb cb, void *ctx, char *errstr,
				size_t errstr_size);
/* Runs `sql`, a COPY ... FROM STDIN, sending the len bytes of data (borrowed for the call) as its input. */
QS_MUSTCHECK int pg_copy(struct pg *pg, const char *sql, const void *data, size_t len, char *errstr,
			 size_t errstr_size);

/*
 * Transactions. One that needs a mode or settings opens with pg_exec(pg,
 * what, "BEGIN ...; SET LOCAL ...") instead, in one round trip; all end with
 * pg_commit or pg_rollback.
 */
QS_MUSTCHECK int pg_begin(struct pg *pg, char *errstr, size_t errstr_size);
QS_MUSTCHECK int pg_commit(struct pg *pg, char *errstr, size_t errstr_size);
/*
 * Rolls back after a failure, ignoring its own: the caller already holds the
 * error that matters, and a broken connection is rebuilt by its owner.
 */
void pg_rollback(struct pg *pg);

#endif
