/* errstr.c: see errstr.h. */
#include "errstr.h"

#include <stdarg.h>
#include <stdio.h>

void errstr_set(char *errstr, size_t size, const char *fmt, ...)
{
	if (!errstr || size == 0)
		return;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(errstr, size, fmt, ap);
	va_end(ap);
}
