/*
 * outbox_recover.c: rule (4) of the publisher (outbox.c). After taking the
 * lock or failing a batch, the publisher cannot know which of its stream's
 * unmarked rows are on the topic already; this reads the topic back, from
 * the positions the last mark recorded to the end it has now, and gathers
 * the ids above H of this group's messages into the stream's skip set. In
 * steps: wait for the producer's messages in flight, read H and the
 * positions, plan what to read of each partition, read it.
 */
#include "outbox_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "errstr.h"
#include "xalloc.h"

/* What recovery reads of one partition of the topic. */
struct readback {
	int32_t partition;
	int64_t end;  /* the high watermark when recovery began */
	bool pending; /* still to read up to end */
};

/* Waits for every message of this producer in flight (of either stream), so none lands after the read. */
static int drain_in_flight(struct outbox *ob, char *errstr, size_t errstr_size)
{
	for (int i = 0; i < 60 && rd_kafka_outq_len(ob->rk) > 0; i++)
		rd_kafka_flush(ob->rk, 1000);
	if (rd_kafka_outq_len(ob->rk) > 0) {
		errstr_set(errstr, errstr_size, "%d outbox messages still in flight", rd_kafka_outq_len(ob->rk));
		return -1;
	}
	return 0;
}

/* The topic's metadata (caller rd_kafka_metadata_destroy()s), NULL with errstr. */
static const struct rd_kafka_metadata *topic_metadata(struct outbox *ob, const struct stream *s, char *errstr,
						      size_t errstr_size)
{
	const struct rd_kafka_metadata *md = NULL;
	rd_kafka_topic_t *rkt = rd_kafka_topic_new(ob->rk, s->topic, NULL);
	rd_kafka_resp_err_t err = rd_kafka_metadata(ob->rk, 0, rkt, &md, 10000);
	rd_kafka_topic_destroy(rkt);
	if (err || md->topic_cnt != 1) {
		errstr_set(errstr, errstr_size, "metadata of %s: %s", s->topic, rd_kafka_err2str(err));
		if (md)
			rd_kafka_metadata_destroy(md);
		return NULL;
	}
	return md;
}

/*
 * Reads H into s->published and returns the recorded positions as rows
 * (partition, next_offset) in *res (caller PQclear()s): in one snapshot,
 * since a mark writes both in one transaction.
 */
static int read_mark(struct stream *s, struct pg *pg, const char *group, PGresult **res, char *errstr,
		     size_t errstr_size)
{
	const char *params[3] = {group, s->topic, s->desc->stream};
	if (pg_select(pg, "reading the outbox mark and positions",
		      "SELECT -1, coalesce(max(last_id), 0) FROM qualstream.outbox_batch"
		      " WHERE consumer_group = $1 AND stream = $3"
		      " UNION ALL SELECT partition, next_offset FROM qualstream.outbox_position"
		      " WHERE consumer_group = $1 AND topic = $2 ORDER BY 1",
		      3, params, PG_TEXT, res, errstr, errstr_size))
		return -1;
	s->published = strtoll(PQgetvalue(*res, 0, 1), NULL, 10); /* the first row, partition -1, holds H */
	s->n_skip = 0;
	return 0;
}

/*
 * Plans the read of each of the n partitions of md's topic: from its recorded
 * position (0 when it has none; never below the log's start) to its end now,
 * added to list when there is anything between. Returns how many partitions
 * are to be read, or -1 with errstr.
 */
static int plan_reads(struct outbox *ob, const struct stream *s, const struct rd_kafka_metadata *md,
		      const PGresult *positions, struct readback *parts, int n, rd_kafka_topic_partition_list_t *list,
		      char *errstr, size_t errstr_size)
{
	int reading = 0;
	for (int i = 0; i < n; i++) {
		int32_t p = md->topics[0].partitions[i].id;
		int64_t low, high, from = 0;
		for (int r = 0; r < PQntuples(positions); r++)
			if (atoi(PQgetvalue(positions, r, 0)) == p)
				from = strtoll(PQgetvalue(positions, r, 1), NULL, 10);
		rd_kafka_resp_err_t err = rd_kafka_query_watermark_offsets(ob->rk, s->topic, p, &low, &high, 10000);
		if (err) {
			errstr_set(errstr, errstr_size, "watermarks of %s[%d]: %s", s->topic, p, rd_kafka_err2str(err));
			return -1;
		}
		if (from < low)
			from = low;
		parts[i] = (struct readback){p, high, from < high};
		if (parts[i].pending) {
			rd_kafka_topic_partition_list_add(list, s->topic, p)->offset = from;
			reading++;
		}
	}
	return reading;
}

/*
 * The recovery consumer of stream s: only assign(), never subscribe() or
 * commit, so it joins no group; librdkafka 2.0 still wants a group.id for
 * assign().
 */
static rd_kafka_t *recovery_consumer(const struct outbox *ob, const struct stream *s, const char *group, char *errstr,
				     size_t errstr_size)
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

static void skip_add(struct stream *s, int64_t id)
{
	if (s->n_skip == s->skip_cap) {
		s->skip_cap = s->skip_cap ? s->skip_cap * 2 : 1024;
		s->skip = xrealloc(s->skip, s->skip_cap * sizeof(*s->skip), "an outbox skip set");
	}
	s->skip[s->n_skip++] = id;
}

/* Adds the message's row id to the skip set when it is one of this group's, above H. */
static void skip_if_ours(struct stream *s, const rd_kafka_message_t *rkm, const char *group)
{
	rd_kafka_headers_t *hdrs = NULL;
	const void *id = NULL, *grp = NULL;
	size_t id_len = 0, grp_len = 0;
	if (!rd_kafka_message_headers(rkm, &hdrs) &&
	    !rd_kafka_header_get_last(hdrs, s->desc->id_header, &id, &id_len) &&
	    !rd_kafka_header_get_last(hdrs, OUTBOX_GROUP_HEADER, &grp, &grp_len) && id_len == 8 &&
	    grp_len == strlen(group) && !memcmp(grp, group, grp_len) && pg_int8(id) > s->published)
		skip_add(s, pg_int8(id));
}

/*
 * Consumes what list assigns until each of the `reading` pending partitions
 * of parts is read to its end, adding this group's ids above H to the skip
 * set. 0, or -1 with errstr.
 */
static int read_back(struct outbox *ob, struct stream *s, const char *group, rd_kafka_topic_partition_list_t *list,
		     struct readback *parts, int n, int reading, char *errstr, size_t errstr_size)
{
	int rc = -1;
	rd_kafka_t *reader = recovery_consumer(ob, s, group, errstr, errstr_size);
	if (!reader)
		return -1;
	rd_kafka_resp_err_t err = rd_kafka_assign(reader, list);
	if (err) {
		errstr_set(errstr, errstr_size, "reading %s back: assign: %s", s->topic, rd_kafka_err2str(err));
		goto done;
	}
	for (int waited = 0; reading > 0;) {
		rd_kafka_message_t *rkm = rd_kafka_consumer_poll(reader, 1000);
		if (!rkm) {
			if (++waited > 60) {
				errstr_set(errstr, errstr_size, "reading %s back timed out", s->topic);
				goto done;
			}
			continue;
		}
		if (rkm->err && rkm->err != RD_KAFKA_RESP_ERR__PARTITION_EOF) {
			errstr_set(errstr, errstr_size, "reading %s back: %s", s->topic, rd_kafka_message_errstr(rkm));
			rd_kafka_message_destroy(rkm);
			goto done;
		}
		int32_t p = rkm->partition;
		int64_t next = rkm->err ? rkm->offset : rkm->offset + 1; /* an end-of-partition event is at the next */
		if (!rkm->err)
			skip_if_ours(s, rkm, group);
		rd_kafka_message_destroy(rkm);
		for (int i = 0; i < n; i++)
			if (parts[i].pending && parts[i].partition == p && next >= parts[i].end) {
				parts[i].pending = false; /* read up to the end it had when recovery began */
				reading--;
			}
	}
	rc = 0;
done:
	rd_kafka_consumer_close(reader);
	rd_kafka_destroy(reader);
	return rc;
}

static int by_id(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
	return (x > y) - (x < y);
}

int outbox_recover(struct outbox *ob, struct stream *s, struct pg *pg, char *errstr, size_t errstr_size)
{
	const char *group = ob->cfg->group_id;
	int rc = -1;
	const struct rd_kafka_metadata *md = NULL;
	PGresult *positions = NULL;
	struct readback *parts = NULL;
	rd_kafka_topic_partition_list_t *list = NULL;

	if (drain_in_flight(ob, errstr, errstr_size) || !(md = topic_metadata(ob, s, errstr, errstr_size)) ||
	    read_mark(s, pg, group, &positions, errstr, errstr_size))
		goto done;
	int n = md->topics[0].err == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART ? 0 : md->topics[0].partition_cnt;
	parts = xcalloc((size_t)n + 1, sizeof(*parts), "outbox partitions");
	list = rd_kafka_topic_partition_list_new(n + 1);
	int reading = plan_reads(ob, s, md, positions, parts, n, list, errstr, errstr_size);
	if (reading < 0 || (reading > 0 && read_back(ob, s, group, list, parts, n, reading, errstr, errstr_size)))
		goto done;
	qsort(s->skip, s->n_skip, sizeof(*s->skip), by_id);
	rc = 0;
done:
	if (list)
		rd_kafka_topic_partition_list_destroy(list);
	if (md)
		rd_kafka_metadata_destroy(md);
	PQclear(positions);
	free(parts);
	return rc;
}
