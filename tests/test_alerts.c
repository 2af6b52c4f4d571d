/*
 * test_alerts.c: the encounter alerts (README "Alerts", "The clock"):
 * LATE_SUBMISSION, DUE_SOON and OVERDUE, raised and resolved by the CW13
 * family as encounters arrive and the partition's clock moves, driven through
 * state_apply, state_restore and state_wall_clock. Every expected transition
 * is worked out by hand in the comments, calendar arithmetic written out. The
 * randomized test compares against a brute-force model written here from the
 * contract, and a live state against one restored from the latest versions.
 *
 * Rules throughout: cw13_timely_days 180, alert_due_soon_days 150. An owed
 * original is DUE_SOON at ages 150..180 days and OVERDUE from 181; a submitted
 * one is LATE_SUBMISSION when submitted more than 180 days after service_to;
 * due_date is service_to + 180.
 */
#include <check.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alerts.h"
#include "compiler.h"
#include "dates.h"
#include "embedded.h"
#include "encounters.h"
#include "state.h"
#include "suites.h"
#include "xalloc.h"

static const struct qs_rules rules = {.cw13_timely_days = 180, .alert_due_soon_days = 150};

#define DAY_MS INT64_C(86400000)
#define RAISED true
#define RESOLVED false
#define ANY_DUE INT32_MAX /* expect(): do not check due_date */

static int64_t midnight_of(int y, int m, int d)
{
	return (int64_t)dates_from_civil(y, m, d) * DAY_MS;
}

static int64_t last_ms_of(int y, int m, int d)
{
	return midnight_of(y, m, d) + DAY_MS - 1; /* 23:59:59.999 UTC */
}

static int32_t day(int y, int m, int d)
{
	return dates_from_civil(y, m, d);
}

/* An original adjudicated at adjudicated_at and not submitted: owed. */
static struct qs_event owed(const char *id, int32_t service_to, int64_t adjudicated_at)
{
	struct qs_event ev = encounter(id, "", QS_FREQ_ORIGINAL, service_to, QS_NO_TS);
	ev.u.encounter.adjudicated_at = adjudicated_at;
	return ev;
}

/* The same original, now submitted at submitted_at (adjudicated_at kept). */
static struct qs_event submitted(struct qs_event ev, int64_t submitted_at)
{
	ev.u.encounter.submitted_at = submitted_at;
	return ev;
}

static struct qs_event void_of(const char *id, const char *named, int32_t service_to, int64_t submitted_at)
{
	return encounter(id, named, QS_FREQ_VOID, service_to, submitted_at);
}

struct fixture {
	struct state *st;
	struct part *p;
	int64_t offset;
	size_t seen; /* transitions already checked */
	int ticks;   /* tick() ids used */
};

static struct fixture setup_mode(bool wall)
{
	struct fixture f = {0};
	f.st = state_new(&rules, wall);
	f.p = state_part_add(f.st, QS_TOPIC_ENCOUNTERS, 0, 0, QS_NO_TS);
	return f;
}

static struct fixture setup(void)
{
	return setup_mode(false);
}

static void put(struct fixture *f, struct qs_event ev)
{
	state_apply(f->st, f->p, &ev, f->offset++, "x", 1);
}

/*
 * Moves the clock to ms (event time) with an encounter that can raise nothing:
 * an original of its own id, submitted the day its service ended (age 0).
 */
static void tick(struct fixture *f, int64_t ms)
{
	char id[16];
	snprintf(id, sizeof(id), "T%d", f->ticks++);
	put(f, encounter(id, "", QS_FREQ_ORIGINAL, (int32_t)(ms / DAY_MS), ms));
}

static void expect_at(struct fixture *f, int line, enum qs_alert_kind kind, bool raised, const char *id,
		      int64_t detected_at, int32_t due_date)
{
	const struct qs_alert *a;
	size_t n = state_alerts(f->st, &a);
	ck_assert_msg(f->seen < n, "line %d: expected %s %s of %s, but there are no more transitions", line,
		      alerts_kind_name(kind), raised ? "RAISED" : "RESOLVED", id);
	const struct qs_alert *x = &a[f->seen++];
	char want_due[11] = "-", got_due[11];
	if (due_date != ANY_DUE)
		dates_format(due_date, want_due);
	dates_format(x->due_date, got_due);
	ck_assert_msg(x->kind == kind && x->raised == raised && !strcmp(x->encounter_id, id) &&
			      x->detected_at == detected_at && (due_date == ANY_DUE || x->due_date == due_date),
		      "line %d: expected %s %s %s detected %lld due %s; got %s %s %s detected %lld due %s", line,
		      alerts_kind_name(kind), raised ? "RAISED" : "RESOLVED", id, (long long)detected_at, want_due,
		      alerts_kind_name(x->kind), x->raised ? "RAISED" : "RESOLVED", x->encounter_id,
		      (long long)x->detected_at, got_due);
	ck_assert_str_eq(state_str(f->st, x->plan), "P1");
	ck_assert_str_eq(state_str(f->st, x->source), "MEDICARE");
	ck_assert_str_eq(x->member_id, "M1");
	ck_assert_msg(x->details && x->details[0], "line %d: empty details", line);
}

static void expect_none_at(struct fixture *f, int line)
{
	const struct qs_alert *a;
	size_t n = state_alerts(f->st, &a);
	ck_assert_msg(n == f->seen, "line %d: expected no new transition, got %zu, the first %s %s of %s", line,
		      n - f->seen, alerts_kind_name(a[f->seen].kind), a[f->seen].raised ? "RAISED" : "RESOLVED",
		      a[f->seen].encounter_id);
}

#define EXPECT(f, kind, raised, id, detected_at, due_date) \
	expect_at(f, __LINE__, QS_ALERT_##kind, raised, id, detected_at, due_date)
#define EXPECT_NONE(f) expect_none_at(f, __LINE__)

/* The clock state_progress reports for (topic, partition), which must have progressed since the last flush. */
static int64_t progress_clock(const struct state *st, enum qs_topic topic, int32_t partition)
{
	size_t n = state_progress_count(st);
	for (size_t i = 0; i < n; i++) {
		enum qs_topic t;
		int32_t part;
		int64_t expected, next, clock;
		state_progress(st, i, &t, &part, &expected, &next, &clock);
		if (t == topic && part == partition)
			return clock;
	}
	ck_abort_msg("partition %d of topic %d has not progressed", partition, (int)topic);
	return QS_NO_TS;
}

/* --- 1. the day boundaries ------------------------------------------------ */

START_TEST(owed_boundaries_149_150_180_181)
{
	struct fixture f = setup();
	/* D = service_to 2021-03-01. Mar 31 = D+30, Apr 30 = D+60, May 31 = D+91, Jun 30 = D+121,
	 * Jul 31 = D+152, Aug 31 = D+183. So D+149 = 2021-07-28, D+150 = 07-29, D+180 = 08-28
	 * (the due date), D+181 = 08-29. */
	put(&f, owed("E", day(2021, 3, 1), ms_of(2021, 3, 11))); /* adjudicated D+10 */
	EXPECT_NONE(&f);
	/* Last ms of D+149, by an adjudicated-only encounter of another id (owed itself, but aged 0:
	 * it would be DUE_SOON only 150 days later, 2021-12-25, outside this test). */
	put(&f, owed("A1", day(2021, 7, 28), last_ms_of(2021, 7, 28)));
	EXPECT_NONE(&f);
	/* First ms of D+150: DUE_SOON raised, exactly one transition, detected at that instant. */
	tick(&f, midnight_of(2021, 7, 29));
	EXPECT(&f, DUE_SOON, RAISED, "E", midnight_of(2021, 7, 29), day(2021, 8, 28));
	EXPECT_NONE(&f);
	/* D+180, noon and last ms: still DUE_SOON, nothing new. */
	tick(&f, ms_of(2021, 8, 28));
	tick(&f, last_ms_of(2021, 8, 28));
	EXPECT_NONE(&f);
	/* First ms of D+181: DUE_SOON resolved, then OVERDUE raised, in that order. */
	tick(&f, midnight_of(2021, 8, 29));
	EXPECT(&f, DUE_SOON, RESOLVED, "E", midnight_of(2021, 8, 29), day(2021, 8, 28));
	EXPECT(&f, OVERDUE, RAISED, "E", midnight_of(2021, 8, 29), day(2021, 8, 28));
	EXPECT_NONE(&f);
	/* An event with an older time does not move the clock back. */
	tick(&f, ms_of(2021, 8, 1));
	EXPECT_NONE(&f);
	ck_assert_int_eq(progress_clock(f.st, QS_TOPIC_ENCOUNTERS, 0), midnight_of(2021, 8, 29));
	/* OVERDUE is final while owed: a year later nothing more (A1, service_to 2021-07-28, went
	 * DUE_SOON on 2021-12-25 and OVERDUE on 2022-01-25: 07-28 + 180 = 2022-01-24). */
	tick(&f, ms_of(2022, 8, 1));
	EXPECT(&f, OVERDUE, RAISED, "A1", ms_of(2022, 8, 1), day(2022, 1, 24));
	EXPECT_NONE(&f);
	state_free(f.st);
}
END_TEST

START_TEST(owed_jump_past_due_soon_raises_overdue_only)
{
	struct fixture f = setup();
	/* service_to 2021-03-01 again: D+100 = 2021-06-09 (May 31 = D+91), D+200 = 2021-09-17
	 * (Aug 31 = D+183). The clock jumps from D+100 to D+200: DUE_SOON never held at a clock
	 * reading, so OVERDUE is raised alone. */
	put(&f, owed("E", day(2021, 3, 1), ms_of(2021, 3, 11)));
	tick(&f, ms_of(2021, 6, 9));
	EXPECT_NONE(&f);
	tick(&f, ms_of(2021, 9, 17));
	EXPECT(&f, OVERDUE, RAISED, "E", ms_of(2021, 9, 17), day(2021, 8, 28));
	EXPECT_NONE(&f);
	state_free(f.st);
}
END_TEST

/* --- 2. LATE_SUBMISSION ----------------------------------------------------- */

START_TEST(late_submission_180_vs_181_and_utc_day)
{
	struct fixture f = setup();
	/* S = service_to 2022-01-10. Jan 31 = S+21, Feb 28 = S+49, Mar 31 = S+80, Apr 30 = S+110,
	 * May 31 = S+141, Jun 30 = S+171, Jul 9 = S+180 (due date), Jul 10 = S+181. */
	int32_t s = day(2022, 1, 10);
	put(&f, encounter("L1", "", QS_FREQ_ORIGINAL, s, ms_of(2022, 7, 9))); /* 180 days: on time */
	EXPECT_NONE(&f);
	put(&f, encounter("L3", "", QS_FREQ_ORIGINAL, s, last_ms_of(2022, 7, 9))); /* 23:59:59.999Z of +180 */
	EXPECT_NONE(&f);
	/* 00:00:00.000Z of +181: late; the clock moved to the submission first, so detected then. */
	put(&f, encounter("L4", "", QS_FREQ_ORIGINAL, s, midnight_of(2022, 7, 10)));
	EXPECT(&f, LATE_SUBMISSION, RAISED, "L4", midnight_of(2022, 7, 10), day(2022, 7, 9));
	put(&f, encounter("L2", "", QS_FREQ_ORIGINAL, s, ms_of(2022, 7, 10)));
	EXPECT(&f, LATE_SUBMISSION, RAISED, "L2", ms_of(2022, 7, 10), day(2022, 7, 9));
	/* An older late submission arriving now: service_to 2021-12-01, submitted 2022-06-30
	 * (Dec 31 = +30, Jan 31 = +61, Feb 28 = +89, Mar 31 = +120, Apr 30 = +150, May 31 = +181,
	 * Jun 30 = +211). Due 2021-12-01 + 180 = 2022-05-30. The clock stays at 2022-07-10 noon,
	 * which is the detection reading. */
	put(&f, encounter("L5", "", QS_FREQ_ORIGINAL, day(2021, 12, 1), ms_of(2022, 6, 30)));
	EXPECT(&f, LATE_SUBMISSION, RAISED, "L5", ms_of(2022, 7, 10), day(2022, 5, 30));
	EXPECT_NONE(&f);
	/* A submission is final: no timer, nothing later. */
	tick(&f, ms_of(2023, 7, 1));
	EXPECT_NONE(&f);
	state_free(f.st);
}
END_TEST

/* --- 3. leap years ---------------------------------------------------------- */

/* Ticks at noon every day from..to inclusive. */
static void tick_daily(struct fixture *f, int32_t from, int32_t to)
{
	for (int32_t d = from; d <= to; d++)
		tick(f, (int64_t)d * DAY_MS + 12 * 3600000);
}

START_TEST(leap_year_window)
{
	struct fixture f = setup();
	/* A: service_to 2019-12-31. Jan 31 2020 = +31, Feb 29 = +60 (2020 is a leap year),
	 *    Mar 31 = +91, Apr 30 = +121, May 29 = +150: DUE_SOON on 2020-05-29.
	 *    May 31 = +152, Jun 28 = +180 (due date), Jun 29 = +181: OVERDUE on 2020-06-29.
	 * B: service_to 2020-01-01. Jan 31 = +30, Feb 29 = +59, Mar 31 = +90, Apr 30 = +120,
	 *    May 30 = +150: DUE_SOON on 2020-05-30. May 31 = +151, Jun 29 = +180 (due date),
	 *    Jun 30 = +181: OVERDUE on 2020-06-30.
	 * (Without Feb 29 each would be one day later.) The clock ticks daily at noon from
	 * 2020-05-25 (A +146, B +145: nothing) to 2020-07-02. */
	put(&f, owed("A", day(2019, 12, 31), ms_of(2020, 1, 5)));
	put(&f, owed("B", day(2020, 1, 1), ms_of(2020, 1, 5)));
	tick_daily(&f, day(2020, 5, 25), day(2020, 7, 2));
	EXPECT(&f, DUE_SOON, RAISED, "A", ms_of(2020, 5, 29), day(2020, 6, 28));
	EXPECT(&f, DUE_SOON, RAISED, "B", ms_of(2020, 5, 30), day(2020, 6, 29));
	EXPECT(&f, DUE_SOON, RESOLVED, "A", ms_of(2020, 6, 29), day(2020, 6, 28));
	EXPECT(&f, OVERDUE, RAISED, "A", ms_of(2020, 6, 29), day(2020, 6, 28));
	EXPECT(&f, DUE_SOON, RESOLVED, "B", ms_of(2020, 6, 30), day(2020, 6, 29));
	EXPECT(&f, OVERDUE, RAISED, "B", ms_of(2020, 6, 30), day(2020, 6, 29));
	EXPECT_NONE(&f);
	state_free(f.st);

	/* C, the same dates a year earlier, no leap day: service_to 2019-01-01. Jan 31 = +30,
	 * Feb 28 = +58, Mar 31 = +89, Apr 30 = +119, May 31 = +150: DUE_SOON on 2019-05-31;
	 * Jun 30 = +180 (due date), OVERDUE on 2019-07-01. */
	f = setup();
	put(&f, owed("C", day(2019, 1, 1), ms_of(2019, 1, 5)));
	tick_daily(&f, day(2019, 5, 28), day(2019, 7, 2));
	EXPECT(&f, DUE_SOON, RAISED, "C", ms_of(2019, 5, 31), day(2019, 6, 30));
	EXPECT(&f, DUE_SOON, RESOLVED, "C", ms_of(2019, 7, 1), day(2019, 6, 30));
	EXPECT(&f, OVERDUE, RAISED, "C", ms_of(2019, 7, 1), day(2019, 6, 30));
	EXPECT_NONE(&f);
	state_free(f.st);
}
END_TEST

/* --- 4. submissions of owed encounters ------------------------------------ */

START_TEST(late_submission_of_overdue)
{
	struct fixture f = setup();
	/* service_to 2023-02-01: Feb 28 = +27, Mar 31 = +58, Apr 30 = +88, May 31 = +119,
	 * Jun 30 = +149, Jul 1 = +150, Jul 31 = +180 (due), Aug 1 = +181. */
	struct qs_event o = owed("O", day(2023, 2, 1), ms_of(2023, 2, 5));
	put(&f, o);
	tick(&f, ms_of(2023, 8, 5)); /* +185: straight to OVERDUE */
	EXPECT(&f, OVERDUE, RAISED, "O", ms_of(2023, 8, 5), day(2023, 7, 31));
	/* Submitted 2023-08-10 = +190 > 180: the same event resolves OVERDUE and raises LATE_SUBMISSION. */
	put(&f, submitted(o, ms_of(2023, 8, 10)));
	EXPECT(&f, OVERDUE, RESOLVED, "O", ms_of(2023, 8, 10), day(2023, 7, 31));
	EXPECT(&f, LATE_SUBMISSION, RAISED, "O", ms_of(2023, 8, 10), day(2023, 7, 31));
	EXPECT_NONE(&f);
	tick(&f, ms_of(2024, 3, 1));
	EXPECT_NONE(&f);
	state_free(f.st);
}
END_TEST

START_TEST(own_submission_past_181_skips_overdue)
{
	struct fixture f = setup();
	/* service_to 2023-03-01: Jul 29 = +150, Aug 28 = +180 (due), Aug 29 = +181, Sep 2 = +185. */
	struct qs_event o = owed("O", day(2023, 3, 1), ms_of(2023, 3, 5));
	put(&f, o);
	tick(&f, ms_of(2023, 8, 20)); /* +172 */
	EXPECT(&f, DUE_SOON, RAISED, "O", ms_of(2023, 8, 20), day(2023, 8, 28));
	/* O's own submission on 2023-09-02 moves the clock past +181. O was submitted at that
	 * reading, so it never was OVERDUE there: DUE_SOON resolved, LATE_SUBMISSION raised, and
	 * no OVERDUE raised and resolved at the same instant. */
	put(&f, submitted(o, ms_of(2023, 9, 2)));
	EXPECT(&f, DUE_SOON, RESOLVED, "O", ms_of(2023, 9, 2), day(2023, 8, 28));
	EXPECT(&f, LATE_SUBMISSION, RAISED, "O", ms_of(2023, 9, 2), day(2023, 8, 28));
	EXPECT_NONE(&f);
	state_free(f.st);
}
END_TEST

START_TEST(timely_submission_of_due_soon)
{
	struct fixture f = setup();
	/* service_to 2023-03-01: Jul 29 = +150, Aug 28 = +180 (due), Aug 29 = +181. */
	struct qs_event o = owed("O", day(2023, 3, 1), ms_of(2023, 3, 5));
	put(&f, o);
	tick(&f, ms_of(2023, 7, 29));
	EXPECT(&f, DUE_SOON, RAISED, "O", ms_of(2023, 7, 29), day(2023, 8, 28));
	/* Submitted in the last ms of day +180: on time. DUE_SOON resolved, nothing raised. */
	put(&f, submitted(o, last_ms_of(2023, 8, 28)));
	EXPECT(&f, DUE_SOON, RESOLVED, "O", last_ms_of(2023, 8, 28), day(2023, 8, 28));
	EXPECT_NONE(&f);
	/* Owed originals arriving already aged are judged at arrival, at the clock (2023-08-28T23:59:59.999):
	 * O3, service_to 2023-01-01: Jan 31 = +30, Feb 28 = +58, Mar 31 = +89, Apr 30 = +119,
	 *   May 31 = +150, Jun 30 = +180 (due), Jul 31 = +211, Aug 28 = +239: OVERDUE.
	 * O4, service_to 2023-03-31: Apr 30 = +30, May 31 = +61, Jun 30 = +91, Jul 31 = +122,
	 *   Aug 28 = +150: DUE_SOON; Aug 31 = +153, Sep 27 = +180 (due), OVERDUE from Sep 28. */
	put(&f, owed("O3", day(2023, 1, 1), ms_of(2023, 1, 3)));
	EXPECT(&f, OVERDUE, RAISED, "O3", last_ms_of(2023, 8, 28), day(2023, 6, 30));
	put(&f, owed("O4", day(2023, 3, 31), ms_of(2023, 4, 2)));
	EXPECT(&f, DUE_SOON, RAISED, "O4", last_ms_of(2023, 8, 28), day(2023, 9, 27));
	/* O, submitted, has no timer any more; O4 escalates. */
	tick(&f, ms_of(2023, 12, 1));
	EXPECT(&f, DUE_SOON, RESOLVED, "O4", ms_of(2023, 12, 1), day(2023, 9, 27));
	EXPECT(&f, OVERDUE, RAISED, "O4", ms_of(2023, 12, 1), day(2023, 9, 27));
	EXPECT_NONE(&f);
	state_free(f.st);
}
END_TEST

/* --- 5. voids and corrections ---------------------------------------------- */

START_TEST(void_resolves_overdue_and_late)
{
	struct fixture f = setup();
	/* service_to 2023-02-01: OVERDUE from Aug 1, due Jul 31 (see late_submission_of_overdue). */
	put(&f, owed("O", day(2023, 2, 1), ms_of(2023, 2, 5)));
	tick(&f, ms_of(2023, 8, 5));
	EXPECT(&f, OVERDUE, RAISED, "O", ms_of(2023, 8, 5), day(2023, 7, 31));
	/* A void naming O: the alert names the original and is resolved. */
	put(&f, void_of("V", "O", day(2023, 2, 1), ms_of(2023, 8, 7)));
	EXPECT(&f, OVERDUE, RESOLVED, "O", ms_of(2023, 8, 7), day(2023, 7, 31));
	EXPECT_NONE(&f);
	/* A voided chain has no timer. */
	tick(&f, ms_of(2024, 1, 1));
	EXPECT_NONE(&f);
	state_free(f.st);

	/* LATE_SUBMISSION: service_to 2022-01-10, submitted 2022-07-10 = +181, due 2022-07-09. */
	f = setup();
	put(&f, encounter("L", "", QS_FREQ_ORIGINAL, day(2022, 1, 10), ms_of(2022, 7, 10)));
	EXPECT(&f, LATE_SUBMISSION, RAISED, "L", ms_of(2022, 7, 10), day(2022, 7, 9));
	put(&f, void_of("VL", "L", day(2022, 1, 10), ms_of(2022, 7, 12)));
	EXPECT(&f, LATE_SUBMISSION, RESOLVED, "L", ms_of(2022, 7, 12), day(2022, 7, 9));
	EXPECT_NONE(&f);
	state_free(f.st);
}
END_TEST

START_TEST(replacement_rejudges_late_submission)
{
	struct fixture f = setup();
	/* O: service_to 2022-01-10, submitted 2022-07-10 = +181: late, due 2022-07-09. */
	put(&f, encounter("O", "", QS_FREQ_ORIGINAL, day(2022, 1, 10), ms_of(2022, 7, 10)));
	EXPECT(&f, LATE_SUBMISSION, RAISED, "O", ms_of(2022, 7, 10), day(2022, 7, 9));
	/* R1 moves service_to to 2022-01-11: 2022-07-10 is then +180, on time. Resolved (the row
	 * carries the due date of the alert it resolves). */
	put(&f, encounter("R1", "O", QS_FREQ_REPLACEMENT, day(2022, 1, 11), ms_of(2022, 7, 20)));
	EXPECT(&f, LATE_SUBMISSION, RESOLVED, "O", ms_of(2022, 7, 20), day(2022, 7, 9));
	EXPECT_NONE(&f);
	/* R2 (naming R1, so in O's chain) moves it to 2022-01-09: +182, late again; raised again under
	 * the same id; due 2022-01-09 + 180 = 2022-07-08. */
	put(&f, encounter("R2", "R1", QS_FREQ_REPLACEMENT, day(2022, 1, 9), ms_of(2022, 7, 25)));
	EXPECT(&f, LATE_SUBMISSION, RAISED, "O", ms_of(2022, 7, 25), day(2022, 7, 8));
	/* R3 moves it to 2022-01-05: +186, still late, same condition: no transition. */
	put(&f, encounter("R3", "O", QS_FREQ_REPLACEMENT, day(2022, 1, 5), ms_of(2022, 7, 26)));
	EXPECT_NONE(&f);
	state_free(f.st);
}
END_TEST

START_TEST(replacement_moves_owed_timer)
{
	struct fixture f = setup();
	/* O: service_to 2023-03-01, owed. DUE_SOON from Jul 29 (+150); the clock jumps to Jul 30. */
	put(&f, owed("O", day(2023, 3, 1), ms_of(2023, 3, 5)));
	tick(&f, ms_of(2023, 7, 30));
	EXPECT(&f, DUE_SOON, RAISED, "O", ms_of(2023, 7, 30), day(2023, 8, 28));
	/* A replacement moves service_to 2 days earlier, to 2023-02-27. On Jul 31: Feb 28 = +1,
	 * Mar 31 = +32, Apr 30 = +62, May 31 = +93, Jun 30 = +123, Jul 31 = +154: still DUE_SOON,
	 * no transition. But OVERDUE now comes on Aug 27 (Aug 26 = +180, the new due date), not Aug 29. */
	put(&f, encounter("R", "O", QS_FREQ_REPLACEMENT, day(2023, 2, 27), ms_of(2023, 7, 31)));
	EXPECT_NONE(&f);
	tick(&f, ms_of(2023, 8, 26));
	EXPECT_NONE(&f);
	tick(&f, ms_of(2023, 8, 27));
	EXPECT(&f, DUE_SOON, RESOLVED, "O", ms_of(2023, 8, 27), ANY_DUE); /* see the report: which due date? */
	EXPECT(&f, OVERDUE, RAISED, "O", ms_of(2023, 8, 27), day(2023, 8, 26));
	EXPECT_NONE(&f);
	state_free(f.st);
}
END_TEST

START_TEST(original_correction_moves_owed_back_then_due_again)
{
	struct fixture f = setup();
	/* O: service_to 2023-03-01, DUE_SOON raised on Jul 30 as above. */
	put(&f, owed("O", day(2023, 3, 1), ms_of(2023, 3, 5)));
	tick(&f, ms_of(2023, 7, 30));
	EXPECT(&f, DUE_SOON, RAISED, "O", ms_of(2023, 7, 30), day(2023, 8, 28));
	/* O re-sent (still owed) with service_to 2023-03-05: on Jul 31 that is Mar 31 = +26,
	 * Apr 30 = +56, May 31 = +87, Jun 30 = +117, Jul 31 = +148: no longer DUE_SOON. */
	put(&f, owed("O", day(2023, 3, 5), ms_of(2023, 7, 31)));
	EXPECT(&f, DUE_SOON, RESOLVED, "O", ms_of(2023, 7, 31), day(2023, 8, 28));
	EXPECT_NONE(&f);
	/* It becomes DUE_SOON again on Mar 5 + 150 = Aug 2; due Mar 5 + 180 = Sep 1. */
	tick(&f, ms_of(2023, 8, 1));
	EXPECT_NONE(&f);
	tick(&f, ms_of(2023, 8, 2));
	EXPECT(&f, DUE_SOON, RAISED, "O", ms_of(2023, 8, 2), day(2023, 9, 1));
	EXPECT_NONE(&f);
	state_free(f.st);
}
END_TEST

START_TEST(correction_changing_plan_moves_alert)
{
	struct fixture f = setup();
	/* alert_id is kind:plan:encounter_id: a correction that moves a late encounter to plan P2 is
	 * a different condition: resolved under P1, raised under P2 (both due 2022-07-09). */
	struct qs_event l = encounter("L", "", QS_FREQ_ORIGINAL, day(2022, 1, 10), ms_of(2022, 7, 10));
	put(&f, l);
	EXPECT(&f, LATE_SUBMISSION, RAISED, "L", ms_of(2022, 7, 10), day(2022, 7, 9));
	strcpy(l.u.encounter.plan_id, "P2");
	put(&f, l);
	const struct qs_alert *a;
	ck_assert_uint_eq(state_alerts(f.st, &a), 3);
	ck_assert(a[1].kind == QS_ALERT_LATE_SUBMISSION && !a[1].raised);
	ck_assert_str_eq(state_str(f.st, a[1].plan), "P1");
	ck_assert(a[2].kind == QS_ALERT_LATE_SUBMISSION && a[2].raised);
	ck_assert_str_eq(state_str(f.st, a[2].plan), "P2");
	ck_assert_int_eq(a[2].due_date, day(2022, 7, 9));
	state_free(f.st);
}
END_TEST

START_TEST(replacement_renamed_to_other_original)
{
	struct fixture f = setup();
	/* O1: service_to 2022-01-10, submitted 2022-07-10 (+181): late. O2: service_to 2022-03-01,
	 * submitted 2022-07-10 (Mar 31 = +30, Apr 30 = +60, May 31 = +91, Jun 30 = +121, Jul 10 = +131):
	 * on time. */
	put(&f, encounter("O1", "", QS_FREQ_ORIGINAL, day(2022, 1, 10), ms_of(2022, 7, 10)));
	put(&f, encounter("O2", "", QS_FREQ_ORIGINAL, day(2022, 3, 1), ms_of(2022, 7, 10)));
	EXPECT(&f, LATE_SUBMISSION, RAISED, "O1", ms_of(2022, 7, 10), day(2022, 7, 9));
	EXPECT_NONE(&f);
	/* R names O1 with service_to 2022-01-11: O1 on time (+180). */
	put(&f, encounter("R", "O1", QS_FREQ_REPLACEMENT, day(2022, 1, 11), ms_of(2022, 7, 15)));
	EXPECT(&f, LATE_SUBMISSION, RESOLVED, "O1", ms_of(2022, 7, 15), day(2022, 7, 9));
	EXPECT_NONE(&f);
	/* R corrected to name O2 with service_to 2022-01-05: O1 is judged by its own 2022-01-10
	 * again (late, raised, due 07-09), O2 by 2022-01-05 (+186, late, due 2022-07-04). The
	 * contract does not order two chains' transitions in one event: either order. */
	put(&f, encounter("R", "O2", QS_FREQ_REPLACEMENT, day(2022, 1, 5), ms_of(2022, 7, 16)));
	const struct qs_alert *a;
	ck_assert_uint_eq(state_alerts(f.st, &a), 4);
	int o1 = !strcmp(a[2].encounter_id, "O1") ? 2 : 3, o2 = 5 - o1;
	ck_assert_str_eq(a[o1].encounter_id, "O1");
	ck_assert_str_eq(a[o2].encounter_id, "O2");
	ck_assert(a[o1].kind == QS_ALERT_LATE_SUBMISSION && a[o1].raised);
	ck_assert(a[o2].kind == QS_ALERT_LATE_SUBMISSION && a[o2].raised);
	ck_assert_int_eq(a[o1].due_date, day(2022, 7, 9));
	ck_assert_int_eq(a[o2].due_date, day(2022, 7, 4));
	ck_assert_int_eq(a[o1].detected_at, ms_of(2022, 7, 16));
	state_free(f.st);
}
END_TEST

/* --- 6. the same condition is raised once ------------------------------------ */

START_TEST(identical_resend_is_no_transition)
{
	struct fixture f = setup();
	/* L late (2022-01-10 -> 2022-07-10, +181); K on time (+180). */
	struct qs_event l = encounter("L", "", QS_FREQ_ORIGINAL, day(2022, 1, 10), ms_of(2022, 7, 10));
	struct qs_event k = encounter("K", "", QS_FREQ_ORIGINAL, day(2022, 1, 11), ms_of(2022, 7, 10));
	put(&f, l);
	put(&f, k);
	EXPECT(&f, LATE_SUBMISSION, RAISED, "L", ms_of(2022, 7, 10), day(2022, 7, 9));
	put(&f, l);
	put(&f, k);
	EXPECT_NONE(&f);
	/* O owed, service_to 2022-02-01: Feb 28 = +27, Mar 31 = +58, Apr 30 = +88, May 31 = +119,
	 * Jun 30 = +149, Jul 1 = +150, Jul 31 = +180 (due), Aug 1 = +181. It arrives when the clock
	 * is 2022-07-10 (from L and K): +159, DUE_SOON at once. */
	struct qs_event o = owed("O", day(2022, 2, 1), ms_of(2022, 2, 3));
	put(&f, o);
	EXPECT(&f, DUE_SOON, RAISED, "O", ms_of(2022, 7, 10), day(2022, 7, 31));
	put(&f, o);
	tick(&f, ms_of(2022, 7, 12)); /* +161 */
	put(&f, o);
	tick(&f, ms_of(2022, 7, 20)); /* +169: still DUE_SOON */
	put(&f, o);
	EXPECT_NONE(&f);
	tick(&f, ms_of(2022, 8, 2)); /* +182 */
	EXPECT(&f, DUE_SOON, RESOLVED, "O", ms_of(2022, 8, 2), day(2022, 7, 31));
	EXPECT(&f, OVERDUE, RAISED, "O", ms_of(2022, 8, 2), day(2022, 7, 31));
	put(&f, o);
	put(&f, l);
	EXPECT_NONE(&f);
	/* Voided; the void and the original re-sent: still voided, nothing. */
	struct qs_event v = void_of("V", "O", day(2022, 2, 1), ms_of(2022, 8, 3));
	put(&f, v);
	EXPECT(&f, OVERDUE, RESOLVED, "O", ms_of(2022, 8, 3), day(2022, 7, 31));
	put(&f, v);
	put(&f, o);
	tick(&f, ms_of(2023, 1, 1));
	EXPECT_NONE(&f);
	state_free(f.st);
}
END_TEST

/* --- flushing ------------------------------------------------------------------ */

START_TEST(flushed_clears_pending_alerts)
{
	struct fixture f = setup();
	const struct qs_alert *a;
	put(&f, encounter("L", "", QS_FREQ_ORIGINAL, day(2022, 1, 10), ms_of(2022, 7, 10)));
	ck_assert_uint_eq(state_alerts(f.st, &a), 1);
	ck_assert_uint_eq(state_progress_count(f.st), 1);
	state_flushed(f.st);
	ck_assert_uint_eq(state_alerts(f.st, &a), 0);
	ck_assert_uint_eq(state_progress_count(f.st), 0);
	ck_assert_uint_eq(state_pending(f.st), 0);
	/* The open alert is still known: the next transition is its resolution, first in the list. */
	f.seen = 0;
	put(&f, void_of("V", "L", day(2022, 1, 10), ms_of(2022, 7, 11)));
	EXPECT(&f, LATE_SUBMISSION, RESOLVED, "L", ms_of(2022, 7, 11), day(2022, 7, 9));
	EXPECT_NONE(&f);
	state_free(f.st);
}
END_TEST

/* --- 7. restore equivalence -------------------------------------------------- */

/* A live state and one restored from it. */
struct pair {
	struct fixture a, b;
};

/* Both sides reported the same transitions since their `seen` marks (which are not advanced). */
static void same_transitions(struct pair *pr, int line)
{
	const struct qs_alert *x, *y;
	size_t nx = state_alerts(pr->a.st, &x), ny = state_alerts(pr->b.st, &y);
	ck_assert_msg(nx - pr->a.seen == ny - pr->b.seen, "line %d: live %zu new transitions, restored %zu", line,
		      nx - pr->a.seen, ny - pr->b.seen);
	for (size_t i = pr->a.seen, j = pr->b.seen; i < nx; i++, j++) {
		ck_assert_msg(x[i].kind == y[j].kind && x[i].raised == y[j].raised &&
				      !strcmp(x[i].encounter_id, y[j].encounter_id) &&
				      x[i].detected_at == y[j].detected_at && x[i].due_date == y[j].due_date,
			      "line %d: transition %zu: live %s %s %s %lld %d, restored %s %s %s %lld %d", line, i,
			      alerts_kind_name(x[i].kind), x[i].raised ? "RAISED" : "RESOLVED", x[i].encounter_id,
			      (long long)x[i].detected_at, x[i].due_date, alerts_kind_name(y[j].kind),
			      y[j].raised ? "RAISED" : "RESOLVED", y[j].encounter_id, (long long)y[j].detected_at,
			      y[j].due_date);
		ck_assert_str_eq(state_str(pr->a.st, x[i].plan), state_str(pr->b.st, y[j].plan));
		ck_assert_str_eq(state_str(pr->a.st, x[i].source), state_str(pr->b.st, y[j].source));
		ck_assert_str_eq(x[i].member_id, y[j].member_id);
		ck_assert_str_eq(x[i].details, y[j].details);
	}
}

/* Applies log[0..n) live to a fresh state A; B is built later by restart. */
static struct pair live_and_restored(const struct qs_event *log, int64_t n)
{
	struct pair pr = {setup(), {0}};
	for (int64_t i = 0; i < n; i++)
		put(&pr.a, log[i]);
	return pr;
}

/*
 * A restart after A's flush, its clock asserted to be `clock`: B is built from
 * what PostgreSQL then holds, A's clock and next offset, and the latest version
 * of each encounter_id restored in offset order. A's transitions so far must
 * have been checked: the flush hands them on, and A counts anew.
 */
static void restart(struct pair *pr, const struct qs_event *log, int64_t n, int64_t clock)
{
	ck_assert_int_eq(progress_clock(pr->a.st, QS_TOPIC_ENCOUNTERS, 0), clock);
	state_flushed(pr->a.st);
	pr->a.seen = 0;
	pr->b.st = state_new(&rules, false);
	pr->b.p = state_part_add(pr->b.st, QS_TOPIC_ENCOUNTERS, 0, n, clock);
	pr->b.offset = n;
	for (int64_t i = 0; i < n; i++) {
		bool latest = true;
		for (int64_t j = i + 1; j < n && latest; j++)
			latest = strcmp(log[i].u.encounter.encounter_id, log[j].u.encounter.encounter_id) != 0;
		if (latest)
			state_restore(pr->b.st, pr->b.p, &log[i], i);
	}
	const struct qs_alert *a;
	ck_assert_uint_eq(state_alerts(pr->b.st, &a), 0);
	ck_assert_uint_eq(state_pending(pr->b.st), 0);
	ck_assert_int_eq(state_part_next_offset(pr->b.p), n);
}

/* The usual start of a restore test: log[0..n) live on A raises nothing, then A restarts at `clock`. */
static struct pair quiet_restart(const struct qs_event *log, int64_t n, int64_t clock)
{
	struct pair pr = live_and_restored(log, n);
	EXPECT_NONE(&pr.a);
	restart(&pr, log, n, clock);
	return pr;
}

static void pair_free(struct pair *pr)
{
	state_free(pr->a.st);
	state_free(pr->b.st);
}

static void put_both(struct pair *pr, struct qs_event ev, int line)
{
	put(&pr->a, ev);
	put(&pr->b, ev);
	same_transitions(pr, line);
}

#define PUT_BOTH(pr, ev) put_both(pr, ev, __LINE__)

/* Moves both clocks to ms (tick), and both must report the same transitions. */
static void tick_both(struct pair *pr, int64_t ms, int line)
{
	tick(&pr->a, ms);
	tick(&pr->b, ms);
	same_transitions(pr, line);
}

#define TICK_BOTH(pr, ms) tick_both(pr, ms, __LINE__)

START_TEST(restore_equivalence)
{
	/* Phase 1, live on A (clock after each event in brackets):
	 *  0 E1 owed, service_to 2023-03-01 [03-05]: DUE_SOON 07-29 (+150), due 08-28, OVERDUE 08-29.
	 *  1 E2 owed, service_to 2023-03-10 [03-12]: Mar 31 = +21, Apr 30 = +51, May 31 = +82,
	 *    Jun 30 = +112, Jul 31 = +143: DUE_SOON 08-07, due 09-06, OVERDUE 09-07.
	 *  2 E3 owed, service_to 2023-02-01 [03-15]: DUE_SOON 07-01, due 07-31, OVERDUE 08-01.
	 *  3 R4 replacement of E4 (not arrived yet), service_to 2023-04-01 [04-02]: no original, nothing.
	 *  4 E5 submitted 2023-04-05, service_to 2022-10-01 [04-05]: Oct 31 = +30, Nov 30 = +60,
	 *    Dec 31 = +91, Jan 31 = +122, Feb 28 = +150, Mar 31 = +181, Apr 5 = +186: LATE raised,
	 *    due 2023-03-30 (+180).
	 *  5 E4 owed, its own service_to 2023-01-15 but the chain's content is R4's 2023-04-01 [04-06]:
	 *    Apr 30 = +29, May 31 = +60, Jun 30 = +90, Jul 31 = +121: DUE_SOON 08-29, due 09-28.
	 *  6 T1 [07-15]: timers due by 07-15: E3 (07-01) -> E3 DUE_SOON raised.
	 *  7 E6 owed, service_to 2023-01-20 [07-16]: Jan 31 = +11, Feb 28 = +39, Mar 31 = +70,
	 *    Apr 30 = +100, May 31 = +131, Jun 30 = +161, Jul 16 = +177: DUE_SOON on arrival,
	 *    due 07-19, OVERDUE 07-20.
	 *  8 V7 void of E7 (E7 arrives in phase 2) [07-17]: nothing.
	 *  9 E5 again, identical (a redelivery; the latest version is now at offset 9) [07-17]: nothing.
	 * 10 T2 [08-02]: timers due by 08-02, in timer order: E6 (07-20) resolved DUE_SOON, raised
	 *    OVERDUE; E1 (07-29, now +154) DUE_SOON; E3 (08-01) resolved DUE_SOON, raised OVERDUE. */
	const struct qs_event log[] = {
		owed("E1", day(2023, 3, 1), ms_of(2023, 3, 5)),
		owed("E2", day(2023, 3, 10), ms_of(2023, 3, 12)),
		owed("E3", day(2023, 2, 1), ms_of(2023, 3, 15)),
		encounter("R4", "E4", QS_FREQ_REPLACEMENT, day(2023, 4, 1), ms_of(2023, 4, 2)),
		encounter("E5", "", QS_FREQ_ORIGINAL, day(2022, 10, 1), ms_of(2023, 4, 5)),
		owed("E4", day(2023, 1, 15), ms_of(2023, 4, 6)),
		encounter("T1", "", QS_FREQ_ORIGINAL, day(2023, 7, 15), ms_of(2023, 7, 15)),
		owed("E6", day(2023, 1, 20), ms_of(2023, 7, 16)),
		void_of("V7", "E7", day(2023, 1, 1), ms_of(2023, 7, 17)),
		encounter("E5", "", QS_FREQ_ORIGINAL, day(2022, 10, 1), ms_of(2023, 4, 5)),
		encounter("T2", "", QS_FREQ_ORIGINAL, day(2023, 8, 2), ms_of(2023, 8, 2)),
	};
	const int64_t n = (int64_t)ARRAY_LEN(log);
	struct pair pr = live_and_restored(log, n);
	struct fixture *a = &pr.a;
	EXPECT(a, LATE_SUBMISSION, RAISED, "E5", ms_of(2023, 4, 5), day(2023, 3, 30));
	EXPECT(a, DUE_SOON, RAISED, "E3", ms_of(2023, 7, 15), day(2023, 7, 31));
	EXPECT(a, DUE_SOON, RAISED, "E6", ms_of(2023, 7, 16), day(2023, 7, 19));
	EXPECT(a, DUE_SOON, RESOLVED, "E6", ms_of(2023, 8, 2), day(2023, 7, 19));
	EXPECT(a, OVERDUE, RAISED, "E6", ms_of(2023, 8, 2), day(2023, 7, 19));
	EXPECT(a, DUE_SOON, RAISED, "E1", ms_of(2023, 8, 2), day(2023, 8, 28));
	EXPECT(a, DUE_SOON, RESOLVED, "E3", ms_of(2023, 8, 2), day(2023, 7, 31));
	EXPECT(a, OVERDUE, RAISED, "E3", ms_of(2023, 8, 2), day(2023, 7, 31));
	EXPECT_NONE(a);
	restart(&pr, log, n, ms_of(2023, 8, 2));

	/* Phase 2, the same events to both (clock in brackets):
	 * 11 E7 owed, service_to 2023-01-01 [08-03]: its chain holds V7, voided: nothing.
	 * 12 E1 submitted 2023-08-20 [08-20]: first E1 itself, Aug 20 = +172 <= 180: DUE_SOON resolved
	 *    (due 08-28), on time; then the other timers: E2's (08-07) -> E2 DUE_SOON raised (+163,
	 *    due 09-06).
	 * 13 R8 replacement naming R4 (so in E4's chain), service_to 2023-03-20 [08-21]: E4 was judged
	 *    by R4's 04-01 (Aug 21 = +142, nothing); now by 03-20: Mar 31 = +11, Apr 30 = +41,
	 *    May 31 = +72, Jun 30 = +102, Jul 31 = +133, Aug 21 = +154: DUE_SOON raised, due 03-20 +
	 *    180 = 09-16 (Aug 31 = +164), OVERDUE from 09-17.
	 * 14 V9 void of E3 [08-22]: E3's OVERDUE resolved (due 07-31).
	 * 15 T3 [09-10]: E2's timer (09-07): DUE_SOON resolved, OVERDUE raised (due 09-06).
	 * 16 R10 replacement of E5, service_to 2022-10-10 [09-11]: E5 submitted 2023-04-05 is then
	 *    Oct 31 = +21, Nov 30 = +51, Dec 31 = +82, Jan 31 = +113, Feb 28 = +141, Mar 31 = +172,
	 *    Apr 5 = +177: on time, LATE resolved (the alert's due date 2023-03-30).
	 * 17 T4 [10-01]: E4's timer (09-17): DUE_SOON resolved, OVERDUE raised (due 09-16). */
	struct fixture *b = &pr.b;
	PUT_BOTH(&pr, owed("E7", day(2023, 1, 1), ms_of(2023, 8, 3)));
	PUT_BOTH(&pr, submitted(owed("E1", day(2023, 3, 1), ms_of(2023, 3, 5)), ms_of(2023, 8, 20)));
	PUT_BOTH(&pr, encounter("R8", "R4", QS_FREQ_REPLACEMENT, day(2023, 3, 20), ms_of(2023, 8, 21)));
	PUT_BOTH(&pr, void_of("V9", "E3", day(2023, 2, 1), ms_of(2023, 8, 22)));
	PUT_BOTH(&pr, encounter("T3", "", QS_FREQ_ORIGINAL, day(2023, 9, 10), ms_of(2023, 9, 10)));
	PUT_BOTH(&pr, encounter("R10", "E5", QS_FREQ_REPLACEMENT, day(2022, 10, 10), ms_of(2023, 9, 11)));
	PUT_BOTH(&pr, encounter("T4", "", QS_FREQ_ORIGINAL, day(2023, 10, 1), ms_of(2023, 10, 1)));
	for (int side = 0; side < 2; side++) {
		struct fixture *x = side ? b : a;
		EXPECT(x, DUE_SOON, RESOLVED, "E1", ms_of(2023, 8, 20), day(2023, 8, 28));
		EXPECT(x, DUE_SOON, RAISED, "E2", ms_of(2023, 8, 20), day(2023, 9, 6));
		EXPECT(x, DUE_SOON, RAISED, "E4", ms_of(2023, 8, 21), day(2023, 9, 16));
		EXPECT(x, OVERDUE, RESOLVED, "E3", ms_of(2023, 8, 22), day(2023, 7, 31));
		EXPECT(x, DUE_SOON, RESOLVED, "E2", ms_of(2023, 9, 10), day(2023, 9, 6));
		EXPECT(x, OVERDUE, RAISED, "E2", ms_of(2023, 9, 10), day(2023, 9, 6));
		EXPECT(x, LATE_SUBMISSION, RESOLVED, "E5", ms_of(2023, 9, 11), day(2023, 3, 30));
		EXPECT(x, DUE_SOON, RESOLVED, "E4", ms_of(2023, 10, 1), day(2023, 9, 16));
		EXPECT(x, OVERDUE, RAISED, "E4", ms_of(2023, 10, 1), day(2023, 9, 16));
		EXPECT_NONE(x);
	}
	pair_free(&pr);
}
END_TEST

START_TEST(restore_void_of_redelivered_replacement)
{
	/* README "Identity": a void of a replacement belongs to the original's chain. Live:
	 *  0 O owed, service_to 2023-03-01 [03-05]
	 *  1 R replacement naming O, same service_to [03-06]
	 *  2 V void naming R: R is in O's chain, so O's chain is voided [03-07]
	 *  3 R redelivered, identical [03-07]
	 * A restarted owner restores the latest versions O(0), V(2), R(3) at clock 03-07. Then the
	 * clock moves to 2023-09-01 (+184 from 03-01): O is voided, so neither side may raise
	 * anything. */
	const struct qs_event log[] = {
		owed("O", day(2023, 3, 1), ms_of(2023, 3, 5)),
		encounter("R", "O", QS_FREQ_REPLACEMENT, day(2023, 3, 1), ms_of(2023, 3, 6)),
		void_of("V", "R", day(2023, 3, 1), ms_of(2023, 3, 7)),
		encounter("R", "O", QS_FREQ_REPLACEMENT, day(2023, 3, 1), ms_of(2023, 3, 6)),
	};
	const int64_t n = (int64_t)ARRAY_LEN(log);
	struct pair pr = quiet_restart(log, n, ms_of(2023, 3, 7));
	tick(&pr.a, ms_of(2023, 9, 1));
	tick(&pr.b, ms_of(2023, 9, 1));
	/* Counted first and freed before asserting, so that a failure leaks nothing under CK_FORK=no. */
	const struct qs_alert *x;
	size_t live = state_alerts(pr.a.st, &x), restored = state_alerts(pr.b.st, &x);
	char first[64] = "";
	if (restored)
		snprintf(first, sizeof(first), "%s %s of %s", alerts_kind_name(x[0].kind),
			 x[0].raised ? "RAISED" : "RESOLVED", x[0].encounter_id);
	pair_free(&pr);
	ck_assert_msg(live == 0, "live: %zu transitions", live);
	ck_assert_msg(restored == 0, "restored: %zu transitions (first: %s); the live state has none", restored, first);
}
END_TEST

START_TEST(restore_corrected_original_id_no_alert_left_open)
{
	/* README "Identity": a chain is a function of the latest versions. Live:
	 *  0 O owed, service_to 2023-03-01 [03-05]
	 *  1 R replacement naming A (never sent) [03-06]
	 *  2 VR void naming R [03-07]
	 *  3 R corrected to name O [03-07]
	 * VR names R and R names O: O's chain is voided, live as after a restore of O(0), VR(2), R(3).
	 * Then the clock passes +150 (07-29) and +181 (08-29): a voided chain raises nothing, on
	 * either side (a DUE_SOON raised live but unknown to the restored owner would stay open for
	 * good). */
	const struct qs_event log[] = {
		owed("O", day(2023, 3, 1), ms_of(2023, 3, 5)),
		encounter("R", "A", QS_FREQ_REPLACEMENT, day(2023, 3, 1), ms_of(2023, 3, 6)),
		void_of("VR", "R", day(2023, 3, 1), ms_of(2023, 3, 7)),
		encounter("R", "O", QS_FREQ_REPLACEMENT, day(2023, 3, 1), ms_of(2023, 3, 6)),
	};
	const int64_t n = (int64_t)ARRAY_LEN(log);
	struct pair pr = quiet_restart(log, n, ms_of(2023, 3, 7));
	TICK_BOTH(&pr, ms_of(2023, 7, 29));
	TICK_BOTH(&pr, ms_of(2023, 8, 29));
	EXPECT_NONE(&pr.a);
	pair_free(&pr);
}
END_TEST

START_TEST(restore_self_reference_leaves_the_original)
{
	/* Live: O owed, service_to 2023-03-01 [03-05]; R replacement naming O moves it to 2023-01-01
	 * [03-06]; R's latest version names R itself [03-07]: a chain of its own, so O is judged by its
	 * own 2023-03-01 again. Clock to 2023-06-30: Jan 31 = +30, Feb 28 = +58, Mar 31 = +89,
	 * Apr 30 = +119, May 31 = +150 (by 01-01: DUE_SOON from 05-31) but by 03-01 Jun 30 = +121:
	 * nothing. Then 07-29 = +150: DUE_SOON raised, due 08-28; both sides alike. */
	const struct qs_event log[] = {
		owed("O", day(2023, 3, 1), ms_of(2023, 3, 5)),
		encounter("R", "O", QS_FREQ_REPLACEMENT, day(2023, 1, 1), ms_of(2023, 3, 6)),
		encounter("R", "R", QS_FREQ_REPLACEMENT, day(2023, 1, 1), ms_of(2023, 3, 7)),
	};
	const int64_t n = (int64_t)ARRAY_LEN(log);
	struct pair pr = quiet_restart(log, n, ms_of(2023, 3, 7));
	TICK_BOTH(&pr, ms_of(2023, 6, 30));
	EXPECT_NONE(&pr.a);
	TICK_BOTH(&pr, ms_of(2023, 7, 29));
	EXPECT(&pr.a, DUE_SOON, RAISED, "O", ms_of(2023, 7, 29), day(2023, 8, 28));
	EXPECT_NONE(&pr.a);
	pair_free(&pr);
}
END_TEST

START_TEST(restore_equivalence_same_day_timers)
{
	/* Four owed originals with the same service_to 2023-03-01 (DUE_SOON 07-29, due 08-28,
	 * OVERDUE 08-29), so their timers fire on the same days. A meets them in the order D, B, C, A
	 * and then D and C again (identical redeliveries); B restores the latest versions in offset
	 * order B(1), A(3), D(4), C(5): the two timer heaps are built differently, yet a tick must
	 * report the same transitions in the same order. */
	const struct qs_event log[] = {
		owed("D", day(2023, 3, 1), ms_of(2023, 3, 5)), owed("B", day(2023, 3, 1), ms_of(2023, 3, 5)),
		owed("C", day(2023, 3, 1), ms_of(2023, 3, 5)), owed("A", day(2023, 3, 1), ms_of(2023, 3, 5)),
		owed("D", day(2023, 3, 1), ms_of(2023, 3, 5)), owed("C", day(2023, 3, 1), ms_of(2023, 3, 5)),
	};
	const int64_t n = (int64_t)ARRAY_LEN(log);
	struct pair pr = quiet_restart(log, n, ms_of(2023, 3, 5));
	/* 07-29: four DUE_SOON raised; 08-29: four times DUE_SOON resolved then OVERDUE raised. */
	TICK_BOTH(&pr, ms_of(2023, 7, 29));
	TICK_BOTH(&pr, ms_of(2023, 8, 29));
	const struct qs_alert *x;
	ck_assert_uint_eq(state_alerts(pr.a.st, &x), 12);
	bool seen_raised[4] = {false}, seen_escalated[4] = {false};
	for (int i = 0; i < 4; i++) {
		ck_assert(x[i].kind == QS_ALERT_DUE_SOON && x[i].raised && x[i].detected_at == ms_of(2023, 7, 29) &&
			  x[i].due_date == day(2023, 8, 28));
		seen_raised[x[i].encounter_id[0] - 'A'] = true;
	}
	for (int i = 4; i < 12; i += 2) {
		ck_assert_str_eq(x[i].encounter_id, x[i + 1].encounter_id);
		ck_assert(x[i].kind == QS_ALERT_DUE_SOON && !x[i].raised && x[i].detected_at == ms_of(2023, 8, 29));
		ck_assert(x[i + 1].kind == QS_ALERT_OVERDUE && x[i + 1].raised &&
			  x[i + 1].detected_at == ms_of(2023, 8, 29) && x[i + 1].due_date == day(2023, 8, 28));
		seen_escalated[x[i].encounter_id[0] - 'A'] = true;
	}
	for (int i = 0; i < 4; i++)
		ck_assert(seen_raised[i] && seen_escalated[i]);
	pair_free(&pr);
}
END_TEST

/* --- 8. randomized, against a brute-force model ----------------------------- */

#define R_ORIGINALS 200      /* O000..O199 */
#define R_TICKER R_ORIGINALS /* model slot of "T", an original that only moves the clock */
#define R_EVENTS 2000
#define R_SPLIT 1000 /* where a restored state joins */
#define R_FLUSH_EVERY 250

static uint64_t rng_next(uint64_t *s)
{
	/* xorshift64*: fixed, portable sequence. */
	uint64_t x = *s;
	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*s = x;
	return x * 0x2545F4914F6CDD1DULL;
}

static int64_t below(uint64_t *s, int64_t n)
{
	return (int64_t)(rng_next(s) % (uint64_t)n);
}

/* The contract, per original (README "Alerts"), with no replacements: the latest version decides. */
struct model {
	bool arrived[R_ORIGINALS + 1];
	bool voided[R_ORIGINALS + 1];
	int32_t service_to[R_ORIGINALS + 1];
	int64_t submitted_at[R_ORIGINALS + 1]; /* QS_NO_TS: owed */
	int64_t clock_ms;                      /* max event time so far; QS_NO_TS before any */
};

static enum qs_alert_kind model_kind(const struct model *m, int k)
{
	if (!m->arrived[k] || m->voided[k])
		return QS_ALERT_NONE;
	if (m->submitted_at[k] != QS_NO_TS) /* all instants here are after 1970: / is the UTC day */
		return m->submitted_at[k] / DAY_MS - m->service_to[k] > 180 ? QS_ALERT_LATE_SUBMISSION : QS_ALERT_NONE;
	if (m->clock_ms == QS_NO_TS)
		return QS_ALERT_NONE;
	int64_t age = m->clock_ms / DAY_MS - m->service_to[k];
	return age > 180 ? QS_ALERT_OVERDUE : age >= 150 ? QS_ALERT_DUE_SOON : QS_ALERT_NONE;
}

/* Model slot of an original's id: O### -> ###, T -> R_TICKER. */
static int slot_of(const char *id)
{
	return id[0] == 'T' ? R_TICKER : atoi(id + 1);
}

static void model_fold(struct model *m, const struct qs_event *ev)
{
	const struct qs_encounter *e = &ev->u.encounter;
	int64_t t = e->adjudicated_at;
	if (e->submitted_at != QS_NO_TS && (t == QS_NO_TS || e->submitted_at > t))
		t = e->submitted_at;
	if (t != QS_NO_TS && (m->clock_ms == QS_NO_TS || t > m->clock_ms))
		m->clock_ms = t;
	if (e->frequency == QS_FREQ_VOID) {
		m->voided[slot_of(e->original_encounter_id)] = true;
		return;
	}
	int k = slot_of(e->encounter_id);
	m->arrived[k] = true;
	m->service_to[k] = e->service_to;
	m->submitted_at[k] = e->submitted_at;
}

/* The generator: the next event of a random stream of originals, voids and clock ticks. */
struct gen {
	uint64_t rng;
	int64_t now;
	int n_originals;
	struct qs_event latest[R_ORIGINALS]; /* latest version of each original sent */
};

static struct qs_event gen_next(struct gen *g)
{
	char id[16], named[16];
	int64_t r = below(&g->rng, 100);
	if (r < 70)
		g->now += below(&g->rng, DAY_MS / 2);
	else if (r < 95)
		g->now += below(&g->rng, 3 * DAY_MS);
	else
		g->now += 10 * DAY_MS + below(&g->rng, 30 * DAY_MS);
	/* One event in five carries an older time (it arrives late): the clock may not move. */
	int64_t t = below(&g->rng, 5) ? g->now : g->now - below(&g->rng, 30 * DAY_MS);
	int32_t t_day = (int32_t)(t / DAY_MS);
	struct qs_event ev;
	r = below(&g->rng, 100);
	if (r < 10 && g->n_originals < R_ORIGINALS) {
		/* A new original, aged 0..259 days at t: owed (3 in 5) or submitted at t. */
		int k = g->n_originals++;
		snprintf(id, sizeof(id), "O%03d", k);
		int32_t service_to = t_day - (int32_t)below(&g->rng, 260);
		if (below(&g->rng, 5) < 3)
			ev = owed(id, service_to, t);
		else
			ev = encounter(id, "", QS_FREQ_ORIGINAL, service_to, t);
		g->latest[k] = ev;
	} else if (r < 45 && g->n_originals > 0) {
		/* A new version of an original. */
		int k = (int)below(&g->rng, g->n_originals);
		ev = g->latest[k];
		struct qs_encounter *e = &ev.u.encounter;
		int64_t s = below(&g->rng, 100);
		if (s < 45) { /* submitted (or submitted again) at t, never before service_to */
			if (t / DAY_MS >= e->service_to)
				e->submitted_at = t;
			else
				e->submitted_at = (int64_t)e->service_to * DAY_MS + below(&g->rng, DAY_MS);
		} else if (s < 65) {
			/* identical redelivery */
		} else if (s < 90) { /* service_to corrected by -10..+10 days, not after the submission */
			e->service_to += (int32_t)below(&g->rng, 21) - 10;
			if (e->submitted_at != QS_NO_TS && e->service_to > e->submitted_at / DAY_MS)
				e->service_to = (int32_t)(e->submitted_at / DAY_MS);
			e->service_from = e->service_to;
		} else { /* back to owed: adjudicated again at t, submitted_at null */
			e->submitted_at = QS_NO_TS;
			e->adjudicated_at = t;
		}
		g->latest[k] = ev;
	} else if (r < 48) {
		/* A void, possibly of an original that has not arrived yet. */
		int k = (int)below(&g->rng, g->n_originals + 10 < R_ORIGINALS ? g->n_originals + 10 : R_ORIGINALS);
		snprintf(id, sizeof(id), "V%03d", k);
		snprintf(named, sizeof(named), "O%03d", k);
		ev = void_of(id, named, t_day - (int32_t)below(&g->rng, 100), t);
	} else {
		ev = encounter("T", "", QS_FREQ_ORIGINAL, t_day, t);
	}
	return ev;
}

START_TEST(random_against_model)
{
	struct gen *g = xcalloc(1, sizeof(*g), "the generator");
	struct model *m = xcalloc(1, sizeof(*m), "the model");
	struct qs_event *log = xcalloc(R_EVENTS, sizeof(*log), "the event log");
	g->rng = 0x9E3779B97F4A7C15ULL;
	g->now = ms_of(2020, 1, 1);
	m->clock_ms = QS_NO_TS;
	/* open[kind][k]: the alert kind:P1:O### is open, by folding the transitions. */
	static bool open[QS_ALERT_OVERDUE + 1][R_ORIGINALS + 1];
	memset(open, 0, sizeof(open));
	size_t raised[QS_ALERT_OVERDUE + 1] = {0}, resolved[QS_ALERT_OVERDUE + 1] = {0};
	struct pair pr = {setup(), {0}};
	bool with_b = false;

	for (int64_t i = 0; i < R_EVENTS; i++) {
		if (i == R_SPLIT) {
			/* A restarted owner joins at the model's clock. */
			restart(&pr, log, i, m->clock_ms);
			with_b = true;
		} else if (i % R_FLUSH_EVERY == 0) {
			state_flushed(pr.a.st);
			pr.a.seen = 0;
			if (with_b) {
				state_flushed(pr.b.st);
				pr.b.seen = 0;
			}
		}
		log[i] = gen_next(g);
		put(&pr.a, log[i]);
		model_fold(m, &log[i]);
		if (with_b) {
			put(&pr.b, log[i]);
			same_transitions(&pr, __LINE__);
			const struct qs_alert *b_items;
			pr.b.seen = state_alerts(pr.b.st, &b_items);
		}
		/* Fold the new transitions: each alert_id alternates RAISED, RESOLVED, ... from RAISED;
		 * an encounter has at most one open alert; each is detected at the clock. */
		const struct qs_alert *a;
		size_t n = state_alerts(pr.a.st, &a);
		for (; pr.a.seen < n; pr.a.seen++) {
			const struct qs_alert *x = &a[pr.a.seen];
			ck_assert_msg(x->kind >= QS_ALERT_LATE_SUBMISSION && x->kind <= QS_ALERT_OVERDUE, "kind %d",
				      (int)x->kind);
			int k = slot_of(x->encounter_id);
			ck_assert_msg(x->raised != open[x->kind][k], "event %lld: %s %s %s twice in a row",
				      (long long)i, alerts_kind_name(x->kind), x->raised ? "RAISED" : "RESOLVED",
				      x->encounter_id);
			open[x->kind][k] = x->raised;
			(x->raised ? raised : resolved)[x->kind]++;
			ck_assert_msg(open[1][k] + open[2][k] + open[3][k] <= 1, "event %lld: %s has two open alerts",
				      (long long)i, x->encounter_id);
			ck_assert_msg(x->detected_at == m->clock_ms, "event %lld: %s detected at %lld, clock %lld",
				      (long long)i, x->encounter_id, (long long)x->detected_at, (long long)m->clock_ms);
			int32_t st_day = m->service_to[k];
			ck_assert_msg(!x->raised || x->due_date == st_day + 180, "event %lld: %s due %d, expected %d",
				      (long long)i, x->encounter_id, x->due_date, st_day + 180);
		}
		/* The open set is the model's, for every original, after every event. */
		for (int k = 0; k <= R_ORIGINALS; k++) {
			enum qs_alert_kind want = model_kind(m, k), got = QS_ALERT_NONE;
			for (int kind = QS_ALERT_LATE_SUBMISSION; kind <= QS_ALERT_OVERDUE; kind++)
				if (open[kind][k])
					got = (enum qs_alert_kind)kind;
			ck_assert_msg(got == want, "after event %lld (%s, clock %lld): O%03d has %s open, model %s",
				      (long long)i, log[i].u.encounter.encounter_id, (long long)m->clock_ms, k,
				      alerts_kind_name(got), alerts_kind_name(want));
		}
	}
	/* Not vacuous: every kind was raised and resolved (counts from this seed, a floor only). */
	for (int kind = QS_ALERT_LATE_SUBMISSION; kind <= QS_ALERT_OVERDUE; kind++)
		ck_assert_msg(raised[kind] >= 10 && resolved[kind] >= 5, "%s raised %zu resolved %zu",
			      alerts_kind_name((enum qs_alert_kind)kind), raised[kind], resolved[kind]);
	ck_assert_msg(g->n_originals >= 150, "only %d originals", g->n_originals); /* about R_ORIGINALS */
	pair_free(&pr);
	free(log);
	free(m);
	free(g);
}
END_TEST

/* --- 9. wall-clock mode ---------------------------------------------------- */

START_TEST(wall_clock_mode)
{
	struct fixture f = setup_mode(true);
	struct part *p1 = state_part_add(f.st, QS_TOPIC_ENCOUNTERS, 1, 0, QS_NO_TS);
	(void)p1;
	ck_assert_int_eq(state_wall_clock_ms(f.st), QS_NO_TS);
	/* O: service_to 2023-03-01 (DUE_SOON 07-29, due 08-28, OVERDUE 08-29), adjudicated 2023-09-01:
	 * in event time it would be OVERDUE at once; here events do not move the clock, which has
	 * no reading yet: nothing. */
	put(&f, owed("O", day(2023, 3, 1), ms_of(2023, 9, 1)));
	EXPECT_NONE(&f);
	ck_assert_uint_eq(state_progress_count(f.st), 1);
	ck_assert_int_eq(progress_clock(f.st, QS_TOPIC_ENCOUNTERS, 0), QS_NO_TS);
	state_flushed(f.st);
	f.seen = 0;
	/* Wall clock 2023-07-28 (+149): both partitions' clocks move and progress; no alert. */
	state_wall_clock(f.st, ms_of(2023, 7, 28));
	EXPECT_NONE(&f);
	ck_assert_int_eq(state_wall_clock_ms(f.st), ms_of(2023, 7, 28));
	ck_assert_uint_eq(state_progress_count(f.st), 2);
	ck_assert_int_eq(progress_clock(f.st, QS_TOPIC_ENCOUNTERS, 0), ms_of(2023, 7, 28));
	ck_assert_int_eq(progress_clock(f.st, QS_TOPIC_ENCOUNTERS, 1), ms_of(2023, 7, 28));
	state_flushed(f.st);
	/* 23:59:59.999 the same UTC date: nothing moves. */
	state_wall_clock(f.st, last_ms_of(2023, 7, 28));
	ck_assert_int_eq(state_wall_clock_ms(f.st), last_ms_of(2023, 7, 28));
	ck_assert_uint_eq(state_progress_count(f.st), 0);
	EXPECT_NONE(&f);
	/* 2023-07-29T00:00:00.000Z, a new date (+150): DUE_SOON, detected at that reading. */
	state_wall_clock(f.st, midnight_of(2023, 7, 29));
	EXPECT(&f, DUE_SOON, RAISED, "O", midnight_of(2023, 7, 29), day(2023, 8, 28));
	EXPECT_NONE(&f);
	ck_assert_uint_eq(state_progress_count(f.st), 2);
	ck_assert_int_eq(progress_clock(f.st, QS_TOPIC_ENCOUNTERS, 0), midnight_of(2023, 7, 29));
	state_flushed(f.st);
	f.seen = 0;
	/* O2: service_to 2023-01-01, adjudicated 2024-01-01: judged at the wall clock 2023-07-29:
	 * Jan 31 = +30, Feb 28 = +58, Mar 31 = +89, Apr 30 = +119, May 31 = +150, Jun 30 = +180 (due),
	 * Jul 29 = +209: OVERDUE. The event's 2024 time does not move the clock. */
	put(&f, owed("O2", day(2023, 1, 1), ms_of(2024, 1, 1)));
	EXPECT(&f, OVERDUE, RAISED, "O2", midnight_of(2023, 7, 29), day(2023, 6, 30));
	ck_assert_int_eq(progress_clock(f.st, QS_TOPIC_ENCOUNTERS, 0), midnight_of(2023, 7, 29));
	/* 2023-08-28 (+180): nothing; 2023-08-29 (+181): O escalates. */
	state_wall_clock(f.st, ms_of(2023, 8, 28));
	EXPECT_NONE(&f);
	state_wall_clock(f.st, ms_of(2023, 8, 29));
	EXPECT(&f, DUE_SOON, RESOLVED, "O", ms_of(2023, 8, 29), day(2023, 8, 28));
	EXPECT(&f, OVERDUE, RAISED, "O", ms_of(2023, 8, 29), day(2023, 8, 28));
	EXPECT_NONE(&f);
	state_free(f.st);
}
END_TEST

START_TEST(wall_clock_never_moves_back)
{
	struct fixture f = setup_mode(true);
	/* O: service_to 2023-03-01, owed; due 2023-08-28, OVERDUE from 08-29 (+181). */
	put(&f, owed("O", day(2023, 3, 1), ms_of(2023, 3, 5)));
	state_wall_clock(f.st, ms_of(2023, 8, 29));
	EXPECT(&f, OVERDUE, RAISED, "O", ms_of(2023, 8, 29), day(2023, 8, 28));
	state_flushed(f.st);
	f.seen = 0;
	/* The machine's clock steps back two days (NTP, a restart on a slower host): the partition
	 * keeps 08-29, so nothing is resolved or re-raised, and a redelivery of O changes nothing. */
	state_wall_clock(f.st, ms_of(2023, 8, 27));
	ck_assert_uint_eq(state_progress_count(f.st), 0);
	put(&f, owed("O", day(2023, 3, 1), ms_of(2023, 3, 5)));
	state_wall_clock(f.st, ms_of(2023, 8, 30));
	EXPECT_NONE(&f);
	ck_assert_int_eq(progress_clock(f.st, QS_TOPIC_ENCOUNTERS, 0), ms_of(2023, 8, 30));
	state_free(f.st);
}
END_TEST

START_TEST(wall_clock_ignored_in_event_mode)
{
	struct fixture f = setup();
	put(&f, owed("O", day(2023, 3, 1), ms_of(2023, 3, 5)));
	state_flushed(f.st);
	/* Event time: state_wall_clock is a no-op, even on a date when O would be OVERDUE. */
	state_wall_clock(f.st, ms_of(2024, 1, 1));
	ck_assert_int_eq(state_wall_clock_ms(f.st), QS_NO_TS);
	ck_assert_uint_eq(state_progress_count(f.st), 0);
	f.seen = 0;
	EXPECT_NONE(&f);
	state_free(f.st);
}
END_TEST

static const char *embedded(const struct embedded_file *files, const char *name)
{
	for (const struct embedded_file *f = files; f->name; f++)
		if (!strcmp(f->name, name))
			return f->text;
	ck_abort_msg("%s is not embedded", name);
	return NULL;
}

/* The rows ('NAME', 'scope') of alert_kinds() in sql that end with tail: a kind's name is in capitals. */
static size_t kind_rows(const char *sql, const char *tail)
{
	size_t n = 0;
	for (const char *at = strstr(sql, tail); at; at = strstr(at + 1, tail))
		n += at[-1] >= 'A' && at[-1] <= 'Z';
	return n;
}

/*
 * The kinds are listed in three places that must agree: QS_ALERT_KINDS, the
 * published AlertKind enum (same names, same order), and R_alerts.sql's
 * alert_kinds() rows (same names, same scopes, no others).
 */
START_TEST(kinds_agree_with_schema_and_sql)
{
	json_error_t error;
	json_t *schema = json_loads(embedded(embedded_schemas, "alert.avsc"), 0, &error);
	ck_assert_msg(schema, "alert.avsc: %s", error.text);
	json_t *symbols = NULL, *field;
	size_t i;
	json_array_foreach(json_object_get(schema, "fields"), i,
			   field) if (!strcmp(json_string_value(json_object_get(field, "name")), "kind"))
		symbols = json_object_get(json_object_get(field, "type"), "symbols");
	ck_assert_uint_eq(json_array_size(symbols), QS_ALERT_KIND_COUNT - 1);
	const char *sql = embedded(embedded_migrations, "R_alerts.sql");
	for (int k = QS_ALERT_NONE + 1; k < QS_ALERT_KIND_COUNT; k++) {
		const char *name = alerts_kind_name((enum qs_alert_kind)k);
		ck_assert_str_eq(json_string_value(json_array_get(symbols, (size_t)k - 1)), name);
		char row[96];
		snprintf(row, sizeof(row), "('%s', '%s')", name,
			 alerts_kind_scope((enum qs_alert_kind)k) == QS_ALERT_SCOPE_ENCOUNTER ? "encounter" : "plan");
		ck_assert_msg(strstr(sql, row), "R_alerts.sql has no row %s", row);
	}
	ck_assert_uint_eq(kind_rows(sql, "', 'encounter')") + kind_rows(sql, "', 'plan')"), QS_ALERT_KIND_COUNT - 1);
	json_decref(schema);
	ck_assert_str_eq(alerts_kind_name(QS_ALERT_KIND_COUNT), "?");
}
END_TEST

START_TEST(encounter_alert_id)
{
	char id[ALERTS_ID_MAX];
	ck_assert_str_eq(alerts_encounter_id(id, QS_ALERT_OVERDUE, "P1", "E42"), "OVERDUE:P1:E42");
	/* The longest: every byte of both ids is kept. */
	char plan[QS_ID_MAX], encounter[QS_ID_MAX], want[ALERTS_ID_MAX];
	memset(plan, 'p', sizeof(plan) - 1);
	plan[sizeof(plan) - 1] = '\0';
	memset(encounter, 'e', sizeof(encounter) - 1);
	encounter[sizeof(encounter) - 1] = '\0';
	snprintf(want, sizeof(want), "LATE_SUBMISSION:%s:%s", plan, encounter);
	ck_assert_uint_eq(strlen(want), strlen("LATE_SUBMISSION") + 2 + 2 * (QS_ID_MAX - 1));
	ck_assert_str_eq(alerts_encounter_id(id, QS_ALERT_LATE_SUBMISSION, plan, encounter), want);
}
END_TEST

Suite *alerts_suite(void)
{
	Suite *s = suite_create("alerts");
	TCase *tc = tcase_create("encounter");
	tcase_add_test(tc, owed_boundaries_149_150_180_181);
	tcase_add_test(tc, owed_jump_past_due_soon_raises_overdue_only);
	tcase_add_test(tc, late_submission_180_vs_181_and_utc_day);
	tcase_add_test(tc, leap_year_window);
	tcase_add_test(tc, late_submission_of_overdue);
	tcase_add_test(tc, own_submission_past_181_skips_overdue);
	tcase_add_test(tc, timely_submission_of_due_soon);
	tcase_add_test(tc, void_resolves_overdue_and_late);
	tcase_add_test(tc, replacement_rejudges_late_submission);
	tcase_add_test(tc, replacement_moves_owed_timer);
	tcase_add_test(tc, original_correction_moves_owed_back_then_due_again);
	tcase_add_test(tc, correction_changing_plan_moves_alert);
	tcase_add_test(tc, replacement_renamed_to_other_original);
	tcase_add_test(tc, identical_resend_is_no_transition);
	tcase_add_test(tc, flushed_clears_pending_alerts);
	suite_add_tcase(s, tc);
	tc = tcase_create("restore");
	tcase_add_test(tc, restore_equivalence);
	tcase_add_test(tc, restore_equivalence_same_day_timers);
	tcase_add_test(tc, restore_void_of_redelivered_replacement);
	tcase_add_test(tc, restore_corrected_original_id_no_alert_left_open);
	tcase_add_test(tc, restore_self_reference_leaves_the_original);
	suite_add_tcase(s, tc);
	tc = tcase_create("random");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, random_against_model);
	suite_add_tcase(s, tc);
	tc = tcase_create("kinds");
	tcase_add_test(tc, kinds_agree_with_schema_and_sql);
	tcase_add_test(tc, encounter_alert_id);
	suite_add_tcase(s, tc);
	tc = tcase_create("wall_clock");
	tcase_add_test(tc, wall_clock_mode);
	tcase_add_test(tc, wall_clock_never_moves_back);
	tcase_add_test(tc, wall_clock_ignored_in_event_mode);
	suite_add_tcase(s, tc);
	return s;
}
