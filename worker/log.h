/*
 * log.h: levelled logging to stderr, one line per message with a UTC
 * timestamp and level. The macros check the level before formatting anything.
 * Every line is redacted (redact.h) before it is written.
 */
#ifndef QS_LOG_H
#define QS_LOG_H

#include "compiler.h"

enum log_level { LOG_ERROR, LOG_WARN, LOG_INFO, LOG_DEBUG };

extern enum log_level log_level_current;

QS_PRINTF(2, 3) void log_write(enum log_level level, const char *fmt, ...);

struct rd_kafka_s;
/*
 * librdkafka's log callback (rd_kafka_conf_set_log_cb): its lines in the same
 * format, through the same redaction. librdkafka has already filtered them by
 * its own log_level and debug settings, so log.level does not apply.
 */
void log_rdkafka(const struct rd_kafka_s *rk, int level, const char *fac, const char *buf);

#define LOG_AT(level, ...)                               \
	do {                                             \
		if ((level) <= log_level_current)        \
			log_write((level), __VA_ARGS__); \
	} while (0)
#define log_error(...) LOG_AT(LOG_ERROR, __VA_ARGS__)
#define log_warn(...) LOG_AT(LOG_WARN, __VA_ARGS__)
#define log_info(...) LOG_AT(LOG_INFO, __VA_ARGS__)
#define log_debug(...) LOG_AT(LOG_DEBUG, __VA_ARGS__)

#endif
