/*
 * pgsink.h: everything the worker writes to or reads from PostgreSQL.
 * Migrations, rule parameters, partition claims and restore, and the flush:
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
 * What a failure means for the caller (qserror.h), from the SQLSTATE (pgsink_class):
 * QS_ERROR   transient (connection lost, server shutting down or not yet
 *            accepting connections, serialization failure, deadlock,
 *            resources): reconnect and retry with a backoff;
 * QS_FENCED  the fence found a partition's offset moved: reload;
 * QS_REJECT  the database refuses a row (classes 22, 23, 44, 54, and
 *            exceptions raised by triggers): retrying the same rows cannot
 *            succeed, the message behind them must be dead-lettered;
 * QS_FATAL   the role or schema is wrong (missing privilege, failed
 *            authentication, missing relation: classes 28, 42, 3D, 3F,
 *            0A, 0L, 0P, 2B): nothing the worker retries can fix it.
 */

struct pgsink;

/*
 * Connects. group and topic_names are copied. Returns NULL with errstr set
 * on failure.
 */
QS_MUSTCHECK struct pgsink *pgsink_connect(const char *conninfo, const char *group,
				     const char *const topic_names[QS_TOPIC_COUNT], char *errstr, size_t errstr_size);
void pgsink_free(struct pgsink *ps);

struct pg_conn;
struct pg_result;
/*
 * Describes a libpq failure in errstr as "what: message (SQLSTATE xxxxx)":
 * the result's error if there is one, else the connection's, plus a hint to
 * run `qualstream migrate` when the error is a missing relation or schema.
 * Returns the failure's class (pgsink_class).
 */
int pgsink_error(char *errstr, size_t errstr_size, const char *what, struct pg_conn *conn, struct pg_result *res);
/* The class (QS_ERROR, QS_REJECT or QS_FATAL) of a failed result; NULL (no result) is QS_ERROR. */
int pgsink_class(const struct pg_result *res);
/* The connection, for the outbox publisher; borrowed until pgsink_free. */
struct pg_conn *pgsink_conn(struct pgsink *ps);

/* Applies every embedded migration not yet applied, under an advisory lock. */
QS_MUSTCHECK int pgsink_migrate(struct pgsink *ps, char *errstr, size_t errstr_size);
/* The functions below return 0, or a negative class (see above) with errstr set. */

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
