/*
 * encounters.h: the encounter builder the suites share (test_measures.c,
 * test_alerts.c, test_caw.c): plan P1, member M1, MEDICARE, service_from =
 * service_to, not adjudicated. Header-only, for the test files that include it.
 */
#ifndef QS_TEST_ENCOUNTERS_H
#define QS_TEST_ENCOUNTERS_H

#include <stdio.h>
#include <string.h>

#include "dates.h"
#include "event.h"

/* Noon UTC of a civil date, in ms. */
static inline int64_t ms_of(int y, int m, int d)
{
	return (int64_t)dates_from_civil(y, m, d) * 86400000 + 12 * 3600000;
}

static inline struct qs_event encounter(const char *id, const char *original, enum qs_frequency freq,
					int32_t service_to, int64_t submitted_at)
{
	struct qs_event ev = {.topic = QS_TOPIC_ENCOUNTERS};
	struct qs_encounter *e = &ev.u.encounter;
	snprintf(e->encounter_id, sizeof(e->encounter_id), "%s", id);
	snprintf(e->original_encounter_id, sizeof(e->original_encounter_id), "%s", original);
	strcpy(e->plan_id, "P1");
	strcpy(e->member_id, "M1");
	e->source = QS_SOURCE_MEDICARE;
	e->frequency = freq;
	e->service_from = e->service_to = service_to;
	e->adjudicated_at = QS_NO_TS;
	e->submitted_at = submitted_at;
	return ev;
}

#endif
