/*
 * ntsv.c: the NTSV cesarean family (deliveries). One entity per delivery_id
 * holds the latest version of the delivery; its contributions are the NTSV
 * denominator/numerator (nulliparous, term, singleton, vertex, live birth;
 * cesarean) and the NTSV_MISSING data-quality pair, each for the whole plan
 * and for the hospital. A VOID delivery contributes nothing.
 */
#include "ntsv.h"

#include <string.h>

struct ntsv_state {
	struct slab deliveries; /* struct ntsv_delivery by delivery record number */
};

/* A criterion either is missing, or passes or fails. */
static void criterion(bool present, bool ok, bool *pass, bool *missing)
{
	if (!present)
		*missing = true;
	else if (!ok)
		*pass = false;
}

size_t ntsv_contribs(const struct ntsv_delivery *d, struct qs_contrib *out)
{
	if (!d->active)
		return 0;
	bool pass = d->live_birth, missing = false;
	criterion(d->parity != QS_NO_INT, d->parity == 0, &pass, &missing);
	criterion(d->gestational_age_weeks != QS_NO_INT, d->gestational_age_weeks >= 37, &pass, &missing);
	criterion(d->plurality != QS_NO_INT, d->plurality == 1, &pass, &missing);
	criterion(d->presentation != QS_PRES_NONE, d->presentation == QS_PRES_VERTEX, &pass, &missing);

	bool ntsv = pass && !missing;
	int32_t csection = ntsv && d->method == QS_METHOD_CESAREAN;
	size_t n = 0;
	const uint32_t strata[2] = {d->stratum_plan, d->stratum_hospital};
	for (int s = 0; s < 2; s++) {
		out[n++] = (struct qs_contrib){QS_M_NTSV_MISSING, d->plan, strata[s],    d->delivery_date,
					       pass && missing,   1,       QS_GRAINS_ALL};
		if (ntsv)
			out[n++] = (struct qs_contrib){QS_M_NTSV_CSECTION, d->plan, strata[s],    d->delivery_date,
						       csection,           1,       QS_GRAINS_ALL};
	}
	return n;
}

void ntsv_fold(struct ntsv_delivery *d, struct intern *in, const struct qs_delivery *ev)
{
	char stratum[sizeof("hospital:") + QS_ID_MAX];
	strcpy(stratum, "hospital:");
	strcat(stratum, ev->hospital_id);
	d->active = ev->status == QS_STATUS_ACTIVE;
	/* A correction mostly keeps its plan and hospital: the numbers held are tried first. */
	d->plan = intern_id_hint(in, ev->plan_id, d->plan);
	d->stratum_plan = intern_id_hint(in, "", d->stratum_plan);
	d->stratum_hospital = intern_id_hint(in, stratum, d->stratum_hospital);
	d->delivery_date = ev->delivery_date;
	d->parity = ev->parity;
	d->gestational_age_weeks = ev->gestational_age_weeks;
	d->plurality = ev->plurality;
	d->presentation = (int8_t)ev->presentation;
	d->method = (uint8_t)ev->method;
	d->live_birth = ev->live_birth;
}

static void apply(void *state, struct family_ctx *ctx, const struct qs_event *ev, int64_t offset)
{
	(void)offset;
	struct ntsv_state *st = state;
	slab_reserve(&st->deliveries, ctx->record + 1); /* a new delivery is zeroed: inactive, counts nowhere */
	struct ntsv_delivery *d = slab_at(&st->deliveries, ctx->record);
	struct qs_contrib before[QS_MAX_CONTRIBS], after[QS_MAX_CONTRIBS];
	size_t n_before = ntsv_contribs(d, before);
	ntsv_fold(d, ctx->intern, &ev->u.delivery);
	measures_emit_diff(ctx, before, n_before, after, ntsv_contribs(d, after));
}

static void state_init(void *state)
{
	((struct ntsv_state *)state)->deliveries = SLAB_OF(struct ntsv_delivery);
}

static void state_release(void *state)
{
	slab_free(&((struct ntsv_state *)state)->deliveries);
}

const struct family family_ntsv = {
	.name = "ntsv",
	.topics = QS_TOPIC_BIT(QS_TOPIC_DELIVERIES),
	.state_size = sizeof(struct ntsv_state),
	.state_init = state_init,
	.state_release = state_release,
	.apply = apply,
};
