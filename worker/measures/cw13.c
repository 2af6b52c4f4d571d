/*
 * cw13.c: the CW13 family (encounters), reached through family_cw13:
 * submission frequency counts every submitted record in its submission
 * month; timeliness counts each original that is not voided, judged against
 * its chain's current service_to. The encounter alerts (LATE_SUBMISSION,
 * DUE_SOON, OVERDUE) are judged the same way, per chain, at the partition's
 * clock date, and worded here: their texts quote what only this judgement
 * knows (the chain's dates, the rule that was missed).
 *
 * Every encounter record (original, replacement, void) is a node of the
 * partition's chains (chain.h, README "Identity, corrections and voids"): the
 * latest version of its encounter_id. The chain's timeliness is derived from
 * its records each time, so a superseded record leaves no trace. So is its
 * alert (README "Alerts"): a function of the chain and the clock date; an owed
 * chain waits in the family's timer heap (heap.h) for the next day on which
 * that function changes. The heap is the family's only entity of its own.
 */
#include <stdio.h>
#include <string.h>

#include "chain.h"
#include "dates.h"
#include "heap.h"
#include "measures.h"

/* What a chain's alert is at one moment: enough to report it raised or resolved. */
struct judgement {
	enum qs_alert_kind kind;
	uint32_t plan, source; /* source: the interned stratum */
	uint32_t member;       /* the original's member number */
	int32_t service_to;
	int32_t submitted_day;
};

struct cw13_state {
	/* The owed chains by chain number, keyed by the next day their alert changes; least (day, root id) first. */
	struct heap timers;
	uint32_t strata[2]; /* interned "MEDICARE", "MEDICAID" by enum qs_source */
	bool have_strata;
	/* Read by chain_before for chain_after: the chains as they were. */
	struct qs_contrib before[QS_MAX_CONTRIBS];
	size_t n_before;
	uint32_t to_before;
	struct judgement was_from, was_to;
};

/* CW13_SUBMISSIONS of one record, counted in stratum; returns how many contributions (0 or 1). */
static size_t record_contribs(const struct chain_node *r, uint32_t stratum, struct qs_contrib *out)
{
	if (r->submitted_day == QS_NO_DATE)
		return 0;
	out[0] = (struct qs_contrib){QS_M_CW13_SUBMISSIONS, r->plan, stratum, r->submitted_day, 1, 0, QS_GRAINS_ALL};
	return 1;
}

/* The chain's original and content's service_to when it counts (not voided, original arrived); else false. */
static bool counted_original(const struct chains *cs, uint32_t c, const struct chain_node **original,
			     int32_t *service_to)
{
	uint32_t o, content;
	if (!chain_current(cs, c, &o, &content) || o == CHAIN_NIL)
		return false;
	*original = chains_node(cs, o);
	*service_to = chains_node(cs, content)->service_to;
	return true;
}

/* CW13_TIMELY of chain c under the rules, counted in strata[source]; returns how many contributions (0 or 1). */
static size_t chain_contribs(const struct chains *cs, uint32_t c, const struct qs_rules *rules,
			     const uint32_t strata[2], struct qs_contrib *out)
{
	const struct chain_node *original;
	int32_t service_to;
	if (!counted_original(cs, c, &original, &service_to) || original->submitted_day == QS_NO_DATE)
		return 0;
	int32_t on_time = original->submitted_day - service_to <= rules->cw13_timely_days;
	out[0] = (struct qs_contrib){
		QS_M_CW13_TIMELY, original->plan, strata[original->source], original->submitted_day, on_time, 1,
		QS_GRAINS_ALL};
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
	if (!counted_original(cs, c, &original, &service_to) || original->submitted_day != QS_NO_DATE)
		return QS_NO_DATE; /* only an owed original changes with time */
	int32_t due_soon = service_to + rules->alert_due_soon_days;
	int32_t overdue = service_to + rules->cw13_timely_days + 1;
	if (due_soon < overdue && (clock_day == QS_NO_DATE || clock_day < due_soon))
		return due_soon;
	return clock_day == QS_NO_DATE || clock_day < overdue ? overdue : QS_NO_DATE;
}

/* --- the timer heap ---------------------------------------------------- */

/* Ties break by root id so that the order of a tick's alerts does not depend on how the heap was built. */
static bool timer_before(const void *ctx, struct heap_entry a, struct heap_entry b)
{
	const struct chains *cs = ctx;
	return a.key != b.key ? a.key < b.key
			      : strcmp(chains_id(cs, chains_root(cs, a.id)), chains_id(cs, chains_root(cs, b.id))) < 0;
}

/* Puts chain c in the heap at day, moves it there, or (day QS_NO_DATE) takes it out. */
static void schedule(struct cw13_state *st, const struct chains *cs, uint32_t c, int32_t day)
{
	if (day == QS_NO_DATE)
		heap_remove(&st->timers, c, timer_before, cs);
	else
		heap_set(&st->timers, c, day, timer_before, cs);
}

/* --- alert transitions -------------------------------------------------- */

static struct judgement judge(const struct cw13_state *st, const struct chains *cs, uint32_t c, int32_t clock_day,
			      const struct qs_rules *rules)
{
	struct judgement j = {QS_ALERT_NONE, 0, 0, 0, QS_NO_DATE, QS_NO_DATE};
	const struct chain_node *original;
	if (c != CHAIN_NIL && counted_original(cs, c, &original, &j.service_to)) {
		j.kind = alert_of(original, j.service_to, clock_day, rules);
		j.plan = original->plan;
		j.source = st->strata[original->source];
		j.member = original->member;
		j.submitted_day = original->submitted_day;
	}
	return j;
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
		else if (!counted_original(cs, c, &original, &service_to))
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
	size_t n = r ? record_contribs(r, st->strata[r->source], out) : 0;
	if (a != CHAIN_NIL)
		n += chain_contribs(cs, a, rules, st->strata, out + n);
	if (b != CHAIN_NIL && b != a)
		n += chain_contribs(cs, b, rules, st->strata, out + n);
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
	int32_t judged_day = alerts_clock_day(ctx->judged_ms);
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
	struct qs_contrib after[QS_MAX_CONTRIBS];
	int32_t day = alerts_clock_day(ctx->clock_ms);
	measures_emit_diff(ctx, st->before, st->n_before, after,
			   contribs(st, cs, chains_node(cs, ch->record), ch->from, ch->to, ctx->rules, after));
	/* What the chain the record is in now was judged at before: was_from, was_to or (new to it) nothing. */
	static const struct judgement none = {QS_ALERT_NONE, 0, 0, 0, QS_NO_DATE, QS_NO_DATE};
	const struct judgement *was = ch->to == ch->from        ? &st->was_from
				      : ch->to == st->to_before ? &st->was_to
								: &none;
	settle(st, ctx, ch->to, was, day);
	if (ch->from != CHAIN_NIL && ch->from != ch->to)
		settle(st, ctx, ch->from, &st->was_from, day);
}

static void tick(void *state, struct family_ctx *ctx)
{
	struct cw13_state *st = state;
	int32_t old_day = alerts_clock_day(ctx->judged_ms), day = alerts_clock_day(ctx->clock_ms);
	for (const struct heap_entry *t; (t = heap_min(&st->timers)) && t->key <= day;) {
		uint32_t c = t->id;
		struct judgement was = judge(st, ctx->chains, c, old_day, ctx->rules);
		settle(st, ctx, c, &was, day); /* reschedules c after day, or takes it out */
	}
}

static void state_init(void *state)
{
	heap_init(&((struct cw13_state *)state)->timers);
}

static void state_release(void *state)
{
	heap_free(&((struct cw13_state *)state)->timers);
}

const struct family family_cw13 = {
	.name = "cw13",
	.topics = QS_TOPIC_BIT(QS_TOPIC_ENCOUNTERS),
	.state_size = sizeof(struct cw13_state),
	.state_init = state_init,
	.state_release = state_release,
	.chain_before = chain_before,
	.chain_after = chain_after,
	.tick = tick,
};
