/*
 * consume.c: the librdkafka loop and rebalance handling (see consume.h).
 *
 * Exactly-once effect rests on three rules. (1) A partition's state and its
 * next offset are loaded from PostgreSQL when it is assigned. (2) A flush
 * writes the deltas, the records' latest versions, the dead letters, the
 * alerts and the new offsets in one transaction, fenced by the offsets this
 * worker expects.
 * (3) After any failed or fenced flush the worker forgets everything it holds
 * and reloads its assignment from PostgreSQL, so its memory is again exactly
 * what the database says; the messages since the last commit are read again.
 *
 * Rule 3 alone would loop forever on a flush that can never commit, so a
 * failure is acted on by its outcome (pg.h): a transient one is retried
 * with a growing pause; a row the database refuses is traced to its message,
 * by flushing the failed batch's messages one at a time, and that message is
 * dead-lettered instead of applied; a missing privilege stops the worker.
 */
#include "consume.h"

#include <librdkafka/rdkafka.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "compiler.h"
#include "decode.h"
#include "errstr.h"
#include "log.h"
#include "outbox.h"
#include "pg.h"
#include "pgsink.h"
#include "redact.h"
#include "registry.h"
#include "state.h"
#include "xalloc.h"

struct assigned {
	enum qs_topic topic;
	int32_t partition;
	bool eof;
};

/* A message, by where it is. */
struct msg_at {
	enum qs_topic topic;
	int32_t partition;
	int64_t offset;
};

/*
 * After the database refused a batch of several messages: the partitions the
 * batch covered, up to the offset it reached. Until every one is read past
 * `end` again, each message is flushed on its own.
 */
struct suspect {
	enum qs_topic topic;
	int32_t partition;
	int64_t end;
};

/* A message whose rows the database refused: it is dead-lettered with `reason` when read again. */
struct refused {
	struct msg_at at;
	char *reason; /* owned */
};

struct worker {
	const struct config *cfg;
	volatile sig_atomic_t *stop;
	rd_kafka_t *rk;
	struct pg *pg; /* the connection; ps and the outbox publisher use it */
	struct pgsink *ps;
	struct registry *reg;
	struct decoder *dec;
	struct outbox *outbox;
	struct state *st;
	struct qs_rules rules;
	struct assigned *assigned;
	size_t n_assigned;
	int64_t last_flush_ms;
	/* Set on an error no retry can fix: the run stops and exits 1 with fatal_err. */
	bool fatal;
	char fatal_err[1024];
	/* Pause before retrying after consecutive transient flush failures; 0 after a commit. */
	int retry_ms;
	/* The batch of the next flush: its message count and its last message, which a refusal can then blame. */
	size_t batch_msgs;
	struct msg_at last_msg;
	bool last_dead;
	struct suspect *suspects;
	size_t n_suspects;
	struct refused *refused;
	size_t n_refused;
	/* The last Kafka client error logged, and how many like it were not (see kafka_error). */
	rd_kafka_resp_err_t last_kafka_err;
	int64_t last_kafka_log_ms;
	unsigned kafka_repeats;
	/* When the partitions parked by the last assignment are dropped (0: none parked). */
	int64_t parked_until_ms;
	/* counters for the log and the end-of-run summary */
	uint64_t applied, dead_letters, alerts, flushes, resets, kept, restored;
	int64_t started_ms, first_message_ms;
};

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The machine's UTC time, for alerts.clock=wall. */
static int64_t wall_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(int ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
	nanosleep(&ts, NULL);
}

static int topic_of(const struct worker *w, const char *name)
{
	for (int t = 0; t < QS_TOPIC_COUNT; t++)
		if (!strcmp(w->cfg->topics[t], name))
			return t;
	return -1;
}

/* Replays one persisted record into the partition being restored. */
struct restore_ctx {
	struct worker *w;
	struct part *p;
	enum qs_topic topic;
	size_t records; /* replayed so far */
};

static int restore_record(void *ctx, int64_t offset, const void *value, size_t len)
{
	struct restore_ctx *rc = ctx;
	struct qs_event ev;
	char why[256];
	int r;
	while ((r = decode_message(rc->w->dec, rc->topic, value, len, &ev, why, sizeof(why))) == QS_RETRY &&
	       !*rc->w->stop) {
		log_warn("schema registry unavailable while restoring (%s); retrying", why);
		sleep_ms(1000);
	}
	if (r != QS_OK) {
		/* Only messages that decoded once are persisted, so this means the registry lost a schema. */
		log_error("cannot restore a record at offset %lld: %s", (long long)offset, why);
		return -1;
	}
	state_restore(rc->w->st, rc->p, &ev, offset);
	rc->records++;
	return 0;
}

/* The entry of an assigned partition, or NULL. */
static struct assigned *find_assigned(const struct worker *w, enum qs_topic topic, int32_t partition)
{
	for (size_t i = 0; i < w->n_assigned; i++)
		if (w->assigned[i].topic == topic && w->assigned[i].partition == partition)
			return &w->assigned[i];
	return NULL;
}

static bool is_assigned(void *ctx, enum qs_topic topic, int32_t partition)
{
	return find_assigned(ctx, topic, partition) != NULL;
}

/* Retry pauses: doubling from 250 ms, at most 30 s. */
static int next_backoff(int ms)
{
	return ms < 15000 ? ms * 2 : 30000;
}

static bool stopping(const struct worker *w)
{
	return *w->stop || w->fatal;
}

/* Records an error no retry can fix; the run loop stops on it. */
QS_PRINTF(2, 3) static void set_fatal(struct worker *w, const char *fmt, ...)
{
	if (w->fatal)
		return; /* the first one is the cause */
	va_list ap;
	va_start(ap, fmt);
	errstr_vset(w->fatal_err, sizeof(w->fatal_err), fmt, ap);
	va_end(ap);
	w->fatal = true;
}

/* The message of a QS_FATAL failure: what failed, and what to do. */
static void fatal_pg(struct worker *w, const char *err)
{
	set_fatal(w,
		  "stopping: %s; no retry can fix this (grant the privilege or fix the role or schema named,"
		  " then restart; nothing of the failed transaction was committed)",
		  err);
}

/*
 * Replaces the PostgreSQL connection with a new one: after a failure the old
 * one may be gone or mid-transaction, and rebuilding it is the only repair
 * libpq offers. Tries until connected, pausing 250 ms doubling to 30 s and
 * saying so with each pause. 0 when connected, -1 on stop.
 */
static int reconnect(struct worker *w)
{
	char err[512];
	for (int backoff = 250;; backoff = next_backoff(backoff)) {
		struct pg *pg = pg_connect(w->cfg->pg_conninfo, err, sizeof(err));
		if (pg) {
			pgsink_free(w->ps);
			pg_free(w->pg);
			w->pg = pg;
			w->ps = pgsink_new(pg, w->cfg->group_id, (const char *const *)w->cfg->topics);
			return 0;
		}
		if (stopping(w))
			return -1;
		log_warn("PostgreSQL unavailable: %s; retrying in %d ms", err, backoff);
		sleep_ms(backoff);
	}
}

/* Claims a partition in PostgreSQL, reconnecting until it answers; -1 on stop or a fatal error. */
static int claim(struct worker *w, enum qs_topic topic, int32_t partition, int64_t *next, int64_t *clock)
{
	char err[512];
	for (int backoff = 250;; backoff = next_backoff(backoff)) {
		int rc = pgsink_claim(w->ps, topic, partition, next, clock, err, sizeof(err));
		if (rc == 0)
			return 0;
		if (rc == QS_FATAL)
			fatal_pg(w, err);
		if (stopping(w))
			return -1;
		log_warn("%s; retrying in %d ms", err, backoff);
		sleep_ms(backoff);
		if (reconnect(w))
			return -1;
	}
}

/* What an assignment does with each partition held when it arrives (see load_assignment). */
struct keep_ctx {
	struct worker *w;
	const int32_t *stale; /* partition numbers to restore */
	size_t n_stale;
	size_t kept, parked;
};

/*
 * Keeps a held partition that is assigned again and needs no restore, and
 * makes it live. One held but not assigned is parked (kept, inert) when this
 * assignment restores nothing, and dropped otherwise: a restore must not need
 * memory for both the partitions lost and the ones gained. A restore of
 * partition number p drops every held partition p, since a family reading two
 * topics shares its entities across partition p of both.
 */
static bool keep_part(void *ctx, enum qs_topic topic, int32_t partition)
{
	struct keep_ctx *k = ctx;
	for (size_t i = 0; i < k->n_stale; i++)
		if (k->stale[i] == partition)
			return false;
	struct part *p = state_part(k->w->st, topic, partition);
	if (is_assigned(k->w, topic, partition)) {
		state_part_park(p, false);
		k->kept++;
		return true;
	}
	if (k->n_stale)
		return false;
	state_part_park(p, true);
	k->parked++;
	return true;
}

/* Parks every held partition (state_retain callback; ctx: the state). */
static bool park_part(void *ctx, enum qs_topic topic, int32_t partition)
{
	state_part_park(state_part(ctx, topic, partition), true);
	return true;
}

/* Keeps only the held partitions that are assigned (state_retain callback; ctx: the worker). */
static bool assigned_part(void *ctx, enum qs_topic topic, int32_t partition)
{
	return is_assigned(ctx, topic, partition);
}

/*
 * How long partitions parked by an assignment wait to come back before they
 * are dropped: until the group would have noticed that the member that took
 * them failed, whether it died (session.timeout.ms) or stalls restoring them
 * (max.poll.interval.ms, since a restore runs in the rebalance callback).
 */
static int64_t park_grace_ms(const struct worker *w)
{
	static const char *const timeouts[] = {"session.timeout.ms", "max.poll.interval.ms"};
	int64_t ms = 0;
	for (size_t i = 0; i < ARRAY_LEN(timeouts); i++) {
		char v[32] = "0"; /* both are known properties: the client always has a value, set or default */
		size_t len = sizeof(v);
		rd_kafka_conf_get(rd_kafka_conf(w->rk), timeouts[i], v, &len);
		ms += strtol(v, NULL, 10);
	}
	return ms;
}

/* Drops the parked partitions once their grace has run out (called from the run loop). */
static void expire_parked(struct worker *w)
{
	if (!w->parked_until_ms || now_ms() < w->parked_until_ms)
		return;
	w->parked_until_ms = 0;
	state_retain(w->st, assigned_part, w);
	log_info("dropped the partitions parked since the last assignment: %zu entities held", state_entities(w->st));
}

/* Logs a family's partition that arrived without its twin on another topic (see README, CAW7). */
static void check_copartitioned(const struct worker *w)
{
	for (size_t f = 0; f < measures_family_count; f++) {
		unsigned topics = measures_families[f]->topics;
		for (size_t i = 0; i < w->n_assigned; i++) {
			if (!(topics & QS_TOPIC_BIT(w->assigned[i].topic)))
				continue;
			for (int t = 0; t < QS_TOPIC_COUNT; t++)
				if ((topics & QS_TOPIC_BIT(t)) &&
				    !is_assigned((void *)w, (enum qs_topic)t, w->assigned[i].partition))
					log_error("%s[%d] is assigned without %s[%d]: family %s needs both topics"
						  " co-partitioned (same partition count, range assignor)",
						  w->cfg->topics[w->assigned[i].topic], w->assigned[i].partition,
						  w->cfg->topics[t], w->assigned[i].partition,
						  measures_families[f]->name);
		}
	}
}

/*
 * Makes the state hold the partitions in `list` as PostgreSQL has them, and
 * sets each entry's offset to where it resumes. A held partition, live or
 * parked by an earlier rebalance, whose stored offset and clock equal ours is
 * kept as it is: nothing was committed for it since this worker's last flush
 * (every write for a partition advances its offset, or in wall-clock mode its
 * clock, in the same fenced transaction), so a restore would rebuild exactly
 * what is in memory. Every other partition is restored from record_latest.
 */
static int load_assignment(struct worker *w, rd_kafka_topic_partition_list_t *list)
{
	char err[512];
	int rc = -1;
	int64_t t0 = now_ms();
	int64_t *next = xcalloc((size_t)list->cnt + 1, sizeof(*next), "an assignment's offsets");
	int64_t *clock = xcalloc((size_t)list->cnt + 1, sizeof(*clock), "an assignment's clocks");
	int32_t *stale = xcalloc((size_t)list->cnt + 1, sizeof(*stale), "an assignment's stale partitions");
	size_t n_stale = 0, restored = 0, records = 0;
	free(w->assigned);
	w->assigned = xcalloc((size_t)list->cnt + 1, sizeof(*w->assigned), "the assigned partitions");
	w->n_assigned = 0;
	for (int i = 0; i < list->cnt; i++) {
		rd_kafka_topic_partition_t *tp = &list->elems[i];
		int topic = topic_of(w, tp->topic);
		if (topic < 0)
			continue;
		if (claim(w, (enum qs_topic)topic, tp->partition, &next[i], &clock[i]))
			goto done;
		struct part *p = state_part(w->st, (enum qs_topic)topic, tp->partition);
		if (!p || state_part_next_offset(p) != next[i] || state_part_clock(p) != clock[i])
			stale[n_stale++] = tp->partition;
		tp->offset = next[i];
		w->assigned[w->n_assigned++] = (struct assigned){(enum qs_topic)topic, tp->partition, false};
	}
	struct keep_ctx keep = {w, stale, n_stale, 0, 0};
	state_retain(w->st, keep_part, &keep);
	w->parked_until_ms = keep.parked ? now_ms() + park_grace_ms(w) : 0;
	for (int i = 0; i < list->cnt; i++) {
		rd_kafka_topic_partition_t *tp = &list->elems[i];
		int topic = topic_of(w, tp->topic);
		if (topic < 0 || state_part(w->st, (enum qs_topic)topic, tp->partition))
			continue;
		int64_t t1 = now_ms();
		struct part *p = state_part_add(w->st, (enum qs_topic)topic, tp->partition, next[i], clock[i]);
		struct restore_ctx rctx = {w, p, (enum qs_topic)topic, 0};
		int lrc = pgsink_load_records(w->ps, (enum qs_topic)topic, tp->partition, restore_record, &rctx, err,
					      sizeof(err));
		if (lrc) {
			if (lrc == QS_FATAL)
				fatal_pg(w, err);
			else
				log_warn("%s", err);
			state_reset(w->st); /* a half-restored shard must not be used */
			w->parked_until_ms = 0;
			goto done;
		}
		restored++;
		records += rctx.records;
		log_info("assigned %s[%d]: resuming at offset %lld, state restored in %lld ms", tp->topic,
			 tp->partition, (long long)next[i], (long long)(now_ms() - t1));
	}
	w->kept += keep.kept;
	w->restored += restored;
	log_info("assignment of %zu partitions: %zu kept, %zu restored, %zu parked, in %lld ms (%zu records"
		 " replayed); %zu entities held",
		 w->n_assigned, keep.kept, restored, keep.parked, (long long)(now_ms() - t0), records,
		 state_entities(w->st));
	check_copartitioned(w);
	rc = 0;
done:
	free(next);
	free(clock);
	free(stale);
	return rc;
}

/* load_assignment until it succeeds, rebuilding the connection between tries; -1 on stop or a fatal error. */
static int load_with_retry(struct worker *w, rd_kafka_topic_partition_list_t *list)
{
	for (int backoff = 250; load_assignment(w, list); backoff = next_backoff(backoff)) {
		if (stopping(w))
			return -1;
		log_warn("loading the assignment failed; retrying in %d ms", backoff);
		sleep_ms(backoff);
		if (reconnect(w))
			return -1;
	}
	return 0;
}

/* Forgets everything and reloads the current assignment from PostgreSQL (rule 3 above). */
static void resync(struct worker *w)
{
	w->resets++;
	state_reset(w->st);
	if (w->fatal)
		return; /* the run stops: nothing to reload */
	rd_kafka_topic_partition_list_t *list = NULL;
	if (rd_kafka_assignment(w->rk, &list) != RD_KAFKA_RESP_ERR_NO_ERROR || !list)
		return;
	if (load_with_retry(w, list) == 0) {
		rd_kafka_resp_err_t err = rd_kafka_assign(w->rk, list);
		if (err)
			log_error("re-assigning after a reset: %s", rd_kafka_err2str(err));
	}
	rd_kafka_topic_partition_list_destroy(list);
}

/* True while a refused batch is being replayed one message per flush. */
static bool isolating(const struct worker *w)
{
	return w->n_suspects > 0;
}

/* The refused message at (topic, partition, offset), or NULL. */
static struct refused *find_refused(const struct worker *w, enum qs_topic topic, int32_t partition, int64_t offset)
{
	for (size_t i = 0; i < w->n_refused; i++)
		if (w->refused[i].at.topic == topic && w->refused[i].at.partition == partition &&
		    w->refused[i].at.offset == offset)
			return &w->refused[i];
	return NULL;
}

/*
 * After a commit: forgets the suspect ranges and refused messages it has
 * passed, or whose partition is no longer ours (dropped or parked: if it comes
 * back, a refused message is found again by the same search).
 */
static void settle(struct worker *w)
{
	size_t k = 0;
	for (size_t i = 0; i < w->n_suspects; i++) {
		struct part *p = state_part(w->st, w->suspects[i].topic, w->suspects[i].partition);
		if (p && !state_part_parked(p) && state_part_next_offset(p) < w->suspects[i].end)
			w->suspects[k++] = w->suspects[i];
	}
	if (w->n_suspects && !k)
		log_info("the refused batch is settled: flushing in batches again");
	w->n_suspects = k;
	k = 0;
	for (size_t i = 0; i < w->n_refused; i++) {
		struct part *p = state_part(w->st, w->refused[i].at.topic, w->refused[i].at.partition);
		if (p && !state_part_parked(p) && state_part_next_offset(p) <= w->refused[i].at.offset)
			w->refused[k++] = w->refused[i];
		else
			free(w->refused[i].reason);
	}
	w->n_refused = k;
}

/*
 * The database refused the rows of the batch just tried (QS_REJECT, with
 * err). One message: it is to be dead-lettered when read again. Several: the
 * partitions they came from are replayed one message per flush, so the next
 * refusal names one message. A refused batch of one dead letter, or of no
 * message at all, cannot be settled by dead-lettering: that stops the worker.
 */
static void blame(struct worker *w, const char *err)
{
	const struct msg_at *m = &w->last_msg;
	const char *topic = w->cfg->topics[m->topic];
	if (w->batch_msgs == 1 && !w->last_dead) {
		char reason[QS_DECODE_ERRSTR_SIZE];
		errstr_set(reason, sizeof(reason), "PostgreSQL refused the rows of this message: %s", err);
		redact(reason, sizeof(reason)); /* stored and published, like a decode reason */
		log_warn("%s[%d]@%lld: %s; dead-lettering it", topic, m->partition, (long long)m->offset, reason);
		w->refused = xrealloc(w->refused, (w->n_refused + 1) * sizeof(*w->refused), "the refused messages");
		w->refused[w->n_refused++] = (struct refused){*m, xstrdup(reason, "a refused message's reason")};
	} else if (w->batch_msgs == 1) {
		set_fatal(w, "stopping: PostgreSQL refuses even the dead letter of %s[%d]@%lld: %s", topic,
			  m->partition, (long long)m->offset, err);
	} else if (w->batch_msgs == 0) {
		set_fatal(w, "stopping: PostgreSQL refuses a flush that holds no message: %s", err);
	} else {
		log_warn("PostgreSQL refused a flush of %zu messages (%s); flushing them one at a time to find the"
			 " one at fault",
			 w->batch_msgs, err);
		size_t n = state_progress_count(w->st);
		w->suspects = xrealloc(w->suspects, (w->n_suspects + n + 1) * sizeof(*w->suspects), "the suspects");
		for (size_t i = 0; i < n; i++) {
			struct suspect *sp = &w->suspects[w->n_suspects++];
			int64_t expected, clock;
			state_progress(w->st, i, &sp->topic, &sp->partition, &expected, &sp->end, &clock);
		}
	}
}

/*
 * Writes everything pending. Returns 0 when the flush committed; otherwise the
 * pending work is void, the connection has been rebuilt if it failed, and the
 * caller must forget its state (resync, or state_reset when losing partitions).
 * A failure is handled by its class: see the file comment.
 */
static int flush(struct worker *w)
{
	char err[1024];
	int64_t t0 = now_ms();
	size_t pending = state_pending(w->st);
	int rc = state_progress_count(w->st) ? pgsink_flush(w->ps, w->st, err, sizeof(err)) : QS_OK;
	w->last_flush_ms = now_ms(); /* the interval runs from the end of a flush */
	if (rc == QS_OK) {
		if (pending) {
			const struct state_dead_letter *dl;
			const struct qs_alert *al;
			w->dead_letters += state_dead_letters(w->st, &dl);
			w->alerts += state_alerts(w->st, &al);
			state_flushed(w->st);
			w->flushes++;
			log_debug("flushed %zu events in %lld ms", pending, (long long)(w->last_flush_ms - t0));
		}
		if (w->retry_ms)
			log_info("flushed again after PostgreSQL failures");
		w->retry_ms = 0;
		w->batch_msgs = 0;
		settle(w);
		/* Also when nothing is new: rows a crash left unpublished go out without new input. */
		if (outbox_publish(w->outbox, w->pg, err, sizeof(err)))
			log_warn("outbox not published yet (retried at the next flush): %s", err);
		return 0;
	}
	if (rc == QS_FENCED) {
		log_warn("%s: reloading the assignment from PostgreSQL", err);
	} else if (rc == QS_REJECT) {
		blame(w, err);
	} else if (rc == QS_FATAL) {
		fatal_pg(w, err);
	} else {
		/* Transient: pause (growing while it lasts), so a server that keeps failing is not hammered. */
		w->retry_ms = w->retry_ms ? next_backoff(w->retry_ms) : 250;
		log_warn("flush failed: %s; retrying in %d ms (reconnecting and reloading from PostgreSQL)", err,
			 w->retry_ms);
		sleep_ms(w->retry_ms);
		(void)reconnect(w);
	}
	w->batch_msgs = 0; /* the batch is void: its messages are read again */
	return -1;
}

static void rebalance_cb(rd_kafka_t *rk, rd_kafka_resp_err_t err, rd_kafka_topic_partition_list_t *list, void *opaque)
{
	struct worker *w = opaque;
	if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
		if (load_with_retry(w, list) == 0) {
			rd_kafka_resp_err_t e = rd_kafka_assign(rk, list);
			if (e)
				log_error("assign: %s", rd_kafka_err2str(e));
		}
	} else {
		/*
		 * Commit what we have before the partitions go, and park the state in
		 * case they come back: the next assignment keeps what it gets back
		 * unchanged. Uncommitted work is void: forget everything.
		 */
		w->parked_until_ms = 0;
		if (w->fatal || flush(w))
			state_reset(w->st);
		else
			state_retain(w->st, park_part, w->st);
		rd_kafka_assign(rk, NULL);
		free(w->assigned);
		w->assigned = NULL;
		w->n_assigned = 0;
	}
}

static void handle_message(struct worker *w, const rd_kafka_message_t *rkm)
{
	if (!w->first_message_ms)
		w->first_message_ms = now_ms();
	int topic = topic_of(w, rd_kafka_topic_name(rkm->rkt));
	struct part *p = topic < 0 ? NULL : state_part(w->st, (enum qs_topic)topic, rkm->partition);
	if (!p || state_part_parked(p) || rkm->offset < state_part_next_offset(p))
		return; /* not ours (any more), or read again after a seek: already counted */
	struct assigned *a = w->cfg->exit_at_end ? find_assigned(w, (enum qs_topic)topic, rkm->partition) : NULL;
	if (a) /* end-of-partition flags matter only when stopping at the end */
		a->eof = false;

	w->batch_msgs++;
	w->last_msg = (struct msg_at){(enum qs_topic)topic, rkm->partition, rkm->offset};
	w->last_dead = false;
	const struct refused *bad = find_refused(w, (enum qs_topic)topic, rkm->partition, rkm->offset);
	if (bad) {
		w->last_dead = true;
		state_dead_letter(w->st, p, rkm->offset, rkm->key, rkm->key_len, rkm->payload, rkm->len, bad->reason);
		return;
	}

	struct qs_event ev;
	char why[512];
	int rc;
	for (int backoff = 250; (rc = decode_message(w->dec, (enum qs_topic)topic, rkm->payload, rkm->len, &ev, why,
						     sizeof(why))) == QS_RETRY;
	     backoff = next_backoff(backoff)) {
		log_warn("%s[%d]@%lld: %s (retrying in %d ms)", rd_kafka_topic_name(rkm->rkt), rkm->partition,
			 (long long)rkm->offset, why, backoff);
		if (*w->stop) {
			w->batch_msgs--;
			return; /* not consumed: read again after restart */
		}
		sleep_ms(backoff);
	}
	if (rc == QS_OK) {
		state_apply(w->st, p, &ev, rkm->offset, rkm->payload, rkm->len);
		w->applied++;
	} else {
		w->last_dead = true;
		redact(why, sizeof(why)); /* a reason is stored and published: no secret in it */
		log_debug("%s[%d]@%lld: dead letter: %s", rd_kafka_topic_name(rkm->rkt), rkm->partition,
			  (long long)rkm->offset, why);
		state_dead_letter(w->st, p, rkm->offset, rkm->key, rkm->key_len, rkm->payload, rkm->len, why);
	}
}

/*
 * Logs an error the Kafka client reports, such as every broker being down.
 * librdkafka reconnects by itself, pausing reconnect.backoff.ms doubling to
 * reconnect.backoff.max.ms, and reports every failed try: the first error of
 * a kind is logged, repeats of it within 10 s are only counted and the count
 * goes into the next line logged, so an outage is a few lines, not a flood.
 */
static void kafka_error(struct worker *w, rd_kafka_resp_err_t err, const char *reason)
{
	int64_t now = now_ms();
	if (err == w->last_kafka_err && now - w->last_kafka_log_ms < 10000) {
		w->kafka_repeats++;
		return;
	}
	char repeats[64] = "";
	if (w->kafka_repeats)
		snprintf(repeats, sizeof(repeats), " (%u more like the last one since it)", w->kafka_repeats);
	log_warn("Kafka: %s%s; the client retries by itself (reconnect.backoff.ms doubling to"
		 " reconnect.backoff.max.ms)",
		 reason, repeats);
	w->last_kafka_err = err;
	w->last_kafka_log_ms = now;
	w->kafka_repeats = 0;
}

/* The client's error callback (served by rd_kafka_consumer_poll, on the main thread). */
static void error_cb(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
	(void)rk;
	kafka_error(opaque, (rd_kafka_resp_err_t)err, reason);
}

static bool caught_up(const struct worker *w)
{
	if (!w->n_assigned)
		return false;
	for (size_t i = 0; i < w->n_assigned; i++)
		if (!w->assigned[i].eof)
			return false;
	return true;
}

static void mark_eof(struct worker *w, const rd_kafka_message_t *rkm)
{
	int topic = topic_of(w, rd_kafka_topic_name(rkm->rkt));
	struct assigned *a = topic < 0 ? NULL : find_assigned(w, (enum qs_topic)topic, rkm->partition);
	if (a)
		a->eof = true;
}

static rd_kafka_t *make_consumer(struct worker *w, char *errstr, size_t errstr_size)
{
	const struct config *cfg = w->cfg;
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	/* Offsets live in PostgreSQL; Kafka's committed offsets are written for lag monitoring only. */
	static const char *const fixed[][2] = {
		{"enable.auto.commit", "false"},
		{"enable.auto.offset.store", "false"},
		{"auto.offset.reset", "earliest"},
	};
	for (size_t i = 0; i < ARRAY_LEN(fixed); i++)
		rd_kafka_conf_set(conf, fixed[i][0], fixed[i][1], NULL, 0);
	if (config_kafka_apply(cfg, conf, false, errstr, errstr_size))
		goto fail;
	if (cfg->exit_at_end)
		rd_kafka_conf_set(conf, "enable.partition.eof", "true", NULL, 0);
	rd_kafka_conf_set_rebalance_cb(conf, rebalance_cb);
	rd_kafka_conf_set_error_cb(conf, error_cb);
	rd_kafka_conf_set_opaque(conf, w);
	rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, errstr_size);
	if (!rk)
		goto fail;
	return rk; /* conf is owned by rk now */
fail:
	rd_kafka_conf_destroy(conf);
	return NULL;
}

static void commit_to_kafka(struct worker *w)
{
	/* Informational: lets standard lag tools see progress. Resume positions come from PostgreSQL. */
	rd_kafka_topic_partition_list_t *list = rd_kafka_topic_partition_list_new((int)w->n_assigned);
	for (size_t i = 0; i < w->n_assigned; i++) {
		struct part *p = state_part(w->st, w->assigned[i].topic, w->assigned[i].partition);
		if (p && state_part_next_offset(p) > 0)
			rd_kafka_topic_partition_list_add(list, w->cfg->topics[w->assigned[i].topic],
							  w->assigned[i].partition)
				->offset = state_part_next_offset(p);
	}
	if (list->cnt)
		rd_kafka_commit(w->rk, list, 1);
	rd_kafka_topic_partition_list_destroy(list);
}

int consume_run(const struct config *cfg, volatile sig_atomic_t *stop)
{
	char err[1024];
	int rc = 1;
	struct worker w = {.cfg = cfg, .stop = stop};
	rd_kafka_topic_partition_list_t *topics = NULL;

	w.pg = pg_connect(cfg->pg_conninfo, err, sizeof(err));
	if (!w.pg)
		goto fail;
	w.ps = pgsink_new(w.pg, cfg->group_id, (const char *const *)cfg->topics);
	if (pgsink_load_rules(w.ps, &w.rules, err, sizeof(err)))
		goto fail;
	w.reg = registry_new(cfg->registry_url, cfg->registry_dir, err, sizeof(err));
	if (!w.reg)
		goto fail;
	w.dec = decode_new(w.reg, err, sizeof(err));
	if (!w.dec)
		goto fail;
	w.outbox = outbox_new(cfg, w.reg, err, sizeof(err));
	if (!w.outbox)
		goto fail;
	w.st = state_new(&w.rules, !strcmp(cfg->alerts_clock, "wall"));
	w.rk = make_consumer(&w, err, sizeof(err));
	if (!w.rk)
		goto fail;
	rd_kafka_poll_set_consumer(w.rk);
	topics = rd_kafka_topic_partition_list_new(QS_TOPIC_COUNT);
	for (int t = 0; t < QS_TOPIC_COUNT; t++)
		rd_kafka_topic_partition_list_add(topics, cfg->topics[t], RD_KAFKA_PARTITION_UA);
	rd_kafka_resp_err_t kerr = rd_kafka_subscribe(w.rk, topics);
	if (kerr) {
		errstr_set(err, sizeof(err), "subscribe: %s", rd_kafka_err2str(kerr));
		goto fail;
	}
	log_info("consuming %s, %s, %s as group %s; flush every %d ms or %d events", cfg->topics[0], cfg->topics[1],
		 cfg->topics[2], cfg->group_id, cfg->flush_interval_ms, cfg->flush_max_events);

	w.started_ms = w.last_flush_ms = now_ms();
	while (!*stop) {
		expire_parked(&w);
		state_wall_clock(w.st, wall_ms()); /* wall-clock mode: timers fire as days pass */
		/* Wait at most until the flush is due, so a short flush.interval.ms is kept. */
		int64_t due = w.last_flush_ms + cfg->flush_interval_ms - now_ms();
		rd_kafka_message_t *rkm = rd_kafka_consumer_poll(w.rk, due <= 0 ? 0 : due < 100 ? (int)due : 100);
		if (rkm) {
			if (rkm->err == RD_KAFKA_RESP_ERR__PARTITION_EOF)
				mark_eof(&w, rkm);
			else if (rkm->err)
				kafka_error(&w, rkm->err, rd_kafka_message_errstr(rkm));
			else
				handle_message(&w, rkm);
			rd_kafka_message_destroy(rkm);
		}
		bool at_end = cfg->exit_at_end && caught_up(&w);
		size_t batch = isolating(&w) ? 1 : (size_t)cfg->flush_max_events;
		if (state_pending(w.st) >= batch || at_end || now_ms() - w.last_flush_ms >= cfg->flush_interval_ms) {
			bool progressed = state_progress_count(w.st) > 0;
			if (flush(&w))
				resync(&w);
			else if (progressed)
				commit_to_kafka(&w);
			if (at_end && caught_up(&w) && state_pending(w.st) == 0)
				break;
		}
		if (w.fatal) {
			errstr_set(err, sizeof(err), "%s", w.fatal_err);
			goto fail;
		}
		char fatal[256];
		if (rd_kafka_fatal_error(w.rk, fatal, sizeof(fatal))) {
			snprintf(err, sizeof(err), "Kafka fatal error: %s", fatal);
			goto fail;
		}
	}
	if (flush(&w))
		state_reset(w.st);     /* not committed: the next owner reads those messages again */
	rd_kafka_consumer_close(w.rk); /* leaves the group; the revoke callback flushes once more */
	rc = 0;
fail:
	if (rc)
		log_error("%s", err);
	{
		/* Throughput counts from the first message, so a group join's wait does not dilute it. */
		int64_t end = now_ms();
		double secs = (double)(end - w.started_ms) / 1000.0;
		double busy = w.first_message_ms ? (double)(end - w.first_message_ms) / 1000.0 : 0.0;
		struct rusage ru;
		getrusage(RUSAGE_SELF, &ru);
		log_info("applied %llu events, %llu dead letters, %llu encounter alert transitions, %llu flushes,"
			 " %llu resets in %.1f s"
			 " (%.0f events/s since the first message); %zu entities held; peak RSS %ld MiB;"
			 " at assignments %llu partitions kept, %llu restored",
			 (unsigned long long)w.applied, (unsigned long long)w.dead_letters,
			 (unsigned long long)w.alerts, (unsigned long long)w.flushes, (unsigned long long)w.resets,
			 secs, busy > 0 ? (double)(w.applied + w.dead_letters) / busy : 0.0,
			 w.st ? state_entities(w.st) : 0, ru.ru_maxrss / 1024, (unsigned long long)w.kept,
			 (unsigned long long)w.restored);
	}
	if (topics)
		rd_kafka_topic_partition_list_destroy(topics);
	if (w.rk)
		rd_kafka_destroy(w.rk);
	state_free(w.st);
	outbox_free(w.outbox);
	decode_free(w.dec);
	registry_free(w.reg);
	pgsink_free(w.ps);
	pg_free(w.pg);
	free(w.assigned);
	for (size_t i = 0; i < w.n_refused; i++)
		free(w.refused[i].reason);
	free(w.refused);
	free(w.suspects);
	return rc;
}
