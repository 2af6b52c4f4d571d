/* test_dates.c: calendar arithmetic against dates worked out by hand. */
#include <check.h>
#include <string.h>

#include "dates.h"
#include "suites.h"

/* The start of the period of `grain` that holds `days`, by the library's one conversion. */
static int32_t period_start(int32_t days, enum qs_grain grain)
{
	int32_t starts[QS_GRAIN_COUNT];
	dates_period_starts(days, starts);
	return starts[grain];
}

START_TEST(known_day_numbers)
{
	/* 1970-01-01 is day 0; 2000-03-01 is 11017 (30 years, 7 leap days, + Jan/Feb 2000). */
	ck_assert_int_eq(dates_from_civil(1970, 1, 1), 0);
	ck_assert_int_eq(dates_from_civil(1969, 12, 31), -1);
	ck_assert_int_eq(dates_from_civil(2000, 3, 1), 11017);
	ck_assert_int_eq(dates_from_civil(2016, 2, 29) + 1, dates_from_civil(2016, 3, 1));
	ck_assert_int_eq(dates_from_civil(2017, 3, 1) - dates_from_civil(2017, 2, 28), 1);
}
END_TEST

START_TEST(round_trip_every_day_1900_2200)
{
	for (int32_t d = dates_from_civil(1900, 1, 1); d <= dates_from_civil(2200, 12, 31); d++) {
		int y, m, dd;
		dates_to_civil(d, &y, &m, &dd);
		ck_assert_int_eq(dates_from_civil(y, m, dd), d);
	}
}
END_TEST

START_TEST(period_starts)
{
	int32_t leap = dates_from_civil(2016, 2, 29);
	ck_assert_int_eq(period_start(leap, QS_GRAIN_MONTH), dates_from_civil(2016, 2, 1));
	ck_assert_int_eq(period_start(leap, QS_GRAIN_QUARTER), dates_from_civil(2016, 1, 1));
	ck_assert_int_eq(period_start(leap, QS_GRAIN_YEAR), dates_from_civil(2016, 1, 1));
	int32_t q4 = dates_from_civil(2017, 12, 31);
	ck_assert_int_eq(period_start(q4, QS_GRAIN_QUARTER), dates_from_civil(2017, 10, 1));
	ck_assert_int_eq(period_start(q4 + 1, QS_GRAIN_QUARTER), dates_from_civil(2018, 1, 1));
	ck_assert_int_eq(period_start(dates_from_civil(2018, 6, 30), QS_GRAIN_QUARTER), dates_from_civil(2018, 4, 1));
	ck_assert_int_eq(period_start(dates_from_civil(2018, 7, 1), QS_GRAIN_QUARTER), dates_from_civil(2018, 7, 1));
}
END_TEST

START_TEST(period_starts_cached)
{
	/*
	 * Days that share a cache slot (512 apart), before and after 1970, in an
	 * order that evicts each one's slot between two asks: every answer is the
	 * uncached one.
	 */
	static struct dates_cache cache;
	dates_cache_init(&cache);
	int32_t from = dates_from_civil(1960, 1, 1), to = dates_from_civil(1990, 1, 1);
	for (int round = 0; round < 2; round++)
		for (int32_t d = from; d < to; d += 7) {
			int32_t days[2] = {d, d + 512 * (1 + d % 3)};
			for (int i = 0; i < 2; i++) {
				const int32_t *starts = dates_cache_starts(&cache, days[i]);
				for (int g = 0; g < QS_GRAIN_COUNT; g++)
					ck_assert_int_eq(starts[g], period_start(days[i], (enum qs_grain)g));
			}
		}
	/* A fresh cache answers the days its slots start with (0 .. 511) right too. */
	dates_cache_init(&cache);
	ck_assert_int_eq(dates_cache_starts(&cache, 0)[QS_GRAIN_YEAR], dates_from_civil(1970, 1, 1));
	ck_assert_int_eq(dates_cache_starts(&cache, 45)[QS_GRAIN_MONTH], dates_from_civil(1970, 2, 1));
	ck_assert_int_eq(dates_cache_starts(&cache, 511)[QS_GRAIN_QUARTER], dates_from_civil(1971, 4, 1));
}
END_TEST

START_TEST(utc_day_of_instant)
{
	ck_assert_int_eq(dates_day_of_ms(0), 0);
	ck_assert_int_eq(dates_day_of_ms(86399999), 0);
	ck_assert_int_eq(dates_day_of_ms(86400000), 1);
	ck_assert_int_eq(dates_day_of_ms(-1), -1);
	/* 2017-06-30T23:59:59.999Z */
	ck_assert_int_eq(dates_day_of_ms(1498867199999LL), dates_from_civil(2017, 6, 30));
	char buf[11];
	ck_assert_str_eq(dates_format(dates_from_civil(2016, 2, 29), buf), "2016-02-29");
}
END_TEST

Suite *dates_suite(void)
{
	Suite *s = suite_create("dates");
	TCase *tc = tcase_create("core");
	tcase_add_test(tc, known_day_numbers);
	tcase_add_test(tc, round_trip_every_day_1900_2200);
	tcase_add_test(tc, period_starts);
	tcase_add_test(tc, period_starts_cached);
	tcase_add_test(tc, utc_day_of_instant);
	suite_add_tcase(s, tc);
	return s;
}
