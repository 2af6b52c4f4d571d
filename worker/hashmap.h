/*
 * hashmap.h: an open-addressing map from NUL-terminated string keys to
 * pointers. Keys and values are borrowed: callers keep them alive (usually in
 * an arena) for the map's lifetime. No deletion: entities are superseded or
 * voided in place, never removed one by one, which keeps probing simple.
 */
#ifndef QS_HASHMAP_H
#define QS_HASHMAP_H

#include <stddef.h>
#include <stdint.h>

struct hashmap {
	struct hashmap_slot *slots;
	size_t cap; /* power of two, or 0 */
	size_t len;
};

/* FNV-1a over a string: also used where a fixed-size key is hashed. */
uint64_t hashmap_hash(const void *data, size_t len);
/* The value stored under key, or NULL. */
void *hashmap_get(const struct hashmap *m, const char *key);
/* Stores value under key (borrowed), replacing any previous value. Aborts on OOM. */
void hashmap_put(struct hashmap *m, const char *key, void *value);
/* Frees the slot table only (keys and values belong to the caller). */
void hashmap_free(struct hashmap *m);
/* Bytes held by the slot table, for the memory gauge. */
size_t hashmap_bytes(const struct hashmap *m);

#endif
