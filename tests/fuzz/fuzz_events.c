/*
 * fuzz_events.c: libFuzzer target for event sequences into the state (the
 * state_apply / state_restore API the worker uses; no Kafka, no PostgreSQL).
 * The input bytes drive up to MAX_EVENTS events over small id spaces, so ids
 * collide: encounters of every frequency naming any id (themselves included,
 * so cycles form), ids resent with another frequency or original, deliveries,
 * member events of every body, identical redeliveries. Then a differential
 * check, abort() on any difference:
 *
 *  1. recount: a fresh state fed only the latest version of each record (in
 *     offset order, at its own offset) must hold the same cells as the live
 *     state that saw every version (README "Identity, corrections and voids":
 *     the result is a function of the latest versions);
 *  2. restore: a state restored from the latest versions at the live clock,
 *     as a restarted worker does (each partition's records in offset order,
 *     the partitions in an order the input picks), then fed the same
 *     continuation as the live one: the clock 400 days on (every timer fires)
 *     and a version of every record that counts nowhere (a void naming itself,
 *     VOID deliveries and member events). Both must report the same alert
 *     transitions, in the same order, and the same cell changes, and those
 *     must retract exactly what the live state had reported: its cells end at
 *     zero and no alert is left open.
 *
 * Build: CC=clang cmake -S . -B build-fuzz -DQS_FUZZ=ON && cmake --build build-fuzz --target
 * fuzz_events; run: build-fuzz/fuzz_events tests/fuzz/corpus/fuzz_events (libFuzzer flags apply).
 * The seed-* inputs (tests/fuzz/make_events_seeds.py) are the unit tests' chain cases
 * (tests/test_measures.c "chains") in this encoding; a failing input is kept as regress-*.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dates.h"
#include "state.h"

#define MAX_EVENTS 48
#define ENC_IDS 8
#define MEM_IDS 8
#define DEL_IDS 4
#define DAY_MS INT64_C(86400000)

static const struct qs_rules rules = {.cw13_timely_days = 180, .alert_due_soon_days = 150};

struct input {
	const uint8_t *p;
	size_t n;
};

static unsigned byte(struct input *in)
{
	if (!in->n)
		return 0;
	in->n--;
	return *in->p++;
}

/* A logged event: what was sent, at which offset of its topic's partition 0. */
struct sent {
	struct qs_event ev;
	int64_t offset;
};

static int32_t base_day(void)
{
	return dates_from_civil(2023, 1, 1);
}

static struct qs_event gen_encounter(struct input *in)
{
	unsigned a = byte(in), b = byte(in), d = byte(in), t = byte(in);
	struct qs_event ev = {.topic = QS_TOPIC_ENCOUNTERS};
	struct qs_encounter *e = &ev.u.encounter;
	snprintf(e->encounter_id, sizeof(e->encounter_id), "E%u", a % ENC_IDS);
	e->frequency = (enum qs_frequency)((a >> 3) % 3);
	if (e->frequency != QS_FREQ_ORIGINAL)
		snprintf(e->original_encounter_id, sizeof(e->original_encounter_id), "E%u", b % ENC_IDS);
	snprintf(e->plan_id, sizeof(e->plan_id), "P%u", (b >> 3) & 1);
	snprintf(e->member_id, sizeof(e->member_id), "M%u", (b >> 4) & 1);
	e->source = (b >> 5) & 1 ? QS_SOURCE_MEDICAID : QS_SOURCE_MEDICARE;
	e->ed_visit = (b >> 6) & 1;
	e->service_to = base_day() + (int32_t)(d * 2);
	e->service_from = e->service_to - (int32_t)(d & 3);
	/* Event times up to 255 days after service_to: owed ones age into DUE_SOON and OVERDUE. */
	int64_t at = (int64_t)(e->service_to + (int32_t)t) * DAY_MS + (t & 1) * 43200000;
	e->adjudicated_at = at;
	e->submitted_at = (b >> 7) & 1 ? QS_NO_TS : at;
	return ev;
}

static struct qs_event gen_delivery(struct input *in)
{
	unsigned a = byte(in), b = byte(in);
	struct qs_event ev = {.topic = QS_TOPIC_DELIVERIES};
	struct qs_delivery *d = &ev.u.delivery;
	snprintf(d->delivery_id, sizeof(d->delivery_id), "D%u", a % DEL_IDS);
	snprintf(d->plan_id, sizeof(d->plan_id), "P%u", (a >> 2) & 1);
	snprintf(d->hospital_id, sizeof(d->hospital_id), "H%u", (a >> 3) & 1);
	snprintf(d->member_id, sizeof(d->member_id), "M%u", (a >> 4) & 1);
	d->delivery_date = base_day() + (int32_t)(b * 3);
	d->parity = (a >> 5) & 1 ? QS_NO_INT : (int32_t)(b & 1);
	d->gestational_age_weeks = 36 + (int32_t)((b >> 1) & 3);
	d->plurality = 1;
	d->presentation = (a >> 6) & 1 ? QS_PRES_NONE : QS_PRES_VERTEX;
	d->method = (b >> 3) & 1 ? QS_METHOD_CESAREAN : QS_METHOD_VAGINAL;
	d->live_birth = true;
	d->status = (a >> 7) & 1 ? QS_STATUS_VOID : QS_STATUS_ACTIVE;
	return ev;
}

static struct qs_event gen_member(struct input *in)
{
	unsigned a = byte(in), b = byte(in), c = byte(in);
	struct qs_event ev = {.topic = QS_TOPIC_MEMBER_EVENTS};
	struct qs_member_event *m = &ev.u.member;
	snprintf(m->event_id, sizeof(m->event_id), "N%u", a % MEM_IDS);
	snprintf(m->plan_id, sizeof(m->plan_id), "P%u", (a >> 3) & 1);
	snprintf(m->member_id, sizeof(m->member_id), "M%u", (a >> 4) & 1);
	m->status = (a >> 5) & 1 ? QS_STATUS_VOID : QS_STATUS_ACTIVE;
	m->body = (enum qs_member_body)(b % 5);
	int y, mo, dd;
	dates_to_civil(base_day() + (int32_t)(c * 3), &y, &mo, &dd);
	int32_t month = dates_from_civil(y, mo, 1), date = base_day() + (int32_t)(c * 3);
	switch (m->body) {
	case QS_BODY_ENROLLMENT:
		m->u.enrollment.month = month;
		m->u.enrollment.smi_sud = (b >> 3) & 1;
		break;
	case QS_BODY_BH_COORDINATION:
		m->u.bh_coordination.event_date = date;
		m->u.bh_coordination.receives_smhs = (b >> 3) & 1;
		m->u.bh_coordination.county_provider_outcome = (enum qs_outcome)((b >> 4) % 3);
		m->u.bh_coordination.member_outcome = (enum qs_outcome)((b >> 6) % 3);
		break;
	case QS_BODY_CARE_PLAN:
		snprintf(m->u.care_plan.care_plan_id, sizeof(m->u.care_plan.care_plan_id), "C%u", (b >> 3) & 1);
		m->u.care_plan.plan_type = (b >> 4) & 1 ? QS_CARE_PLAN_REVISED : QS_CARE_PLAN_INITIAL;
		m->u.care_plan.completed_on = date;
		m->u.care_plan.care_goals_documented = (b >> 5) & 1;
		break;
	case QS_BODY_COORDINATOR_ASSIGNED:
		m->u.coordinator_assigned.month = month;
		break;
	default:
		m->u.care_team_contact.contact_date = date;
		break;
	}
	return ev;
}

/* --- cells, compared by name (each state interns on its own) ----------- */

struct cell {
	char plan[QS_ID_MAX], stratum[2 * QS_ID_MAX];
	enum qs_measure measure;
	enum qs_grain grain;
	int32_t start;
	int64_t n, d;
};

struct cells {
	struct cell *items;
	size_t len;
};

static int cell_cmp(const void *a, const void *b)
{
	const struct cell *x = a, *y = b;
	int c = strcmp(x->plan, y->plan);
	if (!c)
		c = strcmp(x->stratum, y->stratum);
	if (!c)
		c = (int)x->measure - (int)y->measure;
	if (!c)
		c = (int)x->grain - (int)y->grain;
	if (!c)
		c = x->start < y->start ? -1 : x->start > y->start;
	return c;
}

/* The state's pending deltas, negated when `negate`, summed per cell, zero cells dropped, sorted. */
static struct cells cells_of(const struct state *st, bool negate)
{
	const struct state_delta *x;
	size_t n = state_deltas(st, &x);
	struct cells out = {calloc(n + 1, sizeof(struct cell)), 0};
	if (!out.items)
		abort();
	for (size_t i = 0; i < n; i++) {
		struct cell *c = &out.items[out.len++];
		snprintf(c->plan, sizeof(c->plan), "%s", state_str(st, x[i].plan));
		snprintf(c->stratum, sizeof(c->stratum), "%s", state_str(st, x[i].stratum));
		c->measure = x[i].measure;
		c->grain = x[i].grain;
		c->start = x[i].period_start;
		c->n = negate ? -x[i].numerator : x[i].numerator;
		c->d = negate ? -x[i].denominator : x[i].denominator;
	}
	qsort(out.items, out.len, sizeof(struct cell), cell_cmp);
	size_t k = 0;
	for (size_t i = 0; i < out.len; i++) {
		if (k && !cell_cmp(&out.items[k - 1], &out.items[i])) {
			out.items[k - 1].n += out.items[i].n;
			out.items[k - 1].d += out.items[i].d;
		} else {
			out.items[k++] = out.items[i];
		}
	}
	out.len = 0;
	for (size_t i = 0; i < k; i++)
		if (out.items[i].n || out.items[i].d)
			out.items[out.len++] = out.items[i];
	return out;
}

static void fail(const char *what)
{
	fprintf(stderr, "fuzz_events: %s\n", what);
	abort();
}

static void same_cells(const struct cells *x, const struct cells *y, const char *what)
{
	bool same = x->len == y->len;
	for (size_t i = 0; same && i < x->len; i++)
		same = !cell_cmp(&x->items[i], &y->items[i]) && x->items[i].n == y->items[i].n &&
		       x->items[i].d == y->items[i].d;
	if (same)
		return;
	for (int side = 0; side < 2; side++) {
		const struct cells *c = side ? y : x;
		fprintf(stderr, "%s:\n", side ? "other" : "live");
		for (size_t i = 0; i < c->len; i++)
			fprintf(stderr, "  %s %s %s g%d %d: %lld/%lld\n", c->items[i].plan,
				measures_name(c->items[i].measure), c->items[i].stratum, (int)c->items[i].grain,
				c->items[i].start, (long long)c->items[i].n, (long long)c->items[i].d);
	}
	fail(what);
}

/* --- alerts ------------------------------------------------------------ */

static bool same_alert(const struct state *sx, const struct qs_alert *x, const struct state *sy,
		       const struct qs_alert *y)
{
	return x->kind == y->kind && x->raised == y->raised && x->due_date == y->due_date &&
	       x->detected_at == y->detected_at && !strcmp(x->encounter_id, y->encounter_id) &&
	       !strcmp(x->member_id, y->member_id) && !strcmp(x->details, y->details) &&
	       !strcmp(state_str(sx, x->plan), state_str(sy, y->plan)) &&
	       !strcmp(state_str(sx, x->source), state_str(sy, y->source));
}

/* Open alerts by folding transitions: one RAISED, then one RESOLVED, per kind, plan and encounter. */
#define OPEN_MAX 64
struct open_alerts {
	struct {
		enum qs_alert_kind kind;
		char plan[QS_ID_MAX], encounter[QS_ID_MAX];
	} items[OPEN_MAX];
	size_t len;
};

static void fold_alerts(struct open_alerts *o, const struct state *st, size_t from)
{
	const struct qs_alert *a;
	size_t n = state_alerts(st, &a);
	for (size_t i = from; i < n; i++) {
		const char *plan = state_str(st, a[i].plan);
		size_t k = 0;
		while (k < o->len && !(o->items[k].kind == a[i].kind && !strcmp(o->items[k].plan, plan) &&
				       !strcmp(o->items[k].encounter, a[i].encounter_id)))
			k++;
		if (a[i].raised) {
			if (k < o->len || o->len == OPEN_MAX)
				fail("an alert raised while open");
			o->items[o->len].kind = a[i].kind;
			snprintf(o->items[o->len].plan, QS_ID_MAX, "%s", plan);
			snprintf(o->items[o->len].encounter, QS_ID_MAX, "%s", a[i].encounter_id);
			o->len++;
		} else {
			if (k == o->len)
				fail("an alert resolved that was not open");
			o->items[k] = o->items[--o->len];
		}
	}
}

/* --- the two sides ------------------------------------------------------- */

struct side {
	struct state *st;
	struct part *p[QS_TOPIC_COUNT];
	int64_t next[QS_TOPIC_COUNT];
};

static void side_new(struct side *s, const int64_t *next, const int64_t *clock)
{
	s->st = state_new(&rules, false);
	for (int t = 0; t < QS_TOPIC_COUNT; t++) {
		s->next[t] = next ? next[t] : 0;
		s->p[t] = state_part_add(s->st, (enum qs_topic)t, 0, s->next[t], clock ? clock[t] : QS_NO_TS);
	}
}

static void side_put(struct side *s, const struct qs_event *ev)
{
	state_apply(s->st, s->p[ev->topic], ev, s->next[ev->topic]++, "x", 1);
}

/* log[i] is the latest version of its record. */
static bool latest(const struct sent *log, size_t n, size_t i)
{
	for (size_t j = i + 1; j < n; j++)
		if (log[j].ev.topic == log[i].ev.topic &&
		    !strcmp(qs_event_record_id(&log[j].ev), qs_event_record_id(&log[i].ev)))
			return false;
	return true;
}

/* The continuation both sides get: the clock far on, then every record made to count nowhere. */
static size_t continuation(const struct sent *log, size_t n, int64_t enc_clock, struct qs_event *out)
{
	size_t k = 0;
	int32_t today = enc_clock == QS_NO_TS ? base_day() : dates_day_of_ms(enc_clock);
	struct qs_event tick = {.topic = QS_TOPIC_ENCOUNTERS};
	struct qs_encounter *t = &tick.u.encounter;
	strcpy(t->encounter_id, "T");
	strcpy(t->plan_id, "P0");
	strcpy(t->member_id, "M0");
	t->frequency = QS_FREQ_ORIGINAL;
	t->service_from = t->service_to = today + 400;
	t->adjudicated_at = t->submitted_at = (int64_t)(today + 400) * DAY_MS;
	out[k++] = tick;
	for (size_t i = 0; i < n; i++) {
		if (!latest(log, n, i))
			continue;
		struct qs_event ev = log[i].ev;
		if (ev.topic == QS_TOPIC_ENCOUNTERS) {
			struct qs_encounter *e = &ev.u.encounter;
			e->frequency = QS_FREQ_VOID;
			strcpy(e->original_encounter_id, e->encounter_id);
			e->adjudicated_at = e->submitted_at = QS_NO_TS;
		} else if (ev.topic == QS_TOPIC_DELIVERIES) {
			ev.u.delivery.status = QS_STATUS_VOID;
		} else {
			ev.u.member.status = QS_STATUS_VOID;
		}
		out[k++] = ev;
	}
	t->frequency = QS_FREQ_VOID;
	strcpy(t->original_encounter_id, "T");
	t->adjudicated_at = t->submitted_at = QS_NO_TS;
	out[k++] = tick;
	return k;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct input in = {data, size};
	unsigned restore_order = byte(&in);
	static struct sent log[MAX_EVENTS];
	size_t n = 0;
	int64_t offsets[QS_TOPIC_COUNT] = {0};
	while (in.n && n < MAX_EVENTS) {
		unsigned op = byte(&in) % 10;
		struct qs_event ev;
		if (op < 6)
			ev = gen_encounter(&in);
		else if (op == 6)
			ev = gen_delivery(&in);
		else if (op < 9)
			ev = gen_member(&in);
		else if (n)
			ev = log[byte(&in) % n].ev; /* an identical redelivery */
		else
			continue;
		log[n].ev = ev;
		log[n].offset = offsets[ev.topic]++;
		n++;
	}

	struct side live, fresh, restored;
	side_new(&live, NULL, NULL);
	for (size_t i = 0; i < n; i++)
		side_put(&live, &log[i].ev);
	struct open_alerts open = {.len = 0};
	fold_alerts(&open, live.st, 0);

	/* 1. The cells of the latest versions alone. */
	side_new(&fresh, NULL, NULL);
	for (size_t i = 0; i < n; i++)
		if (latest(log, n, i)) {
			fresh.next[log[i].ev.topic] = log[i].offset;
			side_put(&fresh, &log[i].ev);
		}
	struct cells live_cells = cells_of(live.st, false), fresh_cells = cells_of(fresh.st, false);
	same_cells(&live_cells, &fresh_cells, "live cells differ from the latest versions' cells");
	free(fresh_cells.items);
	state_free(fresh.st);

	/* 2. A restarted owner: the live clocks and offsets, the latest versions restored. */
	int64_t clock[QS_TOPIC_COUNT] = {QS_NO_TS, QS_NO_TS, QS_NO_TS};
	for (size_t i = 0; i < state_progress_count(live.st); i++) {
		enum qs_topic topic;
		int32_t partition;
		int64_t expected, next, ms;
		state_progress(live.st, i, &topic, &partition, &expected, &next, &ms);
		clock[topic] = ms;
	}
	state_flushed(live.st);
	side_new(&restored, live.next, clock);
	for (int k = 0; k < QS_TOPIC_COUNT; k++) {
		enum qs_topic topic = (enum qs_topic)((k + restore_order) % QS_TOPIC_COUNT);
		for (size_t i = 0; i < n; i++)
			if (log[i].ev.topic == topic && latest(log, n, i))
				state_restore(restored.st, restored.p[topic], &log[i].ev, log[i].offset);
	}

	static struct qs_event cont[MAX_EVENTS + 2];
	size_t nc = continuation(log, n, clock[QS_TOPIC_ENCOUNTERS], cont);
	const struct qs_alert *x, *y;
	for (size_t i = 0; i < nc; i++) {
		size_t sx = state_alerts(live.st, &x), sy = state_alerts(restored.st, &y);
		side_put(&live, &cont[i]);
		side_put(&restored, &cont[i]);
		size_t ex = state_alerts(live.st, &x), ey = state_alerts(restored.st, &y);
		if (ex - sx != ey - sy)
			fail("live and restored report different numbers of alert transitions");
		for (size_t j = 0; j < ex - sx; j++)
			if (!same_alert(live.st, &x[sx + j], restored.st, &y[sy + j]))
				fail("live and restored report different alert transitions");
	}
	fold_alerts(&open, live.st, 0);
	if (open.len)
		fail("an alert is left open after every record was voided");
	struct cells retracted = cells_of(live.st, true), restored_retracted = cells_of(restored.st, true);
	same_cells(&retracted, &restored_retracted, "live and restored retract different cells");
	same_cells(&live_cells, &retracted, "the live state retracts other cells than it reported");
	free(live_cells.items);
	free(retracted.items);
	free(restored_retracted.items);
	state_free(live.st);
	state_free(restored.st);
	return 0;
}
