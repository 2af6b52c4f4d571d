/*
 * chain.c: encounter chain bookkeeping shared by the encounter families (see
 * chain.h). Records are found by encounter_id and chains by their original's
 * id; a record that changes what it names moves to the new chain, and a
 * record's arrival gathers the records that named it before it came.
 */
#include "chain.h"

struct chain_record *chains_record(const struct chains *cs, const char *encounter_id)
{
	return hashmap_get(&cs->records, encounter_id);
}

struct chain *chains_chain_for(struct chains *cs, struct arena *arena, const struct qs_encounter *e)
{
	const char *root = e->encounter_id;
	if (e->frequency != QS_FREQ_ORIGINAL) {
		const struct chain_record *named = hashmap_get(&cs->records, e->original_encounter_id);
		root = named ? named->chain->root : e->original_encounter_id;
	}
	struct chain *c = hashmap_get(&cs->chains, root);
	if (!c) {
		c = arena_alloc(arena, cs->chain_size);
		c->root = arena_strdup(arena, root);
		hashmap_put(&cs->chains, c->root, c);
	}
	return c;
}

static void unlink_record(struct chain *c, struct chain_record *r)
{
	struct chain_record **p = &c->records;
	while (*p && *p != r)
		p = &(*p)->next;
	if (*p)
		*p = r->next;
	r->next = NULL;
}

/* Moves every record of `from` into `to`; `from`'s root then finds `to`. */
static void merge(struct chains *cs, struct chain *from, struct chain *to)
{
	while (from->records) {
		struct chain_record *r = from->records;
		from->records = r->next;
		r->chain = to;
		r->next = to->records;
		to->records = r;
	}
	hashmap_put(&cs->chains, from->root, to);
}

struct chain_record *chains_put(struct chains *cs, struct arena *arena, struct chain_record *r,
				const struct qs_encounter *e, int64_t offset, struct chain *c,
				struct chain **absorbed)
{
	*absorbed = NULL;
	if (!r) {
		/* A chain rooted at a new record's id holds the records that named it before it came. */
		struct chain *waiting = hashmap_get(&cs->chains, e->encounter_id);
		if (waiting && waiting != c) {
			merge(cs, waiting, c);
			*absorbed = waiting;
		}
		r = arena_alloc(arena, cs->record_size);
		hashmap_put(&cs->records, arena_strdup(arena, e->encounter_id), r);
	}
	if (r->chain != c) {
		if (r->chain)
			unlink_record(r->chain, r);
		r->next = c->records;
		c->records = r;
		r->chain = c;
	}
	r->offset = offset;
	r->frequency = e->frequency;
	return r;
}

bool chain_current(const struct chain *c, const struct chain_record **original,
		   const struct chain_record **content)
{
	const struct chain_record *o = NULL, *replacement = NULL;
	*original = *content = NULL;
	for (const struct chain_record *r = c->records; r; r = r->next) {
		switch (r->frequency) {
		case QS_FREQ_VOID:
			return false; /* a voided encounter counts nowhere */
		case QS_FREQ_ORIGINAL:
			o = r;
			break;
		case QS_FREQ_REPLACEMENT:
			if (!replacement || r->offset > replacement->offset)
				replacement = r;
			break;
		}
	}
	*original = o;
	*content = replacement ? replacement : o;
	return true;
}

void chains_free(struct chains *cs)
{
	hashmap_free(&cs->records);
	hashmap_free(&cs->chains);
}
