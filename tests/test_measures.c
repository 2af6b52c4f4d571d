/*
 * test_measures.c: the CW13 and NTSV families driven through state_apply,
 * with every expected cell worked out by hand in the comments. Without a
 * flush the pending deltas are the totals, so each test reads them as the
 * table a user would see.
 */
#include <check.h>
#include <stdio.h>
#include <string.h>

#include "compiler.h"
#include "dates.h"
#include "deliveries.h"
#include "encounters.h"
#include "hashmap.h"
#include "measures/ntsv.h"
#include "state.h"
#include "suites.h"

static const struct qs_rules rules = {.cw13_timely_days = 180, .alert_due_soon_days = 150};

/* Numerator and denominator of one cell; {0, 0} when absent. */
struct nd {
	long long n, d;
};

static struct nd cell(const struct state *st, const char *plan, const char *measure, const char *stratum,
		      enum qs_grain grain, int y, int m, int d)
{
	const struct state_delta *x;
	size_t len = state_deltas(st, &x);
	struct nd out = {0, 0};
	int32_t start = dates_from_civil(y, m, d);
	for (size_t i = 0; i < len; i++)
		if (!strcmp(state_str(st, x[i].plan), plan) && !strcmp(measures_name(x[i].measure), measure) &&
		    !strcmp(state_str(st, x[i].stratum), stratum) && x[i].grain == grain &&
		    x[i].period_start == start) {
			out.n += x[i].numerator;
			out.d += x[i].denominator;
		}
	return out;
}

#define ASSERT_CELL(st, plan, measure, stratum, grain, yy, mm, dd, num, den)                                       \
	do {                                                                                                       \
		struct nd got_ = cell(st, plan, measure, stratum, grain, yy, mm, dd);                              \
		ck_assert_msg(got_.n == (num) && got_.d == (den),                                                  \
			      "%s %s %s %s %04d-%02d-%02d: got %lld/%lld, expected %d/%d", plan, measure, stratum, \
			      dates_grain_name(grain), yy, mm, dd, got_.n, got_.d, (num), (den));                  \
	} while (0)

/* Sum of |numerator| + |denominator| over all cells: 0 means everything cancelled. */
static long long total_abs(const struct state *st)
{
	const struct state_delta *x;
	size_t len = state_deltas(st, &x);
	long long t = 0;
	for (size_t i = 0; i < len; i++)
		t += (x[i].numerator < 0 ? -x[i].numerator : x[i].numerator) +
		     (x[i].denominator < 0 ? -x[i].denominator : x[i].denominator);
	return t;
}

struct fixture {
	struct state *st;
	struct part *enc, *del;
	int64_t offset;
};

static struct fixture setup(void)
{
	struct fixture f;
	f.st = state_new(&rules, false);
	f.enc = state_part_add(f.st, QS_TOPIC_ENCOUNTERS, 0, 0, QS_NO_TS);
	f.del = state_part_add(f.st, QS_TOPIC_DELIVERIES, 0, 0, QS_NO_TS);
	f.offset = 0;
	return f;
}

static void put(struct fixture *f, struct qs_event ev)
{
	struct part *p = ev.topic == QS_TOPIC_ENCOUNTERS ? f->enc : f->del;
	state_apply(f->st, p, &ev, f->offset++, "x", 1);
}

START_TEST(timely_180_vs_181_days)
{
	struct fixture f = setup();
	/* service_to 2017-01-01; +180 days = 2017-06-30 (on time), +181 = 2017-07-01 (late). */
	int32_t dos = dates_from_civil(2017, 1, 1);
	put(&f, encounter("E1", "", QS_FREQ_ORIGINAL, dos, ms_of(2017, 6, 30)));
	put(&f, encounter("E2", "", QS_FREQ_ORIGINAL, dos, ms_of(2017, 7, 1)));
	ASSERT_CELL(f.st, "P1", "CW13_TIMELY", "MEDICARE", QS_GRAIN_MONTH, 2017, 6, 1, 1, 1);
	ASSERT_CELL(f.st, "P1", "CW13_TIMELY", "MEDICARE", QS_GRAIN_MONTH, 2017, 7, 1, 0, 1);
	/* June is Q2, July is Q3; both in the year. */
	ASSERT_CELL(f.st, "P1", "CW13_TIMELY", "MEDICARE", QS_GRAIN_QUARTER, 2017, 4, 1, 1, 1);
	ASSERT_CELL(f.st, "P1", "CW13_TIMELY", "MEDICARE", QS_GRAIN_QUARTER, 2017, 7, 1, 0, 1);
	ASSERT_CELL(f.st, "P1", "CW13_TIMELY", "MEDICARE", QS_GRAIN_YEAR, 2017, 1, 1, 1, 2);
	ASSERT_CELL(f.st, "P1", "CW13_SUBMISSIONS", "MEDICARE", QS_GRAIN_YEAR, 2017, 1, 1, 2, 0);
	state_free(f.st);
}
END_TEST

START_TEST(timely_across_leap_day)
{
	struct fixture f = setup();
	/* 2015-09-02 + 180 days crosses 2016-02-29: 2015-09-02 -> 2016-02-29 is exactly 180 days
	 * (28 Sep + 31 + 30 + 31 + 31 + 29 = 180), so 2016-02-29 is on time and 2016-03-01 late. */
	int32_t dos = dates_from_civil(2015, 9, 2);
	ck_assert_int_eq(dates_from_civil(2016, 2, 29) - dos, 180);
	put(&f, encounter("E1", "", QS_FREQ_ORIGINAL, dos, ms_of(2016, 2, 29)));
	put(&f, encounter("E2", "", QS_FREQ_ORIGINAL, dos, ms_of(2016, 3, 1)));
	ASSERT_CELL(f.st, "P1", "CW13_TIMELY", "MEDICARE", QS_GRAIN_MONTH, 2016, 2, 1, 1, 1);
	ASSERT_CELL(f.st, "P1", "CW13_TIMELY", "MEDICARE", QS_GRAIN_MONTH, 2016, 3, 1, 0, 1);
	ASSERT_CELL(f.st, "P1", "CW13_TIMELY", "MEDICARE", QS_GRAIN_QUARTER, 2016, 1, 1, 1, 2);
	state_free(f.st);
}
END_TEST

START_TEST(submission_instant_is_utc_day)
{
	struct fixture f = setup();
	/* 2017-12-31T23:59:59.999Z counts in December, Q4 and 2017; one ms later in 2018. */
	int32_t dos = dates_from_civil(2017, 12, 1);
	int64_t last_ms = (int64_t)dates_from_civil(2018, 1, 1) * 86400000 - 1;
	put(&f, encounter("E1", "", QS_FREQ_ORIGINAL, dos, last_ms));
	put(&f, encounter("E2", "", QS_FREQ_ORIGINAL, dos, last_ms + 1));
	ASSERT_CELL(f.st, "P1", "CW13_SUBMISSIONS", "MEDICARE", QS_GRAIN_MONTH, 2017, 12, 1, 1, 0);
	ASSERT_CELL(f.st, "P1", "CW13_SUBMISSIONS", "MEDICARE", QS_GRAIN_QUARTER, 2017, 10, 1, 1, 0);
	ASSERT_CELL(f.st, "P1", "CW13_SUBMISSIONS", "MEDICARE", QS_GRAIN_YEAR, 2017, 1, 1, 1, 0);
	ASSERT_CELL(f.st, "P1", "CW13_SUBMISSIONS", "MEDICARE", QS_GRAIN_MONTH, 2018, 1, 1, 1, 0);
	ASSERT_CELL(f.st, "P1", "CW13_SUBMISSIONS", "MEDICARE", QS_GRAIN_YEAR, 2018, 1, 1, 1, 0);
	state_free(f.st);
}
END_TEST

START_TEST(pending_encounter_later_submitted)
{
	struct fixture f = setup();
	int32_t dos = dates_from_civil(2018, 1, 10);
	/* Owed: counts nowhere. */
	put(&f, encounter("E1", "", QS_FREQ_ORIGINAL, dos, QS_NO_TS));
	ck_assert_int_eq(total_abs(f.st), 0);
	/* Submitted 2018-09-01: 234 days after service_to, late; counts once in September. */
	put(&f, encounter("E1", "", QS_FREQ_ORIGINAL, dos, ms_of(2018, 9, 1)));
	ASSERT_CELL(f.st, "P1", "CW13_SUBMISSIONS", "MEDICARE", QS_GRAIN_MONTH, 2018, 9, 1, 1, 0);
	ASSERT_CELL(f.st, "P1", "CW13_TIMELY", "MEDICARE", QS_GRAIN_MONTH, 2018, 9, 1, 0, 1);
	/* The same version again (a redelivery) changes nothing. */
	put(&f, encounter("E1", "", QS_FREQ_ORIGINAL, dos, ms_of(2018, 9, 1)));
	ASSERT_CELL(f.st, "P1", "CW13_SUBMISSIONS", "MEDICARE", QS_GRAIN_YEAR, 2018, 1, 1, 1, 0);
	ASSERT_CELL(f.st, "P1", "CW13_TIMELY", "MEDICARE", QS_GRAIN_YEAR, 2018, 1, 1, 0, 1);
	state_free(f.st);
}
END_TEST

START_TEST(replacement_moves_service_to_and_void_of_replacement)
{
	struct fixture f = setup();
	/* Original: service_to 2018-01-01, submitted 2018-07-15 (195 days: late). */
	put(&f, encounter("O", "", QS_FREQ_ORIGINAL, dates_from_civil(2018, 1, 1), ms_of(2018, 7, 15)));
	ASSERT_CELL(f.st, "P1", "CW13_TIMELY", "MEDICARE", QS_GRAIN_MONTH, 2018, 7, 1, 0, 1);
	/* Replacement corrects service_to to 2018-02-01 (164 days before 2018-07-15): the original is on time.
	 * The replacement is itself a submission in August. */
	put(&f, encounter("R", "O", QS_FREQ_REPLACEMENT, dates_from_civil(2018, 2, 1), ms_of(2018, 8, 3)));
	ASSERT_CELL(f.st, "P1", "CW13_TIMELY", "MEDICARE", QS_GRAIN_MONTH, 2018, 7, 1, 1, 1);
	ASSERT_CELL(f.st, "P1", "CW13_SUBMISSIONS", "MEDICARE", QS_GRAIN_MONTH, 2018, 8, 1, 1, 0);
	/* A void naming the replacement voids the chain: timeliness retracted, 3 submissions remain. */
	put(&f, encounter("V", "R", QS_FREQ_VOID, dates_from_civil(2018, 2, 1), ms_of(2018, 9, 5)));
	ASSERT_CELL(f.st, "P1", "CW13_TIMELY", "MEDICARE", QS_GRAIN_MONTH, 2018, 7, 1, 0, 0);
	ASSERT_CELL(f.st, "P1", "CW13_TIMELY", "MEDICARE", QS_GRAIN_YEAR, 2018, 1, 1, 0, 0);
	ASSERT_CELL(f.st, "P1", "CW13_SUBMISSIONS", "MEDICARE", QS_GRAIN_QUARTER, 2018, 7, 1, 3, 0);
	state_free(f.st);
}
END_TEST

START_TEST(replacement_before_original)
{
	struct fixture f = setup();
	/* The replacement arrives first: a submission, no timeliness until its original arrives. */
	put(&f, encounter("R", "O", QS_FREQ_REPLACEMENT, dates_from_civil(2019, 3, 1), ms_of(2019, 4, 1)));
	ASSERT_CELL(f.st, "P1", "CW13_TIMELY", "MEDICARE", QS_GRAIN_YEAR, 2019, 1, 1, 0, 0);
	/* Original: service_to 2019-01-01, submitted 2019-08-01 = 212 days (late), but the chain's
	 * service_to is the replacement's 2019-03-01: 153 days, on time. */
	put(&f, encounter("O", "", QS_FREQ_ORIGINAL, dates_from_civil(2019, 1, 1), ms_of(2019, 8, 1)));
	ASSERT_CELL(f.st, "P1", "CW13_TIMELY", "MEDICARE", QS_GRAIN_MONTH, 2019, 8, 1, 1, 1);
	ASSERT_CELL(f.st, "P1", "CW13_SUBMISSIONS", "MEDICARE", QS_GRAIN_YEAR, 2019, 1, 1, 2, 0);
	state_free(f.st);
}
END_TEST

START_TEST(medicaid_stratum)
{
	struct fixture f = setup();
	struct qs_event ev = encounter("E1", "", QS_FREQ_ORIGINAL, dates_from_civil(2018, 5, 5), ms_of(2018, 5, 20));
	ev.u.encounter.source = QS_SOURCE_MEDICAID;
	put(&f, ev);
	ASSERT_CELL(f.st, "P1", "CW13_TIMELY", "MEDICAID", QS_GRAIN_MONTH, 2018, 5, 1, 1, 1);
	ASSERT_CELL(f.st, "P1", "CW13_TIMELY", "MEDICARE", QS_GRAIN_MONTH, 2018, 5, 1, 0, 0);
	state_free(f.st);
}
END_TEST

START_TEST(ntsv_each_criterion)
{
	struct fixture f = setup();
	int32_t day = dates_from_civil(2020, 5, 10);
	/* Eleven deliveries, all in hospital H in May 2020:
	 * D0 NTSV cesarean               -> NTSV den, num
	 * D1 NTSV vaginal                -> NTSV den
	 * D2 parity 1 (fails)            -> neither
	 * D3 36 weeks (fails)            -> neither
	 * D4 twins (fails)               -> neither
	 * D5 breech (fails)              -> neither
	 * D6 stillbirth (fails)          -> neither
	 * D7 parity missing              -> MISSING num
	 * D8 gestational age missing     -> MISSING num
	 * D9 presentation missing        -> MISSING num
	 * D10 plurality missing, breech  -> neither (excluded anyway)
	 * NTSV_CSECTION 1/2; NTSV_MISSING 3/11. */
	struct qs_event d[11];
	for (int i = 0; i < 11; i++) {
		char id[8];
		snprintf(id, sizeof(id), "D%d", i);
		d[i] = delivery(id, "H", day);
	}
	d[1].u.delivery.method = QS_METHOD_VAGINAL;
	d[2].u.delivery.parity = 1;
	d[3].u.delivery.gestational_age_weeks = 36;
	d[4].u.delivery.plurality = 2;
	d[5].u.delivery.presentation = QS_PRES_BREECH;
	d[6].u.delivery.live_birth = false;
	d[7].u.delivery.parity = QS_NO_INT;
	d[8].u.delivery.gestational_age_weeks = QS_NO_INT;
	d[9].u.delivery.presentation = QS_PRES_NONE;
	d[10].u.delivery.plurality = QS_NO_INT;
	d[10].u.delivery.presentation = QS_PRES_BREECH;
	for (int i = 0; i < 11; i++)
		put(&f, d[i]);
	for (int s = 0; s < 2; s++) {
		const char *stratum = s ? "hospital:H" : "";
		ASSERT_CELL(f.st, "P1", "NTSV_CSECTION", stratum, QS_GRAIN_MONTH, 2020, 5, 1, 1, 2);
		ASSERT_CELL(f.st, "P1", "NTSV_CSECTION", stratum, QS_GRAIN_QUARTER, 2020, 4, 1, 1, 2);
		ASSERT_CELL(f.st, "P1", "NTSV_MISSING", stratum, QS_GRAIN_YEAR, 2020, 1, 1, 3, 11);
	}
	state_free(f.st);
}
END_TEST

START_TEST(ntsv_37_weeks_is_term)
{
	struct ntsv_delivery d = {.active = true,
				  .live_birth = true,
				  .parity = 0,
				  .gestational_age_weeks = 37,
				  .plurality = 1,
				  .presentation = QS_PRES_VERTEX,
				  .method = QS_METHOD_CESAREAN};
	struct qs_contrib out[QS_MAX_CONTRIBS];
	size_t n = ntsv_contribs(&d, out);
	/* MISSING (0/1) and CSECTION (1/1), for plan and hospital. */
	ck_assert_uint_eq(n, 4);
	ck_assert_int_eq(out[1].measure, QS_M_NTSV_CSECTION);
	ck_assert_int_eq(out[1].numerator, 1);
	d.gestational_age_weeks = 36;
	ck_assert_uint_eq(ntsv_contribs(&d, out), 2);
}
END_TEST

START_TEST(ntsv_correction_moves_month_and_hospital_then_void)
{
	struct fixture f = setup();
	put(&f, delivery("D1", "H1", dates_from_civil(2019, 3, 31)));
	ASSERT_CELL(f.st, "P1", "NTSV_CSECTION", "hospital:H1", QS_GRAIN_MONTH, 2019, 3, 1, 1, 1);
	/* Corrected: delivered 2019-04-01 at H2, vaginal. March/Q1/H1 go back to 0/0. */
	struct qs_event fix = delivery("D1", "H2", dates_from_civil(2019, 4, 1));
	fix.u.delivery.method = QS_METHOD_VAGINAL;
	put(&f, fix);
	ASSERT_CELL(f.st, "P1", "NTSV_CSECTION", "hospital:H1", QS_GRAIN_MONTH, 2019, 3, 1, 0, 0);
	ASSERT_CELL(f.st, "P1", "NTSV_CSECTION", "", QS_GRAIN_QUARTER, 2019, 1, 1, 0, 0);
	ASSERT_CELL(f.st, "P1", "NTSV_CSECTION", "hospital:H2", QS_GRAIN_MONTH, 2019, 4, 1, 0, 1);
	ASSERT_CELL(f.st, "P1", "NTSV_CSECTION", "", QS_GRAIN_QUARTER, 2019, 4, 1, 0, 1);
	ASSERT_CELL(f.st, "P1", "NTSV_CSECTION", "", QS_GRAIN_YEAR, 2019, 1, 1, 0, 1);
	ASSERT_CELL(f.st, "P1", "NTSV_MISSING", "", QS_GRAIN_YEAR, 2019, 1, 1, 0, 1);
	/* Voided: nothing remains anywhere. */
	fix.u.delivery.status = QS_STATUS_VOID;
	put(&f, fix);
	ck_assert_int_eq(total_abs(f.st), 0);
	state_free(f.st);
}
END_TEST

START_TEST(restore_replays_without_deltas)
{
	/* A new owner restores O and R, then a void arrives: only the retraction is a delta. */
	struct state *st = state_new(&rules, false);
	struct part *p = state_part_add(st, QS_TOPIC_ENCOUNTERS, 3, 2, QS_NO_TS);
	struct qs_event o = encounter("O", "", QS_FREQ_ORIGINAL, dates_from_civil(2018, 1, 1), ms_of(2018, 3, 1));
	struct qs_event r = encounter("R", "O", QS_FREQ_REPLACEMENT, dates_from_civil(2018, 1, 2), ms_of(2018, 3, 9));
	state_restore(st, p, &o, 0);
	state_restore(st, p, &r, 1);
	ck_assert_int_eq(total_abs(st), 0);
	ck_assert_uint_eq(state_pending(st), 0);
	struct qs_event v = encounter("V", "O", QS_FREQ_VOID, dates_from_civil(2018, 1, 2), ms_of(2018, 4, 2));
	state_apply(st, p, &v, 2, "x", 1);
	ASSERT_CELL(st, "P1", "CW13_TIMELY", "MEDICARE", QS_GRAIN_MONTH, 2018, 3, 1, -1, -1);
	ASSERT_CELL(st, "P1", "CW13_SUBMISSIONS", "MEDICARE", QS_GRAIN_MONTH, 2018, 4, 1, 1, 0);
	ck_assert_int_eq(state_part_next_offset(p), 3);
	state_free(st);
}
END_TEST

/* --- chains that depend only on the latest versions (README "Identity, corrections and voids") --- */

/* Same numerator and denominator in every cell of x and y. */
static void same_cells(const struct state *x, const struct state *y, int line)
{
	const struct state_delta *a, *b;
	size_t na = state_deltas(x, &a), nb = state_deltas(y, &b);
	for (int pass = 0; pass < 2; pass++)
		for (size_t i = 0; i < (pass ? nb : na); i++) {
			const struct state_delta *d = pass ? &b[i] : &a[i];
			const struct state *st = pass ? y : x;
			int yy, mm, dd;
			dates_to_civil(d->period_start, &yy, &mm, &dd);
			struct nd gx = cell(x, state_str(st, d->plan), measures_name(d->measure),
					    state_str(st, d->stratum), d->grain, yy, mm, dd);
			struct nd gy = cell(y, state_str(st, d->plan), measures_name(d->measure),
					    state_str(st, d->stratum), d->grain, yy, mm, dd);
			ck_assert_msg(
				gx.n == gy.n && gx.d == gy.d,
				"line %d: %s %s %s %04d-%02d-%02d: live %lld/%lld, latest versions only %lld/%lld",
				line, measures_name(d->measure), state_str(st, d->stratum), dates_grain_name(d->grain),
				yy, mm, dd, gx.n, gx.d, gy.n, gy.d);
		}
}

/*
 * Applies log live to a fresh state, and only the latest version of each
 * encounter_id (in offset order, at its own offset) to another: the cells must
 * agree, whatever order the versions came in. Returns the live state.
 */
static struct state *live_vs_latest(const struct qs_event *log, int64_t n, int line)
{
	struct state *live = state_new(&rules, false), *latest = state_new(&rules, false);
	struct part *pl = state_part_add(live, QS_TOPIC_ENCOUNTERS, 0, 0, QS_NO_TS);
	struct part *pr = state_part_add(latest, QS_TOPIC_ENCOUNTERS, 0, 0, QS_NO_TS);
	for (int64_t i = 0; i < n; i++) {
		state_apply(live, pl, &log[i], i, "x", 1);
		bool last = true;
		for (int64_t j = i + 1; j < n && last; j++)
			last = strcmp(log[i].u.encounter.encounter_id, log[j].u.encounter.encounter_id) != 0;
		if (last)
			state_apply(latest, pr, &log[i], i, "x", 1);
	}
	same_cells(live, latest, line);
	state_free(latest);
	return live;
}

#define LIVE_VS_LATEST(log) live_vs_latest(log, (int64_t)ARRAY_LEN(log), __LINE__)

START_TEST(self_reference_is_a_chain_of_its_own)
{
	/* O: service_to 2019-01-01, submitted 2019-03-01: Jan 31 = +30, Feb 28 = +58, Mar 1 = +59, on time.
	 * R names O with service_to 2018-08-01: O is then judged by R, Mar 1 = +212, late.
	 * R's latest version names R itself: a cycle of one, a chain without an original, so O is judged
	 * by its own service_to again: on time. Submissions: O and R in March. */
	const struct qs_event log[] = {
		encounter("O", "", QS_FREQ_ORIGINAL, dates_from_civil(2019, 1, 1), ms_of(2019, 3, 1)),
		encounter("R", "O", QS_FREQ_REPLACEMENT, dates_from_civil(2018, 8, 1), ms_of(2019, 3, 2)),
		encounter("R", "R", QS_FREQ_REPLACEMENT, dates_from_civil(2018, 8, 1), ms_of(2019, 3, 2)),
	};
	struct state *st = LIVE_VS_LATEST(log);
	ASSERT_CELL(st, "P1", "CW13_TIMELY", "MEDICARE", QS_GRAIN_MONTH, 2019, 3, 1, 1, 1);
	ASSERT_CELL(st, "P1", "CW13_SUBMISSIONS", "MEDICARE", QS_GRAIN_MONTH, 2019, 3, 1, 2, 0);
	state_free(st);
}
END_TEST

START_TEST(original_resent_as_replacement_takes_its_void_along)
{
	/* O original, on time (service_to 2019-01-01, submitted 2019-03-01). X first an ORIGINAL, V a void
	 * naming X; then X's latest version is a REPLACEMENT naming O: V names X, X names O, so V voids
	 * O's chain: no timeliness anywhere. Submissions: O, V, X in March 2019. */
	const struct qs_event log[] = {
		encounter("O", "", QS_FREQ_ORIGINAL, dates_from_civil(2019, 1, 1), ms_of(2019, 3, 1)),
		encounter("X", "", QS_FREQ_ORIGINAL, dates_from_civil(2019, 1, 5), ms_of(2019, 3, 3)),
		encounter("V", "X", QS_FREQ_VOID, dates_from_civil(2019, 1, 5), ms_of(2019, 3, 4)),
		encounter("X", "O", QS_FREQ_REPLACEMENT, dates_from_civil(2019, 1, 1), ms_of(2019, 3, 5)),
	};
	struct state *st = LIVE_VS_LATEST(log);
	ASSERT_CELL(st, "P1", "CW13_TIMELY", "MEDICARE", QS_GRAIN_YEAR, 2019, 1, 1, 0, 0);
	ASSERT_CELL(st, "P1", "CW13_SUBMISSIONS", "MEDICARE", QS_GRAIN_MONTH, 2019, 3, 1, 3, 0);
	state_free(st);
}
END_TEST

START_TEST(replacement_resent_as_original_keeps_its_own_chain)
{
	/* Y voids X before X arrives; X first a REPLACEMENT naming O (not arrived), then its latest version
	 * an ORIGINAL; then O. Latest versions: Y names X, X and O are originals: X's chain {X, Y} is
	 * voided and O's chain {O} counts, service_to 2019-01-01 submitted 2019-03-03 (+61): 1/1.
	 * Submissions: Y, X, O in March. */
	const struct qs_event log[] = {
		encounter("Y", "X", QS_FREQ_VOID, dates_from_civil(2019, 1, 1), ms_of(2019, 3, 1)),
		encounter("X", "O", QS_FREQ_REPLACEMENT, dates_from_civil(2019, 1, 1), ms_of(2019, 3, 2)),
		encounter("X", "", QS_FREQ_ORIGINAL, dates_from_civil(2019, 1, 1), ms_of(2019, 3, 2)),
		encounter("O", "", QS_FREQ_ORIGINAL, dates_from_civil(2019, 1, 1), ms_of(2019, 3, 3)),
	};
	struct state *st = LIVE_VS_LATEST(log);
	ASSERT_CELL(st, "P1", "CW13_TIMELY", "MEDICARE", QS_GRAIN_MONTH, 2019, 3, 1, 1, 1);
	ASSERT_CELL(st, "P1", "CW13_SUBMISSIONS", "MEDICARE", QS_GRAIN_MONTH, 2019, 3, 1, 3, 0);
	state_free(st);
}
END_TEST

START_TEST(corrected_original_id_moves_the_records_naming_it)
{
	/* O on time (service_to 2019-01-01, submitted 2019-03-01, +59). A late (service_to 2018-08-01,
	 * submitted 2019-03-01: Aug 31 = +30, Sep 30 = +60, Oct 31 = +91, Nov 30 = +121, Dec 31 = +152,
	 * Jan 31 = +183, Feb 28 = +211, Mar 1 = +212). R names A, VR voids R (so A's chain), then R's
	 * latest version names O: VR -> R -> O voids O's chain, and A's chain {A} counts, late: 0/1.
	 * Submissions: O, A, VR, R in March. */
	const struct qs_event log[] = {
		encounter("O", "", QS_FREQ_ORIGINAL, dates_from_civil(2019, 1, 1), ms_of(2019, 3, 1)),
		encounter("A", "", QS_FREQ_ORIGINAL, dates_from_civil(2018, 8, 1), ms_of(2019, 3, 1)),
		encounter("R", "A", QS_FREQ_REPLACEMENT, dates_from_civil(2018, 8, 1), ms_of(2019, 3, 2)),
		encounter("VR", "R", QS_FREQ_VOID, dates_from_civil(2018, 8, 1), ms_of(2019, 3, 3)),
		encounter("R", "O", QS_FREQ_REPLACEMENT, dates_from_civil(2019, 1, 1), ms_of(2019, 3, 4)),
	};
	struct state *st = LIVE_VS_LATEST(log);
	ASSERT_CELL(st, "P1", "CW13_TIMELY", "MEDICARE", QS_GRAIN_MONTH, 2019, 3, 1, 0, 1);
	ASSERT_CELL(st, "P1", "CW13_SUBMISSIONS", "MEDICARE", QS_GRAIN_MONTH, 2019, 3, 1, 4, 0);
	state_free(st);
}
END_TEST

START_TEST(cycle_counts_like_a_missing_original)
{
	/* O on time (+59). R1 names O, R2 names R1. Then R1's latest version, with service_to 2018-08-01
	 * (which would make O late, +212), names R2: R1 <-> R2 is a cycle, rooted at R1 (the smaller id),
	 * with no original; O is alone, judged by its own service_to, on time: 1/1. Then O's latest version is a REPLACEMENT naming R2: O joins the
	 * cycle's chain, which has no original: no timeliness at all. Submissions: O, R1, R2 in March. */
	const struct qs_event log[] = {
		encounter("O", "", QS_FREQ_ORIGINAL, dates_from_civil(2019, 1, 1), ms_of(2019, 3, 1)),
		encounter("R1", "O", QS_FREQ_REPLACEMENT, dates_from_civil(2019, 1, 1), ms_of(2019, 3, 2)),
		encounter("R2", "R1", QS_FREQ_REPLACEMENT, dates_from_civil(2019, 1, 1), ms_of(2019, 3, 3)),
		encounter("R1", "R2", QS_FREQ_REPLACEMENT, dates_from_civil(2018, 8, 1), ms_of(2019, 3, 4)),
	};
	struct state *st = LIVE_VS_LATEST(log);
	ASSERT_CELL(st, "P1", "CW13_TIMELY", "MEDICARE", QS_GRAIN_MONTH, 2019, 3, 1, 1, 1);
	ASSERT_CELL(st, "P1", "CW13_SUBMISSIONS", "MEDICARE", QS_GRAIN_MONTH, 2019, 3, 1, 3, 0);
	state_free(st);
	const struct qs_event log2[] = {
		log[0],
		log[1],
		log[2],
		log[3],
		encounter("O", "R2", QS_FREQ_REPLACEMENT, dates_from_civil(2019, 1, 1), ms_of(2019, 3, 1)),
	};
	st = LIVE_VS_LATEST(log2);
	ASSERT_CELL(st, "P1", "CW13_TIMELY", "MEDICARE", QS_GRAIN_YEAR, 2019, 1, 1, 0, 0);
	ASSERT_CELL(st, "P1", "CW13_SUBMISSIONS", "MEDICARE", QS_GRAIN_MONTH, 2019, 3, 1, 3, 0);
	state_free(st);
}
END_TEST

/*
 * The record index (hashmap.h): 120,000 ids of 24-27 bytes, some a prefix of
 * others, fill chunks up to 1 MiB; each gets the next number once, keeps it,
 * and reads back byte for byte. The numbers are worked out from the loop, not
 * from the map.
 */
START_TEST(idmap_numbers_each_id_once)
{
	struct idmap m = {0};
	char id[32];
	bool added;
	uint32_t wrong = 0;
	for (uint32_t i = 0; i < 120000; i++) {
		snprintf(id, sizeof(id), "ENC-PLAN-C-%07u%s.r01", i / 2, i % 2 ? "-R1" : "");
		wrong += idmap_add(&m, id, &added) != i || !added;
	}
	ck_assert_uint_eq(wrong, 0);
	ck_assert_uint_gt(m.nchunks, 2);
	for (uint32_t i = 0; i < 120000; i += 7) {
		snprintf(id, sizeof(id), "ENC-PLAN-C-%07u%s.r01", i / 2, i % 2 ? "-R1" : "");
		ck_assert_uint_eq(idmap_add(&m, id, &added), i);
		ck_assert(!added);
		ck_assert_uint_eq(idmap_find(&m, id), i);
		ck_assert_str_eq(idmap_str(&m, i), id);
	}
	ck_assert_uint_eq(idmap_find(&m, "ENC-PLAN-C-0000001-R1.r0"), TABLE_NONE); /* a prefix of an id is another id */
	ck_assert_uint_eq(idmap_find(&m, ""), TABLE_NONE);
	ck_assert_uint_eq(idmap_add(&m, "", NULL), 120000);
	ck_assert_str_eq(idmap_str(&m, 120000), "");
	idmap_free(&m);
}
END_TEST

Suite *measures_suite(void)
{
	Suite *s = suite_create("measures");
	TCase *tc = tcase_create("cw13");
	tcase_add_test(tc, timely_180_vs_181_days);
	tcase_add_test(tc, timely_across_leap_day);
	tcase_add_test(tc, submission_instant_is_utc_day);
	tcase_add_test(tc, pending_encounter_later_submitted);
	tcase_add_test(tc, replacement_moves_service_to_and_void_of_replacement);
	tcase_add_test(tc, replacement_before_original);
	tcase_add_test(tc, medicaid_stratum);
	tcase_add_test(tc, restore_replays_without_deltas);
	suite_add_tcase(s, tc);
	tc = tcase_create("chains");
	tcase_add_test(tc, self_reference_is_a_chain_of_its_own);
	tcase_add_test(tc, original_resent_as_replacement_takes_its_void_along);
	tcase_add_test(tc, replacement_resent_as_original_keeps_its_own_chain);
	tcase_add_test(tc, corrected_original_id_moves_the_records_naming_it);
	tcase_add_test(tc, cycle_counts_like_a_missing_original);
	suite_add_tcase(s, tc);
	tc = tcase_create("ntsv");
	tcase_add_test(tc, ntsv_each_criterion);
	tcase_add_test(tc, ntsv_37_weeks_is_term);
	tcase_add_test(tc, ntsv_correction_moves_month_and_hospital_then_void);
	suite_add_tcase(s, tc);
	tc = tcase_create("index");
	tcase_add_test(tc, idmap_numbers_each_id_once);
	suite_add_tcase(s, tc);
	return s;
}
