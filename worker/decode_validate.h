/*
 * decode_validate.h: inside the decoder (decode.h is its public interface).
 * The rules a decoded event must meet beyond its schema, which make the
 * message a dead letter when broken.
 */
#ifndef QS_DECODE_VALIDATE_H
#define QS_DECODE_VALIDATE_H

#include <stddef.h>
#include <stdint.h>

#include "compiler.h"
#include "event.h"

/* The days an event's dates and instants may fall on, as day numbers and as epoch milliseconds. */
struct date_range {
	int32_t min_day, max_day;
	int64_t min_ms, max_ms;
};

/* 1900-01-01..2199-12-31, the range README.md states. */
struct date_range decode_date_range(void);

/* Checks event `ev` (topic set, fields as decode_plan_run left them) against the rules for its topic.
 * 0, or -1 with the reason for the dead letter in errstr. */
int decode_validate(const struct date_range *r, const struct qs_event *ev, char *errstr,
		    size_t errstr_size) QS_MUSTCHECK;

#endif
