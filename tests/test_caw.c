/*
 * test_caw.c: the California families CAW6-CAW9 driven through state_apply,
 * with every expected cell worked out by hand in the comments from the README
 * ("California measures CAW6-CAW9"). Without a flush the pending deltas are
 * the totals, so each test reads them as the table a user would see. All
 * events are plan P1 unless said otherwise; encounters are owed (no
 * submitted_at), so CW13 counts nothing and only CAW cells move.
 */
#include <check.h>
#include <stdio.h>
#include <string.h>

#include "dates.h"
#include "encounters.h"
#include "state.h"
#include "suites.h"

static const struct qs_rules rules = {.cw13_timely_days = 180, .alert_due_soon_days = 150};

struct nd {
	long long n, d;
};

static struct nd cell(const struct state *st, const char *plan, const char *measure, enum qs_grain grain, int y, int m)
{
	const struct state_delta *x;
	size_t len = state_deltas(st, &x);
	struct nd out = {0, 0};
	int32_t start = dates_from_civil(y, m, 1);
	for (size_t i = 0; i < len; i++)
		if (!strcmp(state_str(st, x[i].plan), plan) && !strcmp(measures_name(x[i].measure), measure) &&
		    !strcmp(state_str(st, x[i].stratum), "") && x[i].grain == grain && x[i].period_start == start) {
			out.n += x[i].numerator;
			out.d += x[i].denominator;
		}
	return out;
}

/* The cell (plan, measure, stratum '', grain, period starting yy-mm-01) is num/den. */
#define ASSERT_PLAN_CELL(st, plan, measure, grain, yy, mm, num, den)                                                   \
	do {                                                                                                           \
		struct nd got_ = cell(st, plan, measure, grain, yy, mm);                                               \
		ck_assert_msg(got_.n == (num) && got_.d == (den), "%s %s %s %04d-%02d: got %lld/%lld, expected %d/%d", \
			      plan, measure, dates_grain_name(grain), yy, mm, got_.n, got_.d, (num), (den));           \
	} while (0)
#define ASSERT_CELL(st, measure, grain, yy, mm, num, den) ASSERT_PLAN_CELL(st, "P1", measure, grain, yy, mm, num, den)
#define MONTH QS_GRAIN_MONTH
#define QUARTER QS_GRAIN_QUARTER
#define YEAR QS_GRAIN_YEAR

/* Sum of |numerator| + |denominator| over the cells of one measure: 0 means all cancelled. */
static long long measure_abs(const struct state *st, const char *measure)
{
	const struct state_delta *x;
	size_t len = state_deltas(st, &x);
	long long t = 0;
	for (size_t i = 0; i < len; i++)
		if (!strcmp(measures_name(x[i].measure), measure))
			t += (x[i].numerator < 0 ? -x[i].numerator : x[i].numerator) +
			     (x[i].denominator < 0 ? -x[i].denominator : x[i].denominator);
	return t;
}

/* Cells of one measure that are not 0/0. */
static size_t measure_cells(const struct state *st, const char *measure)
{
	const struct state_delta *x;
	size_t len = state_deltas(st, &x), n = 0;
	for (size_t i = 0; i < len; i++)
		n += !strcmp(measures_name(x[i].measure), measure) && (x[i].numerator || x[i].denominator);
	return n;
}

static int32_t day(int y, int m, int d)
{
	return dates_from_civil(y, m, d);
}

static struct qs_event member_event(const char *id, const char *member, enum qs_member_body body)
{
	struct qs_event ev = {.topic = QS_TOPIC_MEMBER_EVENTS};
	struct qs_member_event *m = &ev.u.member;
	snprintf(m->event_id, sizeof(m->event_id), "%s", id);
	strcpy(m->plan_id, "P1");
	snprintf(m->member_id, sizeof(m->member_id), "%s", member);
	m->status = QS_STATUS_ACTIVE;
	m->body = body;
	return ev;
}

static struct qs_event bh(const char *id, const char *member, int32_t date, bool smhs, enum qs_outcome county,
			  enum qs_outcome outcome)
{
	struct qs_event ev = member_event(id, member, QS_BODY_BH_COORDINATION);
	ev.u.member.u.bh_coordination.event_date = date;
	ev.u.member.u.bh_coordination.receives_smhs = smhs;
	ev.u.member.u.bh_coordination.county_provider_outcome = county;
	ev.u.member.u.bh_coordination.member_outcome = outcome;
	return ev;
}

static struct qs_event enrollment(const char *id, const char *member, int y, int m, bool smi_sud)
{
	struct qs_event ev = member_event(id, member, QS_BODY_ENROLLMENT);
	ev.u.member.u.enrollment.month = day(y, m, 1);
	ev.u.member.u.enrollment.smi_sud = smi_sud;
	return ev;
}

static struct qs_event care_plan(const char *id, const char *member, const char *care_plan_id,
				 enum qs_care_plan_type type, int32_t completed_on, bool goals)
{
	struct qs_event ev = member_event(id, member, QS_BODY_CARE_PLAN);
	snprintf(ev.u.member.u.care_plan.care_plan_id, sizeof(ev.u.member.u.care_plan.care_plan_id), "%s",
		 care_plan_id);
	ev.u.member.u.care_plan.plan_type = type;
	ev.u.member.u.care_plan.completed_on = completed_on;
	ev.u.member.u.care_plan.care_goals_documented = goals;
	return ev;
}

static struct qs_event coordinator(const char *id, const char *member, int y, int m)
{
	struct qs_event ev = member_event(id, member, QS_BODY_COORDINATOR_ASSIGNED);
	ev.u.member.u.coordinator_assigned.month = day(y, m, 1);
	return ev;
}

static struct qs_event contact(const char *id, const char *member, int32_t date)
{
	struct qs_event ev = member_event(id, member, QS_BODY_CARE_TEAM_CONTACT);
	ev.u.member.u.care_team_contact.contact_date = date;
	return ev;
}

/* An owed encounter of P1 (no submitted_at: CW13 counts nothing), a Medicaid one of `member`. */
static struct qs_event caw_encounter(const char *id, const char *original, enum qs_frequency freq, const char *member,
				     int32_t service_to, bool ed_visit)
{
	struct qs_event ev = encounter(id, original, freq, service_to, QS_NO_TS);
	struct qs_encounter *e = &ev.u.encounter;
	snprintf(e->member_id, sizeof(e->member_id), "%s", member);
	e->source = QS_SOURCE_MEDICAID;
	e->ed_visit = ed_visit;
	return ev;
}

static struct qs_event voided(struct qs_event ev)
{
	ev.u.member.status = QS_STATUS_VOID;
	return ev;
}

static struct qs_event in_plan(struct qs_event ev, const char *plan)
{
	if (ev.topic == QS_TOPIC_ENCOUNTERS)
		snprintf(ev.u.encounter.plan_id, sizeof(ev.u.encounter.plan_id), "%s", plan);
	else
		snprintf(ev.u.member.plan_id, sizeof(ev.u.member.plan_id), "%s", plan);
	return ev;
}

/* Member events and encounters on partition 0 of each topic: co-partitioned, so CAW7 sees both. */
struct fixture {
	struct state *st;
	struct part *mem, *enc;
	int64_t offset[QS_TOPIC_COUNT];
};

static struct fixture setup(void)
{
	struct fixture f = {0};
	f.st = state_new(&rules, false);
	f.mem = state_part_add(f.st, QS_TOPIC_MEMBER_EVENTS, 0, 0, QS_NO_TS);
	f.enc = state_part_add(f.st, QS_TOPIC_ENCOUNTERS, 0, 0, QS_NO_TS);
	return f;
}

static void put(struct fixture *f, struct qs_event ev)
{
	struct part *p = ev.topic == QS_TOPIC_ENCOUNTERS ? f->enc : f->mem;
	state_apply(f->st, p, &ev, f->offset[ev.topic]++, "x", 1);
}

/* January to May of year y (January with smi_sud) for member m: a qualifying member-year. */
static void enroll_jan_to_may(struct fixture *f, const char *m, int y)
{
	char id[32];
	for (int month = 1; month <= 5; month++) {
		snprintf(id, sizeof(id), "en-%s-%d-%d", m, y, month);
		put(f, enrollment(id, m, y, month, month == 1));
	}
}

/* ------------------------------------------------------------------ CAW6 */

START_TEST(caw6_data_elements)
{
	struct fixture f = setup();
	const enum qs_outcome S = QS_OUTCOME_SUCCESS, U = QS_OUTCOME_UNABLE_TO_REACH, N = QS_OUTCOME_NOT_ATTEMPTED;
	/* One event per member in January 2017; running totals of the elements, then C+E over 2A-B-D. */
	put(&f, bh("e1", "M1", day(2017, 1, 5), true, S, S));
	/* M1: A1 C1 E1. A=1 B=0 C=1 D=0 E=1: (1+1)/(2-0-0) = 2/2. */
	ASSERT_CELL(f.st, "CAW6", MONTH, 2017, 1, 2, 2);
	put(&f, bh("e2", "M2", day(2017, 1, 6), true, U, U));
	/* M2: A1 B1 D1. A=2 B=1 C=1 D=1 E=1: (1+1)/(4-1-1) = 2/2. */
	ASSERT_CELL(f.st, "CAW6", MONTH, 2017, 1, 2, 2);
	put(&f, bh("e3", "M3", day(2017, 1, 7), true, U, S));
	/* M3: A1 B1 E1. A=3 B=2 C=1 D=1 E=2: (1+2)/(6-2-1) = 3/3. */
	ASSERT_CELL(f.st, "CAW6", MONTH, 2017, 1, 3, 3);
	put(&f, bh("e4", "M4", day(2017, 1, 8), true, N, N));
	/* M4: A1 only. A=4: 3/(8-2-1) = 3/5. */
	ASSERT_CELL(f.st, "CAW6", MONTH, 2017, 1, 3, 5);
	put(&f, bh("e5", "M5", day(2017, 1, 9), false, S, S));
	/* M5 does not receive SMHS: counts nowhere, still 3/5. */
	ASSERT_CELL(f.st, "CAW6", MONTH, 2017, 1, 3, 5);
	put(&f, bh("e6", "M6", day(2017, 1, 10), true, S, U));
	/* M6: A1 C1 D1. A=5 B=2 C=2 D=2 E=2: (2+2)/(10-2-2) = 4/6. */
	ASSERT_CELL(f.st, "CAW6", MONTH, 2017, 1, 4, 6);
	/* Each member's only event is also its latest of Q1 and 2017: the same 4/6. */
	ASSERT_CELL(f.st, "CAW6", QUARTER, 2017, 1, 4, 6);
	ASSERT_CELL(f.st, "CAW6", YEAR, 2017, 1, 4, 6);
	ASSERT_CELL(f.st, "CAW6", MONTH, 2017, 2, 0, 0);
	state_free(f.st);
}
END_TEST

START_TEST(caw6_latest_in_each_period)
{
	struct fixture f = setup();
	const enum qs_outcome S = QS_OUTCOME_SUCCESS, U = QS_OUTCOME_UNABLE_TO_REACH, N = QS_OUTCOME_NOT_ATTEMPTED;
	/* M1's outcome changes within Q1 2017; events arrive out of date order:
	 *   a  02-05 smhs N/S   -> C0 E1, B0 D0: 1/2
	 *   b  01-10 smhs S/S   -> 2/2
	 *   c  03-03 no SMHS    -> nowhere
	 *   d  01-20 smhs U/N   -> B1: 0/(2-1) = 0/1 */
	put(&f, bh("a", "M1", day(2017, 2, 5), true, N, S));
	put(&f, bh("b", "M1", day(2017, 1, 10), true, S, S));
	put(&f, bh("c", "M1", day(2017, 3, 3), false, S, S));
	put(&f, bh("d", "M1", day(2017, 1, 20), true, U, N));
	/* January's latest is d (01-20 > 01-10): 0/1. February: a, 1/2. March: c, nowhere. */
	ASSERT_CELL(f.st, "CAW6", MONTH, 2017, 1, 0, 1);
	ASSERT_CELL(f.st, "CAW6", MONTH, 2017, 2, 1, 2);
	ASSERT_CELL(f.st, "CAW6", MONTH, 2017, 3, 0, 0);
	/* Q1's and 2017's latest is c (03-03): M1 counts nowhere there, although its months do. */
	ASSERT_CELL(f.st, "CAW6", QUARTER, 2017, 1, 0, 0);
	ASSERT_CELL(f.st, "CAW6", YEAR, 2017, 1, 0, 0);

	/* e 04-12 smhs S/U -> C1 D1: 1/(2-1) = 1/1 in April and Q2, and now M1's latest of 2017. */
	put(&f, bh("e", "M1", day(2017, 4, 12), true, S, U));
	ASSERT_CELL(f.st, "CAW6", MONTH, 2017, 4, 1, 1);
	ASSERT_CELL(f.st, "CAW6", QUARTER, 2017, 4, 1, 1);
	ASSERT_CELL(f.st, "CAW6", YEAR, 2017, 1, 1, 1);
	ASSERT_CELL(f.st, "CAW6", QUARTER, 2017, 1, 0, 0);

	/* M2: one event 02-14 smhs S/S (2/2). February: M1 1/2 + M2 2/2 = 3/4. Q1: M1 nowhere + M2 2/2.
	 * 2017: M1's e 1/1 + M2 2/2 = 3/3. */
	put(&f, bh("m2", "M2", day(2017, 2, 14), true, S, S));
	ASSERT_CELL(f.st, "CAW6", MONTH, 2017, 2, 3, 4);
	ASSERT_CELL(f.st, "CAW6", QUARTER, 2017, 1, 2, 2);
	ASSERT_CELL(f.st, "CAW6", YEAR, 2017, 1, 3, 3);
	state_free(f.st);
}
END_TEST

START_TEST(caw6_same_day_latest_in_partition)
{
	struct fixture f = setup();
	const enum qs_outcome S = QS_OUTCOME_SUCCESS, U = QS_OUTCOME_UNABLE_TO_REACH;
	/* Two events on 2017-05-05: t2 comes later in the partition and decides (U/U: 0/0, no cell). */
	put(&f, bh("t1", "M1", day(2017, 5, 5), true, S, S));
	ASSERT_CELL(f.st, "CAW6", MONTH, 2017, 5, 2, 2);
	put(&f, bh("t2", "M1", day(2017, 5, 5), true, U, U));
	ASSERT_CELL(f.st, "CAW6", MONTH, 2017, 5, 0, 0);
	/* t1 resent (a new version): now the later one in the partition, S/S: 2/2 again at every grain. */
	put(&f, bh("t1", "M1", day(2017, 5, 5), true, S, S));
	ASSERT_CELL(f.st, "CAW6", MONTH, 2017, 5, 2, 2);
	ASSERT_CELL(f.st, "CAW6", QUARTER, 2017, 4, 2, 2);
	ASSERT_CELL(f.st, "CAW6", YEAR, 2017, 1, 2, 2);
	state_free(f.st);
}
END_TEST

START_TEST(caw6_corrections_and_voids_retract)
{
	struct fixture f = setup();
	const enum qs_outcome S = QS_OUTCOME_SUCCESS, N = QS_OUTCOME_NOT_ATTEMPTED;
	struct qs_event e1 = bh("e1", "M1", day(2017, 3, 15), true, S, S); /* 2/2 */
	struct qs_event e2 = bh("e2", "M1", day(2017, 3, 20), true, N, N); /* 0/2 */
	put(&f, e1);
	put(&f, e2);
	/* e2 is latest in March, Q1 and 2017: 0/2. */
	ASSERT_CELL(f.st, "CAW6", MONTH, 2017, 3, 0, 2);
	ASSERT_CELL(f.st, "CAW6", YEAR, 2017, 1, 0, 2);
	/* Void e2: e1 decides again everywhere: 2/2. */
	put(&f, voided(e2));
	ASSERT_CELL(f.st, "CAW6", MONTH, 2017, 3, 2, 2);
	ASSERT_CELL(f.st, "CAW6", QUARTER, 2017, 1, 2, 2);
	ASSERT_CELL(f.st, "CAW6", YEAR, 2017, 1, 2, 2);
	/* e1 corrected to 2017-12-31: March and Q1 empty; December, Q4 and 2017 2/2. */
	e1.u.member.u.bh_coordination.event_date = day(2017, 12, 31);
	put(&f, e1);
	ASSERT_CELL(f.st, "CAW6", MONTH, 2017, 3, 0, 0);
	ASSERT_CELL(f.st, "CAW6", QUARTER, 2017, 1, 0, 0);
	ASSERT_CELL(f.st, "CAW6", MONTH, 2017, 12, 2, 2);
	ASSERT_CELL(f.st, "CAW6", QUARTER, 2017, 10, 2, 2);
	ASSERT_CELL(f.st, "CAW6", YEAR, 2017, 1, 2, 2);
	/* Then to 2018-01-01: another member-year; 2017 empty, 2018's January, Q1 and year 2/2. */
	e1.u.member.u.bh_coordination.event_date = day(2018, 1, 1);
	put(&f, e1);
	ASSERT_CELL(f.st, "CAW6", YEAR, 2017, 1, 0, 0);
	ASSERT_CELL(f.st, "CAW6", MONTH, 2018, 1, 2, 2);
	ASSERT_CELL(f.st, "CAW6", QUARTER, 2018, 1, 2, 2);
	ASSERT_CELL(f.st, "CAW6", YEAR, 2018, 1, 2, 2);
	/* Then to plan P2: P1 empty, P2 2/2. */
	e1 = in_plan(e1, "P2");
	put(&f, e1);
	ASSERT_CELL(f.st, "CAW6", YEAR, 2018, 1, 0, 0);
	ASSERT_PLAN_CELL(f.st, "P2", "CAW6", MONTH, 2018, 1, 2, 2);
	/* Then the event id carries another body (a CoordinatorAssigned): CAW6 retracts everything. */
	struct qs_event other = in_plan(coordinator("e1", "M1", 2018, 1), "P2");
	put(&f, other);
	ck_assert_int_eq(measure_abs(f.st, "CAW6"), 0);
	state_free(f.st);
}
END_TEST

/* ------------------------------------------------------------------ CAW7 */

START_TEST(caw7_qualifies_at_five_months)
{
	struct fixture f = setup();
	/* M1 enrolled January (smi_sud) to April 2017, and an ED visit on 2017-02-10: 4 months, nothing. */
	put(&f, enrollment("j", "M1", 2017, 1, true));
	put(&f, enrollment("f", "M1", 2017, 2, false));
	struct qs_event mar = enrollment("m", "M1", 2017, 3, false);
	put(&f, mar);
	put(&f, enrollment("a", "M1", 2017, 4, false));
	put(&f, caw_encounter("O1", "", QS_FREQ_ORIGINAL, "M1", day(2017, 2, 10), true));
	ck_assert_int_eq(measure_abs(f.st, "CAW7"), 0);

	/* May arrives: 5 months with smi_sud, qualified. Every month counts at once, 1 member month each,
	 * and February's visit: Jan 0/1, Feb 1/1, Mar 0/1, Apr 0/1, May 0/1; Q1 1/3 (Jan+Feb+Mar);
	 * Q2 0/2 (Apr+May); 2017 1/5. */
	put(&f, enrollment("y", "M1", 2017, 5, false));
	ASSERT_CELL(f.st, "CAW7", MONTH, 2017, 1, 0, 1);
	ASSERT_CELL(f.st, "CAW7", MONTH, 2017, 2, 1, 1);
	ASSERT_CELL(f.st, "CAW7", MONTH, 2017, 3, 0, 1);
	ASSERT_CELL(f.st, "CAW7", MONTH, 2017, 4, 0, 1);
	ASSERT_CELL(f.st, "CAW7", MONTH, 2017, 5, 0, 1);
	ASSERT_CELL(f.st, "CAW7", QUARTER, 2017, 1, 1, 3);
	ASSERT_CELL(f.st, "CAW7", QUARTER, 2017, 4, 0, 2);
	ASSERT_CELL(f.st, "CAW7", YEAR, 2017, 1, 1, 5);

	/* A second enrollment event for March: still one member month in March, 2017 stays 1/5. */
	struct qs_event mar2 = enrollment("m2", "M1", 2017, 3, false);
	put(&f, mar2);
	ASSERT_CELL(f.st, "CAW7", MONTH, 2017, 3, 0, 1);
	ASSERT_CELL(f.st, "CAW7", YEAR, 2017, 1, 1, 5);
	/* Void the first March event: the second keeps March enrolled, nothing changes. */
	put(&f, voided(mar));
	ASSERT_CELL(f.st, "CAW7", YEAR, 2017, 1, 1, 5);
	/* Void the second: 4 months, not qualified, every cell goes back to 0/0. */
	put(&f, voided(mar2));
	ck_assert_int_eq(measure_abs(f.st, "CAW7"), 0);
	/* A later ACTIVE version of the second brings all five months and the visit back. */
	put(&f, mar2);
	ASSERT_CELL(f.st, "CAW7", YEAR, 2017, 1, 1, 5);
	ASSERT_CELL(f.st, "CAW7", QUARTER, 2017, 1, 1, 3);
	/* April's event corrected to March: months Jan, Feb, Mar, May = 4, nothing again. */
	put(&f, enrollment("a", "M1", 2017, 3, false));
	ck_assert_int_eq(measure_abs(f.st, "CAW7"), 0);
	state_free(f.st);
}
END_TEST

START_TEST(caw7_smi_plan_and_year_scope)
{
	struct fixture f = setup();
	/* M2 enrolled January to June 2018 without smi_sud: 6 months but no SMI/SUD, nothing. */
	char id[16];
	for (int m = 1; m <= 6; m++) {
		snprintf(id, sizeof(id), "s%d", m);
		put(&f, enrollment(id, "M2", 2018, m, false));
	}
	ck_assert_int_eq(measure_abs(f.st, "CAW7"), 0);
	/* June corrected to smi_sud: qualified. Each month 0/1; Q1 0/3, Q2 0/3, 2018 0/6. */
	put(&f, enrollment("s6", "M2", 2018, 6, true));
	ASSERT_CELL(f.st, "CAW7", MONTH, 2018, 6, 0, 1);
	ASSERT_CELL(f.st, "CAW7", QUARTER, 2018, 1, 0, 3);
	ASSERT_CELL(f.st, "CAW7", QUARTER, 2018, 4, 0, 3);
	ASSERT_CELL(f.st, "CAW7", YEAR, 2018, 1, 0, 6);
	/* Corrected back: nothing. */
	put(&f, enrollment("s6", "M2", 2018, 6, false));
	ck_assert_int_eq(measure_abs(f.st, "CAW7"), 0);

	/* M3: January-March under P1 and April-May under P2, all with smi_sud: 3 and 2 months, nothing. */
	for (int m = 1; m <= 5; m++) {
		snprintf(id, sizeof(id), "p%d", m);
		struct qs_event ev = enrollment(id, "M3", 2018, m, true);
		put(&f, m <= 3 ? ev : in_plan(ev, "P2"));
	}
	/* M4: October-December 2017 and January-February 2018 with smi_sud: 3 and 2 months, nothing. */
	const int ym[5][2] = {{2017, 10}, {2017, 11}, {2017, 12}, {2018, 1}, {2018, 2}};
	for (int i = 0; i < 5; i++) {
		snprintf(id, sizeof(id), "y%d", i);
		put(&f, enrollment(id, "M4", ym[i][0], ym[i][1], true));
	}
	ck_assert_int_eq(measure_abs(f.st, "CAW7"), 0);
	state_free(f.st);
}
END_TEST

START_TEST(caw7_ed_visits_follow_the_chain)
{
	struct fixture f = setup();
	/* M1 qualifies for 2019 (January-May, January smi_sud): months 0/1 each, 2019 0/5. */
	enroll_jan_to_may(&f, "M1", 2019);
	ASSERT_CELL(f.st, "CAW7", YEAR, 2019, 1, 0, 5);
	/* Original O1 on 2019-03-05 without ED: no visit. */
	put(&f, caw_encounter("O1", "", QS_FREQ_ORIGINAL, "M1", day(2019, 3, 5), false));
	ASSERT_CELL(f.st, "CAW7", YEAR, 2019, 1, 0, 5);
	/* Replacement R1 of O1: ED on 2019-04-02. The chain's content is R1: April 1/1, 2019 1/5. */
	put(&f, caw_encounter("R1", "O1", QS_FREQ_REPLACEMENT, "M1", day(2019, 4, 2), true));
	ASSERT_CELL(f.st, "CAW7", MONTH, 2019, 3, 0, 1);
	ASSERT_CELL(f.st, "CAW7", MONTH, 2019, 4, 1, 1);
	ASSERT_CELL(f.st, "CAW7", YEAR, 2019, 1, 1, 5);
	/* Replacement R2 naming R1, no ED: the latest replacement says no visit. April 0/1, 2019 0/5. */
	struct qs_event r2 = caw_encounter("R2", "R1", QS_FREQ_REPLACEMENT, "M1", day(2019, 4, 2), false);
	put(&f, r2);
	ASSERT_CELL(f.st, "CAW7", MONTH, 2019, 4, 0, 1);
	ASSERT_CELL(f.st, "CAW7", YEAR, 2019, 1, 0, 5);
	/* R2 corrected: ED on 2019-05-20. May 1/1, April 0/1, Q2 1/2 (Apr+May), 2019 1/5. */
	r2.u.encounter.service_to = r2.u.encounter.service_from = day(2019, 5, 20);
	r2.u.encounter.ed_visit = true;
	put(&f, r2);
	ASSERT_CELL(f.st, "CAW7", MONTH, 2019, 5, 1, 1);
	ASSERT_CELL(f.st, "CAW7", MONTH, 2019, 4, 0, 1);
	ASSERT_CELL(f.st, "CAW7", QUARTER, 2019, 4, 1, 2);
	ASSERT_CELL(f.st, "CAW7", YEAR, 2019, 1, 1, 5);
	/* A void naming R2 voids the chain: no visit anywhere, 2019 0/5. */
	put(&f, caw_encounter("V1", "R2", QS_FREQ_VOID, "M1", day(2019, 5, 20), true));
	ASSERT_CELL(f.st, "CAW7", MONTH, 2019, 5, 0, 1);
	ASSERT_CELL(f.st, "CAW7", YEAR, 2019, 1, 0, 5);

	/* O2: ED on 2019-08-15, a month M1 is not enrolled in: the visit still counts, August 1/0,
	 * Q3 1/0, 2019 1/5. */
	put(&f, caw_encounter("O2", "", QS_FREQ_ORIGINAL, "M1", day(2019, 8, 15), true));
	ASSERT_CELL(f.st, "CAW7", MONTH, 2019, 8, 1, 0);
	ASSERT_CELL(f.st, "CAW7", QUARTER, 2019, 7, 1, 0);
	ASSERT_CELL(f.st, "CAW7", YEAR, 2019, 1, 1, 5);
	/* Voided: retracted, 2019 0/5 again. */
	put(&f, caw_encounter("V2", "O2", QS_FREQ_VOID, "M1", day(2019, 8, 15), true));
	ASSERT_CELL(f.st, "CAW7", MONTH, 2019, 8, 0, 0);
	ASSERT_CELL(f.st, "CAW7", YEAR, 2019, 1, 0, 5);

	/* ED visits under another plan (P2: M1 not qualified there) or in 2020 (not qualified) count nowhere. */
	put(&f, in_plan(caw_encounter("O3", "", QS_FREQ_ORIGINAL, "M1", day(2019, 2, 2), true), "P2"));
	put(&f, caw_encounter("O4", "", QS_FREQ_ORIGINAL, "M1", day(2020, 1, 10), true));
	ASSERT_CELL(f.st, "CAW7", YEAR, 2019, 1, 0, 5);
	ASSERT_PLAN_CELL(f.st, "P2", "CAW7", YEAR, 2019, 1, 0, 0);
	ASSERT_CELL(f.st, "CAW7", YEAR, 2020, 1, 0, 0);
	/* The cells that are not 0/0: January-May, Q1, Q2 and 2019 = 8. */
	ck_assert_uint_eq(measure_cells(f.st, "CAW7"), 8);
	state_free(f.st);
}
END_TEST

START_TEST(caw7_replacement_before_original)
{
	struct fixture f = setup();
	enroll_jan_to_may(&f, "M1", 2019);
	/* A replacement whose original has not arrived: its content is the chain's, ED on 2019-02-01
	 * for M1. February 1/1, 2019 1/5. */
	put(&f, caw_encounter("R", "O", QS_FREQ_REPLACEMENT, "M1", day(2019, 2, 1), true));
	ASSERT_CELL(f.st, "CAW7", MONTH, 2019, 2, 1, 1);
	ASSERT_CELL(f.st, "CAW7", YEAR, 2019, 1, 1, 5);
	/* The original arrives (no ED itself): R stays the content, nothing changes. */
	put(&f, caw_encounter("O", "", QS_FREQ_ORIGINAL, "M1", day(2019, 1, 30), false));
	ASSERT_CELL(f.st, "CAW7", YEAR, 2019, 1, 1, 5);
	/* Corrected to name member M9: the chain belongs to its original's member, so M1 loses the
	 * visit (2019 0/5) and M9, not qualified, gains nothing. */
	put(&f, caw_encounter("O", "", QS_FREQ_ORIGINAL, "M9", day(2019, 1, 30), false));
	ASSERT_CELL(f.st, "CAW7", MONTH, 2019, 2, 0, 1);
	ASSERT_CELL(f.st, "CAW7", YEAR, 2019, 1, 0, 5);
	state_free(f.st);
}
END_TEST

START_TEST(caw7_original_resent_as_replacement_takes_its_void_along)
{
	/* README "Identity": chains follow the latest versions, whatever order they came in. M1 qualifies
	 * for 2019 (2019 0/5). O without ED on 2019-03-05; X an original with ED on 2019-04-02 (April 1/1);
	 * V voids X (April 0/1); then X's latest version is a replacement of O, ED on 2019-04-02: V names
	 * X and X names O, so O's chain {O, X, V} is voided: no visit, April 0/1, 2019 0/5. */
	struct fixture f = setup();
	enroll_jan_to_may(&f, "M1", 2019);
	put(&f, caw_encounter("O", "", QS_FREQ_ORIGINAL, "M1", day(2019, 3, 5), false));
	put(&f, caw_encounter("X", "", QS_FREQ_ORIGINAL, "M1", day(2019, 4, 2), true));
	ASSERT_CELL(f.st, "CAW7", MONTH, 2019, 4, 1, 1);
	put(&f, caw_encounter("V", "X", QS_FREQ_VOID, "M1", day(2019, 4, 2), true));
	ASSERT_CELL(f.st, "CAW7", MONTH, 2019, 4, 0, 1);
	put(&f, caw_encounter("X", "O", QS_FREQ_REPLACEMENT, "M1", day(2019, 4, 2), true));
	ASSERT_CELL(f.st, "CAW7", MONTH, 2019, 4, 0, 1);
	ASSERT_CELL(f.st, "CAW7", YEAR, 2019, 1, 0, 5);
	/* X an original again: V voids X's own chain, O's chain {O} has no ED. Then V's latest version
	 * names itself (a chain of its own): X's visit counts again, April 1/1, 2019 1/5. */
	put(&f, caw_encounter("X", "", QS_FREQ_ORIGINAL, "M1", day(2019, 4, 2), true));
	ASSERT_CELL(f.st, "CAW7", MONTH, 2019, 4, 0, 1);
	put(&f, caw_encounter("V", "V", QS_FREQ_VOID, "M1", day(2019, 4, 2), true));
	ASSERT_CELL(f.st, "CAW7", MONTH, 2019, 4, 1, 1);
	ASSERT_CELL(f.st, "CAW7", YEAR, 2019, 1, 1, 5);
	state_free(f.st);
}
END_TEST

START_TEST(caw7_restore_then_void)
{
	/* A new owner restores a qualifying member-year and its visit (no deltas), then a void of one
	 * month arrives: the only deltas are the retraction of everything, 2019 -1/-5. */
	struct state *st = state_new(&rules, false);
	struct part *mem = state_part_add(st, QS_TOPIC_MEMBER_EVENTS, 4, 10, QS_NO_TS);
	struct part *enc = state_part_add(st, QS_TOPIC_ENCOUNTERS, 4, 20, QS_NO_TS);
	for (int m = 1; m <= 5; m++) {
		char id[8];
		snprintf(id, sizeof(id), "r%d", m);
		struct qs_event ev = enrollment(id, "M1", 2019, m, m == 1);
		state_restore(st, mem, &ev, m);
	}
	struct qs_event o = caw_encounter("O", "", QS_FREQ_ORIGINAL, "M1", day(2019, 3, 3), true);
	state_restore(st, enc, &o, 7);
	ck_assert_uint_eq(state_pending(st), 0);
	ck_assert_int_eq(measure_abs(st, "CAW7"), 0);
	struct qs_event v = voided(enrollment("r4", "M1", 2019, 4, false));
	state_apply(st, mem, &v, 10, "x", 1);
	ASSERT_CELL(st, "CAW7", MONTH, 2019, 3, -1, -1);
	ASSERT_CELL(st, "CAW7", QUARTER, 2019, 1, -1, -3);
	ASSERT_CELL(st, "CAW7", YEAR, 2019, 1, -1, -5);
	state_free(st);
}
END_TEST

/* ------------------------------------------------------------------ CAW8 */

START_TEST(caw8_initial_and_revised_plans)
{
	struct fixture f = setup();
	const enum qs_care_plan_type I = QS_CARE_PLAN_INITIAL, R = QS_CARE_PLAN_REVISED;
	/* 2017:
	 *   i1 M1 INITIAL  CP1 01-05 goals    B: M1 (Jan)   C: M1 (Jan)
	 *   i2 M1 INITIAL  CP2 01-25          B: M1 again (distinct members)
	 *   i3 M2 INITIAL  CP3 01-10          B: M2 (Jan)
	 *   i4 M2 INITIAL  CP4 02-10 goals    B: M2 (Feb)   C: M2 (Feb)
	 *   r1    REVISED  CP1 01-15          E: CP1 (Jan)
	 *   r2    REVISED  CP1 01-28 goals    E: CP1 again  F: CP1 (Jan)
	 *   r3    REVISED  CP3 02-03          E: CP3 (Feb)
	 *   r4    REVISED  CP3 03-09 goals    E: CP3 (Mar)  F: CP3 (Mar) */
	put(&f, care_plan("i1", "M1", "CP1", I, day(2017, 1, 5), true));
	put(&f, care_plan("i2", "M1", "CP2", I, day(2017, 1, 25), false));
	put(&f, care_plan("i3", "M2", "CP3", I, day(2017, 1, 10), false));
	struct qs_event i4 = care_plan("i4", "M2", "CP4", I, day(2017, 2, 10), true);
	put(&f, i4);
	put(&f, care_plan("r1", "M1", "CP1", R, day(2017, 1, 15), false));
	struct qs_event r2 = care_plan("r2", "M1", "CP1", R, day(2017, 1, 28), true);
	put(&f, r2);
	put(&f, care_plan("r3", "M2", "CP3", R, day(2017, 2, 3), false));
	put(&f, care_plan("r4", "M2", "CP3", R, day(2017, 3, 9), true));
	/* Jan: B {M1,M2}=2 C {M1}=1 E {CP1}=1 F {CP1}=1 -> C+F / B+E = 2/3.
	 * Feb: B {M2}=1 C {M2}=1 E {CP3}=1 F 0 -> 1/2.
	 * Mar: B 0 C 0 E {CP3}=1 F {CP3}=1 -> 1/1.
	 * Q1 and 2017: B {M1,M2}=2 C {M1,M2}=2 E {CP1,CP3}=2 F {CP1,CP3}=2 -> 4/4. */
	ASSERT_CELL(f.st, "CAW8", MONTH, 2017, 1, 2, 3);
	ASSERT_CELL(f.st, "CAW8", MONTH, 2017, 2, 1, 2);
	ASSERT_CELL(f.st, "CAW8", MONTH, 2017, 3, 1, 1);
	ASSERT_CELL(f.st, "CAW8", QUARTER, 2017, 1, 4, 4);
	ASSERT_CELL(f.st, "CAW8", YEAR, 2017, 1, 4, 4);

	/* Void r2: CP1's only goals revision goes. Jan: F 0 -> 1/3. Q1: F {CP3}=1 -> 3/4. */
	put(&f, voided(r2));
	ASSERT_CELL(f.st, "CAW8", MONTH, 2017, 1, 1, 3);
	ASSERT_CELL(f.st, "CAW8", QUARTER, 2017, 1, 3, 4);
	ASSERT_CELL(f.st, "CAW8", YEAR, 2017, 1, 3, 4);

	/* i4 corrected to a REVISED event of CP4 (goals): M2 has no initial plan in February any more.
	 * Feb: B 0 C 0 E {CP3,CP4}=2 F {CP4}=1 -> 1/2.
	 * Q1: B {M1,M2 (i3)}=2 C {M1}=1 E {CP1,CP3,CP4}=3 F {CP3,CP4}=2 -> 3/5. */
	i4.u.member.u.care_plan.plan_type = R;
	put(&f, i4);
	ASSERT_CELL(f.st, "CAW8", MONTH, 2017, 2, 1, 2);
	ASSERT_CELL(f.st, "CAW8", QUARTER, 2017, 1, 3, 5);
	ASSERT_CELL(f.st, "CAW8", YEAR, 2017, 1, 3, 5);
	/* Care plans are counted per plan: the same CP1 revised under P2 is P2's, P1 unchanged. */
	put(&f, in_plan(care_plan("r9", "M1", "CP1", R, day(2017, 1, 16), true), "P2"));
	ASSERT_PLAN_CELL(f.st, "P2", "CAW8", MONTH, 2017, 1, 1, 1);
	ASSERT_CELL(f.st, "CAW8", MONTH, 2017, 1, 1, 3);
	state_free(f.st);
}
END_TEST

/* ------------------------------------------------------------------ CAW9 */

START_TEST(caw9_coordinators_and_contacts)
{
	struct fixture f = setup();
	/* 2017:
	 *   c1 M1 coordinator January     k1 M1 contact 01-15
	 *   c2 M2 coordinator February    k2 M2 contact 03-03
	 *   c3 M1 coordinator February
	 *   k3 M3 contact 01-20, no coordinator */
	put(&f, coordinator("c1", "M1", 2017, 1));
	struct qs_event k1 = contact("k1", "M1", day(2017, 1, 15));
	put(&f, k1);
	put(&f, coordinator("c2", "M2", 2017, 2));
	struct qs_event k2 = contact("k2", "M2", day(2017, 3, 3));
	put(&f, k2);
	put(&f, coordinator("c3", "M1", 2017, 2));
	put(&f, contact("k3", "M3", day(2017, 1, 20)));
	/* Jan: A {M1} B {M1} -> 1/1.
	 * Feb: A {M1,M2} B {} (no February contact) -> 0/2.
	 * Mar: A {} -> M2's contact has no coordinator in March: counts nowhere, 0/0.
	 * Q1 and 2017: A {M1,M2}=2 B {M1 (Jan), M2 (Mar)}=2 -> 2/2. M3 is never in A. */
	ASSERT_CELL(f.st, "CAW9", MONTH, 2017, 1, 1, 1);
	ASSERT_CELL(f.st, "CAW9", MONTH, 2017, 2, 0, 2);
	ASSERT_CELL(f.st, "CAW9", MONTH, 2017, 3, 0, 0);
	ASSERT_CELL(f.st, "CAW9", QUARTER, 2017, 1, 2, 2);
	ASSERT_CELL(f.st, "CAW9", YEAR, 2017, 1, 2, 2);

	/* Void k1: Jan 0/1; Q1 and 2017 B {M2} -> 1/2. */
	put(&f, voided(k1));
	ASSERT_CELL(f.st, "CAW9", MONTH, 2017, 1, 0, 1);
	ASSERT_CELL(f.st, "CAW9", QUARTER, 2017, 1, 1, 2);
	ASSERT_CELL(f.st, "CAW9", YEAR, 2017, 1, 1, 2);
	/* M3 gets a coordinator for April: April 0/1 (no April contact), Q2 0/1; Q1 unchanged 1/2 (no
	 * coordinator there); 2017: A {M1,M2,M3}=3, B {M2, M3 (January contact, coordinator in the
	 * year)}=2 -> 2/3. */
	put(&f, coordinator("c4", "M3", 2017, 4));
	ASSERT_CELL(f.st, "CAW9", MONTH, 2017, 4, 0, 1);
	ASSERT_CELL(f.st, "CAW9", QUARTER, 2017, 4, 0, 1);
	ASSERT_CELL(f.st, "CAW9", QUARTER, 2017, 1, 1, 2);
	ASSERT_CELL(f.st, "CAW9", YEAR, 2017, 1, 2, 3);
	/* k2 corrected to 02-20: February B {M2} -> 1/2; March still 0/0; Q1 and 2017 unchanged. */
	k2.u.member.u.care_team_contact.contact_date = day(2017, 2, 20);
	put(&f, k2);
	ASSERT_CELL(f.st, "CAW9", MONTH, 2017, 2, 1, 2);
	ASSERT_CELL(f.st, "CAW9", MONTH, 2017, 3, 0, 0);
	ASSERT_CELL(f.st, "CAW9", QUARTER, 2017, 1, 1, 2);
	ASSERT_CELL(f.st, "CAW9", YEAR, 2017, 1, 2, 3);
	/* A VOID event with a new id counts nowhere. */
	put(&f, voided(coordinator("c5", "M4", 2017, 6)));
	ASSERT_CELL(f.st, "CAW9", MONTH, 2017, 6, 0, 0);
	state_free(f.st);
}
END_TEST

START_TEST(caw9_every_month_of_a_year)
{
	struct fixture f = setup();
	/* M1 has a coordinator and a contact in every month of 2018: the member-year writes its most
	 * cells, 12 months + 4 quarters + 1 year = 17, each 1/1. */
	char id[16];
	for (int m = 1; m <= 12; m++) {
		snprintf(id, sizeof(id), "c%d", m);
		put(&f, coordinator(id, "M1", 2018, m));
		snprintf(id, sizeof(id), "k%d", m);
		put(&f, contact(id, "M1", day(2018, m, 28)));
	}
	ck_assert_uint_eq(measure_cells(f.st, "CAW9"), 17);
	for (int m = 1; m <= 12; m++)
		ASSERT_CELL(f.st, "CAW9", MONTH, 2018, m, 1, 1);
	for (int q = 1; q <= 10; q += 3)
		ASSERT_CELL(f.st, "CAW9", QUARTER, 2018, q, 1, 1);
	ASSERT_CELL(f.st, "CAW9", YEAR, 2018, 1, 1, 1);
	/* Void every contact: 0/1 everywhere; then every coordinator: nothing left. */
	for (int m = 1; m <= 12; m++) {
		snprintf(id, sizeof(id), "k%d", m);
		put(&f, voided(contact(id, "M1", day(2018, m, 28))));
	}
	ASSERT_CELL(f.st, "CAW9", YEAR, 2018, 1, 0, 1);
	ASSERT_CELL(f.st, "CAW9", MONTH, 2018, 7, 0, 1);
	for (int m = 1; m <= 12; m++) {
		snprintf(id, sizeof(id), "c%d", m);
		put(&f, voided(coordinator(id, "M1", 2018, m)));
	}
	ck_assert_int_eq(measure_abs(f.st, "CAW9"), 0);
	state_free(f.st);
}
END_TEST

Suite *caw_suite(void)
{
	Suite *s = suite_create("caw");
	TCase *tc = tcase_create("caw6");
	tcase_add_test(tc, caw6_data_elements);
	tcase_add_test(tc, caw6_latest_in_each_period);
	tcase_add_test(tc, caw6_same_day_latest_in_partition);
	tcase_add_test(tc, caw6_corrections_and_voids_retract);
	suite_add_tcase(s, tc);
	tc = tcase_create("caw7");
	tcase_add_test(tc, caw7_qualifies_at_five_months);
	tcase_add_test(tc, caw7_smi_plan_and_year_scope);
	tcase_add_test(tc, caw7_ed_visits_follow_the_chain);
	tcase_add_test(tc, caw7_replacement_before_original);
	tcase_add_test(tc, caw7_restore_then_void);
	tcase_add_test(tc, caw7_original_resent_as_replacement_takes_its_void_along);
	suite_add_tcase(s, tc);
	tc = tcase_create("caw8");
	tcase_add_test(tc, caw8_initial_and_revised_plans);
	suite_add_tcase(s, tc);
	tc = tcase_create("caw9");
	tcase_add_test(tc, caw9_coordinators_and_contacts);
	tcase_add_test(tc, caw9_every_month_of_a_year);
	suite_add_tcase(s, tc);
	return s;
}
