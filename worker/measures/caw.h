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

/* What every member-year entity starts with: the cells it writes to. */
struct caw_entity {
	uint32_t plan;    /* interned plan_id */
	uint32_t stratum; /* interned "" */
	int year;
};

/*
 * The entity of (tag, plan, id) for the year holding day, from entities;
 * created zeroed (size bytes, a struct caw_entity first) in ctx->arena on first
 * sight. tag keeps kinds of entity in one map apart ('I'nitial care plans by
 * member, 'R'evised ones by care_plan_id). id is borrowed.
 */
void *caw_entity_get(struct hashmap *entities, struct family_ctx *ctx, size_t size, char tag, uint32_t plan,
		     const char *id, int32_t day);

/* A member-year as per-month counters: count[row][month] active events (or chains) of that row. */
struct caw_counter {
	struct caw_entity e;
	int32_t count[CAW_ROWS][CAW_MONTHS];
};

/* Where one event (or chain) counts: 1 in each of `rows` (bits) of one month. year NULL: nowhere. */
struct caw_place {
	struct caw_counter *year;
	int month;
	unsigned rows;
};

/* Counter entities and the place of every event that ever counted. */
struct caw_counts {
	struct hashmap events;   /* event_id -> struct caw_place: where its latest version counts */
	struct hashmap entities; /* member-year key -> struct caw_counter */
};

/* The place at `day`'s month of the (tag, plan, id) member-year, created on first sight. */
struct caw_place caw_place_at(struct caw_counts *cc, struct family_ctx *ctx, char tag, uint32_t plan,
			      const char *id, int32_t day, unsigned rows);

/*
 * Moves what counts at *at to `to` and emits the contribution changes of the
 * (one or two) member-years involved; *at becomes `to`. Nothing happens when
 * they are the same place. contribs is the family's pure rule: it writes a
 * member-year's contributions (at most QS_MAX_CONTRIBS) and returns how many.
 */
void caw_move(struct family_ctx *ctx, size_t (*contribs)(const struct caw_counter *, struct qs_contrib *),
	      struct caw_place *at, struct caw_place to);

/*
 * The latest version of member event event_id counts at `to` (year NULL:
 * nowhere, e.g. VOID or another body): moves it there from where its previous
 * version counted. An event that never counted and does not now costs nothing.
 */
void caw_count_event(struct caw_counts *cc, struct family_ctx *ctx,
		     size_t (*contribs)(const struct caw_counter *, struct qs_contrib *), const char *event_id,
		     struct caw_place to);

/*
 * Distinct counts per period: the member-year counts once in each period where
 * a month has count[base] > 0 (denominator 1) and the numerator is 1 when a
 * month of the period also has count[sub] > 0. One contribution per cell.
 */
size_t caw_distinct_contribs(const struct caw_counter *y, enum qs_measure m, int base, int sub,
			     struct qs_contrib *out);

/* Entities and event places held, for the family's count(). */
size_t caw_counts_len(const struct caw_counts *cc);
/* Frees the index tables (entities live in the family's arena). */
void caw_counts_free(struct caw_counts *cc);

#endif
