/*
 * caw6.c: the CAW6 family (CA1.7, BhCoordination member events). Per plan,
 * member and period, the member's latest coordination event in the period
 * (latest event_date, then latest in the partition) decides: when it says
 * receives_smhs the member adds C + E to the numerator and 2A - B - D to the
 * denominator (README "California measures"). Entities are member-years
 * holding the latest version of each of the member's ACTIVE coordination
 * events of that year; a member-year writes one contribution per cell.
 */
#include <stddef.h>

#include "caw.h"

/* The latest version of one coordination event, by member-event record number. */
struct caw6_event {
	int64_t offset; /* of this version: breaks event_date ties */
	uint32_t next;  /* next event of the same member-year, record number + 1; 0: none */
	uint32_t year;  /* where it counts, member-year number + 1; 0: nowhere (voided, or not BhCoordination) */
	int32_t event_date;
	uint8_t month; /* 0-11, of event_date */
	bool receives_smhs;
	uint8_t county_provider_outcome, member_outcome; /* enum qs_outcome */
};

struct caw6_year {
	struct caw_entity e;
	uint32_t events; /* first event, record number + 1 */
};

struct caw6_state {
	struct caw_years years; /* of struct caw6_year */
	struct slab events;     /* struct caw6_event by record number */
};

_Static_assert(offsetof(struct caw6_state, years) == 0, "count is caw_member_years");

/* Whether a decides over b (NULL: nothing yet) as the member's latest event of a period. */
static bool later(const struct caw6_event *a, const struct caw6_event *b)
{
	return !b || a->event_date > b->event_date || (a->event_date == b->event_date && a->offset > b->offset);
}

static struct caw6_event *event(const struct caw6_state *st, uint32_t n)
{
	return slab_at(&st->events, n);
}

static struct caw6_year *year_of(const struct caw6_state *st, uint32_t year)
{
	return year ? caw_year(&st->years, year - 1) : NULL;
}

static size_t contribs(const struct caw6_state *st, const struct caw6_year *y, struct qs_contrib *out)
{
	if (!y)
		return 0;
	const struct caw6_event *latest[CAW_PERIODS] = {NULL};
	for (uint32_t n = y->events; n; n = event(st, n - 1)->next) {
		const struct caw6_event *ev = event(st, n - 1);
		for (int g = 0; g < QS_GRAIN_COUNT; g++) {
			size_t p = caw_period_of(ev->month, (enum qs_grain)g);
			if (later(ev, latest[p]))
				latest[p] = ev;
		}
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
		out[n++] = (struct qs_contrib){QS_M_CAW6,
					       y->e.plan,
					       y->e.stratum,
					       caw_period_start(y->e.year, p),
					       num,
					       den,
					       QS_GRAIN_BIT(caw_periods[p].grain)};
	}
	return n;
}

static void unlink_event(struct caw6_state *st, struct caw6_year *y, uint32_t record)
{
	uint32_t *p = &y->events;
	while (*p && *p != record + 1)
		p = &event(st, *p - 1)->next;
	if (*p)
		*p = event(st, record)->next;
	event(st, record)->next = 0;
}

static void apply(void *state, struct family_ctx *ctx, const struct qs_event *ev, int64_t offset)
{
	struct caw6_state *st = state;
	const struct qs_member_event *m = &ev->u.member;
	bool counts = m->status == QS_STATUS_ACTIVE && m->body == QS_BODY_BH_COORDINATION;
	slab_reserve(&st->events, ctx->record + 1);
	struct caw6_event *e = event(st, ctx->record);
	if (!e->year && !counts)
		return; /* does not count, and did not */

	uint32_t from_n = e->year;
	uint32_t to_n = counts ? caw_entity_get(&st->years, ctx, 'M', intern_id(ctx->intern, m->plan_id),
						idmap_add(ctx->names, m->member_id, NULL),
						m->u.bh_coordination.event_date) +
					 1
			       : 0;
	struct caw6_year *from = year_of(st, from_n), *to = year_of(st, to_n);
	struct qs_contrib before[2 * QS_MAX_CONTRIBS], after[2 * QS_MAX_CONTRIBS];
	size_t n_before = contribs(st, from, before);
	if (to != from)
		n_before += contribs(st, to, before + n_before);

	if (from)
		unlink_event(st, from, ctx->record);
	e->year = to_n;
	if (to) {
		e->offset = offset;
		e->event_date = m->u.bh_coordination.event_date;
		e->month = (uint8_t)caw_month(e->event_date);
		e->receives_smhs = m->u.bh_coordination.receives_smhs;
		e->county_provider_outcome = (uint8_t)m->u.bh_coordination.county_provider_outcome;
		e->member_outcome = (uint8_t)m->u.bh_coordination.member_outcome;
		e->next = to->events;
		to->events = ctx->record + 1;
	}

	size_t n_after = contribs(st, from, after);
	if (to != from)
		n_after += contribs(st, to, after + n_after);
	measures_emit_diff(ctx, before, n_before, after, n_after);
}

static void state_init(void *state)
{
	struct caw6_state *st = state;
	caw_years_init(&st->years, sizeof(struct caw6_year));
	st->events = SLAB_OF(struct caw6_event);
}

static void state_release(void *state)
{
	struct caw6_state *st = state;
	caw_years_free(&st->years);
	slab_free(&st->events);
}

const struct family family_caw6 = {
	.name = "caw6",
	.topics = QS_TOPIC_BIT(QS_TOPIC_MEMBER_EVENTS),
	.state_size = sizeof(struct caw6_state),
	.state_init = state_init,
	.state_release = state_release,
	.apply = apply,
	.count = caw_member_years,
};
