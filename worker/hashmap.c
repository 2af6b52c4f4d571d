/* hashmap.c: linear probing, grown at 70% load (see hashmap.h). */
#include "hashmap.h"

#include <stdlib.h>
#include <string.h>

#include "xalloc.h"

struct hashmap_slot {
	uint64_t hash;
	const char *key; /* NULL: empty slot */
	void *value;
};

uint64_t hashmap_hash(const void *data, size_t len)
{
	const unsigned char *p = data;
	uint64_t h = 1469598103934665603ULL;
	for (size_t i = 0; i < len; i++) {
		h ^= p[i];
		h *= 1099511628211ULL;
	}
	return h;
}

static struct hashmap_slot *find(const struct hashmap *m, const char *key, uint64_t h)
{
	size_t mask = m->cap - 1;
	for (size_t i = h & mask;; i = (i + 1) & mask) {
		struct hashmap_slot *s = &m->slots[i];
		if (!s->key || (s->hash == h && strcmp(s->key, key) == 0))
			return s;
	}
}

static void grow(struct hashmap *m)
{
	size_t cap = m->cap ? m->cap * 2 : 64;
	struct hashmap_slot *old = m->slots;
	size_t old_cap = m->cap;
	m->slots = xcalloc(cap, sizeof(*m->slots), "a hash table");
	m->cap = cap;
	for (size_t i = 0; i < old_cap; i++)
		if (old[i].key)
			*find(m, old[i].key, old[i].hash) = old[i];
	free(old);
}

void *hashmap_get(const struct hashmap *m, const char *key)
{
	if (!m->cap)
		return NULL;
	struct hashmap_slot *s = find(m, key, hashmap_hash(key, strlen(key)));
	return s->key ? s->value : NULL;
}

void hashmap_put(struct hashmap *m, const char *key, void *value)
{
	if ((m->len + 1) * 10 > m->cap * 7)
		grow(m);
	uint64_t h = hashmap_hash(key, strlen(key));
	struct hashmap_slot *s = find(m, key, h);
	if (!s->key) {
		s->key = key;
		s->hash = h;
		m->len++;
	}
	s->value = value;
}

void hashmap_free(struct hashmap *m)
{
	free(m->slots);
	m->slots = NULL;
	m->cap = m->len = 0;
}

size_t hashmap_bytes(const struct hashmap *m)
{
	return m->cap * sizeof(struct hashmap_slot);
}
