/*
 * state.c: partition entity sets, the delta accumulator and pending output
 * (see state.h). The accumulator is an open-addressing table keyed by the
 * cell; it and the pending vectors keep their capacity across flushes, so a
 * steady stream allocates only when it reaches a new high-water mark.
 */
#include "state.h"

#include <stdlib.h>
#include <string.h>

#include "arena.h"
#include "intern.h"
#include "xalloc.h"

/*
 * Everything held for one partition number, over all topics: the record
 * index (every record id numbered once, for all families: encounter ids in
 * the chains, delivery and member-event ids, which are never shown, by their
 * 96-bit keys in keymaps), the member and
 * care plan ids the families key by, and each family's entities in slabs
 * indexed by those numbers. A family reading two topics (CAW7: encounters and
 * member events) sees partition p of both through one store; it lives while
 * any held partition with that number refers to it.
 */
struct store {
	struct chains chains;        /* encounter ids and chains, read by CW13 and CAW7 */
	struct keymap deliveries;    /* delivery_id -> record number */
	struct keymap member_events; /* event_id -> record number */
	struct idmap names;          /* member_id, care_plan_id -> number */
	void *family[QS_MAX_FAMILIES];
	int refs;
};

struct part {
	enum qs_topic topic;
	int32_t partition;
	int64_t expected; /* next_offset last committed (the fence) */
	int64_t next;     /* next offset to read */
	int64_t clock_ms; /* the partition's clock, QS_NO_TS before its first event time */
	bool progressed;  /* listed in st->progressed */
	bool parked;      /* held but not assigned: see state_part_park */
	struct store *store;
};

#define VEC(T)                   \
	struct {                 \
		T *items;        \
		size_t len, cap; \
	}

struct state {
	const struct qs_rules *rules;
	struct alert_clock clock; /* how the partitions' clocks move */
	struct intern intern;
	VEC(struct part *) parts[QS_TOPIC_COUNT]; /* indexed by partition number */
	VEC(struct store *) stores;               /* indexed by partition number */
	VEC(struct part *) progressed;
	/* delta accumulator: cells[] in insertion order, index[] maps hash -> cells position + 1 */
	VEC(struct state_delta) cells;
	uint32_t *index;
	size_t index_cap;
	struct dates_cache periods; /* the cells' period starts by contribution date */
	VEC(struct state_record) records;
	VEC(struct state_dead_letter) dead_letters;
	VEC(struct qs_alert) alerts;
	struct arena pending; /* bytes of pending records, dead letters and alerts */
	size_t events;        /* applied since the last flush */
};

#define VEC_PUSH(v)                                                                                     \
	(((v).len == (v).cap ? ((v).cap = (v).cap ? (v).cap * 2 : 64,                                   \
				(v).items = xrealloc((v).items, (v).cap * sizeof(*(v).items), "state")) \
			     : 0),                                                                      \
	 &(v).items[(v).len++])

struct state *state_new(const struct qs_rules *rules, bool wall_clock)
{
	struct state *st = xcalloc(1, sizeof(*st), "the state");
	st->rules = rules;
	st->clock = alerts_clock(wall_clock);
	dates_cache_init(&st->periods);
	return st;
}

static void part_free(struct state *st, struct part *p)
{
	struct store *s = p->store;
	if (--s->refs == 0) {
		for (size_t f = 0; f < measures_family_count; f++)
			measures_state_free(measures_families[f], s->family[f]);
		chains_free(&s->chains);
		keymap_free(&s->deliveries);
		keymap_free(&s->member_events);
		idmap_free(&s->names);
		free(s);
		st->stores.items[p->partition] = NULL;
	}
	free(p);
}

static void pending_clear(struct state *st)
{
	st->cells.len = 0;
	if (st->index)
		memset(st->index, 0, st->index_cap * sizeof(*st->index));
	st->records.len = 0;
	st->dead_letters.len = 0;
	st->alerts.len = 0;
	st->events = 0;
	arena_clear(&st->pending); /* keeps its chunks: no allocation per flush cycle */
}

void state_reset(struct state *st)
{
	for (int t = 0; t < QS_TOPIC_COUNT; t++) {
		for (size_t i = 0; i < st->parts[t].len; i++)
			if (st->parts[t].items[i])
				part_free(st, st->parts[t].items[i]);
		st->parts[t].len = 0;
	}
	st->progressed.len = 0;
	pending_clear(st);
}

void state_free(struct state *st)
{
	if (!st)
		return;
	state_reset(st);
	arena_free(&st->pending);
	for (int t = 0; t < QS_TOPIC_COUNT; t++)
		free(st->parts[t].items);
	free(st->stores.items);
	free(st->progressed.items);
	free(st->cells.items);
	free(st->index);
	free(st->records.items);
	free(st->dead_letters.items);
	free(st->alerts.items);
	intern_free(&st->intern);
	free(st);
}

static struct part *part_at(const struct state *st, enum qs_topic topic, int32_t partition)
{
	if (partition < 0 || (size_t)partition >= st->parts[topic].len)
		return NULL;
	return st->parts[topic].items[partition];
}

struct part *state_part(struct state *st, enum qs_topic topic, int32_t partition)
{
	return part_at(st, topic, partition);
}

struct part *state_part_add(struct state *st, enum qs_topic topic, int32_t partition, int64_t next_offset,
			    int64_t clock_ms)
{
	struct part *p = state_part(st, topic, partition);
	if (p)
		return p;
	while (st->parts[topic].len <= (size_t)partition)
		*VEC_PUSH(st->parts[topic]) = NULL;
	p = xcalloc(1, sizeof(*p), "a partition");
	p->topic = topic;
	p->partition = partition;
	p->expected = p->next = next_offset;
	p->clock_ms = clock_ms;
	while (st->stores.len <= (size_t)partition)
		*VEC_PUSH(st->stores) = NULL;
	struct store *s = st->stores.items[partition];
	if (!s) {
		s = xcalloc(1, sizeof(*s), "a partition store");
		chains_init(&s->chains);
		for (size_t f = 0; f < measures_family_count; f++)
			s->family[f] = measures_state_new(measures_families[f]);
		st->stores.items[partition] = s;
	}
	s->refs++;
	p->store = s;
	st->parts[topic].items[partition] = p;
	return p;
}

void state_part_drop(struct state *st, struct part *p)
{
	for (size_t i = 0; i < st->progressed.len; i++)
		if (st->progressed.items[i] == p)
			st->progressed.items[i] = st->progressed.items[--st->progressed.len];
	st->parts[p->topic].items[p->partition] = NULL;
	part_free(st, p);
}

void state_retain(struct state *st, bool (*keep)(void *ctx, enum qs_topic topic, int32_t partition), void *ctx)
{
	for (int t = 0; t < QS_TOPIC_COUNT; t++)
		for (size_t i = 0; i < st->parts[t].len; i++) {
			struct part *p = st->parts[t].items[i];
			if (p && !keep(ctx, p->topic, p->partition))
				state_part_drop(st, p);
		}
}

int64_t state_part_next_offset(const struct part *p)
{
	return p->next;
}

int64_t state_part_clock(const struct part *p)
{
	return p->clock_ms;
}

void state_part_park(struct part *p, bool parked)
{
	p->parked = parked;
}

bool state_part_parked(const struct part *p)
{
	return p->parked;
}

static void mark_progressed(struct state *st, struct part *p)
{
	if (!p->progressed) {
		p->progressed = true;
		*VEC_PUSH(st->progressed) = p;
	}
}

static void advance(struct state *st, struct part *p, int64_t offset)
{
	p->next = offset + 1;
	mark_progressed(st, p);
}

/*
 * Hash of a cell's key, from its fields (a struct would hash its padding
 * bytes too): the two key words mixed by multiply-xorshift, which costs a few
 * instructions where a byte-wise hash costs one round per byte.
 */
static size_t cell_hash(uint32_t plan, uint32_t stratum, int32_t period_start, unsigned measure, unsigned grain)
{
	uint64_t h = ((uint64_t)plan << 32 | stratum) * 0x9e3779b97f4a7c15ULL;
	h ^= ((uint64_t)(uint32_t)period_start << 16 | measure << 8 | grain) + (h >> 29);
	h *= 0xbf58476d1ce4e5b9ULL;
	return (size_t)(h ^ (h >> 31));
}

/* Adds one contribution to the month, quarter and year cells that hold its date (those of its grains). */
static void accumulate(void *ctx, const struct qs_contrib *c)
{
	struct state *st = ctx;
	const int32_t *starts = dates_cache_starts(&st->periods, c->date);
	for (int g = 0; g < QS_GRAIN_COUNT; g++) {
		if (c->grains != QS_GRAINS_ALL && !(c->grains & QS_GRAIN_BIT(g)))
			continue;
		int32_t start = starts[g];
		if ((st->cells.len + 1) * 2 > st->index_cap) {
			/* Grow the index and re-insert every cell (cells[] itself is unchanged). */
			free(st->index);
			st->index_cap = st->index_cap ? st->index_cap * 2 : 1024;
			st->index = xcalloc(st->index_cap, sizeof(*st->index), "the delta index");
			for (size_t i = 0; i < st->cells.len; i++) {
				const struct state_delta *d = &st->cells.items[i];
				size_t h = cell_hash(d->plan, d->stratum, d->period_start, d->measure, d->grain);
				while (st->index[h & (st->index_cap - 1)])
					h++;
				st->index[h & (st->index_cap - 1)] = (uint32_t)i + 1;
			}
		}
		size_t mask = st->index_cap - 1;
		size_t h = cell_hash(c->plan, c->stratum, start, c->measure, (unsigned)g) & mask;
		struct state_delta *d = NULL;
		for (; st->index[h]; h = (h + 1) & mask) {
			struct state_delta *x = &st->cells.items[st->index[h] - 1];
			if (x->plan == c->plan && x->stratum == c->stratum && x->period_start == start &&
			    x->measure == c->measure && x->grain == (enum qs_grain)g) {
				d = x;
				break;
			}
		}
		if (!d) {
			d = VEC_PUSH(st->cells);
			*d = (struct state_delta){c->plan, c->stratum, c->measure, (enum qs_grain)g, start, 0, 0};
			st->index[h] = (uint32_t)st->cells.len;
		}
		d->numerator += c->numerator;
		d->denominator += c->denominator;
	}
}

static void discard(void *ctx, const struct qs_contrib *c)
{
	(void)ctx;
	(void)c;
}

static void record_alert(void *ctx, const struct qs_alert *a)
{
	struct state *st = ctx;
	struct qs_alert *copy = VEC_PUSH(st->alerts);
	*copy = *a;
	copy->member_id = arena_strdup(&st->pending, a->member_id);
	copy->encounter_id = arena_strdup(&st->pending, a->encounter_id);
	copy->details = arena_strdup(&st->pending, a->details);
}

static void discard_alert(void *ctx, const struct qs_alert *a)
{
	(void)ctx;
	(void)a;
}

/*
 * What a family may use on p: live output goes to the pending deltas and
 * alerts, a restore's nowhere. judged_ms: the clock p's alerts were reported at.
 */
static struct family_ctx family_ctx(struct state *st, struct part *p, bool live, int64_t judged_ms)
{
	return (struct family_ctx){
		.intern = &st->intern,
		.rules = st->rules,
		.chains = &p->store->chains,
		.names = &p->store->names,
		.record = 0,
		.sink = live ? (struct contrib_sink){accumulate, st} : (struct contrib_sink){discard, NULL},
		.alerts = live ? (struct alert_sink){record_alert, st} : (struct alert_sink){discard_alert, NULL},
		.clock_ms = p->clock_ms,
		.judged_ms = judged_ms,
	};
}

static bool reads(size_t f, enum qs_topic topic)
{
	return measures_families[f]->topics & QS_TOPIC_BIT(topic);
}

/*
 * One lookup in the partition's record index per event: an encounter goes
 * into the chains, which every family reading encounters reads before and
 * after; any other record's number is the index of its entities in the
 * families' slabs.
 */
static void fold(struct state *st, struct part *p, const struct qs_event *ev, int64_t offset, bool live,
		 int64_t judged_ms)
{
	struct store *s = p->store;
	struct family_ctx ctx = family_ctx(st, p, live, judged_ms);
	if (ev->topic == QS_TOPIC_ENCOUNTERS) {
		const struct qs_encounter *e = &ev->u.encounter;
		struct chain_change ch;
		chains_begin(&s->chains, e, &ch);
		for (size_t f = 0; f < measures_family_count; f++)
			if (reads(f, ev->topic) && measures_families[f]->chain_before)
				measures_families[f]->chain_before(s->family[f], &ctx, &ch);
		const struct chain_node *held = chains_node(&s->chains, ch.record); /* plan and member: hints */
		chains_commit(&s->chains, &ch, e, offset, intern_id_hint(&st->intern, e->plan_id, held->plan),
			      idmap_add_hint(&s->names, e->member_id, held->member));
		for (size_t f = 0; f < measures_family_count; f++)
			if (reads(f, ev->topic) && measures_families[f]->chain_after)
				measures_families[f]->chain_after(s->family[f], &ctx, &ch);
		chains_end(&s->chains, &ch);
		return;
	}
	ctx.record = ev->topic == QS_TOPIC_DELIVERIES
			     ? keymap_add(&s->deliveries, keymap_key(ev->u.delivery.delivery_id), NULL)
			     : keymap_add(&s->member_events, keymap_key(ev->u.member.event_id), NULL);
	for (size_t f = 0; f < measures_family_count; f++)
		if (reads(f, ev->topic))
			measures_families[f]->apply(s->family[f], &ctx, ev, offset);
}

/* p's clock moved on from judged_ms: lets the timers of the families reading p's topic fire. */
static void fire_timers(struct state *st, struct part *p, int64_t judged_ms)
{
	struct family_ctx ctx = family_ctx(st, p, true, judged_ms);
	for (size_t f = 0; f < measures_family_count; f++)
		if (reads(f, p->topic) && measures_families[f]->tick)
			measures_families[f]->tick(p->store->family[f], &ctx);
}

static void *copy_pending(struct state *st, const void *bytes, size_t len)
{
	return bytes ? memcpy(arena_alloc(&st->pending, len ? len : 1), bytes, len) : NULL;
}

void state_apply(struct state *st, struct part *p, const struct qs_event *ev, int64_t offset, const void *value,
		 size_t value_len)
{
	/*
	 * The event is judged at its own time, against what its entities had
	 * reported; then the other entities' timers catch up with the new clock.
	 * (Timers first would report, for an owed encounter whose own submission
	 * moves the clock past a boundary, an alert raised and resolved at once.)
	 */
	int64_t judged = p->clock_ms;
	p->clock_ms = alerts_clock_on_event(&st->clock, p->clock_ms, ev);
	fold(st, p, ev, offset, true, judged);
	if (p->clock_ms != judged)
		fire_timers(st, p, judged);
	*VEC_PUSH(st->records) = (struct state_record){
		.topic = p->topic,
		.partition = p->partition,
		.offset = offset,
		.record_id = arena_strdup(&st->pending, qs_event_record_id(ev)),
		.value = copy_pending(st, value, value_len),
		.value_len = value_len,
	};
	st->events++;
	advance(st, p, offset);
}

void state_restore(struct state *st, struct part *p, const struct qs_event *ev, int64_t offset)
{
	fold(st, p, ev, offset, false, p->clock_ms);
}

void state_dead_letter(struct state *st, struct part *p, int64_t offset, const void *key, size_t key_len,
		       const void *value, size_t value_len, const char *reason)
{
	*VEC_PUSH(st->dead_letters) = (struct state_dead_letter){
		.topic = p->topic,
		.partition = p->partition,
		.offset = offset,
		.key = copy_pending(st, key, key_len),
		.key_len = key_len,
		.value = copy_pending(st, value, value_len),
		.value_len = value_len,
		.reason = arena_strdup(&st->pending, reason),
	};
	st->events++;
	advance(st, p, offset);
}

void state_wall_clock(struct state *st, int64_t now_ms)
{
	if (!alerts_clock_wall_set(&st->clock, now_ms))
		return;
	for (int t = 0; t < QS_TOPIC_COUNT; t++)
		for (size_t i = 0; i < st->parts[t].len; i++) {
			struct part *p = st->parts[t].items[i];
			if (!p || p->parked || !alerts_clock_wall_due(&st->clock, p->clock_ms))
				continue;
			int64_t judged = p->clock_ms;
			p->clock_ms = now_ms;
			fire_timers(st, p, judged);
			mark_progressed(st, p);
		}
}

int64_t state_wall_clock_ms(const struct state *st)
{
	return st->clock.wall_ms;
}

size_t state_pending(const struct state *st)
{
	return st->events;
}

size_t state_deltas(const struct state *st, const struct state_delta **items)
{
	*items = st->cells.items;
	return st->cells.len;
}

size_t state_records(const struct state *st, const struct state_record **items)
{
	*items = st->records.items;
	return st->records.len;
}

size_t state_dead_letters(const struct state *st, const struct state_dead_letter **items)
{
	*items = st->dead_letters.items;
	return st->dead_letters.len;
}

size_t state_alerts(const struct state *st, const struct qs_alert **items)
{
	*items = st->alerts.items;
	return st->alerts.len;
}

size_t state_progress_count(const struct state *st)
{
	return st->progressed.len;
}

void state_progress(const struct state *st, size_t i, enum qs_topic *topic, int32_t *partition, int64_t *expected,
		    int64_t *next, int64_t *clock_ms)
{
	const struct part *p = st->progressed.items[i];
	*topic = p->topic;
	*partition = p->partition;
	*expected = p->expected;
	*next = p->next;
	*clock_ms = p->clock_ms;
}

const char *state_str(const struct state *st, uint32_t id)
{
	return intern_str(&st->intern, id);
}

void state_flushed(struct state *st)
{
	for (size_t i = 0; i < st->progressed.len; i++) {
		struct part *p = st->progressed.items[i];
		p->expected = p->next;
		p->progressed = false;
	}
	st->progressed.len = 0;
	pending_clear(st);
}

size_t state_entities(const struct state *st)
{
	size_t n = 0;
	for (size_t i = 0; i < st->stores.len; i++) {
		const struct store *s = st->stores.items[i];
		if (!s)
			continue;
		n += s->chains.records + s->deliveries.len + s->member_events.len;
		for (size_t f = 0; f < measures_family_count; f++)
			if (measures_families[f]->count)
				n += measures_families[f]->count(s->family[f]);
	}
	return n;
}

size_t state_records_held(const struct state *st, enum qs_topic topic, int32_t partition)
{
	const struct part *p = part_at(st, topic, partition);
	if (!p)
		return 0;
	switch (topic) {
	case QS_TOPIC_ENCOUNTERS:
		return p->store->chains.records;
	case QS_TOPIC_DELIVERIES:
		return p->store->deliveries.len;
	default:
		return p->store->member_events.len;
	}
}
