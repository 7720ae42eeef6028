/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <json-c/json.h>

#include "common/doc.h"
#include "common/limits.h"

/* Parses text that must be readable; returns the document array. */
static struct json_object *parse_ok(const char *text)
{
	struct json_object *docs = NULL;
	struct doc_err err = {{0}};
	int r = doc_parse_stream(text, strlen(text), &docs, &err);

	if (r != 0)
		fail_msg("parse failed (%d): %s", r, err.msg);
	return docs;
}

static int parse_err(const char *text, size_t len, struct doc_err *err)
{
	struct json_object *docs = NULL;
	int r = doc_parse_stream(text, len, &docs, err);

	assert_null(docs);
	return r;
}

static struct json_object *get(struct json_object *o, const char *key)
{
	struct json_object *v = NULL;

	assert_true(json_object_object_get_ex(o, key, &v));
	return v;
}

static void yaml_plain_scalars_follow_the_core_schema(void **state)
{
	struct json_object *docs =
	    parse_ok("a: 80\nb: \"80\"\nc: 80.5\nd: true\ne: ~\nf: hello\n"
	             "g: 0x1F\nh: 0o17\ni: -3\nj: .inf\nk: 'true'\n"
	             "l: 1e3\nm: 99999999999999999999\nn: !!str 42\no: yes\n");
	struct json_object *d;

	assert_int_equal(json_object_array_length(docs), 1);
	d = json_object_array_get_idx(docs, 0);
	assert_true(json_object_is_type(get(d, "a"), json_type_int));
	assert_int_equal(json_object_get_int64(get(d, "a")), 80);
	assert_true(json_object_is_type(get(d, "b"), json_type_string));
	assert_true(json_object_is_type(get(d, "c"), json_type_double));
	assert_true(json_object_is_type(get(d, "d"), json_type_boolean));
	assert_null(get(d, "e"));
	assert_string_equal(json_object_get_string(get(d, "f")), "hello");
	assert_int_equal(json_object_get_int64(get(d, "g")), 31);
	assert_int_equal(json_object_get_int64(get(d, "h")), 15);
	assert_int_equal(json_object_get_int64(get(d, "i")), -3);
	assert_true(json_object_is_type(get(d, "j"), json_type_double));
	assert_true(json_object_is_type(get(d, "k"), json_type_string));
	assert_true(json_object_is_type(get(d, "l"), json_type_double));
	/* Past int64 it stays a number, so a range check still refuses it. */
	assert_true(json_object_is_type(get(d, "m"), json_type_double));
	assert_true(json_object_is_type(get(d, "n"), json_type_string));
	/* YAML 1.1 booleans are strings in the core schema. */
	assert_true(json_object_is_type(get(d, "o"), json_type_string));
	json_object_put(docs);
}

static void yaml_streams_keep_every_document_in_order(void **state)
{
	struct json_object *docs =
	    parse_ok("---\nkind: A\n---\n# only a comment\n---\nkind: B\n...\n---\n[1, 2]\n");

	assert_int_equal(json_object_array_length(docs), 3);
	assert_string_equal(json_object_get_string(get(json_object_array_get_idx(docs, 0), "kind")),
	                    "A");
	assert_string_equal(json_object_get_string(get(json_object_array_get_idx(docs, 1), "kind")),
	                    "B");
	assert_true(json_object_is_type(json_object_array_get_idx(docs, 2), json_type_array));
	json_object_put(docs);
}

static void yaml_block_scalars_are_strings(void **state)
{
	struct json_object *docs = parse_ok("cfg: |\n  line one\n  line two\n");

	assert_string_equal(json_object_get_string(get(json_object_array_get_idx(docs, 0), "cfg")),
	                    "line one\nline two\n");
	json_object_put(docs);
}

static void json_streams_of_several_objects_are_read(void **state)
{
	struct json_object *docs = parse_ok(" {\"a\": 1}\n{\"b\": [true, null, 2.5]} ");

	assert_int_equal(json_object_array_length(docs), 2);
	json_object_put(docs);
}

static void malformed_input_is_refused_with_a_position(void **state)
{
	struct doc_err err = {{0}};
	const char *y = "a: [1, 2\nb: c\n";
	const char *j = "{\"a\": 1,\n \"b\": }";

	assert_int_equal(parse_err(y, strlen(y), &err), -EINVAL);
	assert_non_null(strstr(err.msg, "line "));
	memset(&err, 0, sizeof(err));
	assert_int_equal(parse_err(j, strlen(j), &err), -EINVAL);
	assert_non_null(strstr(err.msg, "line 2"));
	memset(&err, 0, sizeof(err));
	assert_int_equal(parse_err("{\"a\": 1", 7, &err), -EINVAL);
}

static void aliases_anchors_and_duplicate_keys_are_refused(void **state)
{
	struct doc_err err = {{0}};
	const char *alias = "a: &x 1\nb: *x\n";
	const char *dup = "a: 1\na: 2\n";
	const char *key = "? [1]\n: 2\n";

	assert_int_equal(parse_err(alias, strlen(alias), &err), -EINVAL);
	assert_non_null(strstr(err.msg, "anchors"));
	assert_int_equal(parse_err(dup, strlen(dup), &err), -EINVAL);
	assert_non_null(strstr(err.msg, "duplicate key \"a\""));
	assert_int_equal(parse_err(key, strlen(key), &err), -EINVAL);
	assert_non_null(strstr(err.msg, "keys must be scalars"));
}

static void deep_nesting_is_refused_not_recursed(void **state)
{
	size_t n = 200000;
	char *y = malloc(2 * n + 1), *j = malloc(2 * n + 1);
	struct doc_err err = {{0}};

	assert_non_null(y);
	assert_non_null(j);
	memset(y, '[', n);
	memset(y + n, ']', n);
	y[2 * n] = '\0';
	/* Starting with '[' this is read as JSON; the YAML reader gets block nesting below. */
	assert_int_equal(parse_err(y, 2 * n, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "nested"));
	for (size_t i = 0; i < n; i++)
		y[i] = (i % 2) ? ' ' : '-';
	memset(&err, 0, sizeof(err));
	assert_int_equal(parse_err(y, 2 * n, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "nested deeper"));
	memset(j, '[', n);
	memset(j + n, ']', n);
	j[2 * n] = '\0';
	assert_int_equal(parse_err(j, 2 * n, &err), -EINVAL);
	free(y);
	free(j);
}

static void oversized_and_nul_input_is_refused(void **state)
{
	struct doc_err err = {{0}};
	size_t n = KANARY_MAX_INPUT + 1;
	char *big = malloc(n);

	assert_non_null(big);
	memset(big, ' ', n);
	assert_int_equal(parse_err(big, n, &err), -E2BIG);
	free(big);
	assert_int_equal(parse_err("a: b\0c", 6, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "NUL"));
}

static void empty_input_is_an_empty_stream(void **state)
{
	struct json_object *docs = parse_ok("");

	assert_int_equal(json_object_array_length(docs), 0);
	json_object_put(docs);
	docs = parse_ok("# nothing\n---\n");
	assert_int_equal(json_object_array_length(docs), 0);
	json_object_put(docs);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(yaml_plain_scalars_follow_the_core_schema),
	    cmocka_unit_test(yaml_streams_keep_every_document_in_order),
	    cmocka_unit_test(yaml_block_scalars_are_strings),
	    cmocka_unit_test(json_streams_of_several_objects_are_read),
	    cmocka_unit_test(malformed_input_is_refused_with_a_position),
	    cmocka_unit_test(aliases_anchors_and_duplicate_keys_are_refused),
	    cmocka_unit_test(deep_nesting_is_refused_not_recursed),
	    cmocka_unit_test(oversized_and_nul_input_is_refused),
	    cmocka_unit_test(empty_input_is_an_empty_stream),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
