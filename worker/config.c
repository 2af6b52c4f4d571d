/* config.c: the configuration table and its parser (see config.h). */
#include "config.h"

#include <errno.h>
#include <libpq-fe.h>
#include <librdkafka/rdkafka.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "compiler.h"
#include "errstr.h"
#include "log.h"
#include "redact.h"
#include "xalloc.h"

enum type { T_STR, T_INT, T_BOOL, T_ENUM /* a string, one of `choices` */ };

struct row {
	const char *name;
	enum type type;
	size_t offset;
	const char *def;            /* NULL: no default */
	long min, max;              /* T_INT bounds */
	const char *const *choices; /* T_ENUM: the accepted values, NULL-terminated */
};

static const char *const clocks[] = {"event", "wall", NULL};
static const char *const levels[] = {"error", "warn", "info", "debug", NULL};

#define F(field) offsetof(struct config, field)

/* What each key means is told once, in README.md's Configuration table. */
static const struct row rows[] = {
	{"topics.encounters", T_STR, F(topics[QS_TOPIC_ENCOUNTERS]), "encounters", 0, 0, NULL},
	{"topics.deliveries", T_STR, F(topics[QS_TOPIC_DELIVERIES]), "deliveries", 0, 0, NULL},
	{"topics.member_events", T_STR, F(topics[QS_TOPIC_MEMBER_EVENTS]), "member-events", 0, 0, NULL},
	{"topics.alerts", T_STR, F(topic_alerts), "qualstream-alerts", 0, 0, NULL},
	{"topics.dead_letters", T_STR, F(topic_dead_letters), "qualstream-dead-letters", 0, 0, NULL},
	{"pg.conninfo", T_STR, F(pg_conninfo), NULL, 0, 0, NULL},
	{"schema.registry.url", T_STR, F(registry_url), NULL, 0, 0, NULL},
	{"schema.registry.dir", T_STR, F(registry_dir), NULL, 0, 0, NULL},
	{"flush.interval.ms", T_INT, F(flush_interval_ms), "1000", 1, 3600000, NULL},
	{"flush.max.events", T_INT, F(flush_max_events), "50000", 1, 10000000, NULL},
	{"run.exit.at.end", T_BOOL, F(exit_at_end), "false", 0, 0, NULL},
	{"alerts.clock", T_ENUM, F(alerts_clock), "event", 0, 0, clocks},
	{"log.level", T_ENUM, F(log_level), "info", 0, 0, levels},
};

/* Whether value is one of r's choices; else errstr lists them ("x" is not a, b or c). */
static bool is_choice(const struct row *r, const char *value, char *errstr, size_t errstr_size)
{
	for (size_t i = 0; r->choices[i]; i++)
		if (!strcmp(r->choices[i], value))
			return true;
	errstr_set(errstr, errstr_size, "%s: \"%s\" is not", r->name, value);
	for (size_t i = 0; r->choices[i] && errstr_size; i++) {
		size_t n = strlen(errstr);
		const char *sep = i == 0 ? "" : r->choices[i + 1] ? "," : " or";
		errstr_set(errstr + n, errstr_size - n, "%s %s", sep, r->choices[i]);
	}
	return false;
}

static int set_row(struct config *cfg, const struct row *r, const char *value, char *errstr, size_t errstr_size)
{
	void *field = (char *)cfg + r->offset;
	switch (r->type) {
	case T_ENUM: /* a string, once it is one of the choices */
	case T_STR: {
		if (r->type == T_ENUM && !is_choice(r, value, errstr, errstr_size))
			return -1;
		free(*(char **)field);
		*(char **)field = xstrdup(value, "a configuration value");
		return 0;
	}
	case T_INT: {
		char *end;
		errno = 0;
		long v = strtol(value, &end, 10);
		if (errno || end == value || *end || v < r->min || v > r->max) {
			errstr_set(errstr, errstr_size, "%s: \"%s\" is not a whole number from %ld to %ld", r->name,
				   value, r->min, r->max);
			return -1;
		}
		*(int *)field = (int)v;
		return 0;
	}
	case T_BOOL:
		if (!strcmp(value, "true") || !strcmp(value, "false")) {
			*(bool *)field = value[0] == 't';
			return 0;
		}
		errstr_set(errstr, errstr_size, "%s: \"%s\" is not true or false", r->name, value);
		return -1;
	}
	return -1;
}

void config_init(struct config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	char ignore[1];
	for (size_t i = 0; i < ARRAY_LEN(rows); i++)
		if (rows[i].def && set_row(cfg, &rows[i], rows[i].def, ignore, sizeof(ignore)))
			abort(); /* a bad default is a programming error */
}

static int set_kafka(struct config *cfg, const char *key, const char *value, char *errstr, size_t errstr_size)
{
	/* Let librdkafka judge the property now, so a typo fails at start-up with its line number. */
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	char why[256];
	rd_kafka_conf_res_t res = rd_kafka_conf_set(conf, key, value, why, sizeof(why));
	rd_kafka_conf_destroy(conf);
	if (res != RD_KAFKA_CONF_OK) {
		errstr_set(errstr, errstr_size, "kafka.%s: %s", key, why);
		return -1;
	}
	if (!strcmp(key, "group.id")) {
		free(cfg->group_id);
		cfg->group_id = xstrdup(value, "kafka.group.id");
	}
	for (size_t i = 0; i < cfg->kafka_len; i++)
		if (!strcmp(cfg->kafka_keys[i], key)) {
			free(cfg->kafka_values[i]);
			cfg->kafka_values[i] = xstrdup(value, "a kafka.* value");
			return 0;
		}
	cfg->kafka_keys = xrealloc(cfg->kafka_keys, (cfg->kafka_len + 1) * sizeof(*cfg->kafka_keys), "kafka.* keys");
	cfg->kafka_values = xrealloc(cfg->kafka_values, (cfg->kafka_len + 1) * sizeof(*cfg->kafka_values),
				     "kafka.* values");
	cfg->kafka_keys[cfg->kafka_len] = xstrdup(key, "a kafka.* key");
	cfg->kafka_values[cfg->kafka_len++] = xstrdup(value, "a kafka.* value");
	return 0;
}

static char *trim(char *s)
{
	while (*s == ' ' || *s == '\t')
		s++;
	char *end = s + strlen(s);
	while (end > s && (end[-1] == ' ' || end[-1] == '\t' || end[-1] == '\n' || end[-1] == '\r'))
		*--end = '\0';
	return s;
}

/*
 * Registers the secrets a setting holds (redact.h) before anything can print
 * it: the value of a key whose name says so (kafka.sasl.password, a
 * misspelled or unknown key alike), the passwords inside pg.conninfo, and the
 * credentials of schema.registry.url. A pg.conninfo libpq cannot parse is
 * refused here, without libpq's reason: that reason quotes the text around
 * the mistake, which can be the password.
 */
static int register_secrets(const char *key, const char *value, char *msg, size_t msg_size)
{
	if (redact_is_secret_name(key, strlen(key)))
		redact_secret(value);
	if (!strcmp(key, "pg.conninfo")) {
		char *why = NULL;
		PQconninfoOption *opts = PQconninfoParse(value, &why);
		PQfreemem(why);
		if (!opts) {
			errstr_set(msg, msg_size,
				   "pg.conninfo: libpq cannot parse it (key=value pairs, values with spaces in"
				   " single quotes, or a postgresql:// URI); its reason is not shown as it may"
				   " quote the password");
			return -1;
		}
		for (PQconninfoOption *o = opts; o->keyword; o++)
			if (o->val && redact_is_secret_name(o->keyword, strlen(o->keyword)))
				redact_secret(o->val);
		PQconninfoFree(opts);
	} else if (!strcmp(key, "schema.registry.url")) {
		/* scheme://user:password@host...: the password, or the whole user part (an API key). */
		const char *user = strstr(value, "://"), *at;
		if (user && (at = strchr(user += 3, '@')) && !memchr(user, '/', (size_t)(at - user))) {
			const char *colon = memchr(user, ':', (size_t)(at - user));
			const char *start = colon ? colon + 1 : user;
			char *secret = xstrdup(start, "registry credentials");
			secret[at - start] = '\0';
			redact_secret(secret);
			free(secret);
		}
	}
	return 0;
}

int config_set(struct config *cfg, const char *kv, const char *origin, char *errstr, size_t errstr_size)
{
	char line[4096], msg[512];
	if (strlen(kv) >= sizeof(line)) {
		errstr_set(errstr, errstr_size, "%s: line too long", origin);
		return -1;
	}
	strcpy(line, kv);
	char *eq = strchr(line, '=');
	if (!eq) {
		/* Not echoed: `-X kafka.sasl.password hunter2` or a bare password would be printed. */
		errstr_set(errstr, errstr_size,
			   "%s: expected key=value, got a line without \"=\" (not shown: it may hold a secret)",
			   origin);
		return -1;
	}
	*eq = '\0';
	char *key = trim(line), *value = trim(eq + 1);
	int rc = register_secrets(key, value, msg, sizeof(msg));
	if (rc == 0 && !strncmp(key, "kafka.", 6) && key[6]) {
		rc = set_kafka(cfg, key + 6, value, msg, sizeof(msg));
	} else if (rc == 0) {
		rc = -1;
		errstr_set(msg, sizeof(msg), "unknown key \"%s\"", key);
		for (size_t i = 0; i < ARRAY_LEN(rows); i++)
			if (!strcmp(rows[i].name, key)) {
				rc = set_row(cfg, &rows[i], value, msg, sizeof(msg));
				break;
			}
	}
	if (rc) {
		errstr_set(errstr, errstr_size, "%s: %s", origin, msg);
		redact(errstr, errstr_size); /* librdkafka's reason may quote the value */
	}
	return rc;
}

int config_load_file(struct config *cfg, const char *path, char *errstr, size_t errstr_size)
{
	FILE *f = fopen(path, "r");
	if (!f) {
		errstr_set(errstr, errstr_size, "%s: %s", path, strerror(errno));
		return -1;
	}
	char line[4096], origin[512];
	int rc = 0;
	for (int n = 1; rc == 0 && fgets(line, sizeof(line), f); n++) {
		char *s = trim(line);
		if (!*s || *s == '#')
			continue;
		snprintf(origin, sizeof(origin), "%s:%d", path, n);
		rc = config_set(cfg, s, origin, errstr, errstr_size);
	}
	fclose(f);
	return rc;
}

int config_validate(const struct config *cfg, bool run, char *errstr, size_t errstr_size)
{
	if (!cfg->pg_conninfo) {
		errstr_set(errstr, errstr_size, "pg.conninfo is required");
		return -1;
	}
	if (!run)
		return 0;
	if (!cfg->group_id) {
		errstr_set(errstr, errstr_size, "kafka.group.id is required");
		return -1;
	}
	if (!!cfg->registry_url == !!cfg->registry_dir) {
		errstr_set(errstr, errstr_size, "set exactly one of schema.registry.url and schema.registry.dir");
		return -1;
	}
	for (size_t i = 0; i < cfg->kafka_len; i++)
		if (!strcmp(cfg->kafka_keys[i], "bootstrap.servers"))
			return 0;
	errstr_set(errstr, errstr_size, "kafka.bootstrap.servers is required");
	return -1;
}

/* librdkafka properties that only a consumer understands. */
static bool consumer_only(const char *key)
{
	static const char *const prefixes[] = {"group.",          "auto.offset.reset",    "session.timeout", "max.poll",
					       "enable.auto",     "partition.assignment", "heartbeat",       "fetch.",
					       "isolation.level", "enable.partition.eof", "auto.commit"};
	for (size_t i = 0; i < ARRAY_LEN(prefixes); i++)
		if (!strncmp(key, prefixes[i], strlen(prefixes[i])))
			return true;
	return false;
}

int config_kafka_apply(const struct config *cfg, rd_kafka_conf_t *conf, bool drop_consumer_only, char *errstr,
		       size_t errstr_size)
{
	rd_kafka_conf_set_log_cb(conf, log_rdkafka); /* librdkafka's own lines are redacted like ours */
	for (size_t i = 0; i < cfg->kafka_len; i++)
		if (!(drop_consumer_only && consumer_only(cfg->kafka_keys[i])) &&
		    rd_kafka_conf_set(conf, cfg->kafka_keys[i], cfg->kafka_values[i], errstr, errstr_size) !=
			    RD_KAFKA_CONF_OK)
			return -1;
	return 0;
}

void config_free(struct config *cfg)
{
	for (size_t i = 0; i < ARRAY_LEN(rows); i++)
		if (rows[i].type == T_STR || rows[i].type == T_ENUM)
			free(*(char **)((char *)cfg + rows[i].offset));
	free(cfg->group_id);
	for (size_t i = 0; i < cfg->kafka_len; i++) {
		free(cfg->kafka_keys[i]);
		free(cfg->kafka_values[i]);
	}
	free(cfg->kafka_keys);
	free(cfg->kafka_values);
	memset(cfg, 0, sizeof(*cfg));
}
