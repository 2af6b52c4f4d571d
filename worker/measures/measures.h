/*
 * measures.h: measure families. A family owns the entities one topic's
 * events build (deliveries, encounter chains, ...) and turns them into
 * contributions: signed numerator/denominator changes to one measure, plan,
 * stratum and date. The rules are pure: a family's contribs() reads one entity
 * and writes its contributions; apply() folds an event into the entities and
 * reports new contributions minus old ones, so a correction or void retracts
 * exactly what the superseded version contributed. No I/O here.
 *
 * Adding a family is one new file that defines a `struct family` and one line
 * in the table of measures.c.
 */
#ifndef QS_MEASURES_H
#define QS_MEASURES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "alerts.h"
#include "arena.h"
#include "chain.h"
#include "event.h"
#include "hashmap.h"
#include "intern.h"
#include "rules.h"

#define QS_MEASURES(X)      \
	X(NTSV_CSECTION)    \
	X(NTSV_MISSING)     \
	X(CW13_TIMELY)      \
	X(CW13_SUBMISSIONS) \
	X(CAW6)             \
	X(CAW7)             \
	X(CAW8)             \
	X(CAW9)

enum qs_measure {
#define QS_MEASURE_ENUM(name) QS_M_##name,
	QS_MEASURES(QS_MEASURE_ENUM)
#undef QS_MEASURE_ENUM
		QS_M_COUNT
};

/* "NTSV_CSECTION", ...: the spelling stored in measure_period.measure. */
const char *measures_name(enum qs_measure m);

#define QS_GRAIN_BIT(g) (1u << (g)) /* g: an enum qs_grain (dates.h) */
#define QS_GRAINS_ALL 0u            /* qs_contrib.grains of an additive measure */

/*
 * One change to one cell; the state module spreads it over the month, quarter
 * and year that hold `date`. An additive measure (a sum over events) counts the
 * same change at every grain: grains = QS_GRAINS_ALL. A count of distinct
 * members per period is computed at each grain on its own and writes one
 * contribution per cell with grains = QS_GRAIN_BIT(that grain). Zero means
 * every grain so that an initializer that leaves the field out stays additive.
 */
struct qs_contrib {
	enum qs_measure measure;
	uint32_t plan;    /* interned plan_id */
	uint32_t stratum; /* interned stratum: "", "hospital:<id>", "MEDICARE", ... */
	int32_t date;     /* day number that picks the periods */
	int32_t numerator;
	int32_t denominator;
	unsigned grains; /* QS_GRAINS_ALL, or the QS_GRAIN_BIT()s it counts in */
};

/* Where apply() reports contribution changes; see measures_emit_diff. */
struct contrib_sink {
	void (*add)(void *ctx, const struct qs_contrib *c);
	void *ctx;
};

/*
 * What a family may use besides its own entities. The partition's record
 * index (state.c) numbers every record id once, for all families: an event's
 * record number is its index in the families' slabs.
 */
struct family_ctx {
	struct intern *intern;        /* plan ids and strata, shared by all families; borrowed */
	const struct qs_rules *rules; /* rule parameters; borrowed */
	const struct chains *chains;  /* the partition's encounter chains (chain.h), read only */
	struct idmap *names;          /* the partition's member_id and care_plan_id numbers */
	uint32_t record;              /* apply(): the event's record number in its topic's index */
	struct contrib_sink sink;
	/*
	 * Where a family reports the alerts it raises from its own entities
	 * (alerts.h). Like contributions, an entity's alert is a pure function of
	 * the entity and the clock date, and a family reports the difference.
	 */
	struct alert_sink alerts;
	/*
	 * The partition's clock (ms, QS_NO_TS before its first event time), and
	 * the reading its entities' alerts were last reported at: an event that
	 * moves the clock is judged against what was reported, at the new date.
	 */
	int64_t clock_ms, judged_ms;
};

/* Per entity: the most any contribs() writes (a member-year: 12 months + 4 quarters + 1 year). */
#define QS_MAX_CONTRIBS 17

#define QS_TOPIC_BIT(t) (1u << (t))

struct family {
	const char *name;
	/*
	 * The topics whose events it folds, as QS_TOPIC_BIT()s. A family that reads
	 * two topics joins them by member, so both must be co-partitioned: its
	 * state for partition p is shared by partition p of each of its topics.
	 */
	unsigned topics;
	/*
	 * Its entities for one partition number: state_size bytes, zeroed, then
	 * state_init when not NULL (for what zeroes do not make empty, such as a
	 * slab's width); state_release, when not NULL, frees what they hold before
	 * the bytes themselves go. measures_state_new and measures_state_free do it.
	 */
	size_t state_size;
	void (*state_init)(void *state);
	void (*state_release)(void *state);
	/* Folds a decoded, validated delivery or member event (read at `offset`) into the entities. */
	void (*apply)(void *state, struct family_ctx *ctx, const struct qs_event *ev, int64_t offset);
	/*
	 * Encounters go into the partition's chains (chain.h): chain_before reads
	 * them as they were, chain_after as they are; either may be NULL.
	 */
	void (*chain_before)(void *state, struct family_ctx *ctx, const struct chain_change *ch);
	void (*chain_after)(void *state, struct family_ctx *ctx, const struct chain_change *ch);
	/*
	 * The partition's clock moved from ctx->judged_ms to ctx->clock_ms:
	 * reports the alerts that changed with the date. NULL for a family
	 * without timers.
	 */
	void (*tick)(void *state, struct family_ctx *ctx);
	/* Entities of its own held (member-years; records are counted by the index), or NULL. */
	size_t (*count)(const void *state);
};

#define QS_MAX_FAMILIES 16 /* measures_family_count never exceeds this */

extern const struct family *const measures_families[];
extern const size_t measures_family_count;

/* A zeroed, initialized state of family f (see struct family); aborts on OOM. Caller frees with measures_state_free. */
void *measures_state_new(const struct family *f);
/* Frees a state of f; NULL is allowed. */
void measures_state_free(const struct family *f, void *state);

/*
 * Reports after - before to ctx->sink: every contribution in `before` negated,
 * then every one in `after`, leaving out each pair equal at the same position
 * (it adds nothing). Other cells that cancel out are summed to zero by the
 * state module.
 */
void measures_emit_diff(struct family_ctx *ctx, const struct qs_contrib *before, size_t n_before,
			const struct qs_contrib *after, size_t n_after);

#endif
