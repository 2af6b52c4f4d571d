/*
 * deliveries.h: the delivery builder the suites share (test_measures.c,
 * test_pgsink.c): an NTSV birth by cesarean of plan P1, member M1 (first
 * birth, 39 weeks, one baby, vertex, live, active), which each test varies
 * where it needs to. Header-only, for the test files that include it.
 */
#ifndef QS_TEST_DELIVERIES_H
#define QS_TEST_DELIVERIES_H

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "event.h"

static inline struct qs_event delivery(const char *id, const char *hospital, int32_t date)
{
	struct qs_event ev = {.topic = QS_TOPIC_DELIVERIES};
	struct qs_delivery *d = &ev.u.delivery;
	snprintf(d->delivery_id, sizeof(d->delivery_id), "%s", id);
	strcpy(d->plan_id, "P1");
	snprintf(d->hospital_id, sizeof(d->hospital_id), "%s", hospital);
	strcpy(d->member_id, "M1");
	d->delivery_date = date;
	d->parity = 0;
	d->gestational_age_weeks = 39;
	d->plurality = 1;
	d->presentation = QS_PRES_VERTEX;
	d->method = QS_METHOD_CESAREAN;
	d->live_birth = true;
	d->status = QS_STATUS_ACTIVE;
	return ev;
}

#endif
