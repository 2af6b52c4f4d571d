/*
 * intern.h: plan ids, hospital ids and strata are few and repeated in every
 * event; the interner maps each distinct string to a small number once, so
 * entities and aggregate keys hold a uint32_t instead of a 64-byte string.
 * Numbers are process-local and never persisted (state is persisted as the
 * raw messages, see state.h), so they need not be stable across restarts.
 */
#ifndef QS_INTERN_H
#define QS_INTERN_H

#include <stdint.h>

#include "hashmap.h"

struct intern {
	struct idmap map;
};

/* The number of s, adding it on first sight. Aborts on OOM. */
uint32_t intern_id(struct intern *in, const char *s);
/* The same, trying hint first (see idmap_add_hint). */
uint32_t intern_id_hint(struct intern *in, const char *s, uint32_t hint);
/* The string of a number returned by intern_id ("" for any other); borrowed until intern_free. */
const char *intern_str(const struct intern *in, uint32_t id);
void intern_free(struct intern *in);

#endif
