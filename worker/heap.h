/*
 * heap.h: a binary min-heap of (key, id) entries that knows where each id
 * is, so that an entry can be re-keyed or taken out in O(log n): the timer
 * heap of the alerts (an owed encounter chain waits in it for the day its
 * alert changes). Like libuv's heap-inl.h, but index-based instead of
 * intrusive: ids are the owner's dense numbers (slab indexes, 32 bits), an
 * entry is 8 bytes, and each id's position lives in a slab beside the array.
 *
 * The order is the owner's: less(ctx, a, b) must be a strict total order on
 * the entries held (break ties between equal keys, e.g. by id or by a name,
 * so that what comes out does not depend on the order things went in). The
 * functions are inline so that a constant less is called directly. Growing
 * aborts on OOM (xalloc.h).
 */
#ifndef QS_HEAP_H
#define QS_HEAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "arena.h"
#include "xalloc.h"

struct heap_entry {
	int32_t key; /* what the owner orders by first (the alerts: a day number) */
	uint32_t id; /* the owner's; in the heap at most once */
};

typedef bool heap_less_fn(const void *ctx, struct heap_entry a, struct heap_entry b);

struct heap {
	struct heap_entry *items; /* items[0] is the least */
	size_t len, cap;
	struct slab pos; /* uint32_t by id: its position in items + 1; 0 (or beyond len) when absent */
};

static inline void heap_init(struct heap *h)
{
	*h = (struct heap){.pos = SLAB_OF(uint32_t)};
}

static inline void heap_free(struct heap *h)
{
	free(h->items);
	slab_free(&h->pos);
	heap_init(h);
}

/* The least entry, or NULL when the heap is empty; borrowed until the heap changes. */
static inline const struct heap_entry *heap_min(const struct heap *h)
{
	return h->len ? &h->items[0] : NULL;
}

static inline uint32_t *heap_pos(const struct heap *h, uint32_t id)
{
	return id < h->pos.len ? (uint32_t *)slab_at(&h->pos, id) : NULL;
}

static inline bool heap_contains(const struct heap *h, uint32_t id)
{
	const uint32_t *pos = heap_pos(h, id);
	return pos && *pos;
}

static inline void heap_place(struct heap *h, size_t i, struct heap_entry e)
{
	h->items[i] = e;
	*heap_pos(h, e.id) = (uint32_t)i + 1;
}

/* Moves the entry at i up or down to where the order puts it. */
static inline void heap_sift(struct heap *h, size_t i, heap_less_fn *less, const void *ctx)
{
	struct heap_entry e = h->items[i];
	while (i > 0 && less(ctx, e, h->items[(i - 1) / 2])) {
		heap_place(h, i, h->items[(i - 1) / 2]);
		i = (i - 1) / 2;
	}
	for (;;) {
		size_t l = 2 * i + 1, m = i;
		struct heap_entry least = e;
		if (l < h->len && less(ctx, h->items[l], least))
			least = h->items[m = l];
		if (l + 1 < h->len && less(ctx, h->items[l + 1], least))
			least = h->items[m = l + 1];
		if (m == i)
			break;
		heap_place(h, i, least);
		i = m;
	}
	heap_place(h, i, e);
}

/* Puts id in the heap with key, or gives it that key if it is there. */
static inline void heap_set(struct heap *h, uint32_t id, int32_t key, heap_less_fn *less, const void *ctx)
{
	uint32_t *pos = heap_pos(h, id);
	if (!pos) {
		slab_reserve(&h->pos, id + 1);
		pos = heap_pos(h, id);
	}
	if (!*pos) {
		if (h->len == h->cap) {
			h->cap = h->cap ? h->cap * 2 : 256;
			h->items = xrealloc(h->items, h->cap * sizeof(*h->items), "a heap");
		}
		heap_place(h, h->len++, (struct heap_entry){key, id});
	} else {
		h->items[*pos - 1].key = key;
	}
	heap_sift(h, *pos - 1, less, ctx);
}

/* Takes id out of the heap; nothing if it is not there. */
static inline void heap_remove(struct heap *h, uint32_t id, heap_less_fn *less, const void *ctx)
{
	uint32_t *pos = heap_pos(h, id);
	if (!pos || !*pos)
		return;
	size_t i = *pos - 1;
	struct heap_entry last = h->items[--h->len];
	*pos = 0;
	if (i < h->len) {
		heap_place(h, i, last);
		heap_sift(h, i, less, ctx);
	}
}

#endif
