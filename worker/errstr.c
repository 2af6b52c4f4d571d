/* errstr.c: see errstr.h. */
#include "errstr.h"

#include <stdio.h>
#include <string.h>

#include "qserror.h"

size_t errstr_utf8_char(const char *s, size_t n)
{
	const unsigned char *p = (const unsigned char *)s;
	if (n == 0)
		return 0;
	if (p[0] < 0x80)
		return 1;
	/* The second byte's range also excludes overlong forms, surrogates and values above U+10FFFF (RFC 3629). */
	size_t len;
	unsigned char lo = 0x80, hi = 0xbf;
	if (p[0] >= 0xc2 && p[0] <= 0xdf)
		len = 2;
	else if (p[0] >= 0xe0 && p[0] <= 0xef) {
		len = 3;
		if (p[0] == 0xe0)
			lo = 0xa0;
		else if (p[0] == 0xed)
			hi = 0x9f;
	} else if (p[0] >= 0xf0 && p[0] <= 0xf4) {
		len = 4;
		if (p[0] == 0xf0)
			lo = 0x90;
		else if (p[0] == 0xf4)
			hi = 0x8f;
	} else
		return 0;
	if (n < len || p[1] < lo || p[1] > hi)
		return 0;
	for (size_t i = 2; i < len; i++)
		if ((p[i] & 0xc0) != 0x80)
			return 0;
	return len;
}

size_t errstr_utf8_trim(char *s)
{
	size_t n = strlen(s);
	/* A character is at most 4 bytes: only the last 3 can be the start of a cut one. */
	for (size_t back = 1; back <= 3 && back <= n; back++) {
		unsigned char c = (unsigned char)s[n - back];
		if ((c & 0xc0) == 0x80)
			continue; /* a continuation byte: its lead is further back */
		if (c >= 0xc0 && errstr_utf8_char(s + n - back, back) == 0) {
			size_t want = c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : 2;
			if (back < want) /* a lead byte whose sequence the end cut short */
				s[n -= back] = '\0';
		}
		break;
	}
	return n;
}

void errstr_vset(char *errstr, size_t size, const char *fmt, va_list ap)
{
	if (!errstr || size == 0)
		return;
	int n = vsnprintf(errstr, size, fmt, ap);
	if (n >= 0 && (size_t)n >= size)
		errstr_utf8_trim(errstr);
}

void errstr_set(char *errstr, size_t size, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	errstr_vset(errstr, size, fmt, ap);
	va_end(ap);
}

const char *qs_strerror(int code)
{
	switch (code) {
#define QS_ERR_TEXT(name, value, text) \
	case QS_##name:                \
		return text;
		QS_ERRNO_MAP(QS_ERR_TEXT)
#undef QS_ERR_TEXT
	}
	return "unknown outcome";
}

const char *qs_err_name(int code)
{
	switch (code) {
#define QS_ERR_NAME(name, value, text) \
	case QS_##name:                \
		return "QS_" #name;
		QS_ERRNO_MAP(QS_ERR_NAME)
#undef QS_ERR_NAME
	}
	return "QS_?";
}
