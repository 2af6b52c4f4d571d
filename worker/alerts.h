/*
 * alerts.h: what the worker knows about alerts (README "Alerts", "The
 * clock"), whoever judges them: the kinds, an alert's id, a transition, and
 * the clocks alerts are judged by. The encounter kinds are judged by a
 * measure family from its own entities at its partition's clock date
 * (measures/cw13.c, which also words them); the plan kinds in SQL, by
 * sinks/migrations/R_alerts.sql, the one home of the plan alerts' SQL and
 * of the same list of kinds.
 *
 * Adding a kind: a row of QS_ALERT_KINDS here, its row in R_alerts.sql's
 * alert_kinds() (tests/test_alerts.c checks that the two lists and the
 * published schemas/alert.avsc agree), and then its rule: the judging family
 * for an encounter kind, a condition in R_alerts.sql for a plan kind.
 */
#ifndef QS_ALERTS_H
#define QS_ALERTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dates.h"
#include "event.h"

/*
 * X(name, scope): the spelling stored in qualstream.alerts.kind and
 * published as the AlertKind symbol, in the symbols' order; ENCOUNTER kinds
 * are about one encounter and raised here, PLAN kinds about a plan's
 * measures and raised in SQL.
 */
#define QS_ALERT_KINDS(X)                         \
	X(LATE_SUBMISSION, ENCOUNTER)             \
	X(DUE_SOON, ENCOUNTER)                    \
	X(OVERDUE, ENCOUNTER)                     \
	X(MONTH_WITHOUT_SUBMISSION, PLAN)         \
	X(MONTH_WITHOUT_SUBMISSION_WARNING, PLAN) \
	X(NTSV_ABOVE_TARGET, PLAN)                \
	X(TIMELINESS_AT_RISK, PLAN)

/* QS_ALERT_NONE: no alert (an entity's alert is a function that may have none). */
enum qs_alert_kind {
	QS_ALERT_NONE,
#define QS_ALERT_KIND_ENUM(name, scope) QS_ALERT_##name,
	QS_ALERT_KINDS(QS_ALERT_KIND_ENUM)
#undef QS_ALERT_KIND_ENUM
		QS_ALERT_KIND_COUNT
};

enum qs_alert_scope { QS_ALERT_SCOPE_ENCOUNTER, QS_ALERT_SCOPE_PLAN };

/* "LATE_SUBMISSION", ...; "NONE" for QS_ALERT_NONE and "?" out of range. */
const char *alerts_kind_name(enum qs_alert_kind kind);
/* Who raises a kind (valid kinds only). */
enum qs_alert_scope alerts_kind_scope(enum qs_alert_kind kind);

/*
 * One transition of an encounter alert, as a family reports it: RESOLVED for
 * the alert an entity had, RAISED for the one it has. The strings are
 * borrowed: from the family until the sink's add returns, and in the state's
 * pending output (state_alerts) until state_flushed.
 */
struct qs_alert {
	enum qs_alert_kind kind;
	bool raised;           /* false: resolved */
	uint32_t plan, source; /* interned (state_str) */
	const char *member_id;
	const char *encounter_id;
	int32_t due_date;    /* day number, or QS_NO_DATE */
	int64_t detected_at; /* the clock reading, ms */
	const char *details;
};

struct alert_sink {
	void (*add)(void *ctx, const struct qs_alert *a);
	void *ctx;
};

/*
 * An alert's id, the same for every transition of one alert, so its RAISED
 * and RESOLVED rows (and the feed's message key) pair up: the kind and what
 * the alert is about, joined by ':'. An encounter alert is about its plan and
 * encounter_id ("OVERDUE:P1:E42"); the plan kinds' ids are made by the same
 * rule in R_alerts.sql. Writes at most ALERTS_ID_MAX bytes to buf; returns buf.
 */
#define ALERTS_ID_MAX (40 + 2 * QS_ID_MAX) /* a kind's name, then two ids of input */
char *alerts_encounter_id(char buf[ALERTS_ID_MAX], enum qs_alert_kind kind, const char *plan_id,
			  const char *encounter_id);

/*
 * The clocks (README "The clock"). Each partition has one, stored with its
 * offset: in event-time mode the latest event time it has read (replays give
 * the same alerts), in wall-clock mode the machine's time. Alerts change by
 * the day; when a partition's clock moves, its entities' timers fire.
 * struct alert_clock is the mode and, in wall-clock mode, the last reading.
 */
struct alert_clock {
	bool wall;
	int64_t wall_ms; /* QS_NO_TS until the first alerts_clock_wall_set */
};

struct alert_clock alerts_clock(bool wall);

/* When the event happened, by the stream's account; QS_NO_TS if it does not say. */
static inline int64_t alerts_event_time(const struct qs_event *ev)
{
	switch (ev->topic) {
	case QS_TOPIC_ENCOUNTERS: {
		const struct qs_encounter *e = &ev->u.encounter;
		return e->submitted_at > e->adjudicated_at ? e->submitted_at : e->adjudicated_at;
	}
	case QS_TOPIC_DELIVERIES:
		return (int64_t)ev->u.delivery.delivery_date * 86400000;
	default:
		return QS_NO_TS;
	}
}

/*
 * Where a partition's clock at clock_ms goes on reading ev: in event-time
 * mode to the event's time when that is later (it never moves back), in
 * wall-clock mode nowhere (alerts_clock_wall_due moves it). Inline: it runs
 * for every event.
 */
static inline int64_t alerts_clock_on_event(const struct alert_clock *c, int64_t clock_ms, const struct qs_event *ev)
{
	if (c->wall)
		return clock_ms;
	int64_t t = alerts_event_time(ev);
	return t > clock_ms ? t : clock_ms; /* QS_NO_TS is the least int64_t: no clock yet, or no time */
}

/* Wall-clock mode: takes now_ms as the wall clock and returns true; false (and nothing) in event-time mode. */
bool alerts_clock_wall_set(struct alert_clock *c, int64_t now_ms);
/*
 * Whether a partition's clock at clock_ms moves to the wall clock: when the
 * wall clock's date is later than its own. A clock stepped back waits for it.
 */
bool alerts_clock_wall_due(const struct alert_clock *c, int64_t clock_ms);

/* The date alerts are judged at on a clock reading: its day number, or QS_NO_DATE before the first. */
static inline int32_t alerts_clock_day(int64_t clock_ms)
{
	return clock_ms == QS_NO_TS ? QS_NO_DATE : dates_day_of_ms(clock_ms);
}

#endif
