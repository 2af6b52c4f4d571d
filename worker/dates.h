/*
 * dates.h: proleptic Gregorian calendar arithmetic on day numbers (days since
 * 1970-01-01), the unit of every date in an event. Period starts for the three
 * grains, and the UTC day of a millisecond instant. Pure and allocation-free.
 */
#ifndef QS_DATES_H
#define QS_DATES_H

#include <stddef.h>
#include <stdint.h>

enum qs_grain { QS_GRAIN_MONTH, QS_GRAIN_QUARTER, QS_GRAIN_YEAR, QS_GRAIN_COUNT };

/* Day number of a civil date; month 1-12, day 1-31 (not validated). */
int32_t dates_from_civil(int year, int month, int day);
/* Civil date of a day number. Any pointer may be NULL. */
void dates_to_civil(int32_t days, int *year, int *month, int *day);
/* The first day of the month, quarter and year that hold `days`, indexed by enum qs_grain (one civil conversion). */
void dates_period_starts(int32_t days, int32_t starts[QS_GRAIN_COUNT]);
/*
 * A memo of dates_period_starts for the hot path: the contributions of one
 * event (retracted and added, plan and hospital strata) mostly share a date,
 * and a stream's dates fall on a few hundred days, so a direct-mapped table
 * by day answers most of them without a calendar conversion. Every slot holds
 * a valid entry from dates_cache_init on, so no day is ever answered wrong.
 */
#define DATES_CACHE_SLOTS 512

struct dates_cache {
	struct {
		int32_t day;
		int32_t starts[QS_GRAIN_COUNT];
	} slot[DATES_CACHE_SLOTS];
};

void dates_cache_init(struct dates_cache *c);

/* dates_period_starts(days), indexed by enum qs_grain; borrowed until the next call on c. */
static inline const int32_t *dates_cache_starts(struct dates_cache *c, int32_t days)
{
	size_t i = (uint32_t)days % DATES_CACHE_SLOTS;
	if (c->slot[i].day != days) {
		c->slot[i].day = days;
		dates_period_starts(days, c->slot[i].starts);
	}
	return c->slot[i].starts;
}

/* The UTC day of an instant in milliseconds since the epoch (floor, also before 1970). */
int32_t dates_day_of_ms(int64_t ms);
/* "month", "quarter", "year": the spelling stored in measure_period.grain. */
const char *dates_grain_name(enum qs_grain grain);
/* Writes YYYY-MM-DD into buf (at least 11 bytes). Returns buf. */
char *dates_format(int32_t days, char *buf);

#endif
