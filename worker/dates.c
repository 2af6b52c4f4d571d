/*
 * dates.c: day-number <-> civil date conversion after Howard Hinnant's
 * "chrono-compatible low-level date algorithms", which are exact over the
 * whole int32 range of days we accept and need no tables or libc time zones.
 */
#include "dates.h"

#include <stdio.h>

int32_t dates_from_civil(int year, int month, int day)
{
	int y = year - (month <= 2);
	int era = (y >= 0 ? y : y - 399) / 400;
	int yoe = y - era * 400;
	int doy = (153 * (month + (month > 2 ? -3 : 9)) + 2) / 5 + day - 1;
	int doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return (int32_t)(era * 146097 + doe - 719468);
}

void dates_to_civil(int32_t days, int *year, int *month, int *day)
{
	int64_t z = (int64_t)days + 719468;
	int64_t era = (z >= 0 ? z : z - 146096) / 146097;
	int64_t doe = z - era * 146097;
	int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	int64_t mp = (5 * doy + 2) / 153;
	int d = (int)(doy - (153 * mp + 2) / 5 + 1);
	int m = (int)(mp < 10 ? mp + 3 : mp - 9);
	if (year)
		*year = (int)(yoe + era * 400 + (m <= 2));
	if (month)
		*month = m;
	if (day)
		*day = d;
}

void dates_period_starts(int32_t days, int32_t starts[QS_GRAIN_COUNT])
{
	int y, m;
	dates_to_civil(days, &y, &m, NULL);
	starts[QS_GRAIN_MONTH] = dates_from_civil(y, m, 1);
	starts[QS_GRAIN_QUARTER] = dates_from_civil(y, (m - 1) / 3 * 3 + 1, 1);
	starts[QS_GRAIN_YEAR] = dates_from_civil(y, 1, 1);
}

void dates_cache_init(struct dates_cache *c)
{
	for (int32_t i = 0; i < DATES_CACHE_SLOTS; i++) {
		c->slot[i].day = i;
		dates_period_starts(i, c->slot[i].starts);
	}
}

int32_t dates_day_of_ms(int64_t ms)
{
	const int64_t day_ms = 86400000;
	int64_t d = ms / day_ms;
	if (ms % day_ms < 0)
		d--;
	return (int32_t)d;
}

const char *dates_grain_name(enum qs_grain grain)
{
	static const char *const names[QS_GRAIN_COUNT] = {"month", "quarter", "year"};
	return grain < QS_GRAIN_COUNT ? names[grain] : "?";
}

char *dates_format(int32_t days, char *buf)
{
	int y, m, d;
	dates_to_civil(days, &y, &m, &d);
	snprintf(buf, 11, "%04d-%02d-%02d", y, m, d);
	return buf;
}
