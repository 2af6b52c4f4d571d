/*
 * ntsv.h: the NTSV family's entity and pure rule, exposed for unit tests.
 * Everything else about the family is reached through family_ntsv.
 */
#ifndef QS_NTSV_H
#define QS_NTSV_H

#include <stdbool.h>

#include "measures.h"

/* The latest version of one delivery, as much as the rules need (32 bytes; zeroed: counts nowhere). */
struct ntsv_delivery {
	uint32_t plan, stratum_plan, stratum_hospital;
	int32_t delivery_date;
	int32_t parity, gestational_age_weeks, plurality; /* QS_NO_INT when null */
	bool active;
	bool live_birth;
	int8_t presentation; /* enum qs_presentation */
	uint8_t method;      /* enum qs_method */
};

/* Writes the delivery's contributions to out (at least QS_MAX_CONTRIBS long); returns how many. */
size_t ntsv_contribs(const struct ntsv_delivery *d, struct qs_contrib *out);
/* Overwrites d with the content of a delivery event. */
void ntsv_fold(struct ntsv_delivery *d, struct intern *in, const struct qs_delivery *ev);

#endif
