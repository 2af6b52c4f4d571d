/*
 * caw7.c: the CAW7 family (CA4.1, Enrollment member events and encounters).
 * Per plan, member and calendar year it counts the months with an ACTIVE
 * enrollment event, the enrollment events with smi_sud, and the ED visits:
 * encounter chains, not voided, whose current content has ed_visit, in the
 * month of that content's service_to. A member-year with at least 5 enrolled
 * months and an smi_sud event qualifies and then contributes, per month,
 * denominator 1 when enrolled and numerator its ED visits; when qualification
 * flips, every month of the year changes at once.
 *
 * Member events and encounters arrive on co-partitioned topics and meet in one
 * shard (state.c), so this family also keeps its own encounter chains.
 */
#include <stdlib.h>
#include <string.h>

#include "caw.h"
#include "chain.h"

/* A member-year qualifies from this many distinct enrolled months (CA4.1). */
#define CAW7_MIN_MONTHS 5

enum { ROW_ENROLLED, ROW_SMI, ROW_ED }; /* caw_counter rows */

struct caw7_record {
	struct chain_record base;
	uint32_t plan;      /* interned plan_id */
	const char *member; /* member_id, in the arena */
	int32_t service_to;
	bool ed_visit;
};

struct caw7_chain {
	struct chain base;
	struct caw_place place; /* where its ED visit counts */
};

struct caw7_state {
	struct caw_counts counts; /* enrollment events by event_id, member-years */
	struct chains chains;     /* of struct caw7_record, struct caw7_chain */
};

static size_t contribs(const struct caw_counter *y, struct qs_contrib *out)
{
	const int32_t *enrolled = y->count[ROW_ENROLLED], *smi = y->count[ROW_SMI], *ed = y->count[ROW_ED];
	int months = 0;
	bool any_smi = false;
	for (int m = 0; m < CAW_MONTHS; m++) {
		months += enrolled[m] > 0;
		any_smi = any_smi || smi[m] > 0;
	}
	if (months < CAW7_MIN_MONTHS || !any_smi)
		return 0;
	/* Member months and visits add up over months, so one contribution per month serves every grain. */
	size_t n = 0;
	for (int m = 0; m < CAW_MONTHS; m++)
		if (enrolled[m] > 0 || ed[m] > 0)
			out[n++] = (struct qs_contrib){QS_M_CAW7,
						       y->e.plan,
						       y->e.stratum,
						       caw_period_start(y->e.year, (size_t)m),
						       ed[m],
						       enrolled[m] > 0,
						       QS_GRAINS_ALL};
	return n;
}

/*
 * Counts a chain's ED visit where its content says. The visit belongs to the
 * original's plan and member (as CW13_TIMELY counts under the original's plan),
 * or to the content's while the original has not arrived.
 */
static void recount(struct caw7_state *st, struct family_ctx *ctx, struct caw7_chain *c)
{
	const struct chain_record *original, *content;
	struct caw_place to = {NULL, 0, 0};
	if (chain_current(&c->base, &original, &content) && content &&
	    ((const struct caw7_record *)content)->ed_visit) {
		const struct caw7_record *owner = (const struct caw7_record *)(original ? original : content);
		to = caw_place_at(&st->counts, ctx, 'M', owner->plan, owner->member,
				  ((const struct caw7_record *)content)->service_to, 1u << ROW_ED);
	}
	caw_move(ctx, contribs, &c->place, to);
}

static void apply_encounter(struct caw7_state *st, struct family_ctx *ctx, const struct qs_encounter *e,
			    int64_t offset)
{
	struct chain_change ch;
	chains_begin(&st->chains, ctx->arena, e, &ch);
	struct caw7_record *x = (struct caw7_record *)chains_commit(&st->chains, ctx->arena, &ch, e, offset);
	x->plan = intern_id(ctx->intern, e->plan_id);
	if (!x->member || strcmp(x->member, e->member_id) != 0)
		x->member = arena_strdup(ctx->arena, e->member_id);
	x->service_to = e->service_to;
	x->ed_visit = e->ed_visit;

	/* Each chain remembers where its visit counts (place), so only the after needs reading. */
	recount(st, ctx, (struct caw7_chain *)ch.to);
	if (ch.from && ch.from != ch.to)
		recount(st, ctx, (struct caw7_chain *)ch.from); /* emptied or smaller: its visit may move */
	chains_end(&st->chains, &ch);
}

static void apply(void *state, struct family_ctx *ctx, const struct qs_event *ev, int64_t offset)
{
	struct caw7_state *st = state;
	if (ev->topic == QS_TOPIC_ENCOUNTERS) {
		apply_encounter(st, ctx, &ev->u.encounter, offset);
		return;
	}
	const struct qs_member_event *m = &ev->u.member;
	struct caw_place to = {NULL, 0, 0};
	if (m->status == QS_STATUS_ACTIVE && m->body == QS_BODY_ENROLLMENT)
		to = caw_place_at(&st->counts, ctx, 'M', intern_id(ctx->intern, m->plan_id), m->member_id,
				  m->u.enrollment.month,
				  1u << ROW_ENROLLED | (m->u.enrollment.smi_sud ? 1u << ROW_SMI : 0));
	caw_count_event(&st->counts, ctx, contribs, m->event_id, to);
}

static void *state_new(void)
{
	struct caw7_state *st = calloc(1, sizeof(*st));
	if (st) {
		st->chains.record_size = sizeof(struct caw7_record);
		st->chains.chain_size = sizeof(struct caw7_chain);
	}
	return st;
}

static void state_free(void *state)
{
	struct caw7_state *st = state;
	if (st) {
		caw_counts_free(&st->counts);
		chains_free(&st->chains);
	}
	free(st);
}

static size_t count(const void *state)
{
	const struct caw7_state *st = state;
	return caw_counts_len(&st->counts) + st->chains.records;
}

const struct family family_caw7 = {
	.name = "caw7",
	.topics = QS_TOPIC_BIT(QS_TOPIC_MEMBER_EVENTS) | QS_TOPIC_BIT(QS_TOPIC_ENCOUNTERS),
	.state_new = state_new,
	.state_free = state_free,
	.apply = apply,
	.count = count,
};
