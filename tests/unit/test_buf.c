/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests of the bounded buffer and the field-error list. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/buf.h"
#include "common/kerr.h"
#include "common/limits.h"

static void buf_appends_and_terminates(void **state)
{
	struct buf b;
	char *text;
	size_t len;

	buf_init(&b, 64);
	assert_int_equal(buf_puts(&b, "hello"), 0);
	assert_int_equal(buf_printf(&b, " %d", 42), 0);
	assert_string_equal(b.data, "hello 42");
	assert_int_equal(buf_steal(&b, &text, &len), 0);
	assert_string_equal(text, "hello 42");
	assert_int_equal(len, 8);
	assert_null(b.data);
	free(text);
	buf_finish(&b);
}

static void buf_refuses_past_ceiling_and_keeps_content(void **state)
{
	struct buf b;

	buf_init(&b, 10);
	assert_int_equal(buf_puts(&b, "0123456789"), 0);
	assert_int_equal(buf_puts(&b, "x"), -E2BIG);
	assert_int_equal(buf_printf(&b, "%s", "y"), -E2BIG);
	assert_string_equal(b.data, "0123456789");
	assert_int_equal(b.len, 10);
	buf_finish(&b);
}

static void buf_steal_of_empty_gives_empty_string(void **state)
{
	struct buf b;
	char *text;

	buf_init(&b, 10);
	assert_int_equal(buf_steal(&b, &text, NULL), 0);
	assert_string_equal(text, "");
	free(text);
	buf_finish(&b);
}

static void kerr_formats_like_the_api_server(void **state)
{
	struct kerr_list l;
	struct buf b;

	kerr_init(&l);
	kerr_invalid_int(&l, "spec.routes[1].weight", 120, "must be between 0 and %d", 100);
	kerr_required(&l, "spec.destination");
	kerr_invalid_str(&l, "spec.destination", "My\"App\n", "bad");
	assert_int_equal(kerr_count(&l), 3);
	assert_string_equal(kerr_get(&l, 0),
	                    "spec.routes[1].weight: Invalid value: 120: must be between 0 and 100");
	assert_string_equal(kerr_get(&l, 1), "spec.destination: Required value");
	assert_string_equal(kerr_get(&l, 2),
	                    "spec.destination: Invalid value: \"My\\\"App\\n\": bad");
	buf_init(&b, 4096);
	assert_int_equal(kerr_join(&l, "; ", &b), 0);
	assert_non_null(strstr(b.data, "100; spec.destination: Required value; "));
	buf_finish(&b);
	kerr_finish(&l);
}

static void kerr_marks_long_values_as_cut(void **state)
{
	char value[1000], out[KANARY_MAX_ERROR_VALUE * 4 + 48];

	memset(value, 'a', sizeof(value) - 1);
	value[sizeof(value) - 1] = '\0';
	kerr_fmt_str(out, sizeof(out), value);
	assert_non_null(strstr(out, "...\"(999 bytes)"));
	assert_true(strlen(out) < sizeof(out));
}

static void kerr_counts_what_it_drops(void **state)
{
	struct kerr_list l;
	struct buf b;

	kerr_init(&l);
	for (int i = 0; i < KANARY_MAX_FIELD_ERRORS + 7; i++)
		kerr_required(&l, "spec.x");
	assert_int_equal(kerr_count(&l), KANARY_MAX_FIELD_ERRORS);
	assert_int_equal(kerr_dropped(&l), 7);
	buf_init(&b, 1 << 20);
	assert_int_equal(kerr_join(&l, "; ", &b), 0);
	assert_non_null(strstr(b.data, "; and 7 more errors not shown"));
	buf_finish(&b);
	kerr_finish(&l);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(buf_appends_and_terminates),
	    cmocka_unit_test(buf_refuses_past_ceiling_and_keeps_content),
	    cmocka_unit_test(buf_steal_of_empty_gives_empty_string),
	    cmocka_unit_test(kerr_formats_like_the_api_server),
	    cmocka_unit_test(kerr_marks_long_values_as_cut),
	    cmocka_unit_test(kerr_counts_what_it_drops),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
