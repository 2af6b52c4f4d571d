/*
 * decode.h: Confluent-framed Avro message values -> struct qs_event.
 *
 * Each (schema id, topic) is resolved once against the worker's own reader
 * schema (schemas/NAME.avsc, embedded) into a cached plan; decoding then reads
 * the bytes with that plan, allocation-free, trusting nothing in them, and
 * validates the result. What is rejected, and why, is README.md's "What is
 * rejected (dead letters)".
 */
#ifndef QS_DECODE_H
#define QS_DECODE_H

#include <stddef.h>

#include "compiler.h"
#include "event.h"
#include "qserror.h"
#include "registry.h"

/* A buffer this size holds every reason decode_message writes, untruncated
 * for identifiers and schema names of ordinary length. */
#define QS_DECODE_ERRSTR_SIZE 512

struct decoder;

/*
 * A decoder reading writer schemas from `reg`, which is borrowed until
 * decode_free and must not be shared with another thread meanwhile.
 * Parses the embedded reader schemas and checks them against struct qs_event;
 * returns NULL with a reason in errstr if they disagree (a build defect) or
 * memory runs out. Caller frees with decode_free.
 */
struct decoder *decode_new(struct registry *reg, char *errstr, size_t errstr_size) QS_MUSTCHECK;

/* Frees the decoder and its cached plans (not the registry). NULL is a no-op. */
void decode_free(struct decoder *dec);

/*
 * Decodes the message value `value` (`len` bytes; NULL or empty allowed)
 * read from `topic` into *out. `value` is borrowed for the call; nothing in
 * *out points into it.
 * QS_OK: *out holds the event, validated. QS_REJECT: errstr
 * holds the reason for the dead letter, in words an operator can act on.
 * QS_RETRY: the registry could not be reached for a schema id not seen
 * before, or memory ran out compiling its plan; errstr says why. On either
 * failure *out is unspecified.
 * The first message of each (schema id, topic) may allocate and do I/O
 * (registry lookup, plan compilation); later ones do neither.
 */
int decode_message(struct decoder *dec, enum qs_topic topic, const void *value, size_t len, struct qs_event *out,
		   char *errstr, size_t errstr_size) QS_MUSTCHECK;

#endif
