/*
 * test_heap.c: worker/heap.h against a reference that shares nothing with
 * it: the set of (key, id) entries held, kept in a plain array and sorted
 * with qsort whenever the test asks what the least entry is. Random inserts,
 * re-keys, removals of present and absent ids and pops, then a drain that
 * must come out in the reference's sorted order. Keys are drawn from a small
 * range so that ties, broken by a name as cw13.c breaks them, are common.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "heap.h"
#include "suites.h"
#include "xalloc.h"

#define IDS 128

/* Ties break by a name that does not sort like the ids, as the alerts' timers break them by root id. */
struct names {
	char name[IDS][8];
};

static bool less(const void *ctx, struct heap_entry a, struct heap_entry b)
{
	const struct names *n = ctx;
	return a.key != b.key ? a.key < b.key : strcmp(n->name[a.id], n->name[b.id]) < 0;
}

static const struct names *sort_names;

static int by_key_then_name(const void *pa, const void *pb)
{
	const struct heap_entry *a = pa, *b = pb;
	if (a->key != b->key)
		return a->key < b->key ? -1 : 1;
	return strcmp(sort_names->name[a->id], sort_names->name[b->id]);
}

/* The reference: key by id, and which ids are held. */
struct model {
	int32_t key[IDS];
	bool held[IDS];
	size_t len;
};

/* The least held entry by sorting all of them, or false when none is held. */
static bool model_min(const struct model *m, const struct names *n, struct heap_entry *out)
{
	struct heap_entry all[IDS];
	size_t len = 0;
	for (uint32_t id = 0; id < IDS; id++)
		if (m->held[id])
			all[len++] = (struct heap_entry){m->key[id], id};
	if (!len)
		return false;
	sort_names = n;
	qsort(all, len, sizeof(all[0]), by_key_then_name);
	*out = all[0];
	return true;
}

static void check_same(const struct heap *h, const struct model *m, const struct names *n, int step)
{
	/* One assertion per step: Check's assertions are slow enough to dominate inside the loop. */
	uint32_t wrong = IDS;
	for (uint32_t id = 0; id < IDS && wrong == IDS; id++)
		if (heap_contains(h, id) != m->held[id])
			wrong = id;
	ck_assert_msg(h->len == m->len && wrong == IDS, "step %d: %zu held, want %zu; id %u", step, h->len, m->len,
		      wrong);
	struct heap_entry want;
	const struct heap_entry *got = heap_min(h);
	bool any = model_min(m, n, &want);
	if (!got || !any || got->id != want.id || got->key != want.key)
		ck_assert_msg(!got && !any, "step %d: least (%d, %u), want (%d, %u)", step, got ? got->key : -1,
			      got ? got->id : 0, any ? want.key : -1, any ? want.id : 0);
}

static struct names *make_names(unsigned seed)
{
	struct names *n = xmalloc(sizeof(*n), "the names");
	srand(seed);
	for (uint32_t id = 0; id < IDS; id++)
		snprintf(n->name[id], sizeof(n->name[id]), "%c%03u", 'a' + rand() % 26, id); /* unique: a total order */
	return n;
}

START_TEST(random_operations_match_sorting)
{
	for (unsigned seed = 1; seed <= 10; seed++) {
		struct names *n = make_names(seed);
		struct heap h;
		heap_init(&h);
		struct model m = {0};
		for (int step = 0; step < 2000; step++) {
			uint32_t id = (uint32_t)rand() % IDS;
			int32_t key = rand() % 40 - 20;
			int op = rand() % 10;
			if (op < 5) { /* insert or re-key */
				heap_set(&h, id, key, less, n);
				m.len += !m.held[id];
				m.held[id] = true;
				m.key[id] = key;
			} else if (op < 8) { /* remove, present or not */
				heap_remove(&h, id, less, n);
				m.len -= m.held[id];
				m.held[id] = false;
			} else if (heap_min(&h)) { /* pop the least */
				uint32_t least = heap_min(&h)->id;
				heap_remove(&h, least, less, n);
				m.held[least] = false;
				m.len--;
			}
			check_same(&h, &m, n, step);
		}
		/* Drained one by one, the heap gives the reference's sorted order. */
		for (struct heap_entry want; model_min(&m, n, &want);) {
			const struct heap_entry *got = heap_min(&h);
			ck_assert_ptr_nonnull(got);
			ck_assert(got->id == want.id && got->key == want.key);
			heap_remove(&h, want.id, less, n);
			m.held[want.id] = false;
			m.len--;
		}
		ck_assert_ptr_null(heap_min(&h));
		heap_free(&h);
		free(n);
	}
}
END_TEST

START_TEST(absent_ids_and_reuse)
{
	struct names *n = make_names(7);
	struct heap h;
	heap_init(&h);
	heap_remove(&h, 5, less, n); /* never seen: beyond the positions held */
	ck_assert(!heap_contains(&h, 5));
	ck_assert_ptr_null(heap_min(&h));
	heap_set(&h, 3, 10, less, n);
	heap_set(&h, 3, 4, less, n); /* re-keyed, not added twice */
	ck_assert_uint_eq(h.len, 1);
	ck_assert_int_eq(heap_min(&h)->key, 4);
	heap_remove(&h, 3, less, n);
	heap_remove(&h, 3, less, n); /* removed twice: the second does nothing */
	ck_assert_uint_eq(h.len, 0);
	heap_set(&h, 3, 1, less, n); /* and it can come back */
	ck_assert(heap_contains(&h, 3) && heap_min(&h)->id == 3);
	heap_free(&h);
	ck_assert(!heap_contains(&h, 3));
	free(n);
}
END_TEST

Suite *heap_suite(void)
{
	Suite *s = suite_create("heap");
	TCase *tc = tcase_create("heap");
	tcase_add_test(tc, random_operations_match_sorting);
	tcase_add_test(tc, absent_ids_and_reuse);
	suite_add_tcase(s, tc);
	return s;
}
