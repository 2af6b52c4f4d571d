/*
 * outbox.c: publisher of outbox rows (dead letters and alerts), see outbox.h.
 * Each stream is one row of descs[] below: its table, the query of its
 * unpublished rows, its topic, id header and Avro mapping. Everything else
 * (producer, lock, batches, marking, recovery) is shared, and the streams are
 * published one after the other, never interleaved.
 *
 * What is published is a high-water mark per group and stream: every row up
 * to id H is on the topic, none after it is marked (qualstream.outbox_batch,
 * migration 007). It is sound because a flush writes a group's outbox rows
 * under the group's advisory lock, so the group's ids become visible in
 * increasing order: a row the publisher has not seen never appears below one
 * it has. Marking appends one narrow row per batch; the outbox rows are
 * never rewritten.
 *
 * Exactly once on each topic rests on four rules. (1) One publisher per group
 * at a time: the worker holding a PostgreSQL advisory lock on its connection;
 * one lock covers every stream. (2) Every message carries its row id (in its
 * stream's id header) and group in headers. (3) A batch moves H to its last
 * id, in the same transaction that records where it ended in each partition
 * of its topic (outbox_position), and only when every row of it was
 * acknowledged (or skipped, below); a batch that failed in part marks
 * nothing. (4) A publisher that has just taken the lock (after a crash or a
 * reconnect), or whose batch of a stream failed, first reads that stream's
 * topic from the recorded positions to its end and keeps the ids above H it
 * finds as a skip set: what a predecessor (or its own failed batch) delivered
 * but did not mark counts as acknowledged when its batch comes, and is never
 * sent again. The positions only move with a mark, so until then every later
 * recovery finds those messages again.
 */
#include "outbox.h"

#include <avro.h>
#include <endian.h>
#include <errno.h>
#include <libpq-fe.h>
#include <librdkafka/rdkafka.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "compiler.h"
#include "embedded.h"
#include "xalloc.h"

#define BATCH 1000 /* rows per batch: the LIMIT of every stream's query */
#define STR(x) #x
#define XSTR(x) STR(x)
#define LOCK_CLASS 0x7155 /* first key of the publisher's advisory lock; the second is the group's hash */
#define GROUP_HEADER "qualstream.group"

/* Delivery of one message of the current batch. */
struct delivery {
	int state; /* 0 waiting, 1 acknowledged (or skipped: on the topic already), -1 failed */
	int32_t partition; /* -1 for a skipped row */
	int64_t offset;
};

static uint32_t be32(const void *p)
{
	uint32_t v;
	memcpy(&v, p, 4);
	return be32toh(v);
}

static int64_t be64(const void *p)
{
	uint64_t v;
	memcpy(&v, p, 8);
	return (int64_t)be64toh(v);
}

/*
 * Sets f, a field that is not a union, from column col of a binary result:
 * string from text, bytes from bytea, int from int4 (a date: days since
 * 1970-01-01), long from int8, enum from the text of one of its symbols.
 * 0, or an errno with avro_strerror() set.
 */
static int set_value(avro_value_t *f, const PGresult *res, int row, int col)
{
	char *v = PQgetvalue(res, row, col);
	int len = PQgetlength(res, row, col);
	switch (avro_value_get_type(f)) {
	case AVRO_STRING:
		return avro_value_set_string_len(f, v, (size_t)len + 1); /* libpq ends every value with a NUL */
	case AVRO_BYTES:
		return avro_value_set_bytes(f, v, (size_t)len);
	case AVRO_INT32:
		if (len == 4)
			return avro_value_set_int(f, (int32_t)be32(v));
		break;
	case AVRO_INT64:
		if (len == 8)
			return avro_value_set_long(f, be64(v));
		break;
	case AVRO_ENUM: {
		avro_schema_t schema = avro_value_get_schema(f);
		int symbol = avro_schema_enum_get_by_name(schema, v);
		if (symbol >= 0)
			return avro_value_set_enum(f, symbol);
		avro_set_error("\"%s\" is not a symbol of %s", v, avro_schema_name(schema));
		return EINVAL;
	}
	default:
		break;
	}
	avro_set_error("column %s (%d bytes) does not fit the field's type", PQfname(res, col), len);
	return EINVAL;
}

/*
 * Sets the field `name` of rec from column col (see set_value). A union
 * field is ["null", T]: branch 0 when the column is NULL, else T.
 * 0, or an errno with avro_strerror() naming the field.
 */
static int set_field(avro_value_t *rec, const char *name, const PGresult *res, int row, int col)
{
	avro_value_t f, branch;
	bool null = PQgetisnull(res, row, col);
	int rc = avro_value_get_by_name(rec, name, &f, NULL);
	if (rc)
		goto done;
	if (avro_value_get_type(&f) == AVRO_UNION) {
		rc = avro_value_set_branch(&f, null ? 0 : 1, &branch);
		if (!rc)
			rc = null ? avro_value_set_null(&branch) : set_value(&branch, res, row, col);
	} else if (null) {
		avro_set_error("column %s is NULL", PQfname(res, col));
		rc = EINVAL;
	} else {
		rc = set_value(&f, res, row, col);
	}
done:
	if (rc)
		avro_prefix_error("field %s: ", name);
	return rc;
}

/* dead_letter.avsc from a row of the dead-letter stream's select. */
static int fill_dead_letter(avro_value_t *rec, const PGresult *res, int row)
{
	return set_field(rec, "topic", res, row, 1) || set_field(rec, "partition", res, row, 2) ||
	       set_field(rec, "offset", res, row, 3) || set_field(rec, "key", res, row, 4) ||
	       set_field(rec, "value", res, row, 5) || set_field(rec, "reason", res, row, 6) ||
	       set_field(rec, "detected_at", res, row, 7);
}

/* alert.avsc from a row of the alert stream's select. */
static int fill_alert(avro_value_t *rec, const PGresult *res, int row)
{
	return set_field(rec, "alert_id", res, row, 1) || set_field(rec, "kind", res, row, 2) ||
	       set_field(rec, "state", res, row, 3) || set_field(rec, "plan_id", res, row, 4) ||
	       set_field(rec, "source", res, row, 5) || set_field(rec, "member_id", res, row, 6) ||
	       set_field(rec, "encounter_id", res, row, 7) || set_field(rec, "hospital_id", res, row, 8) ||
	       set_field(rec, "period_start", res, row, 9) || set_field(rec, "due_date", res, row, 10) ||
	       set_field(rec, "detected_at", res, row, 11) || set_field(rec, "details", res, row, 12);
}

/*
 * One outbox stream. `select` reads, in binary format, at most BATCH rows of
 * group $1 above id $2 in id order, the int8 row id first; `fill` sets the
 * Avro record from one of its rows (0, or nonzero with avro_strerror() set).
 */
struct stream_desc {
	const char *name;        /* what errors call its rows */
	const char *table;       /* where its rows are */
	const char *stream;      /* its key in qualstream.outbox_batch */
	const char *select;
	const char *id_header;   /* carries the row id, 8 bytes big-endian */
	const char *schema_file; /* embedded schema of the message value */
	size_t topic_field;      /* offsetof(struct config, <the topic>) */
	int key_col;             /* column of the message key (NULL: no key) */
	const char *reader;      /* group.id suffix of the recovery consumer */
	int (*fill)(avro_value_t *rec, const PGresult *res, int row);
};

/* The streams, in publishing order. */
static const struct stream_desc descs[] = {
	{
		.name = "dead letters",
		.table = "qualstream.dead_letter",
		.stream = "dead_letter",
		.select = "SELECT id, topic, partition, \"offset\", key, value, reason,"
			  " (extract(epoch FROM detected_at) * 1000)::bigint"
			  " FROM qualstream.dead_letter WHERE consumer_group = $1 AND id > $2::bigint"
			  " ORDER BY id LIMIT " XSTR(BATCH),
		.id_header = "qualstream.dead_letter_id",
		.schema_file = "dead_letter.avsc",
		.topic_field = offsetof(struct config, topic_dead_letters),
		.key_col = 4, /* the original message's key */
		.reader = "dead-letter-reader",
		.fill = fill_dead_letter,
	},
	{
		.name = "alerts",
		.table = "qualstream.alerts",
		.stream = "alerts",
		.select = "SELECT id, alert_id, kind, state, plan_id, source, member_id, encounter_id, hospital_id,"
			  " period_start - date '1970-01-01', due_date - date '1970-01-01',"
			  " (extract(epoch FROM detected_at) * 1000)::bigint, details"
			  " FROM qualstream.alerts WHERE consumer_group = $1 AND id > $2::bigint"
			  " ORDER BY id LIMIT " XSTR(BATCH),
		.id_header = "qualstream.alert_row",
		.schema_file = "alert.avsc",
		.topic_field = offsetof(struct config, topic_alerts),
		.key_col = 1, /* alert_id: every transition of an alert in one partition, in order */
		.reader = "alert-reader",
		.fill = fill_alert,
	},
};
#define NSTREAMS (ARRAY_LEN(descs))

/* What the publisher holds for one stream. */
struct stream {
	const struct stream_desc *desc;
	const char *topic; /* borrowed from the config */
	int32_t schema_id;
	avro_schema_t schema;
	avro_value_iface_t *iface;
	avro_value_t value;
	bool must_recover; /* lock just taken or a batch failed: read the topic back before sending more */
	int64_t published; /* H: every row of the group up to this id is on the topic (read by recover()) */
	int64_t *skip;     /* ids above H found on the topic by recover(), ascending */
	size_t n_skip, skip_cap;
};

struct outbox {
	const struct config *cfg; /* borrowed: topics, and kafka.* for the recovery consumers */
	rd_kafka_t *rk;
	struct stream streams[NSTREAMS];
	uint32_t batch; /* generation, over all streams: a late report of an earlier batch is ignored */
	struct delivery delivered[BATCH]; /* of the current batch, of one stream */
	char *buf; /* the message being encoded */
	size_t cap;
};

/* A message's opaque: its batch generation, its stream and its index in the batch. */
static void *tag(uint32_t batch, size_t stream, size_t i)
{
	return (void *)(uintptr_t)((uint64_t)batch << 32 | (uint64_t)stream << 16 | (uint16_t)i);
}

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *rkm, void *opaque)
{
	(void)rk;
	struct outbox *ob = opaque;
	uint64_t t = (uint64_t)(uintptr_t)rkm->_private;
	size_t stream = (uint16_t)(t >> 16), i = (uint16_t)t;
	if ((uint32_t)(t >> 32) != ob->batch || i >= BATCH) {
		ob->streams[stream].must_recover = true; /* a report from a batch given up on: the topic decides */
		return;
	}
	ob->delivered[i] = (struct delivery){rkm->err ? -1 : 1, rkm->partition, rkm->offset};
}

static const char *embedded_schema(const char *name)
{
	for (const struct embedded_file *f = embedded_schemas; f->name; f++)
		if (!strcmp(f->name, name))
			return f->text;
	return NULL;
}

/* Resolves a stream's topic, schema id and Avro value. 0, or -1 with errstr (stream_free cleans up). */
static int stream_init(struct stream *s, const struct stream_desc *desc, const struct config *cfg,
		       struct registry *reg, char *errstr, size_t errstr_size)
{
	s->desc = desc;
	s->topic = *(char *const *)((const char *)cfg + desc->topic_field);
	s->must_recover = true;
	const char *text = embedded_schema(desc->schema_file);
	if (!text) {
		snprintf(errstr, errstr_size, "%s is not embedded in the binary", desc->schema_file);
		return -1;
	}
	char subject[512], why[512];
	snprintf(subject, sizeof(subject), "%s-value", s->topic);
	if (registry_id_for(reg, subject, text, &s->schema_id, why, sizeof(why)) != QS_OK) {
		snprintf(errstr, errstr_size, "schema id of %s (subject %s): %s", desc->schema_file, subject, why);
		return -1;
	}
	if (avro_schema_from_json_length(text, strlen(text), &s->schema)) {
		snprintf(errstr, errstr_size, "%s: %s", desc->schema_file, avro_strerror());
		return -1;
	}
	s->iface = avro_generic_class_from_schema(s->schema);
	if (!s->iface || avro_generic_value_new(s->iface, &s->value)) {
		snprintf(errstr, errstr_size, "%s: %s", desc->schema_file, avro_strerror());
		return -1;
	}
	return 0;
}

/* Frees what stream_init made, also when it failed half-way. */
static void stream_free(struct stream *s)
{
	free(s->skip);
	if (s->value.iface)
		avro_value_decref(&s->value);
	if (s->iface)
		avro_value_iface_decref(s->iface);
	if (s->schema)
		avro_schema_decref(s->schema);
}

struct outbox *outbox_new(const struct config *cfg, struct registry *reg, char *errstr, size_t errstr_size)
{
	struct outbox *ob = calloc(1, sizeof(*ob));
	rd_kafka_conf_t *conf = NULL;
	if (!ob) {
		snprintf(errstr, errstr_size, "out of memory");
		return NULL;
	}
	ob->cfg = cfg;
	for (size_t k = 0; k < NSTREAMS; k++)
		if (stream_init(&ob->streams[k], &descs[k], cfg, reg, errstr, errstr_size))
			goto fail;
	conf = rd_kafka_conf_new();
	if (config_kafka_apply(cfg, conf, true, errstr, errstr_size) ||
	    rd_kafka_conf_set(conf, "enable.idempotence", "true", errstr, errstr_size))
		goto fail;
	rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
	rd_kafka_conf_set_opaque(conf, ob);
	ob->rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, errstr_size);
	if (!ob->rk)
		goto fail;
	return ob; /* conf belongs to rk now */
fail:
	if (conf)
		rd_kafka_conf_destroy(conf);
	outbox_free(ob);
	return NULL;
}

void outbox_free(struct outbox *ob)
{
	if (!ob)
		return;
	if (ob->rk) {
		rd_kafka_flush(ob->rk, 10000);
		rd_kafka_destroy(ob->rk);
	}
	for (size_t k = 0; k < NSTREAMS; k++)
		stream_free(&ob->streams[k]);
	free(ob->buf);
	free(ob);
}

/* Encodes row `row` of a batch of stream s into ob->buf; returns its length, 0 on failure (avro_strerror()). */
static size_t encode(struct outbox *ob, struct stream *s, const PGresult *res, int row)
{
	size_t size;
	if (s->desc->fill(&s->value, res, row) || avro_value_sizeof(&s->value, &size))
		return 0;
	if (size + 5 > ob->cap) {
		free(ob->buf);
		ob->cap = size + 5 + 4096;
		ob->buf = xmalloc(ob->cap, "an outbox message");
	}
	uint32_t id = htobe32((uint32_t)s->schema_id);
	ob->buf[0] = 0; /* Confluent magic byte, then the schema id */
	memcpy(ob->buf + 1, &id, 4);
	avro_writer_t writer = avro_writer_memory(ob->buf + 5, (int64_t)size);
	int rc = avro_value_write(writer, &s->value);
	avro_writer_free(writer);
	return rc ? 0 : size + 5;
}

/* Runs a statement; 0 on success, else -1 with errstr. */
static int run(PGconn *conn, const char *sql, int n, const char *const *params, char *errstr, size_t errstr_size)
{
	PGresult *res = PQexecParams(conn, sql, n, NULL, params, NULL, NULL, 0);
	int rc = PQresultStatus(res) == PGRES_COMMAND_OK || PQresultStatus(res) == PGRES_TUPLES_OK ? 0 : -1;
	if (rc)
		snprintf(errstr, errstr_size, "%.40s...: %s", sql, PQresultErrorMessage(res));
	PQclear(res);
	return rc;
}

static void skip_add(struct stream *s, int64_t id)
{
	if (s->n_skip == s->skip_cap) {
		s->skip_cap = s->skip_cap ? s->skip_cap * 2 : 1024;
		s->skip = xrealloc(s->skip, s->skip_cap * sizeof(*s->skip), "an outbox skip set");
	}
	s->skip[s->n_skip++] = id;
}

static int by_id(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
	return (x > y) - (x < y);
}

/* Forgets the skip set's ids up to H, which a mark just covered. */
static void skip_drop_published(struct stream *s)
{
	size_t i = 0;
	while (i < s->n_skip && s->skip[i] <= s->published)
		i++;
	memmove(s->skip, s->skip + i, (s->n_skip - i) * sizeof(*s->skip));
	s->n_skip -= i;
}

/*
 * Marks the rows of stream s up to id `last` published (a batch row of
 * qualstream.outbox_batch) and moves the recorded positions of its topic
 * (partition -> next offset, n of them; positions only grow), in one
 * transaction. On success H is `last`.
 */
static int mark(struct stream *s, PGconn *conn, const char *group, int64_t last, const int32_t *partitions,
		const int64_t *next, int n, char *errstr, size_t errstr_size)
{
	char last_text[24];
	snprintf(last_text, sizeof(last_text), "%lld", (long long)last);
	const char *p1[3] = {group, s->desc->stream, last_text};
	if (run(conn, "BEGIN", 0, NULL, errstr, errstr_size) ||
	    run(conn, "INSERT INTO qualstream.outbox_batch (consumer_group, stream, last_id) VALUES ($1, $2, $3)", 3,
		p1, errstr, errstr_size))
		goto fail;
	for (int i = 0; i < n; i++) {
		char part[16], off[24];
		snprintf(part, sizeof(part), "%d", partitions[i]);
		snprintf(off, sizeof(off), "%lld", (long long)next[i]);
		const char *p2[4] = {group, s->topic, part, off};
		if (run(conn,
			"INSERT INTO qualstream.outbox_position AS o VALUES ($1, $2, $3, $4)"
			" ON CONFLICT (consumer_group, topic, partition) DO UPDATE"
			" SET next_offset = greatest(o.next_offset, EXCLUDED.next_offset)",
			4, p2, errstr, errstr_size))
			goto fail;
	}
	if (run(conn, "COMMIT", 0, NULL, errstr, errstr_size))
		return -1;
	s->published = last;
	skip_drop_published(s);
	return 0;
fail:;
	char ignore[1];
	(void)run(conn, "ROLLBACK", 0, NULL, ignore, sizeof(ignore));
	return -1;
}

/* 1: this connection holds the group's publisher lock (taking it if free); 0: another worker has it. */
static int take_lock(PGconn *conn, const char *group, bool *just_taken, char *errstr, size_t errstr_size)
{
	char cls[16];
	snprintf(cls, sizeof(cls), "%d", LOCK_CLASS);
	const char *params[2] = {cls, group};
	/* Ask pg_locks first: pg_try_advisory_lock would stack a second hold on our own lock. */
	static const char *const steps[2] = {
		"SELECT count(*) > 0 FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid()"
		" AND classid = $1::int::oid AND objid = hashtext('outbox:' || $2)::oid AND objsubid = 2",
		"SELECT pg_try_advisory_lock($1::int, hashtext('outbox:' || $2))",
	};
	*just_taken = false;
	for (int step = 0; step < 2; step++) {
		PGresult *res = PQexecParams(conn, steps[step], 2, NULL, params, NULL, NULL, 0);
		if (PQresultStatus(res) != PGRES_TUPLES_OK) {
			snprintf(errstr, errstr_size, "outbox publisher lock: %s", PQresultErrorMessage(res));
			PQclear(res);
			return -1;
		}
		bool yes = PQgetvalue(res, 0, 0)[0] == 't';
		PQclear(res);
		if (yes) {
			*just_taken = step == 1;
			return 1;
		}
	}
	return 0;
}

/*
 * The recovery consumer of stream s: only assign(), never subscribe() or
 * commit, so it joins no group; librdkafka 2.0 still wants a group.id for
 * assign().
 */
static rd_kafka_t *recovery_consumer(const struct outbox *ob, const struct stream *s, const char *group,
				     char *errstr, size_t errstr_size)
{
	char reader_group[512];
	snprintf(reader_group, sizeof(reader_group), "%s.%s", group, s->desc->reader);
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	if (config_kafka_apply(ob->cfg, conf, true, errstr, errstr_size) ||
	    rd_kafka_conf_set(conf, "group.id", reader_group, errstr, errstr_size) ||
	    rd_kafka_conf_set(conf, "enable.auto.commit", "false", errstr, errstr_size) ||
	    rd_kafka_conf_set(conf, "enable.partition.eof", "true", errstr, errstr_size) ||
	    rd_kafka_conf_set(conf, "isolation.level", "read_uncommitted", errstr, errstr_size))
		goto fail;
	rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, errstr_size);
	if (rk)
		return rk;
fail:
	rd_kafka_conf_destroy(conf);
	return NULL;
}

/*
 * Rule (4) for stream s: reads H from qualstream.outbox_batch, then its topic
 * from the recorded positions to its end, and makes the skip set of every id
 * above H of this group found there under the stream's id header. Waits first
 * for every message of this producer in flight (of either stream), so none
 * lands after the read.
 */
static int recover(struct outbox *ob, struct stream *s, PGconn *conn, const char *group, char *errstr,
		   size_t errstr_size)
{
	int rc = -1;
	rd_kafka_t *reader = NULL;
	rd_kafka_topic_partition_list_t *list = NULL;
	const struct rd_kafka_metadata *md = NULL;
	PGresult *res = NULL;
	int32_t *parts = NULL;
	int64_t *ends = NULL;
	bool *pending = NULL; /* partitions still to read up to ends[] */

	for (int i = 0; i < 60 && rd_kafka_outq_len(ob->rk) > 0; i++)
		rd_kafka_flush(ob->rk, 1000);
	if (rd_kafka_outq_len(ob->rk) > 0) {
		snprintf(errstr, errstr_size, "%d outbox messages still in flight", rd_kafka_outq_len(ob->rk));
		return -1;
	}
	rd_kafka_topic_t *rkt = rd_kafka_topic_new(ob->rk, s->topic, NULL);
	rd_kafka_resp_err_t err = rd_kafka_metadata(ob->rk, 0, rkt, &md, 10000);
	rd_kafka_topic_destroy(rkt);
	if (err || md->topic_cnt != 1) {
		snprintf(errstr, errstr_size, "metadata of %s: %s", s->topic, rd_kafka_err2str(err));
		goto done;
	}
	int n = md->topics[0].err == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART ? 0 : md->topics[0].partition_cnt;
	/* H and the positions in one snapshot: a mark writes both in one transaction. */
	const char *params[3] = {group, s->topic, s->desc->stream};
	res = PQexecParams(conn,
			   "SELECT -1, coalesce(max(last_id), 0) FROM qualstream.outbox_batch"
			   " WHERE consumer_group = $1 AND stream = $3"
			   " UNION ALL SELECT partition, next_offset FROM qualstream.outbox_position"
			   " WHERE consumer_group = $1 AND topic = $2 ORDER BY 1",
			   3, NULL, params, NULL, NULL, 0);
	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		snprintf(errstr, errstr_size, "reading the outbox mark and positions: %s", PQresultErrorMessage(res));
		goto done;
	}
	s->published = strtoll(PQgetvalue(res, 0, 1), NULL, 10); /* the first row, partition -1, holds H */
	s->n_skip = 0;
	parts = xcalloc((size_t)n + 1, sizeof(*parts), "outbox partitions");
	ends = xcalloc((size_t)n + 1, sizeof(*ends), "outbox partitions");
	pending = xcalloc((size_t)n + 1, sizeof(*pending), "outbox partitions");
	list = rd_kafka_topic_partition_list_new(n + 1);
	int reading = 0;
	for (int i = 0; i < n; i++) {
		int32_t p = md->topics[0].partitions[i].id;
		int64_t low, high, from = 0;
		for (int r = 0; r < PQntuples(res); r++)
			if (atoi(PQgetvalue(res, r, 0)) == p)
				from = strtoll(PQgetvalue(res, r, 1), NULL, 10);
		err = rd_kafka_query_watermark_offsets(ob->rk, s->topic, p, &low, &high, 10000);
		if (err) {
			snprintf(errstr, errstr_size, "watermarks of %s[%d]: %s", s->topic, p, rd_kafka_err2str(err));
			goto done;
		}
		parts[i] = p;
		ends[i] = high;
		if (from < low)
			from = low;
		if (from < high) {
			rd_kafka_topic_partition_list_add(list, s->topic, p)->offset = from;
			pending[i] = true;
			reading++;
		}
	}
	if (reading) {
		reader = recovery_consumer(ob, s, group, errstr, errstr_size);
		if (!reader)
			goto done;
		err = rd_kafka_assign(reader, list);
		if (err) {
			snprintf(errstr, errstr_size, "reading %s back: assign: %s", s->topic, rd_kafka_err2str(err));
			goto done;
		}
		for (int waited = 0; reading > 0;) {
			rd_kafka_message_t *rkm = rd_kafka_consumer_poll(reader, 1000);
			if (!rkm) {
				if (++waited > 60) {
					snprintf(errstr, errstr_size, "reading %s back timed out", s->topic);
					goto done;
				}
				continue;
			}
			int32_t p = rkm->partition;
			int64_t next = rkm->offset + 1;
			if (rkm->err && rkm->err != RD_KAFKA_RESP_ERR__PARTITION_EOF) {
				snprintf(errstr, errstr_size, "reading %s back: %s", s->topic, rd_kafka_message_errstr(rkm));
				rd_kafka_message_destroy(rkm);
				goto done;
			}
			rd_kafka_headers_t *hdrs = NULL;
			const void *id = NULL, *grp = NULL;
			size_t id_len = 0, grp_len = 0;
			if (!rkm->err && !rd_kafka_message_headers(rkm, &hdrs) &&
			    !rd_kafka_header_get_last(hdrs, s->desc->id_header, &id, &id_len) &&
			    !rd_kafka_header_get_last(hdrs, GROUP_HEADER, &grp, &grp_len) && id_len == 8 &&
			    grp_len == strlen(group) && !memcmp(grp, group, grp_len) && be64(id) > s->published)
				skip_add(s, be64(id));
			if (rkm->err)
				next = rkm->offset;
			rd_kafka_message_destroy(rkm);
			for (int i = 0; i < n; i++)
				if (pending[i] && parts[i] == p && next >= ends[i]) {
					pending[i] = false; /* read up to the end it had when recovery began */
					reading--;
				}
		}
	}
	qsort(s->skip, s->n_skip, sizeof(*s->skip), by_id);
	rc = 0;
done:
	if (reader) {
		rd_kafka_consumer_close(reader);
		rd_kafka_destroy(reader);
	}
	if (list)
		rd_kafka_topic_partition_list_destroy(list);
	if (md)
		rd_kafka_metadata_destroy(md);
	PQclear(res);
	free(parts);
	free(ends);
	free(pending);
	return rc;
}

/*
 * Publishes one batch of stream s: the rows above H, each produced unless the
 * skip set has it; returns the batch's rows, or -1.
 */
static int publish_batch(struct outbox *ob, struct stream *s, PGconn *conn, const char *group, char *errstr,
			 size_t errstr_size)
{
	char after[24];
	snprintf(after, sizeof(after), "%lld", (long long)s->published);
	const char *params[2] = {group, after};
	PGresult *res = PQexecParams(conn, s->desc->select, 2, NULL, params, NULL, NULL, 1);
	int n = -1, rows = 0;
	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		snprintf(errstr, errstr_size, "reading %s: %s", s->desc->table, PQresultErrorMessage(res));
		goto done;
	}
	rows = PQntuples(res);
	if (!rows) {
		n = 0;
		goto done;
	}
	ob->batch++;
	size_t stream = (size_t)(s - ob->streams), k = 0; /* k: the skip set's first id not below this row */
	int key = s->desc->key_col, produced = rows;
	for (int i = 0; i < rows; i++) {
		int64_t id = be64(PQgetvalue(res, i, 0));
		while (k < s->n_skip && s->skip[k] < id)
			k++;
		if (k < s->n_skip && s->skip[k] == id) {
			ob->delivered[i] = (struct delivery){1, -1, -1};
			continue;
		}
		ob->delivered[i] = (struct delivery){0, -1, -1};
		size_t len = encode(ob, s, res, i);
		if (!len) {
			snprintf(errstr, errstr_size, "encoding row %lld of %s: %s", (long long)id, s->desc->table,
				 avro_strerror());
			produced = i;
			break;
		}
		/* A local: RD_KAFKA_V_KEY casts its argument without parentheses. */
		const char *kval = PQgetisnull(res, i, key) ? NULL : PQgetvalue(res, i, key);
		rd_kafka_resp_err_t err = rd_kafka_producev(
			ob->rk, RD_KAFKA_V_TOPIC(s->topic), RD_KAFKA_V_KEY(kval, (size_t)PQgetlength(res, i, key)),
			RD_KAFKA_V_VALUE(ob->buf, len), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
			RD_KAFKA_V_HEADER(s->desc->id_header, PQgetvalue(res, i, 0), 8),
			RD_KAFKA_V_HEADER(GROUP_HEADER, group, (ssize_t)strlen(group)),
			RD_KAFKA_V_OPAQUE(tag(ob->batch, stream, (size_t)i)), RD_KAFKA_V_END);
		if (err) {
			snprintf(errstr, errstr_size, "producing to %s: %s", s->topic, rd_kafka_err2str(err));
			produced = i;
			break;
		}
	}
	rd_kafka_flush(ob->rk, 30000);
	/* Rule (3): H and the positions move only past a batch acknowledged in full. */
	int32_t parts[BATCH];
	int64_t next[BATCH];
	int n_parts = 0, acked = 0;
	for (int i = 0; i < produced; i++) {
		if (ob->delivered[i].state != 1)
			continue;
		acked++;
		if (ob->delivered[i].partition < 0)
			continue; /* skipped: the positions stay below its message, which a recovery finds again, then <= H */
		int j = 0;
		while (j < n_parts && parts[j] != ob->delivered[i].partition)
			j++;
		if (j == n_parts) {
			parts[n_parts] = ob->delivered[i].partition;
			next[n_parts++] = 0;
		}
		if (ob->delivered[i].offset + 1 > next[j])
			next[j] = ob->delivered[i].offset + 1;
	}
	if (acked < rows) {
		s->must_recover = true;
		if (produced == rows) /* else errstr already says why producing stopped */
			snprintf(errstr, errstr_size, "%d of %d messages not acknowledged by the broker", rows - acked,
				 rows);
		goto done;
	}
	if (mark(s, conn, group, be64(PQgetvalue(res, rows - 1, 0)), parts, next, n_parts, errstr, errstr_size)) {
		s->must_recover = true; /* the mark may have committed or not: outbox_batch decides */
		goto done;
	}
	n = rows;
done:
	PQclear(res);
	return n;
}

/* Publishes every unpublished row of stream s, reading its topic back first if need be. 0, or -1 with errstr. */
static int publish_stream(struct outbox *ob, struct stream *s, PGconn *conn, const char *group, char *errstr,
			  size_t errstr_size)
{
	if (s->must_recover) {
		if (recover(ob, s, conn, group, errstr, errstr_size))
			return -1;
		s->must_recover = false;
	}
	int n;
	while ((n = publish_batch(ob, s, conn, group, errstr, errstr_size)) == BATCH)
		;
	return n < 0 ? -1 : 0;
}

int outbox_publish(struct outbox *ob, struct pg_conn *conn, const char *group, char *errstr, size_t errstr_size)
{
	bool just_taken = false;
	int held = take_lock(conn, group, &just_taken, errstr, errstr_size);
	if (held <= 0)
		return held; /* 0: another worker of the group publishes */
	/* Every stream is tried even when one fails: one stream's topic or rows never hold back the other. */
	int rc = 0;
	size_t len = 0;
	for (size_t k = 0; k < NSTREAMS; k++) {
		struct stream *s = &ob->streams[k];
		char why[1024];
		if (just_taken)
			s->must_recover = true; /* a predecessor may have delivered rows it did not mark */
		if (!publish_stream(ob, s, conn, group, why, sizeof(why)))
			continue;
		size_t end = strlen(why);
		if (end && why[end - 1] == '\n')
			why[end - 1] = '\0'; /* libpq ends its messages so: keep the streams' errors on one line */
		if (len < errstr_size)
			len += (size_t)snprintf(errstr + len, errstr_size - len, "%s%s: %s", rc ? "; " : "",
						s->desc->name, why);
		rc = -1;
	}
	return rc;
}
