/* xalloc.c: see xalloc.h. */
#include "xalloc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void *check(void *p, size_t size, const char *what)
{
	if (!p && size) {
		fprintf(stderr, "qualstream: out of memory (%zu bytes for %s)\n", size, what);
		abort();
	}
	return p;
}

void *xmalloc(size_t size, const char *what)
{
	return check(malloc(size), size, what);
}

void *xcalloc(size_t n, size_t size, const char *what)
{
	return check(calloc(n, size), n * size, what);
}

void *xrealloc(void *p, size_t size, const char *what)
{
	return check(realloc(p, size), size, what);
}

char *xstrdup(const char *s, const char *what)
{
	size_t size = strlen(s) + 1;
	return memcpy(xmalloc(size, what), s, size);
}
