/* log.c: see log.h. */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <time.h>

#include "redact.h"

enum log_level log_level_current = LOG_INFO;

void log_write(enum log_level level, const char *fmt, ...)
{
	static const char *const names[] = {"ERROR", "WARN", "INFO", "DEBUG"};
	struct timespec ts;
	struct tm tm;
	char when[32];
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S", &tm);
	char line[2048];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	redact(line, sizeof(line));
	/* One fprintf per line so lines from the librdkafka threads do not interleave. */
	fprintf(stderr, "%s.%03ldZ %-5s %s\n", when, ts.tv_nsec / 1000000, names[level], line);
}

void log_rdkafka(const struct rd_kafka_s *rk, int level, const char *fac, const char *buf)
{
	(void)rk;
	/* syslog levels: 0-3 are errors, 4 a warning, 5-6 notices and information, 7 debug. */
	enum log_level ours = level <= 3 ? LOG_ERROR : level == 4 ? LOG_WARN : level <= 6 ? LOG_INFO : LOG_DEBUG;
	log_write(ours, "librdkafka %s: %s", fac, buf);
}
