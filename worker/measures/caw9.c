/*
 * caw9.c: the CAW9 family (CA1.12, CoordinatorAssigned and CareTeamContact
 * member events). A counts members with a coordinator for a month in the
 * period; B those of them with a care team contact dated in the period, so a
 * contact in a period without a coordinator counts nowhere. Numerator B,
 * denominator A. Entities are member-years with per-month counters of ACTIVE
 * coordinator and contact events.
 */
#include <stdlib.h>

#include "caw.h"
#include "xalloc.h"

enum { ROW_COORDINATOR, ROW_CONTACT }; /* caw_counter rows */

struct caw9_state {
	struct caw_counts counts; /* coordinator and contact events by event_id; member-years */
};

static size_t contribs(const struct caw_counter *y, struct qs_contrib *out)
{
	return caw_distinct_contribs(y, QS_M_CAW9, ROW_COORDINATOR, ROW_CONTACT, out);
}

static void apply(void *state, struct family_ctx *ctx, const struct qs_event *ev, int64_t offset)
{
	(void)offset;
	struct caw9_state *st = state;
	const struct qs_member_event *m = &ev->u.member;
	struct caw_place to = {0, 0, 0};
	if (m->status == QS_STATUS_ACTIVE && m->body == QS_BODY_COORDINATOR_ASSIGNED)
		to = caw_place_at(&st->counts, ctx, 'M', intern_id(ctx->intern, m->plan_id),
				  idmap_add(ctx->names, m->member_id, NULL), m->u.coordinator_assigned.month,
				  1u << ROW_COORDINATOR);
	else if (m->status == QS_STATUS_ACTIVE && m->body == QS_BODY_CARE_TEAM_CONTACT)
		to = caw_place_at(&st->counts, ctx, 'M', intern_id(ctx->intern, m->plan_id),
				  idmap_add(ctx->names, m->member_id, NULL), m->u.care_team_contact.contact_date,
				  1u << ROW_CONTACT);
	caw_count_event(&st->counts, ctx, contribs, to);
}

static void *state_new(void)
{
	struct caw9_state *st = xcalloc(1, sizeof(*st), "the CAW9 state");
	caw_counts_init(&st->counts);
	return st;
}

static void state_free(void *state)
{
	struct caw9_state *st = state;
	if (st)
		caw_counts_free(&st->counts);
	free(st);
}

static size_t count(const void *state)
{
	return ((const struct caw9_state *)state)->counts.years.years.len;
}

const struct family family_caw9 = {
	.name = "caw9",
	.topics = QS_TOPIC_BIT(QS_TOPIC_MEMBER_EVENTS),
	.state_new = state_new,
	.state_free = state_free,
	.apply = apply,
	.count = count,
};
