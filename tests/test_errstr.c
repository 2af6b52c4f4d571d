/*
 * test_errstr.c: the error vocabulary (worker/qserror.h) and the errstr text
 * rules (worker/errstr.h): distinct, named outcome codes, errstr_set's cut at
 * a character boundary and the strict UTF-8 reading behind it. Expected
 * values are written out or computed here by walking the characters.
 */
#include <check.h>
#include <string.h>

#include "compiler.h"
#include "errstr.h"
#include "qserror.h"
#include "suites.h"

/*
 * The outcome codes are distinct, each has its own name and meaning, and a
 * value outside the table is named as unknown rather than read as another.
 */
START_TEST(outcome_codes_are_distinct_and_named)
{
	static const struct {
		int code;
		const char *name;
	} codes[] = {{QS_OK, "QS_OK"},         {QS_ERROR, "QS_ERROR"}, {QS_RETRY, "QS_RETRY"},
		     {QS_REJECT, "QS_REJECT"}, {QS_FATAL, "QS_FATAL"}, {QS_FENCED, "QS_FENCED"}};
	ck_assert_int_eq(QS_OK, 0);
	for (size_t i = 0; i < ARRAY_LEN(codes); i++) {
		ck_assert_str_eq(qs_err_name(codes[i].code), codes[i].name);
		ck_assert(codes[i].code <= 0);
		for (size_t j = 0; j < i; j++) {
			ck_assert_int_ne(codes[i].code, codes[j].code);
			ck_assert_str_ne(qs_strerror(codes[i].code), qs_strerror(codes[j].code));
		}
	}
	ck_assert_str_eq(qs_err_name(7), "QS_?");
	ck_assert_str_eq(qs_strerror(-99), "unknown outcome");
}
END_TEST

/* errstr_set cuts at a character boundary: "é" (2 bytes) and "€" (3 bytes) at every buffer size. */
START_TEST(errstr_cuts_at_characters)
{
	static const char *const texts[] = {"field \xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9", "\xe2\x82\xac\xe2\x82\xac!",
					    "\xf0\x9f\x98\x80x\xf0\x9f\x98\x80"};
	for (size_t t = 0; t < ARRAY_LEN(texts); t++) {
		size_t full = strlen(texts[t]);
		for (size_t size = 1; size <= full + 1; size++) {
			char buf[64];
			errstr_set(buf, size, "%s", texts[t]);
			size_t n = strlen(buf);
			/* The longest prefix of whole characters that fits, computed by walking the characters. */
			size_t want = 0;
			for (size_t i = 0; i < full;) {
				size_t len = (unsigned char)texts[t][i] < 0x80   ? 1
					     : (unsigned char)texts[t][i] < 0xe0 ? 2
					     : (unsigned char)texts[t][i] < 0xf0 ? 3
										 : 4;
				if (i + len > size - 1)
					break;
				i += len;
				want = i;
			}
			ck_assert_msg(n == want, "text %zu, size %zu: kept %zu bytes, want %zu", t, size, n, want);
			ck_assert(memcmp(buf, texts[t], n) == 0);
		}
	}
	/* A NULL or empty buffer is left alone. */
	errstr_set(NULL, 10, "x");
	char one[1] = {'z'};
	errstr_set(one, 0, "x");
	ck_assert_int_eq(one[0], 'z');
}
END_TEST

/* What errstr_utf8_char accepts: well-formed UTF-8 only (RFC 3629 table 3-7). */
START_TEST(utf8_char_is_strict)
{
	static const struct {
		const char *s;
		size_t len;
	} cases[] = {
		{"A", 1},
		{"\xc3\xa9", 2},
		{"\xe2\x82\xac", 3},
		{"\xf0\x9f\x98\x80", 4},
		{"\xf4\x8f\xbf\xbf", 4}, /* U+10FFFF */
		{"\x80", 0},             /* a continuation byte alone */
		{"\xc0\xaf", 0},         /* overlong '/' */
		{"\xe0\x80\xaf", 0},     /* overlong */
		{"\xed\xa0\x80", 0},     /* a surrogate, U+D800 */
		{"\xf4\x90\x80\x80", 0}, /* above U+10FFFF */
		{"\xf5\x80\x80\x80", 0},
		{"\xc3", 0}, /* cut short */
		{"\xe2\x82", 0},
		{"\xc3(", 0},
	};
	for (size_t i = 0; i < ARRAY_LEN(cases); i++)
		ck_assert_msg(errstr_utf8_char(cases[i].s, strlen(cases[i].s)) == cases[i].len, "case %zu", i);
	char cut[] = "ab\xe2\x82";
	ck_assert_uint_eq(errstr_utf8_trim(cut), 2);
	char whole[] = "ab\xe2\x82\xac";
	ck_assert_uint_eq(errstr_utf8_trim(whole), 5);
}
END_TEST

Suite *errstr_suite(void)
{
	Suite *s = suite_create("errstr");
	TCase *tc = tcase_create("core");
	tcase_add_test(tc, errstr_cuts_at_characters);
	tcase_add_test(tc, outcome_codes_are_distinct_and_named);
	tcase_add_test(tc, utf8_char_is_strict);
	suite_add_tcase(s, tc);
	return s;
}
