/*
 * cw13.c: the CW13 family (encounters): submission frequency counts every
 * submitted record in its submission month; timeliness counts each original
 * that is not voided, judged against its chain's current service_to. The
 * encounter alerts (LATE_SUBMISSION, DUE_SOON, OVERDUE) are judged the same
 * way, per chain, at the partition's clock date.
 */
#include "cw13.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dates.h"
#include "hashmap.h"
#include "xalloc.h"

struct cw13_state {
	struct chains chains; /* of struct cw13_record, struct cw13_chain */
	/* Timer heap: the owed chains, least (timer_day, root) first. */
	struct cw13_chain **heap;
	size_t heap_len, heap_cap;
};

size_t cw13_record_contribs(const struct cw13_record *r, struct qs_contrib *out)
{
	if (r->submitted_day == QS_NO_DATE)
		return 0;
	out[0] = (struct qs_contrib){QS_M_CW13_SUBMISSIONS, r->plan, r->source, r->submitted_day, 1, 0,
				     QS_GRAINS_ALL};
	return 1;
}

/* The chain's original and content when it counts (not voided, original arrived); else false. */
static bool judged(const struct chain *c, const struct cw13_record **original, int32_t *service_to)
{
	const struct chain_record *o, *content;
	if (!chain_current(c, &o, &content) || !o)
		return false;
	*original = (const struct cw13_record *)o;
	*service_to = ((const struct cw13_record *)content)->service_to;
	return true;
}

size_t cw13_chain_contribs(const struct chain *c, const struct qs_rules *rules, struct qs_contrib *out)
{
	const struct cw13_record *original;
	int32_t service_to;
	if (!judged(c, &original, &service_to) || original->submitted_day == QS_NO_DATE)
		return 0;
	int32_t on_time = original->submitted_day - service_to <= rules->cw13_timely_days;
	out[0] = (struct qs_contrib){QS_M_CW13_TIMELY, original->plan, original->source,
				     original->submitted_day, on_time, 1, QS_GRAINS_ALL};
	return 1;
}

/*
 * The alert of a counted chain with this original and service_to on
 * clock_day (QS_NO_DATE before the partition has a clock: no owed chain is
 * late then).
 */
static enum qs_alert_kind alert_of(const struct cw13_record *original, int32_t service_to, int32_t clock_day,
				   const struct qs_rules *rules)
{
	if (original->submitted_day != QS_NO_DATE)
		return original->submitted_day - service_to > rules->cw13_timely_days ? QS_ALERT_LATE_SUBMISSION
										    : QS_ALERT_NONE;
	if (clock_day == QS_NO_DATE)
		return QS_ALERT_NONE;
	int32_t age = clock_day - service_to;
	if (age > rules->cw13_timely_days)
		return QS_ALERT_OVERDUE;
	return age >= rules->alert_due_soon_days ? QS_ALERT_DUE_SOON : QS_ALERT_NONE;
}

/* The first day after clock_day on which a chain's alert changes with time alone, or QS_NO_DATE. */
static int32_t next_change(const struct chain *c, int32_t clock_day, const struct qs_rules *rules)
{
	const struct cw13_record *original;
	int32_t service_to;
	if (!judged(c, &original, &service_to) || original->submitted_day != QS_NO_DATE)
		return QS_NO_DATE; /* only an owed original changes with time */
	int32_t due_soon = service_to + rules->alert_due_soon_days;
	int32_t overdue = service_to + rules->cw13_timely_days + 1;
	if (due_soon < overdue && (clock_day == QS_NO_DATE || clock_day < due_soon))
		return due_soon;
	return clock_day == QS_NO_DATE || clock_day < overdue ? overdue : QS_NO_DATE;
}

/* --- the timer heap ---------------------------------------------------- */

/* Ties break by root so that the order of a tick's alerts does not depend on how the heap was built. */
static bool before(const struct cw13_chain *a, const struct cw13_chain *b)
{
	return a->timer_day != b->timer_day ? a->timer_day < b->timer_day : strcmp(a->base.root, b->base.root) < 0;
}

static void heap_place(struct cw13_state *st, size_t i, struct cw13_chain *c)
{
	st->heap[i] = c;
	c->heap_pos = (uint32_t)i + 1;
}

static void sift(struct cw13_state *st, size_t i)
{
	struct cw13_chain *c = st->heap[i];
	while (i > 0 && before(c, st->heap[(i - 1) / 2])) {
		heap_place(st, i, st->heap[(i - 1) / 2]);
		i = (i - 1) / 2;
	}
	for (;;) {
		size_t l = 2 * i + 1, m = i;
		struct cw13_chain *least = c;
		if (l < st->heap_len && before(st->heap[l], least))
			least = st->heap[m = l];
		if (l + 1 < st->heap_len && before(st->heap[l + 1], least))
			least = st->heap[m = l + 1];
		if (m == i)
			break;
		heap_place(st, i, least);
		i = m;
	}
	heap_place(st, i, c);
}

/* Puts c in the heap at day, moves it there, or (day QS_NO_DATE) takes it out. */
static void schedule(struct cw13_state *st, struct cw13_chain *c, int32_t day)
{
	if (day == QS_NO_DATE) {
		if (!c->heap_pos)
			return;
		size_t i = c->heap_pos - 1;
		struct cw13_chain *last = st->heap[--st->heap_len];
		c->heap_pos = 0;
		if (i < st->heap_len) {
			heap_place(st, i, last);
			sift(st, i);
		}
		return;
	}
	c->timer_day = day;
	if (!c->heap_pos) {
		if (st->heap_len == st->heap_cap) {
			st->heap_cap = st->heap_cap ? st->heap_cap * 2 : 256;
			st->heap = xrealloc(st->heap, st->heap_cap * sizeof(*st->heap), "the alert timers");
		}
		heap_place(st, st->heap_len++, c);
	}
	sift(st, c->heap_pos - 1);
}

/* --- alert transitions -------------------------------------------------- */

/* What a chain's alert is at one moment: enough to report it raised or resolved. */
struct judgement {
	enum qs_alert_kind kind;
	uint32_t plan, source;
	int32_t service_to;
	int32_t submitted_day;
};

static struct judgement judge(const struct chain *c, int32_t clock_day, const struct qs_rules *rules)
{
	struct judgement j = {QS_ALERT_NONE, 0, 0, QS_NO_DATE, QS_NO_DATE};
	const struct cw13_record *original;
	if (judged(c, &original, &j.service_to)) {
		j.kind = alert_of(original, j.service_to, clock_day, rules);
		j.plan = original->plan;
		j.source = original->source;
		j.submitted_day = original->submitted_day;
	}
	return j;
}

static int32_t clock_day(int64_t clock_ms)
{
	return clock_ms == QS_NO_TS ? QS_NO_DATE : dates_day_of_ms(clock_ms);
}

/* Words an operator can act on, for the alert `j` raised, or resolved because the chain now is `now`. */
static void describe(char *buf, size_t size, const struct chain *c, const struct judgement *j, bool raised,
		     const struct judgement *now, int32_t day, const struct qs_rules *rules)
{
	char end[11], due[11], sub[11];
	dates_format(j->service_to, end);
	dates_format(j->service_to + rules->cw13_timely_days, due);
	if (!raised) {
		const struct cw13_record *original;
		int32_t service_to;
		if (now->kind == QS_ALERT_OVERDUE)
			snprintf(buf, size, "Escalated to OVERDUE: not submitted %d days after the service end %s.",
				 day - j->service_to, end);
		else if (!judged(c, &original, &service_to))
			snprintf(buf, size, "Resolved: the encounter was voided.");
		else if (j->kind != QS_ALERT_LATE_SUBMISSION && original->submitted_day != QS_NO_DATE)
			snprintf(buf, size, "Resolved: submitted on %s, %d days after the service end %s.",
				 dates_format(original->submitted_day, sub), original->submitted_day - service_to,
				 dates_format(service_to, end));
		else
			snprintf(buf, size, "Resolved: a correction changed the encounter's plan, source or dates.");
		return;
	}
	switch (j->kind) {
	case QS_ALERT_LATE_SUBMISSION:
		snprintf(buf, size,
			 "Encounter %s was submitted on %s, %d days after its service end %s: more than %d days,"
			 " so it counts against CW13 timeliness.",
			 c->root, dates_format(j->submitted_day, sub), j->submitted_day - j->service_to, end,
			 rules->cw13_timely_days);
		break;
	case QS_ALERT_DUE_SOON:
		snprintf(buf, size,
			 "Encounter %s is %d days past its service end %s and not submitted; submit it by %s to"
			 " count as timely.",
			 c->root, day - j->service_to, end, due);
		break;
	default:
		snprintf(buf, size,
			 "Encounter %s is %d days past its service end %s and still not submitted: it can no"
			 " longer count as timely (due %s); submit it to keep CW13 frequency and data complete.",
			 c->root, day - j->service_to, end, due);
		break;
	}
}

static void report(struct family_ctx *ctx, const struct cw13_chain *c, const struct judgement *j, bool raised,
		   const struct judgement *now, int32_t day)
{
	char details[512];
	describe(details, sizeof(details), &c->base, j, raised, now, day, ctx->rules);
	struct qs_alert a = {
		.kind = j->kind,
		.raised = raised,
		.plan = j->plan,
		.source = j->source,
		.member_id = c->member_id,
		.encounter_id = c->base.root,
		.due_date = j->service_to + ctx->rules->cw13_timely_days,
		.detected_at = ctx->clock_ms,
		.details = details,
	};
	ctx->alerts.add(ctx->alerts.ctx, &a);
}

/*
 * Reports how the chain's alert went from `was` to what it is now on `day`,
 * and reschedules its timer. The same condition (kind, plan, source) is no
 * transition, even if its dates moved: it is raised once.
 */
static void settle(struct cw13_state *st, struct family_ctx *ctx, struct cw13_chain *c, const struct judgement *was,
		   int32_t day)
{
	struct judgement now = judge(&c->base, day, ctx->rules);
	bool same = was->kind == now.kind &&
		    (now.kind == QS_ALERT_NONE || (was->plan == now.plan && was->source == now.source));
	if (!same) {
		if (was->kind != QS_ALERT_NONE)
			report(ctx, c, was, false, &now, day);
		if (now.kind != QS_ALERT_NONE)
			report(ctx, c, &now, true, &now, day);
	}
	schedule(st, c, next_change(&c->base, day, ctx->rules));
}

/* --- the family ---------------------------------------------------------- */

/* Contributions of a record and of the (one or two) chains it touches. */
static size_t contribs(const struct cw13_record *r, const struct chain *a, const struct chain *b,
		       const struct qs_rules *rules, struct qs_contrib *out)
{
	size_t n = r ? cw13_record_contribs(r, out) : 0;
	if (a)
		n += cw13_chain_contribs(a, rules, out + n);
	if (b && b != a)
		n += cw13_chain_contribs(b, rules, out + n);
	return n;
}

/* What chain c was judged at before the change: was_from, was_to or (a chain new to it) nothing. */
static const struct judgement *was_of(const struct chain *c, const struct chain_change *ch, struct chain *to_before,
				      const struct judgement *was_from, const struct judgement *was_to)
{
	static const struct judgement none = {QS_ALERT_NONE, 0, 0, QS_NO_DATE, QS_NO_DATE};
	if (c == ch->from)
		return was_from;
	return c == to_before ? was_to : &none;
}

static void apply(void *state, struct family_ctx *ctx, const struct qs_event *ev, int64_t offset)
{
	struct cw13_state *st = state;
	const struct qs_encounter *e = &ev->u.encounter;
	struct qs_contrib before[QS_MAX_CONTRIBS], after[QS_MAX_CONTRIBS];
	int32_t judged_day = clock_day(ctx->judged_ms), day = clock_day(ctx->clock_ms);

	/* The (at most two) chains the version changes, read before and after (chain.h). */
	struct chain_change ch;
	chains_begin(&st->chains, ctx->arena, e, &ch);
	struct chain *to_before = ch.to;
	const struct cw13_record *old = ch.record->present ? (const struct cw13_record *)ch.record : NULL;
	size_t n_before = contribs(old, ch.from, to_before, ctx->rules, before);
	struct judgement was_from = ch.from ? judge(ch.from, judged_day, ctx->rules) : (struct judgement){0};
	struct judgement was_to = to_before ? judge(to_before, judged_day, ctx->rules) : (struct judgement){0};

	struct cw13_record *r =
		(struct cw13_record *)chains_commit(&st->chains, ctx->arena, &ch, e, offset);
	r->plan = intern_id(ctx->intern, e->plan_id);
	r->source = intern_id(ctx->intern, e->source == QS_SOURCE_MEDICARE ? "MEDICARE" : "MEDICAID");
	r->service_from = e->service_from;
	r->service_to = e->service_to;
	r->submitted_day = e->submitted_at == QS_NO_TS ? QS_NO_DATE : dates_day_of_ms(e->submitted_at);
	r->ed_visit = e->ed_visit;
	/* Alerts name the original's member; an ORIGINAL is always its own chain's root. */
	struct cw13_chain *chain = (struct cw13_chain *)ch.to;
	if (e->frequency == QS_FREQ_ORIGINAL && (!chain->member_id || strcmp(chain->member_id, e->member_id) != 0))
		chain->member_id = arena_strdup(ctx->arena, e->member_id);

	measures_emit_diff(ctx, before, n_before, after, contribs(r, ch.from, ch.to, ctx->rules, after));
	settle(st, ctx, chain, was_of(ch.to, &ch, to_before, &was_from, &was_to), day);
	if (ch.from && ch.from != ch.to)
		settle(st, ctx, (struct cw13_chain *)ch.from, &was_from, day);
	chains_end(&st->chains, &ch);
}

static void tick(void *state, struct family_ctx *ctx)
{
	struct cw13_state *st = state;
	int32_t old_day = clock_day(ctx->judged_ms), day = clock_day(ctx->clock_ms);
	while (st->heap_len && st->heap[0]->timer_day <= day) {
		struct cw13_chain *c = st->heap[0];
		struct judgement was = judge(&c->base, old_day, ctx->rules);
		settle(st, ctx, c, &was, day); /* reschedules c after day, or takes it out */
	}
}

static void *state_new(void)
{
	struct cw13_state *st = calloc(1, sizeof(*st));
	if (st) {
		st->chains.record_size = sizeof(struct cw13_record);
		st->chains.chain_size = sizeof(struct cw13_chain);
	}
	return st;
}

static void state_free(void *state)
{
	struct cw13_state *st = state;
	if (st) {
		chains_free(&st->chains);
		free(st->heap);
	}
	free(st);
}

static size_t count(const void *state)
{
	return ((const struct cw13_state *)state)->chains.records;
}

const struct family family_cw13 = {
	.name = "cw13",
	.topics = QS_TOPIC_BIT(QS_TOPIC_ENCOUNTERS),
	.state_new = state_new,
	.state_free = state_free,
	.apply = apply,
	.tick = tick,
	.count = count,
};
