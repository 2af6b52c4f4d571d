/*
 * decode_plan.c: the writer-to-reader plans that decode.c runs on each
 * message (decode_readers_new, decode_plan_compile, decode_plan_run).
 *
 * For each (writer schema id, topic) the writer schema, parsed with Avro C, is
 * resolved once against the topic's embedded reader schema following the Avro
 * specification's resolution rules, and compiled into a plan: a tree of ops
 * in one array, one op per writer value, each either storing into a slot of
 * struct qs_event or skipping. A writer-only record is compiled once; each
 * further use of its name is a REF op pointing at it, so the plan is a tree
 * plus REF edges (which make recursive types work), and plan_check verifies
 * exactly that after every compilation. Incompatibilities become FAIL ops,
 * raised when a message reaches them (so a writer union branch the reader
 * lacks rejects only the messages that use it, as in the Java implementation).
 *
 * Running a plan is allocation-free and trusts no byte: varints are bounded,
 * every length is checked against the bytes left before use, union and enum
 * indexes are range-checked, nesting depth is bounded. Avro C is used for
 * schema parsing only: its datum readers trust length prefixes. Avro C keeps
 * neither field defaults nor logical types, so reader defaults are read from
 * the reader schema's JSON with jansson.
 *
 * Like the rest of the decoder, compiling returns NULL when memory runs out
 * instead of aborting (xalloc.h): decode_message makes that a retry.
 */
#include "decode_plan.h"

#include <avro/errors.h>
#include <avro/schema.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "compiler.h"
#include "decode.h"
#include "embedded.h"
#include "errstr.h"

#define MAX_DEPTH 64         /* nesting of records, unions, arrays and maps in a message */
#define MAX_SCHEMA_DEPTH 256 /* nesting of types in a writer schema */
#define NONE UINT32_MAX      /* no op */
/* Ops a message may run per byte of message and op of plan. Compiling drops
 * zero-byte ops from writer-only records, so every op run under a skipped
 * value reads a byte or encloses ops that do, and only records nested deep
 * inside an array or map reach this ratio. */
#define WORK_PER_BYTE 32

/* ---- reader side: where each reader field lands in struct qs_event ---- */

/* How a value is stored in its slot, and what null is there. */
enum store {
	ST_SKIP, /* not stored */
	ST_ID,   /* char[QS_ID_MAX] identifier; null is "" */
	ST_I32,  /* int32_t; null is QS_NO_DATE / QS_NO_INT */
	ST_I64,  /* int64_t; null is QS_NO_TS */
	ST_BOOL, /* bool */
	ST_ENUM, /* an int-sized C enum whose values are the reader's symbol indexes; null is -1 */
};

enum target_kind {
	T_LEAF,     /* a scalar reader field */
	T_RECORD,   /* a reader record: `sub` are its fields, in reader order */
	T_BRANCHES, /* a reader union of records: `sub` its branches in order; the branch index is stored */
};

/* One reader field (or record) and its slot. Checked against the reader
 * schema at decode_new, so the tables below and schemas/ cannot drift. */
struct target {
	const char *name;
	enum target_kind kind;
	enum store store;
	size_t offset;
	const struct target *sub;
	size_t nsub;
	const char *const *symbols; /* ST_ENUM leaves: reader symbols = C enum values 0.. */
	size_t nsymbols;
};

#define OFF(member) offsetof(struct qs_event, member)
/* Left as written: clang-format would spread each of these one-line initializers over four lines. */
/* clang-format off */
#define LEAF(name, store, member) {name, T_LEAF, store, OFF(member), NULL, 0, NULL, 0}
#define ENUM(name, member, syms) {name, T_LEAF, ST_ENUM, OFF(member), NULL, 0, syms, ARRAY_LEN(syms)}
#define RECORD(name, fields) {name, T_RECORD, ST_SKIP, 0, fields, ARRAY_LEN(fields), NULL, 0}
/* clang-format on */

_Static_assert(sizeof(enum qs_source) == sizeof(int) && sizeof(enum qs_frequency) == sizeof(int) &&
		       sizeof(enum qs_status) == sizeof(int) && sizeof(enum qs_presentation) == sizeof(int) &&
		       sizeof(enum qs_method) == sizeof(int) && sizeof(enum qs_outcome) == sizeof(int) &&
		       sizeof(enum qs_care_plan_type) == sizeof(int) && sizeof(enum qs_member_body) == sizeof(int),
	       "ST_ENUM stores an int");

static const char *const source_symbols[] = {"MEDICARE", "MEDICAID"};
const char *const decode_frequency_symbols[] = {"ORIGINAL", "REPLACEMENT", "VOID"};
static const char *const status_symbols[] = {"ACTIVE", "VOID"};
static const char *const presentation_symbols[] = {"VERTEX", "BREECH", "TRANSVERSE", "OTHER"};
static const char *const method_symbols[] = {"VAGINAL", "CESAREAN"};
static const char *const outcome_symbols[] = {"SUCCESS", "UNABLE_TO_REACH", "NOT_ATTEMPTED"};
static const char *const care_plan_type_symbols[] = {"INITIAL", "REVISED"};

static const struct target encounter_fields[] = {
	LEAF("encounter_id", ST_ID, u.encounter.encounter_id),
	LEAF("original_encounter_id", ST_ID, u.encounter.original_encounter_id),
	LEAF("plan_id", ST_ID, u.encounter.plan_id),
	LEAF("member_id", ST_ID, u.encounter.member_id),
	ENUM("source", u.encounter.source, source_symbols),
	ENUM("frequency", u.encounter.frequency, decode_frequency_symbols),
	LEAF("service_from", ST_I32, u.encounter.service_from),
	LEAF("service_to", ST_I32, u.encounter.service_to),
	LEAF("adjudicated_at", ST_I64, u.encounter.adjudicated_at),
	LEAF("submitted_at", ST_I64, u.encounter.submitted_at),
	LEAF("ed_visit", ST_BOOL, u.encounter.ed_visit),
};

static const struct target delivery_fields[] = {
	LEAF("delivery_id", ST_ID, u.delivery.delivery_id),
	LEAF("plan_id", ST_ID, u.delivery.plan_id),
	LEAF("hospital_id", ST_ID, u.delivery.hospital_id),
	LEAF("member_id", ST_ID, u.delivery.member_id),
	LEAF("delivery_date", ST_I32, u.delivery.delivery_date),
	LEAF("parity", ST_I32, u.delivery.parity),
	LEAF("gestational_age_weeks", ST_I32, u.delivery.gestational_age_weeks),
	LEAF("plurality", ST_I32, u.delivery.plurality),
	ENUM("presentation", u.delivery.presentation, presentation_symbols),
	ENUM("method", u.delivery.method, method_symbols),
	LEAF("live_birth", ST_BOOL, u.delivery.live_birth),
	ENUM("status", u.delivery.status, status_symbols),
};

static const struct target enrollment_fields[] = {
	LEAF("month", ST_I32, u.member.u.enrollment.month),
	LEAF("smi_sud", ST_BOOL, u.member.u.enrollment.smi_sud),
};
static const struct target bh_coordination_fields[] = {
	LEAF("event_date", ST_I32, u.member.u.bh_coordination.event_date),
	LEAF("receives_smhs", ST_BOOL, u.member.u.bh_coordination.receives_smhs),
	ENUM("county_provider_outcome", u.member.u.bh_coordination.county_provider_outcome, outcome_symbols),
	ENUM("member_outcome", u.member.u.bh_coordination.member_outcome, outcome_symbols),
};
static const struct target care_plan_fields[] = {
	LEAF("care_plan_id", ST_ID, u.member.u.care_plan.care_plan_id),
	ENUM("plan_type", u.member.u.care_plan.plan_type, care_plan_type_symbols),
	LEAF("completed_on", ST_I32, u.member.u.care_plan.completed_on),
	LEAF("care_goals_documented", ST_BOOL, u.member.u.care_plan.care_goals_documented),
};
static const struct target coordinator_assigned_fields[] = {
	LEAF("month", ST_I32, u.member.u.coordinator_assigned.month),
};
static const struct target care_team_contact_fields[] = {
	LEAF("contact_date", ST_I32, u.member.u.care_team_contact.contact_date),
};

/* In enum qs_member_body order. */
static const struct target member_bodies[] = {
	RECORD("Enrollment", enrollment_fields),
	RECORD("BhCoordination", bh_coordination_fields),
	RECORD("CarePlan", care_plan_fields),
	RECORD("CoordinatorAssigned", coordinator_assigned_fields),
	RECORD("CareTeamContact", care_team_contact_fields),
};

static const struct target member_fields[] = {
	LEAF("event_id", ST_ID, u.member.event_id),
	LEAF("plan_id", ST_ID, u.member.plan_id),
	LEAF("member_id", ST_ID, u.member.member_id),
	ENUM("status", u.member.status, status_symbols),
	{"body", T_BRANCHES, ST_ENUM, OFF(u.member.body), member_bodies, ARRAY_LEN(member_bodies), NULL, 0},
};

static const struct target roots[QS_TOPIC_COUNT] = {
	[QS_TOPIC_ENCOUNTERS] = RECORD("Encounter", encounter_fields),
	[QS_TOPIC_DELIVERIES] = RECORD("Delivery", delivery_fields),
	[QS_TOPIC_MEMBER_EVENTS] = RECORD("MemberEvent", member_fields),
};

static const char *const reader_files[QS_TOPIC_COUNT] = {
	[QS_TOPIC_ENCOUNTERS] = "encounter.avsc",
	[QS_TOPIC_DELIVERIES] = "delivery.avsc",
	[QS_TOPIC_MEMBER_EVENTS] = "member_event.avsc",
};

/* ---- plans ------------------------------------------------------------ */

enum op_kind {
	OP_NULL,   /* reads nothing; stores null */
	OP_BOOL,   /* one byte, 0 or 1 */
	OP_INT,    /* varint in int range (stored as int32, or int64 when promoted) */
	OP_LONG,   /* varint */
	OP_FLOAT,  /* 4 bytes, skipped */
	OP_DOUBLE, /* 8 bytes, skipped */
	OP_BYTES,  /* length + bytes (string or bytes) */
	OP_FIXED,  /* `value` bytes, skipped */
	OP_ENUM,   /* varint index < count, mapped to the reader's index by `map` */
	OP_UNION,  /* varint index < count; runs the index-th op of the `child` list */
	OP_RECORD, /* runs the `child` list in order */
	OP_ARRAY,  /* blocks of `child` items, skipped (readers have no arrays) */
	OP_MAP,    /* blocks of string keys and `child` values, skipped */
	OP_REF,    /* runs the RECORD op `child`: a further use of a named writer record */
	OP_SET,    /* reads nothing; stores `value` or `text` (reader defaults, union branch) */
	OP_FAIL,   /* reads nothing; rejects the message with `text` */
};

struct op {
	enum op_kind kind;
	enum store store;
	uint32_t offset;     /* of the slot in struct qs_event */
	uint32_t child;      /* first of the RECORD fields, UNION branches, ARRAY item, MAP value; REF target */
	uint32_t next;       /* next op of the parent's child list; an op is in at most one list */
	uint32_t count;      /* ops in the child list (RECORD, UNION, ARRAY, MAP); ENUM writer symbols */
	int64_t value;       /* SET constant, FIXED size */
	bool empty;          /* always encoded in zero bytes (null, empty record) */
	const char *field;   /* writer field name for reasons; borrowed from the writer schema or a literal */
	avro_schema_t wenum; /* ENUM: the writer enum, for symbol names; borrowed from plan->writer */
	int32_t *map;        /* ENUM with a store: reader index per writer symbol, -1 if unknown; owned */
	char *text;          /* SET string, FAIL reason; owned */
};

/* A writer record already compiled for skipping (or being compiled): later
 * uses become REF ops to it, which also ends the recursion of recursive types. */
struct memo {
	avro_schema_t schema;
	uint32_t op;
};

struct plan {
	int32_t id;
	enum qs_topic topic;
	avro_schema_t writer; /* owned reference, or NULL when it did not parse */
	struct op *ops;
	uint32_t nops;
	uint32_t cap;
	uint32_t root;
	struct memo *memo; /* only while compiling */
	size_t nmemo;
	size_t memo_cap;
};

struct reader {
	avro_schema_t schema;
	json_t *json;
};

struct readers {
	struct reader topic[QS_TOPIC_COUNT];
};

static avro_schema_t deref(avro_schema_t s)
{
	while (s && is_avro_link(s))
		s = avro_schema_link_target(s);
	return s;
}

static bool is_named(avro_schema_t s)
{
	return is_avro_record(s) || is_avro_enum(s) || is_avro_fixed(s);
}

/* "ns.Name" or "Name" of a named schema, into buf. */
static const char *full_name(avro_schema_t s, char *buf, size_t size)
{
	const char *space = avro_schema_namespace(s);
	if (space && space[0])
		snprintf(buf, size, "%s.%s", space, avro_schema_name(s));
	else
		snprintf(buf, size, "%s", avro_schema_name(s));
	return buf;
}

/* A short description of a type for reasons: "int", "enum ns.E", "union [null, int]". */
static const char *describe(avro_schema_t s, char *buf, size_t size)
{
	char name[256];
	s = deref(s);
	if (is_avro_union(s)) {
		size_t used = (size_t)snprintf(buf, size, "union [");
		size_t n = avro_schema_union_size(s);
		for (size_t i = 0; i < n && used < size; i++) {
			avro_schema_t b = deref(avro_schema_union_branch(s, (int)i));
			const char *bn = is_named(b) ? full_name(b, name, sizeof(name)) : avro_schema_type_name(b);
			used += (size_t)snprintf(buf + used, size - used, "%s%s", i ? ", " : "", bn);
		}
		if (used < size)
			snprintf(buf + used, size - used, "]");
	} else if (is_named(s)) {
		const char *kind = is_avro_record(s) ? "record" : is_avro_enum(s) ? "enum" : "fixed";
		snprintf(buf, size, "%s %s", kind, full_name(s, name, sizeof(name)));
	} else {
		snprintf(buf, size, "%s", avro_schema_type_name(s));
	}
	return buf;
}

static uint32_t new_op(struct plan *p, enum op_kind kind, const char *field)
{
	if (p->nops == p->cap) {
		uint32_t cap = p->cap ? p->cap * 2 : 32;
		struct op *ops = realloc(p->ops, cap * sizeof(*ops));
		if (!ops)
			return NONE;
		p->ops = ops;
		p->cap = cap;
	}
	struct op *op = &p->ops[p->nops];
	*op = (struct op){.kind = kind, .store = ST_SKIP, .child = NONE, .next = NONE, .field = field};
	op->empty = kind == OP_NULL || kind == OP_SET;
	return p->nops++;
}

/* An op storing into target `t`'s slot (t may be NULL: skip). */
static uint32_t new_store_op(struct plan *p, enum op_kind kind, const char *field, const struct target *t)
{
	uint32_t i = new_op(p, kind, field);
	if (i != NONE && t) {
		p->ops[i].store = t->store;
		p->ops[i].offset = (uint32_t)t->offset;
	}
	return i;
}

/* A FAIL op: messages reaching it are rejected with "incompatible writer
 * schema <id>: <reason>". */
QS_PRINTF(3, 4) static uint32_t fail_op(struct plan *p, const char *field, const char *fmt, ...)
{
	char reason[QS_DECODE_ERRSTR_SIZE];
	va_list ap;
	va_start(ap, fmt);
	errstr_vset(reason, sizeof(reason), fmt, ap);
	va_end(ap);

	uint32_t i = new_op(p, OP_FAIL, field);
	if (i == NONE)
		return NONE;
	size_t len = strlen(reason) + 64;
	char *text = malloc(len);
	if (!text)
		return NONE;
	snprintf(text, len, "incompatible writer schema %" PRId32 ": %s", p->id, reason);
	p->ops[i].text = text;
	return i;
}

/* Appends op `i` to the child list of op `parent`, whose last op is *last,
 * counting it in the parent's `count` (which plan_check holds the list to). */
static void append(struct plan *p, uint32_t parent, uint32_t *last, uint32_t i)
{
	if (p->ops[parent].child == NONE)
		p->ops[parent].child = i;
	else
		p->ops[*last].next = i;
	*last = i;
	p->ops[parent].count++;
}

/* ---- compiling: skipping writer-only values --------------------------- */

static uint32_t compile_skip(struct plan *p, avro_schema_t w, const char *field, int depth)
{
	w = deref(w);
	if (depth > MAX_SCHEMA_DEPTH)
		return fail_op(p, field, "types nested deeper than %d", MAX_SCHEMA_DEPTH);

	switch (avro_typeof(w)) {
	case AVRO_NULL:
		return new_op(p, OP_NULL, field);
	case AVRO_BOOLEAN:
		return new_op(p, OP_BOOL, field);
	case AVRO_INT32:
		return new_op(p, OP_INT, field);
	case AVRO_INT64:
		return new_op(p, OP_LONG, field);
	case AVRO_FLOAT:
		return new_op(p, OP_FLOAT, field);
	case AVRO_DOUBLE:
		return new_op(p, OP_DOUBLE, field);
	case AVRO_STRING:
	case AVRO_BYTES:
		return new_op(p, OP_BYTES, field);
	case AVRO_FIXED: {
		int64_t size = avro_schema_fixed_size(w);
		if (size < 0)
			return fail_op(p, field, "fixed %s has a negative size", avro_schema_name(w));
		uint32_t i = new_op(p, OP_FIXED, field);
		if (i != NONE) {
			p->ops[i].value = size;
			p->ops[i].empty = size == 0;
		}
		return i;
	}
	case AVRO_ENUM: {
		uint32_t i = new_op(p, OP_ENUM, field);
		if (i != NONE)
			p->ops[i].count = (uint32_t)avro_schema_enum_number_of_symbols(w);
		return i;
	}
	case AVRO_UNION: {
		uint32_t u = new_op(p, OP_UNION, field), last = NONE;
		size_t n = avro_schema_union_size(w);
		if (u == NONE)
			return NONE;
		for (size_t b = 0; b < n; b++) {
			uint32_t c = compile_skip(p, avro_schema_union_branch(w, (int)b), field, depth + 1);
			if (c == NONE)
				return NONE;
			append(p, u, &last, c);
		}
		return u;
	}
	case AVRO_ARRAY:
	case AVRO_MAP: {
		bool array = is_avro_array(w);
		uint32_t a = new_op(p, array ? OP_ARRAY : OP_MAP, field), last = NONE;
		if (a == NONE)
			return NONE;
		uint32_t c = compile_skip(p, array ? avro_schema_array_items(w) : avro_schema_map_values(w), field,
					  depth + 1);
		if (c == NONE)
			return NONE;
		append(p, a, &last, c);
		return a;
	}
	case AVRO_RECORD: {
		/* Not the record op itself: it is already a member of its first
		 * use's list, and `next` can link it into one list only. */
		for (size_t m = 0; m < p->nmemo; m++) {
			if (p->memo[m].schema != w)
				continue;
			uint32_t ref = new_op(p, OP_REF, field);
			if (ref != NONE) {
				p->ops[ref].child = p->memo[m].op;
				/* A record still being compiled (a recursive use)
				 * counts as not empty: it never is. */
				p->ops[ref].empty = p->ops[p->memo[m].op].empty;
			}
			return ref;
		}
		uint32_t r = new_op(p, OP_RECORD, field), last = NONE;
		if (r == NONE)
			return NONE;
		if (p->nmemo == p->memo_cap) {
			size_t cap = p->memo_cap ? p->memo_cap * 2 : 8;
			struct memo *memo = realloc(p->memo, cap * sizeof(*memo));
			if (!memo)
				return NONE;
			p->memo = memo;
			p->memo_cap = cap;
		}
		p->memo[p->nmemo++] = (struct memo){w, r};
		bool empty = true;
		size_t n = avro_schema_record_size(w);
		for (size_t f = 0; f < n; f++) {
			uint32_t c = compile_skip(p, avro_schema_record_field_get_by_index(w, (int)f),
						  avro_schema_record_field_name(w, (int)f), depth + 1);
			if (c == NONE)
				return NONE;
			if (!p->ops[c].empty) {
				empty = false;
				append(p, r, &last, c);
				continue;
			}
			/* Skipping a value of zero bytes is nothing to do: left out,
			 * so that a wide record of nulls costs no work per item. A
			 * leaf just made is taken back; a record stays, unlisted,
			 * for the REFs to it. */
			if (c == p->nops - 1 && (p->ops[c].kind == OP_NULL || p->ops[c].kind == OP_FIXED))
				p->nops--;
		}
		p->ops[r].empty = empty;
		return r;
	}
	default:
		return fail_op(p, field, "unsupported writer type %s", avro_schema_type_name(w));
	}
}

/* ---- compiling: resolving writer against reader ------------------------ */

static uint32_t compile(struct plan *p, avro_schema_t w, avro_schema_t r, json_t *rjson, const struct target *t,
			const char *field, int depth);

/* Writer type `w` can be read as reader type `r` without a union in between:
 * same type (and unqualified name) or an Avro promotion. */
static bool matches(avro_schema_t w, avro_schema_t r, bool promote)
{
	w = deref(w);
	r = deref(r);
	avro_type_t wt = avro_typeof(w), rt = avro_typeof(r);
	if (wt == rt)
		return !is_named(w) || strcmp(avro_schema_name(w), avro_schema_name(r)) == 0;
	if (!promote)
		return false;
	switch (wt) {
	case AVRO_INT32:
		return rt == AVRO_INT64 || rt == AVRO_FLOAT || rt == AVRO_DOUBLE;
	case AVRO_INT64:
		return rt == AVRO_FLOAT || rt == AVRO_DOUBLE;
	case AVRO_FLOAT:
		return rt == AVRO_DOUBLE;
	case AVRO_STRING:
		return rt == AVRO_BYTES;
	case AVRO_BYTES:
		return rt == AVRO_STRING;
	default:
		return false;
	}
}

/* The reader JSON of a record type, if written inline (a name reference
 * carries no field defaults). */
static json_t *record_json(json_t *j)
{
	return json_is_array(json_object_get(j, "fields")) ? j : NULL;
}

/* The JSON type of reader field `i` of record JSON `rjson` (NULL if unknown). */
static json_t *field_json(json_t *rjson, size_t i)
{
	return json_array_get(json_object_get(rjson, "fields"), i);
}

/*
 * An op giving reader field `name` (type `r`, JSON `fjson`, target `t`) its
 * default. Returns NONE on ENOMEM; sets *missing when there is no default.
 */
static uint32_t default_op(struct plan *p, avro_schema_t r, json_t *fjson, const struct target *t, const char *name,
			   bool *missing)
{
	json_t *def = json_object_get(fjson, "default");
	*missing = def == NULL;
	if (!def)
		return NONE;
	r = deref(r);
	if (is_avro_union(r)) /* a union's default is of its first branch */
		r = deref(avro_schema_union_branch(r, 0));

	uint32_t i;
	switch (avro_typeof(r)) {
	case AVRO_NULL:
		if (!json_is_null(def))
			break;
		return new_store_op(p, OP_NULL, name, t);
	case AVRO_BOOLEAN:
		if (!json_is_boolean(def))
			break;
		i = new_store_op(p, OP_SET, name, t);
		if (i != NONE)
			p->ops[i].value = json_is_true(def);
		return i;
	case AVRO_INT32:
	case AVRO_INT64:
		if (!json_is_integer(def) ||
		    (is_avro_int32(r) && (json_integer_value(def) < INT32_MIN || json_integer_value(def) > INT32_MAX)))
			break;
		i = new_store_op(p, OP_SET, name, t);
		if (i != NONE)
			p->ops[i].value = json_integer_value(def);
		return i;
	case AVRO_STRING: {
		const char *s = json_string_value(def);
		if (!s || !s[0] || strlen(s) >= QS_ID_MAX)
			break;
		i = new_store_op(p, OP_SET, name, t);
		if (i != NONE && !(p->ops[i].text = strdup(s)))
			return NONE;
		return i;
	}
	case AVRO_ENUM: {
		int sym = json_is_string(def) ? avro_schema_enum_get_by_name(r, json_string_value(def)) : -1;
		if (sym < 0)
			break;
		i = new_store_op(p, OP_SET, name, t);
		if (i != NONE)
			p->ops[i].value = sym;
		return i;
	}
	default:
		break;
	}
	return fail_op(p, name, "the reader's default for this field is not supported");
}

/*
 * Writer record `w` read as reader record `r` (JSON `rjson`, target `t`).
 * When `branches` is not NULL the record is branch `branch` of that reader
 * union, whose index is stored first.
 */
static uint32_t compile_record(struct plan *p, avro_schema_t w, avro_schema_t r, json_t *rjson, const struct target *t,
			       const struct target *branches, int branch, const char *field, int depth)
{
	char wname[256], rname[256];
	bool *seen = NULL;
	uint32_t rec = NONE, last = NONE;

	if (strcmp(avro_schema_name(w), avro_schema_name(r)) != 0)
		return fail_op(p, field, "record %s cannot be read as record %s", full_name(w, wname, sizeof(wname)),
			       full_name(r, rname, sizeof(rname)));
	size_t nw = avro_schema_record_size(w), nr = avro_schema_record_size(r);
	seen = calloc(nr + 1, sizeof(*seen));
	rec = new_op(p, OP_RECORD, field);
	if (!seen || rec == NONE)
		goto nomem;
	if (branches) {
		uint32_t s = new_store_op(p, OP_SET, field, branches);
		if (s == NONE)
			goto nomem;
		p->ops[s].value = branch;
		append(p, rec, &last, s);
	}
	for (size_t f = 0; f < nw; f++) {
		const char *name = avro_schema_record_field_name(w, (int)f);
		avro_schema_t wf = avro_schema_record_field_get_by_index(w, (int)f);
		int j = avro_schema_record_field_get_index(r, name);
		uint32_t c;
		if (j >= 0 && !seen[j]) {
			seen[j] = true;
			json_t *fj = field_json(rjson, (size_t)j);
			c = compile(p, wf, avro_schema_record_field_get_by_index(r, j), json_object_get(fj, "type"),
				    &t->sub[j], name, depth + 1);
		} else {
			c = compile_skip(p, wf, name, depth + 1);
		}
		if (c == NONE)
			goto nomem;
		append(p, rec, &last, c);
	}
	for (size_t j = 0; j < nr; j++) {
		if (seen[j])
			continue;
		const char *name = avro_schema_record_field_name(r, (int)j);
		bool missing;
		uint32_t c = default_op(p, avro_schema_record_field_get_by_index(r, (int)j), field_json(rjson, j),
					&t->sub[j], name, &missing);
		if (missing) {
			free(seen);
			return fail_op(p, field, "record %s lacks field %s, which has no default",
				       full_name(w, wname, sizeof(wname)), name);
		}
		if (c == NONE)
			goto nomem;
		append(p, rec, &last, c);
	}
	free(seen);
	bool empty = true;
	for (uint32_t c = p->ops[rec].child; c != NONE; c = p->ops[c].next)
		empty = empty && p->ops[c].empty;
	p->ops[rec].empty = empty;
	return rec;
nomem:
	free(seen);
	return NONE;
}

/* Non-union writer `w` read as the reader union of records `r` (target t). */
static uint32_t compile_branch(struct plan *p, avro_schema_t w, avro_schema_t r, json_t *rjson, const struct target *t,
			       const char *field, int depth)
{
	char wdesc[256], rdesc[512];
	if (is_avro_record(w)) {
		size_t n = avro_schema_union_size(r);
		for (size_t b = 0; b < n; b++) {
			avro_schema_t rb = deref(avro_schema_union_branch(r, (int)b));
			if (is_avro_record(rb) && strcmp(avro_schema_name(rb), avro_schema_name(w)) == 0)
				return compile_record(p, w, rb, record_json(json_array_get(rjson, b)), &t->sub[b], t,
						      (int)b, field, depth + 1);
		}
	}
	return fail_op(p, field, "writer %s matches no branch of the reader's %s", describe(w, wdesc, sizeof(wdesc)),
		       describe(r, rdesc, sizeof(rdesc)));
}

/* Writer enum `w` read as reader enum `r`: symbols mapped by name. */
static uint32_t compile_enum(struct plan *p, avro_schema_t w, avro_schema_t r, const struct target *t,
			     const char *field)
{
	int n = avro_schema_enum_number_of_symbols(w);
	uint32_t i = new_store_op(p, OP_ENUM, field, t);
	if (i == NONE)
		return NONE;
	int32_t *map = malloc(((size_t)n + 1) * sizeof(*map));
	if (!map)
		return NONE;
	for (int s = 0; s < n; s++)
		map[s] = avro_schema_enum_get_by_name(r, avro_schema_enum_get(w, s));
	p->ops[i].map = map;
	p->ops[i].count = (uint32_t)n;
	p->ops[i].wenum = w;
	return i;
}

/*
 * Writer type `w` read as reader type `r` (JSON `rjson`) into target `t`.
 * Returns the op, NONE only on ENOMEM.
 */
static uint32_t compile(struct plan *p, avro_schema_t w, avro_schema_t r, json_t *rjson, const struct target *t,
			const char *field, int depth)
{
	char wdesc[256], rdesc[512];
	w = deref(w);
	r = deref(r);
	if (depth > MAX_SCHEMA_DEPTH)
		return fail_op(p, field, "types nested deeper than %d", MAX_SCHEMA_DEPTH);

	if (is_avro_union(w)) {
		/* Resolved per writer branch: a branch the reader cannot take
		 * fails only the messages that use it. */
		uint32_t u = new_op(p, OP_UNION, field), last = NONE;
		size_t n = avro_schema_union_size(w);
		if (u == NONE)
			return NONE;
		for (size_t b = 0; b < n; b++) {
			uint32_t c = compile(p, avro_schema_union_branch(w, (int)b), r, rjson, t, field, depth + 1);
			if (c == NONE)
				return NONE;
			append(p, u, &last, c);
		}
		return u;
	}
	if (is_avro_union(r)) {
		if (t->kind == T_BRANCHES)
			return compile_branch(p, w, r, rjson, t, field, depth);
		/* The first reader branch the writer type matches, preferring
		 * an exact match to a promotion. */
		size_t n = avro_schema_union_size(r);
		for (int promote = 0; promote < 2; promote++) {
			for (size_t b = 0; b < n; b++) {
				avro_schema_t rb = avro_schema_union_branch(r, (int)b);
				if (matches(w, rb, promote))
					return compile(p, w, rb, json_array_get(rjson, b), t, field, depth + 1);
			}
		}
		goto mismatch;
	}

	switch (avro_typeof(r)) {
	case AVRO_NULL:
		if (is_avro_null(w))
			return new_store_op(p, OP_NULL, field, t);
		break;
	case AVRO_BOOLEAN:
		if (is_avro_boolean(w))
			return new_store_op(p, OP_BOOL, field, t);
		break;
	case AVRO_INT32:
		if (is_avro_int32(w))
			return new_store_op(p, OP_INT, field, t);
		break;
	case AVRO_INT64:
		if (is_avro_int32(w) || is_avro_int64(w))
			return new_store_op(p, is_avro_int32(w) ? OP_INT : OP_LONG, field, t);
		break;
	case AVRO_STRING:
		if (is_avro_string(w) || is_avro_bytes(w))
			return new_store_op(p, OP_BYTES, field, t);
		break;
	case AVRO_ENUM:
		if (matches(w, r, false))
			return compile_enum(p, w, r, t, field);
		break;
	case AVRO_RECORD:
		if (is_avro_record(w))
			return compile_record(p, w, r, record_json(rjson), t, NULL, 0, field, depth);
		break;
	default:
		/* The reader schemas use no other types (checked at decode_new). */
		break;
	}
mismatch:
	return fail_op(p, field, "writer type %s cannot be read as reader type %s", describe(w, wdesc, sizeof(wdesc)),
		       describe(r, rdesc, sizeof(rdesc)));
}

void decode_plan_free(struct plan *p)
{
	if (!p)
		return;
	for (uint32_t i = 0; i < p->nops; i++) {
		free(p->ops[i].map);
		free(p->ops[i].text);
	}
	free(p->ops);
	free(p->memo);
	if (p->writer)
		avro_schema_decref(p->writer);
	free(p);
}

/* Bytes a slot of `store` takes in struct qs_event. */
static size_t store_width(enum store store)
{
	switch (store) {
	case ST_ID:
		return QS_ID_MAX;
	case ST_I32:
		return sizeof(int32_t);
	case ST_I64:
		return sizeof(int64_t);
	case ST_BOOL:
		return sizeof(bool);
	case ST_ENUM:
		return sizeof(int);
	default:
		return 0;
	}
}

/* How many ops the child list of `op` must hold: as many as were appended. */
static int64_t list_length(const struct op *op)
{
	switch (op->kind) {
	case OP_RECORD:
	case OP_UNION:
		return op->count;
	case OP_ARRAY:
	case OP_MAP:
		return 1;
	default:
		return 0; /* REF's child is an edge, not a list; leaves have none */
	}
}

/*
 * Whether plan `p` is what running it assumes: indexes in range, every child
 * list ending (no op in two lists, which is what a shared `next` would do),
 * as long as the ops appended to it, ARRAY and MAP lists of one op, REF
 * targets RECORD ops, slots inside struct qs_event, and the lists forming a
 * forest (no cycle through them; REF edges may cycle: recursion). False with
 * the first defect in why; *nomem when memory ran out checking.
 */
static bool plan_check(const struct plan *p, bool *nomem, char *why, size_t why_size)
{
	uint32_t n = p->nops;
	uint8_t *member = calloc(n ? n : 1, 1);  /* in some list */
	uint8_t *reached = calloc(n ? n : 1, 1); /* from a list-less op through lists */
	uint32_t *stack = malloc((n ? n : 1) * sizeof(*stack));
	bool ok = false;
	*nomem = !member || !reached || !stack;
	if (*nomem)
		goto out;
	if (p->root >= n) {
		errstr_set(why, why_size, "root op %" PRIu32 " out of range", p->root);
		goto out;
	}
	for (uint32_t i = 0; i < n; i++) {
		const struct op *op = &p->ops[i];
		if ((op->child != NONE && op->child >= n) || (op->next != NONE && op->next >= n)) {
			errstr_set(why, why_size, "op %" PRIu32 " links outside the plan", i);
			goto out;
		}
		if (op->store != ST_SKIP && op->offset + store_width(op->store) > sizeof(struct qs_event)) {
			errstr_set(why, why_size, "op %" PRIu32 " stores outside the event", i);
			goto out;
		}
		if ((op->kind == OP_FAIL && !op->text) || (op->kind == OP_SET && op->store == ST_ID && !op->text) ||
		    (op->kind == OP_FIXED && op->value < 0) ||
		    (op->kind == OP_ENUM && op->store != ST_SKIP && !op->map) ||
		    (op->kind == OP_ENUM && op->wenum &&
		     op->count != (uint32_t)avro_schema_enum_number_of_symbols(op->wenum))) {
			errstr_set(why, why_size, "op %" PRIu32 " is incomplete", i);
			goto out;
		}
		if (op->kind == OP_REF) {
			if (op->child == NONE || p->ops[op->child].kind != OP_RECORD) {
				errstr_set(why, why_size, "REF op %" PRIu32 " does not point at a record", i);
				goto out;
			}
			continue;
		}
		int64_t want = list_length(op), len = 0;
		for (uint32_t c = op->child; c != NONE; c = p->ops[c].next, len++) {
			/* Stops every walk: a list that ran into another, or into
			 * itself, meets an op a second time here. */
			if (member[c]++) {
				errstr_set(why, why_size, "op %" PRIu32 " is in two lists (or a list loops)", c);
				goto out;
			}
		}
		if (len != want) {
			errstr_set(why, why_size, "op %" PRIu32 " has %" PRId64 " children, not %" PRId64, i, len,
				   want);
			goto out;
		}
	}
	if (member[p->root]) {
		errstr_set(why, why_size, "the root op is in a list");
		goto out;
	}
	/* With one list per op at most, lists form a forest unless some ops
	 * sit on a cycle of lists, which no list-less op reaches. */
	for (uint32_t i = 0; i < n; i++) {
		if (member[i])
			continue;
		size_t top = 0;
		stack[top++] = i;
		reached[i] = 1;
		while (top) {
			const struct op *op = &p->ops[stack[--top]];
			if (op->kind == OP_REF)
				continue;
			for (uint32_t c = op->child; c != NONE; c = p->ops[c].next)
				if (!reached[c]) {
					reached[c] = 1;
					stack[top++] = c;
				}
		}
	}
	for (uint32_t i = 0; i < n; i++) {
		if (!reached[i]) {
			errstr_set(why, why_size, "op %" PRIu32 " is on a cycle of lists", i);
			goto out;
		}
	}
	ok = true;
out:
	free(member);
	free(reached);
	free(stack);
	return ok;
}

/* Empties plan `p` down to one FAIL op rejecting with `reason`; false on ENOMEM. */
static bool plan_reject(struct plan *p, const char *reason)
{
	for (uint32_t i = 0; i < p->nops; i++) {
		free(p->ops[i].map);
		free(p->ops[i].text);
	}
	p->nops = 0;
	uint32_t i = new_op(p, OP_FAIL, NULL);
	if (i == NONE || !(p->ops[i].text = strdup(reason)))
		return false;
	p->root = i;
	return true;
}

struct plan *decode_plan_compile(const struct readers *readers, int32_t id, enum qs_topic topic, const char *json)
{
	struct plan *p = calloc(1, sizeof(*p));
	if (!p)
		return NULL;
	p->id = id;
	p->topic = topic;
	if (avro_schema_from_json_length(json, strlen(json), &p->writer) != 0) {
		p->writer = NULL;
		p->root = fail_op(p, NULL, "not a valid Avro schema: %s", avro_strerror());
	} else {
		const struct reader *rd = &readers->topic[topic];
		p->root = compile(p, p->writer, rd->schema, rd->json, &roots[topic], NULL, 0);
	}
	free(p->memo);
	p->memo = NULL;
	if (p->root == NONE)
		goto nomem;
	/* A malformed plan is a defect of this file; running it could loop or
	 * read out of bounds, so its messages are rejected, saying so. */
	char why[128], reason[QS_DECODE_ERRSTR_SIZE];
	bool nomem;
	if (!plan_check(p, &nomem, why, sizeof(why))) {
		if (nomem)
			goto nomem;
		errstr_set(reason, sizeof(reason),
			   "internal error: the plan compiled for writer schema %" PRId32 " is malformed (%s); "
			   "please report this schema",
			   id, why);
		if (!plan_reject(p, reason))
			goto nomem;
	}
	return p;
nomem:
	decode_plan_free(p);
	return NULL;
}

/* ---- reader schemas: checked against struct qs_event at start-up --------- */

/* Checks reader type `r` (nullable unions unwrapped) against leaf `t`. */
static int check_leaf(avro_schema_t r, const struct target *t, const char *file, char *errstr, size_t errstr_size)
{
	r = deref(r);
	if (is_avro_union(r)) {
		if (avro_schema_union_size(r) != 2 || !is_avro_null(deref(avro_schema_union_branch(r, 0))) ||
		    t->store == ST_BOOL)
			goto bad;
		r = deref(avro_schema_union_branch(r, 1));
	}
	switch (t->store) {
	case ST_ID:
		if (!is_avro_string(r))
			goto bad;
		return 0;
	case ST_I32:
		if (!is_avro_int32(r))
			goto bad;
		return 0;
	case ST_I64:
		if (!is_avro_int64(r))
			goto bad;
		return 0;
	case ST_BOOL:
		if (!is_avro_boolean(r))
			goto bad;
		return 0;
	case ST_ENUM:
		if (!is_avro_enum(r) || (size_t)avro_schema_enum_number_of_symbols(r) != t->nsymbols)
			goto bad;
		for (size_t s = 0; s < t->nsymbols; s++)
			if (strcmp(avro_schema_enum_get(r, (int)s), t->symbols[s]) != 0)
				goto bad;
		return 0;
	default:
		goto bad;
	}
bad:
	errstr_set(errstr, errstr_size, "embedded %s: field %s does not match struct qs_event", file, t->name);
	return -1;
}

/* Checks reader record `r` (JSON `rjson`) against target `t`, including that
 * every default it declares compiles. */
static int check_record(avro_schema_t r, json_t *rjson, const struct target *t, const char *file, char *errstr,
			size_t errstr_size)
{
	struct plan scratch = {.id = 0};
	int rc = -1;
	r = deref(r);
	if (!is_avro_record(r) || !rjson || strcmp(avro_schema_name(r), t->name) != 0 ||
	    avro_schema_record_size(r) != t->nsub) {
		errstr_set(errstr, errstr_size, "embedded %s: record %s does not match struct qs_event", file, t->name);
		goto out;
	}
	for (size_t j = 0; j < t->nsub; j++) {
		const struct target *f = &t->sub[j];
		avro_schema_t ft = deref(avro_schema_record_field_get_by_index(r, (int)j));
		json_t *fj = field_json(rjson, j);
		if (strcmp(avro_schema_record_field_name(r, (int)j), f->name) != 0) {
			errstr_set(errstr, errstr_size, "embedded %s: field %zu is not %s", file, j, f->name);
			goto out;
		}
		if (f->kind == T_BRANCHES) {
			if (!is_avro_union(ft) || avro_schema_union_size(ft) != f->nsub) {
				errstr_set(errstr, errstr_size, "embedded %s: field %s does not match struct qs_event",
					   file, f->name);
				goto out;
			}
			json_t *uj = json_object_get(fj, "type");
			for (size_t b = 0; b < f->nsub; b++)
				if (check_record(avro_schema_union_branch(ft, (int)b),
						 record_json(json_array_get(uj, b)), &f->sub[b], file, errstr,
						 errstr_size) != 0)
					goto out;
		} else if (check_leaf(ft, f, file, errstr, errstr_size) != 0) {
			goto out;
		}
		bool missing;
		uint32_t d = default_op(&scratch, ft, fj, f, f->name, &missing);
		if (!missing && (d == NONE || scratch.ops[d].kind == OP_FAIL)) {
			errstr_set(errstr, errstr_size, "embedded %s: the default of field %s is unusable", file,
				   f->name);
			goto out;
		}
	}
	rc = 0;
out:
	for (uint32_t i = 0; i < scratch.nops; i++) {
		free(scratch.ops[i].map);
		free(scratch.ops[i].text);
	}
	free(scratch.ops);
	return rc;
}

void decode_readers_free(struct readers *rd)
{
	if (!rd)
		return;
	for (int t = 0; t < QS_TOPIC_COUNT; t++) {
		if (rd->topic[t].schema)
			avro_schema_decref(rd->topic[t].schema);
		json_decref(rd->topic[t].json);
	}
	free(rd);
}

struct readers *decode_readers_new(char *errstr, size_t errstr_size)
{
	/* Not xcalloc: the decoder reports running out of memory to its caller. */
	struct readers *readers = calloc(1, sizeof(*readers));
	if (!readers) {
		errstr_set(errstr, errstr_size, "out of memory");
		goto fail;
	}
	for (int t = 0; t < QS_TOPIC_COUNT; t++) {
		const char *text = NULL;
		for (const struct embedded_file *f = embedded_schemas; f->name; f++)
			if (strcmp(f->name, reader_files[t]) == 0)
				text = f->text;
		if (!text) {
			errstr_set(errstr, errstr_size, "reader schema %s is not embedded", reader_files[t]);
			goto fail;
		}
		json_error_t jerr;
		struct reader *rd = &readers->topic[t];
		rd->json = json_loads(text, 0, &jerr);
		if (!rd->json) {
			errstr_set(errstr, errstr_size, "embedded %s: %s", reader_files[t], jerr.text);
			goto fail;
		}
		if (avro_schema_from_json_length(text, strlen(text), &rd->schema) != 0) {
			rd->schema = NULL;
			errstr_set(errstr, errstr_size, "embedded %s: %s", reader_files[t], avro_strerror());
			goto fail;
		}
		if (check_record(rd->schema, rd->json, &roots[t], reader_files[t], errstr, errstr_size) != 0)
			goto fail;
	}
	return readers;
fail:
	decode_readers_free(readers);
	return NULL;
}

/* ---- running a plan ----------------------------------------------------- */

struct cursor {
	const uint8_t *buf;
	size_t len;
	size_t pos;
	char *errstr;
	size_t errstr_size;
	uint64_t work; /* ops the message may still run */
};

/* Writes "field <name>: <reason>" (or just the reason) and returns -1. */
QS_PRINTF(3, 4) static int reject(struct cursor *c, const struct op *op, const char *fmt, ...)
{
	if (!c->errstr || c->errstr_size == 0)
		return -1;
	size_t n = 0;
	if (op && op->field) {
		errstr_set(c->errstr, c->errstr_size, "field %s: ", op->field);
		n = strlen(c->errstr);
	}
	va_list ap;
	va_start(ap, fmt);
	errstr_vset(c->errstr + n, c->errstr_size - n, fmt, ap);
	va_end(ap);
	return -1;
}

static size_t left(const struct cursor *c)
{
	return c->len - c->pos;
}

/* A zigzag varint of at most 10 bytes that fits in 64 bits. */
static int read_varint(struct cursor *c, const struct op *op, int64_t *v)
{
	size_t start = c->pos;
	uint64_t u = 0;
	for (unsigned i = 0;; i++) {
		if (c->pos >= c->len)
			return reject(c, op, "truncated Avro: varint at byte %zu runs past the end of the message",
				      start);
		uint8_t b = c->buf[c->pos++];
		if (i == 9 && (b & 0x80))
			return reject(c, op, "malformed Avro: varint at byte %zu is longer than 10 bytes", start);
		if (i == 9 && b > 1)
			return reject(c, op, "malformed Avro: varint at byte %zu does not fit in 64 bits", start);
		u |= (uint64_t)(b & 0x7f) << (7 * i);
		if (!(b & 0x80))
			break;
	}
	*v = (int64_t)(u >> 1) ^ -(int64_t)(u & 1);
	return 0;
}

/* read_varint, with the one-byte case (lengths, union and enum indexes, small
 * numbers: most varints of a message) inline in the caller. */
static inline int read_long(struct cursor *c, const struct op *op, int64_t *v)
{
	if (c->pos < c->len && c->buf[c->pos] < 0x80) {
		uint8_t b = c->buf[c->pos++];
		*v = (int64_t)(b >> 1) ^ -(int64_t)(b & 1);
		return 0;
	}
	return read_varint(c, op, v);
}

static int read_int(struct cursor *c, const struct op *op, int64_t *v)
{
	size_t start = c->pos;
	if (read_long(c, op, v) != 0)
		return -1;
	if (*v < INT32_MIN || *v > INT32_MAX)
		return reject(c, op, "malformed Avro: int at byte %zu has value %" PRId64 ", outside the int range",
			      start, *v);
	return 0;
}

/* A length prefix (string, bytes, map key): 0 <= length <= bytes left. */
static int read_length(struct cursor *c, const struct op *op, const char *what, size_t *n)
{
	size_t start = c->pos;
	int64_t v;
	if (read_long(c, op, &v) != 0)
		return -1;
	if (v < 0)
		return reject(c, op, "malformed Avro: %s length %" PRId64 " at byte %zu is negative", what, v, start);
	if ((uint64_t)v > left(c))
		return reject(c, op, "truncated Avro: %s length %" PRId64 " at byte %zu exceeds the %zu bytes left",
			      what, v, start, left(c));
	*n = (size_t)v;
	return 0;
}

static bool utf8_valid(const uint8_t *s, size_t n)
{
	size_t i = 0;
	while (i < n) {
		uint8_t b = s[i];
		size_t len;
		uint32_t cp, min;
		if (b < 0x80) {
			i++;
			continue;
		} else if ((b & 0xe0) == 0xc0) {
			len = 2, cp = b & 0x1f, min = 0x80;
		} else if ((b & 0xf0) == 0xe0) {
			len = 3, cp = b & 0x0f, min = 0x800;
		} else if ((b & 0xf8) == 0xf0) {
			len = 4, cp = b & 0x07, min = 0x10000;
		} else {
			return false;
		}
		if (n - i < len)
			return false;
		for (size_t k = 1; k < len; k++) {
			if ((s[i + k] & 0xc0) != 0x80)
				return false;
			cp = cp << 6 | (s[i + k] & 0x3f);
		}
		if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
			return false;
		i += len;
	}
	return true;
}

/* Stores a number into op's slot (nothing for ST_SKIP and ST_ID). */
static void put(uint8_t *ev, const struct op *op, int64_t v)
{
	uint8_t *slot = ev + op->offset;
	switch (op->store) {
	case ST_I32: {
		int32_t x = (int32_t)v;
		memcpy(slot, &x, sizeof(x));
		break;
	}
	case ST_I64:
		memcpy(slot, &v, sizeof(v));
		break;
	case ST_BOOL: {
		bool x = v != 0;
		memcpy(slot, &x, sizeof(x));
		break;
	}
	case ST_ENUM: {
		int x = (int)v;
		memcpy(slot, &x, sizeof(x));
		break;
	}
	default:
		break;
	}
}

static void put_null(uint8_t *ev, const struct op *op)
{
	switch (op->store) {
	case ST_ID:
		ev[op->offset] = '\0';
		break;
	case ST_I32:
		put(ev, op, QS_NO_INT);
		break;
	case ST_I64:
		put(ev, op, QS_NO_TS);
		break;
	case ST_ENUM:
		put(ev, op, -1);
		break;
	default:
		break;
	}
}

/* Stores a number read from the message: the null sentinels are refused so
 * that a present value can never pass for an absent one. */
static int put_read(struct cursor *c, uint8_t *ev, const struct op *op, int64_t v)
{
	if ((op->store == ST_I32 && v == INT32_MIN) || (op->store == ST_I64 && v == INT64_MIN))
		return reject(c, op, "value %" PRId64 " out of range", v);
	put(ev, op, v);
	return 0;
}

/* Stores an identifier: 1..QS_ID_MAX-1 bytes of UTF-8 without NUL. */
static int put_id(struct cursor *c, uint8_t *ev, const struct op *op, const uint8_t *s, size_t n)
{
	if (n == 0)
		return reject(c, op, "empty identifier");
	if (n >= QS_ID_MAX)
		return reject(c, op, "identifier of %zu bytes is longer than %d bytes", n, QS_ID_MAX - 1);
	if (memchr(s, '\0', n))
		return reject(c, op, "identifier contains a NUL byte");
	if (!utf8_valid(s, n))
		return reject(c, op, "identifier is not valid UTF-8");
	memcpy(ev + op->offset, s, n);
	ev[op->offset + n] = '\0';
	return 0;
}

static int run(const struct plan *p, uint32_t i, struct cursor *c, uint8_t *ev, int depth);

/* Array or map blocks. Only writer-only values are arrays or maps, so the
 * items are skipped, by the block's byte size when the writer gave one. */
static int run_blocks(const struct plan *p, const struct op *op, struct cursor *c, uint8_t *ev, int depth)
{
	const struct op *item = &p->ops[op->child];
	const char *what = op->kind == OP_ARRAY ? "array" : "map";
	for (;;) {
		size_t start = c->pos;
		int64_t count;
		if (read_long(c, op, &count) != 0)
			return -1;
		if (count == 0)
			return 0;
		if (count < 0) {
			int64_t size;
			if (count == INT64_MIN)
				return reject(c, op, "malformed Avro: %s block count at byte %zu", what, start);
			size_t size_at = c->pos;
			if (read_long(c, op, &size) != 0)
				return -1;
			if (size < 0 || (uint64_t)size > left(c))
				return reject(c, op,
					      "truncated Avro: %s block of %" PRId64
					      " bytes at byte %zu exceeds the %zu bytes left",
					      what, size, size_at, left(c));
			c->pos += (size_t)size;
			continue;
		}
		/* Items of zero bytes (nulls, empty records) need no reading;
		 * all others take at least a byte each, which bounds the count. */
		if (op->kind == OP_ARRAY && item->empty)
			continue;
		if ((uint64_t)count > left(c))
			return reject(c, op,
				      "truncated Avro: %s block count %" PRId64
				      " at byte %zu exceeds the %zu bytes left",
				      what, count, start, left(c));
		for (int64_t k = 0; k < count; k++) {
			if (op->kind == OP_MAP) {
				size_t n;
				if (read_length(c, op, "map key", &n) != 0)
					return -1;
				c->pos += n;
			}
			if (run(p, op->child, c, ev, depth + 1) != 0)
				return -1;
		}
	}
}

/* Runs op `i` on the bytes at the cursor. Returns 0, or -1 with a reason. */
static int run(const struct plan *p, uint32_t i, struct cursor *c, uint8_t *ev, int depth)
{
	const struct op *op = &p->ops[i];
	int64_t v;
	size_t start = c->pos;

	if (c->work-- == 0)
		return reject(c, NULL,
			      "writer schema %" PRId32 " costs more than %d steps per byte to decode (records "
			      "nested too deep inside an array or map)",
			      p->id, WORK_PER_BYTE);
	/* Only containers nest; checking them bounds the C stack. A REF is
	 * its record's level, checked first so the reason names its field. */
	if (depth > MAX_DEPTH && (op->kind == OP_UNION || op->kind == OP_RECORD || op->kind == OP_ARRAY ||
				  op->kind == OP_MAP || op->kind == OP_REF))
		return reject(c, op, "malformed Avro: values nested deeper than %d levels at byte %zu", MAX_DEPTH,
			      start);
	switch (op->kind) {
	case OP_NULL:
		put_null(ev, op);
		return 0;
	case OP_BOOL:
		if (left(c) < 1)
			return reject(c, op, "truncated Avro: boolean at byte %zu runs past the end of the message",
				      start);
		if (c->buf[c->pos] > 1)
			return reject(c, op, "malformed Avro: boolean byte 0x%02x at byte %zu", c->buf[c->pos], start);
		put(ev, op, c->buf[c->pos++]);
		return 0;
	case OP_INT:
		if (read_int(c, op, &v) != 0)
			return -1;
		return put_read(c, ev, op, v);
	case OP_LONG:
		if (read_long(c, op, &v) != 0)
			return -1;
		return put_read(c, ev, op, v);
	case OP_FLOAT:
	case OP_DOUBLE:
	case OP_FIXED: {
		size_t n = op->kind == OP_FLOAT ? 4 : op->kind == OP_DOUBLE ? 8 : (size_t)op->value;
		if (n > left(c))
			return reject(c, op, "truncated Avro: %zu-byte value at byte %zu exceeds the %zu bytes left", n,
				      start, left(c));
		c->pos += n;
		return 0;
	}
	case OP_BYTES: {
		size_t n;
		if (read_length(c, op, "string", &n) != 0)
			return -1;
		const uint8_t *s = c->buf + c->pos;
		c->pos += n;
		return op->store == ST_ID ? put_id(c, ev, op, s, n) : 0;
	}
	case OP_ENUM:
		if (read_long(c, op, &v) != 0)
			return -1;
		if (v < 0 || v >= op->count)
			return reject(c, op,
				      "malformed Avro: enum index %" PRId64 " at byte %zu out of range 0..%" PRIu32, v,
				      start, op->count - 1);
		if (op->store == ST_SKIP)
			return 0;
		if (op->map[v] < 0)
			return reject(c, op, "symbol %s is unknown to the reader's enum",
				      avro_schema_enum_get(op->wenum, (int)v));
		put(ev, op, op->map[v]);
		return 0;
	case OP_UNION: {
		if (read_long(c, op, &v) != 0)
			return -1;
		if (v < 0 || v >= op->count)
			return reject(c, op,
				      "malformed Avro: union index %" PRId64 " at byte %zu out of range 0..%" PRIu32, v,
				      start, op->count - 1);
		uint32_t b = op->child;
		for (int64_t k = 0; k < v; k++)
			b = p->ops[b].next;
		return run(p, b, c, ev, depth + 1);
	}
	case OP_RECORD:
		for (uint32_t f = op->child; f != NONE; f = p->ops[f].next)
			if (run(p, f, c, ev, depth + 1) != 0)
				return -1;
		return 0;
	case OP_ARRAY:
	case OP_MAP:
		return run_blocks(p, op, c, ev, depth);
	case OP_REF:
		return run(p, op->child, c, ev, depth);
	case OP_SET:
		if (op->store == ST_ID) {
			size_t n = strlen(op->text);
			memcpy(ev + op->offset, op->text, n + 1);
		} else {
			put(ev, op, op->value);
		}
		return 0;
	case OP_FAIL:
	default:
		return reject(c, op, "%s", op->text ? op->text : "internal error: bad plan");
	}
}

int decode_plan_run(const struct plan *p, const uint8_t *value, size_t len, size_t start, struct qs_event *out,
		    char *errstr, size_t errstr_size)
{
	struct cursor c = {value, len, start, errstr, errstr_size, (uint64_t)WORK_PER_BYTE * (len + p->nops)};
	if (run(p, p->root, &c, (uint8_t *)out, 0) != 0)
		return -1;
	if (c.pos != len) {
		errstr_set(errstr, errstr_size, "malformed Avro: %zu trailing byte%s after the record, from byte %zu",
			   len - c.pos, len - c.pos == 1 ? "" : "s", c.pos);
		return -1;
	}
	return 0;
}
