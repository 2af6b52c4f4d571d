/* test_redact.c: redaction of secrets from text, against outputs written out by hand. */
#include <check.h>
#include <string.h>

#include "compiler.h"
#include "redact.h"
#include "suites.h"

/* in, redacted in a buffer of ample size. */
static const char *redacted(const char *in)
{
	static char out[512];
	redact_copy(out, sizeof(out), in);
	return out;
}

static void forget(void)
{
	redact_forget();
}

START_TEST(registered_secrets_are_masked_everywhere)
{
	ck_assert_str_eq(redacted("a hunter2 b"), "a hunter2 b"); /* not registered yet */
	redact_secret("hunter2");
	redact_secret("");   /* ignored */
	redact_secret(NULL); /* ignored */
	ck_assert_str_eq(redacted("a hunter2 b xhunter2y hunter2"), "a *** b x***y ***");
	/* A secret that contains another is masked whole, whatever the order they came in. */
	redact_secret("ab");
	redact_secret("xxabyy");
	ck_assert_str_eq(redacted("1 xxabyy 2 ab 3"), "1 *** 2 *** 3");
	redact_secret("hunter2"); /* twice is once */
	ck_assert_str_eq(redacted("hunter2"), "***");
}
END_TEST

START_TEST(values_of_secret_names_are_masked)
{
	/* libpq's keyword form, with spaces around "=", quoted values with escapes. */
	ck_assert_str_eq(redacted("host=db password=s3cr3t user=qs"), "host=db password=*** user=qs");
	ck_assert_str_eq(redacted("password = 'a b\\' c' dbname=x"), "password = *** dbname=x");
	ck_assert_str_eq(redacted("sslpassword=\"k e y\" port=5"), "sslpassword=*** port=5");
	ck_assert_str_eq(redacted("-X: kafka.sasl.password=pw,1 more"), "-X: kafka.sasl.password=*** more");
	ck_assert_str_eq(redacted("SASL.PASSWORD=x"), "SASL.PASSWORD=***");
	ck_assert_str_eq(redacted("sasl.oauthbearer.client.secret=abc"), "sasl.oauthbearer.client.secret=***");
	/* Other names, the word without "=", and an empty value are left alone. */
	ck_assert_str_eq(redacted("user=bob dbname=password"), "user=bob dbname=password");
	ck_assert_str_eq(redacted("password authentication failed for user \"qs\""),
			 "password authentication failed for user \"qs\"");
	ck_assert_str_eq(redacted("empty password="), "empty password=");
	ck_assert_str_eq(redacted("password= next"), "password= ***"); /* libpq allows spaces after "=" */
	ck_assert_str_eq(redacted("passwords_x=1"), "passwords_x=***");
}
END_TEST

START_TEST(url_credentials_are_masked)
{
	ck_assert_str_eq(redacted("GET http://user:pw@reg:8081/schemas/ids/3: refused"),
			 "GET http://***@reg:8081/schemas/ids/3: refused");
	ck_assert_str_eq(redacted("postgresql://qs:p%40ss@db/x?sslmode=verify-full"),
			 "postgresql://***@db/x?sslmode=verify-full");
	ck_assert_str_eq(redacted("https://apikey@reg"), "https://***@reg");
	/* An "@" after the host is part of the path or the text, not credentials. */
	ck_assert_str_eq(redacted("http://reg/a@b and mail@example.org"), "http://reg/a@b and mail@example.org");
	ck_assert_str_eq(redacted("see http://reg @ noon"), "see http://reg @ noon");
}
END_TEST

START_TEST(sizes_like_snprintf)
{
	char small[8];
	ck_assert_uint_eq(redact_copy(small, sizeof(small), "password=abcdefgh"), strlen("password=***"));
	ck_assert_str_eq(small, "passwor");
	ck_assert_uint_eq(redact_copy(NULL, 0, "http://u:p@h"), strlen("http://***@h"));
	/* In place, where the mask is longer than what it hides: cut at the buffer's size. */
	redact_secret("ab");
	char text[8] = "ab ab";
	redact(text, sizeof(text));
	ck_assert_str_eq(text, "*** ***");
	char tiny[6] = "ab ab";
	redact(tiny, sizeof(tiny));
	ck_assert_str_eq(tiny, "*** *");
}
END_TEST

START_TEST(secret_names)
{
	static const char *const secret[] = {"password",
					     "sasl.password",
					     "ssl.key.password",
					     "SSL.Keystore.Password",
					     "sasl.oauthbearer.client.secret",
					     "ssl.key.pem",
					     "sasl.oauthbearer.config",
					     "sslpassword"};
	static const char *const plain[] = {"sasl.username", "ssl.key.location",  "group.id",
					    "pg.conninfo",   "bootstrap.servers", "passwd"};
	for (size_t i = 0; i < ARRAY_LEN(secret); i++)
		ck_assert_msg(redact_is_secret_name(secret[i], strlen(secret[i])), "%s", secret[i]);
	for (size_t i = 0; i < ARRAY_LEN(plain); i++)
		ck_assert_msg(!redact_is_secret_name(plain[i], strlen(plain[i])), "%s", plain[i]);
	/* Only the first len bytes count. */
	ck_assert(!redact_is_secret_name("password", 7));
}
END_TEST

Suite *redact_suite(void)
{
	Suite *s = suite_create("redact");
	TCase *tc = tcase_create("core");
	tcase_add_checked_fixture(tc, NULL, forget);
	tcase_add_test(tc, registered_secrets_are_masked_everywhere);
	tcase_add_test(tc, values_of_secret_names_are_masked);
	tcase_add_test(tc, url_credentials_are_masked);
	tcase_add_test(tc, sizes_like_snprintf);
	tcase_add_test(tc, secret_names);
	suite_add_tcase(s, tc);
	return s;
}
