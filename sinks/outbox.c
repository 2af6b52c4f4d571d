/*
 * outbox.c: dead-letter publisher (see outbox.h).
 *
 * Exactly once on the topic rests on four rules. (1) One publisher per group
 * at a time: the worker holding a PostgreSQL advisory lock on its connection.
 * (2) Every message carries its dead_letter.id and group in headers. (3) The
 * rows a batch delivered are marked published in the same transaction that
 * records where the batch ended in each partition (outbox_position), and the
 * position only moves when the whole batch was acknowledged. (4) A publisher
 * that has just taken the lock (after a crash, a reconnect or a failed batch)
 * first reads the topic from the recorded positions to its end and marks the
 * ids it finds, so what a predecessor delivered but did not mark is never
 * sent again.
 */
#include "outbox.h"

#include <avro.h>
#include <endian.h>
#include <libpq-fe.h>
#include <librdkafka/rdkafka.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "embedded.h"
#include "xalloc.h"

#define BATCH 1000
#define LOCK_CLASS 0x7155 /* first key of the publisher's advisory lock; the second is the group's hash */
#define ID_HEADER "qualstream.dead_letter_id"
#define GROUP_HEADER "qualstream.group"

/* Delivery of one message of the current batch. */
struct delivery {
	int state; /* 0 waiting, 1 acknowledged, -1 failed */
	int32_t partition;
	int64_t offset;
};

struct outbox {
	const struct config *cfg; /* borrowed: kafka.* for the recovery consumer */
	rd_kafka_t *rk;
	char *topic;
	int32_t schema_id;
	avro_schema_t schema;
	avro_value_iface_t *iface;
	avro_value_t value;
	uint32_t batch; /* generation: a late report of an earlier batch is ignored */
	struct delivery delivered[BATCH];
	bool must_recover; /* a batch failed: read the topic back before sending more */
	char *buf;
	size_t cap;
};

/* A message's opaque: its batch generation and its index in the batch. */
static void *tag(uint32_t batch, size_t i)
{
	return (void *)(uintptr_t)((uint64_t)batch << 32 | (uint32_t)i);
}

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *rkm, void *opaque)
{
	(void)rk;
	struct outbox *ob = opaque;
	uint64_t t = (uint64_t)(uintptr_t)rkm->_private;
	size_t i = (uint32_t)t;
	if ((uint32_t)(t >> 32) != ob->batch || i >= BATCH) {
		ob->must_recover = true; /* a report from a batch given up on: the topic decides */
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

struct outbox *outbox_new(const struct config *cfg, struct registry *reg, char *errstr, size_t errstr_size)
{
	struct outbox *ob = calloc(1, sizeof(*ob));
	rd_kafka_conf_t *conf = NULL;
	if (!ob) {
		snprintf(errstr, errstr_size, "out of memory");
		return NULL;
	}
	ob->cfg = cfg;
	ob->must_recover = true;
	ob->topic = strdup(cfg->topic_dead_letters);
	const char *text = embedded_schema("dead_letter.avsc");
	char subject[512], why[512];
	snprintf(subject, sizeof(subject), "%s-value", cfg->topic_dead_letters);
	int rc = registry_id_for(reg, subject, text, &ob->schema_id, why, sizeof(why));
	if (rc != REGISTRY_OK) {
		snprintf(errstr, errstr_size, "dead-letter schema id: %s", why);
		goto fail;
	}
	if (avro_schema_from_json_length(text, strlen(text), &ob->schema)) {
		snprintf(errstr, errstr_size, "dead_letter.avsc: %s", avro_strerror());
		goto fail;
	}
	ob->iface = avro_generic_class_from_schema(ob->schema);
	if (!ob->iface || avro_generic_value_new(ob->iface, &ob->value)) {
		snprintf(errstr, errstr_size, "dead_letter.avsc: %s", avro_strerror());
		goto fail;
	}
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
	if (ob->iface) {
		avro_value_decref(&ob->value);
		avro_value_iface_decref(ob->iface);
	}
	if (ob->schema)
		avro_schema_decref(ob->schema);
	free(ob->topic);
	free(ob->buf);
	free(ob);
}

static int64_t be64(const void *p)
{
	uint64_t v;
	memcpy(&v, p, 8);
	return (int64_t)be64toh(v);
}

static void set_optional_bytes(avro_value_t *rec, const char *name, PGresult *res, int row, int col)
{
	avro_value_t field, branch;
	avro_value_get_by_name(rec, name, &field, NULL);
	if (PQgetisnull(res, row, col)) {
		avro_value_set_branch(&field, 0, &branch);
		avro_value_set_null(&branch);
	} else {
		avro_value_set_branch(&field, 1, &branch);
		avro_value_set_bytes(&branch, PQgetvalue(res, row, col), (size_t)PQgetlength(res, row, col));
	}
}

/* Encodes row `row` of the claimed dead letters into ob->buf; returns its length, 0 on failure. */
static size_t encode(struct outbox *ob, PGresult *res, int row)
{
	avro_value_t *rec = &ob->value, f;
	char topic[512];
	uint32_t part;
	snprintf(topic, sizeof(topic), "%.*s", PQgetlength(res, row, 1), PQgetvalue(res, row, 1));
	memcpy(&part, PQgetvalue(res, row, 2), 4);
	avro_value_get_by_name(rec, "topic", &f, NULL);
	avro_value_set_string(&f, topic);
	avro_value_get_by_name(rec, "partition", &f, NULL);
	avro_value_set_int(&f, (int32_t)be32toh(part));
	avro_value_get_by_name(rec, "offset", &f, NULL);
	avro_value_set_long(&f, be64(PQgetvalue(res, row, 3)));
	set_optional_bytes(rec, "key", res, row, 4);
	set_optional_bytes(rec, "value", res, row, 5);
	avro_value_get_by_name(rec, "reason", &f, NULL);
	avro_value_set_string_len(&f, PQgetvalue(res, row, 6), (size_t)PQgetlength(res, row, 6) + 1);
	avro_value_get_by_name(rec, "detected_at", &f, NULL);
	avro_value_set_long(&f, be64(PQgetvalue(res, row, 7)));

	size_t size;
	if (avro_value_sizeof(rec, &size))
		return 0;
	if (size + 5 > ob->cap) {
		free(ob->buf);
		ob->cap = size + 5 + 4096;
		ob->buf = malloc(ob->cap);
		if (!ob->buf)
			return 0;
	}
	uint32_t id = htobe32((uint32_t)ob->schema_id);
	ob->buf[0] = 0; /* Confluent magic byte, then the schema id */
	memcpy(ob->buf + 1, &id, 4);
	avro_writer_t writer = avro_writer_memory(ob->buf + 5, (int64_t)size);
	int rc = avro_value_write(writer, rec);
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

/* A growing text array literal "{1,2,3}" for one = ANY($n) parameter. */
struct idlist {
	char *text;
	size_t len, cap;
	size_t n;
};

static void idlist_add(struct idlist *l, long long id)
{
	if (l->len + 24 >= l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 4096;
		l->text = xrealloc(l->text, cap, "a dead-letter id list");
		l->cap = cap;
	}
	l->len += (size_t)snprintf(l->text + l->len, l->cap - l->len, "%s%lld", l->n++ ? "," : "{", id);
}

static const char *idlist_done(struct idlist *l)
{
	idlist_add(l, 0); /* id 0 never exists: it just closes a possibly empty list */
	l->text[l->len++] = '}';
	l->text[l->len] = '\0';
	return l->text;
}

/*
 * Marks `ids` published and moves the recorded positions (partition -> next
 * offset, n of them; positions only grow), in one transaction.
 */
static int mark(struct outbox *ob, PGconn *conn, const char *group, struct idlist *ids, const int32_t *partitions,
		const int64_t *next, int n, char *errstr, size_t errstr_size)
{
	const char *p1[2] = {group, idlist_done(ids)};
	if (run(conn, "BEGIN", 0, NULL, errstr, errstr_size) ||
	    run(conn,
		"UPDATE qualstream.dead_letter SET published_at = now()"
		" WHERE consumer_group = $1 AND id = ANY($2::bigint[]) AND published_at IS NULL",
		2, p1, errstr, errstr_size))
		goto fail;
	for (int i = 0; i < n; i++) {
		char part[16], off[24];
		snprintf(part, sizeof(part), "%d", partitions[i]);
		snprintf(off, sizeof(off), "%lld", (long long)next[i]);
		const char *p2[4] = {group, ob->topic, part, off};
		if (run(conn,
			"INSERT INTO qualstream.outbox_position AS o VALUES ($1, $2, $3, $4)"
			" ON CONFLICT (consumer_group, topic, partition) DO UPDATE"
			" SET next_offset = greatest(o.next_offset, EXCLUDED.next_offset)",
			4, p2, errstr, errstr_size))
			goto fail;
	}
	return run(conn, "COMMIT", 0, NULL, errstr, errstr_size);
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
			snprintf(errstr, errstr_size, "dead-letter publisher lock: %s", PQresultErrorMessage(res));
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
 * The recovery consumer: only assign(), never subscribe() or commit, so it
 * joins no group; librdkafka 2.0 still wants a group.id for assign().
 */
static rd_kafka_t *recovery_consumer(const struct outbox *ob, const char *group, char *errstr,
				     size_t errstr_size)
{
	char reader_group[512];
	snprintf(reader_group, sizeof(reader_group), "%s.dead-letter-reader", group);
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
 * Rule (4): reads the topic from the recorded positions to its end and marks
 * every id of this group found there. Waits first for this producer's own
 * messages in flight, so none lands after the read.
 */
static int recover(struct outbox *ob, PGconn *conn, const char *group, char *errstr, size_t errstr_size)
{
	int rc = -1;
	rd_kafka_t *reader = NULL;
	rd_kafka_topic_partition_list_t *list = NULL;
	const struct rd_kafka_metadata *md = NULL;
	PGresult *res = NULL;
	struct idlist ids = {0};
	int32_t *parts = NULL;
	int64_t *ends = NULL;
	bool *pending = NULL; /* partitions still to read up to ends[] */

	for (int i = 0; i < 60 && rd_kafka_outq_len(ob->rk) > 0; i++)
		rd_kafka_flush(ob->rk, 1000);
	if (rd_kafka_outq_len(ob->rk) > 0) {
		snprintf(errstr, errstr_size, "%d dead letters still in flight", rd_kafka_outq_len(ob->rk));
		return -1;
	}
	rd_kafka_topic_t *rkt = rd_kafka_topic_new(ob->rk, ob->topic, NULL);
	rd_kafka_resp_err_t err = rd_kafka_metadata(ob->rk, 0, rkt, &md, 10000);
	rd_kafka_topic_destroy(rkt);
	if (err || md->topic_cnt != 1) {
		snprintf(errstr, errstr_size, "metadata of %s: %s", ob->topic, rd_kafka_err2str(err));
		goto done;
	}
	int n = md->topics[0].err == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART ? 0 : md->topics[0].partition_cnt;
	const char *params[2] = {group, ob->topic};
	res = PQexecParams(conn,
			   "SELECT partition, next_offset FROM qualstream.outbox_position"
			   " WHERE consumer_group = $1 AND topic = $2",
			   2, NULL, params, NULL, NULL, 0);
	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		snprintf(errstr, errstr_size, "reading qualstream.outbox_position: %s", PQresultErrorMessage(res));
		goto done;
	}
	parts = xcalloc((size_t)n + 1, sizeof(*parts), "dead-letter partitions");
	ends = xcalloc((size_t)n + 1, sizeof(*ends), "dead-letter partitions");
	pending = xcalloc((size_t)n + 1, sizeof(*pending), "dead-letter partitions");
	list = rd_kafka_topic_partition_list_new(n + 1);
	int reading = 0;
	for (int i = 0; i < n; i++) {
		int32_t p = md->topics[0].partitions[i].id;
		int64_t low, high, from = 0;
		for (int r = 0; r < PQntuples(res); r++)
			if (atoi(PQgetvalue(res, r, 0)) == p)
				from = strtoll(PQgetvalue(res, r, 1), NULL, 10);
		err = rd_kafka_query_watermark_offsets(ob->rk, ob->topic, p, &low, &high, 10000);
		if (err) {
			snprintf(errstr, errstr_size, "watermarks of %s[%d]: %s", ob->topic, p, rd_kafka_err2str(err));
			goto done;
		}
		parts[i] = p;
		ends[i] = high;
		if (from < low)
			from = low;
		if (from < high) {
			rd_kafka_topic_partition_list_add(list, ob->topic, p)->offset = from;
			pending[i] = true;
			reading++;
		}
	}
	if (reading) {
		reader = recovery_consumer(ob, group, errstr, errstr_size);
		if (!reader)
			goto done;
		err = rd_kafka_assign(reader, list);
		if (err) {
			snprintf(errstr, errstr_size, "reading %s back: assign: %s", ob->topic, rd_kafka_err2str(err));
			goto done;
		}
		for (int waited = 0; reading > 0;) {
			rd_kafka_message_t *rkm = rd_kafka_consumer_poll(reader, 1000);
			if (!rkm) {
				if (++waited > 60) {
					snprintf(errstr, errstr_size, "reading %s back timed out", ob->topic);
					goto done;
				}
				continue;
			}
			int32_t p = rkm->partition;
			int64_t next = rkm->offset + 1;
			if (rkm->err && rkm->err != RD_KAFKA_RESP_ERR__PARTITION_EOF) {
				snprintf(errstr, errstr_size, "reading %s back: %s", ob->topic, rd_kafka_message_errstr(rkm));
				rd_kafka_message_destroy(rkm);
				goto done;
			}
			rd_kafka_headers_t *hdrs = NULL;
			const void *id = NULL, *grp = NULL;
			size_t id_len = 0, grp_len = 0;
			if (!rkm->err && !rd_kafka_message_headers(rkm, &hdrs) &&
			    !rd_kafka_header_get_last(hdrs, ID_HEADER, &id, &id_len) &&
			    !rd_kafka_header_get_last(hdrs, GROUP_HEADER, &grp, &grp_len) && id_len == 8 &&
			    grp_len == strlen(group) && !memcmp(grp, group, grp_len))
				idlist_add(&ids, be64(id));
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
	if (mark(ob, conn, group, &ids, parts, ends, n, errstr, errstr_size))
		goto done;
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
	free(ids.text);
	free(parts);
	free(ends);
	free(pending);
	return rc;
}

/* Publishes one batch; returns rows published, or -1. */
static int publish_batch(struct outbox *ob, PGconn *conn, const char *group, char *errstr, size_t errstr_size)
{
	const char *params[1] = {group};
	PGresult *res = PQexecParams(conn,
				     "SELECT id, topic, partition, \"offset\", key, value, reason,"
				     " (extract(epoch FROM detected_at) * 1000)::bigint"
				     " FROM qualstream.dead_letter WHERE consumer_group = $1 AND published_at IS NULL"
				     " ORDER BY id LIMIT 1000",
				     1, NULL, params, NULL, NULL, 1);
	int n = -1, rows = 0;
	struct idlist ids = {0};
	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		snprintf(errstr, errstr_size, "reading qualstream.dead_letter: %s", PQresultErrorMessage(res));
		goto done;
	}
	rows = PQntuples(res);
	if (!rows) {
		n = 0;
		goto done;
	}
	ob->batch++;
	for (int i = 0; i < rows; i++) {
		ob->delivered[i] = (struct delivery){0, -1, -1};
		size_t len = encode(ob, res, i);
		if (!len) {
			snprintf(errstr, errstr_size, "encoding a dead letter: %s", avro_strerror());
			rows = i;
			break;
		}
		rd_kafka_resp_err_t err = rd_kafka_producev(
			ob->rk, RD_KAFKA_V_TOPIC(ob->topic),
			RD_KAFKA_V_KEY(PQgetisnull(res, i, 4) ? NULL : PQgetvalue(res, i, 4),
				       (size_t)PQgetlength(res, i, 4)),
			RD_KAFKA_V_VALUE(ob->buf, len), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
			RD_KAFKA_V_HEADER(ID_HEADER, PQgetvalue(res, i, 0), 8),
			RD_KAFKA_V_HEADER(GROUP_HEADER, group, (ssize_t)strlen(group)),
			RD_KAFKA_V_OPAQUE(tag(ob->batch, (size_t)i)), RD_KAFKA_V_END);
		if (err) {
			snprintf(errstr, errstr_size, "producing to %s: %s", ob->topic, rd_kafka_err2str(err));
			rows = i;
			break;
		}
	}
	rd_kafka_flush(ob->rk, 30000);
	/* Rule (3): the position moves only past a batch acknowledged in full. */
	int32_t parts[BATCH];
	int64_t next[BATCH];
	int n_parts = 0, acked = 0;
	for (int i = 0; i < rows; i++) {
		if (ob->delivered[i].state != 1)
			continue;
		acked++;
		idlist_add(&ids, be64(PQgetvalue(res, i, 0)));
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
	bool whole = acked == PQntuples(res);
	if (mark(ob, conn, group, &ids, parts, next, whole ? n_parts : 0, errstr, errstr_size))
		goto done;
	if (!whole) {
		ob->must_recover = true;
		snprintf(errstr, errstr_size, "%d of %d dead letters not acknowledged by the broker",
			 PQntuples(res) - acked, PQntuples(res));
		goto done;
	}
	n = acked;
done:
	PQclear(res);
	free(ids.text);
	return n;
}

int outbox_publish(struct outbox *ob, struct pg_conn *conn, const char *group, char *errstr, size_t errstr_size)
{
	bool just_taken = false;
	int held = take_lock(conn, group, &just_taken, errstr, errstr_size);
	if (held <= 0)
		return held; /* 0: another worker of the group publishes */
	if ((just_taken || ob->must_recover) && recover(ob, conn, group, errstr, errstr_size))
		return -1;
	ob->must_recover = false;
	int n;
	while ((n = publish_batch(ob, conn, group, errstr, errstr_size)) == BATCH)
		;
	return n < 0 ? -1 : 0;
}
