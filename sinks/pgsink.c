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
#include <stdarg.h>
#include <stdbool.h>
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
#include "pg.h"
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
	struct pg *pg; /* borrowed */
	char *group;
	char *topics[QS_TOPIC_COUNT];
	/* qualstream.record_stream ids of (group, topic), 0 until the first flush or restore looks them up */
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

struct pgsink *pgsink_new(struct pg *pg, const char *group, const char *const topic_names[QS_TOPIC_COUNT])
{
	struct pgsink *ps = xcalloc(1, sizeof(*ps), "the PostgreSQL sink");
	ps->pg = pg;
	ps->group = xstrdup(group, "the consumer group");
	for (int t = 0; t < QS_TOPIC_COUNT; t++)
		ps->topics[t] = xstrdup(topic_names[t], "a topic name");
	return ps;
}

void pgsink_free(struct pgsink *ps)
{
	if (!ps)
		return;
	free(ps->group);
	for (int t = 0; t < QS_TOPIC_COUNT; t++)
		free(ps->topics[t]);
	free(ps->growth);
	free(ps->order);
	free(ps->buf);
	free(ps);
}

/*
 * Numbered migrations (NNN_name.sql) run once each, in order, known by name.
 * A repeatable one (R_name.sql, migration 008; sorted after the numbered)
 * runs when its text is not the one last applied (by md5, kept in
 * schema_migrations.checksum) or when a numbered migration ran before it in
 * this call, since that may have dropped what it defines. Each runs in a
 * transaction of its own, under the migration lock.
 */
int pgsink_migrate(struct pg *pg, char *errstr, size_t errstr_size)
{
	int rc = -1;
	if (pg_exec(pg, NULL, "SELECT pg_advisory_lock(" PG_KEY(PG_LOCK_MIGRATE) ")", errstr, errstr_size))
		return -1;
	if (pg_exec(pg, NULL,
		    "CREATE SCHEMA IF NOT EXISTS qualstream;"
		    "CREATE TABLE IF NOT EXISTS qualstream.schema_migrations ("
		    " name text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())",
		    errstr, errstr_size))
		goto done;
	bool numbered_ran = false;
	for (const struct embedded_file *m = embedded_migrations; m->name; m++) {
		bool repeatable = !strncmp(m->name, "R_", 2);
		const char *params[2] = {m->name, m->text};
		PGresult *res;
		if (pg_select(
			    pg, "reading qualstream.schema_migrations",
			    repeatable
				    ? "SELECT 1 FROM qualstream.schema_migrations WHERE name = $1 AND checksum = md5($2)"
				    : "SELECT 1 FROM qualstream.schema_migrations WHERE name = $1",
			    repeatable ? 2 : 1, params, PG_TEXT, &res, errstr, errstr_size))
			goto done;
		bool applied = PQntuples(res) == 1;
		PQclear(res);
		if (applied && !(repeatable && numbered_ran))
			continue;
		if (pg_begin(pg, errstr, errstr_size))
			goto done;
		if (pg_exec(pg, m->name, m->text, errstr, errstr_size)) {
			pg_rollback(pg);
			goto done;
		}
		if (pg_command(
			    pg, m->name,
			    repeatable
				    ? "INSERT INTO qualstream.schema_migrations (name, checksum) VALUES ($1, md5($2))"
				      " ON CONFLICT (name) DO UPDATE SET checksum = EXCLUDED.checksum,"
				      " applied_at = EXCLUDED.applied_at"
				    : "INSERT INTO qualstream.schema_migrations (name) VALUES ($1)",
			    repeatable ? 2 : 1, params, NULL, errstr, errstr_size) ||
		    pg_commit(pg, errstr, errstr_size))
			goto done;
		numbered_ran = numbered_ran || !repeatable;
	}
	rc = 0;
done:;
	char why[512];
	if (pg_exec(pg, NULL, "SELECT pg_advisory_unlock(" PG_KEY(PG_LOCK_MIGRATE) ")", why, sizeof(why)))
		log_debug("%s (closing the connection releases the lock)", why);
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
		PGresult *res;
		int rc = pg_select(ps->pg, "reading qualstream.rule",
				   "SELECT value::int FROM qualstream.rule WHERE name = $1", 1, params, PG_TEXT, &res,
				   errstr, errstr_size);
		if (rc)
			return rc;
		if (PQntuples(res) != 1) {
			errstr_set(errstr, errstr_size, "qualstream.rule has no row '%s' (run `qualstream migrate`)",
				   wanted[i].name);
			rc = QS_FATAL;
		} else {
			*(int32_t *)((char *)rules + wanted[i].offset) = atoi(PQgetvalue(res, 0, 0));
		}
		PQclear(res);
		if (rc)
			return rc;
	}
	return 0;
}

int pgsink_claim(struct pgsink *ps, enum qs_topic topic, int32_t partition, int64_t *next_offset, int64_t *clock_ms,
		 char *errstr, size_t errstr_size)
{
	char part[16];
	snprintf(part, sizeof(part), "%d", partition);
	const char *params[3] = {ps->group, ps->topics[topic], part};
	const char *what = "claiming a partition in qualstream.consumer_offsets";
	PGresult *res;
	int rc = pg_select(ps->pg, what,
			   "WITH ins AS (INSERT INTO qualstream.consumer_offsets VALUES ($1, $2, $3, 0)"
			   " ON CONFLICT DO NOTHING RETURNING next_offset)"
			   " SELECT next_offset, NULL::bigint FROM ins UNION ALL"
			   " SELECT next_offset, event_clock FROM qualstream.consumer_offsets"
			   " WHERE consumer_group = $1 AND topic = $2 AND partition = $3",
			   3, params, PG_TEXT, &res, errstr, errstr_size);
	if (rc)
		return rc;
	if (PQntuples(res) < 1) {
		/* A concurrent first claim, committed after this statement's snapshot: the retry sees its row. */
		errstr_set(errstr, errstr_size, "%s: no row", what);
		rc = QS_ERROR;
	} else {
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
	int rc = pg_select(ps->pg, "registering in qualstream.record_stream",
			   "WITH t (topic) AS (VALUES ($2), ($3), ($4)),"
			   " ins AS (INSERT INTO qualstream.record_stream (consumer_group, topic)"
			   " SELECT $1, topic FROM t WHERE NOT EXISTS (SELECT 1 FROM qualstream.record_stream s"
			   " WHERE s.consumer_group = $1 AND s.topic = t.topic) ON CONFLICT DO NOTHING)"
			   " SELECT 1",
			   1 + QS_TOPIC_COUNT, params, PG_TEXT, NULL, errstr, errstr_size);
	if (rc)
		return rc;
	PGresult *res = NULL;
	rc = pg_select(ps->pg, "reading qualstream.record_stream",
		       "SELECT topic, id FROM qualstream.record_stream WHERE consumer_group = $1", 1, params, PG_TEXT,
		       &res, errstr, errstr_size);
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
#define LATEST_SQL                                                                                                \
	"SELECT \"offset\", value FROM (SELECT DISTINCT ON (record_id) \"offset\", value"                         \
	" FROM qualstream.record_log WHERE stream = $1 AND partition = $2 ORDER BY record_id, \"offset\" DESC) l" \
	" ORDER BY \"offset\""

/*
 * The sorts of LATEST_SQL hold a partition's whole log (about 100 bytes a
 * row): at PostgreSQL's default work_mem (4 MB) a partition of a million
 * records sorts on disk, in passes. A restore runs one such query at a time
 * per worker, so it is given this much, for its own transaction only.
 */
#define RESTORE_WORK_MEM "256MB"

/* Sets *rows to the versions in a partition's log, params {stream id, partition}. */
static int count_versions(struct pgsink *ps, const char *const params[2], int64_t *rows, char *errstr,
			  size_t errstr_size)
{
	PGresult *res;
	int rc = pg_select(ps->pg, "counting qualstream.record_log",
			   "SELECT count(*) FROM qualstream.record_log WHERE stream = $1 AND partition = $2", 2, params,
			   PG_TEXT, &res, errstr, errstr_size);
	if (!rc)
		*rows = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
	PQclear(res);
	return rc;
}

/* What restore_version passes a version to. */
struct restore {
	const struct pgsink *ps;
	enum qs_topic topic;
	int32_t partition;
	pgsink_record_cb cb;
	void *ctx;
};

/* One row of LATEST_SQL (binary: the int8 offset, the bytea value) to the caller's callback. */
static int restore_version(void *ctx, const PGresult *row, char *errstr, size_t errstr_size)
{
	const struct restore *r = ctx;
	int64_t offset = pg_int8(PQgetvalue(row, 0, 0));
	int rc = r->cb(r->ctx, offset, PQgetvalue(row, 0, 1), (size_t)PQgetlength(row, 0, 1));
	if (rc)
		errstr_set(errstr, errstr_size, "restoring %s[%d] at offset %lld failed", r->ps->topics[r->topic],
			   r->partition, (long long)offset);
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
	struct restore restore = {ps, topic, partition, cb, ctx};
	/* One snapshot for the versions and their count. */
	rc = pg_exec(ps->pg, NULL, "BEGIN READ ONLY; SET LOCAL work_mem = '" RESTORE_WORK_MEM "'", errstr, errstr_size);
	if (!rc)
		rc = pg_select_each(ps->pg, "loading qualstream.record_log", LATEST_SQL, 2, params, PG_BINARY,
				    restore_version, &restore, errstr, errstr_size);
	/* Every version, live or superseded: the compaction's schedule starts from it. */
	int64_t rows;
	if (!rc && !(rc = count_versions(ps, params, &rows, errstr, errstr_size)))
		growth_of(ps, topic, partition)->rows = rows;
	if (!rc)
		return pg_commit(ps->pg, errstr, errstr_size);
	pg_rollback(ps->pg);
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
		case '\\':
			esc = "\\\\";
			break;
		case '\t':
			esc = "\\t";
			break;
		case '\n':
			esc = "\\n";
			break;
		case '\r':
			esc = "\\r";
			break;
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
	int rc = pg_copy(ps->pg, sql, ps->buf, ps->len, errstr, errstr_size);
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
		int64_t rows = 0;
		int rc = pg_command(ps->pg, "advancing qualstream.consumer_offsets",
				    "UPDATE qualstream.consumer_offsets SET next_offset = $5, event_clock = $6"
				    " WHERE consumer_group = $1 AND topic = $2 AND partition = $3 AND next_offset = $4",
				    6, params, &rows, errstr, errstr_size);
		if (!rc && rows != 1) {
			errstr_set(errstr, errstr_size,
				   "fenced: %s[%d] is no longer at offset %s in qualstream.consumer_offsets"
				   " (another worker owns it now)",
				   ps->topics[topic], partition, exp);
			rc = QS_FENCED;
		}
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
		  : pg_exec(ps->pg, NULL,
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
	const struct state_record *x = *(const struct state_record *const *)a,
				  *y = *(const struct state_record *const *)b;
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
	return copy(ps, "qualstream.record_log (stream, partition, \"offset\", record_id, value)", errstr, errstr_size);
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
	int rc = pg_begin(ps->pg, errstr, errstr_size);
	PGresult *res = NULL;
	if (!rc) {
		rc = pg_select(
			ps->pg, "locking a record log for compaction",
			"SELECT pg_try_advisory_xact_lock(" PG_KEY(PG_LOCK_COMPACT) ", hashtext($1 || ':' || $2))", 2,
			params, PG_TEXT, &res, errstr, errstr_size);
		if (!rc && PQgetvalue(res, 0, 0)[0] != 't')
			rc = 1; /* another connection compacts it right now */
		PQclear(res);
	}
	/* By rank in a sort, like LATEST_SQL, for the same reason; deleted by row address (a TID scan). */
	if (!rc)
		rc = pg_command(ps->pg, "compacting qualstream.record_log",
				"DELETE FROM qualstream.record_log WHERE ctid = ANY(ARRAY(SELECT ctid FROM"
				" (SELECT ctid, row_number() OVER (PARTITION BY record_id ORDER BY \"offset\" DESC)"
				" AS rank"
				" FROM qualstream.record_log WHERE stream = $1 AND partition = $2) v WHERE rank > 1))",
				2, params, NULL, errstr, errstr_size);
	if (!rc)
		rc = count_versions(ps, params, rows, errstr, errstr_size);
	if (!rc)
		rc = pg_commit(ps->pg, errstr, errstr_size);
	if (rc)
		pg_rollback(ps->pg);
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
 * the group's lock that alert_evaluate takes (R_alerts.sql), taken before
 * the first outbox row gets its id and held to COMMIT. So the flushes of a
 * group's workers take turns from here on; the fence, deltas and records
 * before it stay parallel.
 */
static int lock_outboxes(struct pgsink *ps, char *errstr, size_t errstr_size)
{
	const char *params[1] = {ps->group};
	return pg_select(ps->pg, "taking the outbox lock",
			 "SELECT pg_advisory_xact_lock(" PG_KEY(PG_LOCK_OUTBOX_ROWS) ", hashtext('alerts:' || $1))", 1,
			 params, PG_TEXT, NULL, errstr, errstr_size);
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
	return pg_select(ps->pg, "evaluating the plan alerts", "SELECT qualstream.alert_evaluate($1, $2, $3, $4)", 4,
			 params, PG_TEXT, NULL, errstr, errstr_size);
}

int pgsink_flush(struct pgsink *ps, const struct state *st, char *errstr, size_t errstr_size)
{
	if (!state_progress_count(st))
		return QS_OK;
	ps->len = 0;
	int rc = resolve_streams(ps, errstr, errstr_size);
	if (rc)
		return rc;
	rc = pg_exec(ps->pg, NULL,
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
		rc = pg_commit(ps->pg, errstr, errstr_size);
	if (rc)
		pg_rollback(ps->pg);
	else
		compact_grown(ps, st);
	return rc;
}
