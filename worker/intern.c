/* intern.c: string interning (see intern.h), an idmap. */
#include "intern.h"

uint32_t intern_id(struct intern *in, const char *s)
{
	return idmap_add(&in->map, s, NULL);
}

uint32_t intern_id_hint(struct intern *in, const char *s, uint32_t hint)
{
	return idmap_add_hint(&in->map, s, hint);
}

const char *intern_str(const struct intern *in, uint32_t id)
{
	return id < in->map.len ? idmap_str(&in->map, id) : "";
}

void intern_free(struct intern *in)
{
	idmap_free(&in->map);
}
