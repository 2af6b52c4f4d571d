/*
 * check_main.c: the one runner for every Check suite. Each tests/test_<m>.c
 * exposes `Suite *<m>_suite(void)`, listed once in suites.h.
 *
 * Check selects whole suites and cases (CK_RUN_SUITE, CK_RUN_CASE) but not one
 * test function, so suites.h routes every tcase_add_*test through
 * qs_tcase_add_test here, which leaves out the tests that `-k EXPR` does not
 * match. A test is named "<module>.<function>" (config.secret_keys_are_registered)
 * and EXPR is read as pytest reads its -k, so that tests/run.sh -k means the
 * same in every tier.
 */
#include <check.h>
#include <ctype.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "suites.h"

#undef _tcase_add_test /* here, the real one */

static const char *match_expr; /* NULL: every test */
static bool list_only;

/*
 * pytest's -k grammar, evaluated while it is parsed against one name:
 *   expr = and ("or" and)*    and = not ("and" not)*    not = "not" not | "(" expr ")" | word
 * A word matches when it is a substring of the name, ignoring case.
 */
struct parse {
	const char *s;
	const char *name;
	bool bad;
};

/* The next token (a parenthesis or a run of other non-blank characters): its start and length. */
static size_t token(struct parse *p, const char **start)
{
	while (isspace((unsigned char)*p->s))
		p->s++;
	*start = p->s;
	if (*p->s == '(' || *p->s == ')')
		return 1;
	size_t n = 0;
	while (p->s[n] && !isspace((unsigned char)p->s[n]) && p->s[n] != '(' && p->s[n] != ')')
		n++;
	return n;
}

/* Consumes the next token if it is want. */
static bool accept(struct parse *p, const char *want)
{
	const char *t;
	size_t n = token(p, &t);
	if (n != strlen(want) || memcmp(t, want, n))
		return false;
	p->s = t + n;
	return true;
}

static bool contains_nocase(const char *hay, const char *needle, size_t n)
{
	for (; *hay; hay++)
		if (!strncasecmp(hay, needle, n))
			return true;
	return false;
}

static bool parse_or(struct parse *p);

static bool parse_not(struct parse *p)
{
	if (accept(p, "not"))
		return !parse_not(p);
	if (accept(p, "(")) {
		bool v = parse_or(p);
		if (!accept(p, ")"))
			p->bad = true;
		return v;
	}
	const char *w;
	size_t n = token(p, &w);
	if (n == 0 || *w == ')' || accept(p, "and") || accept(p, "or")) {
		p->bad = true;
		return false;
	}
	p->s = w + n;
	return contains_nocase(p->name, w, n);
}

static bool parse_and(struct parse *p)
{
	bool v = parse_not(p);
	while (accept(p, "and")) {
		bool rhs = parse_not(p); /* parsed even when v is false, to reach the end */
		v = v && rhs;
	}
	return v;
}

static bool parse_or(struct parse *p)
{
	bool v = parse_and(p);
	while (accept(p, "or")) {
		bool rhs = parse_and(p);
		v = v || rhs;
	}
	return v;
}

/* Whether name matches expr; *bad is set when expr is not well formed. */
static bool matches(const char *expr, const char *name, bool *bad)
{
	struct parse p = {expr, name, false};
	bool v = parse_or(&p);
	const char *rest;
	if (token(&p, &rest))
		p.bad = true;
	*bad = p.bad;
	return v;
}

void qs_tcase_add_test(TCase *tc, const TTest *ttest, int signal, int allowed_exit_value, int start, int end)
{
	/* tests/test_<module>.c holds <module>_suite (suites.h), so the file names the suite. */
	const char *base = strrchr(ttest->file, '/');
	base = base ? base + 1 : ttest->file;
	if (!strncmp(base, "test_", 5))
		base += 5;
	int module_len = (int)strcspn(base, ".");
	char name[256];
	snprintf(name, sizeof(name), "%.*s.%s", module_len, base, ttest->name);
	bool bad;
	if (match_expr && !matches(match_expr, name, &bad))
		return;
	if (list_only) {
		const char *suite = getenv("CK_RUN_SUITE");
		if (!suite || !*suite || ((int)strlen(suite) == module_len && !strncmp(suite, base, module_len)))
			puts(name);
		return;
	}
	_tcase_add_test(tc, ttest, signal, allowed_exit_value, start, end);
}

static void usage(FILE *out)
{
	fprintf(out, "usage: check_qualstream [-k EXPR] [--list]\n"
		     "  -k EXPR  run only the tests whose name <module>.<function> matches EXPR, as pytest -k:\n"
		     "           case-insensitive substrings with and, or, not and parentheses\n"
		     "  --list   print the names of the tests that would run, one a line, and run none\n"
		     "Check's variables apply as usual: CK_RUN_SUITE, CK_RUN_CASE, CK_FORK, CK_VERBOSITY...\n");
}

int main(int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "-k") && i + 1 < argc) {
			match_expr = argv[++i];
		} else if (!strcmp(argv[i], "--list")) {
			list_only = true;
		} else if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
			usage(stdout);
			return EXIT_SUCCESS;
		} else {
			usage(stderr);
			return 2;
		}
	}
	bool bad = false;
	if (match_expr)
		matches(match_expr, "", &bad);
	if (bad) {
		fprintf(stderr, "check_qualstream: -k %s: not an expression of words, and, or, not, ( )\n", match_expr);
		return 2;
	}
	SRunner *sr = srunner_create(NULL);
#define QS_SUITE(name) srunner_add_suite(sr, name##_suite());
	QS_SUITES
#undef QS_SUITE
	int failed = 0;
	if (!list_only) {
		srunner_run_all(sr, CK_NORMAL);
		failed = srunner_ntests_failed(sr);
		/* A selection that runs nothing (a suite renamed, a typo in CK_RUN_SUITE) must not pass as green. */
		if (srunner_ntests_run(sr) == 0) {
			fprintf(stderr, "check_qualstream: no test matched the selection\n");
			failed = 1;
		}
	}
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
