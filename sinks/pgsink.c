/*
 * pgsink.c: the PostgreSQL side of the worker (see pgsink.h). Bulk data goes
 * through COPY: the aggregate deltas into a temporary table and one INSERT ...
 * SELECT ... ON CONFLICT, ordered by key so that concurrent workers lock cells
 * in the same order and cannot deadlock on them; the record versions (binary
 * COPY), dead letters and alerts straight into their append-only tables.
 *
 * Record versions (qualstream.record_log, migration 006) are appended, never
 * updated: a restore reads each record's latest version, and after a flush
 * commits, a partition whose log holds at least as many superseded versions
 * as live ones is compacted in a transaction of its own (superseded versions
 * deleted), so the log stays within about twice the live records.
 */
#include "pgsink.h"

#include <endian.h>
#include <libpq-fe.h>
#include <stdbool.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alerts.h"
#include "compiler.h"
#include "dates.h"
#include "embedded.h"
#include "errstr.h"
#include "log.h"
#include "xalloc.h"

/*
 * The rows of one partition's log, against the records its state holds
 * (state_records_held): the difference is the superseded versions, which a
 * restore reads and discards. Compaction runs when they are at least as
 * many as the live ones and at least COMPACT_MIN, so the log stays within
 * about twice its live records plus COMPACT_MIN, and a stream of mostly new
 * records (whose log is nearly all live) is not compacted at all. Each
 * compaction (a scan and sort of the partition's rows) then removes at
 * least half of them: its cost is bounded by the rows it deletes.
 */
#define COMPACT_MIN 4096
struct log_growth {
	enum qs_topic topic;
	int32_t partition;
	int64_t rows;
	bool appended; /* in the flush just committed */
};

struct pgsink {
	PGconn *conn;
	char *group;
	char *topics[QS_TOPIC_COUNT];
	/* qualstream.record_stream ids of (group, topic), 0 until looked up (lazily: migrate runs without them) */
	int32_t stream[QS_TOPIC_COUNT];
	struct log_growth *growth;
	size_t n_growth;
	/* write_records' order of the flush's records, kept across flushes */
	const struct state_record **order;
	size_t order_cap;
	/* COPY buffer, kept across flushes */
	char *buf;
	size_t len, cap;
};

/* An advisory lock key for migrations: any constant shared by all workers. */
#define MIGRATION_LOCK 0x7155u

/* SQLSTATE classes (first two characters) and codes, by what a retry can do about them. */
static const char *const data_states[] = {"22", "23", "44", "54", "P0"};
static const char *const fatal_states[] = {"28", "42", "3D", "3F", "0A", "0L", "0P", "2B"};

static bool state_in(const char *state, const char *const *list, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!strncmp(state, list[i], strlen(list[i])))
			return true;
	return false;
}

int pgsink_class(const struct pg_result *res)
{
	/* No SQLSTATE: the connection broke (libpq made the error itself). Unknown classes are retried too. */
	const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
	if (!state || strlen(state) != 5)
		return QS_ERROR;
	if (state_in(state, data_states, ARRAY_LEN(data_states)))
		return QS_REJECT;
	if (state_in(state, fatal_states, ARRAY_LEN(fatal_states)))
		return QS_FATAL;
	return QS_ERROR;
}

int pgsink_error(char *errstr, size_t errstr_size, const char *what, struct pg_conn *conn, struct pg_result *res)
{
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
	return pgsink_class(res);
}

/* Runs a command that returns no rows (or rows we ignore); 0, or the failure's class. */
static int exec(PGconn *conn, const char *sql, char *errstr, size_t errstr_size)
{
	PGresult *res = PQexec(conn, sql);
	ExecStatusType s = PQresultStatus(res);
	int rc = 0;
	if (s != PGRES_COMMAND_OK && s != PGRES_TUPLES_OK) {
		char what[64]; /* the statement's start names it well enough */
		snprintf(what, sizeof(what), "%.56s%s", sql, strlen(sql) > 56 ? "..." : "");
		rc = pgsink_error(errstr, errstr_size, what, conn, res);
	}
	PQclear(res);
	return rc;
}

struct pgsink *pgsink_connect(const char *conninfo, const char *group,
			      const char *const topic_names[QS_TOPIC_COUNT], char *errstr, size_t errstr_size)
{
	struct pgsink *ps = calloc(1, sizeof(*ps));
	if (!ps) {
		snprintf(errstr, errstr_size, "out of memory");
		return NULL;
	}
	ps->conn = PQconnectdb(conninfo);
	if (PQstatus(ps->conn) != CONNECTION_OK) {
		pgsink_error(errstr, errstr_size, "connecting to PostgreSQL", ps->conn, NULL);
		goto fail;
	}
	ps->group = strdup(group);
	for (int t = 0; t < QS_TOPIC_COUNT; t++)
		ps->topics[t] = strdup(topic_names[t]);
	/*
	 * Quiet NOTICEs (e.g. "relation already exists, skipping") from the logs.
	 * put_text sends UTF-8 whatever the server's locale, so say so.
	 */
	if (exec(ps->conn, "SET client_min_messages = warning; SET client_encoding = 'UTF8'", errstr, errstr_size))
		goto fail;
	return ps;
fail:
	pgsink_free(ps);
	return NULL;
}

void pgsink_free(struct pgsink *ps)
{
	if (!ps)
		return;
	PQfinish(ps->conn);
	free(ps->group);
	for (int t = 0; t < QS_TOPIC_COUNT; t++)
		free(ps->topics[t]);
	free(ps->growth);
	free(ps->order);
	free(ps->buf);
	free(ps);
}

struct pg_conn *pgsink_conn(struct pgsink *ps)
{
	return ps->conn;
}

/*
 * Numbered migrations (NNN_name.sql) run once each, in order, known by name.
 * A repeatable one (R_name.sql, migration 008; sorted after the numbered)
 * runs when its text is not the one last applied (by md5, kept in
 * schema_migrations.checksum) or when a numbered migration ran before it in
 * this call, since that may have dropped what it defines. Each runs in a
 * transaction of its own, under the migration lock.
 */
int pgsink_migrate(struct pgsink *ps, char *errstr, size_t errstr_size)
{
	char sql[128];
	int rc = -1;
	snprintf(sql, sizeof(sql), "SELECT pg_advisory_lock(%u)", MIGRATION_LOCK);
	if (exec(ps->conn, sql, errstr, errstr_size))
		return -1;
	if (exec(ps->conn,
		 "CREATE SCHEMA IF NOT EXISTS qualstream;"
		 "CREATE TABLE IF NOT EXISTS qualstream.schema_migrations ("
		 " name text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())",
		 errstr, errstr_size))
		goto done;
	bool numbered_ran = false;
	for (const struct embedded_file *m = embedded_migrations; m->name; m++) {
		bool repeatable = !strncmp(m->name, "R_", 2);
		const char *params[2] = {m->name, m->text};
		PGresult *res = PQexecParams(ps->conn,
					     repeatable ? "SELECT 1 FROM qualstream.schema_migrations"
							  " WHERE name = $1 AND checksum = md5($2)"
							: "SELECT 1 FROM qualstream.schema_migrations WHERE name = $1",
					     repeatable ? 2 : 1, NULL, params, NULL, NULL, 0);
		bool applied = PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1;
		bool failed = PQresultStatus(res) != PGRES_TUPLES_OK;
		if (failed)
			pgsink_error(errstr, errstr_size, "reading qualstream.schema_migrations", ps->conn, res);
		PQclear(res);
		if (failed)
			goto done;
		if (applied && !(repeatable && numbered_ran))
			continue;
		if (exec(ps->conn, "BEGIN", errstr, errstr_size))
			goto done;
		res = PQexec(ps->conn, m->text);
		if (PQresultStatus(res) != PGRES_COMMAND_OK && PQresultStatus(res) != PGRES_TUPLES_OK) {
			pgsink_error(errstr, errstr_size, m->name, ps->conn, res);
			PQclear(res);
			char ignore[1];
			(void)exec(ps->conn, "ROLLBACK", ignore, sizeof(ignore));
			goto done;
		}
		PQclear(res);
		res = PQexecParams(ps->conn,
				   repeatable ? "INSERT INTO qualstream.schema_migrations (name, checksum) VALUES ($1, md5($2))"
						" ON CONFLICT (name) DO UPDATE SET checksum = EXCLUDED.checksum,"
						" applied_at = EXCLUDED.applied_at"
					      : "INSERT INTO qualstream.schema_migrations (name) VALUES ($1)",
				   repeatable ? 2 : 1, NULL, params, NULL, NULL, 0);
		failed = PQresultStatus(res) != PGRES_COMMAND_OK;
		if (failed)
			pgsink_error(errstr, errstr_size, m->name, ps->conn, res);
		PQclear(res);
		if (failed || exec(ps->conn, "COMMIT", errstr, errstr_size))
			goto done;
		numbered_ran = numbered_ran || !repeatable;
	}
	rc = 0;
done:
	snprintf(sql, sizeof(sql), "SELECT pg_advisory_unlock(%u)", MIGRATION_LOCK);
	char ignore[1];
	(void)exec(ps->conn, sql, ignore, sizeof(ignore));
	return rc;
}

int pgsink_load_rules(struct pgsink *ps, struct qs_rules *rules, char *errstr, size_t errstr_size)
{
	static const struct {
		const char *name;
		size_t offset;
	} wanted[] = {
		{"cw13_timely_days", offsetof(struct qs_rules, cw13_timely_days)},
		{"alert_due_soon_days", offsetof(struct qs_rules, alert_due_soon_days)},
	};
	for (size_t i = 0; i < ARRAY_LEN(wanted); i++) {
		const char *params[1] = {wanted[i].name};
		PGresult *res = PQexecParams(ps->conn, "SELECT value::int FROM qualstream.rule WHERE name = $1", 1,
					     NULL, params, NULL, NULL, 0);
		int rc = 0;
		if (PQresultStatus(res) != PGRES_TUPLES_OK)
			rc = pgsink_error(errstr, errstr_size, "reading qualstream.rule", ps->conn, res);
		else if (PQntuples(res) != 1) {
			snprintf(errstr, errstr_size, "qualstream.rule has no row '%s' (run `qualstream migrate`)",
				 wanted[i].name);
			rc = QS_FATAL;
		} else
			*(int32_t *)((char *)rules + wanted[i].offset) = atoi(PQgetvalue(res, 0, 0));
		PQclear(res);
		if (rc)
			return rc;
	}
	return 0;
}

int pgsink_claim(struct pgsink *ps, enum qs_topic topic, int32_t partition, int64_t *next_offset,
		 int64_t *clock_ms, char *errstr, size_t errstr_size)
{
	char part[16];
	snprintf(part, sizeof(part), "%d", partition);
	const char *params[3] = {ps->group, ps->topics[topic], part};
	PGresult *res = PQexecParams(ps->conn,
				     "WITH ins AS (INSERT INTO qualstream.consumer_offsets VALUES ($1, $2, $3, 0)"
				     " ON CONFLICT DO NOTHING RETURNING next_offset)"
				     " SELECT next_offset, NULL::bigint FROM ins UNION ALL"
				     " SELECT next_offset, event_clock FROM qualstream.consumer_offsets"
				     " WHERE consumer_group = $1 AND topic = $2 AND partition = $3",
				     3, NULL, params, NULL, NULL, 0);
	int rc = 0;
	if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) < 1)
		rc = pgsink_error(errstr, errstr_size, "claiming a partition in qualstream.consumer_offsets", ps->conn,
				  res);
	else {
		*next_offset = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
		*clock_ms = PQgetisnull(res, 0, 1) ? QS_NO_TS : strtoll(PQgetvalue(res, 0, 1), NULL, 10);
	}
	PQclear(res);
	return rc;
}

/*
 * Looks up (registering them the first time) the record_stream ids of the
 * group's topics, outside any transaction: an id taken in a flush that rolls
 * back would name nothing.
 */
static int resolve_streams(struct pgsink *ps, char *errstr, size_t errstr_size)
{
	if (ps->stream[0])
		return 0;
	const char *params[1 + QS_TOPIC_COUNT] = {ps->group};
	for (int t = 0; t < QS_TOPIC_COUNT; t++)
		params[1 + t] = ps->topics[t];
	/* Only missing rows are inserted: ON CONFLICT alone would use up an identity value per connection. */
	PGresult *res = PQexecParams(
		ps->conn,
		"WITH t (topic) AS (VALUES ($2), ($3), ($4)),"
		" ins AS (INSERT INTO qualstream.record_stream (consumer_group, topic)"
		" SELECT $1, topic FROM t WHERE NOT EXISTS (SELECT 1 FROM qualstream.record_stream s"
		" WHERE s.consumer_group = $1 AND s.topic = t.topic) ON CONFLICT DO NOTHING)"
		" SELECT 1",
		1 + QS_TOPIC_COUNT, NULL, params, NULL, NULL, 0);
	int rc = PQresultStatus(res) == PGRES_TUPLES_OK
			 ? 0
			 : pgsink_error(errstr, errstr_size, "registering in qualstream.record_stream", ps->conn, res);
	PQclear(res);
	if (rc)
		return rc;
	res = PQexecParams(ps->conn, "SELECT topic, id FROM qualstream.record_stream WHERE consumer_group = $1", 1,
			   NULL, params, NULL, NULL, 0);
	if (PQresultStatus(res) != PGRES_TUPLES_OK)
		rc = pgsink_error(errstr, errstr_size, "reading qualstream.record_stream", ps->conn, res);
	for (int r = 0; !rc && r < PQntuples(res); r++)
		for (int t = 0; t < QS_TOPIC_COUNT; t++)
			if (!strcmp(PQgetvalue(res, r, 0), ps->topics[t]))
				ps->stream[t] = atoi(PQgetvalue(res, r, 1));
	PQclear(res);
	for (int t = 0; !rc && t < QS_TOPIC_COUNT; t++)
		if (ps->stream[t] <= 0) {
			errstr_set(errstr, errstr_size, "qualstream.record_stream has no id for %s", ps->topics[t]);
			rc = QS_ERROR; /* a concurrent registration not yet visible: the retry finds it */
		}
	if (rc)
		memset(ps->stream, 0, sizeof(ps->stream));
	return rc;
}

/* The growth record of a partition's log, added if new. */
static struct log_growth *growth_of(struct pgsink *ps, enum qs_topic topic, int32_t partition)
{
	for (size_t i = 0; i < ps->n_growth; i++)
		if (ps->growth[i].topic == topic && ps->growth[i].partition == partition)
			return &ps->growth[i];
	ps->growth = xrealloc(ps->growth, (ps->n_growth + 1) * sizeof(*ps->growth), "the record log counters");
	ps->growth[ps->n_growth] = (struct log_growth){topic, partition, 0, false};
	return &ps->growth[ps->n_growth++];
}

/*
 * A partition's latest versions in offset order: each record's version of
 * the highest offset, whether or not the log was compacted. Sorts, whatever
 * the statistics say: a join plan chosen on a table not analysed yet (a
 * nested loop) is quadratic.
 */
#define LATEST_SQL                                                                                                 \
	"SELECT \"offset\", value FROM (SELECT DISTINCT ON (record_id) \"offset\", value"                           \
	" FROM qualstream.record_log WHERE stream = $1 AND partition = $2 ORDER BY record_id, \"offset\" DESC) l"    \
	" ORDER BY \"offset\""

/*
 * The sorts of LATEST_SQL hold a partition's whole log (about 100 bytes a
 * row): at PostgreSQL's default work_mem (4 MB) a partition of a million
 * records sorts on disk, in passes. A restore runs one such query at a time
 * per worker, so it is given this much, for its own transaction only.
 */
#define RESTORE_WORK_MEM "256MB"

/* Streams the partition's latest versions to cb; 0, or nonzero with errstr. */
static int load_latest(struct pgsink *ps, enum qs_topic topic, int32_t partition, const char *const *params,
		       pgsink_record_cb cb, void *ctx, char *errstr, size_t errstr_size)
{
	int rc = 0;
	if (!PQsendQueryParams(ps->conn, LATEST_SQL, 2, NULL, params, NULL, NULL, 1) ||
	    !PQsetSingleRowMode(ps->conn)) {
		return pgsink_error(errstr, errstr_size, "loading qualstream.record_log", ps->conn, NULL);
	}
	/* Drain every result even after a failure, so the connection is usable again. */
	for (PGresult *res; (res = PQgetResult(ps->conn)); PQclear(res)) {
		ExecStatusType s = PQresultStatus(res);
		if (s == PGRES_SINGLE_TUPLE && rc == 0) {
			uint64_t be;
			memcpy(&be, PQgetvalue(res, 0, 0), sizeof(be));
			int64_t offset = (int64_t)be64toh(be);
			rc = cb(ctx, offset, PQgetvalue(res, 0, 1), (size_t)PQgetlength(res, 0, 1));
			if (rc)
				snprintf(errstr, errstr_size, "restoring %s[%d] at offset %lld failed",
					 ps->topics[topic], partition, (long long)offset);
		} else if (s != PGRES_SINGLE_TUPLE && s != PGRES_TUPLES_OK && rc == 0) {
			rc = pgsink_error(errstr, errstr_size, "loading qualstream.record_log", ps->conn, res);
		}
	}
	return rc;
}

int pgsink_load_records(struct pgsink *ps, enum qs_topic topic, int32_t partition, pgsink_record_cb cb, void *ctx,
			char *errstr, size_t errstr_size)
{
	int rc = resolve_streams(ps, errstr, errstr_size);
	if (rc)
		return rc;
	char stream[16], part[16];
	snprintf(stream, sizeof(stream), "%d", ps->stream[topic]);
	snprintf(part, sizeof(part), "%d", partition);
	const char *params[2] = {stream, part};
	/* One snapshot for the versions and their count. */
	rc = exec(ps->conn, "BEGIN READ ONLY; SET LOCAL work_mem = '" RESTORE_WORK_MEM "'", errstr, errstr_size);
	if (!rc)
		rc = load_latest(ps, topic, partition, params, cb, ctx, errstr, errstr_size);
	if (!rc) {
		/* Every version, live or superseded: the compaction's schedule starts from it. */
		PGresult *res = PQexecParams(ps->conn,
					     "SELECT count(*) FROM qualstream.record_log WHERE stream = $1 AND partition = $2",
					     2, NULL, params, NULL, NULL, 0);
		if (PQresultStatus(res) == PGRES_TUPLES_OK)
			growth_of(ps, topic, partition)->rows = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
		else
			rc = pgsink_error(errstr, errstr_size, "counting qualstream.record_log", ps->conn, res);
		PQclear(res);
	}
	if (!rc)
		return exec(ps->conn, "COMMIT", errstr, errstr_size);
	char ignore[1];
	(void)exec(ps->conn, "ROLLBACK", ignore, sizeof(ignore));
	return rc;
}

/* ---- COPY formats ---- */

static void put(struct pgsink *ps, const void *s, size_t n)
{
	if (ps->len + n > ps->cap) {
		size_t cap = ps->cap ? ps->cap : 1 << 16;
		while (cap < ps->len + n)
			cap *= 2;
		ps->buf = xrealloc(ps->buf, cap, "the COPY buffer");
		ps->cap = cap;
	}
	memcpy(ps->buf + ps->len, s, n);
	ps->len += n;
}

QS_PRINTF(2, 3) static void putf(struct pgsink *ps, const char *fmt, ...)
{
	char tmp[64];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
	va_end(ap);
	put(ps, tmp, (size_t)n < sizeof(tmp) ? (size_t)n : sizeof(tmp) - 1);
}

/*
 * A text column, then the separator. Every text column goes through here, so
 * this is where the database's rules for text are kept, whatever the string
 * came from (ids and names from input, reasons quoting writer schemas,
 * alert details): invalid UTF-8 (a character cut by a byte-length limit, or
 * raw bytes) becomes U+FFFD, which the server would otherwise refuse and
 * with it the whole flush; the characters COPY's text format gives a meaning
 * (backslash, tab, newline, carriage return) are escaped. A NUL, which text
 * cannot hold, cannot occur: the string ends there. Other control characters
 * are ordinary data to COPY and are kept.
 */
static void put_utf8(struct pgsink *ps, const char *s, bool escape)
{
	size_t n = strlen(s);
	for (size_t i = 0; i < n;) {
		const char *esc = NULL;
		switch (escape ? s[i] : 0) {
		case '\\': esc = "\\\\"; break;
		case '\t': esc = "\\t"; break;
		case '\n': esc = "\\n"; break;
		case '\r': esc = "\\r"; break;
		}
		size_t len = esc ? 1 : errstr_utf8_char(s + i, n - i);
		if (esc)
			put(ps, esc, 2);
		else if (len)
			put(ps, s + i, len);
		else
			put(ps, "\xef\xbf\xbd", 3); /* U+FFFD for one byte that starts no character */
		i += len ? len : 1;
	}
}

static void put_text(struct pgsink *ps, const char *s, char sep)
{
	put_utf8(ps, s, true);
	put(ps, &sep, 1);
}

/* ---- COPY binary format: a header, then per row a field count and each field as length + bytes ---- */

static void put_be16(struct pgsink *ps, uint16_t v)
{
	v = htobe16(v);
	put(ps, &v, 2);
}

static void put_be32(struct pgsink *ps, uint32_t v)
{
	v = htobe32(v);
	put(ps, &v, 4);
}

static void put_be64(struct pgsink *ps, uint64_t v)
{
	v = htobe64(v);
	put(ps, &v, 8);
}

static void put_binary_header(struct pgsink *ps)
{
	put(ps, "PGCOPY\n\377\r\n\0", 11);
	put_be32(ps, 0); /* flags */
	put_be32(ps, 0); /* header extension length */
}

/* A text field: the same UTF-8 rules as put_text, no escapes (binary COPY has none). */
static void put_binary_text(struct pgsink *ps, const char *s)
{
	size_t at = ps->len;
	put_be32(ps, 0); /* the length, set once known */
	put_utf8(ps, s, false);
	uint32_t len = htobe32((uint32_t)(ps->len - at - 4));
	memcpy(ps->buf + at, &len, 4);
}

/* A bytea column as \\x hex (NULL as \N), then the separator. */
static void put_bytea(struct pgsink *ps, const void *data, size_t len, char sep)
{
	static const char hex[] = "0123456789abcdef";
	if (!data) {
		put(ps, "\\N", 2);
	} else {
		put(ps, "\\\\x", 3);
		const unsigned char *p = data;
		for (size_t i = 0; i < len; i++) {
			char two[2] = {hex[p[i] >> 4], hex[p[i] & 15]};
			put(ps, two, 2);
		}
	}
	put(ps, &sep, 1);
}

/* Sends the buffer as the data of `COPY <target> FROM STDIN`. */
static int copy(struct pgsink *ps, const char *target, char *errstr, size_t errstr_size)
{
	char sql[256];
	snprintf(sql, sizeof(sql), "COPY %s FROM STDIN%s", target,
		 ps->len >= 11 && !memcmp(ps->buf, "PGCOPY\n", 7) ? " (FORMAT binary)" : "");
	PGresult *res = PQexec(ps->conn, sql);
	if (PQresultStatus(res) != PGRES_COPY_IN) {
		int rc = pgsink_error(errstr, errstr_size, sql, ps->conn, res);
		PQclear(res);
		return rc;
	}
	PQclear(res);
	int rc = 0;
	bool sent = PQputCopyData(ps->conn, ps->buf, (int)ps->len) == 1 && PQputCopyEnd(ps->conn, NULL) == 1;
	for (; (res = PQgetResult(ps->conn)); PQclear(res))
		if (PQresultStatus(res) != PGRES_COMMAND_OK && rc == 0)
			rc = pgsink_error(errstr, errstr_size, sql, ps->conn, res);
	if (!sent && rc == 0)
		rc = pgsink_error(errstr, errstr_size, sql, ps->conn, NULL);
	ps->len = 0;
	return rc;
}

/* The fence: advance each progressed partition (offset and clock) only from the offset this worker expects. */
static int advance_offsets(struct pgsink *ps, const struct state *st, char *errstr, size_t errstr_size)
{
	for (size_t i = 0; i < state_progress_count(st); i++) {
		enum qs_topic topic;
		int32_t partition;
		int64_t expected, next, clock;
		state_progress(st, i, &topic, &partition, &expected, &next, &clock);
		char part[16], exp[24], nxt[24], clk[24];
		snprintf(part, sizeof(part), "%d", partition);
		snprintf(exp, sizeof(exp), "%lld", (long long)expected);
		snprintf(nxt, sizeof(nxt), "%lld", (long long)next);
		snprintf(clk, sizeof(clk), "%lld", (long long)clock);
		const char *params[6] = {ps->group, ps->topics[topic], part, exp, nxt, clock == QS_NO_TS ? NULL : clk};
		PGresult *res = PQexecParams(ps->conn,
					     "UPDATE qualstream.consumer_offsets SET next_offset = $5, event_clock = $6"
					     " WHERE consumer_group = $1 AND topic = $2 AND partition = $3"
					     " AND next_offset = $4",
					     6, NULL, params, NULL, NULL, 0);
		int rc = 0;
		if (PQresultStatus(res) != PGRES_COMMAND_OK) {
			rc = pgsink_error(errstr, errstr_size, "advancing qualstream.consumer_offsets", ps->conn, res);
		} else if (strcmp(PQcmdTuples(res), "1") != 0) {
			snprintf(errstr, errstr_size,
				 "fenced: %s[%d] is no longer at offset %s in qualstream.consumer_offsets"
				 " (another worker owns it now)",
				 ps->topics[topic], partition, exp);
			rc = QS_FENCED;
		}
		PQclear(res);
		if (rc)
			return rc;
	}
	return QS_OK;
}

static int write_deltas(struct pgsink *ps, const struct state *st, char *errstr, size_t errstr_size)
{
	const struct state_delta *d;
	size_t n = state_deltas(st, &d), rows = 0;
	for (size_t i = 0; i < n; i++) {
		if (d[i].numerator == 0 && d[i].denominator == 0)
			continue; /* changes that cancelled out within this flush */
		char day[11];
		put_text(ps, state_str(st, d[i].plan), '\t');
		put_text(ps, measures_name(d[i].measure), '\t');
		put_text(ps, state_str(st, d[i].stratum), '\t');
		put_text(ps, dates_grain_name(d[i].grain), '\t');
		put_text(ps, dates_format(d[i].period_start, day), '\t');
		putf(ps, "%lld\t%lld\n", (long long)d[i].numerator, (long long)d[i].denominator);
		rows++;
	}
	if (!rows)
		return 0;
	int rc = copy(ps, "qs_delta", errstr, errstr_size);
	return rc ? rc
		  : exec(ps->conn,
		 "INSERT INTO qualstream.measure_period AS m"
		 " (plan_id, measure, stratum, grain, period_start, numerator, denominator)"
		 " SELECT * FROM qs_delta ORDER BY plan_id, measure, stratum, grain, period_start"
		 " ON CONFLICT (plan_id, measure, stratum, grain, period_start) DO UPDATE"
		 " SET numerator = m.numerator + EXCLUDED.numerator,"
		 " denominator = m.denominator + EXCLUDED.denominator, updated_at = now()",
		 errstr, errstr_size);
}

static int by_partition(const void *a, const void *b)
{
	const struct state_record *x = *(const struct state_record *const *)a, *y = *(const struct state_record *const *)b;
	if (x->topic != y->topic)
		return x->topic < y->topic ? -1 : 1;
	if (x->partition != y->partition)
		return x->partition < y->partition ? -1 : 1;
	return x->offset < y->offset ? -1 : x->offset > y->offset;
}

/*
 * Appends the version of every record changed (a record changed twice in the
 * flush: both, the later wins), grouped by partition: then a partition's rows
 * lie in one run of heap pages per flush, and a restore reads those pages
 * instead of nearly every page of the table (rows of all partitions
 * interleaved).
 */
static int write_records(struct pgsink *ps, const struct state *st, char *errstr, size_t errstr_size)
{
	const struct state_record *r;
	size_t n = state_records(st, &r);
	if (!n)
		return 0;
	if (n > ps->order_cap) {
		ps->order = xrealloc(ps->order, n * sizeof(*ps->order), "the record order");
		ps->order_cap = n;
	}
	for (size_t i = 0; i < n; i++)
		ps->order[i] = &r[i];
	qsort(ps->order, n, sizeof(*ps->order), by_partition);
	put_binary_header(ps);
	for (size_t i = 0; i < n; i++) {
		const struct state_record *v = ps->order[i];
		put_be16(ps, 5);
		put_be32(ps, 4);
		put_be32(ps, (uint32_t)ps->stream[v->topic]);
		put_be32(ps, 4);
		put_be32(ps, (uint32_t)v->partition);
		put_be32(ps, 8);
		put_be64(ps, (uint64_t)v->offset);
		put_binary_text(ps, v->record_id);
		put_be32(ps, (uint32_t)v->value_len);
		put(ps, v->value, v->value_len);
	}
	put_be16(ps, 0xffff); /* trailer: field count -1 */
	return copy(ps, "qualstream.record_log (stream, partition, \"offset\", record_id, value)", errstr,
		    errstr_size);
}

/*
 * Deletes the partition's superseded versions in a transaction of its own.
 * What a restore reads is unchanged: only rows that a committed later
 * version of the same record supersedes go, and committed versions are only
 * ever superseded, never undone (a fenced flush commits nothing). So it is
 * safe beside flushes of the partition's owner, whoever that is now, and
 * beside another worker's compaction, which the advisory lock makes skip
 * instead of contend. Returns 0 or the failure's class; *rows is set to the
 * versions kept.
 */
static int compact(struct pgsink *ps, enum qs_topic topic, int32_t partition, int64_t *rows, char *errstr,
		   size_t errstr_size)
{
	char stream[16], part[16];
	snprintf(stream, sizeof(stream), "%d", ps->stream[topic]);
	snprintf(part, sizeof(part), "%d", partition);
	const char *params[2] = {stream, part};
	int rc = exec(ps->conn, "BEGIN", errstr, errstr_size);
	PGresult *res = NULL;
	if (!rc) {
		res = PQexecParams(ps->conn, "SELECT pg_try_advisory_xact_lock(29015, hashtext($1 || ':' || $2))", 2,
				   NULL, params, NULL, NULL, 0);
		if (PQresultStatus(res) != PGRES_TUPLES_OK)
			rc = pgsink_error(errstr, errstr_size, "locking a record log for compaction", ps->conn, res);
		else if (PQgetvalue(res, 0, 0)[0] != 't')
			rc = 1; /* another connection compacts it right now */
		PQclear(res);
	}
	if (!rc) {
		/* By rank in a sort, like LATEST_SQL, for the same reason; deleted by row address (a TID scan). */
		res = PQexecParams(ps->conn,
				   "DELETE FROM qualstream.record_log WHERE ctid = ANY(ARRAY(SELECT ctid FROM"
				   " (SELECT ctid, row_number() OVER (PARTITION BY record_id ORDER BY \"offset\" DESC) AS rank"
				   " FROM qualstream.record_log WHERE stream = $1 AND partition = $2) v WHERE rank > 1))",
				   2, NULL, params, NULL, NULL, 0);
		if (PQresultStatus(res) != PGRES_COMMAND_OK)
			rc = pgsink_error(errstr, errstr_size, "compacting qualstream.record_log", ps->conn, res);
		PQclear(res);
	}
	if (!rc) {
		res = PQexecParams(ps->conn,
				   "SELECT count(*) FROM qualstream.record_log WHERE stream = $1 AND partition = $2", 2,
				   NULL, params, NULL, NULL, 0);
		if (PQresultStatus(res) == PGRES_TUPLES_OK)
			*rows = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
		else
			rc = pgsink_error(errstr, errstr_size, "counting qualstream.record_log", ps->conn, res);
		PQclear(res);
	}
	if (!rc)
		rc = exec(ps->conn, "COMMIT", errstr, errstr_size);
	if (rc) {
		char ignore[1];
		(void)exec(ps->conn, "ROLLBACK", ignore, sizeof(ignore));
	}
	return rc > 0 ? 0 : rc;
}

/* After a commit: counts what the flush appended, and compacts each such partition that is half superseded. */
static void compact_grown(struct pgsink *ps, const struct state *st)
{
	const struct state_record *r;
	size_t n = state_records(st, &r);
	for (size_t i = 0; i < n; i++) {
		struct log_growth *g = growth_of(ps, r[i].topic, r[i].partition);
		g->rows++;
		g->appended = true;
	}
	for (size_t i = 0; i < ps->n_growth; i++) {
		struct log_growth *g = &ps->growth[i];
		if (!g->appended)
			continue; /* unchanged, or no longer this worker's: its owner's flushes decide */
		g->appended = false;
		int64_t live = (int64_t)state_records_held(st, g->topic, g->partition);
		if (g->rows - live < COMPACT_MIN || g->rows - live < live)
			continue;
		char err[512];
		/* A failure costs nothing but the delay: the flush is committed, and the next one retries. */
		if (compact(ps, g->topic, g->partition, &g->rows, err, sizeof(err)))
			log_warn("%s[%d]: %s", ps->topics[g->topic], g->partition, err);
	}
}

/*
 * Makes a group's outbox rows (dead letters, alerts) become visible in id
 * order, which the publisher's high-water mark relies on (sinks/outbox.c):
 * the group's lock that alert_evaluate takes (migration 004), taken before
 * the first outbox row gets its id and held to COMMIT. So the flushes of a
 * group's workers take turns from here on; the fence, deltas and records
 * before it stay parallel.
 */
static int lock_outboxes(struct pgsink *ps, char *errstr, size_t errstr_size)
{
	const char *params[1] = {ps->group};
	PGresult *res = PQexecParams(ps->conn, "SELECT pg_advisory_xact_lock(29014, hashtext('alerts:' || $1))", 1,
				     NULL, params, NULL, NULL, 0);
	int rc = 0;
	if (PQresultStatus(res) != PGRES_TUPLES_OK)
		rc = pgsink_error(errstr, errstr_size, "taking the outbox lock", ps->conn, res);
	PQclear(res);
	return rc;
}

static int write_dead_letters(struct pgsink *ps, const struct state *st, char *errstr, size_t errstr_size)
{
	const struct state_dead_letter *dl;
	size_t n = state_dead_letters(st, &dl);
	if (!n)
		return 0;
	for (size_t i = 0; i < n; i++) {
		put_text(ps, ps->group, '\t');
		put_text(ps, ps->topics[dl[i].topic], '\t');
		putf(ps, "%d\t%lld\t", dl[i].partition, (long long)dl[i].offset);
		put_bytea(ps, dl[i].key, dl[i].key_len, '\t');
		put_bytea(ps, dl[i].value, dl[i].value_len, '\t');
		put_text(ps, dl[i].reason, '\n');
	}
	return copy(ps, "qualstream.dead_letter (consumer_group, topic, partition, \"offset\", key, value, reason)",
		    errstr, errstr_size);
}

/* An instant (ms since the epoch) as timestamptz text: "YYYY-MM-DD HH:MM:SS.mmm+00". */
static void put_instant(struct pgsink *ps, int64_t ms, char sep)
{
	int64_t day = ms >= 0 ? ms / 86400000 : -((-ms + 86399999) / 86400000);
	int64_t in_day = ms - day * 86400000;
	char date[11];
	putf(ps, "%s %02d:%02d:%02d.%03d+00%c", dates_format((int32_t)day, date), (int)(in_day / 3600000),
	     (int)(in_day / 60000 % 60), (int)(in_day / 1000 % 60), (int)(in_day % 1000), sep);
}

/* The encounter alerts the families found, in the order found (qualstream.alerts ids keep it). */
static int write_alerts(struct pgsink *ps, const struct state *st, char *errstr, size_t errstr_size)
{
	const struct qs_alert *a;
	size_t n = state_alerts(st, &a);
	if (!n)
		return 0;
	for (size_t i = 0; i < n; i++) {
		const char *plan = state_str(st, a[i].plan);
		char day[11], id[ALERTS_ID_MAX];
		put_text(ps, ps->group, '\t');
		put_text(ps, alerts_encounter_id(id, a[i].kind, plan, a[i].encounter_id), '\t');
		putf(ps, "%s\t%s\t", alerts_kind_name(a[i].kind), a[i].raised ? "RAISED" : "RESOLVED");
		put_text(ps, plan, '\t');
		put_text(ps, state_str(st, a[i].source), '\t');
		put_text(ps, a[i].member_id, '\t');
		put_text(ps, a[i].encounter_id, '\t');
		put_text(ps, dates_format(a[i].due_date, day), '\t');
		put_instant(ps, a[i].detected_at, '\t');
		put_text(ps, a[i].details, '\n');
	}
	return copy(ps,
		    "qualstream.alerts (consumer_group, alert_id, kind, state, plan_id, source, member_id,"
		    " encounter_id, due_date, detected_at, details)",
		    errstr, errstr_size);
}

/*
 * The alerts about plans, which span partitions and workers: evaluated in
 * SQL over what this transaction now sees (README "The clock").
 */
static int evaluate_plan_alerts(struct pgsink *ps, const struct state *st, char *errstr, size_t errstr_size)
{
	char wall[24];
	int64_t wall_ms = state_wall_clock_ms(st);
	snprintf(wall, sizeof(wall), "%lld", (long long)wall_ms);
	const char *params[4] = {ps->group, ps->topics[QS_TOPIC_ENCOUNTERS], ps->topics[QS_TOPIC_DELIVERIES],
				 wall_ms == QS_NO_TS ? NULL : wall};
	PGresult *res = PQexecParams(ps->conn, "SELECT qualstream.alert_evaluate($1, $2, $3, $4)", 4, NULL, params,
				     NULL, NULL, 0);
	int rc = 0;
	if (PQresultStatus(res) != PGRES_TUPLES_OK)
		rc = pgsink_error(errstr, errstr_size, "evaluating the plan alerts", ps->conn, res);
	PQclear(res);
	return rc;
}

int pgsink_flush(struct pgsink *ps, const struct state *st, char *errstr, size_t errstr_size)
{
	if (!state_progress_count(st))
		return QS_OK;
	ps->len = 0;
	int rc = resolve_streams(ps, errstr, errstr_size);
	if (rc)
		return rc;
	rc = exec(ps->conn,
		  "BEGIN;"
		  "CREATE TEMP TABLE IF NOT EXISTS qs_delta (plan_id text, measure text, stratum text, grain text,"
		  " period_start date, numerator bigint, denominator bigint) ON COMMIT DELETE ROWS",
		  errstr, errstr_size);
	/* Fence first: a worker that lost a partition stops here, before writing anything. */
	if (!rc)
		rc = advance_offsets(ps, st, errstr, errstr_size);
	if (!rc)
		rc = write_deltas(ps, st, errstr, errstr_size);
	if (!rc)
		rc = write_records(ps, st, errstr, errstr_size);
	if (!rc)
		rc = lock_outboxes(ps, errstr, errstr_size);
	if (!rc)
		rc = write_dead_letters(ps, st, errstr, errstr_size);
	if (!rc)
		rc = write_alerts(ps, st, errstr, errstr_size);
	if (!rc)
		rc = evaluate_plan_alerts(ps, st, errstr, errstr_size);
	if (!rc)
		rc = exec(ps->conn, "COMMIT", errstr, errstr_size);
	if (rc) {
		char ignore[1];
		(void)exec(ps->conn, "ROLLBACK", ignore, sizeof(ignore));
	} else {
		compact_grown(ps, st);
	}
	return rc;
}
