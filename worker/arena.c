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
			a->total += sizeof(*c) + cap;
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
	a->total = 0;
}
