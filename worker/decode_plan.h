/*
 * decode_plan.h: inside the decoder (decode.h is its public interface). The
 * reader schemas, the plans compiled from writer schemas against them, and
 * running a plan on the Avro bytes of one message. decode.c frames messages
 * and caches the plans; decode_plan.c is the rest of what this declares.
 */
#ifndef QS_DECODE_PLAN_H
#define QS_DECODE_PLAN_H

#include <stddef.h>
#include <stdint.h>

#include "compiler.h"
#include "event.h"

/* The embedded reader schemas, one per topic, parsed and checked against struct qs_event. */
struct readers;

/* A writer schema id on a topic, compiled against the topic's reader schema. */
struct plan;

/* The reader's symbols of enum qs_frequency, in enum order (for reasons). */
extern const char *const decode_frequency_symbols[3];

/*
 * Parses the embedded reader schemas and checks them, and every default they
 * declare, against struct qs_event. NULL with a reason in errstr if they
 * disagree (a build defect) or memory runs out. Caller frees with
 * decode_readers_free.
 */
struct readers *decode_readers_new(char *errstr, size_t errstr_size) QS_MUSTCHECK;

/* NULL is a no-op. */
void decode_readers_free(struct readers *rd);

/*
 * The plan for writer schema `json` (id `id`) on `topic`, read as `rd`'s
 * schema for that topic; NULL only when memory ran out. A writer schema that
 * does not parse or resolve gives a plan that rejects every message with the
 * reason. `rd` and `json` are borrowed for the call. Caller frees with
 * decode_plan_free.
 */
struct plan *decode_plan_compile(const struct readers *rd, int32_t id, enum qs_topic topic,
				 const char *json) QS_MUSTCHECK;

/* NULL is a no-op. */
void decode_plan_free(struct plan *p);

/*
 * Reads the Avro datum at byte `start` of `value` (`len` bytes in all) into
 * *out's slots, which must be zeroed before, as plan `p` says; the datum must
 * end at the end of `value`. Allocation-free. 0, or -1 with the reason in
 * errstr (byte positions in it count from the start of `value`).
 */
int decode_plan_run(const struct plan *p, const uint8_t *value, size_t len, size_t start, struct qs_event *out,
		    char *errstr, size_t errstr_size) QS_MUSTCHECK;

#endif
