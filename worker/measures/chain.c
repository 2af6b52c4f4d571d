/*
 * chain.c: encounter chains as a functional graph with cached roots (see
 * chain.h). A node is record_size bytes followed by its encounter_id, so the
 * index key and the chain's root name need no copy of their own.
 */
#include "chain.h"

#include <string.h>

static const char *node_id(const struct chains *cs, const struct chain_record *n)
{
	return (const char *)n + cs->record_size;
}

struct chain_record *chains_record(const struct chains *cs, const char *encounter_id)
{
	struct chain_record *n = hashmap_get(&cs->nodes, encounter_id);
	return n && n->present ? n : NULL;
}

/* The node of id, created (not present, no edge, no chain) on first sight. */
static struct chain_record *node(struct chains *cs, struct arena *arena, const char *id)
{
	struct chain_record *n = hashmap_get(&cs->nodes, id);
	if (!n) {
		size_t len = strlen(id) + 1;
		n = arena_alloc(arena, cs->record_size + len);
		memcpy((char *)n + cs->record_size, id, len);
		hashmap_put(&cs->nodes, node_id(cs, n), n);
	}
	return n;
}

/* A new chain rooted at root: a recycled one if any, zeroed like a fresh one. */
static struct chain *chain_new(struct chains *cs, struct arena *arena, struct chain_record *root)
{
	struct chain *c = cs->spare;
	if (c) {
		cs->spare = c->next_spare;
		memset(c, 0, cs->chain_size);
	} else {
		c = arena_alloc(arena, cs->chain_size);
	}
	c->root = node_id(cs, root);
	c->node = root;
	root->chain = c;
	return c;
}

/* r or the first of its later siblings that is not `skip`. */
static struct chain_record *other(struct chain_record *r, const struct chain_record *skip)
{
	while (r && r == skip)
		r = r->sibling;
	return r;
}

/*
 * The node after n in a depth-first walk of top's in-tree along the reverse
 * edges, NULL at the end. No stack: the way back up is each node's out-edge.
 * On a cycle, top is a child of its predecessor; skipping it there ends the
 * walk instead of going round.
 */
static struct chain_record *walk_next(const struct chain_record *top, const struct chain_record *n)
{
	struct chain_record *c = other(n->children, top);
	if (c)
		return c;
	for (; n != top; n = n->parent) {
		c = other(n->sibling, top);
		if (c)
			return c;
	}
	return NULL;
}

static void unlink_child(struct chain_record *parent, struct chain_record *r)
{
	struct chain_record **p = &parent->children;
	while (*p != r)
		p = &(*p)->sibling;
	*p = r->sibling;
	r->sibling = NULL;
}

void chains_begin(struct chains *cs, struct arena *arena, const struct qs_encounter *e, struct chain_change *ch)
{
	struct chain_record *x = node(cs, arena, e->encounter_id);
	struct chain_record *named = NULL;
	if (e->frequency != QS_FREQ_ORIGINAL) {
		bool fresh = !hashmap_get(&cs->nodes, e->original_encounter_id);
		named = node(cs, arena, e->original_encounter_id);
		if (fresh && named != x)
			chain_new(cs, arena, named); /* a placeholder roots the chain of its missing original */
	}
	ch->record = x;
	ch->from = x->chain;
	ch->named = named;
	ch->moves = !x->chain || x->parent != named;
	if (!ch->moves)
		ch->to = ch->from;
	else if (!named)
		ch->to = ch->from && ch->from->node == x ? ch->from : NULL;
	else
		ch->to = named->chain; /* NULL only for a new id naming itself */
}

struct chain_record *chains_commit(struct chains *cs, struct arena *arena, struct chain_change *ch,
				   const struct qs_encounter *e, int64_t offset)
{
	struct chain_record *x = ch->record, *named = ch->named;
	if (!x->present) {
		x->present = true;
		cs->records++;
	}
	x->offset = offset;
	x->frequency = e->frequency;
	if (!ch->moves)
		return x;

	if (x->parent)
		unlink_child(x->parent, x);
	x->parent = named;
	if (named) {
		x->sibling = named->children;
		named->children = x;
	}
	/*
	 * Every node whose root may change is in x's in-tree (its path to a root
	 * runs through x). Clearing their cached root marks them: the node x now
	 * names is marked exactly when the new edge closes a cycle through x.
	 */
	for (struct chain_record *n = x; n; n = walk_next(x, n))
		n->chain = NULL;
	struct chain *c = named ? named->chain : NULL;
	if (!c) {
		/* x is a root (an ORIGINAL) or on the new cycle, whose smallest id is the root. */
		struct chain_record *root = x;
		if (named)
			for (struct chain_record *n = named; n != x; n = n->parent)
				if (strcmp(node_id(cs, n), node_id(cs, root)) < 0)
					root = n;
		c = ch->from && ch->from->node == root ? ch->from : chain_new(cs, arena, root);
	}
	for (struct chain_record *n = x; n; n = walk_next(x, n))
		n->chain = c;
	ch->to = c;
	return x;
}

void chains_end(struct chains *cs, struct chain_change *ch)
{
	struct chain *from = ch->from;
	if (from && from != ch->to && from->node->chain != from) {
		from->next_spare = cs->spare;
		cs->spare = from;
	}
}

bool chain_current(const struct chain *c, const struct chain_record **original,
		   const struct chain_record **content)
{
	*original = *content = NULL;
	const struct chain_record *top = c->node, *replacement = NULL;
	if (top->chain != c)
		return true; /* emptied: its root now names another record */
	for (const struct chain_record *r = top; r; r = walk_next(top, r)) {
		if (!r->present)
			continue; /* the placeholder of a missing original */
		if (r->frequency == QS_FREQ_VOID)
			return false; /* a voided encounter counts nowhere */
		if (r->frequency == QS_FREQ_REPLACEMENT && (!replacement || r->offset > replacement->offset))
			replacement = r;
	}
	/* Only a root can be an ORIGINAL: an ORIGINAL has no out-edge. */
	const struct chain_record *o = top->present && top->frequency == QS_FREQ_ORIGINAL ? top : NULL;
	*original = o;
	*content = replacement ? replacement : o;
	return true;
}

void chains_free(struct chains *cs)
{
	hashmap_free(&cs->nodes);
}
