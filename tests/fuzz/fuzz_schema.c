/*
 * fuzz_schema.c: libFuzzer target for writer schemas. An input is a writer
 * schema's JSON, a NUL byte, a byte picking the topic, and the Avro body of a
 * message written with that schema. The schema is written as 1.avsc into a
 * private registry directory and the message, framed with schema id 1, goes
 * through the real decode_message with a fresh registry and decoder each time
 * (so an input leaves nothing behind, and libFuzzer's leak check holds):
 * hostile and evolved schemas, resolved against the embedded reader schemas.
 * Findings as for fuzz_message (fuzz_common.h), plus an input whose plan
 * compilation loops or explodes (libFuzzer's -timeout and -rss_limit_mb).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "decode.h"
#include "fuzz_common.h"
#include "registry.h"

static char dir[64];
static char path[96];

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void remove_dir(void)
{
	unlink(path);
	rmdir(dir);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	/* /dev/shm when there is one: a file is written per input. */
	snprintf(dir, sizeof(dir), "%s/qs-fuzz-schema.XXXXXX", access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp");
	if (!mkdtemp(dir)) {
		perror("fuzz_schema: mkdtemp");
		abort();
	}
	snprintf(path, sizeof(path), "%s/1.avsc", dir);
	atexit(remove_dir);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *nul = memchr(data, '\0', size);
	if (!nul || nul + 1 == data + size)
		return 0;
	size_t schema_len = (size_t)(nul - data);
	enum qs_topic topic = (enum qs_topic)(nul[1] % QS_TOPIC_COUNT);
	const uint8_t *body = nul + 2;
	size_t body_len = size - schema_len - 2;

	FILE *f = fopen(path, "wb");
	if (!f || fwrite(data, 1, schema_len, f) != schema_len || fclose(f) != 0) {
		perror("fuzz_schema: writing the schema");
		abort();
	}
	char err[QS_DECODE_ERRSTR_SIZE] = "";
	struct registry *reg = registry_new(NULL, dir, err, sizeof(err));
	struct decoder *dec = reg ? decode_new(reg, err, sizeof(err)) : NULL;
	if (!dec) {
		fprintf(stderr, "fuzz_schema: %s\n", err);
		abort();
	}
	/* Exact size, so ASan sees a read past the end. */
	uint8_t *value = malloc(5 + body_len);
	if (!value)
		abort();
	memcpy(value, (const uint8_t[]){0, 0, 0, 0, 1}, 5);
	memcpy(value + 5, body, body_len);
	/* Twice: the first compiles the plan, the second runs the cached one. */
	for (int pass = 0; pass < 2; pass++)
		fuzz_decode(dec, topic, value, 5 + body_len);
	free(value);
	decode_free(dec);
	registry_free(reg);
	return 0;
}
