/*
 * test_config.c: what configuration does with secrets. Every value a secret
 * key holds is registered for redaction as it is read, and no configuration
 * error quotes one: a line without "=", an unparseable pg.conninfo, librdkafka
 * judging a property.
 */
#include <check.h>
#include <string.h>

#include "compiler.h"
#include "config.h"
#include "redact.h"
#include "suites.h"

static struct config cfg;
static char err[1024];

static void setup(void)
{
	config_init(&cfg);
	err[0] = '\0';
}

static void teardown(void)
{
	config_free(&cfg);
	redact_forget();
}

/* Whether text, redacted, still holds needle. */
static bool leaks(const char *text, const char *needle)
{
	char out[1024];
	redact_copy(out, sizeof(out), text);
	return strstr(out, needle) != NULL;
}

START_TEST(line_without_equals_is_not_echoed)
{
	static const char *const lines[] = {"kafka.sasl.password hunter2", "hunter2", "pg.conninfo password hunter2"};
	for (size_t i = 0; i < ARRAY_LEN(lines); i++) {
		ck_assert_int_eq(config_set(&cfg, lines[i], "-X", err, sizeof(err)), -1);
		ck_assert_str_eq(err,
				 "-X: expected key=value, got a line without \"=\" (not shown: it may hold a secret)");
	}
}
END_TEST

START_TEST(secret_keys_are_registered)
{
	ck_assert_int_eq(config_set(&cfg, "kafka.sasl.password=Pw-kafka-1", "-X", err, sizeof(err)), 0);
	ck_assert_int_eq(config_set(&cfg, "kafka.ssl.key.password = Pw-key-2", "f:2", err, sizeof(err)), 0);
	ck_assert(leaks("a Pw-kafka-1 b", "b")); /* the rest of the text stays */
	ck_assert(!leaks("a Pw-kafka-1 b", "Pw-kafka-1"));
	ck_assert(!leaks("Pw-key-2", "Pw-key-2"));
	/* Unknown keys too, when their name says secret: the value is never shown in the error either. */
	ck_assert_int_eq(config_set(&cfg, "pg.password=Pw-unknown-3", "f:3", err, sizeof(err)), -1);
	ck_assert_str_eq(err, "f:3: unknown key \"pg.password\"");
	ck_assert(!leaks("Pw-unknown-3", "Pw-unknown-3"));
	ck_assert_int_eq(config_set(&cfg, "kafka.sasl.secret.thing=Pw-rdkafka-4", "f:4", err, sizeof(err)), -1);
	ck_assert(strstr(err, "f:4: kafka.sasl.secret.thing: ") == err);
	ck_assert(!strstr(err, "Pw-rdkafka-4"));
	ck_assert(!leaks("Pw-rdkafka-4", "Pw-rdkafka-4"));
	/* A plain key registers nothing. */
	ck_assert_int_eq(config_set(&cfg, "topics.alerts=alerts-topic", "f:5", err, sizeof(err)), 0);
	ck_assert(leaks("alerts-topic", "alerts-topic"));
}
END_TEST

START_TEST(conninfo_passwords_are_registered)
{
	ck_assert_int_eq(config_set(&cfg, "pg.conninfo=host=db password='Pw pg 1' sslpassword=Pw-ssl-2", "f:1", err,
				    sizeof(err)),
			 0);
	ck_assert(!leaks("FATAL: Pw pg 1", "Pw pg 1"));
	ck_assert(!leaks("Pw-ssl-2", "Pw-ssl-2"));
	/* URI form: libpq's decoded password is registered, the raw one is masked as credentials. */
	ck_assert_int_eq(config_set(&cfg, "pg.conninfo=postgresql://qs:Pw%2Duri@db/x", "f:2", err, sizeof(err)), 0);
	ck_assert(!leaks("Pw-uri", "Pw-uri"));
	ck_assert(!leaks("postgresql://qs:Pw%2Duri@db/x", "Pw%2Duri"));
}
END_TEST

START_TEST(unparseable_conninfo_is_refused_without_quoting_it)
{
	/* libpq's own reason would be: missing "=" after "Pw-bare-1" in connection info string. */
	ck_assert_int_eq(config_set(&cfg, "pg.conninfo=host=db user=qs Pw-bare-1", "f:7", err, sizeof(err)), -1);
	ck_assert(strstr(err, "f:7: pg.conninfo: libpq cannot parse it") == err);
	ck_assert(!strstr(err, "Pw-bare-1"));
	ck_assert_int_eq(config_set(&cfg, "pg.conninfo=host=db password='Pw-unterminated", "f:8", err, sizeof(err)),
			 -1);
	ck_assert(!strstr(err, "Pw-unterminated"));
	ck_assert_ptr_null(cfg.pg_conninfo);
}
END_TEST

START_TEST(registry_url_credentials_are_registered)
{
	ck_assert_int_eq(config_set(&cfg, "schema.registry.url=https://key:Pw-reg-1@reg:8081", "f:1", err, sizeof(err)),
			 0);
	ck_assert(!leaks("Could not resolve host; Pw-reg-1", "Pw-reg-1"));
	ck_assert(leaks("key", "key"));
	/* An API key alone as the user part is the secret. */
	ck_assert_int_eq(config_set(&cfg, "schema.registry.url=https://Pw-apikey-2@reg", "f:2", err, sizeof(err)), 0);
	ck_assert(!leaks("Pw-apikey-2", "Pw-apikey-2"));
	/* An "@" in the path is no credential. */
	ck_assert_int_eq(config_set(&cfg, "schema.registry.url=https://reg/a@b", "f:3", err, sizeof(err)), 0);
	ck_assert(leaks("reg/a", "reg/a"));
}
END_TEST

Suite *config_suite(void)
{
	Suite *s = suite_create("config");
	TCase *tc = tcase_create("secrets");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, line_without_equals_is_not_echoed);
	tcase_add_test(tc, secret_keys_are_registered);
	tcase_add_test(tc, conninfo_passwords_are_registered);
	tcase_add_test(tc, unparseable_conninfo_is_refused_without_quoting_it);
	tcase_add_test(tc, registry_url_credentials_are_registered);
	suite_add_tcase(s, tc);
	return s;
}
