/*
 * test_decode.c: the registry and the decoder against fixtures written by
 * python3-avro (tests/tools/make_avro_fixtures.py -> tests/data/avro/):
 * every "ok" row of cases.json decodes to its expected values, every
 * "reject" row is rejected with its reason; every truncation and 20000
 * seeded random mutations of the valid messages are rejected or decoded,
 * never crash. The registry is tested in directory mode, against a tiny
 * HTTP server forked here, and against an unreachable URL.
 */
#include <arpa/inet.h>
#include <check.h>
#include <jansson.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "dates.h"
#include "decode.h"
#include "embedded.h"
#include "event.h"
#include "registry.h"
#include "suites.h"
#include "xalloc.h"

#define AVRO_DIR QS_TEST_DATA "/avro"
#define REGISTRY_DIR AVRO_DIR "/registry"

static json_t *cases;    /* cases.json's "cases" array, loaded by decode_suite */
static json_t *ok_rows;  /* its rows expected to decode */
static json_t *bad_rows; /* its rows expected to be rejected */

static struct registry *reg;
static struct decoder *dec;

static void setup(void)
{
	char err[256] = "";
	reg = registry_new(NULL, REGISTRY_DIR, err, sizeof(err));
	ck_assert_msg(reg != NULL, "registry_new: %s", err);
	dec = decode_new(reg, err, sizeof(err));
	ck_assert_msg(dec != NULL, "decode_new: %s", err);
}

static void teardown(void)
{
	decode_free(dec);
	registry_free(reg);
	dec = NULL;
	reg = NULL;
}

/* A fixture file's bytes (caller frees); *len its size. */
static uint8_t *read_fixture(const char *rel, size_t *len)
{
	char path[1024];
	snprintf(path, sizeof(path), "%s/%s", AVRO_DIR, rel);
	FILE *f = fopen(path, "rb");
	ck_assert_msg(f != NULL, "cannot open %s", path);
	uint8_t *buf = malloc((1 << 16) + 1);
	ck_assert_ptr_nonnull(buf);
	*len = fread(buf, 1, 1 << 16, f);
	fclose(f);
	return buf;
}

static enum qs_topic topic_of(json_t *row)
{
	const char *t = json_string_value(json_object_get(row, "topic"));
	if (strcmp(t, "encounters") == 0)
		return QS_TOPIC_ENCOUNTERS;
	if (strcmp(t, "deliveries") == 0)
		return QS_TOPIC_DELIVERIES;
	ck_assert_str_eq(t, "member-events");
	return QS_TOPIC_MEMBER_EVENTS;
}

static const char *row_name(json_t *row)
{
	return json_string_value(json_object_get(row, "name"));
}

/* ---- comparing a decoded event with cases.json ---------------------------- */

static const char *const source_names[] = {"MEDICARE", "MEDICAID", NULL};
static const char *const frequency_names[] = {"ORIGINAL", "REPLACEMENT", "VOID", NULL};
static const char *const status_names[] = {"ACTIVE", "VOID", NULL};
static const char *const presentation_names[] = {"VERTEX", "BREECH", "TRANSVERSE", "OTHER", NULL};
static const char *const method_names[] = {"VAGINAL", "CESAREAN", NULL};
static const char *const outcome_names[] = {"SUCCESS", "UNABLE_TO_REACH", "NOT_ATTEMPTED", NULL};
static const char *const care_plan_type_names[] = {"INITIAL", "REVISED", NULL};
static const char *const body_names[] = {"Enrollment",          "BhCoordination",  "CarePlan",
					 "CoordinatorAssigned", "CareTeamContact", NULL};

/* Expected values of one record, and how many of its keys were checked. */
struct expect {
	const char *name;
	json_t *obj;
	size_t checked;
};

static json_t *want(struct expect *e, const char *key)
{
	json_t *v = json_object_get(e->obj, key);
	ck_assert_msg(v != NULL, "%s: cases.json gives no %s", e->name, key);
	e->checked++;
	return v;
}

static void expect_id(struct expect *e, const char *key, const char *got)
{
	json_t *v = want(e, key);
	const char *w = json_is_null(v) ? "" : json_string_value(v);
	ck_assert_msg(strcmp(got, w) == 0, "%s: %s is \"%s\", expected \"%s\"", e->name, key, got, w);
}

static void expect_date(struct expect *e, const char *key, int32_t got)
{
	json_t *v = want(e, key);
	int32_t w = QS_NO_DATE;
	int y, m, d;
	if (!json_is_null(v)) {
		ck_assert(sscanf(json_string_value(v), "%d-%d-%d", &y, &m, &d) == 3);
		w = dates_from_civil(y, m, d);
	}
	ck_assert_msg(got == w, "%s: %s is day %d, expected %s (day %d)", e->name, key, got,
		      json_is_null(v) ? "null" : json_string_value(v), w);
}

static void expect_int(struct expect *e, const char *key, int32_t got)
{
	json_t *v = want(e, key);
	int64_t w = json_is_null(v) ? QS_NO_INT : json_integer_value(v);
	ck_assert_msg(got == w, "%s: %s is %d, expected %lld", e->name, key, got, (long long)w);
}

static void expect_ts(struct expect *e, const char *key, int64_t got)
{
	json_t *v = want(e, key);
	int64_t w = json_is_null(v) ? QS_NO_TS : json_integer_value(v);
	ck_assert_msg(got == w, "%s: %s is %lld, expected %lld", e->name, key, (long long)got, (long long)w);
}

static void expect_bool(struct expect *e, const char *key, bool got)
{
	json_t *v = want(e, key);
	ck_assert_msg(json_is_boolean(v), "%s: %s in cases.json is not a boolean", e->name, key);
	ck_assert_msg(got == json_is_true(v), "%s: %s is %d", e->name, key, got);
}

static void expect_enum(struct expect *e, const char *key, int got, const char *const *names)
{
	json_t *v = want(e, key);
	int w = -1;
	if (!json_is_null(v))
		for (int i = 0; names[i]; i++)
			if (strcmp(names[i], json_string_value(v)) == 0)
				w = i;
	ck_assert_msg(json_is_null(v) || w >= 0, "%s: bad symbol for %s in cases.json", e->name, key);
	ck_assert_msg(got == w, "%s: %s is %d, expected %s", e->name, key, got,
		      json_is_null(v) ? "null" : json_string_value(v));
}

static void expect_all_checked(struct expect *e)
{
	ck_assert_msg(e->checked == json_object_size(e->obj), "%s: %zu of %zu expected values checked", e->name,
		      e->checked, json_object_size(e->obj));
}

static void check_encounter(struct expect *e, const struct qs_encounter *x)
{
	expect_id(e, "encounter_id", x->encounter_id);
	expect_id(e, "original_encounter_id", x->original_encounter_id);
	expect_id(e, "plan_id", x->plan_id);
	expect_id(e, "member_id", x->member_id);
	expect_enum(e, "source", (int)x->source, source_names);
	expect_enum(e, "frequency", (int)x->frequency, frequency_names);
	expect_date(e, "service_from", x->service_from);
	expect_date(e, "service_to", x->service_to);
	expect_ts(e, "adjudicated_at", x->adjudicated_at);
	expect_ts(e, "submitted_at", x->submitted_at);
	expect_bool(e, "ed_visit", x->ed_visit);
	expect_all_checked(e);
}

static void check_delivery(struct expect *e, const struct qs_delivery *x)
{
	expect_id(e, "delivery_id", x->delivery_id);
	expect_id(e, "plan_id", x->plan_id);
	expect_id(e, "hospital_id", x->hospital_id);
	expect_id(e, "member_id", x->member_id);
	expect_date(e, "delivery_date", x->delivery_date);
	expect_int(e, "parity", x->parity);
	expect_int(e, "gestational_age_weeks", x->gestational_age_weeks);
	expect_int(e, "plurality", x->plurality);
	expect_enum(e, "presentation", (int)x->presentation, presentation_names);
	expect_enum(e, "method", (int)x->method, method_names);
	expect_bool(e, "live_birth", x->live_birth);
	expect_enum(e, "status", (int)x->status, status_names);
	expect_all_checked(e);
}

static void check_member(struct expect *e, const struct qs_member_event *x)
{
	expect_id(e, "event_id", x->event_id);
	expect_id(e, "plan_id", x->plan_id);
	expect_id(e, "member_id", x->member_id);
	expect_enum(e, "status", (int)x->status, status_names);
	struct expect b = {e->name, want(e, "body"), 0};
	expect_all_checked(e);
	expect_enum(&b, "type", (int)x->body, body_names);
	switch (x->body) {
	case QS_BODY_ENROLLMENT:
		expect_date(&b, "month", x->u.enrollment.month);
		expect_bool(&b, "smi_sud", x->u.enrollment.smi_sud);
		break;
	case QS_BODY_BH_COORDINATION:
		expect_date(&b, "event_date", x->u.bh_coordination.event_date);
		expect_bool(&b, "receives_smhs", x->u.bh_coordination.receives_smhs);
		expect_enum(&b, "county_provider_outcome", (int)x->u.bh_coordination.county_provider_outcome,
			    outcome_names);
		expect_enum(&b, "member_outcome", (int)x->u.bh_coordination.member_outcome, outcome_names);
		break;
	case QS_BODY_CARE_PLAN:
		expect_id(&b, "care_plan_id", x->u.care_plan.care_plan_id);
		expect_enum(&b, "plan_type", (int)x->u.care_plan.plan_type, care_plan_type_names);
		expect_date(&b, "completed_on", x->u.care_plan.completed_on);
		expect_bool(&b, "care_goals_documented", x->u.care_plan.care_goals_documented);
		break;
	case QS_BODY_COORDINATOR_ASSIGNED:
		expect_date(&b, "month", x->u.coordinator_assigned.month);
		break;
	case QS_BODY_CARE_TEAM_CONTACT:
		expect_date(&b, "contact_date", x->u.care_team_contact.contact_date);
		break;
	}
	expect_all_checked(&b);
}

/* ---- table-driven cases ------------------------------------------------------ */

START_TEST(valid_message)
{
	json_t *row = json_array_get(ok_rows, (size_t)_i);
	size_t len;
	uint8_t *msg = read_fixture(json_string_value(json_object_get(row, "file")), &len);
	enum qs_topic topic = topic_of(row);
	/* Twice: the first compiles the plan, the second uses the cached one. */
	for (int pass = 0; pass < 2; pass++) {
		struct qs_event ev;
		char err[QS_DECODE_ERRSTR_SIZE] = "";
		int rc = decode_message(dec, topic, msg, len, &ev, err, sizeof(err));
		ck_assert_msg(rc == QS_OK, "%s: rc %d: %s", row_name(row), rc, err);
		ck_assert_int_eq(ev.topic, topic);
		struct expect e = {row_name(row), json_object_get(row, "event"), 0};
		if (topic == QS_TOPIC_ENCOUNTERS)
			check_encounter(&e, &ev.u.encounter);
		else if (topic == QS_TOPIC_DELIVERIES)
			check_delivery(&e, &ev.u.delivery);
		else
			check_member(&e, &ev.u.member);
	}
	free(msg);
}
END_TEST

START_TEST(rejected_message)
{
	json_t *row = json_array_get(bad_rows, (size_t)_i);
	const char *reason = json_string_value(json_object_get(row, "reason"));
	size_t len;
	uint8_t *msg = read_fixture(json_string_value(json_object_get(row, "file")), &len);
	enum qs_topic topic = topic_of(row);
	for (int pass = 0; pass < 2; pass++) {
		struct qs_event ev;
		char err[QS_DECODE_ERRSTR_SIZE] = "";
		int rc = decode_message(dec, topic, len ? msg : NULL, len, &ev, err, sizeof(err));
		ck_assert_msg(rc == QS_REJECT, "%s: rc %d (%s), expected a rejection", row_name(row), rc, err);
		ck_assert_msg(strstr(err, reason) != NULL, "%s: reason \"%s\" lacks \"%s\"", row_name(row), err,
			      reason);
	}
	/* A small or absent reason buffer only shortens the reason. */
	struct qs_event ev;
	char tiny[6];
	ck_assert_int_eq(decode_message(dec, topic, msg, len, &ev, tiny, sizeof(tiny)), QS_REJECT);
	ck_assert_uint_lt(strlen(tiny), sizeof(tiny));
	ck_assert_int_eq(decode_message(dec, topic, msg, len, &ev, NULL, 0), QS_REJECT);
	free(msg);
}
END_TEST

/* Every proper prefix of every valid message is rejected with a reason. */
START_TEST(every_truncation_rejected)
{
	size_t n = json_array_size(ok_rows);
	for (size_t r = 0; r < n; r++) {
		json_t *row = json_array_get(ok_rows, r);
		size_t len;
		uint8_t *msg = read_fixture(json_string_value(json_object_get(row, "file")), &len);
		for (size_t cut = 0; cut < len; cut++) {
			/* A copy of exactly `cut` bytes, so ASan sees any overread. */
			uint8_t *part = xmalloc(cut ? cut : 1, "a cut message");
			memcpy(part, msg, cut);
			struct qs_event ev;
			char err[QS_DECODE_ERRSTR_SIZE] = "";
			int rc = decode_message(dec, topic_of(row), cut ? part : NULL, cut, &ev, err, sizeof(err));
			ck_assert_msg(rc == QS_REJECT && err[0], "%s cut at %zu: rc %d", row_name(row), cut, rc);
			if (cut > 5)
				ck_assert_msg(strstr(err, "truncated Avro") != NULL, "%s cut at %zu: %s", row_name(row),
					      cut, err);
			free(part);
		}
		free(msg);
	}
}
END_TEST

START_TEST(wrong_topic_number)
{
	struct qs_event ev;
	char err[QS_DECODE_ERRSTR_SIZE] = "";
	const uint8_t msg[] = {0, 0, 0, 0, 1, 0};
	ck_assert_int_eq(decode_message(dec, QS_TOPIC_COUNT, msg, sizeof(msg), &ev, err, sizeof(err)), QS_REJECT);
	ck_assert_ptr_nonnull(strstr(err, "topic"));
}
END_TEST

/* ---- random mutations ------------------------------------------------------ */

static uint64_t prng_state;

static uint64_t prng(void)
{
	/* xorshift64*: deterministic for a given seed. */
	prng_state ^= prng_state >> 12;
	prng_state ^= prng_state << 25;
	prng_state ^= prng_state >> 27;
	return prng_state * 2685821657736338717ULL;
}

static bool id_ok(const char *s, bool may_be_empty)
{
	size_t n = strnlen(s, QS_ID_MAX);
	return n < QS_ID_MAX && (may_be_empty || n > 0);
}

/* What any accepted event must satisfy, whatever bytes produced it. */
static void check_invariants(const struct qs_event *ev)
{
	const int32_t lo = dates_from_civil(1900, 1, 1), hi = dates_from_civil(2199, 12, 31);
	switch (ev->topic) {
	case QS_TOPIC_ENCOUNTERS: {
		const struct qs_encounter *e = &ev->u.encounter;
		ck_assert(id_ok(e->encounter_id, false) && id_ok(e->plan_id, false) && id_ok(e->member_id, false));
		ck_assert(id_ok(e->original_encounter_id, true));
		ck_assert(e->service_from >= lo && e->service_from <= e->service_to && e->service_to <= hi);
		ck_assert(e->submitted_at == QS_NO_TS || dates_day_of_ms(e->submitted_at) >= e->service_to);
		ck_assert(e->submitted_at == QS_NO_TS || dates_day_of_ms(e->submitted_at) <= hi);
		ck_assert((e->frequency == QS_FREQ_ORIGINAL) == (e->original_encounter_id[0] == '\0'));
		ck_assert((unsigned)e->source <= QS_SOURCE_MEDICAID && (unsigned)e->frequency <= QS_FREQ_VOID);
		break;
	}
	case QS_TOPIC_DELIVERIES: {
		const struct qs_delivery *d = &ev->u.delivery;
		ck_assert(id_ok(d->delivery_id, false) && id_ok(d->hospital_id, false));
		ck_assert(d->delivery_date >= lo && d->delivery_date <= hi);
		ck_assert(d->parity == QS_NO_INT || (d->parity >= 0 && d->parity <= 30));
		ck_assert(d->plurality == QS_NO_INT || (d->plurality >= 1 && d->plurality <= 15));
		ck_assert(d->presentation >= QS_PRES_NONE && d->presentation <= QS_PRES_OTHER);
		ck_assert((unsigned)d->status <= QS_STATUS_VOID && (unsigned)d->method <= QS_METHOD_CESAREAN);
		break;
	}
	default: {
		const struct qs_member_event *m = &ev->u.member;
		ck_assert(id_ok(m->event_id, false) && id_ok(m->member_id, false));
		ck_assert((unsigned)m->body <= QS_BODY_CARE_TEAM_CONTACT);
		break;
	}
	}
}

START_TEST(random_mutations_never_crash)
{
	size_t nrows = json_array_size(ok_rows);
	uint8_t *msgs[256];
	size_t lens[256];
	ck_assert_uint_le(nrows, 256);
	for (size_t r = 0; r < nrows; r++)
		msgs[r] = read_fixture(json_string_value(json_object_get(json_array_get(ok_rows, r), "file")),
				       &lens[r]);

	prng_state = 0x5eed2017c0ffee01ULL;
	size_t accepted = 0, rejected = 0;
	for (int iter = 0; iter < 20000; iter++) {
		size_t r = prng() % nrows;
		uint8_t buf[4096];
		size_t len = lens[r];
		memcpy(buf, msgs[r], len);
		int edits = 1 + (int)(prng() % 4);
		for (int k = 0; k < edits && len > 0; k++) {
			/* Mostly past the header, where the interesting bytes are. */
			size_t at = len > 5 && prng() % 8 ? 5 + prng() % (len - 5) : prng() % len;
			switch (prng() % 7) {
			case 0:
				buf[at] ^= (uint8_t)(1u << (prng() % 8));
				break;
			case 1:
				buf[at] = (uint8_t)prng();
				break;
			case 2: {
				static const uint8_t special[] = {0x00, 0x01, 0x7f, 0x80, 0xff, 0xfe, 0x81};
				buf[at] = special[prng() % sizeof(special)];
				break;
			}
			case 3:
				len = at; /* truncate */
				break;
			case 4:
				if (len < sizeof(buf)) { /* insert a byte */
					memmove(buf + at + 1, buf + at, len - at);
					buf[at] = (uint8_t)prng();
					len++;
				}
				break;
			case 5: /* delete a byte */
				memmove(buf + at, buf + at + 1, len - at - 1);
				len--;
				break;
			default: { /* duplicate a run of bytes */
				size_t run = 1 + prng() % 16;
				if (at + run <= len && len + run <= sizeof(buf)) {
					memmove(buf + at + run, buf + at, len - at);
					len += run;
				}
				break;
			}
			}
		}
		/* An exact-size copy, so ASan catches any read past the end. */
		uint8_t *exact = xmalloc(len ? len : 1, "a message copy");
		memcpy(exact, buf, len);
		struct qs_event ev;
		char err[QS_DECODE_ERRSTR_SIZE] = "";
		enum qs_topic topic = prng() % 16 ? topic_of(json_array_get(ok_rows, r)) : (enum qs_topic)(prng() % 3);
		int rc = decode_message(dec, topic, len ? exact : NULL, len, &ev, err, sizeof(err));
		ck_assert_msg(rc == QS_OK || rc == QS_REJECT, "iteration %d: rc %d (%s)", iter, rc, err);
		if (rc == QS_OK) {
			check_invariants(&ev);
			accepted++;
		} else {
			ck_assert_msg(err[0] != '\0', "iteration %d: rejected without a reason", iter);
			rejected++;
		}
		free(exact);
	}
	/* Both outcomes occur, so the mutations reach past the framing. */
	ck_assert_uint_gt(accepted, 100);
	ck_assert_uint_gt(rejected, 10000);
	for (size_t r = 0; r < nrows; r++)
		free(msgs[r]);
}
END_TEST

/* ---- registry: directory mode ----------------------------------------------- */

START_TEST(registry_new_arguments)
{
	char err[256] = "";
	ck_assert_ptr_null(registry_new(NULL, NULL, err, sizeof(err)));
	ck_assert_ptr_nonnull(strstr(err, "exactly one"));
	ck_assert_ptr_null(registry_new("http://localhost:8081", REGISTRY_DIR, err, sizeof(err)));
	ck_assert_ptr_null(registry_new(NULL, REGISTRY_DIR "/no-such-dir", err, sizeof(err)));
	ck_assert_ptr_nonnull(strstr(err, "no-such-dir"));
	ck_assert_ptr_null(registry_new("ftp://example.com", NULL, err, sizeof(err)));
	ck_assert_ptr_null(registry_new("not a url at all", NULL, err, sizeof(err)));
	registry_free(NULL);
	decode_free(NULL);
}
END_TEST

START_TEST(registry_dir_lookup)
{
	char err[256] = "";
	const char *text = NULL;
	size_t len;
	char *file = (char *)read_fixture("registry/2.avsc", &len);
	file[len] = '\0';
	ck_assert_int_eq(registry_lookup(reg, 2, &text, err, sizeof(err)), QS_OK);
	ck_assert_str_eq(text, file);
	const char *again = NULL;
	ck_assert_int_eq(registry_lookup(reg, 2, &again, err, sizeof(err)), QS_OK);
	ck_assert_ptr_eq(again, text); /* cached */
	free(file);

	for (int pass = 0; pass < 2; pass++) { /* unknown, then cached unknown */
		err[0] = '\0';
		ck_assert_int_eq(registry_lookup(reg, 999, &text, err, sizeof(err)), QS_REJECT);
		ck_assert_ptr_nonnull(strstr(err, "999"));
	}
	ck_assert_int_eq(registry_lookup(reg, 0, &text, err, sizeof(err)), QS_REJECT);
	ck_assert_int_eq(registry_lookup(reg, -7, &text, err, sizeof(err)), QS_REJECT);
}
END_TEST

static const char *embedded(const char *name)
{
	for (const struct embedded_file *f = embedded_schemas; f->name; f++)
		if (strcmp(f->name, name) == 0)
			return f->text;
	ck_abort_msg("%s is not embedded", name);
	return NULL;
}

START_TEST(registry_dir_id_for)
{
	char err[256] = "";
	int32_t id = 0;
	const char *dead_letter = embedded("dead_letter.avsc");
	ck_assert_int_eq(registry_id_for(reg, "dead-letters-value", dead_letter, &id, err, sizeof(err)), QS_OK);
	ck_assert_int_eq(id, 4);
	id = 0;
	ck_assert_int_eq(registry_id_for(reg, "dead-letters-value", dead_letter, &id, err, sizeof(err)), QS_OK);
	ck_assert_int_eq(id, 4);

	/* Several files hold qualstream.Encounter; the one equal to the reader wins. */
	ck_assert_int_eq(registry_id_for(reg, "encounters-value", embedded("encounter.avsc"), &id, err, sizeof(err)),
			 QS_OK);
	ck_assert_int_eq(id, 1);

	const char *alert = "{\"type\":\"record\",\"name\":\"Alert\",\"namespace\":\"qualstream\","
			    "\"fields\":[{\"name\":\"a\",\"type\":\"int\"}]}";
	ck_assert_int_eq(registry_id_for(reg, "alerts-value", alert, &id, err, sizeof(err)), QS_REJECT);
	ck_assert_ptr_nonnull(strstr(err, "qualstream.Alert"));
	ck_assert_int_eq(registry_id_for(reg, "x", "\"string\"", &id, err, sizeof(err)), QS_REJECT);
	ck_assert_int_eq(registry_id_for(reg, "x", "{not json", &id, err, sizeof(err)), QS_REJECT);
}
END_TEST

/* ---- registry: HTTP mode ---------------------------------------------------- */

START_TEST(http_unreachable_is_retry)
{
	char err[QS_DECODE_ERRSTR_SIZE] = "";
	struct registry *r = registry_new("http://127.0.0.1:1/", NULL, err, sizeof(err));
	ck_assert_msg(r != NULL, "%s", err);
	struct decoder *d = decode_new(r, err, sizeof(err));
	ck_assert_ptr_nonnull(d);

	const char *text;
	ck_assert_int_eq(registry_lookup(r, 1, &text, err, sizeof(err)), QS_RETRY);
	ck_assert_ptr_nonnull(strstr(err, "127.0.0.1"));

	size_t len;
	uint8_t *msg = read_fixture("messages/enc_original.bin", &len);
	struct qs_event ev;
	for (int pass = 0; pass < 2; pass++) { /* a failure is not cached */
		err[0] = '\0';
		ck_assert_int_eq(decode_message(d, QS_TOPIC_ENCOUNTERS, msg, len, &ev, err, sizeof(err)), QS_RETRY);
		ck_assert_msg(strstr(err, "unreachable") != NULL, "%s", err);
	}
	int32_t id;
	ck_assert_int_eq(registry_id_for(r, "dead-letters-value", embedded("dead_letter.avsc"), &id, err, sizeof(err)),
			 QS_RETRY);
	free(msg);
	decode_free(d);
	registry_free(r);
}
END_TEST

/*
 * A one-connection-at-a-time HTTP server in a child process, answering like a
 * Confluent schema registry:
 *   GET /schemas/ids/1  first time 200 with registry/1.avsc, then 500 (so a
 *                       second success proves the cache)
 *   GET /schemas/ids/5  500;  GET /schemas/ids/6: 200 with a body that is not JSON
 *   GET /schemas/ids/7  200, schemaType PROTOBUF
 *   POST /subjects/dead-letters-value/versions  200 {"id": 42}
 *   POST /subjects/refused/versions             409
 *   anything else       404 {"error_code": 40403, ...}
 */
static void serve(int lfd, const char *schema1)
{
	int ids1 = 0;
	for (;;) {
		int fd = accept(lfd, NULL, NULL);
		if (fd < 0)
			continue;
		char req[65536];
		size_t got = 0;
		char *end = NULL;
		while (got < sizeof(req) - 1) {
			ssize_t n = read(fd, req + got, sizeof(req) - 1 - got);
			if (n <= 0)
				break;
			got += (size_t)n;
			req[got] = '\0';
			end = strstr(req, "\r\n\r\n");
			if (end) {
				const char *cl = strstr(req, "Content-Length: ");
				size_t want = cl ? strtoul(cl + 16, NULL, 10) : 0;
				if (got >= (size_t)(end + 4 - req) + want)
					break;
			}
		}
		int status = 404;
		json_t *body = json_pack("{s:i,s:s}", "error_code", 40403, "message", "Schema not found");
		const char *raw = NULL;
		if (strncmp(req, "GET /schemas/ids/1 ", 19) == 0 && ids1++ == 0) {
			status = 200;
			json_decref(body);
			body = json_pack("{s:s}", "schema", schema1);
		} else if (strncmp(req, "GET /schemas/ids/1 ", 19) == 0 ||
			   strncmp(req, "GET /schemas/ids/5 ", 19) == 0) {
			status = 500;
		} else if (strncmp(req, "GET /schemas/ids/6 ", 19) == 0) {
			status = 200;
			raw = "<html>proxy error</html>";
		} else if (strncmp(req, "GET /schemas/ids/7 ", 19) == 0) {
			status = 200;
			json_decref(body);
			body = json_pack("{s:s,s:s}", "schemaType", "PROTOBUF", "schema", "syntax = \"proto3\";");
		} else if (strncmp(req, "POST /subjects/dead-letters-value/versions ", 43) == 0 && end &&
			   strstr(end, "DeadLetter")) {
			status = 200;
			json_decref(body);
			body = json_pack("{s:i}", "id", 42);
		} else if (strncmp(req, "POST /subjects/refused/versions ", 32) == 0) {
			status = 409;
		}
		char *text = raw ? xstrdup(raw, "a response body") : json_dumps(body, JSON_COMPACT);
		char head[256];
		int hl = snprintf(head, sizeof(head),
				  "HTTP/1.1 %d X\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n"
				  "Connection: close\r\n\r\n",
				  status, strlen(text));
		if (write(fd, head, (size_t)hl) < 0 || write(fd, text, strlen(text)) < 0)
			perror("serve");
		free(text);
		json_decref(body);
		close(fd);
	}
}

START_TEST(http_registry)
{
	size_t len;
	char *schema1 = (char *)read_fixture("registry/1.avsc", &len);
	schema1[len] = '\0';
	int lfd = socket(AF_INET, SOCK_STREAM, 0);
	ck_assert_int_ge(lfd, 0);
	struct sockaddr_in addr = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t alen = sizeof(addr);
	ck_assert_int_eq(bind(lfd, (struct sockaddr *)&addr, sizeof(addr)), 0);
	ck_assert_int_eq(listen(lfd, 8), 0);
	ck_assert_int_eq(getsockname(lfd, (struct sockaddr *)&addr, &alen), 0);
	pid_t server = fork();
	ck_assert_int_ge(server, 0);
	if (server == 0) {
		/* Never outlive the test, even one that fails before killing us. */
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		alarm(60);
		serve(lfd, schema1);
		_exit(0);
	}
	close(lfd);

	char url[64], err[QS_DECODE_ERRSTR_SIZE] = "";
	snprintf(url, sizeof(url), "http://user:secret@127.0.0.1:%d", ntohs(addr.sin_port));
	struct registry *r = registry_new(url, NULL, err, sizeof(err));
	ck_assert_msg(r != NULL, "%s", err);
	struct decoder *d = decode_new(r, err, sizeof(err));
	ck_assert_ptr_nonnull(d);

	const char *text = NULL;
	ck_assert_int_eq(registry_lookup(r, 1, &text, err, sizeof(err)), QS_OK);
	ck_assert_str_eq(text, schema1);
	ck_assert_int_eq(registry_lookup(r, 1, &text, err, sizeof(err)), QS_OK); /* the server would say 500 */

	uint8_t *msg = read_fixture("messages/enc_original.bin", &len);
	struct qs_event ev;
	ck_assert_int_eq(decode_message(d, QS_TOPIC_ENCOUNTERS, msg, len, &ev, err, sizeof(err)), QS_OK);
	ck_assert_str_eq(ev.u.encounter.encounter_id, "ENC-0001");
	msg[4] = 99; /* schema id 99: 404 */
	ck_assert_int_eq(decode_message(d, QS_TOPIC_ENCOUNTERS, msg, len, &ev, err, sizeof(err)), QS_REJECT);
	ck_assert_msg(strstr(err, "unknown schema id 99") != NULL, "%s", err);
	ck_assert_msg(strstr(err, "secret") == NULL, "password leaked: %s", err);
	msg[4] = 5; /* 500: retry, however often */
	for (int pass = 0; pass < 2; pass++) {
		ck_assert_int_eq(decode_message(d, QS_TOPIC_ENCOUNTERS, msg, len, &ev, err, sizeof(err)), QS_RETRY);
		ck_assert_msg(strstr(err, "HTTP 500") != NULL, "%s", err);
		ck_assert_msg(strstr(err, "secret") == NULL, "password leaked: %s", err);
	}
	ck_assert_int_eq(registry_lookup(r, 6, &text, err, sizeof(err)), QS_RETRY);
	ck_assert_int_eq(registry_lookup(r, 7, &text, err, sizeof(err)), QS_REJECT);
	ck_assert_msg(strstr(err, "PROTOBUF") != NULL, "%s", err);
	msg[4] = 7;
	ck_assert_int_eq(decode_message(d, QS_TOPIC_ENCOUNTERS, msg, len, &ev, err, sizeof(err)), QS_REJECT);
	ck_assert_msg(strstr(err, "unknown schema id 7 (") && strstr(err, "PROTOBUF"), "%s", err);

	int32_t id = 0;
	ck_assert_int_eq(registry_id_for(r, "dead-letters-value", embedded("dead_letter.avsc"), &id, err, sizeof(err)),
			 QS_OK);
	ck_assert_int_eq(id, 42);
	ck_assert_int_eq(registry_id_for(r, "refused", embedded("dead_letter.avsc"), &id, err, sizeof(err)), QS_REJECT);
	ck_assert_msg(strstr(err, "409") != NULL, "%s", err);

	decode_free(d);
	registry_free(r);
	kill(server, SIGKILL);
	waitpid(server, NULL, 0);
	free(msg);
	free(schema1);
}
END_TEST

/* ---- writer schemas built here: named types, recursion, cost ---------------- */

/*
 * Each case writes its writer schema as <id>.avsc into a private registry
 * directory and encodes its message by hand, so the expected values below are
 * the ones written, not ones read back through the code under test.
 */

/* A message under construction: Confluent header, then Avro. */
struct avro_buf {
	uint8_t *b;
	size_t n, cap;
};

static void avro_byte(struct avro_buf *m, uint8_t x)
{
	if (m->n == m->cap) {
		m->cap = m->cap ? m->cap * 2 : 256;
		m->b = realloc(m->b, m->cap);
		ck_assert_ptr_nonnull(m->b);
	}
	m->b[m->n++] = x;
}

static void avro_long(struct avro_buf *m, int64_t v)
{
	uint64_t u = ((uint64_t)v << 1) ^ (uint64_t)(v >> 63);
	while (u >= 0x80) {
		avro_byte(m, (uint8_t)(u | 0x80));
		u >>= 7;
	}
	avro_byte(m, (uint8_t)u);
}

static void avro_string(struct avro_buf *m, const char *s)
{
	avro_long(m, (int64_t)strlen(s));
	for (const char *c = s; *c; c++)
		avro_byte(m, (uint8_t)*c);
}

static void avro_header(struct avro_buf *m, int32_t id)
{
	avro_byte(m, 0);
	for (int shift = 24; shift >= 0; shift -= 8)
		avro_byte(m, (uint8_t)((uint32_t)id >> shift));
}

/* The reader's encounter fields, ed_visit (written last by these cases) excepted. */
#define ENC_HEAD_FIELDS                                                                            \
	"{\"name\":\"encounter_id\",\"type\":\"string\"},"                                         \
	"{\"name\":\"original_encounter_id\",\"type\":[\"null\",\"string\"],\"default\":null},"    \
	"{\"name\":\"plan_id\",\"type\":\"string\"},{\"name\":\"member_id\",\"type\":\"string\"}," \
	"{\"name\":\"source\",\"type\":{\"type\":\"enum\",\"name\":\"EncounterSource\","           \
	"\"symbols\":[\"MEDICARE\",\"MEDICAID\"]}},"                                               \
	"{\"name\":\"frequency\",\"type\":{\"type\":\"enum\",\"name\":\"ClaimFrequency\","         \
	"\"symbols\":[\"ORIGINAL\",\"REPLACEMENT\",\"VOID\"]}},"                                   \
	"{\"name\":\"service_from\",\"type\":\"int\"},{\"name\":\"service_to\",\"type\":\"int\"}," \
	"{\"name\":\"adjudicated_at\",\"type\":[\"null\",\"long\"],\"default\":null},"             \
	"{\"name\":\"submitted_at\",\"type\":[\"null\",\"long\"],\"default\":null},"

/* An encounter writer schema: the reader's fields, then `extra` (fields
 * the reader lacks, each followed by a comma), then ed_visit. */
static char *encounter_writer(const char *extra)
{
	static const char head[] = "{\"type\":\"record\",\"name\":\"Encounter\",\"namespace\":\"qualstream\","
				   "\"fields\":[" ENC_HEAD_FIELDS;
	static const char end[] = "{\"name\":\"ed_visit\",\"type\":\"boolean\"}]}";
	size_t n = sizeof(head) + strlen(extra) + sizeof(end);
	char *s = malloc(n);
	ck_assert_ptr_nonnull(s);
	snprintf(s, n, "%s%s%s", head, extra, end);
	return s;
}

/* 2017-03-01 and 2017-03-02 as days since 1970-01-01 (17167 is 2017-01-01). */
#define DAY_2017_03_01 (17167 + 31 + 28)
#define ADJUDICATED_MS 1489134600000LL

/* The bytes of the encounter fields before the extras. */
static void encounter_head(struct avro_buf *m, int32_t id)
{
	avro_header(m, id);
	avro_string(m, "ENC-R1");
	avro_long(m, 0); /* original_encounter_id: null */
	avro_string(m, "H0001");
	avro_string(m, "M-7");
	avro_long(m, 1); /* MEDICAID */
	avro_long(m, 0); /* ORIGINAL */
	avro_long(m, DAY_2017_03_01);
	avro_long(m, DAY_2017_03_01 + 1);
	avro_long(m, 1); /* adjudicated_at: long */
	avro_long(m, ADJUDICATED_MS);
	avro_long(m, 0); /* submitted_at: null */
}

/* A registry directory of its own, for schemas written by one case. */
struct scratch_registry {
	char dir[64];
	struct registry *reg;
	struct decoder *dec;
};

static void scratch_open(struct scratch_registry *s)
{
	char err[QS_DECODE_ERRSTR_SIZE] = "";
	snprintf(s->dir, sizeof(s->dir), "/tmp/qs-decode-test.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(s->dir));
	s->reg = registry_new(NULL, s->dir, err, sizeof(err));
	ck_assert_msg(s->reg != NULL, "%s", err);
	s->dec = decode_new(s->reg, err, sizeof(err));
	ck_assert_msg(s->dec != NULL, "%s", err);
}

static void scratch_put(struct scratch_registry *s, int32_t id, const char *schema)
{
	char path[128];
	snprintf(path, sizeof(path), "%s/%d.avsc", s->dir, (int)id);
	FILE *f = fopen(path, "w");
	ck_assert_ptr_nonnull(f);
	ck_assert_int_eq(fputs(schema, f) >= 0, 1);
	ck_assert_int_eq(fclose(f), 0);
}

static void scratch_close(struct scratch_registry *s)
{
	char path[128];
	decode_free(s->dec);
	registry_free(s->reg);
	for (int id = 1; id < 100; id++) {
		snprintf(path, sizeof(path), "%s/%d.avsc", s->dir, id);
		unlink(path);
	}
	rmdir(s->dir);
}

/* Decodes an encounter written with `extra` fields whose bytes `tail` added
 * (ed_visit excepted), and checks every reader field against encounter_head. */
static void expect_encounter_with(const char *extra, void (*tail)(struct avro_buf *m))
{
	struct scratch_registry s;
	scratch_open(&s);
	char *schema = encounter_writer(extra);
	scratch_put(&s, 7, schema);
	struct avro_buf m = {0};
	encounter_head(&m, 7);
	tail(&m);
	avro_byte(&m, 1); /* ed_visit: true */
	for (int pass = 0; pass < 2; pass++) {
		struct qs_event ev;
		char err[QS_DECODE_ERRSTR_SIZE] = "";
		int rc = decode_message(s.dec, QS_TOPIC_ENCOUNTERS, m.b, m.n, &ev, err, sizeof(err));
		ck_assert_msg(rc == QS_OK, "rc %d: %s", rc, err);
		const struct qs_encounter *e = &ev.u.encounter;
		ck_assert_str_eq(e->encounter_id, "ENC-R1");
		ck_assert_str_eq(e->original_encounter_id, "");
		ck_assert_str_eq(e->plan_id, "H0001");
		ck_assert_str_eq(e->member_id, "M-7");
		ck_assert_int_eq(e->source, QS_SOURCE_MEDICAID);
		ck_assert_int_eq(e->frequency, QS_FREQ_ORIGINAL);
		ck_assert_int_eq(e->service_from, DAY_2017_03_01);
		ck_assert_int_eq(e->service_to, DAY_2017_03_01 + 1);
		ck_assert_int_eq(e->adjudicated_at, ADJUDICATED_MS);
		ck_assert_int_eq(e->submitted_at, QS_NO_TS);
		ck_assert_int_eq(e->ed_visit, true);
	}
	free(m.b);
	free(schema);
	scratch_close(&s);
}

#define REC_X \
	"{\"type\":\"record\",\"name\":\"X\",\"fields\":[{\"name\":\"a\",\"type\":\"int\"},{\"name\":\"b\",\"type\":\"string\"}]}"

static void x_value(struct avro_buf *m, int64_t a, const char *b)
{
	avro_long(m, a);
	avro_string(m, b);
}

static void tail_sibling(struct avro_buf *m)
{
	x_value(m, 5, "five");
	x_value(m, -6, "six");
}

/* X defined by one writer-only field and named by the next. */
START_TEST(named_type_reused_by_sibling)
{
	expect_encounter_with("{\"name\":\"x1\",\"type\":" REC_X "},{\"name\":\"x2\",\"type\":\"X\"},", tail_sibling);
}
END_TEST

static void tail_three(struct avro_buf *m)
{
	x_value(m, 1, "one");
	x_value(m, 2, "two");
	x_value(m, 3, "three");
}

/* Three uses, the last two by name: each must be its own list member. */
START_TEST(named_type_used_three_times)
{
	expect_encounter_with("{\"name\":\"x1\",\"type\":" REC_X "},{\"name\":\"x2\",\"type\":\"X\"},"
			      "{\"name\":\"x3\",\"type\":\"X\"},",
			      tail_three);
}
END_TEST

static void tail_nested(struct avro_buf *m)
{
	avro_long(m, 1); /* x1: union branch X */
	x_value(m, 7, "u");
	avro_long(m, 2); /* x2: an array block of two X */
	x_value(m, 8, "a0");
	x_value(m, 9, "a1");
	avro_long(m, 0);
	x_value(m, 10, "w.p"); /* w: record W {p: X, q: X} */
	x_value(m, 11, "w.q");
	avro_long(m, 1); /* x3: a map block of one X */
	avro_string(m, "k");
	x_value(m, 12, "m");
	avro_long(m, 0);
}

/* X defined in a union branch, then named as array items, twice inside another record, and as map values. */
START_TEST(named_type_reused_in_containers)
{
	expect_encounter_with("{\"name\":\"x1\",\"type\":[\"null\"," REC_X "]},"
			      "{\"name\":\"x2\",\"type\":{\"type\":\"array\",\"items\":\"X\"}},"
			      "{\"name\":\"w\",\"type\":{\"type\":\"record\",\"name\":\"W\",\"fields\":["
			      "{\"name\":\"p\",\"type\":\"X\"},{\"name\":\"q\",\"type\":\"X\"}]}},"
			      "{\"name\":\"x3\",\"type\":{\"type\":\"map\",\"values\":\"X\"}},",
			      tail_nested);
}
END_TEST

/* The second use is the record's last field: the old plan linked that op to
 * itself, and compiling looped forever. */
START_TEST(named_type_reused_last)
{
	struct scratch_registry s;
	scratch_open(&s);
	scratch_put(
		&s, 9,
		"{\"type\":\"record\",\"name\":\"Encounter\",\"namespace\":\"qualstream\",\"fields\":[" ENC_HEAD_FIELDS
		"{\"name\":\"x1\",\"type\":" REC_X "},{\"name\":\"ed_visit\",\"type\":\"boolean\"},"
		"{\"name\":\"x2\",\"type\":\"X\"}]}");
	struct avro_buf m = {0};
	encounter_head(&m, 9);
	x_value(&m, 1, "x1");
	avro_byte(&m, 0); /* ed_visit: false */
	x_value(&m, 2, "x2");
	struct qs_event ev;
	char err[QS_DECODE_ERRSTR_SIZE] = "";
	int rc = decode_message(s.dec, QS_TOPIC_ENCOUNTERS, m.b, m.n, &ev, err, sizeof(err));
	ck_assert_msg(rc == QS_OK, "rc %d: %s", rc, err);
	ck_assert_str_eq(ev.u.encounter.encounter_id, "ENC-R1");
	ck_assert_int_eq(ev.u.encounter.adjudicated_at, ADJUDICATED_MS);
	ck_assert_int_eq(ev.u.encounter.ed_visit, false);
	free(m.b);
	scratch_close(&s);
}
END_TEST

#define REC_NODE                                                                                \
	"{\"type\":\"record\",\"name\":\"Node\",\"fields\":[{\"name\":\"v\",\"type\":\"int\"}," \
	"{\"name\":\"kids\",\"type\":[\"null\",{\"type\":\"array\",\"items\":\"Node\"}]}]}"

/* A leaf Node: v, kids null. */
static void node_leaf(struct avro_buf *m, int64_t v)
{
	avro_long(m, v);
	avro_long(m, 0);
}

static void tail_recursive(struct avro_buf *m)
{
	/* tree: 1 -> [2 -> [3], 4] */
	avro_long(m, 1);
	avro_long(m, 1); /* kids: array */
	avro_long(m, 2);
	avro_long(m, 2);
	avro_long(m, 1);
	avro_long(m, 1);
	node_leaf(m, 3);
	avro_long(m, 0);
	node_leaf(m, 4);
	avro_long(m, 0);
	/* tree2, the second use: a leaf */
	node_leaf(m, 5);
}

/* A record that holds an optional list of itself, used twice. */
START_TEST(recursive_type_reused)
{
	expect_encounter_with("{\"name\":\"tree\",\"type\":" REC_NODE "},{\"name\":\"tree2\",\"type\":\"Node\"},",
			      tail_recursive);
}
END_TEST

/* A member event whose Enrollment body (resolved against the reader) defines
 * a writer-only record Note, named again by a later writer-only field. */
START_TEST(named_type_from_resolved_record)
{
	struct scratch_registry s;
	scratch_open(&s);
	scratch_put(&s, 8,
		    "{\"type\":\"record\",\"name\":\"MemberEvent\",\"namespace\":\"qualstream\",\"fields\":["
		    "{\"name\":\"event_id\",\"type\":\"string\"},{\"name\":\"plan_id\",\"type\":\"string\"},"
		    "{\"name\":\"member_id\",\"type\":\"string\"},"
		    "{\"name\":\"status\",\"type\":{\"type\":\"enum\",\"name\":\"RecordStatus\","
		    "\"symbols\":[\"ACTIVE\",\"VOID\"]}},"
		    "{\"name\":\"body\",\"type\":[{\"type\":\"record\",\"name\":\"Enrollment\",\"fields\":["
		    "{\"name\":\"month\",\"type\":\"int\"},"
		    "{\"name\":\"note\",\"type\":{\"type\":\"record\",\"name\":\"Note\",\"fields\":["
		    "{\"name\":\"text\",\"type\":\"string\"},{\"name\":\"n\",\"type\":\"long\"}]}},"
		    "{\"name\":\"smi_sud\",\"type\":\"boolean\"}]}]},"
		    "{\"name\":\"note2\",\"type\":\"Note\"},{\"name\":\"note3\",\"type\":[\"null\",\"Note\"]}]}");
	struct avro_buf m = {0};
	avro_header(&m, 8);
	avro_string(&m, "EV-9");
	avro_string(&m, "H0002");
	avro_string(&m, "M-9");
	avro_long(&m, 1); /* VOID */
	avro_long(&m, 0); /* body: Enrollment */
	avro_long(&m, DAY_2017_03_01);
	avro_string(&m, "in body");
	avro_long(&m, 77);
	avro_byte(&m, 1); /* smi_sud */
	avro_string(&m, "note2");
	avro_long(&m, 78);
	avro_long(&m, 1); /* note3: Note */
	avro_string(&m, "note3");
	avro_long(&m, 79);
	struct qs_event ev;
	char err[QS_DECODE_ERRSTR_SIZE] = "";
	int rc = decode_message(s.dec, QS_TOPIC_MEMBER_EVENTS, m.b, m.n, &ev, err, sizeof(err));
	ck_assert_msg(rc == QS_OK, "rc %d: %s", rc, err);
	ck_assert_str_eq(ev.u.member.event_id, "EV-9");
	ck_assert_str_eq(ev.u.member.plan_id, "H0002");
	ck_assert_str_eq(ev.u.member.member_id, "M-9");
	ck_assert_int_eq(ev.u.member.status, QS_STATUS_VOID);
	ck_assert_int_eq(ev.u.member.body, QS_BODY_ENROLLMENT);
	ck_assert_int_eq(ev.u.member.u.enrollment.month, DAY_2017_03_01);
	ck_assert_int_eq(ev.u.member.u.enrollment.smi_sud, true);
	free(m.b);
	scratch_close(&s);
}
END_TEST

/* The writer schema of an encounter whose writer-only field rows (after the
 * reader's fields, before ed_visit) has type `rows`; caller frees. */
static char *encounter_writer_rows(const char *rows)
{
	char *extra = NULL;
	size_t n = 0;
	FILE *f = open_memstream(&extra, &n);
	ck_assert_ptr_nonnull(f);
	fprintf(f, "{\"name\":\"rows\",\"type\":%s},", rows);
	ck_assert_int_eq(fclose(f), 0);
	char *schema = encounter_writer(extra);
	free(extra);
	return schema;
}

/*
 * Decodes, `passes` times, an encounter whose writer-only field rows, of type
 * `rows` (an array of booleans however wrapped), holds `items` booleans, and
 * checks the reader's values. The last result, reason in err.
 */
static int decode_rows(char *rows, int items, int passes, char *err, size_t err_size)
{
	char *schema = encounter_writer_rows(rows);
	struct scratch_registry s;
	scratch_open(&s);
	scratch_put(&s, 11, schema);
	struct avro_buf m = {0};
	encounter_head(&m, 11);
	avro_long(&m, items);
	for (int i = 0; i < items; i++)
		avro_byte(&m, (uint8_t)(i & 1));
	avro_long(&m, 0);
	avro_byte(&m, 1); /* ed_visit */
	int rc = QS_REJECT;
	for (int pass = 0; pass < passes; pass++) {
		struct qs_event ev;
		rc = decode_message(s.dec, QS_TOPIC_ENCOUNTERS, m.b, m.n, &ev, err, err_size);
		if (rc == QS_OK) {
			ck_assert_str_eq(ev.u.encounter.encounter_id, "ENC-R1");
			ck_assert_int_eq(ev.u.encounter.service_to, DAY_2017_03_01 + 1);
			ck_assert_int_eq(ev.u.encounter.ed_visit, true);
		}
	}
	free(m.b);
	free(schema);
	free(rows);
	scratch_close(&s);
	return rc;
}

/* An array of 100000 records of 10000 nulls and a boolean: 100 kB that cost
 * a billion ops (seconds of CPU) when every null was an op run per item. */
START_TEST(wide_null_records_cost_little)
{
	char *w = NULL;
	size_t wn = 0;
	FILE *f = open_memstream(&w, &wn);
	ck_assert_ptr_nonnull(f);
	fputs("{\"type\":\"array\",\"items\":{\"type\":\"record\",\"name\":\"W\",\"fields\":[", f);
	for (int i = 0; i < 10000; i++)
		fprintf(f, "{\"name\":\"n%d\",\"type\":\"null\"},", i);
	fputs("{\"name\":\"b\",\"type\":\"boolean\"}]}}", f);
	ck_assert_int_eq(fclose(f), 0);
	char err[QS_DECODE_ERRSTR_SIZE] = "";
	ck_assert_msg(decode_rows(w, 100000, 3, err, sizeof(err)) == QS_OK, "%s", err);
}
END_TEST

/* An array of 2000 booleans each wrapped in `depth` records. */
static int decode_nested(int depth, char *err, size_t err_size)
{
	char *w = NULL;
	size_t wn = 0;
	FILE *f = open_memstream(&w, &wn);
	ck_assert_ptr_nonnull(f);
	fputs("{\"type\":\"array\",\"items\":", f);
	for (int i = 0; i < depth; i++)
		fprintf(f, "{\"type\":\"record\",\"name\":\"R%d\",\"fields\":[{\"name\":\"f\",\"type\":", i);
	fputs("\"boolean\"", f);
	for (int i = 0; i < depth; i++)
		fputs("}]}", f);
	fputs("}", f);
	ck_assert_int_eq(fclose(f), 0);
	return decode_rows(w, 2000, 1, err, err_size);
}

/* 20 records around each byte are decoded; 40 (41 ops a byte) exceed the
 * work bound, which dead-letters the message instead of running it. */
START_TEST(work_per_message_bounded)
{
	char err[QS_DECODE_ERRSTR_SIZE] = "";
	ck_assert_msg(decode_nested(20, err, sizeof(err)) == QS_OK, "%s", err);
	ck_assert_int_eq(decode_nested(40, err, sizeof(err)), QS_REJECT);
	ck_assert_msg(strstr(err, "writer schema 11 costs more than 32 steps per byte to decode") != NULL, "%s", err);
}
END_TEST

/* ---- suite ------------------------------------------------------------------- */

static void load_cases(void)
{
	json_error_t jerr;
	json_t *root = json_load_file(AVRO_DIR "/cases.json", 0, &jerr);
	if (!root) {
		fprintf(stderr, "%s/cases.json: %s\n", AVRO_DIR, jerr.text);
		abort();
	}
	cases = json_incref(json_object_get(root, "cases"));
	json_decref(root);
	ok_rows = json_array();
	bad_rows = json_array();
	size_t i;
	json_t *row;
	json_array_foreach(cases, i, row)
	{
		const char *expect = json_string_value(json_object_get(row, "expect"));
		json_array_append(strcmp(expect, "ok") == 0 ? ok_rows : bad_rows, row);
	}
}

Suite *decode_suite(void)
{
	load_cases();
	Suite *s = suite_create("decode");

	TCase *tc = tcase_create("fixtures");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_loop_test(tc, valid_message, 0, (int)json_array_size(ok_rows));
	tcase_add_loop_test(tc, rejected_message, 0, (int)json_array_size(bad_rows));
	tcase_add_test(tc, wrong_topic_number);
	suite_add_tcase(s, tc);

	tc = tcase_create("hostile");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, every_truncation_rejected);
	tcase_add_test(tc, random_mutations_never_crash);
	suite_add_tcase(s, tc);

	/* A corrupt plan may loop forever: the timeout turns that into a failure. */
	tc = tcase_create("named_types");
	tcase_set_timeout(tc, 10);
	tcase_add_test(tc, named_type_reused_by_sibling);
	tcase_add_test(tc, named_type_used_three_times);
	tcase_add_test(tc, named_type_reused_last);
	tcase_add_test(tc, named_type_reused_in_containers);
	tcase_add_test(tc, recursive_type_reused);
	tcase_add_test(tc, named_type_from_resolved_record);
	suite_add_tcase(s, tc);

	/* The old decoder took seconds over wide_null_records_cost_little. */
	tc = tcase_create("cost");
	tcase_set_timeout(tc, 4);
	tcase_add_test(tc, wide_null_records_cost_little);
	tcase_add_test(tc, work_per_message_bounded);
	suite_add_tcase(s, tc);

	tc = tcase_create("registry");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, registry_new_arguments);
	tcase_add_test(tc, registry_dir_lookup);
	tcase_add_test(tc, registry_dir_id_for);
	tcase_add_test(tc, http_unreachable_is_retry);
	tcase_add_test(tc, http_registry);
	suite_add_tcase(s, tc);
	return s;
}
