/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests of the YAML writer. */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <json-c/json.h>

#include "common/buf.h"
#include "common/doc.h"
#include "common/limits.h"
#include "common/yamlout.h"

/* Emits obj alone; ownership: the caller frees the returned text. */
static char *emit(const struct json_object *obj)
{
	struct buf b;
	char *text;

	buf_init(&b, KANARY_MAX_OUTPUT);
	assert_int_equal(yamlout_document(obj, &b), 0);
	assert_int_equal(buf_steal(&b, &text, NULL), 0);
	return text;
}

/* Emits obj, reads the text back and expects the same value. Takes obj's reference. */
static void assert_round_trip(struct json_object *obj)
{
	struct json_object *docs = NULL;
	struct doc_err err = {{0}};
	char *text = emit(obj);
	int r;

	r = doc_parse_stream(text, strlen(text), &docs, &err);
	if (r != 0)
		print_error("does not parse (%s):\n%s\n", err.msg, text);
	assert_int_equal(r, 0);
	assert_int_equal(json_object_array_length(docs), 1);
	if (!json_object_equal(obj, json_object_array_get_idx(docs, 0)))
		print_error("read back differently:\n%s\nas %s\n", text,
		            json_object_to_json_string(json_object_array_get_idx(docs, 0)));
	assert_true(json_object_equal(obj, json_object_array_get_idx(docs, 0)));
	json_object_put(docs);
	json_object_put(obj);
	free(text);
}

/* {"k": s} as YAML. */
static char *emit_value(const char *s)
{
	struct json_object *o = json_object_new_object();
	char *text;

	json_object_object_add(o, "k", json_object_new_string(s));
	text = emit(o);
	json_object_put(o);
	return text;
}

static void test_mapping_is_block_style_in_insertion_order(void **state)
{
	struct json_object *o = json_object_new_object();
	struct json_object *list = json_object_new_array();
	struct json_object *inner = json_object_new_object();
	char *text;

	(void)state;
	json_object_object_add(o, "zeta", json_object_new_string("first"));
	json_object_object_add(o, "alpha", json_object_new_int(80));
	json_object_array_add(list, json_object_new_string("a"));
	json_object_array_add(list, json_object_new_boolean(1));
	json_object_array_add(list, NULL);
	json_object_object_add(o, "list", list);
	json_object_object_add(inner, "x", json_object_new_double(1.5));
	json_object_object_add(o, "inner", inner);
	json_object_object_add(o, "empty", json_object_new_array());
	json_object_object_add(o, "none", json_object_new_object());
	text = emit(o);
	assert_string_equal(text, "---\n"
	                          "zeta: first\n"
	                          "alpha: 80\n"
	                          "list:\n"
	                          "- a\n"
	                          "- true\n"
	                          "- null\n"
	                          "inner:\n"
	                          "  x: 1.5\n"
	                          "empty: []\n"
	                          "none: {}\n");
	free(text);
	assert_round_trip(o);
}

static void test_multi_line_string_is_a_literal_block(void **state)
{
	static const char cfg[] = "global\n"
	                          "    maxconn 100\n"
	                          "\n"
	                          "frontend fe_main\n"
	                          "    bind :8080 # a comment: with colon\n";
	struct json_object *o = json_object_new_object();
	struct json_object *data = json_object_new_object();
	char *text;

	(void)state;
	json_object_object_add(data, "haproxy.cfg", json_object_new_string(cfg));
	json_object_object_add(o, "data", data);
	text = emit(o);
	assert_string_equal(text, "---\n"
	                          "data:\n"
	                          "  haproxy.cfg: |\n"
	                          "    global\n"
	                          "        maxconn 100\n"
	                          "\n"
	                          "    frontend fe_main\n"
	                          "        bind :8080 # a comment: with colon\n");
	free(text);
	assert_round_trip(o);
}

static void test_multi_line_edge_cases_read_back(void **state)
{
	static const char *const texts[] = {
	    "no final newline\nsecond",       "two final newlines\n\n",
	    "  leading spaces\nsecond\n",     "trailing spaces  \nsecond\n",
	    "\nstarts with a newline\n",      "tab\there\n",
	    "unicode \xc3\xa9\xe2\x9c\x93\n",
	};

	(void)state;
	for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
		struct json_object *o = json_object_new_object();

		json_object_object_add(o, "k", json_object_new_string(texts[i]));
		assert_round_trip(o);
	}
}

/* Each of these would read back as null, a boolean, a number or not at all if left plain. */
static void test_strings_of_another_type_are_quoted(void **state)
{
	static const char *const quoted[] = {
	    "80",       "-1",        "+1",         "0",           "true",
	    "True",     "FALSE",     "yes",        "No",          "on",
	    "OFF",      "y",         "n",          "null",        "Null",
	    "~",        "",          "1e3",        "1E+3",        "0x1F",
	    "0o17",     "0b101",     "0777",       "1_000",       "1:20",
	    "1.5",      ".5",        "-.5",        "10.244.1.11", ".inf",
	    "-.Inf",    ".NaN",      "2001-12-14", " leading",    "trailing ",
	    "a: b",     "# comment", "- item",     "-",           "?",
	    ":",        "[a]",       "{a}",        "*alias",      "&anchor",
	    "!tag",     "|",         ">",          "@at",         "`tick",
	    "%percent", "'single'",  "\"double\"", "<<",          "a #b",
	};

	(void)state;
	for (size_t i = 0; i < sizeof(quoted) / sizeof(quoted[0]); i++) {
		struct json_object *o = json_object_new_object();
		char *text = emit_value(quoted[i]);
		const char *v = text + strlen("---\nk: ");

		if (*v != '\'' && *v != '"')
			print_error("not quoted: \"%s\" -> %s", quoted[i], text);
		assert_true(*v == '\'' || *v == '"');
		free(text);
		json_object_object_add(o, "k", json_object_new_string(quoted[i]));
		assert_round_trip(o);
	}
}

static void test_plain_strings_stay_plain(void **state)
{
	static const char *const plain[] = {
	    "myapp-v1",
	    "100m",
	    "64Mi",
	    "kanary.pyxida.io/name",
	    "haproxy:2.6",
	    "RollingUpdate",
	    "-db",
	    "46d15b36eb6899629b98073802559528f0ef2ae061ad31c2ddad772307abaa7b",
	    "6f1c2b8e-1111-2222-3333-444455556666",
	    "/usr/local/etc/haproxy/haproxy.cfg",
	    "1e",
	    "v1.2.3",
	};

	(void)state;
	for (size_t i = 0; i < sizeof(plain) / sizeof(plain[0]); i++) {
		char want[256];
		char *text = emit_value(plain[i]);

		snprintf(want, sizeof(want), "---\nk: %s\n", plain[i]);
		assert_string_equal(text, want);
		free(text);
	}
}

static void test_keys_of_another_type_are_quoted(void **state)
{
	struct json_object *o = json_object_new_object();
	char *text;

	(void)state;
	json_object_object_add(o, "80", json_object_new_int(1));
	json_object_object_add(o, "true", json_object_new_int(2));
	json_object_object_add(o, "", json_object_new_int(3));
	json_object_object_add(o, "a: b", json_object_new_int(4));
	text = emit(o);
	assert_non_null(strstr(text, "'80': 1\n"));
	assert_non_null(strstr(text, "'true': 2\n"));
	free(text);
	assert_round_trip(o);
}

static void test_numbers_read_back_as_numbers(void **state)
{
	/* A whole number written as a float reads back as an integer, as kubectl sends it. */
	static const double doubles[] = {0.1, -2.5, 1e300, -1e-300, 123456789.125};
	static const int64_t ints[] = {0, -5, 65535, INT64_MAX, INT64_MIN};

	(void)state;
	for (size_t i = 0; i < sizeof(doubles) / sizeof(doubles[0]); i++) {
		struct json_object *o = json_object_new_object();

		json_object_object_add(o, "d", json_object_new_double(doubles[i]));
		assert_round_trip(o);
	}
	for (size_t i = 0; i < sizeof(ints) / sizeof(ints[0]); i++) {
		struct json_object *o = json_object_new_object();

		json_object_object_add(o, "i", json_object_new_int64(ints[i]));
		assert_round_trip(o);
	}
	{
		struct json_object *o = json_object_new_object();
		char *text;

		json_object_object_add(o, "d", json_object_new_double(2.0));
		json_object_object_add(o, "e", json_object_new_double(1e300));
		text = emit(o);
		assert_string_equal(text, "---\nd: 2.0\ne: 1.0e+300\n");
		free(text);
		json_object_put(o);
	}
}

static void test_top_level_scalars_and_arrays(void **state)
{
	(void)state;
	assert_round_trip(json_object_new_string("just text"));
	assert_round_trip(json_object_new_string("8080"));
	assert_round_trip(json_object_new_int(7));
	{
		struct json_object *a = json_object_new_array();
		struct json_object *inner = json_object_new_array();

		json_object_array_add(inner, json_object_new_string("x"));
		json_object_array_add(a, inner);
		json_object_array_add(a, json_object_new_object());
		assert_round_trip(a);
	}
}

/* Documents append to one stream, each behind its own "---". */
static void test_documents_append_to_a_stream(void **state)
{
	struct json_object *a = json_object_new_object();
	struct json_object *b = json_object_new_object();
	struct json_object *docs = NULL;
	struct doc_err err = {{0}};
	struct buf out;

	(void)state;
	json_object_object_add(a, "kind", json_object_new_string("ConfigMap"));
	json_object_object_add(a, "data", json_object_new_string("two\n\n"));
	json_object_object_add(b, "kind", json_object_new_string("Service"));
	buf_init(&out, KANARY_MAX_OUTPUT);
	assert_int_equal(yamlout_document(a, &out), 0);
	assert_int_equal(yamlout_document(b, &out), 0);
	assert_int_equal(doc_parse_stream(out.data, out.len, &docs, &err), 0);
	assert_int_equal(json_object_array_length(docs), 2);
	assert_true(json_object_equal(a, json_object_array_get_idx(docs, 0)));
	assert_true(json_object_equal(b, json_object_array_get_idx(docs, 1)));
	json_object_put(docs);
	json_object_put(a);
	json_object_put(b);
	buf_finish(&out);
}

/* Past the buffer's ceiling: -E2BIG and the buffer exactly as it was. */
static void test_ceiling_leaves_the_buffer_as_it_was(void **state)
{
	struct json_object *o = json_object_new_object();
	char big[4096];
	struct buf out;

	(void)state;
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	json_object_object_add(o, "k", json_object_new_string(big));
	buf_init(&out, 1024);
	assert_int_equal(buf_puts(&out, "before\n"), 0);
	assert_int_equal(yamlout_document(o, &out), -E2BIG);
	assert_int_equal(out.len, strlen("before\n"));
	assert_string_equal(out.data, "before\n");
	buf_finish(&out);

	/* An empty buffer stays empty. */
	buf_init(&out, 16);
	assert_int_equal(yamlout_document(o, &out), -E2BIG);
	assert_int_equal(out.len, 0);
	buf_finish(&out);
	json_object_put(o);
}

static void test_unemittable_input_is_refused(void **state)
{
	struct json_object *o = json_object_new_object();
	struct json_object *deep, *cur;
	struct buf out;

	(void)state;
	/* Not UTF-8. */
	json_object_object_add(o, "k", json_object_new_string("bad \xff byte"));
	buf_init(&out, KANARY_MAX_OUTPUT);
	assert_int_equal(yamlout_document(o, &out), -EINVAL);
	assert_int_equal(out.len, 0);
	json_object_put(o);

	/* Infinite and NaN: "1e400" reads as a double json-c holds as inf; .inf never reads back. */
	o = json_object_new_object();
	json_object_object_add(o, "a", json_object_new_double(1e308 * 10));
	assert_int_equal(yamlout_document(o, &out), -EINVAL);
	assert_int_equal(out.len, 0);
	json_object_put(o);
	o = json_object_new_object();
	json_object_object_add(o, "a", json_object_new_double(NAN));
	assert_int_equal(yamlout_document(o, &out), -EINVAL);
	assert_int_equal(out.len, 0);
	json_object_put(o);

	/* Deeper than KANARY_MAX_DEPTH. */
	deep = cur = json_object_new_array();
	for (int i = 0; i < KANARY_MAX_DEPTH + 2; i++) {
		struct json_object *next = json_object_new_array();

		json_object_array_add(cur, next);
		cur = next;
	}
	assert_int_equal(yamlout_document(deep, &out), -EINVAL);
	assert_int_equal(out.len, 0);
	json_object_put(deep);
	buf_finish(&out);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_mapping_is_block_style_in_insertion_order),
	    cmocka_unit_test(test_multi_line_string_is_a_literal_block),
	    cmocka_unit_test(test_multi_line_edge_cases_read_back),
	    cmocka_unit_test(test_strings_of_another_type_are_quoted),
	    cmocka_unit_test(test_plain_strings_stay_plain),
	    cmocka_unit_test(test_keys_of_another_type_are_quoted),
	    cmocka_unit_test(test_numbers_read_back_as_numbers),
	    cmocka_unit_test(test_top_level_scalars_and_arrays),
	    cmocka_unit_test(test_documents_append_to_a_stream),
	    cmocka_unit_test(test_ceiling_leaves_the_buffer_as_it_was),
	    cmocka_unit_test(test_unemittable_input_is_refused),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
