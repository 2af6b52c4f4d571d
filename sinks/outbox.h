/*
 * outbox.h: publishes outbox rows (dead letters and alerts) that a flush
 * committed to PostgreSQL, each table to its own Kafka topic
 * (qualstream.dead_letter to topics.dead_letters, qualstream.alerts to
 * topics.alerts), Avro in Confluent framing, with one idempotent producer. A
 * row is marked published only after the broker acknowledged it, so a crash
 * publishes it again after restart rather than never, and a new publisher
 * first reads each topic back so it is not published twice (see README
 * "Delivery guarantees").
 */
#ifndef QS_OUTBOX_H
#define QS_OUTBOX_H

#include <stddef.h>

#include "config.h"
#include "registry.h"

struct outbox;
struct pg;

/*
 * Creates the producer and resolves the schema id of each output topic
 * (subject "<topic>-value"). cfg is borrowed until outbox_free, reg for the
 * call. NULL with errstr on failure (e.g. a schema the registry lacks).
 */
QS_MUSTCHECK struct outbox *outbox_new(const struct config *cfg, struct registry *reg, char *errstr,
				       size_t errstr_size);
/*
 * Publishes every unpublished outbox row of the configuration's group, read
 * through pg (borrowed for the call; the publisher's advisory lock is held on
 * it, so pass the same connection every time until it is replaced): dead
 * letters, then alerts, each in id order; a failure of one stream does not
 * stop the other. 0 (also when another worker of the group holds the
 * publisher lock), or -1 with errstr naming the stream(s) that failed
 * ("alerts: ..."); their rows stay unpublished until a later call.
 */
QS_MUSTCHECK int outbox_publish(struct outbox *ob, struct pg *pg, char *errstr, size_t errstr_size);
/* Flushes the producer (bounded wait) and frees it. NULL is a no-op. */
void outbox_free(struct outbox *ob);

#endif
