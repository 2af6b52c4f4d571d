/*
 * report_internal.h: what the `report` (report.c) and `rules`
 * (report_rules.c) commands share: the snapshot they read, and numbers
 * formatted as PostgreSQL computed them.
 */
#ifndef QS_REPORT_INTERNAL_H
#define QS_REPORT_INTERNAL_H

#include <stddef.h>

#include "compiler.h"
#include "pg.h"

/*
 * Connects and opens one read-only, repeatable-read transaction, so every
 * query of a command reads the same snapshot. NULL with errstr on failure;
 * caller pg_free()s.
 */
QS_MUSTCHECK struct pg *report_snapshot(const char *conninfo, char *errstr, size_t errstr_size);

/* A formatted number, returned by value, so no static buffers. */
struct num {
	char s[80];
};

/* A numeric as PostgreSQL computed it, without trailing zeros ("0.5500" -> "0.55"); "" for NULL. */
struct num num_plain(const char *v);
/* A proportion as a percentage with at most two decimals ("0.239" -> "23.9%"); "-" for NULL. */
struct num num_percent(const char *v);
/* A rate for people: a percentage when scale is 1, else "12.5/1000" (per scale units); "-" for NULL. */
struct num num_rate(const char *v, const char *scale);

#endif
