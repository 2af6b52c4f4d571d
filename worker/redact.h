/*
 * redact.h: the one place that keeps secrets out of what the worker prints or
 * stores (log lines, configuration errors, dead-letter reasons, librdkafka's
 * log). Configuration registers the secret values it reads (passwords of
 * pg.conninfo, kafka keys naming a password or secret, a registry URL's
 * credentials); redaction then masks, as "***":
 *   - every occurrence of a registered secret;
 *   - the value after `name=` when the name says password, secret or a
 *     private key (`password=x`, `sasl.password = 'x y'`), even when the
 *     value was never registered (libpq or librdkafka quoting a setting);
 *   - the user:password@ of a URL, as ***@ (the user part too).
 * Secrets are registered while the configuration is read, before any client
 * or thread exists; afterwards the list is only read, so redaction is safe
 * from librdkafka's threads.
 */
#ifndef QS_REDACT_H
#define QS_REDACT_H

#include <stdbool.h>
#include <stddef.h>

/* Remembers a value to mask from now on (copied; NULL and "" are ignored). */
void redact_secret(const char *secret);
/* Forgets every registered secret and frees the list (exit, tests). */
void redact_forget(void);
/* Whether a setting of this name (len bytes, case ignored) holds a secret: password, secret, a PEM key. */
bool redact_is_secret_name(const char *name, size_t len);
/*
 * Writes in, redacted, to out (out_size bytes, always NUL-terminated when
 * out_size > 0; out may be NULL when out_size is 0). Returns the length of
 * the whole redacted text, like snprintf, so a caller can size out.
 */
size_t redact_copy(char *out, size_t out_size, const char *in);
/* Redacts text in place, keeping at most size - 1 bytes. */
void redact(char *text, size_t size);

#endif
