/*
 * arena.h: a bump allocator in large chunks. Entities of one partition live
 * in one arena and are freed together when the partition is revoked, so the
 * hot path costs a pointer bump and a chunk allocation every few thousand
 * entities, never a malloc per event.
 */
#ifndef QS_ARENA_H
#define QS_ARENA_H

#include <stddef.h>

struct arena {
	struct arena_chunk *head;
	struct arena_chunk *spare; /* emptied by arena_clear, reused before allocating */
	size_t used;  /* bytes used in head */
	size_t total; /* bytes allocated in all chunks, for the memory gauge */
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

#endif
