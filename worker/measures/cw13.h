/*
 * cw13.h: the CW13 family's entities and pure rules, exposed for unit tests.
 * Everything else about the family is reached through family_cw13.
 *
 * Every encounter record (original, replacement, void) is one cw13_record,
 * the latest version of its encounter_id. Records that refer to one original
 * form a chain (chain.h, README "Identity, corrections and voids"); the chain's
 * timeliness is derived from its records each time, so a superseded record
 * leaves no trace. So is its alert (README "Alerts"): a function of the chain
 * and the clock date; an owed chain waits in the partition's timer heap for
 * the next day on which that function changes.
 */
#ifndef QS_CW13_H
#define QS_CW13_H

#include <stdbool.h>

#include "chain.h"
#include "measures.h"

struct cw13_record {
	struct chain_record base; /* chain link, offset and frequency */
	uint32_t plan;
	uint32_t source; /* interned "MEDICARE" / "MEDICAID": the stratum */
	int32_t service_from, service_to;
	int32_t submitted_day; /* QS_NO_DATE while owed */
	bool ed_visit;
};

struct cw13_chain {
	struct chain base;     /* root and records */
	const char *member_id; /* of its original's latest version: alerts name the member */
	int32_t timer_day;     /* while scheduled: the next day its alert changes */
	uint32_t heap_pos;     /* position in the timer heap + 1; 0 when not scheduled */
};

/* CW13_SUBMISSIONS of one record; returns how many contributions (0 or 1). */
size_t cw13_record_contribs(const struct cw13_record *r, struct qs_contrib *out);
/* CW13_TIMELY of one chain of cw13_records under the rules; returns how many contributions (0 or 1). */
size_t cw13_chain_contribs(const struct chain *c, const struct qs_rules *rules, struct qs_contrib *out);

#endif
