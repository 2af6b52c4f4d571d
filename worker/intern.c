/* intern.c: string interning (see intern.h). */
#include "intern.h"

#include <stdlib.h>

#include "xalloc.h"

uint32_t intern_id(struct intern *in, const char *s)
{
	uintptr_t v = (uintptr_t)hashmap_get(&in->map, s);
	if (v)
		return (uint32_t)(v - 1);
	if (in->len == in->cap) {
		uint32_t cap = in->cap ? in->cap * 2 : 64;
		in->strings = xrealloc(in->strings, cap * sizeof(*in->strings), "the interner");
		in->cap = cap;
	}
	const char *copy = arena_strdup(&in->arena, s);
	in->strings[in->len] = copy;
	hashmap_put(&in->map, copy, (void *)(uintptr_t)(in->len + 1));
	return in->len++;
}

const char *intern_str(const struct intern *in, uint32_t id)
{
	return id < in->len ? in->strings[id] : "";
}

void intern_free(struct intern *in)
{
	hashmap_free(&in->map);
	arena_free(&in->arena);
	free(in->strings);
	in->strings = NULL;
	in->len = in->cap = 0;
}
