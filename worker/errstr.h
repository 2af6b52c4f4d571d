/*
 * errstr.h: filling the `char *errstr, size_t errstr_size` pair in which a
 * failing call says why (librdkafka's convention, used across the worker).
 */
#ifndef QS_ERRSTR_H
#define QS_ERRSTR_H

#include <stddef.h>

/* printf into errstr; a NULL errstr or a size of 0 is allowed and writes nothing. */
__attribute__((format(printf, 3, 4))) void errstr_set(char *errstr, size_t size, const char *fmt, ...);

#endif
