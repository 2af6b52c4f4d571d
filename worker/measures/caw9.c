/*
 * caw9.c: the CAW9 family (CA1.12, CoordinatorAssigned and CareTeamContact
 * member events). A counts members with a coordinator for a month in the
 * period; B those of them with a care team contact dated in the period, so a
 * contact in a period without a coordinator counts nowhere. Numerator B,
 * denominator A. Entities are member-years with per-month counters of ACTIVE
 * coordinator and contact events.
 */
#include "caw.h"

/* The state is a struct caw_counts: coordinator and contact events by record number; member-years. */
enum { ROW_COORDINATOR, ROW_CONTACT }; /* caw_counter rows */

static size_t contribs(const struct caw_counter *y, struct qs_contrib *out)
{
	return caw_distinct_contribs(y, QS_M_CAW9, ROW_COORDINATOR, ROW_CONTACT, out);
}

static void apply(void *state, struct family_ctx *ctx, const struct qs_event *ev, int64_t offset)
{
	(void)offset;
	struct caw_counts *counts = state;
	const struct qs_member_event *m = &ev->u.member;
	struct caw_place to = {0, 0, 0};
	if (m->status == QS_STATUS_ACTIVE && m->body == QS_BODY_COORDINATOR_ASSIGNED)
		to = caw_place_at(counts, ctx, 'M', intern_id(ctx->intern, m->plan_id),
				  idmap_add(ctx->names, m->member_id, NULL), m->u.coordinator_assigned.month,
				  1u << ROW_COORDINATOR);
	else if (m->status == QS_STATUS_ACTIVE && m->body == QS_BODY_CARE_TEAM_CONTACT)
		to = caw_place_at(counts, ctx, 'M', intern_id(ctx->intern, m->plan_id),
				  idmap_add(ctx->names, m->member_id, NULL), m->u.care_team_contact.contact_date,
				  1u << ROW_CONTACT);
	caw_count_event(counts, ctx, contribs, to);
}

const struct family family_caw9 = {
	.name = "caw9",
	.topics = QS_TOPIC_BIT(QS_TOPIC_MEMBER_EVENTS),
	.state_size = sizeof(struct caw_counts),
	.state_init = caw_counts_init,
	.state_release = caw_counts_release,
	.apply = apply,
	.count = caw_member_years,
};
