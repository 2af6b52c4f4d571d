/* redact.c: see redact.h. */
#include "redact.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "compiler.h"
#include "xalloc.h"

#define MASK "***"

/* Registered secrets, longest first, so a secret that contains another is masked whole. */
static char **secrets;
static size_t n_secrets;

void redact_secret(const char *secret)
{
	if (!secret || !*secret)
		return;
	size_t len = strlen(secret), at = n_secrets;
	for (size_t i = 0; i < n_secrets; i++) {
		if (!strcmp(secrets[i], secret))
			return;
		if (at == n_secrets && strlen(secrets[i]) < len)
			at = i;
	}
	secrets = xrealloc(secrets, (n_secrets + 1) * sizeof(*secrets), "the secrets to redact");
	memmove(secrets + at + 1, secrets + at, (n_secrets - at) * sizeof(*secrets));
	secrets[at] = xmalloc(len + 1, "a secret to redact");
	memcpy(secrets[at], secret, len + 1);
	n_secrets++;
}

void redact_forget(void)
{
	for (size_t i = 0; i < n_secrets; i++)
		free(secrets[i]);
	free(secrets);
	secrets = NULL;
	n_secrets = 0;
}

bool redact_is_secret_name(const char *name, size_t len)
{
	/* librdkafka: sasl.password, ssl.key.password, sasl.oauthbearer.client.secret, ssl.key.pem,
	 * sasl.oauthbearer.config (may hold a client secret); libpq: password, sslpassword. */
	static const char *const words[] = {"password", "secret", "key.pem", "oauthbearer.config"};
	for (size_t w = 0; w < ARRAY_LEN(words); w++) {
		size_t n = strlen(words[w]);
		for (size_t i = 0; i + n <= len; i++)
			if (!strncasecmp(name + i, words[w], n))
				return true;
	}
	return false;
}

/* The output being built: bytes past out_size are counted, not written. */
struct sink {
	char *out;
	size_t size, len;
};

static void emit(struct sink *s, const char *p, size_t n)
{
	for (size_t i = 0; i < n; i++, s->len++)
		if (s->len + 1 < s->size)
			s->out[s->len] = p[i];
}

static bool name_char(char c)
{
	return isalnum((unsigned char)c) || c == '.' || c == '_' || c == '-';
}

/* A registered secret starting at p: its length, else 0. */
static size_t secret_at(const char *p)
{
	for (size_t i = 0; i < n_secrets; i++) {
		size_t n = strlen(secrets[i]);
		if (!strncmp(p, secrets[i], n))
			return n;
	}
	return 0;
}

/*
 * At "://": the length of "user:password@" that follows (stopping at what
 * ends a URL's authority), else 0.
 */
static size_t userinfo_at(const char *p)
{
	size_t n = 0;
	while (p[n] && !strchr("/?#@ \t\r\n\"'<>", p[n]))
		n++;
	return p[n] == '@' && n > 0 ? n + 1 : 0;
}

/*
 * At the start of a name: when it says secret and `=` follows (spaces
 * allowed around it), *value_at is the offset of the value and the return is
 * the value's length (a quoted value up to its closing quote, else up to
 * white space); otherwise 0.
 */
static size_t secret_value_at(const char *p, size_t *value_at)
{
	size_t n = 0;
	while (name_char(p[n]))
		n++;
	size_t eq = n;
	while (p[eq] == ' ' || p[eq] == '\t')
		eq++;
	if (!n || p[eq] != '=' || !redact_is_secret_name(p, n))
		return 0;
	size_t v = eq + 1;
	while (p[v] == ' ' || p[v] == '\t')
		v++;
	*value_at = v;
	size_t end = v;
	if (p[v] == '\'' || p[v] == '"') {
		for (end = v + 1; p[end] && p[end] != p[v]; end++)
			if (p[end] == '\\' && p[end + 1])
				end++;
		if (p[end])
			end++; /* the closing quote */
	} else {
		while (p[end] && !isspace((unsigned char)p[end]))
			end++;
	}
	return end - v;
}

size_t redact_copy(char *out, size_t out_size, const char *in)
{
	struct sink s = {out, out_size, 0};
	for (size_t i = 0; in[i];) {
		size_t n, value_at;
		if ((n = secret_at(in + i))) {
			emit(&s, MASK, strlen(MASK));
			i += n;
		} else if (!strncmp(in + i, "://", 3) && (n = userinfo_at(in + i + 3))) {
			emit(&s, "://" MASK "@", 3 + strlen(MASK) + 1);
			i += 3 + n;
		} else if ((i == 0 || !name_char(in[i - 1])) && (n = secret_value_at(in + i, &value_at))) {
			emit(&s, in + i, value_at);
			emit(&s, MASK, strlen(MASK));
			i += value_at + n;
		} else {
			emit(&s, in + i, 1);
			i++;
		}
	}
	if (out_size)
		out[s.len < out_size ? s.len : out_size - 1] = '\0';
	return s.len;
}

void redact(char *text, size_t size)
{
	if (!size)
		return;
	char *copy = xmalloc(size, "a text to redact");
	redact_copy(copy, size, text);
	memcpy(text, copy, strlen(copy) + 1);
	free(copy);
}
