/*
 * state.h: everything the worker holds between two flushes. Per assigned
 * partition: the measure families' entities (needed to retract what a
 * superseded record contributed) and the next offset to read. Across
 * partitions: the aggregate deltas per cell (plan, measure, stratum, grain,
 * period), the latest raw message of every record changed, the dead letters
 * and the alert transitions, all waiting for the sink to write them in one
 * transaction.
 *
 * Each partition also keeps its alert clock (alerts.h), persisted with the
 * offset; when it moves, the families' timers fire.
 *
 * Entities are persisted as the raw message of each record's versions
 * (qualstream.record_log, whose latest per record is the view
 * qualstream.record_latest); restoring a partition replays those messages
 * through the same apply path with contributions discarded, so there is one
 * code path for live and restored state.
 */
#ifndef QS_STATE_H
#define QS_STATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "alerts.h"
#include "dates.h"
#include "event.h"
#include "measures/measures.h"

struct state;
struct part; /* one assigned partition */

/* One aggregate cell's change since the last flush. */
struct state_delta {
	uint32_t plan, stratum; /* interned; see state_str */
	enum qs_measure measure;
	enum qs_grain grain;
	int32_t period_start;
	int64_t numerator, denominator;
};

/* The latest version of a record, to persist. Pointers borrowed until state_flushed. */
struct state_record {
	enum qs_topic topic;
	int32_t partition;
	int64_t offset;
	const char *record_id;
	const void *value;
	size_t value_len;
};

/* A message that could not be used. Pointers borrowed until state_flushed. */
struct state_dead_letter {
	enum qs_topic topic;
	int32_t partition;
	int64_t offset;
	const void *key, *value; /* NULL when absent */
	size_t key_len, value_len;
	const char *reason;
};

/*
 * rules: borrowed for the state's lifetime. wall_clock: partitions' clocks
 * follow state_wall_clock instead of event time. Aborts on OOM.
 */
struct state *state_new(const struct qs_rules *rules, bool wall_clock);
void state_free(struct state *st);

/*
 * Adds an assigned partition that resumes at next_offset with its stored clock
 * (QS_NO_TS: none yet); returns the existing one if held.
 */
struct part *state_part_add(struct state *st, enum qs_topic topic, int32_t partition, int64_t next_offset,
			    int64_t clock_ms);
/* The held partition, or NULL. */
struct part *state_part(struct state *st, enum qs_topic topic, int32_t partition);
/* Forgets a partition and frees its entities. Pending output already recorded stays. */
void state_part_drop(struct state *st, struct part *p);
/* Drops every held partition for which keep(ctx, topic, partition) is false. */
void state_retain(struct state *st, bool (*keep)(void *ctx, enum qs_topic topic, int32_t partition), void *ctx);
/* Drops every partition and every pending output: the state after a failed flush. */
void state_reset(struct state *st);
int64_t state_part_next_offset(const struct part *p);
/* p's clock: QS_NO_TS before its first event time. */
int64_t state_part_clock(const struct part *p);

/*
 * Parks p (parked true) or makes it live again. A parked partition is held but
 * not assigned: its entities wait in case it comes back unchanged, and it must
 * not move (state_wall_clock leaves it alone; the caller applies nothing to it).
 */
void state_part_park(struct part *p, bool parked);
bool state_part_parked(const struct part *p);

/*
 * Folds a decoded event read at `offset` of p into the families, adds the
 * contribution changes to the pending deltas, and records the raw value as the
 * record's latest version. Advances p's next offset and, in event-time mode,
 * first moves p's clock to the event's time if that is later (firing timers).
 */
void state_apply(struct state *st, struct part *p, const struct qs_event *ev, int64_t offset, const void *value,
		 size_t value_len);
/* Replays a persisted latest version into p's entities at p's clock, without producing deltas or output. */
void state_restore(struct state *st, struct part *p, const struct qs_event *ev, int64_t offset);
/* Records a dead letter for the message at `offset` of p (bytes copied) and advances p's next offset. */
void state_dead_letter(struct state *st, struct part *p, int64_t offset, const void *key, size_t key_len,
		       const void *value, size_t value_len, const char *reason);

/*
 * Wall-clock mode: moves every partition's clock to now_ms when its date
 * changes (firing timers; the partition then counts as progressed, so the
 * next flush stores the clock). No-op in event-time mode.
 */
void state_wall_clock(struct state *st, int64_t now_ms);
/* The wall clock last set (ms), or QS_NO_TS in event-time mode. */
int64_t state_wall_clock_ms(const struct state *st);

/* Events and dead letters recorded since the last flush. */
size_t state_pending(const struct state *st);

/* Iteration for the sink: each returns the number of items and sets *items (borrowed until state_flushed). */
size_t state_deltas(const struct state *st, const struct state_delta **items);
size_t state_records(const struct state *st, const struct state_record **items);
size_t state_dead_letters(const struct state *st, const struct state_dead_letter **items);
/* The alert transitions found since the last flush, in the order found. */
size_t state_alerts(const struct state *st, const struct qs_alert **items);

/* Partitions whose offset or clock moved since the last flush: the i-th, for i < n. */
size_t state_progress_count(const struct state *st);
void state_progress(const struct state *st, size_t i, enum qs_topic *topic, int32_t *partition, int64_t *expected,
		    int64_t *next, int64_t *clock_ms);

/* An interned string (plan id, stratum). */
const char *state_str(const struct state *st, uint32_t id);

/* The flush committed: clears pending output and makes the new offsets the expected ones. */
void state_flushed(struct state *st);

/*
 * Entities held over all partitions, for logs and the memory report: every
 * record (encounter, delivery, member event: one per id, whatever families
 * read it) plus the families' own aggregates (member-years).
 */
size_t state_entities(const struct state *st);

/* Records (distinct ids) of topic that partition's state holds; 0 if it holds none. */
size_t state_records_held(const struct state *st, enum qs_topic topic, int32_t partition);

#endif
