/*
 * cw13.c: the CW13 family (encounters): submission frequency counts every
 * submitted record in its submission month; timeliness counts each original
 * that is not voided, judged against its chain's current service_to.
 */
#include "cw13.h"

#include <stdlib.h>
#include <string.h>

#include "dates.h"
#include "hashmap.h"

struct cw13_state {
	struct hashmap records; /* encounter_id -> struct cw13_record */
	struct hashmap chains;  /* original's encounter_id -> struct cw13_chain */
};

size_t cw13_record_contribs(const struct cw13_record *r, struct qs_contrib *out)
{
	if (r->submitted_day == QS_NO_DATE)
		return 0;
	out[0] = (struct qs_contrib){QS_M_CW13_SUBMISSIONS, r->plan, r->source, r->submitted_day, 1, 0};
	return 1;
}

size_t cw13_chain_contribs(const struct cw13_chain *c, const struct qs_rules *rules, struct qs_contrib *out)
{
	const struct cw13_record *original = NULL, *replacement = NULL;
	for (const struct cw13_record *r = c->records; r; r = r->next) {
		switch (r->frequency) {
		case QS_FREQ_VOID:
			return 0; /* a voided encounter counts nowhere */
		case QS_FREQ_ORIGINAL:
			original = r;
			break;
		case QS_FREQ_REPLACEMENT:
			if (!replacement || r->offset > replacement->offset)
				replacement = r;
			break;
		}
	}
	if (!original || original->submitted_day == QS_NO_DATE)
		return 0;
	int32_t service_to = replacement ? replacement->service_to : original->service_to;
	int32_t on_time = original->submitted_day - service_to <= rules->cw13_timely_days;
	out[0] = (struct qs_contrib){QS_M_CW13_TIMELY, original->plan, original->source,
				     original->submitted_day, on_time, 1};
	return 1;
}

/* The chain an event belongs to: its own for an original, else the chain of the record it names. */
static struct cw13_chain *chain_for(struct cw13_state *st, struct arena *arena, const struct qs_encounter *e)
{
	const char *root = e->encounter_id;
	if (e->frequency != QS_FREQ_ORIGINAL) {
		const struct cw13_record *named = hashmap_get(&st->records, e->original_encounter_id);
		root = named ? named->chain->root : e->original_encounter_id;
	}
	struct cw13_chain *c = hashmap_get(&st->chains, root);
	if (!c) {
		c = arena_alloc(arena, sizeof(*c));
		c->root = arena_strdup(arena, root);
		hashmap_put(&st->chains, c->root, c);
	}
	return c;
}

static void unlink_record(struct cw13_chain *c, struct cw13_record *r)
{
	struct cw13_record **p = &c->records;
	while (*p && *p != r)
		p = &(*p)->next;
	if (*p)
		*p = r->next;
	r->next = NULL;
}

/* Contributions of a record and of the (one or two) chains it touches. */
static size_t contribs(const struct cw13_record *r, const struct cw13_chain *a, const struct cw13_chain *b,
		       const struct qs_rules *rules, struct qs_contrib *out)
{
	size_t n = r ? cw13_record_contribs(r, out) : 0;
	if (a)
		n += cw13_chain_contribs(a, rules, out + n);
	if (b && b != a)
		n += cw13_chain_contribs(b, rules, out + n);
	return n;
}

static void apply(void *state, struct family_ctx *ctx, const struct qs_event *ev, int64_t offset)
{
	struct cw13_state *st = state;
	const struct qs_encounter *e = &ev->u.encounter;
	struct qs_contrib before[QS_MAX_CONTRIBS], after[QS_MAX_CONTRIBS];

	struct cw13_record *r = hashmap_get(&st->records, e->encounter_id);
	struct cw13_chain *old_chain = r ? r->chain : NULL;
	struct cw13_chain *chain = chain_for(st, ctx->arena, e);
	size_t n_before = contribs(r, old_chain, chain, ctx->rules, before);

	if (!r) {
		r = arena_alloc(ctx->arena, sizeof(*r));
		hashmap_put(&st->records, arena_strdup(ctx->arena, e->encounter_id), r);
	}
	if (old_chain != chain) {
		if (old_chain)
			unlink_record(old_chain, r);
		r->next = chain->records;
		chain->records = r;
		r->chain = chain;
	}
	r->offset = offset;
	r->plan = intern_id(ctx->intern, e->plan_id);
	r->source = intern_id(ctx->intern, e->source == QS_SOURCE_MEDICARE ? "MEDICARE" : "MEDICAID");
	r->frequency = e->frequency;
	r->service_from = e->service_from;
	r->service_to = e->service_to;
	r->submitted_day = e->submitted_at == QS_NO_TS ? QS_NO_DATE : dates_day_of_ms(e->submitted_at);
	r->ed_visit = e->ed_visit;

	measures_emit_diff(ctx, before, n_before, after, contribs(r, old_chain, chain, ctx->rules, after));
}

static void *state_new(void)
{
	return calloc(1, sizeof(struct cw13_state));
}

static void state_free(void *state)
{
	struct cw13_state *st = state;
	if (st) {
		hashmap_free(&st->records);
		hashmap_free(&st->chains);
	}
	free(st);
}

static size_t count(const void *state)
{
	return ((const struct cw13_state *)state)->records.len;
}

const struct family family_cw13 = {
	.name = "cw13",
	.topics = QS_TOPIC_BIT(QS_TOPIC_ENCOUNTERS),
	.state_new = state_new,
	.state_free = state_free,
	.apply = apply,
	.count = count,
};
