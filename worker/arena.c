/* arena.c: chunked bump allocator (see arena.h). */
#include "arena.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
		struct arena_chunk *c = malloc(sizeof(*c) + cap);
		if (!c) {
			fprintf(stderr, "qualstream: out of memory (arena chunk of %zu bytes)\n", cap);
			abort();
		}
		c->next = a->head;
		c->size = cap;
		a->head = c;
		a->used = 0;
		a->total += sizeof(*c) + cap;
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

void arena_free(struct arena *a)
{
	struct arena_chunk *c = a->head;
	while (c) {
		struct arena_chunk *next = c->next;
		free(c);
		c = next;
	}
	a->head = NULL;
	a->used = 0;
	a->total = 0;
}
