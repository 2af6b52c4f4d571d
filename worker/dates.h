/*
 * dates.h: proleptic Gregorian calendar arithmetic on day numbers (days since
 * 1970-01-01), the unit of every date in an event. Period starts for the three
 * grains, and the UTC day of a millisecond instant. Pure and allocation-free.
 */
#ifndef QS_DATES_H
#define QS_DATES_H

#include <stdint.h>

enum qs_grain { QS_GRAIN_MONTH, QS_GRAIN_QUARTER, QS_GRAIN_YEAR, QS_GRAIN_COUNT };

/* Day number of a civil date; month 1-12, day 1-31 (not validated). */
int32_t dates_from_civil(int year, int month, int day);
/* Civil date of a day number. Any pointer may be NULL. */
void dates_to_civil(int32_t days, int *year, int *month, int *day);
/* First day of the month, quarter or year that holds `days`. */
int32_t dates_period_start(int32_t days, enum qs_grain grain);
/* All three at once, indexed by enum qs_grain: one civil conversion instead of three. */
void dates_period_starts(int32_t days, int32_t starts[QS_GRAIN_COUNT]);
/* The UTC day of an instant in milliseconds since the epoch (floor, also before 1970). */
int32_t dates_day_of_ms(int64_t ms);
/* "month", "quarter", "year": the spelling stored in measure_period.grain. */
const char *dates_grain_name(enum qs_grain grain);
/* Writes YYYY-MM-DD into buf (at least 11 bytes). Returns buf. */
char *dates_format(int32_t days, char *buf);

#endif
