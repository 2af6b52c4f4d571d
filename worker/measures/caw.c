/*
 * caw.c: member-year entities and per-period distinct counts shared by the
 * California families (see caw.h). caw_entity_get finds a member-year by its
 * fixed-width key; caw_move and caw_count_event keep the per-month
 * counters of CAW7-CAW9 and emit exactly what a change adds and retracts.
 */
#include "caw.h"

#include <string.h>

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

void caw_years_init(struct caw_years *ys, size_t size)
{
	memset(ys, 0, sizeof(*ys));
	ys->years.width = (uint32_t)size;
}

void caw_years_free(struct caw_years *ys)
{
	table_free(&ys->index);
	slab_free(&ys->years);
}

struct year_key {
	const struct caw_years *ys;
	struct caw_entity e;
};

static bool year_eq(const void *ctx, uint32_t n)
{
	const struct year_key *k = ctx;
	const struct caw_entity *e = caw_year(k->ys, n);
	return e->id == k->e.id && e->plan == k->e.plan && e->year == k->e.year && e->tag == k->e.tag;
}

uint32_t caw_entity_get(struct caw_years *ys, struct family_ctx *ctx, char tag, uint32_t plan, uint32_t id, int32_t day)
{
	int year;
	dates_to_civil(day, &year, NULL, NULL);
	struct year_key k = {ys, {.plan = plan, .year = year, .id = id, .tag = tag}};
	uint64_t h = hash_words((uint64_t)plan << 32 | id, (uint64_t)(uint32_t)year << 8 | (unsigned char)tag);
	uint32_t n = table_find(&ys->index, h, year_eq, &k);
	if (n == TABLE_NONE) {
		n = slab_push(&ys->years);
		struct caw_entity *e = caw_year(ys, n);
		*e = k.e;
		e->stratum = intern_id(ctx->intern, "");
		table_insert(&ys->index, h, n);
	}
	return n;
}

void caw_counts_init(void *counts)
{
	struct caw_counts *cc = counts;
	caw_years_init(&cc->years, sizeof(struct caw_counter));
	cc->places = SLAB_OF(struct caw_place);
}

struct caw_place caw_place_at(struct caw_counts *cc, struct family_ctx *ctx, char tag, uint32_t plan, uint32_t id,
			      int32_t day, unsigned rows)
{
	return (struct caw_place){caw_entity_get(&cc->years, ctx, tag, plan, id, day) + 1, (uint8_t)caw_month(day),
				  (uint8_t)rows};
}

static struct caw_counter *counter(struct caw_counts *cc, uint32_t year)
{
	return year ? caw_year(&cc->years, year - 1) : NULL;
}

static void count(struct caw_counts *cc, const struct caw_place *at, int32_t by)
{
	struct caw_counter *y = counter(cc, at->year);
	if (!y)
		return;
	for (int row = 0; row < CAW_ROWS; row++)
		if (at->rows & 1u << row)
			y->count[row][at->month] += by;
}

void caw_move(struct caw_counts *cc, struct family_ctx *ctx,
	      size_t (*contribs)(const struct caw_counter *, struct qs_contrib *), struct caw_place *at,
	      struct caw_place to)
{
	if (at->year == to.year && at->month == to.month && at->rows == to.rows)
		return;
	struct caw_counter *touched[2] = {counter(cc, at->year), to.year != at->year ? counter(cc, to.year) : NULL};
	struct qs_contrib before[2 * QS_MAX_CONTRIBS], after[2 * QS_MAX_CONTRIBS];
	size_t n_before = 0, n_after = 0;
	for (int i = 0; i < 2; i++)
		if (touched[i])
			n_before += contribs(touched[i], before + n_before);
	count(cc, at, -1);
	count(cc, &to, 1);
	*at = to;
	for (int i = 0; i < 2; i++)
		if (touched[i])
			n_after += contribs(touched[i], after + n_after);
	measures_emit_diff(ctx, before, n_before, after, n_after);
}

void caw_count_event(struct caw_counts *cc, struct family_ctx *ctx,
		     size_t (*contribs)(const struct caw_counter *, struct qs_contrib *), struct caw_place to)
{
	slab_reserve(&cc->places, ctx->record + 1); /* a new event counts nowhere yet */
	caw_move(cc, ctx, contribs, slab_at(&cc->places, ctx->record), to);
}

size_t caw_distinct_contribs(const struct caw_counter *y, enum qs_measure m, int base, int sub, struct qs_contrib *out)
{
	size_t n = 0;
	for (size_t p = 0; p < CAW_PERIODS; p++) {
		bool counted = false, also = false;
		for (int i = caw_periods[p].first; i < caw_periods[p].first + caw_periods[p].months; i++) {
			counted = counted || y->count[base][i] > 0;
			also = also || y->count[sub][i] > 0;
		}
		if (counted)
			out[n++] = (struct qs_contrib){m,
						       y->e.plan,
						       y->e.stratum,
						       caw_period_start(y->e.year, p),
						       also,
						       1,
						       QS_GRAIN_BIT(caw_periods[p].grain)};
	}
	return n;
}

void caw_counts_release(void *counts)
{
	struct caw_counts *cc = counts;
	caw_years_free(&cc->years);
	slab_free(&cc->places);
}

_Static_assert(offsetof(struct caw_counts, years) == 0, "caw_member_years reads a caw_counts as its caw_years");

size_t caw_member_years(const void *state)
{
	return ((const struct caw_years *)state)->years.len;
}
