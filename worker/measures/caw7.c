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
 * partition store (state.c), whose encounter chains this family reads.
 */
#include <stddef.h>

#include "caw.h"
#include "chain.h"

/* A member-year qualifies from this many distinct enrolled months (CA4.1). */
#define CAW7_MIN_MONTHS 5

enum { ROW_ENROLLED, ROW_SMI, ROW_ED }; /* caw_counter rows */

struct caw7_state {
	struct caw_counts counts; /* enrollment events by record number, member-years */
	struct slab visits;       /* struct caw_place by chain number: where its ED visit counts */
};

_Static_assert(offsetof(struct caw7_state, counts) == 0, "count is caw_member_years");

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
			out[n++] = (struct qs_contrib){
				QS_M_CAW7, y->e.plan,       y->e.stratum, caw_period_start(y->e.year, (size_t)m),
				ed[m],     enrolled[m] > 0, QS_GRAINS_ALL};
	return n;
}

/*
 * Counts a chain's ED visit where its content says. The visit belongs to the
 * original's plan and member (as CW13_TIMELY counts under the original's plan),
 * or to the content's while the original has not arrived.
 */
static void recount(struct caw7_state *st, struct family_ctx *ctx, uint32_t c)
{
	const struct chains *cs = ctx->chains;
	uint32_t original, content;
	struct caw_place to = {0, 0, 0};
	if (chain_current(cs, c, &original, &content) && content != CHAIN_NIL && chains_node(cs, content)->ed_visit) {
		const struct chain_node *owner = chains_node(cs, original != CHAIN_NIL ? original : content);
		to = caw_place_at(&st->counts, ctx, 'M', owner->plan, owner->member,
				  chains_node(cs, content)->service_to, 1u << ROW_ED);
	}
	caw_move(&st->counts, ctx, contribs, slab_at(&st->visits, c), to);
}

/* Each chain remembers where its visit counts, so only the chains after the change need reading. */
static void chain_after(void *state, struct family_ctx *ctx, const struct chain_change *ch)
{
	struct caw7_state *st = state;
	slab_reserve(&st->visits, chains_count(ctx->chains));
	recount(st, ctx, ch->to);
	if (ch->from != CHAIN_NIL && ch->from != ch->to)
		recount(st, ctx, ch->from); /* emptied or smaller: its visit may move */
}

static void apply(void *state, struct family_ctx *ctx, const struct qs_event *ev, int64_t offset)
{
	(void)offset;
	struct caw7_state *st = state;
	const struct qs_member_event *m = &ev->u.member;
	struct caw_place to = {0, 0, 0};
	if (m->status == QS_STATUS_ACTIVE && m->body == QS_BODY_ENROLLMENT)
		to = caw_place_at(&st->counts, ctx, 'M', intern_id(ctx->intern, m->plan_id),
				  idmap_add(ctx->names, m->member_id, NULL), m->u.enrollment.month,
				  1u << ROW_ENROLLED | (m->u.enrollment.smi_sud ? 1u << ROW_SMI : 0));
	caw_count_event(&st->counts, ctx, contribs, to);
}

static void state_init(void *state)
{
	struct caw7_state *st = state;
	caw_counts_init(&st->counts);
	st->visits = SLAB_OF(struct caw_place);
}

static void state_release(void *state)
{
	struct caw7_state *st = state;
	caw_counts_release(&st->counts);
	slab_free(&st->visits);
}

const struct family family_caw7 = {
	.name = "caw7",
	.topics = QS_TOPIC_BIT(QS_TOPIC_MEMBER_EVENTS) | QS_TOPIC_BIT(QS_TOPIC_ENCOUNTERS),
	.state_size = sizeof(struct caw7_state),
	.state_init = state_init,
	.state_release = state_release,
	.apply = apply,
	.chain_after = chain_after,
	.count = caw_member_years,
};
