/*
 * outbox_internal.h: what the three parts of the outbox publisher share, for
 * them only (outbox.h is the interface). outbox_rows.c turns an outbox table's
 * rows into Avro messages, each field read by a named SQL column;
 * outbox_recover.c reads a topic back after a takeover or a failed batch and
 * finds what is on it already (the skip set); outbox.c publishes batches and
 * marks them.
 */
#ifndef QS_OUTBOX_INTERNAL_H
#define QS_OUTBOX_INTERNAL_H

#include <avro.h>
#include <librdkafka/rdkafka.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "pg.h"
#include "registry.h"

#define OUTBOX_BATCH 1000 /* rows per batch: the LIMIT of every stream's query */
#define OUTBOX_STREAMS 2  /* dead letters, alerts: the rows of outbox_rows.c's descs[] */
#define OUTBOX_GROUP_HEADER "qualstream.group"

/* A field of a stream's Avro record and the SQL expression over the stream's table that gives its value. */
struct outbox_column {
	const char *field;
	const char *sql;
};

/*
 * One outbox stream: its table, its topic, its id header and how its rows
 * become Avro records (outbox_rows.c).
 */
struct stream_desc {
	const char *name;        /* what errors call its rows */
	const char *table;       /* where its rows are */
	const char *stream;      /* its key in qualstream.outbox_batch */
	const char *id_header;   /* carries the row id, 8 bytes big-endian */
	const char *schema_file; /* embedded schema of the message value */
	size_t topic_field;      /* offsetof(struct config, <the topic>) */
	const char *key_field;   /* the column of the message key */
	const char *reader;      /* group.id suffix of the recovery consumer */
	const struct outbox_column *columns;
	size_t n_columns;
};

/* What the publisher holds for one stream. */
struct stream {
	const struct stream_desc *desc;
	const char *topic; /* borrowed from the config */
	char *select;      /* at most OUTBOX_BATCH rows of group $1 above id $2 in id order (outbox_stream_init) */
	int key_col;       /* the key's column in select's result */
	int32_t schema_id;
	avro_schema_t schema;
	avro_value_iface_t *iface;
	avro_value_t value;
	bool must_recover; /* lock just taken or a batch failed: read the topic back before sending more */
	int64_t published; /* H: every row of the group up to this id is on the topic (read by outbox_recover) */
	int64_t *skip;     /* ids above H found on the topic by outbox_recover, ascending */
	size_t n_skip, skip_cap;
};

/* The broker's acknowledgement of one message of the current batch. */
enum ack_state { ACK_WAITING, ACK_OK /* acknowledged, or skipped: on the topic already */, ACK_FAILED };
struct ack {
	enum ack_state state;
	int32_t partition; /* -1 for a skipped row */
	int64_t offset;
};

struct outbox {
	const struct config *cfg; /* borrowed: group, topics, and kafka.* for the recovery consumers */
	rd_kafka_t *rk;
	struct stream streams[OUTBOX_STREAMS];
	uint32_t batch;                /* generation, over all streams: a late report of an earlier batch is ignored */
	struct ack acks[OUTBOX_BATCH]; /* of the current batch, of one stream */
	char *buf;                     /* the message being encoded */
	size_t cap;
};

/* outbox_rows.c */

/* The description of stream k, in publishing order (k < OUTBOX_STREAMS). */
const struct stream_desc *outbox_stream_desc(size_t k);
/*
 * Resolves a stream's topic, query, schema id and Avro value. reg is borrowed
 * for the call. 0, or -1 with errstr (outbox_stream_free cleans up).
 */
QS_MUSTCHECK int outbox_stream_init(struct stream *s, const struct stream_desc *desc, const struct config *cfg,
				    struct registry *reg, char *errstr, size_t errstr_size);
/* Frees what outbox_stream_init made, also when it failed half-way. */
void outbox_stream_free(struct stream *s);
/*
 * Encodes row `row` of a result of s->select into ob->buf (Confluent framing);
 * returns its length, 0 on failure (avro_strerror() says why).
 */
size_t outbox_encode(struct outbox *ob, struct stream *s, const PGresult *res, int row);

/* outbox_recover.c */

/*
 * Rule (4) of outbox.c for stream s: sets H from qualstream.outbox_batch and
 * the skip set from the topic. 0, or -1 with errstr.
 */
QS_MUSTCHECK int outbox_recover(struct outbox *ob, struct stream *s, struct pg *pg, char *errstr, size_t errstr_size);

#endif
