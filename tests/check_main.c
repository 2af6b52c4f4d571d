/*
 * check_main.c: the one runner for every Check suite. Each tests/test_<m>.c
 * exposes `Suite *<m>_suite(void)`, listed once in suites.h.
 */
#include <check.h>
#include <stdlib.h>

#include "suites.h"

int main(void)
{
	SRunner *sr = srunner_create(NULL);
#define QS_SUITE(name) srunner_add_suite(sr, name##_suite());
	QS_SUITES
#undef QS_SUITE
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
