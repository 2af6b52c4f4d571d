/*
 * decode_validate.c: the business rules a decoded event must meet beyond its
 * schema (decode_validate): dates and instants within 1900-01-01..2199-12-31,
 * counts within their plausible ranges, an encounter's dates in order and its
 * frequency agreeing with original_encounter_id. README.md's "What is
 * rejected (dead letters)" lists them for operators.
 */
#include "decode_validate.h"

#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>

#include "dates.h"
#include "decode_plan.h"
#include "errstr.h"

/* YYYY-MM-DD of any day number (dates_format truncates years past 9999). */
static const char *fmt_date(int32_t day, char *buf, size_t size)
{
	int y, m, d;
	dates_to_civil(day, &y, &m, &d);
	snprintf(buf, size, "%04d-%02d-%02d", y, m, d);
	return buf;
}

static int check_date(const struct date_range *r, const char *field, int32_t day, char *errstr, size_t errstr_size)
{
	char buf[32];
	if (day >= r->min_day && day <= r->max_day)
		return 0;
	errstr_set(errstr, errstr_size, "field %s: date %s out of range 1900-01-01..2199-12-31", field,
		   fmt_date(day, buf, sizeof(buf)));
	return -1;
}

/* An instant, when present, must fall on a day within the date range. */
static int check_ts(const struct date_range *r, const char *field, int64_t ms, char *errstr, size_t errstr_size)
{
	char buf[32];
	if (ms == QS_NO_TS || (ms >= r->min_ms && ms <= r->max_ms))
		return 0;
	/* Days of instants within +-2^31 days can be spelled as dates. */
	if (ms / 86400000 > INT32_MIN && ms / 86400000 < INT32_MAX)
		errstr_set(errstr, errstr_size,
			   "field %s: timestamp %" PRId64 " (%s) out of range 1900-01-01..2199-12-31", field, ms,
			   fmt_date(dates_day_of_ms(ms), buf, sizeof(buf)));
	else
		errstr_set(errstr, errstr_size, "field %s: timestamp %" PRId64 " out of range 1900-01-01..2199-12-31",
			   field, ms);
	return -1;
}

static int check_range(const char *field, int32_t v, int32_t lo, int32_t hi, char *errstr, size_t errstr_size)
{
	if (v == QS_NO_INT || (v >= lo && v <= hi))
		return 0;
	errstr_set(errstr, errstr_size, "field %s: %" PRId32 " out of range %" PRId32 "..%" PRId32, field, v, lo, hi);
	return -1;
}

static int validate_encounter(const struct date_range *r, const struct qs_encounter *e, char *errstr,
			      size_t errstr_size)
{
	char a[32], b[32];
	if (check_date(r, "service_from", e->service_from, errstr, errstr_size) ||
	    check_date(r, "service_to", e->service_to, errstr, errstr_size) ||
	    check_ts(r, "adjudicated_at", e->adjudicated_at, errstr, errstr_size) ||
	    check_ts(r, "submitted_at", e->submitted_at, errstr, errstr_size))
		return -1;
	if (e->service_from > e->service_to) {
		errstr_set(errstr, errstr_size, "service_from %s is after service_to %s",
			   fmt_date(e->service_from, a, sizeof(a)), fmt_date(e->service_to, b, sizeof(b)));
		return -1;
	}
	if (e->submitted_at != QS_NO_TS && dates_day_of_ms(e->submitted_at) < e->service_to) {
		errstr_set(errstr, errstr_size, "submitted_at date %s is before service_to %s",
			   fmt_date(dates_day_of_ms(e->submitted_at), a, sizeof(a)),
			   fmt_date(e->service_to, b, sizeof(b)));
		return -1;
	}
	bool has_original = e->original_encounter_id[0] != '\0';
	if (e->frequency == QS_FREQ_ORIGINAL && has_original) {
		errstr_set(errstr, errstr_size,
			   "frequency ORIGINAL with original_encounter_id \"%s\": an original replaces nothing",
			   e->original_encounter_id);
		return -1;
	}
	if (e->frequency != QS_FREQ_ORIGINAL && !has_original) {
		errstr_set(errstr, errstr_size,
			   "frequency %s without original_encounter_id: it must name the encounter it %s",
			   decode_frequency_symbols[e->frequency], e->frequency == QS_FREQ_VOID ? "voids" : "replaces");
		return -1;
	}
	return 0;
}

static int validate_delivery(const struct date_range *r, const struct qs_delivery *d, char *errstr, size_t errstr_size)
{
	if (check_date(r, "delivery_date", d->delivery_date, errstr, errstr_size) ||
	    check_range("parity", d->parity, 0, 30, errstr, errstr_size) ||
	    check_range("gestational_age_weeks", d->gestational_age_weeks, 0, 50, errstr, errstr_size) ||
	    check_range("plurality", d->plurality, 1, 15, errstr, errstr_size))
		return -1;
	return 0;
}

static int validate_member(const struct date_range *r, const struct qs_member_event *m, char *errstr,
			   size_t errstr_size)
{
	switch (m->body) {
	case QS_BODY_ENROLLMENT:
		return check_date(r, "month", m->u.enrollment.month, errstr, errstr_size);
	case QS_BODY_BH_COORDINATION:
		return check_date(r, "event_date", m->u.bh_coordination.event_date, errstr, errstr_size);
	case QS_BODY_CARE_PLAN:
		return check_date(r, "completed_on", m->u.care_plan.completed_on, errstr, errstr_size);
	case QS_BODY_COORDINATOR_ASSIGNED:
		return check_date(r, "month", m->u.coordinator_assigned.month, errstr, errstr_size);
	case QS_BODY_CARE_TEAM_CONTACT:
		return check_date(r, "contact_date", m->u.care_team_contact.contact_date, errstr, errstr_size);
	}
	return 0;
}

struct date_range decode_date_range(void)
{
	struct date_range r;
	r.min_day = dates_from_civil(1900, 1, 1);
	r.max_day = dates_from_civil(2199, 12, 31);
	r.min_ms = (int64_t)r.min_day * 86400000;
	r.max_ms = ((int64_t)r.max_day + 1) * 86400000 - 1;
	return r;
}

int decode_validate(const struct date_range *r, const struct qs_event *ev, char *errstr, size_t errstr_size)
{
	switch (ev->topic) {
	case QS_TOPIC_ENCOUNTERS:
		return validate_encounter(r, &ev->u.encounter, errstr, errstr_size);
	case QS_TOPIC_DELIVERIES:
		return validate_delivery(r, &ev->u.delivery, errstr, errstr_size);
	default:
		return validate_member(r, &ev->u.member, errstr, errstr_size);
	}
}
