/*
 * report.h: the `report` and `rules` commands. They read what the worker
 * wrote through the evaluation views and rule tables of 002_evaluation.sql
 * (one read-only snapshot per command) and print them; they never write.
 */
#ifndef QS_REPORT_H
#define QS_REPORT_H

#include <stddef.h>
#include <stdio.h>

#include "compiler.h"
enum report_format { REPORT_TEXT, REPORT_CSV, REPORT_JSON };

struct report_options {
	const char *plan; /* only this plan_id; NULL: every plan. Borrowed for the call. */
	int year;         /* only this calendar (demonstration) year; 0: every year */
	enum report_format format;
};

/* Parses "text", "csv" or "json" into *format: 0, or -1 for anything else. */
QS_MUSTCHECK int report_parse_format(const char *name, enum report_format *format);

/*
 * Prints, per plan and year, every evaluated measure (numerator, denominator,
 * rate, benchmark, gap closure target, met), the withhold tier and the NTSV
 * rate by hospital against the target (hospitals above it first), to out in
 * opts->format. 0, or -1 with errstr set (nothing useful printed).
 */
QS_MUSTCHECK int report_print(const char *conninfo, const struct report_options *opts, FILE *out, char *errstr,
			      size_t errstr_size);

/* Prints every rule table and the rules in force per year, as text. 0 or -1 with errstr set. */
QS_MUSTCHECK int report_print_rules(const char *conninfo, FILE *out, char *errstr, size_t errstr_size);

#endif
