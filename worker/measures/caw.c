/*
 * caw.c: member-year entities and per-period distinct counts shared by the
 * California families (see caw.h). caw_entity_get finds a member-year by a
 * key built on the stack; caw_move and caw_count_event keep the per-month
 * counters of CAW7-CAW9 and emit exactly what a change adds and retracts.
 */
#include "caw.h"

#include <stdio.h>

/* tag + plan number + ':' + year + ':' + id + NUL, with room to spare. */
#define CAW_KEY_MAX (1 + 10 + 1 + 12 + 1 + QS_ID_MAX + 1)

const struct caw_period caw_periods[CAW_PERIODS] = {
	{QS_GRAIN_MONTH, 0, 1},   {QS_GRAIN_MONTH, 1, 1},   {QS_GRAIN_MONTH, 2, 1},   {QS_GRAIN_MONTH, 3, 1},
	{QS_GRAIN_MONTH, 4, 1},   {QS_GRAIN_MONTH, 5, 1},   {QS_GRAIN_MONTH, 6, 1},   {QS_GRAIN_MONTH, 7, 1},
	{QS_GRAIN_MONTH, 8, 1},   {QS_GRAIN_MONTH, 9, 1},   {QS_GRAIN_MONTH, 10, 1},  {QS_GRAIN_MONTH, 11, 1},
	{QS_GRAIN_QUARTER, 0, 3}, {QS_GRAIN_QUARTER, 3, 3}, {QS_GRAIN_QUARTER, 6, 3}, {QS_GRAIN_QUARTER, 9, 3},
	{QS_GRAIN_YEAR, 0, 12},
};

_Static_assert(CAW_PERIODS <= QS_MAX_CONTRIBS, "a member-year writes one contribution per period");

int caw_month(int32_t day)
{
	int month;
	dates_to_civil(day, NULL, &month, NULL);
	return month - 1;
}

size_t caw_period_of(int month, enum qs_grain grain)
{
	switch (grain) {
	case QS_GRAIN_MONTH:
		return (size_t)month;
	case QS_GRAIN_QUARTER:
		return CAW_MONTHS + (size_t)month / 3;
	default:
		return CAW_PERIODS - 1;
	}
}

int32_t caw_period_start(int year, size_t p)
{
	return dates_from_civil(year, caw_periods[p].first + 1, 1);
}

void *caw_entity_get(struct hashmap *entities, struct family_ctx *ctx, size_t size, char tag, uint32_t plan,
		     const char *id, int32_t day)
{
	int year;
	dates_to_civil(day, &year, NULL, NULL);
	/* The plan number and year are fixed-format fields before the id, so no two triples share a key. */
	char key[CAW_KEY_MAX];
	snprintf(key, sizeof(key), "%c%u:%d:%s", tag, plan, year, id);
	struct caw_entity *e = hashmap_get(entities, key);
	if (!e) {
		e = arena_alloc(ctx->arena, size);
		e->plan = plan;
		e->stratum = intern_id(ctx->intern, "");
		e->year = year;
		hashmap_put(entities, arena_strdup(ctx->arena, key), e);
	}
	return e;
}

struct caw_place caw_place_at(struct caw_counts *cc, struct family_ctx *ctx, char tag, uint32_t plan,
			      const char *id, int32_t day, unsigned rows)
{
	return (struct caw_place){caw_entity_get(&cc->entities, ctx, sizeof(struct caw_counter), tag, plan, id, day),
				  caw_month(day), rows};
}

static void count(const struct caw_place *at, int32_t by)
{
	if (!at->year)
		return;
	for (int row = 0; row < CAW_ROWS; row++)
		if (at->rows & 1u << row)
			at->year->count[row][at->month] += by;
}

void caw_move(struct family_ctx *ctx, size_t (*contribs)(const struct caw_counter *, struct qs_contrib *),
	      struct caw_place *at, struct caw_place to)
{
	if (at->year == to.year && at->month == to.month && at->rows == to.rows)
		return;
	struct caw_counter *touched[2] = {at->year, to.year != at->year ? to.year : NULL};
	struct qs_contrib before[2 * QS_MAX_CONTRIBS], after[2 * QS_MAX_CONTRIBS];
	size_t n_before = 0, n_after = 0;
	for (int i = 0; i < 2; i++)
		if (touched[i])
			n_before += contribs(touched[i], before + n_before);
	count(at, -1);
	count(&to, 1);
	*at = to;
	for (int i = 0; i < 2; i++)
		if (touched[i])
			n_after += contribs(touched[i], after + n_after);
	measures_emit_diff(ctx, before, n_before, after, n_after);
}

void caw_count_event(struct caw_counts *cc, struct family_ctx *ctx,
		     size_t (*contribs)(const struct caw_counter *, struct qs_contrib *), const char *event_id,
		     struct caw_place to)
{
	struct caw_place *at = hashmap_get(&cc->events, event_id);
	if (!at) {
		if (!to.year)
			return;
		at = arena_alloc(ctx->arena, sizeof(*at));
		hashmap_put(&cc->events, arena_strdup(ctx->arena, event_id), at);
	}
	caw_move(ctx, contribs, at, to);
}

size_t caw_distinct_contribs(const struct caw_counter *y, enum qs_measure m, int base, int sub,
			     struct qs_contrib *out)
{
	size_t n = 0;
	for (size_t p = 0; p < CAW_PERIODS; p++) {
		bool counted = false, also = false;
		for (int i = caw_periods[p].first; i < caw_periods[p].first + caw_periods[p].months; i++) {
			counted = counted || y->count[base][i] > 0;
			also = also || y->count[sub][i] > 0;
		}
		if (counted)
			out[n++] = (struct qs_contrib){m, y->e.plan, y->e.stratum, caw_period_start(y->e.year, p),
						       also, 1, QS_GRAIN_BIT(caw_periods[p].grain)};
	}
	return n;
}

size_t caw_counts_len(const struct caw_counts *cc)
{
	return cc->events.len + cc->entities.len;
}

void caw_counts_free(struct caw_counts *cc)
{
	hashmap_free(&cc->events);
	hashmap_free(&cc->entities);
}
