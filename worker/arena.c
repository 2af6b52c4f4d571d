/* arena.c: chunked bump allocator (see arena.h). */
#include "arena.h"

#include <stdlib.h>
#include <string.h>

#include "xalloc.h"

#define CHUNK_SIZE (256u * 1024u)
#define ALIGN 16u

struct arena_chunk {
	struct arena_chunk *next;
	size_t size;
	_Alignas(16) unsigned char data[];
};

void *arena_alloc(struct arena *a, size_t size)
{
	size = (size + ALIGN - 1) & ~(size_t)(ALIGN - 1);
	if (!a->head || a->used + size > a->head->size) {
		size_t cap = size > CHUNK_SIZE ? size : CHUNK_SIZE;
		struct arena_chunk *c = a->spare;
		if (c && c->size >= cap) {
			a->spare = c->next; /* reuse a chunk arena_clear kept */
		} else {
			c = xmalloc(sizeof(*c) + cap, "an arena chunk");
			c->size = cap;
		}
		c->next = a->head;
		a->head = c;
		a->used = 0;
	}
	void *p = a->head->data + a->used;
	a->used += size;
	memset(p, 0, size);
	return p;
}

char *arena_strdup(struct arena *a, const char *s)
{
	size_t n = strlen(s) + 1;
	return memcpy(arena_alloc(a, n), s, n);
}

void arena_clear(struct arena *a)
{
	while (a->head) {
		struct arena_chunk *c = a->head;
		a->head = c->next;
		c->next = a->spare;
		a->spare = c;
	}
	a->used = 0;
}

void arena_free(struct arena *a)
{
	arena_clear(a);
	struct arena_chunk *c = a->spare;
	while (c) {
		struct arena_chunk *next = c->next;
		free(c);
		c = next;
	}
	a->head = a->spare = NULL;
	a->used = 0;
}

void slab_reserve(struct slab *s, uint32_t n)
{
	while (s->len < n) {
		uint32_t chunk = s->len >> SLAB_SHIFT;
		if (chunk == s->nchunks) {
			if (s->nchunks == s->chunks_cap) {
				s->chunks_cap = s->chunks_cap ? s->chunks_cap * 2 : 16;
				s->chunks = xrealloc(s->chunks, s->chunks_cap * sizeof(*s->chunks), "a slab");
			}
			s->chunks[s->nchunks++] = xcalloc(1u << SLAB_SHIFT, s->width, "a slab chunk");
		}
		/* Chunks are zeroed when allocated and elements never freed one by one: the rest of this chunk is ready. */
		uint32_t end = (chunk + 1) << SLAB_SHIFT;
		s->len = n < end ? n : end;
	}
}

uint32_t slab_push(struct slab *s)
{
	slab_reserve(s, s->len + 1);
	return s->len - 1;
}

void slab_free(struct slab *s)
{
	for (uint32_t i = 0; i < s->nchunks; i++)
		free(s->chunks[i]);
	free(s->chunks);
	*s = (struct slab){.width = s->width};
}
