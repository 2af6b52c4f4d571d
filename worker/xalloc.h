/*
 * xalloc.h: allocation that aborts with a message when memory runs out. The
 * worker's in-memory state (entities, aggregates, pending output, buffers)
 * cannot be partly built, and its durable state is in PostgreSQL, so running
 * out of memory ends the process; a restart reloads from the database. Code
 * that can report failure instead (decoding, the registry) does not use these.
 */
#ifndef QS_XALLOC_H
#define QS_XALLOC_H

#include <stddef.h>

#include "compiler.h"

/* malloc, or abort naming what for. Caller frees. */
QS_MALLOC QS_ALLOC_SIZE(1) void *xmalloc(size_t size, const char *what);
/* calloc(n, size), or abort. Caller frees. */
QS_MALLOC QS_ALLOC_SIZE(1, 2) void *xcalloc(size_t n, size_t size, const char *what);
/* realloc, or abort; never returns NULL for size > 0. Caller frees. */
QS_ALLOC_SIZE(2) void *xrealloc(void *p, size_t size, const char *what);
/* strdup, or abort. Caller frees. */
QS_MALLOC char *xstrdup(const char *s, const char *what);

#endif
