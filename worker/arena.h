/*
 * arena.h: a bump allocator in large chunks. Entities of one partition live
 * in one arena and are freed together when the partition is revoked, so the
 * hot path costs a pointer bump and a chunk allocation every few thousand
 * entities, never a malloc per event.
 */
#ifndef QS_ARENA_H
#define QS_ARENA_H

#include <stddef.h>
#include <stdint.h>

struct arena {
	struct arena_chunk *head;
	struct arena_chunk *spare; /* emptied by arena_clear, reused before allocating */
	size_t used;               /* bytes used in head */
};

/* Returns zeroed memory aligned for any object, owned by the arena. Aborts on OOM. */
void *arena_alloc(struct arena *a, size_t size);
/* Copies a NUL-terminated string into the arena. */
char *arena_strdup(struct arena *a, const char *s);
/*
 * Empties the arena but keeps its chunks for reuse, so a buffer that is filled
 * and emptied in cycles (the pending output between flushes) stops allocating
 * once it has reached its high-water mark. Pointers into it die.
 */
void arena_clear(struct arena *a);
/* Frees every chunk; the arena is empty and reusable afterwards. */
void arena_free(struct arena *a);

/*
 * A slab: fixed-width elements numbered 0, 1, 2, ..., in chunks of
 * 2^SLAB_SHIFT elements, so that an entity is a 32-bit number instead of a
 * pointer and growing never moves (or copies) what is already held. Elements
 * are zeroed when they come into being; a family's slab indexed by the
 * numbers of an idmap (hashmap.h) holds one element per id.
 */
#define SLAB_SHIFT 8 /* 256 elements: a partition with few entities holds little */

struct slab {
	unsigned char **chunks;
	uint32_t len; /* elements 0 .. len - 1 exist */
	uint32_t nchunks, chunks_cap;
	uint32_t width; /* bytes per element */
};

#define SLAB_OF(type) ((struct slab){.width = sizeof(type)})

static inline void *slab_at(const struct slab *s, uint32_t i)
{
	return s->chunks[i >> SLAB_SHIFT] + (size_t)(i & ((1u << SLAB_SHIFT) - 1)) * s->width;
}

/* Makes elements 0 .. n - 1 exist (the new ones zeroed). Aborts on OOM. */
void slab_reserve(struct slab *s, uint32_t n);
/* A new zeroed element at the end; returns its number. */
uint32_t slab_push(struct slab *s);
/* Frees every chunk; the slab keeps its width and is empty. */
void slab_free(struct slab *s);

#endif
