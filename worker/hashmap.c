/*
 * hashmap.c: linear probing grown at 3/4 load: tables of 32-bit values, ids
 * stored once, and ids known by a 96-bit key (see hashmap.h).
 */
#include "hashmap.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "xalloc.h"

#define ID_CHUNK (1u << 20) /* bytes per id chunk at most: offsets in 4-byte units fit 18 bits */
#define ID_CHUNKS_MAX (1u << 14)

/* Chunk k's size: 4 KiB doubling to 1 MiB, so a partition with few ids holds little. */
static uint32_t chunk_size(uint32_t k)
{
	return k >= 8 ? ID_CHUNK : 4096u << k;
}

/* A 64-bit hash of len bytes, eight at a time (ids are short, and hashed once per event). */
static uint64_t hash_bytes(const void *data, size_t len)
{
	const unsigned char *p = data;
	uint64_t h = 0x243f6a8885a308d3ULL ^ len;
	for (; len >= 8; len -= 8, p += 8) {
		uint64_t w;
		memcpy(&w, p, 8);
		h = hash_words(h, w);
	}
	uint64_t w = 0;
	memcpy(&w, p, len);
	return hash_words(h, w);
}

static void place(uint64_t *slots, size_t mask, uint64_t s)
{
	size_t i = (uint32_t)(s >> 32) & mask;
	while (slots[i])
		i = (i + 1) & mask;
	slots[i] = s;
}

void table_insert(struct table *t, uint64_t h, uint32_t value)
{
	if ((t->len + 1) * 4 > t->cap * 3) {
		size_t cap = t->cap ? t->cap * 2 : 64;
		uint64_t *slots = xcalloc(cap, sizeof(*slots), "an index table");
		for (size_t i = 0; i < t->cap; i++)
			if (t->slots[i])
				place(slots, cap - 1, t->slots[i]);
		free(t->slots);
		t->slots = slots;
		t->cap = cap;
	}
	place(t->slots, t->cap - 1, (uint64_t)table_tag(h) << 32 | ((uint64_t)value + 1));
	t->len++;
}

void table_free(struct table *t)
{
	free(t->slots);
	t->slots = NULL;
	t->cap = t->len = 0;
}

struct id_key {
	const struct idmap *m;
	const char *id;
	size_t len;
};

static bool id_eq(const void *ctx, uint32_t n)
{
	const struct id_key *k = ctx;
	return strcmp(idmap_str(k->m, n), k->id) == 0;
}

uint32_t idmap_find(const struct idmap *m, const char *id)
{
	struct id_key k = {m, id, strlen(id)};
	return table_find(&m->index, hash_bytes(id, k.len), id_eq, &k);
}

/* Copies id (len bytes and its NUL) into the chunks; returns its ref. */
static uint32_t store(struct idmap *m, const char *id, size_t len)
{
	size_t need = (len + 1 + 3) & ~(size_t)3;
	if (!m->nchunks || m->used + need > chunk_size(m->nchunks - 1)) {
		if (m->nchunks == ID_CHUNKS_MAX) {
			fprintf(stderr, "qualstream: more than %u chunks of ids in one partition\n", ID_CHUNKS_MAX);
			abort();
		}
		if (m->nchunks == m->chunks_cap) {
			m->chunks_cap = m->chunks_cap ? m->chunks_cap * 2 : 4;
			m->chunks = xrealloc(m->chunks, m->chunks_cap * sizeof(*m->chunks), "the id store");
		}
		m->chunks[m->nchunks] = xmalloc(chunk_size(m->nchunks), "the id store");
		m->nchunks++;
		m->used = 0;
	}
	char *at = m->chunks[m->nchunks - 1] + m->used;
	memcpy(at, id, len + 1);
	memset(at + len + 1, 0, need - len - 1);
	uint32_t ref = (m->nchunks - 1) << 18 | m->used / 4;
	m->used += (uint32_t)need;
	return ref;
}

uint32_t idmap_add(struct idmap *m, const char *id, bool *added)
{
	struct id_key k = {m, id, strlen(id)};
	uint64_t h = hash_bytes(id, k.len);
	uint32_t n = table_find(&m->index, h, id_eq, &k);
	if (added)
		*added = n == TABLE_NONE;
	if (n != TABLE_NONE)
		return n;
	if (m->len == TABLE_NONE) {
		fprintf(stderr, "qualstream: more than %u ids in one partition\n", TABLE_NONE - 1);
		abort();
	}
	if (m->len == m->cap) {
		m->cap = m->cap ? m->cap * 2 : 64;
		m->refs = xrealloc(m->refs, m->cap * sizeof(*m->refs), "the id store");
	}
	m->refs[m->len] = store(m, id, k.len);
	table_insert(&m->index, h, m->len);
	return m->len++;
}

uint32_t idmap_add_hint(struct idmap *m, const char *id, uint32_t hint)
{
	if (hint < m->len && strcmp(idmap_str(m, hint), id) == 0)
		return hint;
	return idmap_add(m, id, NULL);
}

void idmap_free(struct idmap *m)
{
	table_free(&m->index);
	for (uint32_t i = 0; i < m->nchunks; i++)
		free(m->chunks[i]);
	free(m->chunks);
	free(m->refs);
	memset(m, 0, sizeof(*m));
}

struct keymap_slot {
	uint64_t hi;
	uint32_t lo;
	uint32_t value; /* number + 1; 0: empty */
};

struct keymap_key keymap_key(const char *id)
{
	/* Two 64-bit lanes from different seeds over the same words: 96 of their bits are the key. */
	size_t len = strlen(id);
	const unsigned char *p = (const unsigned char *)id;
	uint64_t a = 0x243f6a8885a308d3ULL ^ len, b = 0x13198a2e03707344ULL ^ len;
	for (; len >= 8; len -= 8, p += 8) {
		uint64_t w;
		memcpy(&w, p, 8);
		a = hash_words(a, w);
		b = hash_words(b, w);
	}
	uint64_t w = 0;
	memcpy(&w, p, len);
	return (struct keymap_key){hash_words(a, w), (uint32_t)hash_words(b, w)};
}

static struct keymap_slot *keymap_slot(struct keymap_slot *slots, size_t mask, struct keymap_key key)
{
	size_t i = key.hi & mask;
	while (slots[i].value && (slots[i].hi != key.hi || slots[i].lo != key.lo))
		i = (i + 1) & mask;
	return &slots[i];
}

uint32_t keymap_add(struct keymap *m, struct keymap_key key, bool *added)
{
	if (m->cap) {
		struct keymap_slot *s = keymap_slot(m->slots, m->cap - 1, key);
		if (s->value) {
			if (added)
				*added = false;
			return s->value - 1;
		}
	}
	if (added)
		*added = true;
	if (m->len == TABLE_NONE - 1) {
		fprintf(stderr, "qualstream: more than %u ids in one partition\n", TABLE_NONE - 1);
		abort();
	}
	if (((size_t)m->len + 1) * 4 > m->cap * 3) {
		size_t cap = m->cap ? m->cap * 2 : 64;
		struct keymap_slot *slots = xcalloc(cap, sizeof(*slots), "an id index");
		for (size_t i = 0; i < m->cap; i++)
			if (m->slots[i].value)
				*keymap_slot(slots, cap - 1,
					     (struct keymap_key){m->slots[i].hi, m->slots[i].lo}) = m->slots[i];
		free(m->slots);
		m->slots = slots;
		m->cap = cap;
	}
	*keymap_slot(m->slots, m->cap - 1, key) = (struct keymap_slot){key.hi, key.lo, m->len + 1};
	return m->len++;
}

void keymap_free(struct keymap *m)
{
	free(m->slots);
	memset(m, 0, sizeof(*m));
}
