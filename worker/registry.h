/*
 * registry.h: where writer schemas come from. Either a Confluent-compatible
 * schema registry over HTTP(S) (libcurl) or a directory of `<id>.avsc` files
 * (tests, air-gapped deployments). Answers are cached for the life of the
 * handle, "not found" included; transient failures are not cached.
 *
 * A handle is not thread-safe: give each thread its own, or lock around it.
 */
#ifndef QS_REGISTRY_H
#define QS_REGISTRY_H

#include <stddef.h>
#include <stdint.h>

#include "compiler.h"
#include "qserror.h"

struct registry;

/*
 * Opens a schema source: exactly one of `url` (base URL of a schema registry,
 * e.g. "http://registry:8081", user:password@ allowed) and `dir` (a directory
 * holding `<id>.avsc` files) must be non-NULL. Both strings are copied.
 * Returns NULL with a reason in errstr when the arguments are unusable (both
 * or neither given, URL does not parse, directory cannot be opened).
 * Nothing is fetched yet. Caller frees with registry_free.
 */
struct registry *registry_new(const char *url, const char *dir, char *errstr, size_t errstr_size) QS_MUSTCHECK;

/* Frees the handle and every cached schema text. NULL is a no-op. */
void registry_free(struct registry *reg);

/*
 * The writer schema JSON text registered under `id`.
 * QS_OK: *schema_json is NUL-terminated text, borrowed until
 * registry_free (it lives in the cache). QS_REJECT: no such id (file
 * `<dir>/<id>.avsc` missing, HTTP 404, id <= 0, or the id names a schema that
 * is not Avro); messages written with it are dead letters. QS_RETRY:
 * the registry could not be asked (connection refused, timeout, HTTP 5xx,
 * 401/403, a malformed answer, an unreadable file): nothing is cached and the
 * caller should retry later. errstr says why on either failure.
 */
int registry_lookup(struct registry *reg, int32_t id, const char **schema_json, char *errstr,
		    size_t errstr_size) QS_MUSTCHECK;

/*
 * The id of one of the worker's own output schemas (dead_letter.avsc, ...),
 * registering it if need be. URL mode POSTs `schema_json` to
 * {url}/subjects/{subject}/versions, which is idempotent for an identical
 * schema. Directory mode ignores `subject` and looks for a `<id>.avsc` file
 * holding a record with the same full name (e.g. qualstream.DeadLetter):
 * among several, one whose JSON equals `schema_json` wins, else the highest
 * id. Both strings are borrowed for the call.
 * QS_OK sets *id. QS_REJECT: no matching file, `schema_json` is
 * not a named record, or the registry refused the schema (HTTP 409 or 422).
 * QS_RETRY: as for registry_lookup. Successes are cached per
 * (subject, schema text).
 */
int registry_id_for(struct registry *reg, const char *subject, const char *schema_json, int32_t *id, char *errstr,
		    size_t errstr_size) QS_MUSTCHECK;

#endif
