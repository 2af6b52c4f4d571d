/*
 * outbox.h: publishes rows that a flush committed to PostgreSQL (dead
 * letters) to their Kafka topic, Avro in Confluent framing, with an
 * idempotent producer. A row is marked published only after the broker
 * acknowledged it, so a crash publishes it again after restart rather than
 * never (see README "Delivery guarantees").
 */
#ifndef QS_OUTBOX_H
#define QS_OUTBOX_H

#include <stddef.h>

#include "config.h"
#include "registry.h"

struct outbox;
struct pg_conn;

/* Creates the producer and resolves the output schema ids. reg is borrowed. NULL with errstr on failure. */
__attribute__((warn_unused_result)) struct outbox *outbox_new(const struct config *cfg, struct registry *reg,
							      char *errstr, size_t errstr_size);
/* Publishes every unpublished dead letter of the group. 0, or -1 with errstr (the rows stay unpublished). */
__attribute__((warn_unused_result)) int outbox_publish(struct outbox *ob, struct pg_conn *conn, const char *group,
						       char *errstr, size_t errstr_size);
/* Flushes the producer (bounded wait) and frees it. NULL is a no-op. */
void outbox_free(struct outbox *ob);

#endif
