/*
 * caw.h: what the California families (caw6.c .. caw9.c) share. They count
 * distinct members (or care plans) per period, each grain on its own, so
 * their entities are member-years: what one member (or care plan) did under
 * one plan in one calendar year. A pure function turns a member-year into one
 * contribution per cell it counts in, at most 12 months + 4 quarters + 1 year
 * (QS_MAX_CONTRIBS) however many events it holds; keying by year keeps that
 * bound for members whose events span many years.
 *
 * CAW7, CAW8 and CAW9 only need, per month, how many of the member's active
 * events (or chains) say a thing: struct caw_counter, kept by caw_move. CAW6
 * needs the events themselves and keeps its own entity.
 */
#ifndef QS_CAW_H
#define QS_CAW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dates.h"
#include "hashmap.h"
#include "measures.h"

#define CAW_MONTHS 12
#define CAW_PERIODS 17 /* of a year: months 0-11, quarters 12-15, the year 16 */
#define CAW_ROWS 3     /* counters per month of a caw_counter */

/* One period of a year: its grain and the months (0-11) it spans. */
struct caw_period {
	enum qs_grain grain;
	int first, months;
};

extern const struct caw_period caw_periods[CAW_PERIODS];

/* The month of a day number, 0-11. */
int caw_month(int32_t day);
/* The index in caw_periods of the period of `grain` that holds month (0-11). */
size_t caw_period_of(int month, enum qs_grain grain);
/* Day number of the first day of period p of year. */
int32_t caw_period_start(int year, size_t p);

/*
 * What every member-year entity starts with: the cells it writes to, and its
 * key (tag, plan, year, id number). tag keeps kinds of entity in one index
 * apart ('I'nitial care plans by member, 'R'evised ones by care_plan_id); id
 * is the member_id's (or care_plan_id's) number in the partition's names.
 */
struct caw_entity {
	uint32_t plan;    /* interned plan_id */
	uint32_t stratum; /* interned "" */
	int32_t year;
	uint32_t id;
	char tag;
};

/* Member-year entities of one family: a fixed-width key index over a slab. */
struct caw_years {
	struct table index;
	struct slab years; /* of the family's entity type, a struct caw_entity first */
};

/* An empty index of entities of `size` bytes. */
void caw_years_init(struct caw_years *ys, size_t size);
void caw_years_free(struct caw_years *ys);

/*
 * The number of the (tag, plan, id) entity for the year holding day; created
 * zeroed but for its struct caw_entity on first sight.
 */
uint32_t caw_entity_get(struct caw_years *ys, struct family_ctx *ctx, char tag, uint32_t plan, uint32_t id,
			int32_t day);

static inline void *caw_year(const struct caw_years *ys, uint32_t n)
{
	return slab_at(&ys->years, n);
}

/* A member-year as per-month counters: count[row][month] active events (or chains) of that row. */
struct caw_counter {
	struct caw_entity e;
	int32_t count[CAW_ROWS][CAW_MONTHS];
};

/* Where one event (or chain) counts: 1 in each of `rows` (bits) of one month. year 0: nowhere. */
struct caw_place {
	uint32_t year; /* the member-year's number + 1 */
	uint8_t month;
	uint8_t rows;
};

/* Counter entities and, by member-event record number, where each event's latest version counts. */
struct caw_counts {
	struct caw_years years; /* of struct caw_counter */
	struct slab places;     /* of struct caw_place */
};

/*
 * An empty struct caw_counts at counts (void *: CAW8 and CAW9, whose state
 * is one, name this and caw_counts_release in their struct family).
 */
void caw_counts_init(void *counts);

/* The place at `day`'s month of the (tag, plan, id) member-year, created on first sight. */
struct caw_place caw_place_at(struct caw_counts *cc, struct family_ctx *ctx, char tag, uint32_t plan, uint32_t id,
			      int32_t day, unsigned rows);

/*
 * Moves what counts at *at to `to` and emits the contribution changes of the
 * (one or two) member-years involved; *at becomes `to`. Nothing happens when
 * they are the same place. contribs is the family's pure rule: it writes a
 * member-year's contributions (at most QS_MAX_CONTRIBS) and returns how many.
 */
void caw_move(struct caw_counts *cc, struct family_ctx *ctx,
	      size_t (*contribs)(const struct caw_counter *, struct qs_contrib *), struct caw_place *at,
	      struct caw_place to);

/*
 * The latest version of the member event ctx->record counts at `to` (year 0:
 * nowhere, e.g. VOID or another body): moves it there from where its previous
 * version counted.
 */
void caw_count_event(struct caw_counts *cc, struct family_ctx *ctx,
		     size_t (*contribs)(const struct caw_counter *, struct qs_contrib *), struct caw_place to);

/*
 * Distinct counts per period: the member-year counts once in each period where
 * a month has count[base] > 0 (denominator 1) and the numerator is 1 when a
 * month of the period also has count[sub] > 0. One contribution per cell.
 */
size_t caw_distinct_contribs(const struct caw_counter *y, enum qs_measure m, int base, int sub, struct qs_contrib *out);

/* Frees what the struct caw_counts at counts holds. */
void caw_counts_release(void *counts);

/*
 * The member-years held by a family whose state starts with its struct
 * caw_years, directly or as the first member of a struct caw_counts (CAW6 to
 * CAW9, each asserting so): their struct family's count.
 */
size_t caw_member_years(const void *state);

#endif
