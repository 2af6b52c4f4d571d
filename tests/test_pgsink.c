/*
 * test_pgsink.c: the flush transaction against a real PostgreSQL (tests/run.sh
 * starts one and exports QS_PG_DSN). Each test gets a fresh database. Checks
 * the additive merge, the record log (restore, compaction), the dead-letter
 * insert and, above all, the fence: a worker whose expected offset is stale
 * writes nothing.
 * Also the sink's replacement of invalid UTF-8, which once made a flush fail
 * forever (errstr's own UTF-8 rules are test_errstr.c's).
 */
#include <check.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "compiler.h"
#include "dates.h"
#include "deliveries.h"
#include "pg.h"
#include "pgsink.h"
#include "state.h"
#include "suites.h"

static const struct qs_rules rules = {.cw13_timely_days = 180, .alert_due_soon_days = 150};
static const char *const topics[QS_TOPIC_COUNT] = {"enc", "del", "mem"};
static char dbname[64];
static char dsn[512];

static PGconn *admin(void)
{
	const char *base = getenv("QS_PG_DSN");
	ck_assert_msg(
		base != NULL,
		"QS_PG_DSN is not set: run the suite through tests/run.sh or ctest (CMake's pg fixture starts a server)");
	PGconn *conn = PQconnectdb(base);
	ck_assert_msg(PQstatus(conn) == CONNECTION_OK, "%s", PQerrorMessage(conn));
	return conn;
}

static void create_db(void)
{
	static int n;
	snprintf(dbname, sizeof(dbname), "qs_unit_%d_%d", (int)getpid(), n++);
	PGconn *conn = admin();
	char sql[128];
	snprintf(sql, sizeof(sql), "CREATE DATABASE %s", dbname);
	PQclear(PQexec(conn, sql));
	PQfinish(conn);
	snprintf(dsn, sizeof(dsn), "%s dbname=%s", getenv("QS_PG_DSN"), dbname);
}

static void drop_db(void)
{
	PGconn *conn = admin();
	char sql[128];
	snprintf(sql, sizeof(sql), "DROP DATABASE IF EXISTS %s WITH (FORCE)", dbname);
	PQclear(PQexec(conn, sql));
	PQfinish(conn);
}

/* The connections the test's sinks write through, each its own (as each worker has): closed by the teardown. */
static struct pg *conns[8];
static size_t n_conns;

static struct pg *connect_pg(void)
{
	char err[512];
	struct pg *pg = pg_connect(dsn, err, sizeof(err));
	ck_assert_msg(pg != NULL, "%s", err);
	return pg;
}

/* A sink on a new connection; the caller frees the sink, the teardown the connection. */
static struct pgsink *connect_sink(void)
{
	ck_assert(n_conns < ARRAY_LEN(conns));
	conns[n_conns] = connect_pg();
	return pgsink_new(conns[n_conns++], "g", topics);
}

/* One value from a query on a fresh connection, as text ("" for no row). */
static char *query1(const char *sql)
{
	static char out[256];
	PGconn *conn = PQconnectdb(dsn);
	PGresult *res = PQexec(conn, sql);
	ck_assert_msg(PQresultStatus(res) == PGRES_TUPLES_OK, "%s: %s", sql, PQresultErrorMessage(res));
	snprintf(out, sizeof(out), "%s", PQntuples(res) ? PQgetvalue(res, 0, 0) : "");
	PQclear(res);
	PQfinish(conn);
	return out;
}

/* A delivery of plan "P\t1": a tab, which COPY escaping must carry. */
static struct qs_event tabbed_delivery(const char *id, int32_t date)
{
	struct qs_event ev = delivery(id, "H", date);
	strcpy(ev.u.delivery.plan_id, "P\t1");
	return ev;
}

static void setup(void)
{
	create_db();
	char err[512];
	struct pg *pg = connect_pg();
	ck_assert_msg(pgsink_migrate(pg, err, sizeof(err)) == 0, "%s", err);
	/* Migrating twice is a no-op. */
	ck_assert_msg(pgsink_migrate(pg, err, sizeof(err)) == 0, "%s", err);
	pg_free(pg);
}

static void teardown(void)
{
	while (n_conns)
		pg_free(conns[--n_conns]);
	drop_db();
}

START_TEST(flush_merges_and_fences)
{
	char err[512];
	struct pgsink *a = connect_sink(), *b = connect_sink();
	struct qs_rules loaded;
	ck_assert_msg(pgsink_load_rules(a, &loaded, err, sizeof(err)) == 0, "%s", err);
	ck_assert_int_eq(loaded.cw13_timely_days, 180);

	int64_t next_a, next_b, clock;
	ck_assert(pgsink_claim(a, QS_TOPIC_DELIVERIES, 2, &next_a, &clock, err, sizeof(err)) == 0);
	ck_assert(pgsink_claim(b, QS_TOPIC_DELIVERIES, 2, &next_b, &clock, err, sizeof(err)) == 0);
	ck_assert_int_eq(next_a, 0);
	ck_assert_int_eq(next_b, 0);

	/* Worker A applies two deliveries at offsets 0 and 1, plus a dead letter at 2, and commits. */
	struct state *sa = state_new(&rules, false);
	struct part *pa = state_part_add(sa, QS_TOPIC_DELIVERIES, 2, next_a, QS_NO_TS);
	struct qs_event d1 = tabbed_delivery("D1", dates_from_civil(2020, 1, 5));
	struct qs_event d2 = tabbed_delivery("D2", dates_from_civil(2020, 2, 5));
	state_apply(sa, pa, &d1, 0, "v1", 2);
	state_apply(sa, pa, &d2, 1, "v2", 2);
	state_dead_letter(sa, pa, 2, "k", 1, "\x01\x02", 2, "wrong magic byte 0x01 (expected 0)");
	ck_assert_msg(pgsink_flush(a, sa, err, sizeof(err)) == QS_OK, "%s", err);
	state_flushed(sa);

	/* Worker B still believes the partition is at 0: its flush is fenced and writes nothing. */
	struct state *sb = state_new(&rules, false);
	struct part *pb = state_part_add(sb, QS_TOPIC_DELIVERIES, 2, next_b, QS_NO_TS);
	state_apply(sb, pb, &d1, 0, "v1", 2);
	ck_assert_int_eq(pgsink_flush(b, sb, err, sizeof(err)), QS_FENCED);
	ck_assert_msg(strstr(err, "fenced") != NULL, "%s", err);

	ck_assert_str_eq(query1("SELECT next_offset FROM qualstream.consumer_offsets WHERE partition = 2"), "3");
	ck_assert_str_eq(query1("SELECT numerator || '/' || denominator FROM qualstream.measure_period"
				" WHERE plan_id = E'P\\t1' AND measure = 'NTSV_CSECTION' AND stratum = ''"
				" AND grain = 'quarter' AND period_start = '2020-01-01'"),
			 "2/2");
	ck_assert_str_eq(query1("SELECT count(*) FROM qualstream.record_latest"), "2");
	ck_assert_str_eq(query1("SELECT encode(value, 'escape') FROM qualstream.record_latest WHERE record_id = 'D2'"),
			 "v2");
	ck_assert_str_eq(query1("SELECT reason || ' ' || encode(value, 'hex') || ' ' || \"offset\""
				" FROM qualstream.dead_letter"),
			 "wrong magic byte 0x01 (expected 0) 0102 2");

	/* A's next flush: a void of D2 retracts it, and the record's latest version is replaced. */
	struct qs_event v2 = d2;
	v2.u.delivery.status = QS_STATUS_VOID;
	state_apply(sa, pa, &v2, 3, "v2-void", 7);
	ck_assert_msg(pgsink_flush(a, sa, err, sizeof(err)) == QS_OK, "%s", err);
	state_flushed(sa);
	ck_assert_str_eq(query1("SELECT numerator || '/' || denominator FROM qualstream.measure_period"
				" WHERE measure = 'NTSV_CSECTION' AND stratum = '' AND grain = 'year'"),
			 "1/1");
	ck_assert_str_eq(query1("SELECT \"offset\" || encode(value, 'escape') FROM qualstream.record_latest"
				" WHERE record_id = 'D2'"),
			 "3v2-void");

	state_free(sa);
	state_free(sb);
	pgsink_free(a);
	pgsink_free(b);
}
END_TEST

static int count_cb(void *ctx, int64_t offset, const void *value, size_t len)
{
	(void)value;
	int *n = ctx;
	ck_assert_int_eq(offset, *n);
	ck_assert_uint_eq(len, 2);
	(*n)++;
	return 0;
}

START_TEST(records_load_in_offset_order)
{
	char err[512];
	struct pgsink *ps = connect_sink();
	int64_t next, clock;
	ck_assert(pgsink_claim(ps, QS_TOPIC_DELIVERIES, 0, &next, &clock, err, sizeof(err)) == 0);
	struct state *st = state_new(&rules, false);
	struct part *p = state_part_add(st, QS_TOPIC_DELIVERIES, 0, next, QS_NO_TS);
	/* Ten records, D9 first: loading must come back by offset 0..9. */
	for (int i = 0; i < 10; i++) {
		char id[8];
		snprintf(id, sizeof(id), "D%d", 9 - i);
		struct qs_event ev = tabbed_delivery(id, dates_from_civil(2021, 1, 1 + i));
		state_apply(st, p, &ev, i, "vv", 2);
	}
	ck_assert_msg(pgsink_flush(ps, st, err, sizeof(err)) == QS_OK, "%s", err);
	int n = 0;
	ck_assert_msg(pgsink_load_records(ps, QS_TOPIC_DELIVERIES, 0, count_cb, &n, err, sizeof(err)) == 0, "%s", err);
	ck_assert_int_eq(n, 10);
	state_free(st);
	pgsink_free(ps);
}
END_TEST

/* What a restore hands over: offset and value of each version, in call order. */
struct versions {
	int n;
	int64_t offsets[2000];
	char values[2000][24];
};

static int collect_cb(void *ctx, int64_t offset, const void *value, size_t len)
{
	struct versions *v = ctx;
	ck_assert_int_lt(v->n, 2000);
	ck_assert_uint_lt(len, sizeof(v->values[0]));
	v->offsets[v->n] = offset;
	memcpy(v->values[v->n], value, len);
	v->values[v->n][len] = '\0';
	v->n++;
	return 0;
}

/*
 * 1,000 deliveries, each written in 6 versions over 6 flushes: a restore gets
 * only the latest version of each, in offset order, before the log is
 * compacted (2,000 rows in it after the 2nd flush, half superseded; 5,000
 * after the 5th: 4,000 superseded, still below pgsink.c's COMPACT_MIN of
 * 4,096) and after (the 6th brings the superseded versions to 5,000: only
 * the 1,000 latest rows stay).
 */
START_TEST(restore_reads_latest_versions_and_compaction_keeps_them)
{
	enum { RECORDS = 1000, FLUSHES = 6 };
	char err[512];
	struct pgsink *ps = connect_sink();
	int64_t next, clock;
	ck_assert(pgsink_claim(ps, QS_TOPIC_DELIVERIES, 3, &next, &clock, err, sizeof(err)) == 0);
	struct state *st = state_new(&rules, false);
	struct part *p = state_part_add(st, QS_TOPIC_DELIVERIES, 3, next, QS_NO_TS);
	static struct versions got;
	int64_t offset = 0;
	for (int f = 0; f < FLUSHES; f++) {
		/* Each flush writes the records in a different order, so offset order is not id order. */
		for (int i = 0; i < RECORDS; i++) {
			int r = f % 2 ? RECORDS - 1 - i : i;
			char id[16], value[24];
			snprintf(id, sizeof(id), "D%04d", r);
			snprintf(value, sizeof(value), "D%04d/%d", r, f);
			struct qs_event ev = tabbed_delivery(id, dates_from_civil(2021, 1 + f, 1));
			state_apply(st, p, &ev, offset++, value, strlen(value));
		}
		ck_assert_msg(pgsink_flush(ps, st, err, sizeof(err)) == QS_OK, "%s", err);
		state_flushed(st);
		if (f != 1 && f != 4 && f != FLUSHES - 1)
			continue;
		char want_rows[16];
		snprintf(want_rows, sizeof(want_rows), "%d", f == FLUSHES - 1 ? RECORDS : (f + 1) * RECORDS);
		ck_assert_str_eq(query1("SELECT count(*) FROM qualstream.record_log"), want_rows);
		/* A new owner's restore, on a connection of its own. */
		struct pgsink *owner = connect_sink();
		got.n = 0;
		ck_assert_msg(pgsink_load_records(owner, QS_TOPIC_DELIVERIES, 3, collect_cb, &got, err, sizeof(err)) ==
				      0,
			      "%s", err);
		pgsink_free(owner);
		ck_assert_int_eq(got.n, RECORDS);
		for (int i = 0; i < RECORDS; i++) {
			/* The f-th flush wrote offsets f*RECORDS.. in its own record order. */
			int r = f % 2 ? RECORDS - 1 - i : i;
			char want[24];
			snprintf(want, sizeof(want), "D%04d/%d", r, f);
			ck_assert_int_eq(got.offsets[i], (int64_t)f * RECORDS + i);
			ck_assert_str_eq(got.values[i], want);
		}
	}
	state_free(st);
	pgsink_free(ps);
}
END_TEST

/*
 * Text that is not UTF-8 reaches every text column of a flush (a dead
 * letter's reason, a record id, an alert's details are all put_text) and
 * the flush still commits, with each bad byte stored as U+FFFD and the
 * COPY-special characters intact. On 9f1e163 the COPY failed with
 * "invalid byte sequence for encoding UTF8" and the flush could never succeed.
 */
START_TEST(flush_stores_invalid_utf8_as_replacement)
{
	char err[512];
	struct pgsink *ps = connect_sink();
	int64_t next, clock;
	ck_assert(pgsink_claim(ps, QS_TOPIC_DELIVERIES, 1, &next, &clock, err, sizeof(err)) == 0);
	struct state *st = state_new(&rules, false);
	struct part *p = state_part_add(st, QS_TOPIC_DELIVERIES, 1, next, QS_NO_TS);
	/* A reason cut inside "é", a lone continuation byte, a tab, a backslash and a newline. */
	state_dead_letter(st, p, 0, "k", 1, "v", 1, "ns \xc3\xa9\xc3 \x80 a\tb\\c\nd");
	struct qs_event d = tabbed_delivery("D\xff", dates_from_civil(2020, 1, 5));
	state_apply(st, p, &d, 1, "vv", 2);
	ck_assert_msg(pgsink_flush(ps, st, err, sizeof(err)) == QS_OK, "%s", err);
	state_flushed(st);
	ck_assert_str_eq(query1("SELECT reason = U&'ns \\00E9\\FFFD \\FFFD a' || chr(9) || 'b\\c' || chr(10) || 'd'"
				" FROM qualstream.dead_letter"),
			 "t");
	ck_assert_str_eq(query1("SELECT record_id = U&'D\\FFFD' FROM qualstream.record_latest"), "t");
	ck_assert_str_eq(query1("SELECT next_offset FROM qualstream.consumer_offsets WHERE partition = 1"), "2");
	state_free(st);
	pgsink_free(ps);
}
END_TEST

Suite *pgsink_suite(void)
{
	Suite *s = suite_create("pgsink");
	TCase *tc = tcase_create("postgresql");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, flush_merges_and_fences);
	tcase_add_test(tc, records_load_in_offset_order);
	tcase_add_test(tc, restore_reads_latest_versions_and_compaction_keeps_them);
	tcase_add_test(tc, flush_stores_invalid_utf8_as_replacement);
	suite_add_tcase(s, tc);
	return s;
}
