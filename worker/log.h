/*
 * log.h: levelled logging to stderr, one line per message with a UTC
 * timestamp and level. The macros check the level before formatting anything.
 */
#ifndef QS_LOG_H
#define QS_LOG_H

enum log_level { LOG_ERROR, LOG_WARN, LOG_INFO, LOG_DEBUG };

extern enum log_level log_level_current;

__attribute__((format(printf, 2, 3))) void log_write(enum log_level level, const char *fmt, ...);

#define LOG_AT(level, ...)                                                                                 \
	do {                                                                                               \
		if ((level) <= log_level_current)                                                          \
			log_write((level), __VA_ARGS__);                                                   \
	} while (0)
#define log_error(...) LOG_AT(LOG_ERROR, __VA_ARGS__)
#define log_warn(...) LOG_AT(LOG_WARN, __VA_ARGS__)
#define log_info(...) LOG_AT(LOG_INFO, __VA_ARGS__)
#define log_debug(...) LOG_AT(LOG_DEBUG, __VA_ARGS__)

#endif
