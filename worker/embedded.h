/*
 * embedded.h: the Avro schemas (schemas/NAME.avsc) and SQL migrations
 * (sinks/migrations/NNN_NAME.sql, and the repeatable R_NAME.sql) compiled into
 * the binary by deploy/embed.cmake. Each table ends with an entry whose name is
 * NULL; migrations are sorted by file name: the numbered ones in order, then
 * the repeatable ones (see pgsink_migrate).
 */
#ifndef QS_EMBEDDED_H
#define QS_EMBEDDED_H

struct embedded_file {
	const char *name; /* file name without directory, e.g. "encounter.avsc" */
	const char *text; /* NUL-terminated contents */
};

extern const struct embedded_file embedded_schemas[];
extern const struct embedded_file embedded_migrations[];

#endif
