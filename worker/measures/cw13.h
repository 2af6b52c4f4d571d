/*
 * cw13.h: the CW13 family's pure rules. Everything else about the family is
 * reached through family_cw13.
 *
 * Every encounter record (original, replacement, void) is a node of the
 * partition's chains (chain.h, README "Identity, corrections and voids"): the
 * latest version of its encounter_id. The chain's timeliness is derived from
 * its records each time, so a superseded record leaves no trace. So is its
 * alert (README "Alerts"): a function of the chain and the clock date; an owed
 * chain waits in the partition's timer heap for the next day on which that
 * function changes. The family's own fields are the heap and, per chain, its
 * place in it.
 */
#ifndef QS_CW13_H
#define QS_CW13_H

#include <stdbool.h>

#include "chain.h"
#include "measures.h"

/* CW13_SUBMISSIONS of one record, counted in stratum; returns how many contributions (0 or 1). */
size_t cw13_record_contribs(const struct chain_node *r, uint32_t stratum, struct qs_contrib *out);
/*
 * CW13_TIMELY of chain c under the rules, counted in strata[source]; returns
 * how many contributions (0 or 1).
 */
size_t cw13_chain_contribs(const struct chains *cs, uint32_t c, const struct qs_rules *rules,
			   const uint32_t strata[2], struct qs_contrib *out);

#endif
