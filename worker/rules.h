/*
 * rules.h: the rule parameters that change what the worker counts. They live
 * in qualstream.rule (seeded by a migration, editable by the user) and are
 * read once at start-up; the C code holds no default. Parameters that only
 * change how counts are judged (targets, benchmarks, phase-in) stay in SQL and
 * are applied by the views at query time.
 */
#ifndef QS_RULES_H
#define QS_RULES_H

#include <stdint.h>

struct qs_rules {
	/* CW13 timeliness: an original is on time when submitted at most this many days after service_to. */
	int32_t cw13_timely_days;
	/* Alerts: an owed original raises DUE_SOON at this many days after service_to (OVERDUE after cw13_timely_days). */
	int32_t alert_due_soon_days;
};

#endif
