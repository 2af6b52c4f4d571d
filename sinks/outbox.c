/*
 * outbox.c: publisher of outbox rows (dead letters and alerts), see outbox.h.
 * What a row becomes on its topic is outbox_rows.c's (one row of its descs[]
 * per stream); reading a topic back is outbox_recover.c's. Here: the
 * producer, the lock, batches and marking, shared by the streams, which are
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
 * at a time: the worker holding a PostgreSQL advisory lock (PG_LOCK_PUBLISH) on its connection;
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

#include <libpq-fe.h>
#include <librdkafka/rdkafka.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "compiler.h"
#include "errstr.h"
#include "outbox_internal.h"
#include "pg.h"
#include "xalloc.h"

/* A message's opaque: its batch generation, its stream and its index in the batch. */
static void *tag(uint32_t batch, size_t stream, size_t i)
{
	return (void *)(uintptr_t)((uint64_t)batch << 32 | (uint64_t)stream << 16 | (uint16_t)i);
}

/* The delivery report callback: the broker's acknowledgement (or not) of one message. */
static void on_ack(rd_kafka_t *rk, const rd_kafka_message_t *rkm, void *opaque)
{
	(void)rk;
	struct outbox *ob = opaque;
	uint64_t t = (uint64_t)(uintptr_t)rkm->_private;
	size_t stream = (uint16_t)(t >> 16), i = (uint16_t)t;
	if ((uint32_t)(t >> 32) != ob->batch || i >= OUTBOX_BATCH) {
		ob->streams[stream].must_recover = true; /* a report from a batch given up on: the topic decides */
		return;
	}
	ob->acks[i] = (struct ack){rkm->err ? ACK_FAILED : ACK_OK, rkm->partition, rkm->offset};
}

struct outbox *outbox_new(const struct config *cfg, struct registry *reg, char *errstr, size_t errstr_size)
{
	struct outbox *ob = xcalloc(1, sizeof(*ob), "the outbox publisher");
	rd_kafka_conf_t *conf = NULL;
	ob->cfg = cfg;
	for (size_t k = 0; k < OUTBOX_STREAMS; k++)
		if (outbox_stream_init(&ob->streams[k], outbox_stream_desc(k), cfg, reg, errstr, errstr_size))
			goto fail;
	conf = rd_kafka_conf_new();
	if (config_kafka_apply(cfg, conf, true, errstr, errstr_size) ||
	    rd_kafka_conf_set(conf, "enable.idempotence", "true", errstr, errstr_size))
		goto fail;
	rd_kafka_conf_set_dr_msg_cb(conf, on_ack);
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
	for (size_t k = 0; k < OUTBOX_STREAMS; k++)
		outbox_stream_free(&ob->streams[k]);
	free(ob->buf);
	free(ob);
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
static int mark(struct stream *s, struct pg *pg, const char *group, int64_t last, const int32_t *partitions,
		const int64_t *next, int n, char *errstr, size_t errstr_size)
{
	char last_text[24];
	snprintf(last_text, sizeof(last_text), "%lld", (long long)last);
	const char *p1[3] = {group, s->desc->stream, last_text};
	if (pg_begin(pg, errstr, errstr_size))
		return -1;
	if (pg_command(pg, NULL,
		       "INSERT INTO qualstream.outbox_batch (consumer_group, stream, last_id) VALUES ($1, $2, $3)", 3,
		       p1, NULL, errstr, errstr_size))
		goto fail;
	for (int i = 0; i < n; i++) {
		char part[16], off[24];
		snprintf(part, sizeof(part), "%d", partitions[i]);
		snprintf(off, sizeof(off), "%lld", (long long)next[i]);
		const char *p2[4] = {group, s->topic, part, off};
		if (pg_command(pg, NULL,
			       "INSERT INTO qualstream.outbox_position AS o VALUES ($1, $2, $3, $4)"
			       " ON CONFLICT (consumer_group, topic, partition) DO UPDATE"
			       " SET next_offset = greatest(o.next_offset, EXCLUDED.next_offset)",
			       4, p2, NULL, errstr, errstr_size))
			goto fail;
	}
	if (pg_commit(pg, errstr, errstr_size))
		return -1;
	s->published = last;
	skip_drop_published(s);
	return 0;
fail:
	pg_rollback(pg);
	return -1;
}

/* 1: this connection holds the group's publisher lock (taking it if free); 0: another worker has it. */
static int take_lock(struct pg *pg, const char *group, bool *just_taken, char *errstr, size_t errstr_size)
{
	const char *params[1] = {group};
	/* Ask pg_locks first: pg_try_advisory_lock would stack a second hold on our own lock. */
	static const char *const steps[2] = {
		"SELECT count(*) > 0 FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid()"
		" AND classid = " PG_KEY(PG_LOCK_PUBLISH) "::oid AND objid = hashtext('outbox:' || $1)::oid"
							  " AND objsubid = 2",
		"SELECT pg_try_advisory_lock(" PG_KEY(PG_LOCK_PUBLISH) ", hashtext('outbox:' || $1))",
	};
	*just_taken = false;
	for (int step = 0; step < 2; step++) {
		PGresult *res;
		if (pg_select(pg, "outbox publisher lock", steps[step], 1, params, PG_TEXT, &res, errstr, errstr_size))
			return -1;
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
 * Publishes one batch of stream s: the rows above H, each produced unless the
 * skip set has it; returns the batch's rows, or -1.
 */
static int publish_batch(struct outbox *ob, struct stream *s, struct pg *pg, const char *group, char *errstr,
			 size_t errstr_size)
{
	char after[24], what[96];
	snprintf(after, sizeof(after), "%lld", (long long)s->published);
	snprintf(what, sizeof(what), "reading %s", s->desc->table);
	const char *params[2] = {group, after};
	PGresult *res = NULL;
	int n = -1, rows = 0;
	if (pg_select(pg, what, s->select, 2, params, PG_BINARY, &res, errstr, errstr_size))
		goto done;
	rows = PQntuples(res);
	if (!rows) {
		n = 0;
		goto done;
	}
	ob->batch++;
	size_t stream = (size_t)(s - ob->streams), k = 0; /* k: the skip set's first id not below this row */
	int key = s->key_col, produced = rows;
	for (int i = 0; i < rows; i++) {
		int64_t id = pg_int8(PQgetvalue(res, i, 0));
		while (k < s->n_skip && s->skip[k] < id)
			k++;
		if (k < s->n_skip && s->skip[k] == id) {
			ob->acks[i] = (struct ack){ACK_OK, -1, -1};
			continue;
		}
		ob->acks[i] = (struct ack){ACK_WAITING, -1, -1};
		size_t len = outbox_encode(ob, s, res, i);
		if (!len) {
			errstr_set(errstr, errstr_size, "encoding row %lld of %s: %s", (long long)id, s->desc->table,
				   avro_strerror());
			produced = i;
			break;
		}
		/* Locals: RD_KAFKA_V_KEY casts its arguments without parentheses. */
		const char *kval = pg_value(res, i, key);
		size_t klen = (size_t)PQgetlength(res, i, key);
		rd_kafka_resp_err_t err = rd_kafka_producev(
			ob->rk, RD_KAFKA_V_TOPIC(s->topic), RD_KAFKA_V_KEY(kval, klen), RD_KAFKA_V_VALUE(ob->buf, len),
			RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
			RD_KAFKA_V_HEADER(s->desc->id_header, PQgetvalue(res, i, 0), 8),
			RD_KAFKA_V_HEADER(OUTBOX_GROUP_HEADER, group, (ssize_t)strlen(group)),
			RD_KAFKA_V_OPAQUE(tag(ob->batch, stream, (size_t)i)), RD_KAFKA_V_END);
		if (err) {
			errstr_set(errstr, errstr_size, "producing to %s: %s", s->topic, rd_kafka_err2str(err));
			produced = i;
			break;
		}
	}
	rd_kafka_flush(ob->rk, 30000);
	/* Rule (3): H and the positions move only past a batch acknowledged in full. */
	int32_t parts[OUTBOX_BATCH];
	int64_t next[OUTBOX_BATCH];
	int n_parts = 0, acked = 0;
	for (int i = 0; i < produced; i++) {
		const struct ack *a = &ob->acks[i];
		if (a->state != ACK_OK)
			continue;
		acked++;
		if (a->partition < 0)
			continue; /* skipped: positions stay below it; a recovery finds it again, then <= H */
		int j = 0;
		while (j < n_parts && parts[j] != a->partition)
			j++;
		if (j == n_parts) {
			parts[n_parts] = a->partition;
			next[n_parts++] = 0;
		}
		if (a->offset + 1 > next[j])
			next[j] = a->offset + 1;
	}
	if (acked < rows) {
		s->must_recover = true;
		if (produced == rows) /* else errstr already says why producing stopped */
			errstr_set(errstr, errstr_size, "%d of %d messages not acknowledged by the broker",
				   rows - acked, rows);
		goto done;
	}
	if (mark(s, pg, group, pg_int8(PQgetvalue(res, rows - 1, 0)), parts, next, n_parts, errstr, errstr_size)) {
		s->must_recover = true; /* the mark may have committed or not: outbox_batch decides */
		goto done;
	}
	n = rows;
done:
	PQclear(res);
	return n;
}

/* Publishes every unpublished row of stream s, reading its topic back first if need be. 0, or -1 with errstr. */
static int publish_stream(struct outbox *ob, struct stream *s, struct pg *pg, const char *group, char *errstr,
			  size_t errstr_size)
{
	if (s->must_recover) {
		if (outbox_recover(ob, s, pg, errstr, errstr_size))
			return -1;
		s->must_recover = false;
	}
	int n;
	while ((n = publish_batch(ob, s, pg, group, errstr, errstr_size)) == OUTBOX_BATCH)
		;
	return n < 0 ? -1 : 0;
}

int outbox_publish(struct outbox *ob, struct pg *pg, char *errstr, size_t errstr_size)
{
	const char *group = ob->cfg->group_id;
	bool just_taken = false;
	int held = take_lock(pg, group, &just_taken, errstr, errstr_size);
	if (held <= 0)
		return held; /* 0: another worker of the group publishes */
	/* Every stream is tried even when one fails: one stream's topic or rows never hold back the other. */
	int rc = 0;
	size_t len = 0;
	for (size_t k = 0; k < OUTBOX_STREAMS; k++) {
		struct stream *s = &ob->streams[k];
		char why[1024];
		if (just_taken)
			s->must_recover = true; /* a predecessor may have delivered rows it did not mark */
		if (!publish_stream(ob, s, pg, group, why, sizeof(why)))
			continue;
		if (len < errstr_size) {
			errstr_set(errstr + len, errstr_size - len, "%s%s: %s", rc ? "; " : "", s->desc->name, why);
			len += strlen(errstr + len);
		}
		rc = -1;
	}
	return rc;
}
