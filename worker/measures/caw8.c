/*
 * caw8.c: the CAW8 family (CA1.6, CarePlan member events, period of
 * completed_on). B and C count members with an INITIAL care plan completed in
 * the period (C: one of them with care goals documented); E and F count
 * care_plan_ids with a REVISED event in the period (F: one with goals).
 * Numerator C + F, denominator B + E. Entities are member-years for initial
 * plans and care-plan-years for revisions, each with per-month counters of
 * its ACTIVE events and of those with goals.
 */
#include "caw.h"

/* The state is a struct caw_counts: care plan events by record number; 'I' member-years, 'R' care-plan-years. */
enum { ROW_PLANS, ROW_GOALS }; /* caw_counter rows */

/* A member-year gives (C, B), a care-plan-year (F, E): the same rule on its own counters. */
static size_t contribs(const struct caw_counter *y, struct qs_contrib *out)
{
	return caw_distinct_contribs(y, QS_M_CAW8, ROW_PLANS, ROW_GOALS, out);
}

static void apply(void *state, struct family_ctx *ctx, const struct qs_event *ev, int64_t offset)
{
	(void)offset;
	struct caw_counts *counts = state;
	const struct qs_member_event *m = &ev->u.member;
	struct caw_place to = {0, 0, 0};
	if (m->status == QS_STATUS_ACTIVE && m->body == QS_BODY_CARE_PLAN) {
		bool initial = m->u.care_plan.plan_type == QS_CARE_PLAN_INITIAL;
		uint32_t id = idmap_add(ctx->names, initial ? m->member_id : m->u.care_plan.care_plan_id, NULL);
		to = caw_place_at(counts, ctx, initial ? 'I' : 'R', intern_id(ctx->intern, m->plan_id), id,
				  m->u.care_plan.completed_on,
				  1u << ROW_PLANS | (m->u.care_plan.care_goals_documented ? 1u << ROW_GOALS : 0));
	}
	caw_count_event(counts, ctx, contribs, to);
}

const struct family family_caw8 = {
	.name = "caw8",
	.topics = QS_TOPIC_BIT(QS_TOPIC_MEMBER_EVENTS),
	.state_size = sizeof(struct caw_counts),
	.state_init = caw_counts_init,
	.state_release = caw_counts_release,
	.apply = apply,
	.count = caw_member_years,
};
