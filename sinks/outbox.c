/*
 * outbox.c: dead-letter publisher (see outbox.h). Rows are claimed with
 * FOR UPDATE SKIP LOCKED so that several workers of one group never publish
 * the same row at the same time, encoded with Avro C's generic values against
 * schemas/dead_letter.avsc, and marked published in the same transaction
 * once every delivery report is in.
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

#define BATCH 1000

struct outbox {
	rd_kafka_t *rk;
	char *topic;
	int32_t schema_id;
	avro_schema_t schema;
	avro_value_iface_t *iface;
	avro_value_t value;
	bool delivered[BATCH];
	char *buf;
	size_t cap;
};

/* librdkafka properties that only a consumer understands: not passed to the producer. */
static bool consumer_only(const char *key)
{
	static const char *const prefixes[] = {"group.", "auto.offset.reset", "session.timeout", "max.poll",
					       "enable.auto", "partition.assignment", "heartbeat", "fetch.",
					       "isolation.level", "enable.partition.eof", "auto.commit"};
	for (size_t i = 0; i < sizeof(prefixes) / sizeof(prefixes[0]); i++)
		if (!strncmp(key, prefixes[i], strlen(prefixes[i])))
			return true;
	return false;
}

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *rkm, void *opaque)
{
	(void)rk;
	struct outbox *ob = opaque;
	size_t i = (size_t)(uintptr_t)rkm->_private;
	if (i < BATCH)
		ob->delivered[i] = rkm->err == RD_KAFKA_RESP_ERR_NO_ERROR;
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
	for (size_t i = 0; i < cfg->kafka_len; i++)
		if (!consumer_only(cfg->kafka_keys[i]) &&
		    rd_kafka_conf_set(conf, cfg->kafka_keys[i], cfg->kafka_values[i], errstr, errstr_size))
			goto fail;
	if (rd_kafka_conf_set(conf, "enable.idempotence", "true", errstr, errstr_size))
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

static int64_t be64(const char *p)
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

/* Publishes one batch; returns rows published, or -1. */
static int publish_batch(struct outbox *ob, PGconn *conn, const char *group, char *errstr, size_t errstr_size)
{
	const char *params[1] = {group};
	PGresult *res = PQexec(conn, "BEGIN");
	PQclear(res);
	res = PQexecParams(conn,
			   "SELECT id, topic, partition, \"offset\", key, value, reason,"
			   " (extract(epoch FROM detected_at) * 1000)::bigint"
			   " FROM qualstream.dead_letter WHERE consumer_group = $1 AND published_at IS NULL"
			   " ORDER BY id LIMIT 1000 FOR UPDATE SKIP LOCKED",
			   1, NULL, params, NULL, NULL, 1);
	int n = -1;
	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		snprintf(errstr, errstr_size, "reading qualstream.dead_letter: %s", PQresultErrorMessage(res));
		goto done;
	}
	int rows = PQntuples(res);
	for (int i = 0; i < rows; i++) {
		ob->delivered[i] = false;
		size_t len = encode(ob, res, i);
		if (!len) {
			snprintf(errstr, errstr_size, "encoding a dead letter: %s", avro_strerror());
			goto done;
		}
		rd_kafka_resp_err_t err = rd_kafka_producev(
			ob->rk, RD_KAFKA_V_TOPIC(ob->topic),
			RD_KAFKA_V_KEY(PQgetisnull(res, i, 4) ? NULL : PQgetvalue(res, i, 4),
				       (size_t)PQgetlength(res, i, 4)),
			RD_KAFKA_V_VALUE(ob->buf, len), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
			RD_KAFKA_V_OPAQUE((void *)(uintptr_t)i), RD_KAFKA_V_END);
		if (err) {
			snprintf(errstr, errstr_size, "producing to %s: %s", ob->topic, rd_kafka_err2str(err));
			rows = i; /* mark what was delivered so far */
			break;
		}
	}
	rd_kafka_flush(ob->rk, 30000);
	/* Mark the acknowledged rows, as one array parameter of their ids. */
	size_t cap = (size_t)rows * 24 + 3, len = 0;
	char *ids = malloc(cap);
	if (!ids)
		goto done;
	ids[len++] = '{';
	int marked = 0;
	for (int i = 0; i < rows; i++)
		if (ob->delivered[i])
			len += (size_t)snprintf(ids + len, cap - len, "%s%lld", marked++ ? "," : "",
						(long long)be64(PQgetvalue(res, i, 0)));
	ids[len++] = '}';
	ids[len] = '\0';
	const char *mark[1] = {ids};
	PGresult *upd = PQexecParams(conn, "UPDATE qualstream.dead_letter SET published_at = now() WHERE id = ANY($1)",
				     1, NULL, mark, NULL, NULL, 0);
	if (PQresultStatus(upd) == PGRES_COMMAND_OK)
		n = marked < PQntuples(res) ? -1 : marked;
	else
		snprintf(errstr, errstr_size, "marking dead letters published: %s", PQresultErrorMessage(upd));
	if (n < 0 && marked < PQntuples(res) && PQresultStatus(upd) == PGRES_COMMAND_OK)
		snprintf(errstr, errstr_size, "%d of %d dead letters not acknowledged by the broker",
			 PQntuples(res) - marked, PQntuples(res));
	PQclear(upd);
	free(ids);
	/* Commit the marks even when some rows failed: those stay unpublished and are retried. */
	PQclear(PQexec(conn, "COMMIT"));
	PQclear(res);
	return n;
done:
	PQclear(res);
	PQclear(PQexec(conn, "ROLLBACK"));
	return -1;
}

int outbox_publish(struct outbox *ob, struct pg_conn *conn, const char *group, char *errstr, size_t errstr_size)
{
	int n;
	while ((n = publish_batch(ob, conn, group, errstr, errstr_size)) == BATCH)
		;
	return n < 0 ? -1 : 0;
}
