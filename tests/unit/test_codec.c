/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests of base64, integers in a range, the token bucket and the JSON string getters. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <json-c/json.h>

#include "common/base64.h"
#include "common/buf.h"
#include "common/integer.h"
#include "common/json_field.h"
#include "common/token_bucket.h"

static void base64_encodes_with_padding_and_no_breaks(void **state)
{
	static const struct {
		const char *in, *out;
	} cases[] = {{"", ""},        {"f", "Zg=="},        {"fo", "Zm8="},
	             {"foo", "Zm9v"}, {"foob", "Zm9vYg=="}, {"foobar", "Zm9vYmFy"}};
	char long_in[200];
	struct buf b;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		buf_init(&b, 64);
		assert_int_equal(base64_encode(cases[i].in, strlen(cases[i].in), &b), 0);
		assert_string_equal(b.len ? b.data : "", cases[i].out);
		buf_finish(&b);
	}
	memset(long_in, 'x', sizeof(long_in));
	buf_init(&b, 1024);
	assert_int_equal(base64_encode(long_in, sizeof(long_in), &b), 0);
	assert_int_equal(b.len, 268);
	assert_null(strchr(b.data, '\n'));
	buf_finish(&b);
}

static void base64_decodes_and_skips_white_space(void **state)
{
	struct buf b;

	buf_init(&b, 64);
	assert_int_equal(base64_decode("Zm9v\nYmFy\r\n", 64, &b), 0);
	assert_string_equal(b.data, "foobar");
	buf_finish(&b);
	buf_init(&b, 64);
	assert_int_equal(base64_decode("  ", 64, &b), 0);
	assert_int_equal(b.len, 0);
	buf_finish(&b);
}

static void base64_refuses_bad_text_and_past_max(void **state)
{
	static const char *const bad[] = {"!!notbase64", "Zm9v-YmFy", "Zg=a", "Zm9vYmFy====", NULL};
	struct buf b;

	for (size_t i = 0; bad[i]; i++) {
		buf_init(&b, 64);
		assert_int_equal(base64_decode(bad[i], 64, &b), -EINVAL);
		buf_finish(&b);
	}
	buf_init(&b, 64);
	assert_int_equal(base64_decode("Zm9vYmFy", 5, &b), -E2BIG);
	buf_finish(&b);
}

static void integer_parse_takes_the_whole_string_in_range(void **state)
{
	static const char *const bad[] = {
	    "", "x", "1x", "1 ", "0", "65536", "99999999999999999999", NULL};
	long v = 7;

	assert_int_equal(integer_parse("8080", 1, 65535, &v), 0);
	assert_int_equal(v, 8080);
	assert_int_equal(integer_parse("+1", 1, 65535, &v), 0);
	assert_int_equal(v, 1);
	assert_int_equal(integer_parse("-5", -10, 10, &v), 0);
	assert_int_equal(v, -5);
	v = 7;
	for (size_t i = 0; bad[i]; i++)
		assert_int_equal(integer_parse(bad[i], 1, 65535, &v), -EINVAL);
	assert_int_equal(v, 7);
}

static void token_bucket_spends_its_burst_then_refills(void **state)
{
	struct token_bucket tb;

	token_bucket_init(&tb, 1.0, 2, 0);
	assert_true(token_bucket_try_take(&tb, 0));
	assert_true(token_bucket_try_take(&tb, 0));
	assert_false(token_bucket_try_take(&tb, 999));
	assert_true(token_bucket_try_take(&tb, 1000));
	assert_false(token_bucket_try_take(&tb, 1000));
	/* A long pause refills to the burst, no further. */
	assert_true(token_bucket_try_take(&tb, 100000));
	assert_true(token_bucket_try_take(&tb, 100000));
	assert_false(token_bucket_try_take(&tb, 100000));
}

static void token_bucket_reserve_says_how_long_to_wait(void **state)
{
	struct token_bucket tb;

	token_bucket_init(&tb, 10.0, 1, 0);
	assert_int_equal(token_bucket_reserve(&tb, 0), 0);
	assert_int_equal(token_bucket_reserve(&tb, 0), 100);
	assert_int_equal(token_bucket_reserve(&tb, 0), 200);
	assert_int_equal(token_bucket_reserve(&tb, 300), 0);
}

static void json_field_reads_strings_only(void **state)
{
	struct json_object *o = json_tokener_parse("{\"kind\":\"Service\",\"n\":3,\"metadata\":{"
	                                           "\"name\":\"a\",\"labels\":{\"x\":\"y\"}}}");

	assert_non_null(o);
	assert_string_equal(json_field_str(o, "kind"), "Service");
	assert_null(json_field_str(o, "n"));
	assert_null(json_field_str(o, "missing"));
	assert_null(json_field_str(NULL, "kind"));
	assert_null(json_field_str(o, "metadata"));
	assert_string_equal(json_field_str_path(o, JSON_FIELD_PATH("metadata", "name")), "a");
	assert_string_equal(json_field_str_path(o, JSON_FIELD_PATH("metadata", "labels", "x")),
	                    "y");
	assert_null(json_field_str_path(o, JSON_FIELD_PATH("metadata", "labels", "z")));
	assert_null(json_field_str_path(o, JSON_FIELD_PATH("kind", "name")));
	assert_null(json_field_str_path(NULL, JSON_FIELD_PATH("metadata", "name")));
	json_object_put(o);
}

static void json_field_reads_objects_and_integers(void **state)
{
	struct json_object *o = json_tokener_parse(
	    "{\"n\":3,\"s\":\"3\",\"z\":null,\"spec\":{\"replicas\":2,\"ports\":[80]}}");
	int64_t v = 7;

	assert_non_null(o);
	assert_non_null(json_field_get(o, "spec"));
	assert_null(json_field_get(o, "z"));
	assert_null(json_field_get(o, "missing"));
	assert_null(json_field_get(NULL, "spec"));
	assert_true(json_object_is_type(json_field_path(o, JSON_FIELD_PATH("spec", "ports")),
	                                json_type_array));
	assert_null(json_field_path(o, JSON_FIELD_PATH("spec", "missing", "deeper")));
	assert_true(json_field_int(o, "n", &v));
	assert_int_equal(v, 3);
	v = 7;
	assert_false(json_field_int(o, "s", &v));
	assert_int_equal(v, 7);
	assert_true(json_field_int_path(o, JSON_FIELD_PATH("spec", "replicas"), &v));
	assert_int_equal(v, 2);
	assert_int_equal(json_field_int_or(o, "n", 9), 3);
	assert_int_equal(json_field_int_or(o, "s", 9), 9);
	assert_int_equal(json_field_int_or(NULL, "n", 9), 9);
	json_object_put(o);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(base64_encodes_with_padding_and_no_breaks),
	    cmocka_unit_test(base64_decodes_and_skips_white_space),
	    cmocka_unit_test(base64_refuses_bad_text_and_past_max),
	    cmocka_unit_test(integer_parse_takes_the_whole_string_in_range),
	    cmocka_unit_test(token_bucket_spends_its_burst_then_refills),
	    cmocka_unit_test(token_bucket_reserve_says_how_long_to_wait),
	    cmocka_unit_test(json_field_reads_strings_only),
	    cmocka_unit_test(json_field_reads_objects_and_integers),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
