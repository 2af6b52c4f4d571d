/*
 * chain.c: encounter chains as a functional graph with cached roots (see
 * chain.h). Nodes and chains are slab elements addressed by number.
 */
#include "chain.h"

#include <string.h>

#include "dates.h"

void chains_init(struct chains *cs)
{
	memset(cs, 0, sizeof(*cs));
	cs->nodes = SLAB_OF(struct chain_node);
	cs->roots = SLAB_OF(uint32_t);
	cs->spare = CHAIN_NIL;
}

static uint32_t *root_of(const struct chains *cs, uint32_t c)
{
	return slab_at(&cs->roots, c);
}

/* The node of id, created (not present, no edge, no chain) on first sight. */
static uint32_t node(struct chains *cs, const char *id, bool *fresh)
{
	uint32_t n = idmap_add(&cs->ids, id, fresh);
	if (n >= cs->nodes.len) {
		slab_reserve(&cs->nodes, n + 1);
		struct chain_node *x = chains_node(cs, n);
		x->parent = x->children = x->sibling = x->chain = CHAIN_NIL;
	}
	return n;
}

/* A new chain rooted at root: a recycled one if any. */
static uint32_t chain_new(struct chains *cs, uint32_t root)
{
	uint32_t c = cs->spare;
	if (c != CHAIN_NIL)
		cs->spare = *root_of(cs, c);
	else
		c = slab_push(&cs->roots);
	*root_of(cs, c) = root;
	chains_node(cs, root)->chain = c;
	return c;
}

/* r or the first of its later siblings that is not `skip`. */
static uint32_t other(const struct chains *cs, uint32_t r, uint32_t skip)
{
	while (r != CHAIN_NIL && r == skip)
		r = chains_node(cs, r)->sibling;
	return r;
}

/*
 * The node after n in a depth-first walk of top's in-tree along the reverse
 * edges, CHAIN_NIL at the end. No stack: the way back up is each node's
 * out-edge. On a cycle, top is a child of its predecessor; skipping it there
 * ends the walk instead of going round.
 */
static uint32_t walk_next(const struct chains *cs, uint32_t top, uint32_t n)
{
	uint32_t c = other(cs, chains_node(cs, n)->children, top);
	if (c != CHAIN_NIL)
		return c;
	for (; n != top; n = chains_node(cs, n)->parent) {
		c = other(cs, chains_node(cs, n)->sibling, top);
		if (c != CHAIN_NIL)
			return c;
	}
	return CHAIN_NIL;
}

static void unlink_child(struct chains *cs, uint32_t parent, uint32_t r)
{
	uint32_t *p = &chains_node(cs, parent)->children;
	while (*p != r)
		p = &chains_node(cs, *p)->sibling;
	struct chain_node *x = chains_node(cs, r);
	*p = x->sibling;
	x->sibling = CHAIN_NIL;
}

void chains_begin(struct chains *cs, const struct qs_encounter *e, struct chain_change *ch)
{
	uint32_t x = node(cs, e->encounter_id, NULL);
	uint32_t named = CHAIN_NIL;
	if (e->frequency != QS_FREQ_ORIGINAL) {
		bool fresh;
		named = node(cs, e->original_encounter_id, &fresh);
		if (fresh)
			chain_new(cs, named); /* a placeholder roots the chain of its missing original */
	}
	const struct chain_node *xn = chains_node(cs, x);
	ch->record = x;
	ch->from = xn->chain;
	ch->named = named;
	ch->moves = xn->chain == CHAIN_NIL || xn->parent != named;
	if (!ch->moves)
		ch->to = ch->from;
	else if (named == CHAIN_NIL)
		ch->to = ch->from != CHAIN_NIL && chains_root(cs, ch->from) == x ? ch->from : CHAIN_NIL;
	else
		ch->to = chains_node(cs, named)->chain; /* CHAIN_NIL only for a new id naming itself */
}

void chains_commit(struct chains *cs, struct chain_change *ch, const struct qs_encounter *e, int64_t offset,
		   uint32_t plan, uint32_t member)
{
	uint32_t x = ch->record, named = ch->named;
	struct chain_node *xn = chains_node(cs, x);
	if (!xn->present) {
		xn->present = true;
		cs->records++;
	}
	xn->offset = offset;
	xn->frequency = (uint8_t)e->frequency;
	xn->source = (uint8_t)e->source;
	xn->plan = plan;
	xn->member = member;
	xn->service_to = e->service_to;
	xn->submitted_day = e->submitted_at == QS_NO_TS ? QS_NO_DATE : dates_day_of_ms(e->submitted_at);
	xn->ed_visit = e->ed_visit;
	if (!ch->moves)
		return;

	if (xn->parent != CHAIN_NIL)
		unlink_child(cs, xn->parent, x);
	xn->parent = named;
	if (named != CHAIN_NIL) {
		struct chain_node *nn = chains_node(cs, named);
		xn->sibling = nn->children;
		nn->children = x;
	}
	/*
	 * Every node whose root may change is in x's in-tree (its path to a root
	 * runs through x). Clearing their cached root marks them: the node x now
	 * names is marked exactly when the new edge closes a cycle through x.
	 */
	for (uint32_t n = x; n != CHAIN_NIL; n = walk_next(cs, x, n))
		chains_node(cs, n)->chain = CHAIN_NIL;
	uint32_t c = named != CHAIN_NIL ? chains_node(cs, named)->chain : CHAIN_NIL;
	if (c == CHAIN_NIL) {
		/* x is a root (an ORIGINAL) or on the new cycle, whose smallest id is the root. */
		uint32_t root = x;
		if (named != CHAIN_NIL)
			for (uint32_t n = named; n != x; n = chains_node(cs, n)->parent)
				if (strcmp(chains_id(cs, n), chains_id(cs, root)) < 0)
					root = n;
		c = ch->from != CHAIN_NIL && chains_root(cs, ch->from) == root ? ch->from : chain_new(cs, root);
	}
	for (uint32_t n = x; n != CHAIN_NIL; n = walk_next(cs, x, n))
		chains_node(cs, n)->chain = c;
	ch->to = c;
}

void chains_end(struct chains *cs, struct chain_change *ch)
{
	uint32_t from = ch->from;
	if (from != CHAIN_NIL && from != ch->to && chains_node(cs, chains_root(cs, from))->chain != from) {
		*root_of(cs, from) = cs->spare;
		cs->spare = from;
	}
}

bool chain_current(const struct chains *cs, uint32_t c, uint32_t *original, uint32_t *content)
{
	*original = *content = CHAIN_NIL;
	uint32_t top = chains_root(cs, c), replacement = CHAIN_NIL;
	const struct chain_node *t = chains_node(cs, top);
	if (t->chain != c)
		return true; /* emptied: its root now names another record */
	for (uint32_t r = top; r != CHAIN_NIL; r = walk_next(cs, top, r)) {
		const struct chain_node *n = chains_node(cs, r);
		if (!n->present)
			continue; /* the placeholder of a missing original */
		if (n->frequency == QS_FREQ_VOID)
			return false; /* a voided encounter counts nowhere */
		if (n->frequency == QS_FREQ_REPLACEMENT &&
		    (replacement == CHAIN_NIL || n->offset > chains_node(cs, replacement)->offset))
			replacement = r;
	}
	/* Only a root can be an ORIGINAL: an ORIGINAL has no out-edge. */
	uint32_t o = t->present && t->frequency == QS_FREQ_ORIGINAL ? top : CHAIN_NIL;
	*original = o;
	*content = replacement != CHAIN_NIL ? replacement : o;
	return true;
}

void chains_free(struct chains *cs)
{
	idmap_free(&cs->ids);
	slab_free(&cs->nodes);
	slab_free(&cs->roots);
	cs->spare = CHAIN_NIL;
	cs->records = 0;
}
