/*
 * registry.c: writer schemas by id, from a Confluent-compatible schema
 * registry (GET /schemas/ids/{id}, POST /subjects/{subject}/versions) or from
 * a directory of `<id>.avsc` files. Entry points: registry_new,
 * registry_lookup (input schemas, cached forever including "not found") and
 * registry_id_for (the worker's output schemas).
 *
 * The one judgement this module makes is which failures are the message's
 * fault (QS_REJECT: dead-letter it) and which are the
 * infrastructure's (QS_RETRY: stall and retry). When unsure it says
 * RETRY: stalling on a broken registry is recoverable, dead-lettering good
 * data is not. Running out of memory is one of those failures (a reason and
 * QS_RETRY, or NULL from registry_new), not an abort: allocation here uses
 * plain malloc and strdup, checked, rather than xalloc.h.
 */
#include "registry.h"

#include <curl/curl.h>
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "compiler.h"
#include "errstr.h"
#include "redact.h"

#define CONNECT_TIMEOUT_MS 5000L
#define TOTAL_TIMEOUT_MS 15000L
#define MAX_SCHEMA_BYTES (4u << 20) /* larger answers or files are refused */

/*
 * A stream of garbage can name any number of schema ids. Remembering why each
 * is unknown keeps dead-letter reasons identical and spares the registry, but
 * only up to this many: past it, an unknown id is asked again each time, so
 * hostile input costs lookups, never unbounded memory.
 */
#define MAX_UNKNOWN_CACHED 4096

/* One slot of the id -> schema cache (open addressing, linear probing). */
struct cached {
	int32_t id;
	bool used;
	bool found;
	char *text; /* found: the schema; else why it is unknown (NULL if memory ran out) */
};

/* One registry_id_for answer. */
struct id_cached {
	struct id_cached *next;
	char *subject;
	char *schema;
	int32_t id;
};

struct registry {
	char *url;   /* base URL without trailing '/', or NULL */
	char *shown; /* url with any user:password@ masked, for messages */
	char *dir;   /* or NULL */
	CURL *curl;
	bool curl_global;
	struct curl_slist *get_headers;
	struct curl_slist *post_headers;
	struct cached *slots;
	size_t cap; /* power of two, or 0 */
	size_t count;
	size_t unknown; /* cached "not found" answers, at most MAX_UNKNOWN_CACHED */
	struct id_cached *ids;
};

/* An HTTP response body, capped at MAX_SCHEMA_BYTES. */
struct body {
	char *data;
	size_t len;
	bool too_big;
};

/* Sets up URL mode: the URL checked, libcurl ready. Returns 0 or -1 with
 * errstr set; what it allocated is freed by registry_free. */
static int init_http(struct registry *reg, const char *url, char *errstr, size_t errstr_size)
{
	int rc = -1;
	CURLU *parsed = NULL;

	reg->url = strdup(url);
	if (!reg->url)
		goto nomem;
	for (size_t n = strlen(reg->url); n > 0 && reg->url[n - 1] == '/'; n--)
		reg->url[n - 1] = '\0';
	size_t shown_len = redact_copy(NULL, 0, reg->url);
	reg->shown = malloc(shown_len + 1);
	if (!reg->shown)
		goto nomem;
	redact_copy(reg->shown, shown_len + 1, reg->url);
	/* Reject a URL libcurl cannot use now, at start-up, rather than as an
	 * endless stream of RETRYs later. */
	parsed = curl_url();
	if (!parsed)
		goto nomem;
	if (curl_url_set(parsed, CURLUPART_URL, reg->url, 0) != CURLUE_OK || strncmp(reg->url, "http", 4) != 0) {
		errstr_set(errstr, errstr_size, "schema registry URL %s: not an http(s) URL", reg->shown);
		goto fail;
	}
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		errstr_set(errstr, errstr_size, "schema registry: libcurl initialisation failed");
		goto fail;
	}
	reg->curl_global = true;
	reg->curl = curl_easy_init();
	if (!reg->curl) {
		errstr_set(errstr, errstr_size, "schema registry: cannot create a libcurl handle");
		goto fail;
	}
	const char *accept = "Accept: application/vnd.schemaregistry.v1+json, application/json";
	reg->get_headers = curl_slist_append(NULL, accept);
	reg->post_headers = curl_slist_append(NULL, accept);
	if (!reg->get_headers || !reg->post_headers)
		goto nomem;
	/* No "Expect: 100-continue": some registries and proxies never answer it,
	 * which costs a second per registration. */
	const char *post_extra[] = {"Content-Type: application/vnd.schemaregistry.v1+json", "Expect:"};
	for (size_t i = 0; i < ARRAY_LEN(post_extra); i++) {
		struct curl_slist *more = curl_slist_append(reg->post_headers, post_extra[i]);
		if (!more)
			goto nomem;
		reg->post_headers = more;
	}
	rc = 0;
	goto fail;
nomem:
	errstr_set(errstr, errstr_size, "schema registry: out of memory");
fail:
	curl_url_cleanup(parsed);
	return rc;
}

struct registry *registry_new(const char *url, const char *dir, char *errstr, size_t errstr_size)
{
	struct registry *reg = NULL;
	DIR *d = NULL;

	if ((url == NULL) == (dir == NULL)) {
		errstr_set(errstr, errstr_size, "schema registry: give exactly one of a URL and a directory");
		goto fail;
	}
	reg = calloc(1, sizeof(*reg));
	if (!reg) {
		errstr_set(errstr, errstr_size, "schema registry: out of memory");
		goto fail;
	}
	if (url) {
		if (init_http(reg, url, errstr, errstr_size) != 0)
			goto fail;
		return reg;
	}
	d = opendir(dir);
	if (!d) {
		errstr_set(errstr, errstr_size, "schema directory %s: %s", dir, strerror(errno));
		goto fail;
	}
	closedir(d);
	reg->dir = strdup(dir);
	if (!reg->dir) {
		errstr_set(errstr, errstr_size, "schema registry: out of memory");
		goto fail;
	}
	return reg;
fail:
	registry_free(reg);
	return NULL;
}

void registry_free(struct registry *reg)
{
	if (!reg)
		return;
	for (size_t i = 0; i < reg->cap; i++)
		free(reg->slots[i].text);
	free(reg->slots);
	while (reg->ids) {
		struct id_cached *next = reg->ids->next;
		free(reg->ids->subject);
		free(reg->ids->schema);
		free(reg->ids);
		reg->ids = next;
	}
	curl_slist_free_all(reg->get_headers);
	curl_slist_free_all(reg->post_headers);
	if (reg->curl)
		curl_easy_cleanup(reg->curl);
	if (reg->curl_global)
		curl_global_cleanup();
	free(reg->url);
	free(reg->shown);
	free(reg->dir);
	free(reg);
}

/* ---- the id -> schema cache ------------------------------------------- */

static size_t slot_of(const struct registry *reg, int32_t id)
{
	uint32_t h = (uint32_t)id * 2654435761u; /* Knuth's multiplicative hash */
	size_t i = h & (reg->cap - 1);
	while (reg->slots[i].used && reg->slots[i].id != id)
		i = (i + 1) & (reg->cap - 1);
	return i;
}

static struct cached *cache_find(const struct registry *reg, int32_t id)
{
	if (reg->cap == 0)
		return NULL;
	struct cached *c = &reg->slots[slot_of(reg, id)];
	return c->used ? c : NULL;
}

/* Caches `text` (taken over; the schema, or why the id is unknown). Returns
 * false on ENOMEM, when `text` has been freed. */
static bool cache_put(struct registry *reg, int32_t id, bool found, char *text)
{
	if ((reg->count + 1) * 2 > reg->cap) {
		size_t cap = reg->cap ? reg->cap * 2 : 64;
		struct cached *slots = calloc(cap, sizeof(*slots));
		if (!slots) {
			free(text);
			return false;
		}
		struct cached *old = reg->slots;
		size_t old_cap = reg->cap;
		reg->slots = slots;
		reg->cap = cap;
		for (size_t i = 0; i < old_cap; i++)
			if (old[i].used)
				reg->slots[slot_of(reg, old[i].id)] = old[i];
		free(old);
	}
	struct cached *c = &reg->slots[slot_of(reg, id)];
	c->used = true;
	c->id = id;
	c->found = found;
	c->text = text;
	reg->count++;
	return true;
}

/* ---- files ------------------------------------------------------------ */

/*
 * Reads a whole schema file into a NUL-terminated string (caller frees).
 * QS_REJECT when it does not exist, is too large or holds a NUL byte;
 * QS_RETRY for any other I/O error (permissions, EIO), which is the
 * deployment's problem, not the message's.
 */
static int read_schema_file(const char *path, char **text, char *errstr, size_t errstr_size)
{
	int rc = QS_RETRY;
	char *buf = NULL;
	FILE *f = fopen(path, "rb");

	if (!f) {
		rc = errno == ENOENT ? QS_REJECT : QS_RETRY;
		if (errno == ENOENT)
			errstr_set(errstr, errstr_size, "no file %s", path);
		else
			errstr_set(errstr, errstr_size, "%s: %s", path, strerror(errno));
		goto fail;
	}
	buf = malloc(MAX_SCHEMA_BYTES + 1);
	if (!buf) {
		errstr_set(errstr, errstr_size, "%s: out of memory", path);
		goto fail;
	}
	size_t len = fread(buf, 1, MAX_SCHEMA_BYTES + 1, f);
	if (ferror(f)) {
		errstr_set(errstr, errstr_size, "%s: read error", path);
		goto fail;
	}
	if (len > MAX_SCHEMA_BYTES || memchr(buf, '\0', len)) {
		rc = QS_REJECT;
		errstr_set(errstr, errstr_size, "%s: not a schema (over %u bytes or holds a NUL byte)", path,
			   MAX_SCHEMA_BYTES);
		goto fail;
	}
	buf[len] = '\0';
	char *shrunk = realloc(buf, len + 1);
	*text = shrunk ? shrunk : buf;
	fclose(f);
	return QS_OK;

fail:
	free(buf);
	if (f)
		fclose(f);
	return rc;
}

/* ---- HTTP ------------------------------------------------------------- */

static size_t on_data(char *ptr, size_t size, size_t nmemb, void *arg)
{
	struct body *b = arg;
	size_t n = size * nmemb;
	if (n > MAX_SCHEMA_BYTES - b->len) {
		b->too_big = true;
		return 0; /* makes libcurl fail the transfer with CURLE_WRITE_ERROR */
	}
	char *data = realloc(b->data, b->len + n + 1);
	if (!data)
		return 0;
	memcpy(data + b->len, ptr, n);
	b->len += n;
	data[b->len] = '\0';
	b->data = data;
	return n;
}

/*
 * One request: GET `url`, or POST `post` when it is not NULL. Returns
 * QS_OK when an HTTP response arrived (any status, in *status; body in
 * *body, caller frees body->data), QS_RETRY when none did.
 */
static int http(struct registry *reg, const char *url, const char *post, long *status, struct body *body, char *errstr,
		size_t errstr_size)
{
	CURL *curl = reg->curl;
	char curl_err[CURL_ERROR_SIZE] = "";

	*body = (struct body){0};
	curl_easy_reset(curl);
	if (curl_easy_setopt(curl, CURLOPT_URL, url) != CURLE_OK ||
	    curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https") != CURLE_OK ||
	    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L) != CURLE_OK ||
	    curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, CONNECT_TIMEOUT_MS) != CURLE_OK ||
	    curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, TOTAL_TIMEOUT_MS) != CURLE_OK ||
	    curl_easy_setopt(curl, CURLOPT_USERAGENT, "qualstream") != CURLE_OK ||
	    curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, curl_err) != CURLE_OK ||
	    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_data) != CURLE_OK ||
	    curl_easy_setopt(curl, CURLOPT_WRITEDATA, body) != CURLE_OK ||
	    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, post ? reg->post_headers : reg->get_headers) != CURLE_OK ||
	    (post && curl_easy_setopt(curl, CURLOPT_POSTFIELDS, post) != CURLE_OK)) {
		errstr_set(errstr, errstr_size, "schema registry %s: cannot set up the request", reg->shown);
		return QS_RETRY;
	}
	CURLcode res = curl_easy_perform(curl);
	/* The error buffer must not outlive this frame inside the handle. */
	(void)curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, NULL);
	redact(curl_err, sizeof(curl_err)); /* it can quote the URL, credentials included */
	if (res != CURLE_OK) {
		if (body->too_big)
			errstr_set(errstr, errstr_size, "schema registry %s: answer larger than %u bytes", reg->shown,
				   MAX_SCHEMA_BYTES);
		else
			errstr_set(errstr, errstr_size, "schema registry %s unreachable: %s", reg->shown,
				   curl_err[0] ? curl_err : curl_easy_strerror(res));
		free(body->data);
		*body = (struct body){0};
		return QS_RETRY;
	}
	(void)curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, status);
	return QS_OK;
}

/* The "message" of a Confluent error body, or a placeholder. Borrowed from
 * `root` (may be NULL). */
static const char *error_message(json_t *root)
{
	const char *msg = json_string_value(json_object_get(root, "message"));
	return msg ? msg : "no message";
}

/*
 * One request to the registry at reg->url followed by the path that `fmt`
 * formats: GET, or POST `post` when it is not NULL. QS_OK when an answer
 * arrived: its status in *status and its body parsed in *root (NULL when it
 * is not JSON; caller frees with json_decref). QS_RETRY when none did.
 */
QS_PRINTF(7, 8)
static int request(struct registry *reg, const char *post, long *status, json_t **root, char *errstr,
		   size_t errstr_size, const char *fmt, ...)
{
	char url[2048];
	size_t base = strlen(reg->url);
	va_list ap;
	va_start(ap, fmt);
	int n = base < sizeof(url) ? vsnprintf(url + base, sizeof(url) - base, fmt, ap) : -1;
	va_end(ap);
	*root = NULL;
	if (n < 0 || (size_t)n >= sizeof(url) - base) {
		errstr_set(errstr, errstr_size, "schema registry URL too long");
		return QS_RETRY;
	}
	memcpy(url, reg->url, base);
	struct body body;
	int rc = http(reg, url, post, status, &body, errstr, errstr_size);
	if (rc == QS_OK && body.data)
		*root = json_loadb(body.data, body.len, 0, NULL);
	free(body.data);
	return rc;
}

static int http_lookup(struct registry *reg, int32_t id, char **text, char *errstr, size_t errstr_size)
{
	json_t *root;
	long status = 0;
	int rc = request(reg, NULL, &status, &root, errstr, errstr_size, "/schemas/ids/%" PRId32, id);
	if (rc != QS_OK)
		goto fail;
	if (status == 404) {
		rc = QS_REJECT;
		errstr_set(errstr, errstr_size, "not found in %s: %s", reg->shown, error_message(root));
		goto fail;
	}
	rc = QS_RETRY;
	if (status != 200) {
		errstr_set(errstr, errstr_size, "schema registry %s: HTTP %ld for schema id %" PRId32 " (%s)",
			   reg->shown, status, id, error_message(root));
		goto fail;
	}
	const char *schema = json_string_value(json_object_get(root, "schema"));
	if (!schema) {
		errstr_set(errstr, errstr_size, "schema registry %s: malformed answer for schema id %" PRId32,
			   reg->shown, id);
		goto fail;
	}
	const char *type = json_string_value(json_object_get(root, "schemaType"));
	if (type && strcmp(type, "AVRO") != 0) {
		rc = QS_REJECT;
		errstr_set(errstr, errstr_size, "a %s schema, not Avro", type);
		goto fail;
	}
	*text = strdup(schema);
	if (!*text) {
		errstr_set(errstr, errstr_size, "schema registry: out of memory");
		goto fail;
	}
	rc = QS_OK;
fail:
	json_decref(root);
	return rc;
}

int registry_lookup(struct registry *reg, int32_t id, const char **schema_json, char *errstr, size_t errstr_size)
{
	const struct cached *c = cache_find(reg, id);
	if (c) {
		if (!c->found) {
			errstr_set(errstr, errstr_size, "%s", c->text ? c->text : "unknown");
			return QS_REJECT;
		}
		*schema_json = c->text;
		return QS_OK;
	}
	if (id <= 0) {
		/* Registries number schemas from 1; do not ask, and do not let
		 * hostile ids grow the cache. */
		errstr_set(errstr, errstr_size, "not a registry id");
		return QS_REJECT;
	}

	/* The reason for an unknown id is cached with it, so every message
	 * with that id is dead-lettered with the same words. */
	char why[512] = "";
	char *text = NULL;
	int rc;
	if (reg->dir) {
		char path[4096];
		if ((size_t)snprintf(path, sizeof(path), "%s/%" PRId32 ".avsc", reg->dir, id) >= sizeof(path)) {
			errstr_set(errstr, errstr_size, "schema directory path too long");
			return QS_RETRY;
		}
		rc = read_schema_file(path, &text, why, sizeof(why));
	} else {
		rc = http_lookup(reg, id, &text, why, sizeof(why));
	}
	errstr_set(errstr, errstr_size, "%s", why);
	if (rc == QS_RETRY)
		return rc;
	if (rc == QS_REJECT) {
		if (reg->unknown >= MAX_UNKNOWN_CACHED)
			return rc;
		reg->unknown++;
		text = strdup(why); /* NULL if memory ran out: then the reason is lost, not the answer */
	}
	if (!cache_put(reg, id, rc == QS_OK, text)) {
		errstr_set(errstr, errstr_size, "schema registry: out of memory");
		return QS_RETRY;
	}
	if (rc == QS_OK)
		*schema_json = text;
	return rc;
}

/* ---- output schema ids ------------------------------------------------- */

/* The full name of a record schema ("ns.Name"), caller frees; NULL when
 * `schema` is not a named record. */
static char *record_full_name(json_t *schema)
{
	const char *type = json_string_value(json_object_get(schema, "type"));
	const char *name = json_string_value(json_object_get(schema, "name"));
	const char *space = json_string_value(json_object_get(schema, "namespace"));
	if (!type || strcmp(type, "record") != 0 || !name || !name[0])
		return NULL;
	if (strchr(name, '.') || !space || !space[0])
		return strdup(name);
	size_t len = strlen(space) + 1 + strlen(name) + 1;
	char *full = malloc(len);
	if (full)
		snprintf(full, len, "%s.%s", space, name);
	return full;
}

/* True when `name` is "<digits>.avsc" with a positive int32 id, stored in *id. */
static bool schema_file_id(const char *name, int32_t *id)
{
	const char *p = name;
	long long v = 0;
	while (*p >= '0' && *p <= '9') {
		v = v * 10 + (*p - '0');
		if (v > INT32_MAX)
			return false;
		p++;
	}
	if (p == name || strcmp(p, ".avsc") != 0 || v == 0)
		return false;
	*id = (int32_t)v;
	return true;
}

static int dir_id_for(struct registry *reg, const char *schema_json, int32_t *id, char *errstr, size_t errstr_size)
{
	int rc = QS_REJECT;
	json_t *want = NULL;
	char *want_name = NULL;
	DIR *d = NULL;
	int32_t best = 0;
	bool best_equal = false;

	want = json_loads(schema_json, 0, NULL);
	want_name = want ? record_full_name(want) : NULL;
	if (!want_name) {
		errstr_set(errstr, errstr_size, "the schema to register is not a named Avro record");
		goto fail;
	}
	d = opendir(reg->dir);
	if (!d) {
		rc = QS_RETRY;
		errstr_set(errstr, errstr_size, "schema directory %s: %s", reg->dir, strerror(errno));
		goto fail;
	}
	struct dirent *de;
	while ((de = readdir(d)) != NULL) {
		int32_t file_id;
		if (!schema_file_id(de->d_name, &file_id))
			continue;
		char path[4096];
		if ((size_t)snprintf(path, sizeof(path), "%s/%s", reg->dir, de->d_name) >= sizeof(path))
			continue;
		char *text = NULL;
		if (read_schema_file(path, &text, NULL, 0) != QS_OK)
			continue;
		/* Files that are not JSON records are someone else's (or broken
		 * fixtures); they just do not match. */
		json_t *have = json_loads(text, 0, NULL);
		free(text);
		char *have_name = have ? record_full_name(have) : NULL;
		if (have_name && strcmp(have_name, want_name) == 0) {
			bool equal = json_equal(have, want);
			if ((equal && !best_equal) || (equal == best_equal && file_id > best)) {
				best = file_id;
				best_equal = equal;
			}
		}
		free(have_name);
		json_decref(have);
	}
	if (best == 0) {
		errstr_set(errstr, errstr_size, "schema directory %s holds no <id>.avsc for record %s", reg->dir,
			   want_name);
		goto fail;
	}
	*id = best;
	rc = QS_OK;
fail:
	if (d)
		closedir(d);
	free(want_name);
	json_decref(want);
	return rc;
}

static int http_id_for(struct registry *reg, const char *subject, const char *schema_json, int32_t *id, char *errstr,
		       size_t errstr_size)
{
	int rc = QS_RETRY;
	char *escaped = NULL;
	char *post = NULL;
	json_t *req = NULL;
	json_t *root = NULL;
	long status = 0;

	escaped = curl_easy_escape(reg->curl, subject, 0);
	req = json_pack("{s:s}", "schema", schema_json);
	post = req ? json_dumps(req, JSON_COMPACT) : NULL;
	if (!escaped || !post) {
		errstr_set(errstr, errstr_size, "schema registry: out of memory");
		goto fail;
	}
	rc = request(reg, post, &status, &root, errstr, errstr_size, "/subjects/%s/versions", escaped);
	if (rc != QS_OK)
		goto fail;
	if (status == 409 || status == 422) {
		/* Incompatible with the subject's history, or not a valid schema:
		 * asking again will not help. */
		rc = QS_REJECT;
		errstr_set(errstr, errstr_size, "schema registry %s refused the schema for subject %s: HTTP %ld (%s)",
			   reg->shown, subject, status, error_message(root));
		goto fail;
	}
	rc = QS_RETRY;
	json_t *jid = json_object_get(root, "id");
	if (status != 200 || !json_is_integer(jid) || json_integer_value(jid) <= 0 ||
	    json_integer_value(jid) > INT32_MAX) {
		errstr_set(errstr, errstr_size, "schema registry %s: HTTP %ld registering subject %s (%s)", reg->shown,
			   status, subject, error_message(root));
		goto fail;
	}
	*id = (int32_t)json_integer_value(jid);
	rc = QS_OK;
fail:
	json_decref(root);
	json_decref(req);
	free(post);
	curl_free(escaped);
	return rc;
}

int registry_id_for(struct registry *reg, const char *subject, const char *schema_json, int32_t *id, char *errstr,
		    size_t errstr_size)
{
	for (const struct id_cached *c = reg->ids; c; c = c->next) {
		if (strcmp(c->subject, subject) == 0 && strcmp(c->schema, schema_json) == 0) {
			*id = c->id;
			return QS_OK;
		}
	}
	int32_t found = 0;
	int rc = reg->dir ? dir_id_for(reg, schema_json, &found, errstr, errstr_size)
			  : http_id_for(reg, subject, schema_json, &found, errstr, errstr_size);
	if (rc != QS_OK)
		return rc;

	struct id_cached *c = calloc(1, sizeof(*c));
	if (c) {
		c->subject = strdup(subject);
		c->schema = strdup(schema_json);
	}
	if (!c || !c->subject || !c->schema) {
		if (c) {
			free(c->subject);
			free(c->schema);
		}
		free(c);
		errstr_set(errstr, errstr_size, "schema registry: out of memory");
		return QS_RETRY;
	}
	c->id = found;
	c->next = reg->ids;
	reg->ids = c;
	*id = found;
	return QS_OK;
}
