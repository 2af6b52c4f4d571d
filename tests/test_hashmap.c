/* test_hashmap.c: the keymap's numbering and its collision policy (hashmap.h). */
#include <check.h>
#include <stdio.h>

#include "compiler.h"
#include "hashmap.h"
#include "suites.h"

START_TEST(keymap_numbers_ids_in_order_of_first_sight)
{
	struct keymap m = {0};
	char id[32];
	bool added;
	/* Enough ids to grow the slots several times; each asked twice, the second time after all others. */
	for (int i = 0; i < 5000; i++) {
		snprintf(id, sizeof(id), "DLV-PLAN-A-%06d.r%05d", i, i % 23);
		ck_assert_uint_eq(keymap_add(&m, keymap_key(id), &added), (uint32_t)i);
		ck_assert(added);
	}
	for (int i = 0; i < 5000; i++) {
		snprintf(id, sizeof(id), "DLV-PLAN-A-%06d.r%05d", i, i % 23);
		ck_assert_uint_eq(keymap_add(&m, keymap_key(id), &added), (uint32_t)i);
		ck_assert(!added);
	}
	ck_assert_uint_eq(m.len, 5000);
	keymap_free(&m);
	ck_assert_uint_eq(m.len, 0);
}
END_TEST

START_TEST(keymap_collision_policy)
{
	struct keymap m = {0};
	bool added;
	/* Keys that share the slot-picking word but differ in the other 32 bits are different ids. */
	struct keymap_key a = {0x1234567890abcdefULL, 1}, b = {0x1234567890abcdefULL, 2};
	ck_assert_uint_eq(keymap_add(&m, a, &added), 0);
	ck_assert_uint_eq(keymap_add(&m, b, &added), 1);
	ck_assert(added);
	/* The policy: the same 96-bit key is the same record, whatever id it came from. */
	ck_assert_uint_eq(keymap_add(&m, (struct keymap_key){a.hi, a.lo}, &added), 0);
	ck_assert(!added);
	/* Ids that differ anywhere, also past the first 8 bytes or only in length, get different keys. */
	const char *ids[] = {"",
			     "a",
			     "a\x01",
			     "12345678",
			     "123456789",
			     "12345678a",
			     "DLV-PLAN-A-000001.r00000",
			     "DLV-PLAN-A-000001.r00001"};
	size_t n = ARRAY_LEN(ids);
	for (size_t i = 0; i < n; i++)
		for (size_t j = i + 1; j < n; j++) {
			struct keymap_key x = keymap_key(ids[i]), y = keymap_key(ids[j]);
			ck_assert_msg(x.hi != y.hi || x.lo != y.lo, "\"%s\" and \"%s\" share a key", ids[i], ids[j]);
		}
	keymap_free(&m);
}
END_TEST

Suite *hashmap_suite(void)
{
	Suite *s = suite_create("hashmap");
	TCase *tc = tcase_create("keymap");
	tcase_add_test(tc, keymap_numbers_ids_in_order_of_first_sight);
	tcase_add_test(tc, keymap_collision_policy);
	suite_add_tcase(s, tc);
	return s;
}
