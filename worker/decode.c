/*
 * decode.c: Confluent-framed Avro -> struct qs_event (decode_new,
 * decode_message, decode_free).
 *
 * A message value is the Confluent wire format: a zero magic byte, the
 * big-endian writer schema id, then one Avro datum. For each (schema id,
 * topic) seen, the writer schema is fetched from the registry once and
 * compiled into a plan (decode_plan.c), kept in a cache here; each message
 * then runs its plan and the business rules (decode_validate.c). Nothing
 * here aborts: running out of memory is a reason returned like any other.
 */
#include "decode.h"

#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "decode_plan.h"
#include "decode_validate.h"
#include "errstr.h"

#define HEADER_BYTES 5 /* magic byte + big-endian schema id */

/* A cache slot: the plan compiled for (id, topic), or NULL when free. */
struct slot {
	int32_t id;
	enum qs_topic topic;
	struct plan *plan;
};

struct decoder {
	struct registry *reg; /* borrowed */
	struct readers *readers;
	struct slot *slots; /* open addressing on (id, topic) */
	size_t cap;
	size_t count;
	struct date_range dates;
};

/* ---- the plan cache ------------------------------------------------------ */

static size_t plan_slot(const struct decoder *dec, int32_t id, enum qs_topic topic)
{
	uint32_t h = ((uint32_t)id * 3u + (uint32_t)topic) * 2654435761u;
	size_t i = h & (dec->cap - 1);
	while (dec->slots[i].plan && (dec->slots[i].id != id || dec->slots[i].topic != topic))
		i = (i + 1) & (dec->cap - 1);
	return i;
}

static bool plan_put(struct decoder *dec, int32_t id, enum qs_topic topic, struct plan *p)
{
	if ((dec->count + 1) * 2 > dec->cap) {
		size_t cap = dec->cap ? dec->cap * 2 : 16;
		struct slot *slots = calloc(cap, sizeof(*slots));
		if (!slots)
			return false;
		struct slot *old = dec->slots;
		size_t old_cap = dec->cap;
		dec->slots = slots;
		dec->cap = cap;
		for (size_t i = 0; i < old_cap; i++)
			if (old[i].plan)
				dec->slots[plan_slot(dec, old[i].id, old[i].topic)] = old[i];
		free(old);
	}
	dec->slots[plan_slot(dec, id, topic)] = (struct slot){id, topic, p};
	dec->count++;
	return true;
}

/* The plan for (id, topic), not cached yet: compiled and cached. NULL with *rc
 * set (REJECT for an unknown id, RETRY when the registry or memory failed). */
static const struct plan *plan_add(struct decoder *dec, int32_t id, enum qs_topic topic, int *rc, char *errstr,
				   size_t errstr_size)
{
	const char *json = NULL;
	char why[QS_DECODE_ERRSTR_SIZE] = "";
	switch (registry_lookup(dec->reg, id, &json, why, sizeof(why))) {
	case QS_OK:
		break;
	case QS_REJECT:
		*rc = QS_REJECT;
		errstr_set(errstr, errstr_size, "unknown schema id %" PRId32 " (%s)", id, why);
		return NULL;
	default:
		*rc = QS_RETRY;
		errstr_set(errstr, errstr_size, "%s", why);
		return NULL;
	}
	struct plan *p = decode_plan_compile(dec->readers, id, topic, json);
	if (!p || !plan_put(dec, id, topic, p)) {
		decode_plan_free(p);
		*rc = QS_RETRY;
		errstr_set(errstr, errstr_size, "out of memory compiling writer schema %" PRId32, id);
		return NULL;
	}
	return p;
}

/* ---- public -------------------------------------------------------------- */

int decode_message(struct decoder *dec, enum qs_topic topic, const void *value, size_t len, struct qs_event *out,
		   char *errstr, size_t errstr_size)
{
	const uint8_t *b = value;
	int rc = QS_REJECT;

	if ((unsigned)topic >= QS_TOPIC_COUNT) {
		errstr_set(errstr, errstr_size, "no reader schema for topic number %d", (int)topic);
		return QS_REJECT;
	}
	if (!value || len == 0) {
		errstr_set(errstr, errstr_size, "message has no value");
		return QS_REJECT;
	}
	if (len < HEADER_BYTES) {
		errstr_set(errstr, errstr_size, "value of %zu byte%s is shorter than the 5-byte Confluent header", len,
			   len == 1 ? "" : "s");
		return QS_REJECT;
	}
	if (b[0] != 0) {
		errstr_set(errstr, errstr_size, "wrong magic byte 0x%02x (expected 0)", b[0]);
		return QS_REJECT;
	}
	int32_t id = (int32_t)((uint32_t)b[1] << 24 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 8 | b[4]);
	const struct plan *p = dec->cap ? dec->slots[plan_slot(dec, id, topic)].plan : NULL;
	if (!p && !(p = plan_add(dec, id, topic, &rc, errstr, errstr_size)))
		return rc;

	memset(out, 0, sizeof(*out));
	out->topic = topic;
	if (decode_plan_run(p, b, len, HEADER_BYTES, out, errstr, errstr_size) != 0 ||
	    decode_validate(&dec->dates, out, errstr, errstr_size) != 0)
		return QS_REJECT;
	return QS_OK;
}

void decode_free(struct decoder *dec)
{
	if (!dec)
		return;
	for (size_t i = 0; i < dec->cap; i++)
		decode_plan_free(dec->slots[i].plan);
	free(dec->slots);
	decode_readers_free(dec->readers);
	free(dec);
}

struct decoder *decode_new(struct registry *reg, char *errstr, size_t errstr_size)
{
	struct decoder *dec = calloc(1, sizeof(*dec));
	if (!dec) {
		errstr_set(errstr, errstr_size, "out of memory");
		goto fail;
	}
	dec->reg = reg;
	dec->dates = decode_date_range();
	dec->readers = decode_readers_new(errstr, errstr_size);
	if (!dec->readers)
		goto fail;
	return dec;
fail:
	decode_free(dec);
	return NULL;
}
