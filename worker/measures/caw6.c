/*
 * caw6.c: the CAW6 family (CA1.7, BhCoordination member events). Per plan,
 * member and period, the member's latest coordination event in the period
 * (latest event_date, then latest in the partition) decides: when it says
 * receives_smhs the member adds C + E to the numerator and 2A - B - D to the
 * denominator (README "California measures"). Entities are member-years
 * holding the latest version of each of the member's ACTIVE coordination
 * events of that year; a member-year writes one contribution per cell.
 */
#include <stdlib.h>

#include "caw.h"

struct caw6_year;

/* The latest version of one coordination event that counts. */
struct caw6_event {
	struct caw6_event *next; /* next event of the same member-year */
	struct caw6_year *year;  /* where it counts; NULL: nowhere (voided, or no longer BhCoordination) */
	int64_t offset;          /* of this version: breaks event_date ties */
	int32_t event_date;
	int month; /* 0-11, of event_date */
	bool receives_smhs;
	enum qs_outcome county_provider_outcome, member_outcome;
};

struct caw6_year {
	struct caw_entity e;
	struct caw6_event *events;
};

struct caw6_state {
	struct hashmap events; /* event_id -> struct caw6_event, once it has counted */
	struct hashmap years;  /* member-year key -> struct caw6_year */
};

/* Whether a decides over b (NULL: nothing yet) as the member's latest event of a period. */
static bool later(const struct caw6_event *a, const struct caw6_event *b)
{
	return !b || a->event_date > b->event_date || (a->event_date == b->event_date && a->offset > b->offset);
}

static size_t contribs(const struct caw6_year *y, struct qs_contrib *out)
{
	if (!y)
		return 0;
	const struct caw6_event *latest[CAW_PERIODS] = {NULL};
	for (const struct caw6_event *ev = y->events; ev; ev = ev->next)
		for (int g = 0; g < QS_GRAIN_COUNT; g++) {
			size_t p = caw_period_of(ev->month, (enum qs_grain)g);
			if (later(ev, latest[p]))
				latest[p] = ev;
		}
	size_t n = 0;
	for (size_t p = 0; p < CAW_PERIODS; p++) {
		const struct caw6_event *ev = latest[p];
		if (!ev || !ev->receives_smhs)
			continue; /* a member whose latest event does not receive SMHS counts nowhere */
		int32_t b = ev->county_provider_outcome == QS_OUTCOME_UNABLE_TO_REACH;
		int32_t c = ev->county_provider_outcome == QS_OUTCOME_SUCCESS;
		int32_t d = ev->member_outcome == QS_OUTCOME_UNABLE_TO_REACH;
		int32_t e = ev->member_outcome == QS_OUTCOME_SUCCESS;
		int32_t num = c + e, den = 2 - b - d; /* A = 1 */
		if (num == 0 && den == 0)
			continue; /* both unreachable: adds nothing, so no cell */
		out[n++] = (struct qs_contrib){QS_M_CAW6, y->e.plan, y->e.stratum, caw_period_start(y->e.year, p),
					       num, den, QS_GRAIN_BIT(caw_periods[p].grain)};
	}
	return n;
}

static void unlink_event(struct caw6_year *y, struct caw6_event *ev)
{
	struct caw6_event **p = &y->events;
	while (*p && *p != ev)
		p = &(*p)->next;
	if (*p)
		*p = ev->next;
	ev->next = NULL;
}

static void apply(void *state, struct family_ctx *ctx, const struct qs_event *ev, int64_t offset)
{
	struct caw6_state *st = state;
	const struct qs_member_event *m = &ev->u.member;
	bool counts = m->status == QS_STATUS_ACTIVE && m->body == QS_BODY_BH_COORDINATION;
	struct caw6_event *e = hashmap_get(&st->events, m->event_id);
	if (!e && !counts)
		return; /* never counted and does not now */

	struct caw6_year *from = e ? e->year : NULL;
	struct caw6_year *to = counts ? caw_entity_get(&st->years, ctx, sizeof(struct caw6_year), 'M',
						      intern_id(ctx->intern, m->plan_id), m->member_id,
						      m->u.bh_coordination.event_date)
				      : NULL;
	struct qs_contrib before[2 * QS_MAX_CONTRIBS], after[2 * QS_MAX_CONTRIBS];
	size_t n_before = contribs(from, before);
	if (to != from)
		n_before += contribs(to, before + n_before);

	if (!e) {
		e = arena_alloc(ctx->arena, sizeof(*e));
		hashmap_put(&st->events, arena_strdup(ctx->arena, m->event_id), e);
	}
	if (from)
		unlink_event(from, e);
	e->year = to;
	if (to) {
		e->offset = offset;
		e->event_date = m->u.bh_coordination.event_date;
		e->month = caw_month(e->event_date);
		e->receives_smhs = m->u.bh_coordination.receives_smhs;
		e->county_provider_outcome = m->u.bh_coordination.county_provider_outcome;
		e->member_outcome = m->u.bh_coordination.member_outcome;
		e->next = to->events;
		to->events = e;
	}

	size_t n_after = contribs(from, after);
	if (to != from)
		n_after += contribs(to, after + n_after);
	measures_emit_diff(ctx, before, n_before, after, n_after);
}

static void *state_new(void)
{
	return calloc(1, sizeof(struct caw6_state));
}

static void state_free(void *state)
{
	struct caw6_state *st = state;
	if (st) {
		hashmap_free(&st->events);
		hashmap_free(&st->years);
	}
	free(st);
}

static size_t count(const void *state)
{
	const struct caw6_state *st = state;
	return st->events.len + st->years.len;
}

const struct family family_caw6 = {
	.name = "caw6",
	.topics = QS_TOPIC_BIT(QS_TOPIC_MEMBER_EVENTS),
	.state_new = state_new,
	.state_free = state_free,
	.apply = apply,
	.count = count,
};
