/* measures.c: the table of measure families and what they share: names, states, contribution diffs. */
#include "measures.h"

#include <stdlib.h>

#include "compiler.h"
#include "xalloc.h"

extern const struct family family_ntsv;
extern const struct family family_cw13;
extern const struct family family_caw6;
extern const struct family family_caw7;
extern const struct family family_caw8;
extern const struct family family_caw9;

const struct family *const measures_families[] = {&family_ntsv, &family_cw13, &family_caw6,
						  &family_caw7, &family_caw8, &family_caw9};
const size_t measures_family_count = ARRAY_LEN(measures_families);

const char *measures_name(enum qs_measure m)
{
	static const char *const names[QS_M_COUNT] = {
#define QS_MEASURE_NAME(name) #name,
		QS_MEASURES(QS_MEASURE_NAME)
#undef QS_MEASURE_NAME
	};
	return m < QS_M_COUNT ? names[m] : "?";
}

void *measures_state_new(const struct family *f)
{
	void *state = xcalloc(1, f->state_size, f->name);
	if (f->state_init)
		f->state_init(state);
	return state;
}

void measures_state_free(const struct family *f, void *state)
{
	if (state && f->state_release)
		f->state_release(state);
	free(state);
}

static bool same_contrib(const struct qs_contrib *a, const struct qs_contrib *b)
{
	return a->measure == b->measure && a->plan == b->plan && a->stratum == b->stratum && a->date == b->date &&
	       a->numerator == b->numerator && a->denominator == b->denominator && a->grains == b->grains;
}

/*
 * A family writes an entity's contributions in a fixed order, so what a
 * change leaves as it was sits at the same position before and after; it
 * would add to its cells exactly what it retracts, and is not sent.
 */
void measures_emit_diff(struct family_ctx *ctx, const struct qs_contrib *before, size_t n_before,
			const struct qs_contrib *after, size_t n_after)
{
	for (size_t i = 0; i < n_before; i++) {
		if (i < n_after && same_contrib(&before[i], &after[i]))
			continue;
		struct qs_contrib c = before[i];
		c.numerator = -c.numerator;
		c.denominator = -c.denominator;
		ctx->sink.add(ctx->sink.ctx, &c);
	}
	for (size_t i = 0; i < n_after; i++)
		if (i >= n_before || !same_contrib(&before[i], &after[i]))
			ctx->sink.add(ctx->sink.ctx, &after[i]);
}

_Static_assert(ARRAY_LEN(measures_families) <= QS_MAX_FAMILIES, "raise QS_MAX_FAMILIES");
