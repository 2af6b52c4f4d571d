/*
 * config.h: the worker's configuration, read from a file of `key=value`
 * lines (`#` comments) and `-X key=value` overrides, in that order. Every key
 * is a row of one table in config.c (name, type, default, bounds); `kafka.*`
 * keys go to librdkafka as they are and are checked by it at load time.
 * Unknown keys and bad values are errors reported as `file:line: message`.
 */
#ifndef QS_CONFIG_H
#define QS_CONFIG_H

#include <librdkafka/rdkafka.h>
#include <stdbool.h>
#include <stddef.h>

#include "compiler.h"
#include "event.h"

struct config {
	char *topics[QS_TOPIC_COUNT]; /* encounters, deliveries, member events */
	char *topic_alerts;
	char *topic_dead_letters;
	char *pg_conninfo;
	char *registry_url;
	char *registry_dir;
	char *group_id; /* kafka.group.id */
	int flush_interval_ms;
	int flush_max_events;
	bool exit_at_end;
	char *alerts_clock; /* "event" or "wall" */
	char *log_level;
	/* kafka.* pass-through, in file order: names without the prefix */
	char **kafka_keys, **kafka_values;
	size_t kafka_len;
};

/* Fills cfg with defaults. Caller frees with config_free. */
void config_init(struct config *cfg);
/* Reads a config file; later keys override earlier ones. 0 or -1 with errstr = "file:line: message". */
QS_MUSTCHECK int config_load_file(struct config *cfg, const char *path, char *errstr, size_t errstr_size);
/* Applies one `key=value` from the command line (origin names it in errors). */
QS_MUSTCHECK int config_set(struct config *cfg, const char *kv, const char *origin, char *errstr, size_t errstr_size);
/* Checks the whole configuration after loading: what every command needs, plus what `run` needs when run. */
QS_MUSTCHECK int config_validate(const struct config *cfg, bool run, char *errstr, size_t errstr_size);
/*
 * Sets every kafka.* key on conf (borrowed), in file order, so what the caller
 * set before is overridden and what it sets after wins. With
 * drop_consumer_only, keys only a consumer understands (group.*, session and
 * poll timeouts, fetch.*, ...) are left out, which keeps a producer from
 * warning about them. 0, or -1 with librdkafka's reason in errstr.
 */
QS_MUSTCHECK int config_kafka_apply(const struct config *cfg, rd_kafka_conf_t *conf, bool drop_consumer_only,
				    char *errstr, size_t errstr_size);
void config_free(struct config *cfg);

#endif
