/*
 * pgsink.h: what the worker's stream writes to and reads from PostgreSQL,
 * through the connection pg.h makes (the outbox publisher reads its rows on
 * the same connection, outbox.h). Migrations, rule parameters, partition
 * claims and restore, and the flush:
 * one transaction that checks each partition's expected offset (the fence),
 * merges the aggregate deltas, appends the records' new versions, inserts
 * dead letters and alerts, evaluates the plan alerts and advances
 * consumer_offsets. Any error leaves the database
 * as it was; the caller reconnects and rebuilds its state from it.
 */
#ifndef QS_PGSINK_H
#define QS_PGSINK_H

#include <stddef.h>
#include <stdint.h>

#include "compiler.h"
#include "event.h"
#include "qserror.h"
#include "rules.h"
#include "state.h"

/*
 * The functions below return 0, or a negative outcome with errstr set: the
 * outcomes of a failed statement (pg.h: QS_ERROR transient, QS_REJECT a row
 * the database refuses, QS_FATAL the role or schema is wrong), and QS_FENCED
 * from pgsink_flush when the fence found a partition's offset moved.
 */

struct pg;
struct pgsink;

/*
 * A sink writing through pg (borrowed until pgsink_free) for the group's
 * topics; group and topic_names are copied. What it caches (the record
 * streams' ids, the log counters, its buffers) belongs to that connection's
 * session: after a reconnect, make a new one. Never NULL (xalloc).
 */
QS_MUSTCHECK struct pgsink *pgsink_new(struct pg *pg, const char *group, const char *const topic_names[QS_TOPIC_COUNT]);
void pgsink_free(struct pgsink *ps);

/* Applies every embedded migration not yet applied, under an advisory lock (PG_LOCK_MIGRATE). */
QS_MUSTCHECK int pgsink_migrate(struct pg *pg, char *errstr, size_t errstr_size);

/* Reads the counting rules from qualstream.rule. */
QS_MUSTCHECK int pgsink_load_rules(struct pgsink *ps, struct qs_rules *rules, char *errstr, size_t errstr_size);
/*
 * Ensures an offsets row for the partition (first claim starts at 0) and
 * returns its next_offset and clock (QS_NO_TS when it has none yet).
 */
QS_MUSTCHECK int pgsink_claim(struct pgsink *ps, enum qs_topic topic, int32_t partition, int64_t *next_offset,
			      int64_t *clock_ms, char *errstr, size_t errstr_size);

/* Called for each persisted record of a partition in offset order; nonzero stops the load with that value. */
typedef int (*pgsink_record_cb)(void *ctx, int64_t offset, const void *value, size_t len);
/*
 * Streams the partition's latest version of every record, in offset order
 * (single-row mode, so memory stays flat), from qualstream.record_log.
 */
QS_MUSTCHECK int pgsink_load_records(struct pgsink *ps, enum qs_topic topic, int32_t partition, pgsink_record_cb cb,
				     void *ctx, char *errstr, size_t errstr_size);

/*
 * Writes everything pending in st in one transaction. QS_FENCED when a
 * partition's stored offset is not the one st expects (another worker owns
 * it now); otherwise the class of the failure. Either way nothing was written.
 * The caller calls state_flushed on QS_OK only. After the commit it may
 * compact the logs of partitions that grew (a transaction of its own; a
 * failure there is logged and leaves the flush committed).
 */
QS_MUSTCHECK int pgsink_flush(struct pgsink *ps, const struct state *st, char *errstr, size_t errstr_size);

#endif
