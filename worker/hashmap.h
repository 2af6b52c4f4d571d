/*
 * hashmap.h: the worker's index tables, sized for 10^8 entities.
 *
 * struct table: open addressing from a 64-bit hash to a 32-bit value (an
 * index into a caller's fixed-width slab, arena.h). A slot is 8 bytes: 32
 * bits of the hash (to skip most non-matching keys without touching the
 * slab) and the value. The caller owns the keys and says, through eq, when a
 * value's key is the one sought, so one table type serves string ids and
 * fixed-width keys alike. No deletion: entities are superseded or voided in
 * place, never removed one by one, which keeps probing simple.
 *
 * struct idmap: NUL-terminated ids (encounter_id, member_id, ...) to dense
 * numbers 0, 1, 2, ... in order of first sight, each id stored once, in
 * chunks of 4 KiB growing to 1 MiB, and found again by its number. The numbers index the
 * families' slabs. An id is compared byte for byte, never by hash alone, so
 * two different ids never share a number (no collision policy is needed).
 * Capacity: 2^32 - 1 ids and about 16 GiB of id bytes per map; beyond that the
 * process aborts like on out-of-memory (xalloc.h).
 */
#ifndef QS_HASHMAP_H
#define QS_HASHMAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define TABLE_NONE UINT32_MAX /* no such value */

struct table {
	uint64_t *slots; /* 0: empty; else hash tag << 32 | (value + 1) */
	size_t cap;      /* power of two, or 0 */
	size_t len;
};

/* A 64-bit hash of two words (fixed-width keys). */
static inline uint64_t hash_words(uint64_t a, uint64_t b)
{
	uint64_t h = (a ^ 0x9e3779b97f4a7c15ULL) * 0xbf58476d1ce4e5b9ULL;
	h = (h ^ (h >> 31) ^ b) * 0x94d049bb133111ebULL;
	return h ^ (h >> 29);
}

static inline uint32_t table_tag(uint64_t h)
{
	return (uint32_t)(h >> 32) | 1u; /* never 0, so a slot with a value is never 0 */
}

/* The value under hash h for which eq(ctx, value) is true, or TABLE_NONE. */
static inline uint32_t table_find(const struct table *t, uint64_t h, bool (*eq)(const void *ctx, uint32_t value),
				  const void *ctx)
{
	if (!t->cap)
		return TABLE_NONE;
	uint32_t tag = table_tag(h);
	size_t mask = t->cap - 1;
	for (size_t i = tag & mask;; i = (i + 1) & mask) {
		uint64_t s = t->slots[i];
		if (!s)
			return TABLE_NONE;
		if ((uint32_t)(s >> 32) == tag && eq(ctx, (uint32_t)s - 1))
			return (uint32_t)s - 1;
	}
}

/* Adds value under hash h; the caller has checked that its key is absent. Aborts on OOM. */
void table_insert(struct table *t, uint64_t h, uint32_t value);
void table_free(struct table *t);

struct idmap {
	struct table index;
	uint32_t *refs; /* number -> where its id is in chunks: chunk << 18 | offset / 4 */
	uint32_t len, cap;
	char **chunks;
	uint32_t nchunks, chunks_cap;
	uint32_t used; /* bytes used in the last chunk */
};

/* The number of id, or TABLE_NONE if it has none. */
uint32_t idmap_find(const struct idmap *m, const char *id);
/* The number of id, given on first sight (then *added is set, if not NULL). Aborts on OOM. */
uint32_t idmap_add(struct idmap *m, const char *id, bool *added);
/*
 * The same, when hint may already be id's number (the one an entity held for
 * the version before): one string comparison instead of a lookup when it is.
 */
uint32_t idmap_add_hint(struct idmap *m, const char *id, uint32_t hint);
/* The id of a number idmap_add returned; borrowed until idmap_free. */
static inline const char *idmap_str(const struct idmap *m, uint32_t n)
{
	uint32_t ref = m->refs[n];
	return m->chunks[ref >> 18] + (size_t)(ref & 0x3ffff) * 4;
}
void idmap_free(struct idmap *m);

/*
 * struct keymap: ids that are never shown again (delivery_id, member
 * event_id) to dense numbers like an idmap's, holding only a 96-bit hash of
 * each id: a 16-byte slot per id (at a load between 3/8 and 3/4), no id
 * bytes and no reference, and one memory access per lookup where an idmap
 * needs three (slot, reference, id bytes) and a string comparison.
 *
 * Collision policy: two ids with the same 96-bit key get the same number, so
 * the second one's events supersede the first one's record, which then counts
 * wrongly. This is accepted, not detected: for n ids in one map the chance
 * that any two collide is about n^2 / 2^97, 6e-14 for 10^8 ids (a partition's
 * records over several years), far below the rate of undetected hardware
 * memory errors. The hash is not keyed, so it is no defence against a
 * producer that crafts colliding ids; such a producer can void any record
 * anyway.
 */
struct keymap_key {
	uint64_t hi; /* also picks the slot */
	uint32_t lo;
};

struct keymap_slot; /* hashmap.c */

struct keymap {
	struct keymap_slot *slots;
	size_t cap; /* power of two, or 0 */
	uint32_t len;
};

/* The 96-bit key of a NUL-terminated id. */
struct keymap_key keymap_key(const char *id);
/* The number of key, given on first sight (then *added is set, if not NULL). Aborts on OOM. */
uint32_t keymap_add(struct keymap *m, struct keymap_key key, bool *added);
void keymap_free(struct keymap *m);

#endif
