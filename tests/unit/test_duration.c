/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests of the duration flag parser: one unit, "0" alone, the ceiling. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "common/duration.h"

#define DAY_MS (24L * 3600 * 1000)

static void duration_reads_each_unit(void **state)
{
	long ms = -1;

	assert_int_equal(duration_parse("1500ms", DAY_MS, &ms), 0);
	assert_int_equal(ms, 1500);
	assert_int_equal(duration_parse("15s", DAY_MS, &ms), 0);
	assert_int_equal(ms, 15000);
	assert_int_equal(duration_parse("10m", DAY_MS, &ms), 0);
	assert_int_equal(ms, 600000);
	assert_int_equal(duration_parse("1h", DAY_MS, &ms), 0);
	assert_int_equal(ms, 3600000);
	assert_int_equal(duration_parse("0s", DAY_MS, &ms), 0);
	assert_int_equal(ms, 0);
}

static void duration_takes_zero_alone(void **state)
{
	long ms = -1;

	assert_int_equal(duration_parse("0", DAY_MS, &ms), 0);
	assert_int_equal(ms, 0);
}

static void duration_refuses_a_bare_number_and_other_forms(void **state)
{
	static const char *const bad[] = {"30",    "",    "s",  "-1s", "+1s", " 1s", "1.5s",
	                                  "1m30s", "1 s", "1S", "1d",  "00x", NULL};
	long ms = 7;

	for (size_t i = 0; bad[i]; i++) {
		assert_int_equal(duration_parse(bad[i], DAY_MS, &ms), -EINVAL);
		assert_int_equal(ms, 7);
	}
}

static void duration_refuses_past_the_ceiling(void **state)
{
	long ms = 7;

	assert_int_equal(duration_parse("24h", DAY_MS, &ms), 0);
	assert_int_equal(ms, DAY_MS);
	assert_int_equal(duration_parse("25h", DAY_MS, &ms), -ERANGE);
	assert_int_equal(duration_parse("86400001ms", DAY_MS, &ms), -ERANGE);
	assert_int_equal(duration_parse("99999999999999999999999s", DAY_MS, &ms), -ERANGE);
	assert_int_equal(ms, DAY_MS);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(duration_reads_each_unit),
	    cmocka_unit_test(duration_takes_zero_alone),
	    cmocka_unit_test(duration_refuses_a_bare_number_and_other_forms),
	    cmocka_unit_test(duration_refuses_past_the_ceiling),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
