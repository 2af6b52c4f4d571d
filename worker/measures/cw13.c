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
#include "xalloc.h"

/* What a chain's alert is at one moment: enough to report it raised or resolved. */
struct judgement {
	enum qs_alert_kind kind;
	uint32_t plan, source; /* source: the interned stratum */
	uint32_t member;       /* the original's member number */
	int32_t service_to;
	int32_t submitted_day;
};

struct timer {
	int32_t day;    /* the next day its chain's alert changes */
	uint32_t chain;
};

struct cw13_state {
	/* Timer heap: the owed chains, least (day, root id) first. */
	struct timer *heap;
	size_t heap_len, heap_cap;
	struct slab heap_pos; /* uint32_t by chain number: position in the heap + 1; 0 when not scheduled */
	uint32_t strata[2];   /* interned "MEDICARE", "MEDICAID" by enum qs_source */
	bool have_strata;
	/* Read by chain_before for chain_after: the chains as they were. */
	struct qs_contrib before[QS_MAX_CONTRIBS];
	size_t n_before;
	uint32_t to_before;
	struct judgement was_from, was_to;
};

size_t cw13_record_contribs(const struct chain_node *r, uint32_t stratum, struct qs_contrib *out)
{
	if (r->submitted_day == QS_NO_DATE)
		return 0;
	out[0] = (struct qs_contrib){QS_M_CW13_SUBMISSIONS, r->plan, stratum, r->submitted_day, 1, 0, QS_GRAINS_ALL};
	return 1;
}

/* The chain's original and content's service_to when it counts (not voided, original arrived); else false. */
static bool judged(const struct chains *cs, uint32_t c, const struct chain_node **original, int32_t *service_to)
{
	uint32_t o, content;
	if (!chain_current(cs, c, &o, &content) || o == CHAIN_NIL)
		return false;
	*original = chains_node(cs, o);
	*service_to = chains_node(cs, content)->service_to;
	return true;
}

size_t cw13_chain_contribs(const struct chains *cs, uint32_t c, const struct qs_rules *rules,
			   const uint32_t strata[2], struct qs_contrib *out)
{
	const struct chain_node *original;
	int32_t service_to;
	if (!judged(cs, c, &original, &service_to) || original->submitted_day == QS_NO_DATE)
		return 0;
	int32_t on_time = original->submitted_day - service_to <= rules->cw13_timely_days;
	out[0] = (struct qs_contrib){QS_M_CW13_TIMELY, original->plan, strata[original->source],
				     original->submitted_day, on_time, 1, QS_GRAINS_ALL};
	return 1;
}

/*
 * The alert of a counted chain with this original and service_to on
 * clock_day (QS_NO_DATE before the partition has a clock: no owed chain is
 * late then).
 */
static enum qs_alert_kind alert_of(const struct chain_node *original, int32_t service_to, int32_t clock_day,
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
static int32_t next_change(const struct chains *cs, uint32_t c, int32_t clock_day, const struct qs_rules *rules)
{
	const struct chain_node *original;
	int32_t service_to;
	if (!judged(cs, c, &original, &service_to) || original->submitted_day != QS_NO_DATE)
		return QS_NO_DATE; /* only an owed original changes with time */
	int32_t due_soon = service_to + rules->alert_due_soon_days;
	int32_t overdue = service_to + rules->cw13_timely_days + 1;
	if (due_soon < overdue && (clock_day == QS_NO_DATE || clock_day < due_soon))
		return due_soon;
	return clock_day == QS_NO_DATE || clock_day < overdue ? overdue : QS_NO_DATE;
}

/* --- the timer heap ---------------------------------------------------- */

/* Ties break by root id so that the order of a tick's alerts does not depend on how the heap was built. */
static bool before(const struct chains *cs, struct timer a, struct timer b)
{
	return a.day != b.day ? a.day < b.day
			      : strcmp(chains_id(cs, chains_root(cs, a.chain)), chains_id(cs, chains_root(cs, b.chain))) < 0;
}

static uint32_t *heap_pos(const struct cw13_state *st, uint32_t chain)
{
	return slab_at(&st->heap_pos, chain);
}

static void heap_place(struct cw13_state *st, size_t i, struct timer t)
{
	st->heap[i] = t;
	*heap_pos(st, t.chain) = (uint32_t)i + 1;
}

static void sift(struct cw13_state *st, const struct chains *cs, size_t i)
{
	struct timer t = st->heap[i];
	while (i > 0 && before(cs, t, st->heap[(i - 1) / 2])) {
		heap_place(st, i, st->heap[(i - 1) / 2]);
		i = (i - 1) / 2;
	}
	for (;;) {
		size_t l = 2 * i + 1, m = i;
		struct timer least = t;
		if (l < st->heap_len && before(cs, st->heap[l], least))
			least = st->heap[m = l];
		if (l + 1 < st->heap_len && before(cs, st->heap[l + 1], least))
			least = st->heap[m = l + 1];
		if (m == i)
			break;
		heap_place(st, i, least);
		i = m;
	}
	heap_place(st, i, t);
}

/* Puts chain c in the heap at day, moves it there, or (day QS_NO_DATE) takes it out. */
static void schedule(struct cw13_state *st, const struct chains *cs, uint32_t c, int32_t day)
{
	uint32_t *pos = heap_pos(st, c);
	if (day == QS_NO_DATE) {
		if (!*pos)
			return;
		size_t i = *pos - 1;
		struct timer last = st->heap[--st->heap_len];
		*pos = 0;
		if (i < st->heap_len) {
			heap_place(st, i, last);
			sift(st, cs, i);
		}
		return;
	}
	if (!*pos) {
		if (st->heap_len == st->heap_cap) {
			st->heap_cap = st->heap_cap ? st->heap_cap * 2 : 256;
			st->heap = xrealloc(st->heap, st->heap_cap * sizeof(*st->heap), "the alert timers");
		}
		heap_place(st, st->heap_len++, (struct timer){day, c});
	} else {
		st->heap[*pos - 1].day = day;
	}
	sift(st, cs, *pos - 1);
}

/* --- alert transitions -------------------------------------------------- */

static struct judgement judge(const struct cw13_state *st, const struct chains *cs, uint32_t c, int32_t clock_day,
			      const struct qs_rules *rules)
{
	struct judgement j = {QS_ALERT_NONE, 0, 0, 0, QS_NO_DATE, QS_NO_DATE};
	const struct chain_node *original;
	if (c != CHAIN_NIL && judged(cs, c, &original, &j.service_to)) {
		j.kind = alert_of(original, j.service_to, clock_day, rules);
		j.plan = original->plan;
		j.source = st->strata[original->source];
		j.member = original->member;
		j.submitted_day = original->submitted_day;
	}
	return j;
}

static int32_t clock_day(int64_t clock_ms)
{
	return clock_ms == QS_NO_TS ? QS_NO_DATE : dates_day_of_ms(clock_ms);
}

/* Words an operator can act on, for the alert `j` raised, or resolved because the chain now is `now`. */
static void describe(char *buf, size_t size, const struct chains *cs, uint32_t c, const struct judgement *j,
		     bool raised, const struct judgement *now, int32_t day, const struct qs_rules *rules)
{
	char end[11], due[11], sub[11];
	const char *root = chains_id(cs, chains_root(cs, c));
	dates_format(j->service_to, end);
	dates_format(j->service_to + rules->cw13_timely_days, due);
	if (!raised) {
		const struct chain_node *original;
		int32_t service_to;
		if (now->kind == QS_ALERT_OVERDUE)
			snprintf(buf, size, "Escalated to OVERDUE: not submitted %d days after the service end %s.",
				 day - j->service_to, end);
		else if (!judged(cs, c, &original, &service_to))
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
			 root, dates_format(j->submitted_day, sub), j->submitted_day - j->service_to, end,
			 rules->cw13_timely_days);
		break;
	case QS_ALERT_DUE_SOON:
		snprintf(buf, size,
			 "Encounter %s is %d days past its service end %s and not submitted; submit it by %s to"
			 " count as timely.",
			 root, day - j->service_to, end, due);
		break;
	default:
		snprintf(buf, size,
			 "Encounter %s is %d days past its service end %s and still not submitted: it can no"
			 " longer count as timely (due %s); submit it to keep CW13 frequency and data complete.",
			 root, day - j->service_to, end, due);
		break;
	}
}

static void report(struct family_ctx *ctx, uint32_t c, const struct judgement *j, bool raised,
		   const struct judgement *now, int32_t day)
{
	char details[512];
	describe(details, sizeof(details), ctx->chains, c, j, raised, now, day, ctx->rules);
	struct qs_alert a = {
		.kind = j->kind,
		.raised = raised,
		.plan = j->plan,
		.source = j->source,
		.member_id = idmap_str(ctx->names, j->member),
		.encounter_id = chains_id(ctx->chains, chains_root(ctx->chains, c)),
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
static void settle(struct cw13_state *st, struct family_ctx *ctx, uint32_t c, const struct judgement *was, int32_t day)
{
	struct judgement now = judge(st, ctx->chains, c, day, ctx->rules);
	bool same = was->kind == now.kind &&
		    (now.kind == QS_ALERT_NONE || (was->plan == now.plan && was->source == now.source));
	if (!same) {
		if (was->kind != QS_ALERT_NONE)
			report(ctx, c, was, false, &now, day);
		if (now.kind != QS_ALERT_NONE)
			report(ctx, c, &now, true, &now, day);
	}
	schedule(st, ctx->chains, c, next_change(ctx->chains, c, day, ctx->rules));
}

/* --- the family ---------------------------------------------------------- */

/* Contributions of a record and of the (one or two) chains it touches. */
static size_t contribs(const struct cw13_state *st, const struct chains *cs, const struct chain_node *r, uint32_t a,
		       uint32_t b, const struct qs_rules *rules, struct qs_contrib *out)
{
	size_t n = r ? cw13_record_contribs(r, st->strata[r->source], out) : 0;
	if (a != CHAIN_NIL)
		n += cw13_chain_contribs(cs, a, rules, st->strata, out + n);
	if (b != CHAIN_NIL && b != a)
		n += cw13_chain_contribs(cs, b, rules, st->strata, out + n);
	return n;
}

static void chain_before(void *state, struct family_ctx *ctx, const struct chain_change *ch)
{
	struct cw13_state *st = state;
	const struct chains *cs = ctx->chains;
	if (!st->have_strata) {
		st->strata[QS_SOURCE_MEDICARE] = intern_id(ctx->intern, "MEDICARE");
		st->strata[QS_SOURCE_MEDICAID] = intern_id(ctx->intern, "MEDICAID");
		st->have_strata = true;
	}
	int32_t judged_day = clock_day(ctx->judged_ms);
	const struct chain_node *old = chains_node(cs, ch->record);
	st->to_before = ch->to;
	st->n_before = contribs(st, cs, old->present ? old : NULL, ch->from, ch->to, ctx->rules, st->before);
	st->was_from = judge(st, cs, ch->from, judged_day, ctx->rules);
	st->was_to = judge(st, cs, ch->to, judged_day, ctx->rules);
}

static void chain_after(void *state, struct family_ctx *ctx, const struct chain_change *ch)
{
	struct cw13_state *st = state;
	const struct chains *cs = ctx->chains;
	slab_reserve(&st->heap_pos, chains_count(cs));
	struct qs_contrib after[QS_MAX_CONTRIBS];
	int32_t day = clock_day(ctx->clock_ms);
	measures_emit_diff(ctx, st->before, st->n_before, after,
			   contribs(st, cs, chains_node(cs, ch->record), ch->from, ch->to, ctx->rules, after));
	/* What the chain the record is in now was judged at before: was_from, was_to or (new to it) nothing. */
	static const struct judgement none = {QS_ALERT_NONE, 0, 0, 0, QS_NO_DATE, QS_NO_DATE};
	const struct judgement *was = ch->to == ch->from ? &st->was_from : ch->to == st->to_before ? &st->was_to : &none;
	settle(st, ctx, ch->to, was, day);
	if (ch->from != CHAIN_NIL && ch->from != ch->to)
		settle(st, ctx, ch->from, &st->was_from, day);
}

static void tick(void *state, struct family_ctx *ctx)
{
	struct cw13_state *st = state;
	int32_t old_day = clock_day(ctx->judged_ms), day = clock_day(ctx->clock_ms);
	while (st->heap_len && st->heap[0].day <= day) {
		uint32_t c = st->heap[0].chain;
		struct judgement was = judge(st, ctx->chains, c, old_day, ctx->rules);
		settle(st, ctx, c, &was, day); /* reschedules c after day, or takes it out */
	}
}

static void *state_new(void)
{
	struct cw13_state *st = xcalloc(1, sizeof(*st), "the CW13 state");
	st->heap_pos = SLAB_OF(uint32_t);
	return st;
}

static void state_free(void *state)
{
	struct cw13_state *st = state;
	if (st) {
		slab_free(&st->heap_pos);
		free(st->heap);
	}
	free(st);
}

const struct family family_cw13 = {
	.name = "cw13",
	.topics = QS_TOPIC_BIT(QS_TOPIC_ENCOUNTERS),
	.state_new = state_new,
	.state_free = state_free,
	.chain_before = chain_before,
	.chain_after = chain_after,
	.tick = tick,
};
