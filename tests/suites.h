/* Every Check suite, one line each: QS_SUITE(<module>) for tests/test_<module>.c. */
#ifndef QS_SUITES_H
#define QS_SUITES_H

#include <check.h>

#define QS_SUITES          \
	QS_SUITE(alerts)   \
	QS_SUITE(caw)      \
	QS_SUITE(config)   \
	QS_SUITE(dates)    \
	QS_SUITE(decode)   \
	QS_SUITE(errstr)   \
	QS_SUITE(hashmap)  \
	QS_SUITE(heap)     \
	QS_SUITE(measures) \
	QS_SUITE(pgsink)   \
	QS_SUITE(redact)

#define QS_SUITE(name) Suite *name##_suite(void);
QS_SUITES
#undef QS_SUITE

/*
 * Every tcase_add_*test macro of check.h expands to _tcase_add_test; this
 * sends them through the runner's filter (check_main.c), which adds the test
 * only when `check_qualstream -k EXPR` selects it.
 */
void qs_tcase_add_test(TCase *tc, const TTest *ttest, int signal, int allowed_exit_value, int start, int end);
#define _tcase_add_test qs_tcase_add_test

#endif
