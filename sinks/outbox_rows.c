/*
 * outbox_rows.c: what an outbox row becomes on its topic. Each stream is one
 * row of descs[]: its table, topic, id header, schema, and its columns, one
 * per field of the Avro record, each named by the field and read by an SQL
 * expression over the table. The query of a stream's unpublished rows is
 * built from them at start-up (outbox_stream_init), so a field is one line
 * here, in the order of the schema or any other.
 */
#include "outbox_internal.h"

#include <errno.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "compiler.h"
#include "embedded.h"
#include "errstr.h"
#include "xalloc.h"

static const struct outbox_column dead_letter_columns[] = {
	{"topic", "topic"},
	{"partition", "partition"},
	{"offset", "\"offset\""},
	{"key", "key"},
	{"value", "value"},
	{"reason", "reason"},
	{"detected_at", "(extract(epoch FROM detected_at) * 1000)::bigint"},
};

static const struct outbox_column alert_columns[] = {
	{"alert_id", "alert_id"},
	{"kind", "kind"},
	{"state", "state"},
	{"plan_id", "plan_id"},
	{"source", "source"},
	{"member_id", "member_id"},
	{"encounter_id", "encounter_id"},
	{"hospital_id", "hospital_id"},
	{"period_start", "period_start - date '1970-01-01'"},
	{"due_date", "due_date - date '1970-01-01'"},
	{"detected_at", "(extract(epoch FROM detected_at) * 1000)::bigint"},
	{"details", "details"},
};

/* The streams, in publishing order. */
static const struct stream_desc descs[] = {
	{
		.name = "dead letters",
		.table = "qualstream.dead_letter",
		.stream = "dead_letter",
		.id_header = "qualstream.dead_letter_id",
		.schema_file = "dead_letter.avsc",
		.topic_field = offsetof(struct config, topic_dead_letters),
		.key_field = "key", /* the original message's key */
		.reader = "dead-letter-reader",
		.columns = dead_letter_columns,
		.n_columns = ARRAY_LEN(dead_letter_columns),
	},
	{
		.name = "alerts",
		.table = "qualstream.alerts",
		.stream = "alerts",
		.id_header = "qualstream.alert_row",
		.schema_file = "alert.avsc",
		.topic_field = offsetof(struct config, topic_alerts),
		.key_field = "alert_id", /* every transition of an alert in one partition, in order */
		.reader = "alert-reader",
		.columns = alert_columns,
		.n_columns = ARRAY_LEN(alert_columns),
	},
};
_Static_assert(ARRAY_LEN(descs) == OUTBOX_STREAMS, "OUTBOX_STREAMS counts descs[]");

const struct stream_desc *outbox_stream_desc(size_t k)
{
	return &descs[k];
}

/*
 * Sets f, a field that is not a union, from column col of a binary result:
 * string from text, bytes from bytea, int from int4 (a date: days since
 * 1970-01-01), long from int8, enum from the text of one of its symbols.
 * 0, or an errno with avro_strerror() set.
 */
static int set_value(avro_value_t *f, const PGresult *res, int row, int col)
{
	char *v = PQgetvalue(res, row, col);
	int len = PQgetlength(res, row, col);
	switch (avro_value_get_type(f)) {
	case AVRO_STRING:
		return avro_value_set_string_len(f, v, (size_t)len + 1); /* libpq ends every value with a NUL */
	case AVRO_BYTES:
		return avro_value_set_bytes(f, v, (size_t)len);
	case AVRO_INT32:
		if (len == 4)
			return avro_value_set_int(f, pg_int4(v));
		break;
	case AVRO_INT64:
		if (len == 8)
			return avro_value_set_long(f, pg_int8(v));
		break;
	case AVRO_ENUM: {
		avro_schema_t schema = avro_value_get_schema(f);
		int symbol = avro_schema_enum_get_by_name(schema, v);
		if (symbol >= 0)
			return avro_value_set_enum(f, symbol);
		avro_set_error("\"%s\" is not a symbol of %s", v, avro_schema_name(schema));
		return EINVAL;
	}
	default:
		break;
	}
	avro_set_error("column %s (%d bytes) does not fit the field's type", PQfname(res, col), len);
	return EINVAL;
}

/*
 * Sets the field `name` of rec from column col (see set_value). A union
 * field is ["null", T]: branch 0 when the column is NULL, else T.
 * 0, or an errno with avro_strerror() naming the field.
 */
static int set_field(avro_value_t *rec, const char *name, const PGresult *res, int row, int col)
{
	avro_value_t f, branch;
	bool null = PQgetisnull(res, row, col);
	int rc = avro_value_get_by_name(rec, name, &f, NULL);
	if (rc)
		goto done;
	if (avro_value_get_type(&f) == AVRO_UNION) {
		rc = avro_value_set_branch(&f, null ? 0 : 1, &branch);
		if (!rc)
			rc = null ? avro_value_set_null(&branch) : set_value(&branch, res, row, col);
	} else if (null) {
		avro_set_error("column %s is NULL", PQfname(res, col));
		rc = EINVAL;
	} else {
		rc = set_value(&f, res, row, col);
	}
done:
	if (rc)
		avro_prefix_error("field %s: ", name);
	return rc;
}

/*
 * The query of a stream's unpublished rows: in binary format, at most
 * OUTBOX_BATCH rows of group $1 above id $2 in id order, the int8 row id
 * first, then each column under its field's name. Caller frees.
 */
static char *build_select(const struct stream_desc *desc)
{
	size_t size = 256 + strlen(desc->table);
	for (size_t i = 0; i < desc->n_columns; i++)
		size += strlen(desc->columns[i].sql) + strlen(desc->columns[i].field) + 8;
	char *sql = xmalloc(size, "an outbox query");
	size_t len = (size_t)snprintf(sql, size, "SELECT id");
	for (size_t i = 0; i < desc->n_columns; i++)
		len += (size_t)snprintf(sql + len, size - len, ", %s AS \"%s\"", desc->columns[i].sql,
					desc->columns[i].field);
	snprintf(sql + len, size - len, " FROM %s WHERE consumer_group = $1 AND id > $2::bigint ORDER BY id LIMIT %d",
		 desc->table, OUTBOX_BATCH);
	return sql;
}

static const char *embedded_schema(const char *name)
{
	for (const struct embedded_file *f = embedded_schemas; f->name; f++)
		if (!strcmp(f->name, name))
			return f->text;
	return NULL;
}

int outbox_stream_init(struct stream *s, const struct stream_desc *desc, const struct config *cfg, struct registry *reg,
		       char *errstr, size_t errstr_size)
{
	s->desc = desc;
	s->topic = *(char *const *)((const char *)cfg + desc->topic_field);
	s->must_recover = true;
	s->select = build_select(desc);
	s->key_col = -1;
	for (size_t i = 0; i < desc->n_columns; i++)
		if (!strcmp(desc->columns[i].field, desc->key_field))
			s->key_col = (int)i + 1; /* after the id */
	if (s->key_col < 0) {
		errstr_set(errstr, errstr_size, "%s: the key %s is not a column", desc->name, desc->key_field);
		return -1;
	}
	const char *text = embedded_schema(desc->schema_file);
	if (!text) {
		errstr_set(errstr, errstr_size, "%s is not embedded in the binary", desc->schema_file);
		return -1;
	}
	char subject[512], why[512];
	snprintf(subject, sizeof(subject), "%s-value", s->topic);
	if (registry_id_for(reg, subject, text, &s->schema_id, why, sizeof(why)) != QS_OK) {
		errstr_set(errstr, errstr_size, "schema id of %s (subject %s): %s", desc->schema_file, subject, why);
		return -1;
	}
	if (avro_schema_from_json_length(text, strlen(text), &s->schema)) {
		errstr_set(errstr, errstr_size, "%s: %s", desc->schema_file, avro_strerror());
		return -1;
	}
	s->iface = avro_generic_class_from_schema(s->schema);
	if (!s->iface || avro_generic_value_new(s->iface, &s->value)) {
		errstr_set(errstr, errstr_size, "%s: %s", desc->schema_file, avro_strerror());
		return -1;
	}
	return 0;
}

void outbox_stream_free(struct stream *s)
{
	free(s->select);
	free(s->skip);
	if (s->value.iface)
		avro_value_decref(&s->value);
	if (s->iface)
		avro_value_iface_decref(s->iface);
	if (s->schema)
		avro_schema_decref(s->schema);
}

size_t outbox_encode(struct outbox *ob, struct stream *s, const PGresult *res, int row)
{
	const struct stream_desc *d = s->desc;
	for (size_t i = 0; i < d->n_columns; i++)
		if (set_field(&s->value, d->columns[i].field, res, row, (int)i + 1))
			return 0;
	size_t size;
	if (avro_value_sizeof(&s->value, &size))
		return 0;
	if (size + 5 > ob->cap) {
		free(ob->buf);
		ob->cap = size + 5 + 4096;
		ob->buf = xmalloc(ob->cap, "an outbox message");
	}
	uint32_t id = htobe32((uint32_t)s->schema_id);
	ob->buf[0] = 0; /* Confluent magic byte, then the schema id */
	memcpy(ob->buf + 1, &id, 4);
	avro_writer_t writer = avro_writer_memory(ob->buf + 5, (int64_t)size);
	int rc = avro_value_write(writer, &s->value);
	avro_writer_free(writer);
	return rc ? 0 : size + 5;
}
