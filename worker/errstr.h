/*
 * errstr.h: filling the `char *errstr, size_t errstr_size` pair in which a
 * failing call says why (librdkafka's convention, used across the worker),
 * and the UTF-8 rules that keep such text storable: reasons end up in
 * PostgreSQL text columns and Avro strings, which must be valid UTF-8, while
 * the names they quote come from writer schemas and may be any bytes.
 */
#ifndef QS_ERRSTR_H
#define QS_ERRSTR_H

#include <stdarg.h>
#include <stddef.h>

#include "compiler.h"

/*
 * printf into errstr; a NULL errstr or a size of 0 is allowed and writes
 * nothing. Output that does not fit is cut at a character boundary, never
 * inside a multi-byte UTF-8 sequence.
 */
QS_PRINTF(3, 4) void errstr_set(char *errstr, size_t size, const char *fmt, ...);
/* errstr_set with a va_list, for callers that add a prefix of their own. */
QS_PRINTF(3, 0) void errstr_vset(char *errstr, size_t size, const char *fmt, va_list ap);

/*
 * The length (1 to 4) of the well-formed UTF-8 character at s, of which n
 * bytes are readable; 0 when s does not start one (a stray continuation
 * byte, an overlong form, a surrogate, a value above U+10FFFF, or a sequence
 * cut short by n).
 */
size_t errstr_utf8_char(const char *s, size_t n);

/*
 * Shortens the NUL-terminated s in place by the incomplete UTF-8 sequence it
 * may end with (what a byte-length cut leaves behind). Other invalid bytes
 * are left for the sink to replace. Returns the new length.
 */
size_t errstr_utf8_trim(char *s);

#endif
