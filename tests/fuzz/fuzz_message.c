/*
 * fuzz_message.c: libFuzzer target for raw Kafka message values. The first
 * input byte picks the topic, the rest is the value, decoded by the real
 * decode_message against the embedded reader schemas, with writer schemas
 * from the test registry directory (tests/data/avro/registry). A crash, a
 * sanitizer report, a hang, an accepted event that breaks what validation
 * promises, or a rejection without a reason is a finding.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "decode.h"
#include "fuzz_common.h"
#include "registry.h"

static struct registry *reg;
static struct decoder *dec;

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	char err[QS_DECODE_ERRSTR_SIZE] = "";
	reg = registry_new(NULL, QS_TEST_DATA "/avro/registry", err, sizeof(err));
	dec = reg ? decode_new(reg, err, sizeof(err)) : NULL;
	if (!dec) {
		fprintf(stderr, "fuzz_message: %s\n", err);
		abort();
	}
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	/* An exact-size copy, so ASan sees a read past the value's end. */
	size_t len = size - 1;
	uint8_t *value = malloc(len ? len : 1);
	if (!value)
		abort();
	memcpy(value, data + 1, len);
	fuzz_decode(dec, (enum qs_topic)(data[0] % QS_TOPIC_COUNT), len ? value : NULL, len);
	free(value);
	return 0;
}
