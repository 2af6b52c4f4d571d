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
	struct chains chains; /* of struct cw13_record, plain struct chain */
};

size_t cw13_record_contribs(const struct cw13_record *r, struct qs_contrib *out)
{
	if (r->submitted_day == QS_NO_DATE)
		return 0;
	out[0] = (struct qs_contrib){QS_M_CW13_SUBMISSIONS, r->plan, r->source, r->submitted_day, 1, 0,
				     QS_GRAINS_ALL};
	return 1;
}

size_t cw13_chain_contribs(const struct chain *c, const struct qs_rules *rules, struct qs_contrib *out)
{
	const struct chain_record *o, *content;
	if (!chain_current(c, &o, &content) || !o)
		return 0; /* voided, or the original has not arrived */
	const struct cw13_record *original = (const struct cw13_record *)o;
	if (original->submitted_day == QS_NO_DATE)
		return 0;
	int32_t service_to = ((const struct cw13_record *)content)->service_to;
	int32_t on_time = original->submitted_day - service_to <= rules->cw13_timely_days;
	out[0] = (struct qs_contrib){QS_M_CW13_TIMELY, original->plan, original->source,
				     original->submitted_day, on_time, 1, QS_GRAINS_ALL};
	return 1;
}

/* Contributions of a record and of the (one or two) chains it touches. */
static size_t contribs(const struct cw13_record *r, const struct chain *a, const struct chain *b,
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

	struct cw13_record *r = (struct cw13_record *)chains_record(&st->chains, e->encounter_id);
	struct chain *old_chain = r ? r->base.chain : NULL;
	struct chain *chain = chains_chain_for(&st->chains, ctx->arena, e);
	size_t n_before = contribs(r, old_chain, chain, ctx->rules, before);

	r = (struct cw13_record *)chains_put(&st->chains, ctx->arena, (struct chain_record *)r, e, offset, chain);
	r->plan = intern_id(ctx->intern, e->plan_id);
	r->source = intern_id(ctx->intern, e->source == QS_SOURCE_MEDICARE ? "MEDICARE" : "MEDICAID");
	r->service_from = e->service_from;
	r->service_to = e->service_to;
	r->submitted_day = e->submitted_at == QS_NO_TS ? QS_NO_DATE : dates_day_of_ms(e->submitted_at);
	r->ed_visit = e->ed_visit;

	measures_emit_diff(ctx, before, n_before, after, contribs(r, old_chain, chain, ctx->rules, after));
}

static void *state_new(void)
{
	struct cw13_state *st = calloc(1, sizeof(*st));
	if (st) {
		st->chains.record_size = sizeof(struct cw13_record);
		st->chains.chain_size = sizeof(struct chain);
	}
	return st;
}

static void state_free(void *state)
{
	struct cw13_state *st = state;
	if (st)
		chains_free(&st->chains);
	free(st);
}

static size_t count(const void *state)
{
	return ((const struct cw13_state *)state)->chains.records.len;
}

const struct family family_cw13 = {
	.name = "cw13",
	.topics = QS_TOPIC_BIT(QS_TOPIC_ENCOUNTERS),
	.state_new = state_new,
	.state_free = state_free,
	.apply = apply,
	.count = count,
};
