/*
 * fuzz_common.h: what every decoder fuzz target checks about one
 * decode_message call. Header-only (static inline), so each target stays one
 * file and the library carries no test code.
 */
#ifndef QS_FUZZ_COMMON_H
#define QS_FUZZ_COMMON_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "decode.h"
#include "event.h"

#define FUZZ_REQUIRE(cond)                                                                           \
	do {                                                                                         \
		if (!(cond)) {                                                                       \
			fprintf(stderr, "%s:%d: invariant broken: %s\n", __FILE__, __LINE__, #cond); \
			abort();                                                                     \
		}                                                                                    \
	} while (0)

/* An identifier slot holds a NUL-terminated string. */
static inline int fuzz_id_ok(const char *s, int may_be_empty)
{
	size_t n = strnlen(s, QS_ID_MAX);
	return n < QS_ID_MAX && (may_be_empty || n > 0);
}

/* What an accepted event must satisfy whatever bytes produced it: the
 * promises of README.md's "What is rejected" (dates 1900..2199 are days
 * -25567..84005 since 1970). */
static inline void fuzz_check_event(const struct qs_event *ev, enum qs_topic topic)
{
	const int32_t lo = -25567, hi = 84005;
	FUZZ_REQUIRE(ev->topic == topic);
	switch (topic) {
	case QS_TOPIC_ENCOUNTERS: {
		const struct qs_encounter *e = &ev->u.encounter;
		FUZZ_REQUIRE(fuzz_id_ok(e->encounter_id, 0) && fuzz_id_ok(e->plan_id, 0) &&
			     fuzz_id_ok(e->member_id, 0));
		FUZZ_REQUIRE(fuzz_id_ok(e->original_encounter_id, 1));
		FUZZ_REQUIRE(e->service_from >= lo && e->service_from <= e->service_to && e->service_to <= hi);
		FUZZ_REQUIRE((e->frequency == QS_FREQ_ORIGINAL) == (e->original_encounter_id[0] == '\0'));
		FUZZ_REQUIRE((unsigned)e->source <= QS_SOURCE_MEDICAID && (unsigned)e->frequency <= QS_FREQ_VOID);
		break;
	}
	case QS_TOPIC_DELIVERIES: {
		const struct qs_delivery *d = &ev->u.delivery;
		FUZZ_REQUIRE(fuzz_id_ok(d->delivery_id, 0) && fuzz_id_ok(d->hospital_id, 0));
		FUZZ_REQUIRE(fuzz_id_ok(d->plan_id, 0) && fuzz_id_ok(d->member_id, 0));
		FUZZ_REQUIRE(d->delivery_date >= lo && d->delivery_date <= hi);
		FUZZ_REQUIRE(d->parity == QS_NO_INT || (d->parity >= 0 && d->parity <= 30));
		FUZZ_REQUIRE(d->plurality == QS_NO_INT || (d->plurality >= 1 && d->plurality <= 15));
		FUZZ_REQUIRE((unsigned)d->status <= QS_STATUS_VOID && (unsigned)d->method <= QS_METHOD_CESAREAN);
		break;
	}
	default: {
		const struct qs_member_event *m = &ev->u.member;
		FUZZ_REQUIRE(fuzz_id_ok(m->event_id, 0) && fuzz_id_ok(m->member_id, 0) && fuzz_id_ok(m->plan_id, 0));
		FUZZ_REQUIRE((unsigned)m->body <= QS_BODY_CARE_TEAM_CONTACT);
		break;
	}
	}
}

/* Decodes `value` (`len` bytes, NULL when 0) from `topic` and checks the
 * outcome: an event keeping the promises, or a rejection with a reason
 * (RETRY cannot come from a registry directory). */
static inline void fuzz_decode(struct decoder *dec, enum qs_topic topic, const void *value, size_t len)
{
	struct qs_event ev;
	char err[QS_DECODE_ERRSTR_SIZE] = "";
	int rc = decode_message(dec, topic, value, len, &ev, err, sizeof(err));
	FUZZ_REQUIRE(rc == QS_OK || rc == QS_REJECT);
	if (rc == QS_OK)
		fuzz_check_event(&ev, topic);
	else
		FUZZ_REQUIRE(err[0] != '\0' && strlen(err) < sizeof(err));
}

#endif
