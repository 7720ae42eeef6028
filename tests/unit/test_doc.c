/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests of the YAML and JSON stream reader. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
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

static int64_t get_int(struct json_object *o, const char *key)
{
	struct json_object *v = get(o, key);

	if (!json_object_is_type(v, json_type_int))
		fail_msg("%s is %s, not an integer", key, json_object_to_json_string(v));
	return json_object_get_int64(v);
}

/* Each value below is what kubectl 1.35 sends for it (kubectl create --dry-run=client -o json). */
static void yaml_plain_scalars_read_as_kubectl_reads_them(void **state)
{
	struct json_object *docs =
	    parse_ok("a: 80\nb: \"80\"\nc: 80.5\nd: true\ne: ~\nf: hello\n"
	             "g: 0x1F\nh: 0o17\ni: -3\nk: 'true'\n"
	             "l: 1e3\nm: 99999999999999999999\nnn: !!str 42\no: yes\n"
	             "p: 8_0\nq: 017\nr: +80\ns: 80.0\nt: 8e1\nu: 080\nv: 0b101\nw: off\n"
	             "x: null\ny2: 1e400\nz: 1:20\naa: !!int \"80\"\nab: !!float 80\n"
	             "ac: -0x10\nad: 1_000.5\nae: _80\naf: 2001-12-14\nag: !foo 3\n");
	struct json_object *d;

	assert_int_equal(json_object_array_length(docs), 1);
	d = json_object_array_get_idx(docs, 0);
	assert_int_equal(get_int(d, "a"), 80);
	assert_true(json_object_is_type(get(d, "b"), json_type_string));
	assert_true(json_object_is_type(get(d, "c"), json_type_double));
	assert_true(json_object_get_boolean(get(d, "d")));
	assert_null(get(d, "e"));
	assert_string_equal(json_object_get_string(get(d, "f")), "hello");
	assert_int_equal(get_int(d, "g"), 31);
	assert_int_equal(get_int(d, "h"), 15);
	assert_int_equal(get_int(d, "i"), -3);
	assert_true(json_object_is_type(get(d, "k"), json_type_string));
	assert_int_equal(get_int(d, "l"), 1000);
	/* Past int64 it stays a number, so a range check still refuses it. */
	assert_true(json_object_is_type(get(d, "m"), json_type_double));
	assert_true(json_object_is_type(get(d, "nn"), json_type_string));
	assert_true(json_object_is_type(get(d, "o"), json_type_boolean));
	assert_true(json_object_get_boolean(get(d, "o")));
	assert_int_equal(get_int(d, "p"), 80);
	assert_int_equal(get_int(d, "q"), 15);
	assert_int_equal(get_int(d, "r"), 80);
	assert_int_equal(get_int(d, "s"), 80);
	assert_int_equal(get_int(d, "t"), 80);
	assert_int_equal(get_int(d, "u"), 80);
	assert_int_equal(get_int(d, "v"), 5);
	assert_true(json_object_is_type(get(d, "w"), json_type_boolean));
	assert_false(json_object_get_boolean(get(d, "w")));
	assert_null(get(d, "x"));
	assert_string_equal(json_object_get_string(get(d, "y2")), "1e400");
	assert_string_equal(json_object_get_string(get(d, "z")), "1:20");
	assert_int_equal(get_int(d, "aa"), 80);
	assert_int_equal(get_int(d, "ab"), 80);
	assert_int_equal(get_int(d, "ac"), -16);
	assert_true(json_object_is_type(get(d, "ad"), json_type_double));
	assert_string_equal(json_object_get_string(get(d, "ae")), "_80");
	assert_string_equal(json_object_get_string(get(d, "af")), "2001-12-14");
	assert_string_equal(json_object_get_string(get(d, "ag")), "3");
	json_object_put(docs);
}

static void yaml_keys_are_the_resolved_values_printed(void **state)
{
	struct json_object *docs = parse_ok("1e3: a\n1.5: b\n0x10: c\nyes: d\n1e21: e\n1e6: f\n");
	struct json_object *d = json_object_array_get_idx(docs, 0);

	assert_string_equal(json_object_get_string(get(d, "1000")), "a");
	assert_string_equal(json_object_get_string(get(d, "1.5")), "b");
	assert_string_equal(json_object_get_string(get(d, "16")), "c");
	assert_string_equal(json_object_get_string(get(d, "true")), "d");
	assert_string_equal(json_object_get_string(get(d, "1e+21")), "e");
	assert_string_equal(json_object_get_string(get(d, "1e+06")), "f");
	json_object_put(docs);
}

static void whole_document_flow_style_and_json_fallback(void **state)
{
	struct json_object *docs =
	    parse_ok("{apiVersion: v1, kind: K, w: 8_0}\n---\n{\"x\": 0x10} # a comment\n");
	struct json_object *d;

	assert_int_equal(json_object_array_length(docs), 2);
	d = json_object_array_get_idx(docs, 0);
	assert_string_equal(json_object_get_string(get(d, "kind")), "K");
	assert_int_equal(get_int(d, "w"), 80);
	assert_int_equal(get_int(json_object_array_get_idx(docs, 1), "x"), 16);
	json_object_put(docs);
	/* Valid JSON stays JSON; a whole float arrives as an integer, as kubectl sends it. */
	docs = parse_ok("{\"w\": 80.0, \"l\": [1.0, 2.5], \"x\": 1, \"x\": 2}");
	d = json_object_array_get_idx(docs, 0);
	assert_int_equal(get_int(d, "w"), 80);
	assert_int_equal(json_object_get_int64(json_object_array_get_idx(get(d, "l"), 0)), 1);
	assert_true(
	    json_object_is_type(json_object_array_get_idx(get(d, "l"), 1), json_type_double));
	assert_int_equal(get_int(d, "x"), 2);
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
	const char *j = "{\"a\": 1,\n \"b\": ]}";

	assert_int_equal(parse_err(y, strlen(y), &err), -EINVAL);
	assert_non_null(strstr(err.msg, "line "));
	memset(&err, 0, sizeof(err));
	assert_int_equal(parse_err(j, strlen(j), &err), -EINVAL);
	assert_non_null(strstr(err.msg, "line 2"));
	memset(&err, 0, sizeof(err));
	assert_int_equal(parse_err("{\"a\": 1", 7, &err), -EINVAL);
}

static void collect_warning(void *ctx, const char *msg)
{
	char *out = ctx;

	snprintf(out, 256, "%s", msg);
}

static void aliases_merge_keys_and_repeated_keys_as_kubectl(void **state)
{
	char warning[256] = "";
	struct doc_warner warner = {.fn = collect_warning, .ctx = warning};
	struct doc_err err = {{0}};
	struct json_object *docs = NULL, *d;
	const char *text = "b: &b {p: 1, q: 2}\n"
	                   "x: {<<: *b, q: 3}\n"
	                   "w: {q: 3, <<: *b}\n"
	                   "c: &c {p: 2, r: 1}\n"
	                   "z: {<<: [*b, *c]}\n"
	                   "s: &s hello\n"
	                   "t: *s\n"
	                   "u: {\"<<\": 1}\n"
	                   "a: 1\n"
	                   "a: 2\n";

	assert_int_equal(doc_parse_stream_warn(text, strlen(text), &warner, &docs, &err), 0);
	d = json_object_array_get_idx(docs, 0);
	assert_int_equal(get_int(get(d, "x"), "q"), 3);
	assert_int_equal(get_int(get(d, "x"), "p"), 1);
	/* go-yaml merges in place: a merge after a key overwrites it. */
	assert_int_equal(get_int(get(d, "w"), "q"), 2);
	/* In a sequence of merged mappings the first wins. */
	assert_int_equal(get_int(get(d, "z"), "p"), 1);
	assert_int_equal(get_int(get(d, "z"), "r"), 1);
	assert_string_equal(json_object_get_string(get(d, "t")), "hello");
	assert_int_equal(get_int(get(d, "u"), "<<"), 1);
	assert_int_equal(get_int(d, "a"), 2);
	assert_string_equal(
	    warning, "line 10, column 1: key \"a\" repeated in one mapping; the last one is used");
	json_object_put(docs);
}

static void alias_bombs_and_bad_keys_are_refused(void **state)
{
	struct doc_err err = {{0}};
	const char *unknown = "a: *x\n";
	const char *merge = "a: {<<: 5}\n";
	const char *key = "? [1]\n: 2\n";
	const char *null_key = "~: 2\n";
	const char *inf = "a: .inf\n";
	char bomb[1024];
	size_t n = 0;

	n += (size_t)snprintf(bomb + n, sizeof(bomb) - n,
	                      "a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
	for (int i = 1; i < 9; i++)
		n += (size_t)snprintf(
		    bomb + n, sizeof(bomb) - n,
		    "a%d: &a%d [*a%d, *a%d, *a%d, *a%d, *a%d, *a%d, *a%d, *a%d, *a%d, "
		    "*a%d]\n",
		    i, i, i - 1, i - 1, i - 1, i - 1, i - 1, i - 1, i - 1, i - 1, i - 1, i - 1);
	assert_int_equal(parse_err(bomb, n, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "aliases expand to more than"));
	assert_int_equal(parse_err(unknown, strlen(unknown), &err), -EINVAL);
	assert_non_null(strstr(err.msg, "unknown anchor \"x\""));
	assert_int_equal(parse_err(merge, strlen(merge), &err), -EINVAL);
	assert_non_null(strstr(err.msg, "merge key"));
	assert_int_equal(parse_err(key, strlen(key), &err), -EINVAL);
	assert_non_null(strstr(err.msg, "keys must be scalars"));
	assert_int_equal(parse_err(null_key, strlen(null_key), &err), -EINVAL);
	assert_non_null(strstr(err.msg, "must not be null"));
	assert_int_equal(parse_err(inf, strlen(inf), &err), -EINVAL);
	assert_non_null(strstr(err.msg, "not a number JSON can hold"));
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

/*
 * Found by fuzzing (tests/fuzz/corpus/doc/json-ends-in-a-number): a JSON stream
 * whose last text is a bare number left the number the tokener handed back
 * when told the input had ended; ASan and valgrind see the leak.
 */
static void json_stream_ending_in_a_number_is_refused_without_a_leak(void **state)
{
	struct doc_err err = {{0}};

	assert_int_equal(parse_err("{}\n1.5", 6, &err), -EINVAL);
	assert_int_equal(parse_err("[1, 2]\n-7", 9, &err), -EINVAL);
}

/*
 * Found by fuzzing: JSON text is read as UTF-8 (RFC 8259), as YAML is; a
 * string with a sequence past U+10FFFF was read, and yamlout wrote it as an
 * escape that no YAML reader takes back.
 */
static void json_that_is_not_utf8_is_refused(void **state)
{
	struct doc_err err = {{0}};
	const char *past = "{\"a\": \"\xf6\x92\x9a\x8d\"}", *cut = "{\"a\": \"\xc3\"}";

	assert_int_equal(parse_err(past, strlen(past), &err), -EINVAL);
	assert_int_equal(parse_err(cut, strlen(cut), &err), -EINVAL);
}

/*
 * Found by fuzzing: JSON read an integer past INT64_MAX as json-c's unsigned
 * integer, YAML (and Go) as a float64, so yamlout's copy read back as
 * another value. Both read it as the float now.
 */
static void integers_past_int64_read_alike_in_json_and_yaml(void **state)
{
	struct json_object *j =
	    parse_ok("{\"a\": 18446744073709551615, \"b\": 9223372036854775807}");
	struct json_object *y = parse_ok("a: 18446744073709551615\nb: 9223372036854775807\n");
	struct json_object *ja = get(json_object_array_get_idx(j, 0), "a");

	assert_true(json_object_is_type(ja, json_type_double));
	assert_int_equal(get_int(json_object_array_get_idx(j, 0), "b"), INT64_MAX);
	assert_true(
	    json_object_equal(json_object_array_get_idx(j, 0), json_object_array_get_idx(y, 0)));
	json_object_put(j);
	json_object_put(y);
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
	    cmocka_unit_test(yaml_plain_scalars_read_as_kubectl_reads_them),
	    cmocka_unit_test(yaml_keys_are_the_resolved_values_printed),
	    cmocka_unit_test(whole_document_flow_style_and_json_fallback),
	    cmocka_unit_test(yaml_streams_keep_every_document_in_order),
	    cmocka_unit_test(yaml_block_scalars_are_strings),
	    cmocka_unit_test(json_streams_of_several_objects_are_read),
	    cmocka_unit_test(malformed_input_is_refused_with_a_position),
	    cmocka_unit_test(aliases_merge_keys_and_repeated_keys_as_kubectl),
	    cmocka_unit_test(alias_bombs_and_bad_keys_are_refused),
	    cmocka_unit_test(deep_nesting_is_refused_not_recursed),
	    cmocka_unit_test(json_stream_ending_in_a_number_is_refused_without_a_leak),
	    cmocka_unit_test(json_that_is_not_utf8_is_refused),
	    cmocka_unit_test(integers_past_int64_read_alike_in_json_and_yaml),
	    cmocka_unit_test(oversized_and_nul_input_is_refused),
	    cmocka_unit_test(empty_input_is_an_empty_stream),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
